//! Threshold metrics of one labelled score vector: AUROC, the ROC curve, average precision,
//! F1-max and TPR at a fixed FPR.
//!
//! An image is predicted anomalous at threshold `t` when its score is `>= t`, the convention
//! of scikit-learn's `roc_curve` and `precision_recall_curve`. All metrics are computed on the
//! distinct scores, so tied images always move together.

use crate::{MetricsError, check};

/// One labelled score vector sorted once, summarised at each distinct score.
///
/// Build it with [`Ranking::new`] when several metrics are needed for the same images; the
/// free functions ([`auroc`], [`roc_curve`], ...) build one each time.
#[derive(Debug, Clone)]
pub struct Ranking {
    /// Distinct scores, descending.
    thresholds: Vec<f64>,
    /// Anomalous images with score `>= thresholds[k]`.
    tps: Vec<u64>,
    /// Good images with score `>= thresholds[k]`.
    fps: Vec<u64>,
    positives: u64,
    negatives: u64,
}

/// Points of a ROC curve, in order of decreasing threshold, as scikit-learn's `roc_curve`
/// returns them: the first point is `(0, 0)` at threshold `+inf`, the last is `(1, 1)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The best F1 score over all thresholds, and where it is reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F1Max {
    pub f1: f64,
    /// The highest threshold that reaches `f1` (predict anomalous when `score >= threshold`).
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
}

/// The true-positive rate at the best operating point whose false-positive rate does not
/// exceed a bound (no interpolation between ROC points).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TprAtFpr {
    /// The bound asked for.
    pub max_fpr: f64,
    pub tpr: f64,
    /// The FPR actually reached, `<= max_fpr`.
    pub fpr: f64,
    /// Predict anomalous when `score >= threshold`; `+inf` when no finite threshold keeps the
    /// FPR within the bound (then `tpr` is 0).
    pub threshold: f64,
}

/// Sorts `(score, label)` pairs by descending score; `-0.0` is folded into `0.0`.
fn sorted_desc(labels: &[bool], scores: &[f64]) -> Vec<(f64, bool)> {
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &l)| (s + 0.0, l))
        .collect();
    pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    pairs
}

/// Area under the ROC curve, exact with ties (Mann–Whitney U, a tie counts one half),
/// in O(n log n).
///
/// Equals scikit-learn's `roc_auc_score` (up to its floating-point trapezoid sums). The
/// numerator is counted exactly in integers, so the result is a correctly rounded ratio for
/// up to 2^27 (about 134 million) images.
pub fn auroc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricsError> {
    let (pos, neg) = check(labels, scores)?;
    let pairs = sorted_desc(labels, scores);
    // Twice the Mann–Whitney U, walking tie groups from the top: each good image in a group
    // ranks below the anomalous images above the group (2 each) and ties with the anomalous
    // images inside it (1 each).
    let mut twice_u: u128 = 0;
    let mut tp_above: u64 = 0;
    let mut i = 0;
    while i < pairs.len() {
        let s = pairs[i].0;
        let (mut dtp, mut dfp) = (0u64, 0u64);
        while i < pairs.len() && pairs[i].0 == s {
            if pairs[i].1 {
                dtp += 1;
            } else {
                dfp += 1;
            }
            i += 1;
        }
        twice_u += dfp as u128 * (2 * tp_above + dtp) as u128;
        tp_above += dtp;
    }
    Ok(twice_u as f64 / (2.0 * pos as f64 * neg as f64))
}

/// The ROC curve as scikit-learn's `roc_curve(labels, scores, drop_intermediate=...)`.
pub fn roc_curve(
    labels: &[bool],
    scores: &[f64],
    drop_intermediate: bool,
) -> Result<RocCurve, MetricsError> {
    Ok(Ranking::new(labels, scores)?.roc_curve(drop_intermediate))
}

/// Average precision as scikit-learn's `average_precision_score`: the step-function integral
/// `sum_k (R_k - R_{k-1}) P_k` over distinct thresholds, without interpolation.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64, MetricsError> {
    Ok(Ranking::new(labels, scores)?.average_precision())
}

/// The maximum F1 score over all thresholds, with the threshold that reaches it.
pub fn f1_max(labels: &[bool], scores: &[f64]) -> Result<F1Max, MetricsError> {
    Ok(Ranking::new(labels, scores)?.f1_max())
}

/// The TPR at the best threshold whose FPR is at most `max_fpr` (in `[0, 1]`).
pub fn tpr_at_fpr(labels: &[bool], scores: &[f64], max_fpr: f64) -> Result<TprAtFpr, MetricsError> {
    Ranking::new(labels, scores)?.tpr_at_fpr(max_fpr)
}

impl Ranking {
    /// Validates and sorts the scores (O(n log n)). Errors on empty input, mismatched lengths,
    /// non-finite scores, or a single class.
    pub fn new(labels: &[bool], scores: &[f64]) -> Result<Self, MetricsError> {
        let (pos, neg) = check(labels, scores)?;
        let pairs = sorted_desc(labels, scores);
        let mut thresholds = Vec::new();
        let mut tps = Vec::new();
        let mut fps = Vec::new();
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut i = 0;
        while i < pairs.len() {
            let s = pairs[i].0;
            while i < pairs.len() && pairs[i].0 == s {
                if pairs[i].1 {
                    tp += 1;
                } else {
                    fp += 1;
                }
                i += 1;
            }
            thresholds.push(s);
            tps.push(tp);
            fps.push(fp);
        }
        Ok(Ranking {
            thresholds,
            tps,
            fps,
            positives: pos as u64,
            negatives: neg as u64,
        })
    }

    /// Number of anomalous images.
    pub fn positives(&self) -> usize {
        self.positives as usize
    }

    /// Number of good images.
    pub fn negatives(&self) -> usize {
        self.negatives as usize
    }

    /// Number of distinct scores.
    pub fn distinct_scores(&self) -> usize {
        self.thresholds.len()
    }

    /// Exact AUROC with ties counted one half; see [`auroc`].
    pub fn auroc(&self) -> f64 {
        let mut twice_u: u128 = 0;
        let (mut tp_prev, mut fp_prev) = (0u64, 0u64);
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            let (dtp, dfp) = (tp - tp_prev, fp - fp_prev);
            twice_u += dfp as u128 * (2 * tp_prev + dtp) as u128;
            (tp_prev, fp_prev) = (tp, fp);
        }
        twice_u as f64 / (2.0 * self.positives as f64 * self.negatives as f64)
    }

    /// The ROC curve; with `drop_intermediate` the points that scikit-learn drops (those whose
    /// second differences of both FP and TP counts vanish) are dropped too.
    pub fn roc_curve(&self, drop_intermediate: bool) -> RocCurve {
        let n = self.thresholds.len();
        let keep: Vec<usize> = if drop_intermediate && n > 2 {
            let second_diff_nonzero = |v: &[u64], k: usize| v[k + 1] + v[k - 1] != 2 * v[k];
            (0..n)
                .filter(|&k| {
                    k == 0
                        || k == n - 1
                        || second_diff_nonzero(&self.fps, k)
                        || second_diff_nonzero(&self.tps, k)
                })
                .collect()
        } else {
            (0..n).collect()
        };
        let mut curve = RocCurve {
            fpr: Vec::with_capacity(keep.len() + 1),
            tpr: Vec::with_capacity(keep.len() + 1),
            thresholds: Vec::with_capacity(keep.len() + 1),
        };
        curve.fpr.push(0.0);
        curve.tpr.push(0.0);
        curve.thresholds.push(f64::INFINITY);
        let (p, q) = (self.positives as f64, self.negatives as f64);
        for k in keep {
            curve.fpr.push(self.fps[k] as f64 / q);
            curve.tpr.push(self.tps[k] as f64 / p);
            curve.thresholds.push(self.thresholds[k]);
        }
        curve
    }

    /// Average precision; see [`average_precision`].
    pub fn average_precision(&self) -> f64 {
        let mut sum = 0.0;
        let mut tp_prev = 0u64;
        for (&tp, &fp) in self.tps.iter().zip(&self.fps) {
            if tp > tp_prev {
                sum += (tp - tp_prev) as f64 * (tp as f64 / (tp + fp) as f64);
            }
            tp_prev = tp;
        }
        sum / self.positives as f64
    }

    /// F1-max; see [`f1_max`]. Ties between thresholds go to the highest threshold.
    pub fn f1_max(&self) -> F1Max {
        let p = self.positives;
        let mut best = F1Max {
            f1: 0.0,
            threshold: f64::INFINITY,
            precision: 0.0,
            recall: 0.0,
        };
        for k in 0..self.thresholds.len() {
            let (tp, fp) = (self.tps[k], self.fps[k]);
            // 2PR / (P + R) = 2 tp / (2 tp + fp + fn), computed from integer counts.
            let f1 = (2 * tp) as f64 / (tp + fp + p) as f64;
            if f1 > best.f1 {
                best = F1Max {
                    f1,
                    threshold: self.thresholds[k],
                    precision: tp as f64 / (tp + fp) as f64,
                    recall: tp as f64 / p as f64,
                };
            }
        }
        best
    }

    /// TPR at FPR `<= max_fpr`; see [`tpr_at_fpr`].
    pub fn tpr_at_fpr(&self, max_fpr: f64) -> Result<TprAtFpr, MetricsError> {
        if !(0.0..=1.0).contains(&max_fpr) {
            return Err(MetricsError::InvalidArgument(format!(
                "the FPR bound must lie in [0, 1], got {max_fpr}"
            )));
        }
        let q = self.negatives as f64;
        // FP counts grow as the threshold falls: the last point within the bound has the
        // highest TPR among them.
        let within = self.fps.partition_point(|&fp| fp as f64 / q <= max_fpr);
        Ok(if within == 0 {
            TprAtFpr {
                max_fpr,
                tpr: 0.0,
                fpr: 0.0,
                threshold: f64::INFINITY,
            }
        } else {
            let k = within - 1;
            TprAtFpr {
                max_fpr,
                tpr: self.tps[k] as f64 / self.positives as f64,
                fpr: self.fps[k] as f64 / q,
                threshold: self.thresholds[k],
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranking_matches_free_auroc() {
        let labels = [false, true, false, true, true, false];
        let scores = [0.3, 0.3, 0.1, 0.9, -0.0, 0.0];
        let r = Ranking::new(&labels, &scores).unwrap();
        assert_eq!(r.auroc(), auroc(&labels, &scores).unwrap());
        // -0.0 and 0.0 are one tie group.
        assert_eq!(r.distinct_scores(), 4);
    }

    #[test]
    fn small_curve_by_hand() {
        let labels = [false, false, true, true];
        let scores = [0.1, 0.4, 0.35, 0.8];
        let c = roc_curve(&labels, &scores, false).unwrap();
        assert_eq!(c.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(c.tpr, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(c.thresholds, vec![f64::INFINITY, 0.8, 0.4, 0.35, 0.1]);
        // AP: recall 0.5 at precision 1, recall 1 at precision 2/3.
        let ap = average_precision(&labels, &scores).unwrap();
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-15);
        let f = f1_max(&labels, &scores).unwrap();
        assert_eq!((f.f1, f.threshold), (0.8, 0.35));
        let t = tpr_at_fpr(&labels, &scores, 0.0).unwrap();
        assert_eq!((t.tpr, t.threshold), (0.5, 0.8));
        let t = tpr_at_fpr(&labels, &scores, 0.5).unwrap();
        assert_eq!((t.tpr, t.fpr, t.threshold), (1.0, 0.5, 0.35));
        assert!(tpr_at_fpr(&labels, &scores, 1.5).is_err());
    }

    #[test]
    fn tpr_at_fpr_with_top_score_good() {
        let labels = [false, true, true];
        let t = tpr_at_fpr(&labels, &[1.0, 0.5, 0.2], 0.0).unwrap();
        assert_eq!((t.tpr, t.fpr, t.threshold), (0.0, 0.0, f64::INFINITY));
    }
}
