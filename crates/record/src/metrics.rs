//! `metrics.json`: the image-level AUROC of a run, after every meta-epoch and summarised.

use serde::{Deserialize, Serialize};

/// One evaluation after a meta-epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalPoint {
    /// Counted from 0.
    pub meta_epoch: usize,
    /// Mean training loss over the meta-epoch.
    pub train_loss: f64,
    pub auroc: f64,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsRecord {
    /// AUROC after the last meta-epoch: the headline number, no model selection.
    pub auroc_last: f64,
    /// Maximum AUROC over all evaluations. Selected on the test set, as DifferNet-style
    /// papers report it; optimistic by construction.
    pub auroc_best: f64,
    pub auroc_best_epoch: usize,
    pub auroc_best_selection: String,
    /// AUROC at the meta-epoch with the lowest mean training loss (selection without labels).
    pub auroc_min_loss: f64,
    pub auroc_min_loss_epoch: usize,
    pub trajectory: Vec<EvalPoint>,
    /// The model's state before training, then after every meta-epoch: what a collapse
    /// shows in. Absent in records written before diagnostics existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostics>,
    /// How well the last model's anomaly maps find the defects, where the test set has
    /// ground-truth masks. Beyond the paper, which reports image AUROC only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixel: Option<PixelMetrics>,
    /// Score thresholds for calling an image anomalous (`score >= value`), named for
    /// `adn predict --threshold`: from held-out good training images and a labelled
    /// validation folder where the run has them, and the test set's F1-optimal one, marked
    /// as chosen on the test set.
    /// Absent in records written before thresholds existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<Threshold>,
}

/// A score threshold and what it was chosen on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    /// What `adn predict --threshold` calls it: `good-q99`, `good-q99.9` (quantiles of the
    /// held-out good images' scores), `validation-f1` (F1-optimal on the labelled
    /// validation folder), `test-f1` (F1-optimal on the test set).
    pub name: String,
    pub value: f64,
    /// What it was chosen on, in words, with its caveats.
    pub chosen_on: String,
    /// Images it was chosen on.
    pub images: usize,
    /// Whether it was chosen on the test set, whose metrics it then flatters.
    pub on_test_set: bool,
}

impl Threshold {
    /// Name of the F1-optimal threshold on the test set.
    pub const TEST_F1: &'static str = "test-f1";
    /// Name of the F1-optimal threshold on the labelled validation folder.
    pub const VALIDATION_F1: &'static str = "validation-f1";

    /// The held-out good images' `q` quantile (linear interpolation between order
    /// statistics, numpy's default) as a threshold named `good-q<100·q>`; `None` without
    /// scores. With fewer than `1 / (1 − q)` images the quantile lies among the top scores
    /// and does not bound the false-alarm rate at `1 − q`; `chosen_on` says so.
    pub fn good_quantile(scores: &[f64], q: f64) -> Option<Threshold> {
        let mut sorted: Vec<f64> = scores.to_vec();
        if sorted.is_empty() || sorted.iter().any(|s| !s.is_finite()) {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let pos = q * (sorted.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let value = sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64);
        let n = sorted.len();
        let percent = (q * 1000.0).round() / 10.0;
        let rate = ((1.0 - q) * 1000.0).round() / 10.0;
        let mut chosen_on = format!(
            "the {percent} % quantile of the scores of {n} good training images held out \
             from training (train.validation_fraction): about {rate} % of good images score \
             above it"
        );
        if (n as f64) < 1.0 / (1.0 - q) {
            chosen_on.push_str(&format!(
                "; with {n} images (fewer than {:.0}) it lies among the highest scores and \
                 does not bound the false-alarm rate",
                1.0 / (1.0 - q)
            ));
        }
        Some(Threshold {
            name: format!("good-q{percent}"),
            value,
            chosen_on,
            images: n,
            on_test_set: false,
        })
    }
}

/// The pixel-level evaluation of DifferNet's anomaly map (the gradient of the anomaly score
/// with respect to the input pixels) after the last meta-epoch, over every test image, good
/// ones included, at the model's input size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PixelMetrics {
    /// How the map was made, in words.
    pub map: String,
    /// Pixel-wise AUROC over every pixel of every test image.
    pub auroc: f64,
    /// Area under the PRO curve up to `aupro_max_fpr`, divided by that limit (MVTec AD's).
    pub aupro: f64,
    pub aupro_max_fpr: f64,
    /// Fraction of the anomalous test images whose map has its maximum inside the mask.
    pub peak_in_mask: f64,
    /// Test images with a map; of those, anomalous ones (all have masks).
    pub images: usize,
    pub anomalous: usize,
    /// Side of the square maps and masks, in pixels.
    pub size: usize,
    /// Test rotations the map averages over, and its Gaussian smoothing in pixels.
    pub rotations: usize,
    pub sigma_px: f64,
    /// Seconds spent computing the maps and metrics.
    pub wall_s: f64,
}

/// What the features, the loss and the attention gates looked like at one point of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Diagnostics {
    /// The meta-epoch after which this was measured, counted from 0; `None` before training.
    pub meta_epoch: Option<usize>,
    /// The mean training loss split into its parts (each per dimension, mean over the
    /// meta-epoch's batches), which add up to the trajectory's `train_loss`: `0.5·‖z‖²`,
    /// `−log|det J|` and the weighted volume charge (0 unless `train.volume_charge` is set).
    /// `None` before training.
    pub loss: Option<LossParts>,
    /// Mean L2 norm of the whole pooled feature vector over training and test rows.
    pub norm_train: f64,
    pub norm_test: f64,
    /// The same per feature layer and scale.
    pub feature_norms: Vec<LayerNorm>,
    /// Mean and sd of every attention gate over training rows; empty without attention and
    /// for attention frozen at its init, whose gates never change (measured only where
    /// the frozen prefix is at hand, under joint training).
    pub gates: Vec<GateRecord>,
}

/// The parts of the training loss, per dimension.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossParts {
    pub z: f64,
    pub neg_log_det: f64,
    pub volume_charge: f64,
}

/// Mean L2 norm of one layer's pooled block at one scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNorm {
    pub layer: String,
    pub scale: usize,
    pub train: f64,
    pub test: f64,
}

/// Mean and sd of one gate (`channel` or `spatial`) at one attention position and scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRecord {
    pub position: String,
    pub scale: usize,
    pub gate: String,
    pub mean: f64,
    pub sd: f64,
}

impl MetricsRecord {
    /// The summary of a run's evaluations; `None` when there were none. The earliest
    /// evaluation wins ties.
    pub fn from_trajectory(trajectory: Vec<EvalPoint>) -> Option<MetricsRecord> {
        let first = *trajectory.first()?;
        let last = *trajectory.last()?;
        let best = trajectory
            .iter()
            .fold(first, |b, p| if p.auroc > b.auroc { *p } else { b });
        let min_loss =
            trajectory.iter().fold(
                first,
                |b, p| {
                    if p.train_loss < b.train_loss { *p } else { b }
                },
            );
        Some(MetricsRecord {
            auroc_last: last.auroc,
            auroc_best: best.auroc,
            auroc_best_epoch: best.meta_epoch,
            auroc_best_selection: "maximum over evaluations, selected on the test set".into(),
            auroc_min_loss: min_loss.auroc,
            auroc_min_loss_epoch: min_loss.meta_epoch,
            trajectory,
            diagnostics: Vec::new(),
            pixel: None,
            thresholds: Vec::new(),
        })
    }
}

impl Diagnostics {
    /// Whether every number is finite: JSON has no NaN, and a strict reader refuses `null`.
    pub fn is_finite(&self) -> bool {
        let loss = self.loss.is_none_or(|l| {
            [l.z, l.neg_log_det, l.volume_charge]
                .iter()
                .all(|v| v.is_finite())
        });
        loss && self.norm_train.is_finite()
            && self.norm_test.is_finite()
            && self
                .feature_norms
                .iter()
                .all(|n| n.train.is_finite() && n.test.is_finite())
            && self
                .gates
                .iter()
                .all(|g| g.mean.is_finite() && g.sd.is_finite())
    }
}

impl MetricsRecord {
    /// The training features' mean norm after the last meta-epoch over its value before
    /// training: near 1 when attention leaves the scale alone, far below 1 in a collapse.
    pub fn feature_norm_ratio(&self) -> Option<f64> {
        let start = self.diagnostics.iter().find(|d| d.meta_epoch.is_none())?;
        let last = self
            .diagnostics
            .iter()
            .rev()
            .find(|d| d.meta_epoch.is_some())?;
        (start.norm_train > 0.0).then(|| last.norm_train / start.norm_train)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_takes_the_last_the_best_and_the_lowest_loss_with_early_ties() {
        let p = |meta_epoch, train_loss, auroc| EvalPoint {
            meta_epoch,
            train_loss,
            auroc,
        };
        let m = MetricsRecord::from_trajectory(vec![
            p(0, 1.0, 0.7),
            p(1, 0.5, 0.9),
            p(2, 0.5, 0.9),
            p(3, 0.7, 0.8),
        ])
        .unwrap();
        assert_eq!(m.auroc_last, 0.8);
        assert_eq!((m.auroc_best, m.auroc_best_epoch), (0.9, 1));
        assert_eq!((m.auroc_min_loss, m.auroc_min_loss_epoch), (0.9, 1));
        assert!(MetricsRecord::from_trajectory(Vec::new()).is_none());
    }

    #[test]
    fn quantile_thresholds_interpolate_as_numpy_and_say_when_too_few_images() {
        // numpy.quantile([5, 1, 4, 2, 3], 0.99) = 4.96; ([...], 0.999) = 4.996.
        let scores = [5.0, 1.0, 4.0, 2.0, 3.0];
        let q99 = Threshold::good_quantile(&scores, 0.99).unwrap();
        assert_eq!(q99.name, "good-q99");
        assert!((q99.value - 4.96).abs() < 1e-12, "{}", q99.value);
        assert_eq!((q99.images, q99.on_test_set), (5, false));
        assert!(
            q99.chosen_on.contains("does not bound"),
            "{}",
            q99.chosen_on
        );
        let q999 = Threshold::good_quantile(&scores, 0.999).unwrap();
        assert_eq!(q999.name, "good-q99.9");
        assert!((q999.value - 4.996).abs() < 1e-12);
        // Enough images: no caveat; the 99 % quantile of 0..=199 is 197.01.
        let many: Vec<f64> = (0..200).map(f64::from).collect();
        let q = Threshold::good_quantile(&many, 0.99).unwrap();
        assert!((q.value - 197.01).abs() < 1e-9, "{}", q.value);
        assert!(!q.chosen_on.contains("does not bound"));
        // Nothing held out, or a non-finite score: no threshold.
        assert!(Threshold::good_quantile(&[], 0.99).is_none());
        assert!(Threshold::good_quantile(&[1.0, f64::NAN], 0.99).is_none());
    }
}
