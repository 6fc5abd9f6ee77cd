//! `adn explain`: the paper's qualitative figure, computed. For a few test images of one
//! dataset, each given run's own anomaly map (DifferNet's input gradient, or the native
//! map of a flow on feature maps), on one scale per image and flow, and for DifferNet's
//! runs the Grad-CAM map of the anomaly score (the flow's mean z² of the unrotated image)
//! at a backbone layer, on one scale for every image and run; written unscaled as 16-bit
//! maps beside the inputs, plus `explain.json` listing them. The report crate colours them
//! and draws the grids. For runs with attention it also writes `attention.json`: every gate
//! (SE and CBAM channel weights, CBAM spatial maps) at every position, on good and
//! defective test images, from which the report draws the pictures of the attention itself.

use std::path::{Path, PathBuf};

use adn_record::{
    AttentionPictures, ExplainedImage, ExplainedRun, Explanation, MapDescription, PictureImage,
    RunGates, files,
};
use adn_util::atomic::{commit_folder, write_synced};
use anyhow::{Context, Result, bail};
use tch::Device;

use crate::config::Config;
use crate::device::DeviceChoice;
use crate::pipeline::data::load_data;
use crate::pipeline::explain::{
    Picks, attention_picks, default_layer, flow_map_description, flow_maps, gate_values, grad_cam,
    qualitative_picks, run_scores,
};
use crate::pipeline::localize::{
    differnet_map_description, differnet_maps, load_mask, map_angles, pixels, sigma_px,
};
use crate::pipeline::model::{load_trained, load_trained_maps, require_complete};
use crate::pipeline::settings::in_fp32_for_gradients;

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

/// `adn explain`: writes the maps and prints one line.
pub fn command(args: Args) -> Result<()> {
    let reproducible = crate::pipeline::reproducible::enter_for_runs(&args.runs)?;
    let e = explain(
        &args.runs,
        &Picks {
            images: args.images,
            attention_images: args.attention_images,
        },
        args.layer.as_deref(),
        &args.out,
        args.device.resolve_for(reproducible)?,
    )?;
    let with_cams = e.runs.iter().filter(|r| !r.cams.is_empty()).count();
    println!(
        "maps of {} runs ({} with Grad-CAM at {}) on {} images -> {}",
        e.runs.len(),
        with_cams,
        e.layer,
        e.images.len(),
        args.out.display()
    );
    Ok(())
}

/// Writes, for the qualitative figures' test images ([`qualitative_picks`]), every run's
/// own anomaly map (and a DifferNet run's Grad-CAM), plus the attention gates, into the
/// folder `out`. All runs must be on the same dataset; the first is the one whose misses
/// are shown (vanilla, in the report's order). The folder is filled under a temporary name and appears whole
/// (replacing an earlier one) or not at all: a full disk leaves no half-written pictures.
pub fn explain(
    runs: &[PathBuf],
    picks: &Picks,
    layer: Option<&str>,
    out: &Path,
    device: Device,
) -> Result<Explanation> {
    let mut explanation = None;
    commit_folder(out, true, |staging| -> Result<()> {
        explanation = Some(explain_into(runs, picks, layer, staging, device)?);
        Ok(())
    })?;
    Ok(explanation.expect("filled when the folder was committed"))
}

/// [`explain`] into the folder `out`, which exists.
fn explain_into(
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

    let size = cfg0.model.image_size as u32;
    let save_inputs = |samples: &[&adn_datasets::Sample], prefix: &str| -> Result<_> {
        let mut names = Vec::new();
        let mut resized = Vec::new();
        for (i, s) in samples.iter().enumerate() {
            let img = adn_datasets::decode::load_rgb(&s.path)?;
            let img = adn_datasets::transforms::resize_square(&img, size);
            let name = format!("{prefix}_{i}.png");
            save_png(&img, out, &name)?;
            names.push(name);
            resized.push(img);
        }
        Ok((names, resized))
    };
    let (inputs, resized) = save_inputs(&samples, "input")?;
    let masks = write_masks(&samples, size, out)?;
    let attention_samples = attention_picks(&data.test, picks.attention_images);
    let (attention_inputs, attention_resized) = if picks.attention_images > 0 {
        save_inputs(&attention_samples, "attention_input")?
    } else {
        (Vec::new(), Vec::new())
    };
    let sigma = sigma_px(cfg0.model.image_size);
    let per = (size * size) as usize;
    let mut explained = Vec::new();
    let mut maps: Vec<Vec<f32>> = Vec::new();
    let mut cams: Vec<Vec<f32>> = Vec::new();
    let mut described: Vec<MapDescription> = Vec::new();
    let mut gated = Vec::new();
    for run_dir in runs {
        let cfg = Config::load(&run_dir.join("config.toml"), &[])?;
        same_data(run_dir, &cfg, &cfg0)?;
        let attention = format!("{:?}", cfg.model.attention).to_lowercase();
        let flow_name = cfg.flow.kind.display_name().to_string();
        let with_gates = cfg.model.attention != adn_backbones::AttentionKind::None
            && !attention_resized.is_empty();
        let xs = pixels(&resized, &cfg, device);
        // Every gate on the attention pictures' images, for runs with attention.
        let gates_of = |extractor: &adn_backbones::FeatureExtractor| -> Result<_> {
            match with_gates {
                true => Ok(Some(gate_values(
                    extractor,
                    &pixels(&attention_resized, &cfg, device),
                )?)),
                false => Ok(None),
            }
        };
        // The run's own test rotations.
        let test_angles = crate::pipeline::data::fixed_test_angles(&cfg, data.test.len());
        let (gates, cam, map, how) = if cfg.flow.kind.is_differnet() {
            let angles: Vec<Vec<f64>> = picked
                .iter()
                .map(|&(i, _)| map_angles(&cfg, &test_angles[i]))
                .collect();
            let mut model = load_trained(run_dir, &cfg, device, None)?;
            let flow = &model.flow;
            let (gates, cam, map) =
                in_fp32_for_gradients(&mut model.features.extractor, |extractor| {
                    let gates = gates_of(extractor)?;
                    let cam = grad_cam(extractor, flow, &xs, &layer)?;
                    let map = differnet_maps(extractor, flow, &xs, &angles, sigma)?;
                    Ok((gates, cam, map))
                })?;
            let how = differnet_map_description(angles.first().map_or(0, Vec::len), sigma);
            (gates, Some(cam), map, how)
        } else {
            // A flow on feature maps: its own map (Grad-CAM is of DifferNet's score).
            let model = load_trained_maps(run_dir, &cfg, device)?;
            let gates = gates_of(&model.features.extractor)?;
            let map = flow_maps(&model, &cfg, &data.test, &test_angles, &xs)?;
            let how = flow_map_description(&model.flow);
            (gates, None, map, how)
        };
        if let Some(positions) = gates {
            gated.push(RunGates {
                run_dir: run_dir.display().to_string(),
                attention: attention.clone(),
                positions,
            });
        }
        // One description per flow: runs of a flow whose maps are made otherwise (say with
        // other test rotations) would share a colour scale and a caption they do not share.
        match described.iter().find(|d| d.flow == flow_name) {
            None => described.push(MapDescription {
                flow: flow_name.clone(),
                how,
            }),
            Some(d) if d.how != how => bail!(
                "{} makes {flow_name}'s maps otherwise than the runs before it ({how}, not \
                 {}): explain them apart",
                run_dir.display(),
                d.how
            ),
            Some(_) => {}
        }
        cams.push(cam.unwrap_or_default());
        let map = Vec::<f32>::try_from(map.to_device(Device::Cpu).reshape([-1]))?;
        if let Some(bad) = map.iter().position(|v| !v.is_finite()) {
            bail!(
                "the anomaly map of {} by {} holds a non-finite value",
                samples[bad / per].path.display(),
                run_dir.display()
            );
        }
        maps.push(map);
        // Read after the run was checked to be on the first one's data.
        let (scores, threshold) = match first_scored.take() {
            Some(first) => first,
            None => run_scores(run_dir, &data.test)?,
        };
        explained.push(ExplainedRun {
            run_dir: run_dir.display().to_string(),
            attention,
            flow: flow_name,
            cams: Vec::new(),
            maps: Vec::new(),
            map_max: Vec::new(),
            scores: picked.iter().map(|&(i, _)| scores[i]).collect(),
            threshold,
        });
    }
    // One scale per row and flow: the largest value of the image's maps over the runs of
    // the same flow (different flows' maps are in different units).
    let scales: Vec<Vec<f32>> = explained
        .iter()
        .map(|run| {
            (0..samples.len())
                .map(|i| {
                    explained
                        .iter()
                        .zip(&maps)
                        .filter(|(other, _)| other.flow == run.flow)
                        .flat_map(|(_, m)| &m[i * per..(i + 1) * per])
                        .fold(0f32, |a, &v| a.max(v))
                })
                .collect()
        })
        .collect();
    for (k, ((run, m), scale)) in explained.iter_mut().zip(&maps).zip(scales).enumerate() {
        for (i, &max) in scale.iter().enumerate() {
            let name = format!("map{k}_{}_{i}.png", run.attention);
            save_png(&map_png(&m[i * per..(i + 1) * per], max, size), out, &name)?;
            run.maps.push(name);
        }
        run.map_max = scale;
    }
    // Grad-CAM on one scale for the whole figure: a good image's map then looks as weak
    // as it is beside a defect's.
    let cam_max = cams.iter().flatten().fold(0f32, |a, &v| a.max(v));
    for (k, (run, c)) in explained.iter_mut().zip(&cams).enumerate() {
        if c.is_empty() {
            continue;
        }
        for i in 0..samples.len() {
            let name = format!("cam{k}_{}_{i}.png", run.attention);
            save_png(
                &map_png(&c[i * per..(i + 1) * per], cam_max, size),
                out,
                &name,
            )?;
            run.cams.push(name);
        }
    }
    let explanation = Explanation {
        layer,
        cam_max,
        images: picked
            .iter()
            .zip(&masks)
            .map(|(&(i, why), mask)| {
                let s = &data.test[i];
                ExplainedImage {
                    path: s.path.display().to_string(),
                    defect: s.defect.clone(),
                    anomalous: s.is_anomalous(),
                    why: why.to_string(),
                    mask: mask.clone(),
                }
            })
            .collect(),
        runs: explained,
        inputs,
        maps: described,
    };
    write_synced(
        &out.join(files::EXPLAIN),
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
        write_synced(
            &out.join(files::ATTENTION_GATES),
            serde_json::to_string(&pictures)?.as_bytes(),
        )?;
    }
    Ok(explanation)
}

/// Refuses a run that is not on the first run's data at its size.
fn same_data(run_dir: &Path, cfg: &Config, first: &Config) -> Result<()> {
    if cfg.data.root != first.data.root
        || cfg.data.category != first.data.category
        || cfg.model.image_size != first.model.image_size
    {
        bail!(
            "{} is on {}/{} at {} px, not on the first run's {}/{} at {} px",
            run_dir.display(),
            cfg.data.root.display(),
            cfg.data.category,
            cfg.model.image_size,
            first.data.root.display(),
            first.data.category,
            first.model.image_size
        );
    }
    Ok(())
}

/// Each sample's ground-truth mask at `size` as an 8-bit PNG (255 = defect), named
/// `mask_<i>.png`; `None` for a sample without one.
fn write_masks(
    samples: &[&adn_datasets::Sample],
    size: u32,
    out: &Path,
) -> Result<Vec<Option<String>>> {
    let mut masks = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        if s.mask.is_none() {
            masks.push(None);
            continue;
        }
        let mask = load_mask(s, size)?;
        let img = image::GrayImage::from_fn(size, size, |x, y| {
            image::Luma([if mask[(y * size + x) as usize] {
                255
            } else {
                0
            }])
        });
        let name = format!("mask_{i}.png");
        save_png(&img, out, &name)?;
        masks.push(Some(name));
    }
    Ok(masks)
}

/// A map as a 16-bit gray image, `value / max` of its scale.
fn map_png(values: &[f32], max: f32, size: u32) -> image::ImageBuffer<image::Luma<u16>, Vec<u16>> {
    let scale = if max > 0.0 { 65535.0 / max } else { 0.0 };
    image::ImageBuffer::from_fn(size, size, |x, y| {
        let v = values[(y * size + x) as usize];
        image::Luma([(v * scale).round().clamp(0.0, 65535.0) as u16])
    })
}

/// Writes `img` as the PNG `out/name`. Encoded in memory and written with every error
/// reported (a buffered `save` can lose the last write's), the error naming the file.
fn save_png<P, C>(img: &image::ImageBuffer<P, C>, out: &Path, name: &str) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let path = out.join(name);
    let mut png = std::io::Cursor::new(Vec::new());
    img.write_to(&mut png, image::ImageFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    // `write_synced`'s errors name the file.
    Ok(write_synced(&path, png.get_ref())?)
}
