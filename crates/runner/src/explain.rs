//! `adn explain`: the paper's qualitative figure, computed. For a few test images of one
//! dataset, the Grad-CAM map of each given run's anomaly score (the flow's mean z² of the
//! unrotated image) at a backbone layer, written as heat-map overlays beside the input,
//! plus `explain.json` listing them; the report crate draws the grid.

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
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
}

/// `adn explain`: writes the overlays and prints one line.
pub fn command(args: Args) -> Result<()> {
    let e = explain(
        &args.runs,
        args.images,
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
    images: usize,
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
        .take(images)
        .collect();
    picked.extend(data.test.iter().filter(|s| !s.is_anomalous()).take(1));
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;

    let size = cfg0.model.image_size as u32;
    let mut inputs = Vec::new();
    let mut resized = Vec::new();
    for (i, s) in picked.iter().enumerate() {
        let img = adn_datasets::decode::load_rgb(&s.path)?;
        let img = adn_datasets::transforms::resize_square(&img, size);
        let name = format!("input_{i}.png");
        img.save(out.join(&name))
            .with_context(|| format!("cannot write {}", out.join(&name).display()))?;
        inputs.push(name);
        resized.push(img);
    }
    let mut explained = Vec::new();
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
        let (mean, std) = cfg.model.backbone.normalization();
        let norm = adn_datasets::transforms::Normalization { mean, std };
        let pixels: Vec<f32> = resized
            .iter()
            .flat_map(|img| adn_datasets::transforms::to_chw(img, &norm))
            .collect();
        let xs = Tensor::from_slice(&pixels)
            .reshape([resized.len() as i64, 3, size as i64, size as i64])
            .to_device(device);
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
        let attention = format!("{:?}", cfg.model.attention).to_lowercase();
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
    Ok(explanation)
}
