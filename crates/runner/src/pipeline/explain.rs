//! Explaining a trained model's scores (`adn explain`, the paper's qualitative figure):
//! which test images to show, each run's Grad-CAM of its anomaly score at a backbone layer
//! (DifferNet's), the maps of the flows on feature maps, and every attention gate on good
//! and defective images, as `explain.json` and `attention.json` (declared in `adn_record`)
//! store them.

use std::path::Path;

use adn_backbones::FeatureExtractor;
use adn_flows::DifferNetFlow;
use adn_record::{GateValues, PositionGates};
use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

use crate::config::Config;
use crate::pipeline::model::TrainedMaps;
use crate::pipeline::train_maps::{MapFlow, fix_cflow_maxima};

/// How many test images `explain` shows.
#[derive(Debug, Clone, Copy)]
pub struct Picks {
    /// Defect types of the qualitative figures, one image each (a miss of the first run
    /// and the first good image are added).
    pub images: usize,
    /// Good and defective images (this many of each) of the attention pictures.
    pub attention_images: usize,
}

/// The attention pictures' images: the first `n` good test images, then `n` defective ones
/// taken in turn from each defect type (in order of first appearance), so that every type
/// shows when `n` allows.
pub fn attention_picks(test: &[adn_datasets::Sample], n: usize) -> Vec<&adn_datasets::Sample> {
    let mut picked: Vec<&adn_datasets::Sample> =
        test.iter().filter(|s| !s.is_anomalous()).take(n).collect();
    let mut types: Vec<Vec<&adn_datasets::Sample>> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for s in test.iter().filter(|s| s.is_anomalous()) {
        match names.iter().position(|d| *d == s.defect) {
            Some(k) => types[k].push(s),
            None => {
                names.push(&s.defect);
                types.push(vec![s]);
            }
        }
    }
    let mut taken = 0;
    let mut round = 0;
    while taken < n && types.iter().any(|t| t.len() > round) {
        for t in &types {
            if taken < n
                && let Some(s) = t.get(round)
            {
                picked.push(s);
                taken += 1;
            }
        }
        round += 1;
    }
    picked
}

/// The rows of the qualitative figures, as indices into `test`: the first image of each
/// defect type (in order of first appearance, at most `types`), then the first anomalous
/// image that `missed` (the first run at its F1-optimal threshold) unless one already is,
/// then the first good image. Each with why it was picked.
pub fn qualitative_picks(
    test: &[adn_datasets::Sample],
    types: usize,
    missed: &dyn Fn(usize) -> bool,
) -> Vec<(usize, &'static str)> {
    let mut picked: Vec<(usize, &'static str)> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, s) in test.iter().enumerate() {
        if s.is_anomalous() && !seen.contains(&s.defect.as_str()) && seen.len() < types {
            seen.push(&s.defect);
            picked.push((i, "first of its type"));
        }
    }
    if !picked.iter().any(|&(i, _)| missed(i))
        && let Some(i) = (0..test.len()).find(|&i| test[i].is_anomalous() && missed(i))
    {
        picked.push((i, "missed by the first run"));
    }
    if let Some(i) = test.iter().position(|s| !s.is_anomalous()) {
        picked.push((i, "good"));
    }
    picked
}

/// Each test image's score in the run's `scores.csv` (matched by path) and the run's
/// F1-optimal threshold.
pub fn run_scores(run_dir: &Path, test: &[adn_datasets::Sample]) -> Result<(Vec<f64>, f64)> {
    let path = run_dir.join(adn_record::files::SCORES);
    let rows = adn_record::read_scores(&path)?;
    let by_path: std::collections::HashMap<&str, f64> =
        rows.iter().map(|r| (r.path.as_str(), r.score)).collect();
    let scores = test
        .iter()
        .map(|s| {
            let p = s.path.display().to_string();
            by_path.get(p.as_str()).copied().with_context(|| {
                format!(
                    "{} has no score for {p}: is it a run on this data?",
                    path.display()
                )
            })
        })
        .collect::<Result<Vec<f64>>>()?;
    let labels: Vec<bool> = test.iter().map(|s| s.is_anomalous()).collect();
    let f1 = adn_metrics::f1_max(&labels, &scores)
        .with_context(|| format!("no F1-optimal threshold from {}", path.display()))?;
    Ok((scores, f1.threshold))
}

/// The gates of `extractor` on `xs`, as `attention.json` stores them.
pub fn gate_values(extractor: &FeatureExtractor, xs: &Tensor) -> Result<Vec<PositionGates>> {
    let gates = tch::no_grad(|| extractor.attention_gates(xs));
    let mut out = Vec::new();
    for (position, gs) in gates {
        let mut values = Vec::new();
        for (gate, t) in gs {
            let t = t.to_kind(Kind::Float).to_device(Device::Cpu);
            let n = t.size()[0];
            let t = match gate {
                "spatial" => {
                    let (h, w) = (t.size()[2], t.size()[3]);
                    t.reshape([n, h, w])
                }
                _ => t.reshape([n, -1]),
            };
            values.push(GateValues {
                gate: gate.to_string(),
                shape: t.size().iter().map(|&d| d as usize).collect(),
                values: Vec::<f32>::try_from(t.contiguous().reshape([-1]))?,
            });
        }
        out.push(PositionGates {
            position,
            gates: values,
        });
    }
    Ok(out)
}

/// The layer Grad-CAM looks at when none is given: the deepest convolution before the
/// last pooling (AlexNet `relu5`, the paper's), or EfficientNet-Lite0's `stage4` (10 × 10
/// at 160 px: coarse enough to be stable, fine enough to localise).
pub fn default_layer(cfg: &Config) -> &'static str {
    match cfg.model.backbone {
        adn_backbones::BackboneKind::Alexnet => "relu5",
        adn_backbones::BackboneKind::EfficientnetLite0 => "stage4",
    }
}

/// Grad-CAM of the flow's score (mean z² of each unrotated image) at `layer`, one map per
/// image of `xs` at the input size, row-major, unscaled: in the score's units, so that the
/// maps of every image and run can share one colour scale.
pub fn grad_cam(
    extractor: &FeatureExtractor,
    flow: &DifferNetFlow,
    xs: &Tensor,
    layer: &str,
) -> Result<Vec<f32>> {
    let score = |f: &Tensor| {
        let (z, _) = flow.forward(f);
        z.pow_tensor_scalar(2)
            .mean_dim([1].as_slice(), false, Kind::Float)
    };
    let cams = extractor.grad_cam_unscaled(xs, layer, &score)?;
    Ok(Vec::<f32>::try_from(
        cams.to_kind(Kind::Float)
            .to_device(Device::Cpu)
            .reshape([-1]),
    )?)
}

/// A flow on feature maps' own anomaly maps `[N, S, S]` of the normalised, unrotated
/// images `xs`: the maps its pixel metrics were computed from, made non-negative
/// (FastFlow's, `−exp(−½ mean z²)` in `[−1, 0)`, plus 1), so that every flow's map starts
/// at 0 for a normal position. A CFlow-AD run's maxima are first fixed on the whole test
/// set `test` under the run's `test_angles`, as at its last evaluation.
pub fn flow_maps(
    model: &TrainedMaps,
    cfg: &Config,
    test: &[adn_datasets::Sample],
    test_angles: &[Vec<f64>],
    xs: &Tensor,
) -> Result<Tensor> {
    let size = cfg.model.image_size;
    if let MapFlow::Cf(_) = model.flow {
        let all = model
            .features
            .maps(test, test_angles, &indicatif::ProgressBar::hidden())?;
        let transforms = cfg.test.test_transforms as i64;
        fix_cflow_maxima(&model.flow, &all, transforms, size);
    }
    let map = model.flow.image_maps(&model.features.extractor, xs, size);
    Ok(match model.flow {
        MapFlow::Fast(_) => map + 1.0,
        _ => map,
    })
}

/// How [`flow_maps`] made `flow`'s maps, in words.
pub fn flow_map_description(flow: &MapFlow) -> String {
    match flow {
        MapFlow::Fast(_) => format!("{}; plus 1, so that 0 is normal", flow.describe()),
        _ => flow.describe().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample(name: &str, defect: &str) -> adn_datasets::Sample {
        adn_datasets::Sample {
            path: PathBuf::from(name),
            defect: defect.into(),
            mask: None,
        }
    }

    #[test]
    fn qualitative_picks_show_each_type_a_miss_and_a_good_image() {
        let test = [
            sample("c1", "crack"),
            sample("g1", "good"),
            sample("c2", "crack"),
            sample("s1", "spot"),
            sample("s2", "spot"),
            sample("g2", "good"),
        ];
        let names = |types, missed: &dyn Fn(usize) -> bool| -> Vec<(String, &str)> {
            qualitative_picks(&test, types, missed)
                .iter()
                .map(|&(i, why)| (test[i].path.display().to_string(), why))
                .collect()
        };
        let first = |n: &str| (n.to_string(), "first of its type");
        let good = ("g1".to_string(), "good");
        // Nothing missed: one image per type, then the first good one.
        assert_eq!(
            names(8, &|_| false),
            [first("c1"), first("s1"), good.clone()]
        );
        // s2 is missed: added, as its type's first image was found.
        assert_eq!(
            names(8, &|i| i == 4),
            [
                first("c1"),
                first("s1"),
                ("s2".to_string(), "missed by the first run"),
                good.clone()
            ]
        );
        // A shown image is already a miss: nothing added.
        assert_eq!(
            names(8, &|i| i == 3 || i == 4),
            [first("c1"), first("s1"), good.clone()]
        );
        // At most `types` types; good images are never "missed".
        assert_eq!(names(1, &|i| i == 1), [first("c1"), good]);
    }

    #[test]
    fn attention_picks_take_good_images_then_every_defect_type_in_turn() {
        let test = [
            sample("c1", "crack"),
            sample("g1", "good"),
            sample("c2", "crack"),
            sample("c3", "crack"),
            sample("s1", "spot"),
            sample("g2", "good"),
            sample("g3", "good"),
            sample("s2", "spot"),
        ];
        let names = |n| -> Vec<String> {
            attention_picks(&test, n)
                .iter()
                .map(|s| s.path.display().to_string())
                .collect()
        };
        assert_eq!(names(2), ["g1", "g2", "c1", "s1"]);
        assert_eq!(names(3), ["g1", "g2", "g3", "c1", "s1", "c2"]);
        // Fewer images than asked: all of them, nothing repeated.
        assert_eq!(names(5), ["g1", "g2", "g3", "c1", "s1", "c2", "s2", "c3"]);
        assert!(names(0).is_empty());
    }
}
