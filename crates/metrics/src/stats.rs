//! Uncertainty of AUROC and tests that say whether a variant really helps.
//!
//! - [`bootstrap_auroc_ci`] / [`bootstrap_auroc_diff_ci`]: stratified, seeded percentile
//!   bootstrap of one AUROC or of the difference of two on the same images.
//! - [`delong_auroc`] / [`delong_test`]: DeLong, DeLong & Clarke-Pearson (1988) variance of an
//!   AUROC and the z-test for two correlated AUROCs on the same images, computed with the
//!   O(n log n) midrank algorithm of Sun & Xu (2014).
//! - [`paired_comparison`]: one metric of variants A and B over the same seeds: mean
//!   difference, its standard deviation, and a paired t-test.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::special::{normal_quantile, normal_sf, student_t_quantile, student_t_sf};
use crate::{MetricsError, auroc, check, check_finite};

/// Settings of a bootstrap: number of resamples, confidence level and RNG seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapConfig {
    /// Number of bootstrap resamples (at least 1; 2,000 or more for a 95% interval).
    pub resamples: usize,
    /// Confidence level of the interval, in (0, 1).
    pub confidence: f64,
    /// Seed of the ChaCha8 generator: the same seed and inputs give the same interval.
    pub seed: u64,
}

impl Default for BootstrapConfig {
    /// 2,000 resamples, 95%, seed 0.
    fn default() -> Self {
        BootstrapConfig {
            resamples: 2000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

/// A percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapCi {
    /// The statistic on the original sample (not the bootstrap mean).
    pub estimate: f64,
    /// Lower and upper percentiles (`(1 - confidence) / 2` and `(1 + confidence) / 2`, linear
    /// interpolation between order statistics as NumPy's default `percentile`).
    pub lower: f64,
    pub upper: f64,
    /// Standard deviation of the bootstrap replicates.
    pub std_error: f64,
    pub resamples: usize,
    pub confidence: f64,
}

/// DeLong's estimate of an AUROC's sampling variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeLongAuroc {
    pub auroc: f64,
    pub variance: f64,
    pub std_error: f64,
}

/// DeLong's test of two correlated AUROCs (variants A and B scored on the same images).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeLongComparison {
    pub auroc_a: f64,
    pub auroc_b: f64,
    /// `auroc_a - auroc_b`.
    pub difference: f64,
    pub variance_a: f64,
    pub variance_b: f64,
    pub covariance: f64,
    /// Standard error of the difference, `sqrt(var_a + var_b - 2 cov)`.
    pub std_error: f64,
    /// `difference / std_error` (0 when both are 0).
    pub z: f64,
    /// Two-sided p-value of `H0: AUROC_A = AUROC_B`.
    pub p_value: f64,
}

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

fn check_confidence(confidence: f64) -> Result<(), MetricsError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidArgument(format!(
            "confidence level must lie in (0, 1), got {confidence}"
        )))
    }
}

/// `p`-quantile of sorted values with linear interpolation (NumPy's default method).
fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Mean and sample standard deviation (n − 1; 0 for fewer than two values).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// A score vector pre-sorted into tie groups, for AUROC with integer weights per image.
struct WeightedAuroc {
    /// Image indices in ascending score order.
    order: Vec<u32>,
    /// End (exclusive) of each tie group in `order`.
    group_ends: Vec<u32>,
}

impl WeightedAuroc {
    fn new(scores: &[f64]) -> Self {
        let mut order: Vec<u32> = (0..scores.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| scores[a as usize].total_cmp(&scores[b as usize]));
        let mut group_ends = Vec::new();
        for k in 1..order.len() {
            if scores[order[k] as usize] != scores[order[k - 1] as usize] {
                group_ends.push(k as u32);
            }
        }
        group_ends.push(order.len() as u32);
        WeightedAuroc { order, group_ends }
    }

    /// AUROC when image `i` counts `weights[i]` times; `pos` and `neg` are the class totals.
    fn auroc(&self, labels: &[bool], weights: &[u32], pos: u64, neg: u64) -> f64 {
        let mut twice_u: u128 = 0;
        let mut neg_below: u64 = 0;
        let mut start = 0usize;
        for &end in &self.group_ends {
            let (mut p, mut q) = (0u64, 0u64);
            for &i in &self.order[start..end as usize] {
                let w = weights[i as usize] as u64;
                if labels[i as usize] {
                    p += w;
                } else {
                    q += w;
                }
            }
            twice_u += p as u128 * (2 * neg_below + q) as u128;
            neg_below += q;
            start = end as usize;
        }
        twice_u as f64 / (2.0 * pos as f64 * neg as f64)
    }
}

/// Draws stratified bootstrap weights: as many anomalous images (with replacement) as there
/// are, and as many good ones, so every resample keeps both classes and their sizes.
struct StratifiedSampler {
    rng: ChaCha8Rng,
    positives: Vec<u32>,
    negatives: Vec<u32>,
    weights: Vec<u32>,
}

impl StratifiedSampler {
    fn new(labels: &[bool], seed: u64) -> Self {
        let (positives, negatives): (Vec<u32>, Vec<u32>) =
            (0..labels.len() as u32).partition(|&i| labels[i as usize]);
        StratifiedSampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            positives,
            negatives,
            weights: vec![0; labels.len()],
        }
    }

    fn draw(&mut self) -> &[u32] {
        self.weights.fill(0);
        for class in [&self.positives, &self.negatives] {
            for _ in 0..class.len() {
                let pick = class[self.rng.random_range(0..class.len())];
                self.weights[pick as usize] += 1;
            }
        }
        &self.weights
    }
}

fn check_bootstrap(config: &BootstrapConfig) -> Result<(), MetricsError> {
    check_confidence(config.confidence)?;
    if config.resamples == 0 {
        return Err(MetricsError::InvalidArgument(
            "a bootstrap needs at least one resample".into(),
        ));
    }
    Ok(())
}

fn interval(estimate: f64, mut replicates: Vec<f64>, config: &BootstrapConfig) -> BootstrapCi {
    let (_, sd) = mean_sd(&replicates);
    replicates.sort_unstable_by(f64::total_cmp);
    let alpha = 1.0 - config.confidence;
    BootstrapCi {
        estimate,
        lower: percentile_sorted(&replicates, alpha / 2.0),
        upper: percentile_sorted(&replicates, 1.0 - alpha / 2.0),
        std_error: sd,
        resamples: config.resamples,
        confidence: config.confidence,
    }
}

/// Percentile bootstrap confidence interval for AUROC.
///
/// Stratified: each resample draws the anomalous images with replacement from the anomalous
/// ones and the good images from the good ones, keeping both class sizes. Seeded (ChaCha8), so
/// the interval is reproducible. Each resample costs O(n) after one O(n log n) sort.
pub fn bootstrap_auroc_ci(
    labels: &[bool],
    scores: &[f64],
    config: &BootstrapConfig,
) -> Result<BootstrapCi, MetricsError> {
    check_bootstrap(config)?;
    let (pos, neg) = check(labels, scores)?;
    let estimate = auroc(labels, scores)?;
    let sorted = WeightedAuroc::new(scores);
    let mut sampler = StratifiedSampler::new(labels, config.seed);
    let replicates = (0..config.resamples)
        .map(|_| sorted.auroc(labels, sampler.draw(), pos as u64, neg as u64))
        .collect();
    Ok(interval(estimate, replicates, config))
}

/// Paired percentile bootstrap interval for `AUROC(scores_a) - AUROC(scores_b)` on the same
/// images: each stratified resample of images is scored under both variants, so the
/// correlation between A and B is kept.
pub fn bootstrap_auroc_diff_ci(
    labels: &[bool],
    scores_a: &[f64],
    scores_b: &[f64],
    config: &BootstrapConfig,
) -> Result<BootstrapCi, MetricsError> {
    check_bootstrap(config)?;
    let (pos, neg) = check(labels, scores_a)?;
    check(labels, scores_b)?;
    let estimate = auroc(labels, scores_a)? - auroc(labels, scores_b)?;
    let (sorted_a, sorted_b) = (WeightedAuroc::new(scores_a), WeightedAuroc::new(scores_b));
    let mut sampler = StratifiedSampler::new(labels, config.seed);
    let (pos, neg) = (pos as u64, neg as u64);
    let replicates = (0..config.resamples)
        .map(|_| {
            let w = sampler.draw();
            sorted_a.auroc(labels, w, pos, neg) - sorted_b.auroc(labels, w, pos, neg)
        })
        .collect();
    Ok(interval(estimate, replicates, config))
}

/// Midranks (1-based, ties get the mean of their ranks) of `values`.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j share their mean.
        let mid = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = mid;
        }
        i = j;
    }
    ranks
}

/// DeLong's structural components of one score vector: `V10[i]` for each anomalous image (the
/// share of good images it outranks, ties one half) and `V01[j]` for each good image (the share
/// of anomalous images that outrank it). Both average to the AUROC.
fn structural_components(
    labels: &[bool],
    scores: &[f64],
    pos: usize,
    neg: usize,
) -> (Vec<f64>, Vec<f64>) {
    let (xs, ys): (Vec<f64>, Vec<f64>) = {
        let mut xs = Vec::with_capacity(pos);
        let mut ys = Vec::with_capacity(neg);
        for (&l, &s) in labels.iter().zip(scores) {
            if l { xs.push(s) } else { ys.push(s) }
        }
        (xs, ys)
    };
    // Sun & Xu: the rank of x_i among all minus its rank among the positives counts the good
    // images below it (ties one half); likewise for y_j.
    let tx = midranks(&xs);
    let ty = midranks(&ys);
    let tz = midranks(&[xs.as_slice(), ys.as_slice()].concat());
    let v10 = (0..pos).map(|i| (tz[i] - tx[i]) / neg as f64).collect();
    let v01 = (0..neg)
        .map(|j| 1.0 - (tz[pos + j] - ty[j]) / pos as f64)
        .collect();
    (v10, v01)
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - ma) * (y - mb))
        .sum::<f64>()
        / (n - 1.0)
}

fn delong_counts(labels: &[bool], scores: &[f64]) -> Result<(usize, usize), MetricsError> {
    let (pos, neg) = check(labels, scores)?;
    if pos < 2 {
        return Err(MetricsError::TooFew {
            what: "DeLong's variance: anomalous images",
            needed: 2,
            got: pos,
        });
    }
    if neg < 2 {
        return Err(MetricsError::TooFew {
            what: "DeLong's variance: good images",
            needed: 2,
            got: neg,
        });
    }
    Ok((pos, neg))
}

/// AUROC with DeLong's variance estimate, in O(n log n). Needs at least two images of each
/// class.
pub fn delong_auroc(labels: &[bool], scores: &[f64]) -> Result<DeLongAuroc, MetricsError> {
    let (pos, neg) = delong_counts(labels, scores)?;
    let (v10, v01) = structural_components(labels, scores, pos, neg);
    let auroc = v10.iter().sum::<f64>() / pos as f64;
    let variance = covariance(&v10, &v10) / pos as f64 + covariance(&v01, &v01) / neg as f64;
    Ok(DeLongAuroc {
        auroc,
        variance,
        std_error: variance.sqrt(),
    })
}

impl DeLongAuroc {
    /// Normal-approximation confidence interval `auroc ± z * std_error`, clipped to [0, 1].
    pub fn ci(&self, confidence: f64) -> Result<(f64, f64), MetricsError> {
        check_confidence(confidence)?;
        let z = normal_quantile(0.5 + confidence / 2.0);
        Ok((
            (self.auroc - z * self.std_error).max(0.0),
            (self.auroc + z * self.std_error).min(1.0),
        ))
    }
}

/// DeLong's test of two correlated AUROCs: variants A and B scored on the same images
/// (`labels[i]`, `scores_a[i]`, `scores_b[i]` belong to image `i`).
///
/// `z = (AUROC_A - AUROC_B) / sqrt(var_A + var_B - 2 cov_AB)`, two-sided normal p-value.
/// When the difference and its variance are both zero (e.g. B is a monotone transform of A),
/// `z = 0` and `p = 1`; a non-zero difference with zero variance is an error.
pub fn delong_test(
    labels: &[bool],
    scores_a: &[f64],
    scores_b: &[f64],
) -> Result<DeLongComparison, MetricsError> {
    let (pos, neg) = delong_counts(labels, scores_a)?;
    delong_counts(labels, scores_b)?;
    let (a10, a01) = structural_components(labels, scores_a, pos, neg);
    let (b10, b01) = structural_components(labels, scores_b, pos, neg);
    let (p, q) = (pos as f64, neg as f64);
    let auroc_a = a10.iter().sum::<f64>() / p;
    let auroc_b = b10.iter().sum::<f64>() / p;
    let variance_a = covariance(&a10, &a10) / p + covariance(&a01, &a01) / q;
    let variance_b = covariance(&b10, &b10) / p + covariance(&b01, &b01) / q;
    let cov = covariance(&a10, &b10) / p + covariance(&a01, &b01) / q;
    let var_diff = (variance_a + variance_b - 2.0 * cov).max(0.0);
    let difference = auroc_a - auroc_b;
    let std_error = var_diff.sqrt();
    let (z, p_value) = z_test(difference, std_error, "DeLong's test")?;
    Ok(DeLongComparison {
        auroc_a,
        auroc_b,
        difference,
        variance_a,
        variance_b,
        covariance: cov,
        std_error,
        z,
        p_value,
    })
}

fn z_test(difference: f64, std_error: f64, what: &'static str) -> Result<(f64, f64), MetricsError> {
    if std_error > 0.0 {
        let z = difference / std_error;
        Ok((z, (2.0 * normal_sf(z.abs())).min(1.0)))
    } else if difference == 0.0 {
        Ok((0.0, 1.0))
    } else {
        Err(MetricsError::ZeroVariance(what))
    }
}

impl DeLongComparison {
    /// Normal-approximation confidence interval of `auroc_a - auroc_b`.
    pub fn ci(&self, confidence: f64) -> Result<(f64, f64), MetricsError> {
        check_confidence(confidence)?;
        let z = normal_quantile(0.5 + confidence / 2.0);
        Ok((
            self.difference - z * self.std_error,
            self.difference + z * self.std_error,
        ))
    }
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

/// Formats a p-value: four decimals down to 0.001, then scientific notation.
pub fn format_p(p: f64) -> String {
    if p >= 1e-3 {
        format!("{p:.4}")
    } else if p > 0.0 {
        format!("{p:.2e}")
    } else {
        "< 1e-300".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midranks_share_ties() {
        assert_eq!(midranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_estimate() {
        let labels: Vec<bool> = (0..60).map(|i| i % 3 == 0).collect();
        let scores: Vec<f64> = (0..60)
            .map(|i| ((i * 37) % 11) as f64 + if i % 3 == 0 { 3.0 } else { 0.0 })
            .collect();
        let cfg = BootstrapConfig {
            resamples: 500,
            ..Default::default()
        };
        let a = bootstrap_auroc_ci(&labels, &scores, &cfg).unwrap();
        let b = bootstrap_auroc_ci(&labels, &scores, &cfg).unwrap();
        assert_eq!(a, b);
        assert!(a.lower <= a.estimate && a.estimate <= a.upper);
        let c = bootstrap_auroc_ci(&labels, &scores, &BootstrapConfig { seed: 1, ..cfg }).unwrap();
        assert_ne!(a.lower, c.lower);
        assert!(
            bootstrap_auroc_ci(
                &labels,
                &scores,
                &BootstrapConfig {
                    resamples: 0,
                    ..cfg
                }
            )
            .is_err()
        );
    }

    #[test]
    fn paired_degenerate_cases() {
        let same = paired_comparison(&[0.9, 0.8], &[0.9, 0.8]).unwrap();
        assert_eq!((same.t, same.p_value), (0.0, 1.0));
        assert_eq!(
            paired_comparison(&[1.0, 2.0], &[0.5, 1.5]),
            Err(MetricsError::ZeroVariance("paired t-test"))
        );
        assert!(matches!(
            paired_comparison(&[0.9], &[0.8]),
            Err(MetricsError::TooFew { .. })
        ));
        assert!(matches!(
            paired_comparison(&[0.9, f64::NAN], &[0.8, 0.1]),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
    }
}
