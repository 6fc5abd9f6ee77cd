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
    /// Anomalous test images to show (the first good one is added).
    #[arg(long, default_value_t = 3)]
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
    /// Test images (rows), with their defect type.
    pub images: Vec<(String, String)>,
    /// Runs (columns): folder, attention, the overlay file of every image.
    pub runs: Vec<ExplainedRun>,
    /// The resized inputs, one per image.
    pub inputs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ExplainedRun {
    pub run_dir: String,
    pub attention: String,
    pub overlays: Vec<String>,
}

/// How many test images `explain` shows.
#[derive(Debug, Clone, Copy)]
pub struct Picks {
    /// Anomalous images of the Grad-CAM grid (the first good one is added).
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

/// Normalised `[N, 3, size, size]` pixels of `images` for the backbone of `cfg`.
fn pixels(images: &[RgbImage], cfg: &Config, device: Device) -> Tensor {
    let size = cfg.model.image_size;
    let (mean, std) = cfg.model.backbone.normalization();
    let norm = adn_datasets::transforms::Normalization { mean, std };
    let values: Vec<f32> = images
        .iter()
        .flat_map(|img| adn_datasets::transforms::to_chw(img, &norm))
        .collect();
    Tensor::from_slice(&values)
        .reshape([images.len() as i64, 3, size, size])
        .to_device(device)
}

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

/// Writes the Grad-CAM overlays of `runs` (all on the same dataset) for the first `images`
/// anomalous test images and the first good one, into `out`.
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
    let mut picked: Vec<&adn_datasets::Sample> = data
        .test
        .iter()
        .filter(|s| s.is_anomalous())
        .take(picks.images)
        .collect();
    picked.extend(data.test.iter().filter(|s| !s.is_anomalous()).take(1));
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
    let (inputs, resized) = save_inputs(&picked, "input")?;
    let attention_samples = attention_picks(&data.test, picks.attention_images);
    let (attention_inputs, attention_resized) = if picks.attention_images > 0 {
        save_inputs(&attention_samples, "attention_input")?
    } else {
        (Vec::new(), Vec::new())
    };
    let mut explained = Vec::new();
    let mut gated = Vec::new();
    for (k, run_dir) in runs.iter().enumerate() {
        let cfg = Config::load(&run_dir.join("config.toml"), &[])?;
        if cfg.data.root != cfg0.data.root || cfg.data.category != cfg0.data.category {
            bail!(
                "{} is on {}/{}, not on the first run's {}/{}",
                run_dir.display(),
                cfg.data.root.display(),
                cfg.data.category,
                cfg0.data.root.display(),
                cfg0.data.category
            );
        }
        let model = load_trained(run_dir, &cfg, device, None)?;
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
        let per = (size * size) as usize;
        let mut overlays = Vec::new();
        for (i, img) in resized.iter().enumerate() {
            let name = format!("run{k}_{attention}_{i}.png");
            overlay(img, &cams[i * per..(i + 1) * per])
                .save(out.join(&name))
                .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
            overlays.push(name);
        }
        explained.push(ExplainedRun {
            run_dir: run_dir.display().to_string(),
            attention,
            overlays,
        });
    }
    let explanation = Explanation {
        layer,
        images: picked
            .iter()
            .map(|s| (s.path.display().to_string(), s.defect.clone()))
            .collect(),
        runs: explained,
        inputs,
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
