//! A trained run as one TorchScript file (`adn export`) that scores outside `adn`: it takes
//! a batch of resized, normalised, unrotated images, makes the run's test-time rotations
//! inside (a gather with the loader's nearest-neighbour sampling), runs the backbone and the
//! flow, and returns one anomaly score per image.
//!
//! It is traced, not scripted: libtorch records the operations of one forward pass at the
//! chosen batch size, with the weights as constants, so the file takes exactly that batch
//! size (`export.json` says which). Before anything is written, the traced file is loaded
//! back and must score a set of images as `adn predict` does, within 1e-4 relative.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use adn_datasets::loader;
use adn_datasets::transforms::Normalization;
use adn_flows::flow::anomaly_scores;
use adn_record::{ExportInput, ExportRecord, files};
use adn_util::atomic::{commit_folder, write_synced};
use anyhow::{Context, Result, bail};
use tch::{CModule, Device, Kind, Tensor};

use crate::config::Config;
use crate::pipeline::data::{images_to_score, scoring_angles};
use crate::pipeline::features::{activation_floats, check_batch_memory};
use crate::pipeline::localize::{gather_views, rotation_fill, rotation_index};
use crate::pipeline::model::{TrainedModel, load_trained, require_complete};
use crate::pipeline::output::{OutputFolder, check_output};

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
    let mut inputs: Vec<(&'static str, &Path)> = Vec::new();
    if let Some(check) = &opts.check {
        inputs.push(("folder of check images (--check)", check));
    }
    check_output(&OutputFolder {
        out: &opts.out,
        force: opts.force,
        command: "adn export",
        record: files::EXPORT,
        run: run_dir,
        inputs: &inputs,
    })?;
    if opts.batch < 1 {
        bail!("--batch must be at least 1, got {}", opts.batch);
    }
    if opts.check_images < 1 {
        bail!(
            "--check-images must be at least 1, got {}",
            opts.check_images
        );
    }
    let manifest = adn_record::read_manifest(run_dir)?;
    let metrics = adn_record::read_metrics(run_dir)?;
    let cfg = Config::load(&run_dir.join(files::CONFIG), &[])?;
    crate::pipeline::model::require_differnet(&cfg, "adn export")?;
    let angles = scoring_angles(&cfg);
    check_trace_memory(run_dir, &cfg, opts.batch, angles.len())?;
    let check = check_images(run_dir, opts)?;
    // The files loaded below, hashed first: the record names the model it exported.
    let recorded = manifest
        .run
        .as_ref()
        .map(|r| r.model_sha256.clone())
        .unwrap_or_default();
    let exported = model_hashes(run_dir, &recorded)?;
    // As predict, eval and explain say it: a run that recorded no hashes has nothing to
    // contradict.
    let matches_record = recorded.is_empty() || exported == recorded;
    // Traced on the CPU: a CUDA trace would hold CUDA tensors and run nowhere else.
    let mut model = load_trained(run_dir, &cfg, Device::Cpu, None)?;
    // A trace keeps the weights as constants, which must not require gradients: the
    // float32 weights, and the bfloat16 copies a bf16 flow multiplies with.
    model.flow_vs.freeze();
    for p in model.flow.params() {
        let _ = p.leaf.set_requires_grad(false);
    }
    let cfg = model.config.clone();
    let size = cfg.model.image_size;
    let (mean, std) = model.features.extractor.config().kind.normalization();

    let inputs = unrotated_inputs(&check, size, Normalization { mean, std })?;
    let expected = model.score_files(&check, &angles)?;

    let module = trace(&model, size, &angles, [mean, std], opts.batch)?;
    // Serialised in memory, so that no libtorch writer meets the disk: a full disk is our
    // error, naming the file, not an exception thrown from a C++ destructor (an abort).
    let bytes = module_bytes(&module)?;
    // What a user will load, not the module in memory, is what is checked.
    let loaded = CModule::load_data(&mut std::io::Cursor::new(&bytes)).map_err(|e| {
        let hint = if e.to_string().contains("bad_alloc") {
            " (out of memory: a smaller --batch needs less)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot load the traced model back from its bytes{hint}: {e}")
    })?;
    let got = run_module(&loaded, &inputs, opts.batch)?;
    let max_rel = max_relative_difference(&expected, &got);
    if max_rel.is_nan() || max_rel > TOLERANCE {
        bail!(
            "the traced model scores {} checked images up to {max_rel:.2e} apart (relative) \
             from adn's own scores, more than {TOLERANCE:.0e}; nothing was written",
            check.len()
        );
    }
    let (thresholds, thresholds_note) = if matches_record {
        (metrics.thresholds.clone(), None)
    } else {
        (
            Vec::new(),
            Some(format!(
                "none: the exported model files are not the ones {} recorded, and its \
                 thresholds were chosen on that model's scores",
                run_dir.display()
            )),
        )
    };
    let record = ExportRecord {
        source_run: run_dir.display().to_string(),
        run_id: manifest.run_id.clone(),
        model_sha256: exported,
        recorded_model_sha256: recorded,
        model_matches_record: matches_record,
        any_model: opts.any_model,
        format: "torchscript".into(),
        file: files::TORCHSCRIPT.into(),
        file_sha256: adn_util::hash::sha256_hex(&bytes),
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
        thresholds,
        thresholds_note,
        checked_images: check.len(),
        max_relative_difference: max_rel,
    };
    if !matches_record {
        tracing::warn!(
            "{}: the exported model files are not the ones the run recorded (--any-model); \
             export.json says so and carries no thresholds",
            run_dir.display()
        );
    }
    let dir = commit_folder(&opts.out, opts.force, |tmp| -> Result<()> {
        write_synced(&tmp.join(files::TORCHSCRIPT), &bytes)?;
        let check_file = tmp.join(files::EXPORT_CHECK);
        let tensors = [
            ("inputs", inputs.shallow_clone()),
            ("scores", Tensor::from_slice(&expected)),
        ];
        Tensor::write_safetensors(&tensors, &check_file)
            .with_context(|| format!("cannot write {}", check_file.display()))?;
        write_synced(
            &tmp.join(files::EXPORT),
            serde_json::to_string_pretty(&record)?.as_bytes(),
        )?;
        Ok(())
    })?;
    let record = ExportRecord::read(&dir)?;
    Ok((dir, record))
}

/// Refuses a traced batch that cannot fit in memory. Per image: its input and, per view,
/// its expanded and rotated copies and about three times the backbone's largest
/// activations (peak resident memory measured on 2 cores at 128 px grew by 22 MB per image
/// of the batch with AlexNet, 72 MB with EfficientNet-Lite0, 8 views; this estimate gives
/// 22 and 66). Beside it the model three times: the run's, its serialised bytes and the
/// file loaded back for the check.
fn check_trace_memory(run_dir: &Path, cfg: &Config, batch: i64, views: usize) -> Result<()> {
    let pixels = (cfg.model.image_size as f64).powi(2);
    let per_view = 6.0 + 3.0 * activation_floats(cfg.model.backbone);
    let per_image = pixels * 4.0 * (3.0 + views as f64 * per_view);
    let model = std::fs::metadata(run_dir.join(files::MODEL)).map_or(0, |m| m.len());
    check_batch_memory(
        batch as usize,
        per_image,
        3.0 * model as f64,
        "--batch",
        &format!(
            "a traced batch of {batch} images of {views} views at {size}x{size} px",
            size = cfg.model.image_size
        ),
    )
}

/// The SHA-256 of the model files in `run_dir`: those the run recorded, else its model.
fn model_hashes(
    run_dir: &Path,
    recorded: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let names: Vec<String> = if recorded.is_empty() {
        vec![files::MODEL.to_string()]
    } else {
        recorded.keys().cloned().collect()
    };
    names
        .into_iter()
        .map(|name| {
            let path = run_dir.join(&name);
            let hash = adn_util::sha256_file(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok((name, hash))
        })
        .collect()
}

/// The bytes libtorch's `torch.jit.save` writes for `module`, written into an anonymous
/// in-memory file (Linux's `memfd_create`) rather than the disk.
fn module_bytes(module: &CModule) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    use std::os::fd::FromRawFd;
    // libtorch writes by path: the in-memory file's path is its descriptor's under /proc.
    let fds = Path::new("/proc/self/fd");
    if !fds.is_dir() {
        bail!(
            "cannot serialise the traced model in memory: {} is missing (adn export needs \
             Linux with /proc mounted)",
            fds.display()
        );
    }
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new
    // descriptor (or -1), which the File below owns from here on.
    let fd = unsafe { libc::memfd_create(c"adn-export".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error())
            .context("cannot create an in-memory file for the traced model");
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    module
        .save(fds.join(fd.to_string()))
        .context("libtorch could not serialise the traced model")?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|()| file.read_to_end(&mut bytes))
        .context("cannot read the serialised model back")?;
    Ok(bytes)
}

/// The images the export is checked on: `--check`'s, else the run's test images.
fn check_images(run_dir: &Path, opts: &ExportOptions) -> Result<Vec<PathBuf>> {
    let mut images = match &opts.check {
        Some(folder) => images_to_score(folder, &format!("--check {}", folder.display()))?,
        None => {
            let listed: Vec<PathBuf> = adn_record::read_scores(&run_dir.join(files::SCORES))?
                .into_iter()
                .map(|r| PathBuf::from(r.path))
                .collect();
            let found: Vec<PathBuf> = listed.iter().filter(|p| p.is_file()).cloned().collect();
            if found.is_empty() {
                let example = listed
                    .first()
                    .map_or_else(|| "none listed".into(), |p| p.display().to_string());
                let here = std::env::current_dir()
                    .map_or_else(|_| "here".into(), |d| d.display().to_string());
                let why = if listed.first().is_some_and(|p| p.is_relative()) {
                    format!(
                        " from {here}: the paths are relative to the folder `adn run` was \
                         started in (run from there), or the images were moved"
                    )
                } else {
                    ": they were moved or deleted".into()
                };
                bail!(
                    "none of the {} test images that {} lists (e.g. {example}) is found{why}; \
                     or pass --check FOLDER with images to check the export on",
                    listed.len(),
                    run_dir.join(files::SCORES).display(),
                );
            }
            found
        }
    };
    // Evenly spaced, so the check covers good and anomalous test images alike.
    let n = opts.check_images;
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
    let example = Tensor::f_rand([batch, 3, size, size], (Kind::Float, Device::Cpu))?;
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
