//! Uncertainty of AUROC and tests that say whether a variant really helps.
//!
//! - [`bootstrap_auroc_ci`] / [`bootstrap_auroc_diff_ci`]: stratified, seeded percentile
//!   bootstrap of one AUROC or of the difference of two on the same images.
//! - [`delong_auroc`] / [`delong_test`]: DeLong, DeLong & Clarke-Pearson (1988) variance of an
//!   AUROC and the z-test for two correlated AUROCs on the same images, computed with the
//!   O(n log n) midrank algorithm of Sun & Xu (2014).
//! - [`paired_comparison`]: one metric of variants A and B over the same seeds: mean
//!   difference, its standard deviation, and a paired t-test.

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
