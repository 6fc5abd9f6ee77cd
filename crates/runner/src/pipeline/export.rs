//! A trained run as one TorchScript file (`adn export`) that scores outside `adn`: it takes
//! a batch of resized, normalised, unrotated images, makes the run's test-time rotations
//! inside (a gather with the loader's nearest-neighbour sampling), runs the backbone and the
//! flow, and returns one anomaly score per image.
//!
//! It is traced, not scripted: libtorch records the operations of one forward pass at the
//! chosen batch size, with the weights as constants, so the file takes exactly that batch
//! size (`export.json` says which). Before anything is written, the traced file is loaded
//! back and must score a set of images as `adn predict` does, within 1e-4 relative.

use std::path::{Path, PathBuf};

use adn_datasets::loader;
use adn_datasets::transforms::Normalization;
use adn_flows::flow::anomaly_scores;
use adn_record::{ExportInput, ExportRecord, files};
use adn_util::atomic::{commit_folder, write_synced};
use anyhow::{Context, Result, bail};
use tch::{CModule, Device, Kind, Tensor};

use crate::config::Config;
use crate::pipeline::data::{images_below, scoring_angles};
use crate::pipeline::localize::{gather_views, rotation_fill, rotation_index};
use crate::pipeline::model::{TrainedModel, load_trained, require_complete};

/// The largest relative difference an export may show against `adn`'s own scores.
pub const TOLERANCE: f64 = 1e-4;

/// How to export.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub out: PathBuf,
    /// Images per call of the exported file.
    pub batch: i64,
    /// Images to check the export on (a folder, any depth); the run's own test images when
    /// `None`.
    pub check: Option<PathBuf>,
    /// At most this many images are checked.
    pub check_images: usize,
    pub force: bool,
    pub any_model: bool,
}

/// Traces the model of `run_dir`, checks it, and writes the export folder.
pub fn export(run_dir: &Path, opts: &ExportOptions) -> Result<(PathBuf, ExportRecord)> {
    require_complete(run_dir, opts.any_model)?;
    if opts.batch < 1 {
        bail!("--batch must be at least 1, got {}", opts.batch);
    }
    let manifest = adn_record::read_manifest(run_dir)?;
    let metrics = adn_record::read_metrics(run_dir)?;
    let cfg = Config::load(&run_dir.join(files::CONFIG), &[])?;
    crate::pipeline::model::require_differnet(&cfg, "adn export")?;
    // Traced on the CPU: a CUDA trace would hold CUDA tensors and run nowhere else.
    let mut model = load_trained(run_dir, &cfg, Device::Cpu, None)?;
    // A trace keeps the weights as constants, which must not require gradients: the
    // float32 weights, and the bfloat16 copies a bf16 flow multiplies with.
    model.flow_vs.freeze();
    for p in model.flow.params() {
        let _ = p.leaf.set_requires_grad(false);
    }
    let cfg = model.config.clone();
    let angles = scoring_angles(&cfg);
    let size = cfg.model.image_size;
    let (mean, std) = model.features.extractor.config().kind.normalization();

    let check = check_images(run_dir, &cfg, opts)?;
    let inputs = unrotated_inputs(&check, size, Normalization { mean, std })?;
    let expected = model.score_files(&check, &angles)?;

    let module = trace(&model, size, &angles, [mean, std], opts.batch)?;
    let dir = commit_folder(&opts.out, opts.force, |tmp| -> Result<()> {
        let file = tmp.join(files::TORCHSCRIPT);
        module
            .save(&file)
            .with_context(|| format!("cannot write {}", file.display()))?;
        // What a user will load, not the module in memory, is what is checked.
        let loaded = CModule::load(&file)
            .with_context(|| format!("cannot load the traced {}", file.display()))?;
        let got = run_module(&loaded, &inputs, opts.batch)?;
        let max_rel = max_relative_difference(&expected, &got);
        if max_rel.is_nan() || max_rel > TOLERANCE {
            bail!(
                "the traced model scores {} checked images up to {max_rel:.2e} apart (relative) \
                 from adn's own scores, more than {TOLERANCE:.0e}; nothing was written",
                check.len()
            );
        }
        Tensor::write_safetensors(
            &[
                ("inputs", inputs.shallow_clone()),
                ("scores", Tensor::from_slice(&expected)),
            ],
            tmp.join(files::EXPORT_CHECK),
        )
        .context("cannot write the check images")?;
        let record = ExportRecord {
            source_run: run_dir.display().to_string(),
            run_id: manifest.run_id.clone(),
            model_sha256: manifest
                .run
                .as_ref()
                .map(|r| r.model_sha256.clone())
                .unwrap_or_default(),
            format: "torchscript".into(),
            file: files::TORCHSCRIPT.into(),
            file_sha256: adn_util::sha256_file(&file)
                .with_context(|| format!("cannot read {}", file.display()))?,
            libtorch: option_env!("ADN_LIBTORCH_VERSION")
                .unwrap_or("unknown")
                .to_string(),
            input: ExportInput {
                shape: [opts.batch, 3, size, size],
                preprocessing: format!(
                    "decode to RGB, resize to {size} × {size} px (the image crate's resize of \
                     adn_datasets::transforms::resize_square), scale to [0, 1]; no rotation: \
                     the model rotates"
                ),
                mean: [mean[0] as f64, mean[1] as f64, mean[2] as f64],
                std: [std[0] as f64, std[1] as f64, std[2] as f64],
            },
            output: format!(
                "[{}] float32 anomaly scores, DifferNet's mean z² over the {} rotations; \
                 higher is more anomalous",
                opts.batch,
                angles.len()
            ),
            rotations: angles.clone(),
            thresholds: metrics.thresholds.clone(),
            checked_images: check.len(),
            max_relative_difference: max_rel,
        };
        write_synced(
            &tmp.join(files::EXPORT),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
        Ok(())
    })?;
    let record = ExportRecord::read(&dir)?;
    Ok((dir, record))
}

/// The images the export is checked on: `--check`'s, else the run's test images.
fn check_images(run_dir: &Path, cfg: &Config, opts: &ExportOptions) -> Result<Vec<PathBuf>> {
    let mut images = match &opts.check {
        Some(folder) => images_below(folder)?,
        None => adn_record::read_scores(&run_dir.join(files::SCORES))?
            .into_iter()
            .map(|r| PathBuf::from(r.path))
            .filter(|p| p.is_file())
            .collect(),
    };
    if images.is_empty() {
        bail!(
            "no images to check the export on: the run's test images ({}) are gone; pass \
             --check FOLDER",
            cfg.data.root.display()
        );
    }
    // Evenly spaced, so the check covers good and anomalous test images alike.
    let n = opts.check_images.max(1);
    if images.len() > n {
        let step = images.len() as f64 / n as f64;
        images = (0..n)
            .map(|i| images[(i as f64 * step) as usize].clone())
            .collect();
    }
    Ok(images)
}

/// The exported model's input for `paths`: resized, normalised, unrotated `[N, 3, S, S]`,
/// made by the loader that makes every view (a view at 0°).
fn unrotated_inputs(paths: &[PathBuf], size: i64, norm: Normalization) -> Result<Tensor> {
    let mut data = Vec::new();
    let views = vec![vec![0.0]; paths.len()];
    for batch in loader::batches(paths.to_vec(), views, size as u32, norm, 16, 1) {
        data.extend(batch?.data);
    }
    Ok(Tensor::from_slice(&data).reshape([paths.len() as i64, 3, size, size]))
}

/// The traced scorer: `[batch, 3, S, S]` → `[batch]`.
fn trace(
    model: &TrainedModel,
    size: i64,
    angles: &[f64],
    [mean, std]: [[f32; 3]; 2],
    batch: i64,
) -> Result<CModule> {
    let views = angles.len() as i64;
    let plane = size * size;
    let index = angles
        .iter()
        .map(|&a| rotation_index(size, a))
        .collect::<Result<Vec<_>>>()?;
    let index = Tensor::stack(&index, 0)
        .reshape([1, views, 1, plane])
        .expand([batch, views, 3, plane], false)
        .reshape([batch * views, 3, plane]);
    // Made outside the trace, like the index: a tensor made from Rust data inside the
    // traced closure came out of the file wrong (scores 9e-2 off; the check refused it).
    let fill = rotation_fill((mean, std), Device::Cpu);
    let extractor = &model.features.extractor;
    let flow = &model.flow;
    let example = Tensor::rand([batch, 3, size, size], (Kind::Float, Device::Cpu));
    let module = tch::no_grad(|| {
        CModule::create_by_tracing("AdnScorer", "forward", &[example], &mut |xs| {
            let rows = xs[0]
                .reshape([batch, 1, 3, plane])
                .expand([batch, views, 3, plane], false)
                .reshape([batch * views, 3, plane]);
            let rotated = gather_views(&rows, &index, &fill, size);
            let feats = extractor
                .pooled_features(&rotated, false)
                .to_kind(Kind::Float);
            let (z, _) = flow.forward(&feats);
            vec![anomaly_scores(&z, views)]
        })
    })
    .context("libtorch could not trace the model")?;
    Ok(module)
}

/// `module` over `inputs` in batches of `batch` (the last padded with copies of its first
/// image), as doubles.
fn run_module(module: &CModule, inputs: &Tensor, batch: i64) -> Result<Vec<f64>> {
    let n = inputs.size()[0];
    let mut out = Vec::with_capacity(n as usize);
    let mut start = 0;
    tch::no_grad(|| -> Result<()> {
        while start < n {
            let len = batch.min(n - start);
            let mut x = inputs.narrow(0, start, len);
            if len < batch {
                let pad = x.narrow(0, 0, 1).expand([batch - len, -1, -1, -1], false);
                x = Tensor::cat(&[&x, &pad], 0);
            }
            let s = module.forward_ts(&[x])?.narrow(0, 0, len);
            out.extend(Vec::<f64>::try_from(s.to_kind(Kind::Double))?);
            start += len;
        }
        Ok(())
    })?;
    Ok(out)
}

/// The largest `|a − b| / max(|a|, 1e-12)` over pairs.
pub fn max_relative_difference(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1e-12))
        .fold(0.0, f64::max)
}
