//! Uncertainty of AUROC and tests that say whether a variant really helps.
//!
//! - [`bootstrap_auroc_ci`] / [`bootstrap_auroc_diff_ci`]: stratified, seeded percentile
//!   bootstrap of one AUROC or of the difference of two on the same images.
//! - [`delong_auroc`] / [`delong_test`]: DeLong, DeLong & Clarke-Pearson (1988) variance of an
//!   AUROC and the z-test for two correlated AUROCs on the same images, computed with the
//!   O(n log n) midrank algorithm of Sun & Xu (2014).
//! - [`paired_comparison`]: one metric of variants A and B over the same seeds: mean
//!   difference, its standard deviation, and a paired t-test.
//! - [`holm_adjust`]: Holm's step-down correction of a family of p-values.

use crate::MetricsError;

mod bootstrap;
mod delong;
mod paired;

pub use bootstrap::*;
pub use delong::*;
pub use paired::*;

fn check_confidence(confidence: f64) -> Result<(), MetricsError> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidArgument(format!(
            "confidence level must lie in (0, 1), got {confidence}"
        )))
    }
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

/// Holm's (1979) step-down adjustment of a family of p-values, returned in the given order:
/// sorted ascending, the i-th smallest (from 0) is multiplied by `m − i`, the running maximum
/// taken so the adjusted values keep the raw order, and capped at 1. Rejecting where the
/// adjusted p is below α controls the family-wise error rate at α, under any dependence
/// between the tests. NaN entries (no test) are left NaN and are not counted in `m`.
pub fn holm_adjust(p: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = order.len();
    let mut adjusted = vec![f64::NAN; p.len()];
    let mut running = 0.0_f64;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
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
    fn holm_matches_rs_p_adjust() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005), "holm") = 0.03 0.06 0.06 0.02
        let adjusted = holm_adjust(&[0.01, 0.04, 0.03, 0.005]);
        for (a, want) in adjusted.iter().zip([0.03, 0.06, 0.06, 0.02]) {
            assert!((a - want).abs() < 1e-12, "{adjusted:?}");
        }
        // NaN stays NaN and does not count: m = 2 here.
        let with_nan = holm_adjust(&[0.02, f64::NAN, 0.5]);
        assert!((with_nan[0] - 0.04).abs() < 1e-12 && with_nan[1].is_nan());
        assert!((with_nan[2] - 0.5).abs() < 1e-12);
        // Capped at 1, and never below the raw p.
        assert_eq!(holm_adjust(&[0.6, 0.7]), vec![1.0, 1.0]);
        assert!(holm_adjust(&[]).is_empty());
    }

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
