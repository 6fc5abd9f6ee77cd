use serde::{Deserialize, Serialize};

/// Which network extracts the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneKind {
    /// torchvision AlexNet `features`, as in DifferNet.
    Alexnet,
}

impl BackboneKind {
    pub fn name(self) -> &'static str {
        match self {
            BackboneKind::Alexnet => "alexnet",
        }
    }
}

/// The attention module inserted at each chosen position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionKind {
    /// Vanilla DifferNet.
    None,
    /// Squeeze-and-excitation as in the AttentDifferNet lab code (no bias, reduction r).
    Se,
    /// CBAM as in the lab code: r = 16, spatial kernel 49, no BatchNorm, residual add.
    Cbam,
    /// CBAM of Woo et al. 2018: kernel 7, BatchNorm in the spatial gate, no residual.
    CbamOfficial,
}

/// Whether attention parameters learn with the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionTraining {
    /// Attention keeps its seeded random initialisation; only the flow learns.
    FrozenAtInit,
    /// Attention learns jointly with the flow, at its own learning-rate scale.
    Joint,
}

/// Everything needed to build a feature extractor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneConfig {
    pub kind: BackboneKind,
    pub attention: AttentionKind,
    /// Named insertion points, e.g. `relu1` (after conv1+ReLU, before its max-pool) or
    /// `pool1` (after the max-pool).
    pub positions: Vec<String>,
    /// SE reduction ratio.
    pub se_reduction: i64,
    /// Input side in pixels of the first scale.
    pub image_size: i64,
    /// Number of scales; scale s sees the image at `image_size / 2^s`.
    pub scales: usize,
}
