//! Image- and pixel-level anomaly-detection metrics for AttentDifferNet, and the statistics that say
//! whether one attention variant really beats another. Free of any tensor library.
//!
//! Conventions: scores are `f64`, higher means more anomalous; labels are `true` for anomalous
//! images. Every function validates its input and returns a [`MetricsError`] rather than a
//! silent number (empty input, a single class, NaN or infinite scores, mismatched lengths).
//!
//! What is here:
//! - [`roc`]: exact AUROC with ties (Mann–Whitney, a tie counts one half) in O(n log n), the
//!   ROC curve as scikit-learn's `roc_curve` draws it, average precision as scikit-learn's
//!   `average_precision_score` defines it, F1-max with its threshold, TPR at a fixed FPR.
//!   [`Ranking`] sorts once and answers all of them.
//! - [`pixel`]: where masks exist, pixel AUROC and AUPRO (the per-region-overlap curve up to
//!   30 % FPR, normalised, as MVTec AD defines it) over anomaly maps.
//! - [`stats`]: a stratified, seeded bootstrap confidence interval for AUROC (and for the
//!   difference of two AUROCs on the same images), DeLong's variance and his test for two
//!   correlated AUROCs, and a paired comparison across seeds (mean difference, its standard
//!   deviation, a paired t-test).
//! - [`special`]: the normal and Student-t distribution functions those tests need.
//! - [`scores_file`]: reading `label,score[,defect]` CSV files (a run's `scores.csv` with header
//!   `path,category,defect,label,score` as it is) and the text reports behind
//!   `adn metrics --scores FILE` ([`report_scores_file`]) and `adn metrics --compare A B`
//!   ([`compare_scores_files`]).
//!
//! ```
//! use adn_metrics::{auroc, delong_test, paired_comparison};
//!
//! let labels = [false, false, true, true, false, true];
//! let a = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9];
//! let b = [0.3, 0.2, 0.25, 0.7, 0.6, 0.5];
//! assert_eq!(auroc(&labels, &a)?, 8.0 / 9.0);
//! let test = delong_test(&labels, &a, &b)?; // variant A vs variant B on the same images
//! assert!(test.p_value > 0.05);
//!
//! // Image AUROC of A and B over three seeds.
//! let seeds = paired_comparison(&[0.981, 0.975, 0.979], &[0.962, 0.958, 0.963])?;
//! assert_eq!(
//!     seeds.format_pp(),
//!     "+1.73 ± 0.15 pp (mean ± sd over 3 seeds), p = 0.0026"
//! );
//! # Ok::<(), adn_metrics::MetricsError>(())
//! ```

pub mod pixel;
pub mod roc;
pub mod scores_file;
pub mod special;
pub mod stats;

pub use pixel::{PixelImage, aupro, pixel_auroc, pro_curve};
pub use roc::{
    F1Max, Ranking, RocCurve, TprAtFpr, auroc, average_precision, f1_max, roc_curve, tpr_at_fpr,
};
pub use scores_file::{
    ReportOptions, ScoreRow, ScoresError, ScoresFile, compare_scores, compare_scores_files,
    compare_scores_files_with, report_scores, report_scores_file, report_scores_file_with,
};
pub use stats::{
    BootstrapCi, BootstrapConfig, DeLongAuroc, DeLongComparison, PairedComparison,
    bootstrap_auroc_ci, bootstrap_auroc_diff_ci, delong_auroc, delong_test, holm_adjust,
    paired_comparison,
};

/// Why a metric could not be computed. Never a silent number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("no scores given")]
    Empty,
    #[error("{labels} labels but {scores} scores")]
    LengthMismatch { labels: usize, scores: usize },
    #[error("only one class present ({0}); AUROC needs good and anomalous images")]
    SingleClass(&'static str),
    #[error("score {index} is not finite ({value})")]
    NonFinite { index: usize, value: f64 },
    /// A statistic needs more observations than it was given (e.g. DeLong's variance needs at
    /// least two images of each class, a paired test at least two seeds).
    #[error("{what}: needs at least {needed}, got {got}")]
    TooFew {
        what: &'static str,
        needed: usize,
        got: usize,
    },
    /// A test statistic would divide a non-zero difference by a zero standard error.
    #[error("{0}: the difference is non-zero but its variance is zero, so no p-value exists")]
    ZeroVariance(&'static str),
    /// A parameter outside its domain (a confidence level outside (0, 1), zero resamples, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

/// Checks one labelled score vector and returns (positives, negatives).
pub(crate) fn check(labels: &[bool], scores: &[f64]) -> Result<(usize, usize), MetricsError> {
    if labels.len() != scores.len() {
        return Err(MetricsError::LengthMismatch {
            labels: labels.len(),
            scores: scores.len(),
        });
    }
    if scores.is_empty() {
        return Err(MetricsError::Empty);
    }
    check_finite(scores)?;
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    match (pos, neg) {
        (0, _) => Err(MetricsError::SingleClass("all good")),
        (_, 0) => Err(MetricsError::SingleClass("all anomalous")),
        _ => Ok((pos, neg)),
    }
}

pub(crate) fn check_finite(values: &[f64]) -> Result<(), MetricsError> {
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((index, &value)) => Err(MetricsError::NonFinite { index, value }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_inverted_and_tied() {
        let labels = [false, false, true, true];
        assert_eq!(auroc(&labels, &[0.1, 0.2, 0.3, 0.4]).unwrap(), 1.0);
        assert_eq!(auroc(&labels, &[0.4, 0.3, 0.2, 0.1]).unwrap(), 0.0);
        assert_eq!(auroc(&labels, &[1.0; 4]).unwrap(), 0.5);
        // One tie between a good and an anomalous image: 3 wins + 0.5 out of 4 pairs.
        assert_eq!(auroc(&labels, &[0.1, 0.3, 0.3, 0.4]).unwrap(), 0.875);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert_eq!(auroc(&[], &[]), Err(MetricsError::Empty));
        assert!(matches!(
            auroc(&[true, true], &[0.0, 1.0]),
            Err(MetricsError::SingleClass(_))
        ));
        assert!(matches!(
            auroc(&[true, false], &[f64::NAN, 1.0]),
            Err(MetricsError::NonFinite { index: 0, .. })
        ));
        assert!(matches!(
            auroc(&[true, false], &[0.0, f64::NEG_INFINITY]),
            Err(MetricsError::NonFinite { index: 1, .. })
        ));
        assert_eq!(
            auroc(&[true], &[0.0, 1.0]),
            Err(MetricsError::LengthMismatch {
                labels: 1,
                scores: 2
            })
        );
    }
}
