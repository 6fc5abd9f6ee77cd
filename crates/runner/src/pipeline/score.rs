//! A run's fourth stage, after every meta-epoch: an anomaly score per test image, the mean
//! negative log-likelihood over its test rotations; after the last, the same for the
//! validation images that the run's thresholds are set on.

use adn_flows::DifferNetFlow;
use adn_flows::flow::anomaly_scores;
use tch::{Device, Kind, Tensor};

use crate::config::Config;
use crate::pipeline::features::RunFeatures;

/// Rows scored per forward pass.
const EVAL_ROWS: i64 = 4096;

/// The test scores of the run's test inputs under `flow`. Jointly trained attention's test
/// features are recomputed from their frozen prefixes first.
pub fn test_scores(cfg: &Config, flow: &DifferNetFlow, features: &RunFeatures) -> Vec<f64> {
    score(flow, &features.test_rows(), cfg.test.test_transforms as i64)
}

/// The scores of the validation images (held-out good ones, then the labelled folder's)
/// under `flow`, the last model's: what the run's thresholds are set on. `None` without.
pub fn validation_scores(
    cfg: &Config,
    flow: &DifferNetFlow,
    features: &RunFeatures,
) -> Option<Vec<f64>> {
    let rows = features.validation_rows()?;
    Some(score(flow, &rows, cfg.test.test_transforms as i64))
}

/// Per-image anomaly scores of test features laid out `[image · transforms, dim]`.
pub fn score(flow: &DifferNetFlow, feats: &Tensor, transforms: i64) -> Vec<f64> {
    let rows = feats.size()[0];
    let step = (EVAL_ROWS / transforms).max(1) * transforms;
    let mut out = Vec::new();
    tch::no_grad(|| {
        let mut start = 0;
        while start < rows {
            let len = step.min(rows - start);
            let (z, _) = flow.forward(&feats.narrow(0, start, len));
            let s = anomaly_scores(&z, transforms)
                .to_kind(Kind::Double)
                .to_device(Device::Cpu);
            out.extend(Vec::<f64>::try_from(s).expect("1-d double tensor"));
            start += len;
        }
    });
    out
}
