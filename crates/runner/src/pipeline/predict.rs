//! Scoring unlabelled images with a trained run, for an inspection line (`adn predict`):
//! every image below a folder, at any depth, scored with the run's own test-time rotations,
//! decided at a threshold chosen without the test set, optionally with its anomaly map.
//!
//! Images are decoded, scored and written in chunks, so a folder of any size streams through
//! bounded memory; one that cannot be read is named with its error and the rest are still
//! scored. The folder appears whole, by rename, once every image is done.

use std::io::Write;
use std::path::{Path, PathBuf};

use adn_datasets::{decode, transforms};
use adn_record::{
    PredictRecord, PredictionRow, Threshold, Unreadable, files, prediction_line, predictions_header,
};
use adn_util::atomic::{commit_folder, write_synced};
use anyhow::{Context, Result, bail};
use image::{ImageBuffer, Luma, Rgb, RgbImage};
use rayon::prelude::*;
use tch::Device;

use crate::config::Config;
use crate::device::DeviceChoice;
use crate::pipeline::data::{images_to_score, scoring_angles};
use crate::pipeline::features::check_batch_memory;
use crate::pipeline::localize::{differnet_maps, map_angles, pixels, sigma_px};
use crate::pipeline::model::{TrainedModel, load_trained, model_matches_record, require_complete};
use crate::pipeline::output::{OutputFolder, check_output};
use crate::pipeline::settings::in_fp32_for_gradients;

/// Which threshold decides.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdChoice {
    /// The run's `validation-f1` (labelled validation folder), else its `good-q99` (99 % of
    /// held-out good images below it); without either, scores only, no decisions.
    Default,
    /// One the run recorded, by name (`good-q99.9`, `test-f1`, ...).
    Named(String),
    /// A score the user chose.
    Value(f64),
}

impl std::str::FromStr for ThresholdChoice {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.parse::<f64>() {
            Ok(v) => ThresholdChoice::Value(v),
            Err(_) => ThresholdChoice::Named(s.to_string()),
        })
    }
}

/// How to predict.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// The folder `predictions.csv` and `predict.json` go to.
    pub out: PathBuf,
    pub threshold: ThresholdChoice,
    /// Write each image's anomaly map (16-bit PNG) and an overlay under `maps/`.
    pub maps: bool,
    pub device: DeviceChoice,
    /// Root of the feature cache; `None` (the default) computes every feature afresh.
    pub cache_dir: Option<PathBuf>,
    /// Images decoded and scored together.
    pub batch: usize,
    pub quiet: bool,
    pub force: bool,
    /// Score model files whose SHA-256 differs from the run's record.
    pub any_model: bool,
}

/// What a prediction did.
#[derive(Debug)]
pub struct PredictOutcome {
    pub dir: PathBuf,
    pub record: PredictRecord,
}

/// Scores every image below `folder` with the model of `run_dir`; writes the predict folder
/// even when some images cannot be read (the outcome lists them).
pub fn predict(run_dir: &Path, folder: &Path, opts: &PredictOptions) -> Result<PredictOutcome> {
    require_complete(run_dir, opts.any_model)?;
    check_output(&OutputFolder {
        out: &opts.out,
        force: opts.force,
        command: "adn predict",
        record: files::PREDICT,
        run: run_dir,
        inputs: &[("folder of images", folder)],
    })?;
    if opts.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let model_matches_record = model_matches_record(run_dir);
    let cfg = Config::load(&run_dir.join(files::CONFIG), &[])?;
    crate::pipeline::model::require_differnet(&cfg, "adn predict")?;
    let threshold = choose_threshold(run_dir, &opts.threshold)?;
    let images = images_to_score(folder, &folder.display().to_string())?;
    if opts.maps {
        // A chunk's images are held resized, with their maps, until written. Measured on 2
        // cores at 128 px: peak resident memory grew by 20 floats per input pixel and image
        // of the chunk with AlexNet, 30 with EfficientNet-Lite0; 16 stays below both.
        let size = cfg.model.image_size;
        let chunk = opts.batch.min(images.len());
        check_batch_memory(
            chunk,
            (size as f64).powi(2) * 4.0 * 16.0,
            0.0,
            "--batch",
            &format!("{chunk} images at {size}x{size} px with their maps"),
        )?;
    }
    let device: Device = opts.device.resolve_for(cfg.compute.reproducible)?;
    let mut model = load_trained(run_dir, &cfg, device, opts.cache_dir.as_deref())?;
    let cfg = model.config.clone();
    let angles = scoring_angles(&cfg);
    let bar = crate::progress::bar(opts.quiet, images.len() as u64, "predict");
    let mut unreadable = Vec::new();
    let (mut scored, mut anomalous) = (0usize, 0usize);
    let resize_for_maps = opts.maps.then_some(cfg.model.image_size as u32);
    let clock = std::time::Instant::now();
    let dir = commit_folder(&opts.out, opts.force, |tmp| -> Result<()> {
        let csv_path = tmp.join(files::PREDICTIONS);
        let mut csv = std::io::BufWriter::new(
            std::fs::File::create(&csv_path)
                .with_context(|| format!("cannot create {}", csv_path.display()))?,
        );
        csv.write_all(predictions_header().as_bytes())?;
        for chunk in images.chunks(opts.batch) {
            let (readable, failed) = decode_chunk(folder, chunk, resize_for_maps);
            for f in failed {
                // On stderr even under --quiet: a line per unreadable image.
                bar.suspend(|| eprintln!("cannot read {}: {}", f.path, f.error));
                unreadable.push(f);
            }
            let rows = score_chunk(&mut model, &cfg, &readable, &angles, opts.maps, tmp)?;
            for row in rows {
                let row = PredictionRow {
                    anomalous: threshold.as_ref().map(|t| row.score >= t.value),
                    ..row
                };
                anomalous += usize::from(row.anomalous == Some(true));
                scored += 1;
                let name = threshold.as_ref().map(|t| t.name.as_str());
                csv.write_all(prediction_line(&row, name).as_bytes())?;
            }
            bar.inc(chunk.len() as u64);
        }
        csv.into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
            .with_context(|| format!("cannot write {}", csv_path.display()))?;
        let record = PredictRecord {
            source_run: run_dir.display().to_string(),
            run_id: cfg.run_id(),
            folder: folder.display().to_string(),
            scored,
            anomalous: threshold.as_ref().map(|_| anomalous),
            threshold: threshold.clone(),
            rotations: angles.clone(),
            unreadable: unreadable.clone(),
            device: format!("{device:?}"),
            model_matches_record,
            wall_s: clock.elapsed().as_secs_f64(),
        };
        write_synced(
            &tmp.join(files::PREDICT),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let record = PredictRecord::read(&dir)?;
    Ok(PredictOutcome { dir, record })
}

/// The threshold `choice` names among those the run recorded.
fn choose_threshold(run_dir: &Path, choice: &ThresholdChoice) -> Result<Option<Threshold>> {
    let recorded = adn_record::read_metrics(run_dir)?.thresholds;
    let names = || {
        recorded
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match choice {
        ThresholdChoice::Value(v) if v.is_finite() => Ok(Some(Threshold {
            name: "user".into(),
            value: *v,
            chosen_on: "given on the command line (--threshold)".into(),
            images: 0,
            on_test_set: false,
        })),
        ThresholdChoice::Value(v) => bail!("--threshold {v} is not a finite score"),
        ThresholdChoice::Named(name) => match recorded.iter().find(|t| &t.name == name) {
            Some(t) => Ok(Some(t.clone())),
            None if recorded.is_empty() => bail!(
                "--threshold {name}: {} records no thresholds (trained before they existed); \
                 give a score instead, or train again",
                run_dir.display()
            ),
            None => bail!(
                "--threshold {name}: {} records {}; give one of them or a score",
                run_dir.display(),
                names()
            ),
        },
        ThresholdChoice::Default => {
            // The labelled folder's F1-optimal threshold where the user gave one, else 1 %
            // false alarms on held-out good images; never one chosen on the test set.
            let chosen = [Threshold::VALIDATION_F1, "good-q99"]
                .iter()
                .find_map(|name| recorded.iter().find(|t| t.name == *name))
                .cloned();
            if chosen.is_none() {
                tracing::warn!(
                    "{} has no threshold chosen without the test set (it held no good images \
                     out, train.validation_fraction = 0, and had no data.validation folder): \
                     scores only, no decisions; pass --threshold with a score, or with one of: \
                     {}",
                    run_dir.display(),
                    names()
                );
            }
            Ok(chosen)
        }
    }
}

/// An image that decoded, with its path relative to the scored folder, and resized to the
/// model's input when its map is wanted (so it is not decoded again for the map).
struct Readable {
    path: PathBuf,
    /// The path below the scored folder, and as text for the CSV.
    below: PathBuf,
    relative: String,
    resized: Option<RgbImage>,
}

/// Decodes `chunk` in parallel: the readable images (resized to `resize_to` when given),
/// and an error per unreadable one.
fn decode_chunk(
    folder: &Path,
    chunk: &[PathBuf],
    resize_to: Option<u32>,
) -> (Vec<Readable>, Vec<Unreadable>) {
    let decoded: Vec<(PathBuf, Result<Option<RgbImage>, String>)> = chunk
        .par_iter()
        .map(|p| {
            let image = decode::load_rgb(p)
                .map(|img| resize_to.map(|size| transforms::resize_square(&img, size)))
                .map_err(|e| e.to_string());
            (p.clone(), image)
        })
        .collect();
    let mut readable = Vec::new();
    let mut failed = Vec::new();
    for (path, image) in decoded {
        let below = path.strip_prefix(folder).unwrap_or(&path).to_path_buf();
        let relative = below.display().to_string();
        match image {
            Ok(resized) => readable.push(Readable {
                path,
                below,
                relative,
                resized,
            }),
            Err(error) => failed.push(Unreadable {
                path: relative,
                error,
            }),
        }
    }
    (readable, failed)
}

/// Scores of `images` (and, under `maps`, their maps written below `out`).
fn score_chunk(
    model: &mut TrainedModel,
    cfg: &Config,
    images: &[Readable],
    angles: &[f64],
    maps: bool,
    out: &Path,
) -> Result<Vec<PredictionRow>> {
    if images.is_empty() {
        return Ok(Vec::new());
    }
    let paths: Vec<PathBuf> = images.iter().map(|r| r.path.clone()).collect();
    let scores = model.score_files(&paths, angles)?;
    let mut rows: Vec<PredictionRow> = images
        .iter()
        .zip(scores)
        .map(|(r, score)| PredictionRow {
            path: r.relative.clone(),
            score,
            anomalous: None,
            map: None,
            map_max: None,
        })
        .collect();
    if maps {
        write_maps(model, cfg, images, angles, out, &mut rows)?;
    }
    Ok(rows)
}

/// DifferNet's anomaly map of each image at the model's input size, written as a 16-bit
/// PNG scaled by its maximum (recorded in the row) and as an overlay on the resized image.
fn write_maps(
    model: &mut TrainedModel,
    cfg: &Config,
    images: &[Readable],
    angles: &[f64],
    out: &Path,
    rows: &mut [PredictionRow],
) -> Result<()> {
    let size = cfg.model.image_size;
    let resized: Vec<RgbImage> = images
        .iter()
        .map(|r| {
            r.resized
                .clone()
                .context("an image decoded without its map input")
        })
        .collect::<Result<_>>()?;
    let device = model.features.device();
    let input = pixels(&resized, cfg, device);
    let views = vec![map_angles(cfg, angles); images.len()];
    let flow = &model.flow;
    let maps = in_fp32_for_gradients(&mut model.features.extractor, |extractor| {
        differnet_maps(extractor, flow, &input, &views, sigma_px(size))
    })?;
    let maps = Vec::<f32>::try_from(maps.to_device(Device::Cpu).reshape([-1]))?;
    let plane = (size * size) as usize;
    for (i, (r, row)) in images.iter().zip(rows.iter_mut()).enumerate() {
        let map = &maps[i * plane..(i + 1) * plane];
        let max = map.iter().copied().fold(0.0f32, f32::max);
        let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
        let side = size as u32;
        let gray: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(side, side, |x, y| {
            let v = map[(y * side + x) as usize] * scale;
            Luma([(v.clamp(0.0, 1.0) * 65535.0).round() as u16])
        });
        let overlay: RgbImage = ImageBuffer::from_fn(side, side, |x, y| {
            let a = 0.6 * (map[(y * side + x) as usize] * scale).clamp(0.0, 1.0);
            let p = resized[i].get_pixel(x, y);
            let blend = |c: u8, hot: f32| ((1.0 - a) * c as f32 + a * hot).round() as u8;
            Rgb([blend(p[0], 255.0), blend(p[1], 0.0), blend(p[2], 0.0)])
        });
        // The image's relative path mirrored below maps/, extension kept: a path names one
        // file, so `a/b.png`, `a__b.png` and `a/b.jpg` get maps of their own. Built from
        // the path itself, not its display text, which can make two file names one.
        let with_suffix = |suffix: &str| {
            let mut name = r.below.as_os_str().to_os_string();
            name.push(suffix);
            out.join(files::MAPS).join(name)
        };
        write_png_new(&with_suffix(".png"), &gray, &r.relative)?;
        write_png_new(&with_suffix(".overlay.png"), &overlay, &r.relative)?;
        row.map = Some(format!("{}/{}.png", files::MAPS, r.relative));
        row.map_max = Some(max as f64);
    }
    Ok(())
}

/// Encodes `image` as PNG into `path`, a file that must not exist yet: a map that would
/// land on another file is an error naming the image, never a file silently overwritten.
fn write_png_new<P, C>(path: &Path, image: &ImageBuffer<P, C>, of: &str) -> Result<()>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .with_context(|| format!("cannot encode the map of {of}"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "the map of {of} would replace {}, which is there already (another image's map, \
             a folder of that name among the images, or a file system that ignores case); \
             rename the image",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
    };
    file.write_all(bytes.get_ref())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
