//! One metric of variants A and B over the same seeds: mean difference and a paired t-test.

use crate::special::{student_t_quantile, student_t_sf};
use crate::{MetricsError, check_finite};

use super::*;

/// A paired comparison of one metric of variants A and B over the same seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedComparison {
    /// Number of pairs (seeds).
    pub n: usize,
    pub mean_a: f64,
    pub mean_b: f64,
    /// Mean of `a_i - b_i`.
    pub mean_difference: f64,
    /// Sample standard deviation (n - 1 denominator) of `a_i - b_i`.
    pub sd_difference: f64,
    /// `sd_difference / sqrt(n)`.
    pub std_error: f64,
    /// Paired t statistic (0 when the mean and the spread are both 0).
    pub t: f64,
    /// Degrees of freedom, `n - 1`.
    pub df: f64,
    /// Two-sided p-value of the paired t-test (`scipy.stats.ttest_rel`).
    pub p_value: f64,
}

/// Paired comparison of one metric (e.g. AUROC) of variants A and B over the same seeds:
/// `a[i]` and `b[i]` come from seed `i`. Reports the mean difference `a - b`, its standard
/// deviation and standard error, and the two-sided paired t-test (`scipy.stats.ttest_rel`).
///
/// Needs at least two pairs of finite values. When every difference is zero, `t = 0` and
/// `p = 1`; identical non-zero differences (zero spread) are an error rather than `p = 0`.
pub fn paired_comparison(a: &[f64], b: &[f64]) -> Result<PairedComparison, MetricsError> {
    if a.len() != b.len() {
        return Err(MetricsError::LengthMismatch {
            labels: a.len(),
            scores: b.len(),
        });
    }
    if a.len() < 2 {
        return Err(MetricsError::TooFew {
            what: "paired comparison: pairs (seeds)",
            needed: 2,
            got: a.len(),
        });
    }
    check_finite(a)?;
    check_finite(b)?;
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = diffs.len();
    let (mean_difference, sd_difference) = mean_sd(&diffs);
    let std_error = sd_difference / (n as f64).sqrt();
    let df = (n - 1) as f64;
    let (t, p_value) = if std_error > 0.0 {
        let t = mean_difference / std_error;
        (t, (2.0 * student_t_sf(t.abs(), df)).min(1.0))
    } else if mean_difference == 0.0 {
        (0.0, 1.0)
    } else {
        return Err(MetricsError::ZeroVariance("paired t-test"));
    };
    Ok(PairedComparison {
        n,
        mean_a: a.iter().sum::<f64>() / n as f64,
        mean_b: b.iter().sum::<f64>() / n as f64,
        mean_difference,
        sd_difference,
        std_error,
        t,
        df,
        p_value,
    })
}

impl PairedComparison {
    /// Student-t confidence interval of the mean difference.
    pub fn ci(&self, confidence: f64) -> Result<(f64, f64), MetricsError> {
        check_confidence(confidence)?;
        let half = student_t_quantile(0.5 + confidence / 2.0, self.df) * self.std_error;
        Ok((self.mean_difference - half, self.mean_difference + half))
    }

    /// For a table, with the metric as a fraction in [0, 1]: e.g.
    /// `"+1.80 ± 0.30 pp (mean ± sd over 5 seeds), p = 0.0021"`.
    pub fn format_pp(&self) -> String {
        format!(
            "{:+.2} ± {:.2} pp (mean ± sd over {} seeds), p = {}",
            100.0 * self.mean_difference,
            100.0 * self.sd_difference,
            self.n,
            format_p(self.p_value)
        )
    }
}
