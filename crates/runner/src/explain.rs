//! `adn explain`: the paper's qualitative figure, computed. For a few test images of one
//! dataset, the Grad-CAM map of each given run's anomaly score (the flow's mean z² of the
//! unrotated image) at a backbone layer, written as heat-map overlays beside the input,
//! plus `explain.json` listing them; the report crate draws the grid. For runs with
//! attention it also writes `attention.json`: every gate (SE and CBAM channel weights, CBAM
//! spatial maps) at every position, on good and defective test images, from which the report
//! draws the pictures of the attention itself.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use image::{Rgb, RgbImage};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::Config;
use crate::device::DeviceChoice;
use crate::eval::{load_trained, require_complete};
use crate::run::data::load_data;

/// `adn explain`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run folders on the same dataset (e.g. vanilla, SE, CBAM).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Defect types shown, one image each, at most (a miss of the first run and the first
    /// good image are added).
    #[arg(long, default_value_t = 8)]
    images: usize,
    /// Backbone layer (default: AlexNet relu5, EfficientNet-Lite0 stage4).
    #[arg(long)]
    layer: Option<String>,
    /// Good and defective test images (this many of each, the defective ones taken in turn
    /// from every defect type) whose attention gates go into attention.json; 0: none.
    #[arg(long, default_value_t = 8)]
    attention_images: usize,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
}

/// `adn explain`: writes the overlays and prints one line.
pub fn command(args: Args) -> Result<()> {
    let e = explain(
        &args.runs,
        &Picks {
            images: args.images,
            attention_images: args.attention_images,
        },
        args.layer.as_deref(),
        &args.out,
        args.device.resolve()?,
    )?;
    println!(
        "Grad-CAM at {} of {} runs on {} images -> {}",
        e.layer,
        e.runs.len(),
        e.images.len(),
        args.out.display()
    );
    Ok(())
}

/// What `explain.json` holds.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub layer: String,
    /// Test images (rows).
    pub images: Vec<ExplainedImage>,
    /// Runs (columns): folder, attention, the overlay file of every image.
    pub runs: Vec<ExplainedRun>,
    /// The resized inputs, one per image.
    pub inputs: Vec<String>,
    /// How DifferNet's maps were made, in words.
    pub map: String,
}

#[derive(Debug, Serialize)]
pub struct ExplainedImage {
    pub path: String,
    /// `good` or the defect type.
    pub defect: String,
    pub anomalous: bool,
    /// Why it was picked: `first of its type`, `missed by the first run` or `good`.
    pub why: String,
    /// Its ground-truth mask at the input size (8-bit, 255 = defect), when it has one.
    pub mask: Option<String>,
    /// The largest value of DifferNet's map of this image over all runs: the row's scale,
    /// at which every run's `maps` file is stored.
    pub map_max: f32,
}

#[derive(Debug, Serialize)]
pub struct ExplainedRun {
    pub run_dir: String,
    pub attention: String,
    /// Grad-CAM overlays, each map scaled to its own maximum.
    pub overlays: Vec<String>,
    /// DifferNet's map of every image as a 16-bit gray PNG, `value / map_max` of its row.
    pub maps: Vec<String>,
    /// Every image's anomaly score in the run's `scores.csv`, and the threshold with the
    /// best F1 over its test set (anomalous when `score >= threshold`).
    pub scores: Vec<f64>,
    pub threshold: f64,
}

/// How many test images `explain` shows.
#[derive(Debug, Clone, Copy)]
pub struct Picks {
    /// Defect types of the qualitative figures, one image each (a miss of the first run
    /// and the first good image are added).
    pub images: usize,
    /// Good and defective images (this many of each) of the attention pictures.
    pub attention_images: usize,
}

/// What `attention.json` holds: the gates of every run with attention on the same images.
#[derive(Debug, Serialize)]
pub struct AttentionPictures {
    /// The images, good ones first, each as the pictures' column order has it.
    pub images: Vec<PictureImage>,
    pub runs: Vec<RunGates>,
}

#[derive(Debug, Serialize)]
pub struct PictureImage {
    pub path: String,
    /// `good` or the defect type.
    pub defect: String,
    pub anomalous: bool,
    /// The resized input, in the output folder.
    pub input: String,
}

#[derive(Debug, Serialize)]
pub struct RunGates {
    pub run_dir: String,
    pub attention: String,
    pub positions: Vec<PositionGates>,
}

#[derive(Debug, Serialize)]
pub struct PositionGates {
    pub position: String,
    pub gates: Vec<GateValues>,
}

/// One gate on every image: `channel` with shape `[images, C]`, or `spatial` with shape
/// `[images, H, W]` at the position's resolution; values row-major.
#[derive(Debug, Serialize)]
pub struct GateValues {
    pub gate: String,
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

/// The attention pictures' images: the first `n` good test images, then `n` defective ones
/// taken in turn from each defect type (in order of first appearance), so that every type
/// shows when `n` allows.
fn attention_picks(test: &[adn_datasets::Sample], n: usize) -> Vec<&adn_datasets::Sample> {
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
fn qualitative_picks(
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
fn run_scores(run_dir: &Path, test: &[adn_datasets::Sample]) -> Result<(Vec<f64>, f64)> {
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

use crate::localize::pixels;

/// The gates of `extractor` on `xs`, as `attention.json` stores them.
fn gate_values(
    extractor: &adn_backbones::FeatureExtractor,
    xs: &Tensor,
) -> Result<Vec<PositionGates>> {
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
                shape: t.size(),
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

/// A blue → red colour map.
fn heat(v: f32) -> [f32; 3] {
    let v = v.clamp(0.0, 1.0);
    let r = (1.5 - (4.0 * v - 3.0).abs()).clamp(0.0, 1.0);
    let g = (1.5 - (4.0 * v - 2.0).abs()).clamp(0.0, 1.0);
    let b = (1.5 - (4.0 * v - 1.0).abs()).clamp(0.0, 1.0);
    [r, g, b]
}

fn overlay(input: &RgbImage, cam: &[f32]) -> RgbImage {
    let (w, h) = input.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let c = heat(cam[(y * w + x) as usize]);
        let p = input.get_pixel(x, y).0;
        Rgb(std::array::from_fn(|k| {
            (0.5 * p[k] as f32 + 0.5 * 255.0 * c[k]).round() as u8
        }))
    })
}

/// Writes, for the qualitative figures' test images ([`qualitative_picks`]), every run's
/// Grad-CAM overlay and DifferNet map, plus the attention gates, into `out`. All runs must
/// be on the same dataset; the first is the one whose misses are shown (vanilla, in the
/// report's order).
pub fn explain(
    runs: &[PathBuf],
    picks: &Picks,
    layer: Option<&str>,
    out: &Path,
    device: Device,
) -> Result<Explanation> {
    let Some(first) = runs.first() else {
        bail!("give at least one run folder");
    };
    for r in runs {
        require_complete(r, false)?;
    }
    let cfg0 = Config::load(&first.join("config.toml"), &[])?;
    let layer = layer.unwrap_or_else(|| default_layer(&cfg0)).to_string();
    let data = load_data(&cfg0)?;
    // The first run's misses pick a row; its scores are read once, here.
    let mut first_scored = Some(run_scores(first, &data.test)?);
    let (first_scores, first_threshold) = first_scored.as_ref().expect("just read");
    let picked = qualitative_picks(&data.test, picks.images, &|i| {
        first_scores[i] < *first_threshold
    });
    let samples: Vec<&adn_datasets::Sample> = picked.iter().map(|&(i, _)| &data.test[i]).collect();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let size = cfg0.model.image_size as u32;
    let save_inputs = |samples: &[&adn_datasets::Sample], prefix: &str| -> Result<_> {
        let mut names = Vec::new();
        let mut resized = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let img = adn_datasets::decode::load_rgb(&s.path)?;
            let img = adn_datasets::transforms::resize_square(&img, size);
            let name = format!("{prefix}_{i}.png");
            img.save(out.join(&name))
                .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
            names.push(name);
            resized.push(img);
        }
        Ok((names, resized))
    };
    let (inputs, resized) = save_inputs(&samples, "input")?;
    let mut masks = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        if s.mask.is_none() {
            masks.push(None);
            continue;
        }
        let mask = crate::localize::load_mask(s, size)?;
        let img = image::GrayImage::from_fn(size, size, |x, y| {
            image::Luma([if mask[(y * size + x) as usize] {
                255
            } else {
                0
            }])
        });
        let name = format!("mask_{i}.png");
        img.save(out.join(&name))
            .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
        masks.push(Some(name));
    }
    let attention_samples = attention_picks(&data.test, picks.attention_images);
    let (attention_inputs, attention_resized) = if picks.attention_images > 0 {
        save_inputs(&attention_samples, "attention_input")?
    } else {
        (Vec::new(), Vec::new())
    };
    let all_angles = crate::run::data::fixed_test_angles(&cfg0, data.test.len());
    let angles: Vec<Vec<f64>> = picked
        .iter()
        .map(|&(i, _)| crate::localize::map_angles(&cfg0, &all_angles[i]))
        .collect();
    let sigma = crate::localize::sigma_px(cfg0.model.image_size);
    let per = (size * size) as usize;
    let mut explained = Vec::new();
    let mut maps: Vec<Vec<f32>> = Vec::new();
    let mut gated = Vec::new();
    for (k, run_dir) in runs.iter().enumerate() {
        let cfg = Config::load(&run_dir.join("config.toml"), &[])?;
        if cfg.data.root != cfg0.data.root
            || cfg.data.category != cfg0.data.category
            || cfg.model.image_size != cfg0.model.image_size
        {
            bail!(
                "{} is on {}/{} at {} px, not on the first run's {}/{} at {} px",
                run_dir.display(),
                cfg.data.root.display(),
                cfg.data.category,
                cfg.model.image_size,
                cfg0.data.root.display(),
                cfg0.data.category,
                cfg0.model.image_size
            );
        }
        let mut model = load_trained(run_dir, &cfg, device, None)?;
        // Grad-CAM and the maps differentiate in float32: a bf16 run's backbone is cast up,
        // exactly, so its gradients are those of the weights the run scored with.
        model
            .features
            .extractor
            .set_precision(adn_backbones::Precision::Fp32)?;
        let (extractor, flow) = (&model.features.extractor, &model.flow);
        let attention = format!("{:?}", cfg.model.attention).to_lowercase();
        if cfg.model.attention != adn_backbones::AttentionKind::None
            && !attention_resized.is_empty()
        {
            gated.push(RunGates {
                run_dir: run_dir.display().to_string(),
                attention: attention.clone(),
                positions: gate_values(extractor, &pixels(&attention_resized, &cfg, device))?,
            });
        }
        let xs = pixels(&resized, &cfg, device);
        let score = |f: &Tensor| {
            let (z, _) = flow.forward(f);
            z.pow_tensor_scalar(2)
                .mean_dim([1].as_slice(), false, Kind::Float)
        };
        let cams = extractor.grad_cam(&xs, &layer, &score)?;
        let cams = Vec::<f32>::try_from(
            cams.to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .reshape([-1]),
        )?;
        let mut overlays = Vec::new();
        for (i, img) in resized.iter().enumerate() {
            let name = format!("run{k}_{attention}_{i}.png");
            overlay(img, &cams[i * per..(i + 1) * per])
                .save(out.join(&name))
                .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
            overlays.push(name);
        }
        let m = crate::localize::differnet_maps(extractor, flow, &xs, &angles, sigma)?;
        maps.push(Vec::<f32>::try_from(
            m.to_device(Device::Cpu).reshape([-1]),
        )?);
        // Read after the run was checked to be on the first one's data.
        let (scores, threshold) = match first_scored.take() {
            Some(first) => first,
            None => run_scores(run_dir, &data.test)?,
        };
        explained.push(ExplainedRun {
            run_dir: run_dir.display().to_string(),
            attention,
            overlays,
            maps: Vec::new(),
            scores: picked.iter().map(|&(i, _)| scores[i]).collect(),
            threshold,
        });
    }
    // One scale per row: the largest value of the image's maps over all runs.
    let row_max: Vec<f32> = (0..samples.len())
        .map(|i| {
            maps.iter()
                .flat_map(|m| &m[i * per..(i + 1) * per])
                .fold(0f32, |a, &v| a.max(v))
        })
        .collect();
    for (k, (run, m)) in explained.iter_mut().zip(&maps).enumerate() {
        for (i, &max) in row_max.iter().enumerate() {
            let scale = if max > 0.0 { 65535.0 / max } else { 0.0 };
            let values = &m[i * per..(i + 1) * per];
            let img =
                image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(size, size, |x, y| {
                    let v = values[(y * size + x) as usize];
                    image::Luma([(v * scale).round().clamp(0.0, 65535.0) as u16])
                });
            let name = format!("map{k}_{}_{i}.png", run.attention);
            img.save(out.join(&name))
                .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
            run.maps.push(name);
        }
    }
    let explanation = Explanation {
        layer,
        images: picked
            .iter()
            .zip(&masks)
            .zip(&row_max)
            .map(|((&(i, why), mask), &map_max)| {
                let s = &data.test[i];
                ExplainedImage {
                    path: s.path.display().to_string(),
                    defect: s.defect.clone(),
                    anomalous: s.is_anomalous(),
                    why: why.to_string(),
                    mask: mask.clone(),
                    map_max,
                }
            })
            .collect(),
        runs: explained,
        inputs,
        map: format!(
            "DifferNet's input gradient: |∂ score / ∂ pixel| summed over channels, averaged \
             over {} test rotations (each rotated back), Gaussian σ = {sigma:.2} px",
            angles.first().map_or(0, Vec::len)
        ),
    };
    adn_util::atomic::write_file(
        &out.join("explain.json"),
        serde_json::to_string_pretty(&explanation)?.as_bytes(),
    )?;
    if !gated.is_empty() {
        let pictures = AttentionPictures {
            images: attention_samples
                .iter()
                .zip(attention_inputs)
                .map(|(s, input)| PictureImage {
                    path: s.path.display().to_string(),
                    defect: s.defect.clone(),
                    anomalous: s.is_anomalous(),
                    input,
                })
                .collect(),
            runs: gated,
        };
        adn_util::atomic::write_file(
            &out.join("attention.json"),
            serde_json::to_string(&pictures)?.as_bytes(),
        )?;
    }
    Ok(explanation)
}

#[cfg(test)]
mod tests {
    use super::*;

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
