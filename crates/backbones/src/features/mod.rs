//! DifferNet's feature: the backbone applied at several scales, the outputs of chosen
//! layers averaged over their spatial positions, everything concatenated.
//!
//! [`FeatureExtractor`] is built here (weights, attention blocks, the feature layout); the
//! forward pass is in `forward`, the activation layout and number format in `layout`, the
//! frozen prefix of jointly trained attention in `prefix`, config checks in `validate`.

use std::path::Path;

use tch::Device;
use tch::nn;

use crate::alexnet::AlexNetFeatures;
use crate::attention::AttentionBlock;
use crate::backbone::Backbone;
use crate::efficientnet::EfficientNetLite;
use crate::weights::{self, LoadReport};
use crate::{AttentionTraining, BackboneConfig, BackboneError, BackboneKind};

mod forward;
mod layout;
mod prefix;
#[cfg(test)]
mod tests;
mod validate;

pub use layout::{MemoryFormat, Precision};
pub(crate) use validate::check_config;

/// Where one feature layer at one scale sits in the pooled feature vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureBlock {
    pub layer: String,
    /// 0 is the full image size, `s` the image downscaled by `2^s`.
    pub scale: usize,
    /// First column.
    pub start: i64,
    pub width: i64,
}

/// The mean and sd of one gate at one attention position over a set of images.
#[derive(Debug, Clone, PartialEq)]
pub struct GateStats {
    pub position: String,
    pub scale: usize,
    /// `"channel"` (SE, CBAM) or `"spatial"` (CBAM).
    pub gate: String,
    pub mean: f64,
    pub sd: f64,
}

/// A backbone with its attention blocks, producing pooled multi-scale features.
pub struct FeatureExtractor {
    config: BackboneConfig,
    /// Pretrained (or seeded random) backbone weights; always frozen.
    pub backbone_vs: nn::VarStore,
    /// Attention parameters; trainable only under [`AttentionTraining::Joint`].
    pub attention_vs: nn::VarStore,
    /// The convolutional network itself.
    net: Box<dyn Backbone>,
    blocks: Vec<(String, AttentionBlock)>,
    training: AttentionTraining,
    /// The deepest feature layer: the forward pass stops there.
    last_layer: String,
    weights: Option<LoadReport>,
    memory_format: MemoryFormat,
    precision: Precision,
}

impl std::fmt::Debug for FeatureExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureExtractor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FeatureExtractor {
    /// Builds the extractor. Random parameters (the backbone when `weights` is `None`, and
    /// attention always) come from `seed`. Weights are a safetensors file with the
    /// reference implementation's names; every backbone variable must be in it, and every
    /// tensor in it must be used (classifier layers that the features skip aside).
    pub fn new(
        config: &BackboneConfig,
        weights: Option<&Path>,
        training: AttentionTraining,
        seed: i64,
        device: Device,
    ) -> Result<Self, BackboneError> {
        check_config(config)?;
        tch::manual_seed(seed);
        let mut backbone_vs = nn::VarStore::new(device);
        let net = match config.kind {
            BackboneKind::Alexnet => {
                Box::new(AlexNetFeatures::new(&backbone_vs.root())) as Box<dyn Backbone>
            }
            BackboneKind::EfficientnetLite0 => {
                Box::new(EfficientNetLite::lite0(&backbone_vs.root()))
            }
        };
        let report = match weights {
            Some(path) => Some(weights::load_strict(&mut backbone_vs, path, config.kind)?),
            None => None,
        };
        backbone_vs.freeze();

        let mut attention_vs = nn::VarStore::new(device);
        let mut blocks = Vec::new();
        for position in &config.positions {
            let channels = config.kind.channels_at(position).expect("checked above");
            let p = attention_vs.root() / position.as_str();
            if let Some(block) = AttentionBlock::new(
                &p,
                config.attention,
                channels,
                config.se_reduction,
                config.attention_init,
            ) {
                blocks.push((position.clone(), block));
            }
        }
        if training == AttentionTraining::FrozenAtInit {
            attention_vs.freeze();
        }
        let order = config.kind.positions();
        let rank = |p: &str| order.iter().position(|q| *q == p);
        // Joint training resumes each step from the activation at the first attention
        // position; a feature layer before it would need a second frozen output.
        if training == AttentionTraining::Joint
            && let Some(first) = blocks
                .iter()
                .map(|(p, _)| p.as_str())
                .min_by_key(|p| rank(p))
            && let Some(early) = config.feature_layers.iter().find(|l| rank(l) < rank(first))
        {
            return Err(BackboneError::Config(format!(
                "feature layer {early} comes before the first attention position {first}; \
                 with attention_training = \"joint\" every feature layer must be at or after it"
            )));
        }
        let last_layer = config
            .feature_layers
            .iter()
            .max_by_key(|l| order.iter().position(|p| p == l))
            .expect("checked above")
            .clone();
        Ok(FeatureExtractor {
            config: config.clone(),
            backbone_vs,
            attention_vs,
            net,
            blocks,
            training,
            last_layer,
            weights: report,
            memory_format: MemoryFormat::Contiguous,
            precision: Precision::Fp32,
        }
        .with_memory_format(MemoryFormat::default()))
    }

    pub fn config(&self) -> &BackboneConfig {
        &self.config
    }

    /// What loading the weights file found, when one was given.
    pub fn weights_report(&self) -> Option<&LoadReport> {
        self.weights.as_ref()
    }

    /// Length of the pooled multi-scale feature vector.
    pub fn feature_dim(&self) -> i64 {
        let per_scale: i64 = self
            .config
            .feature_layers
            .iter()
            .map(|l| self.config.kind.channels_at(l).expect("checked"))
            .sum();
        per_scale * self.config.scales as i64
    }

    /// True when nothing in the extractor trains, so its outputs can be cached.
    pub fn is_frozen(&self) -> bool {
        self.blocks.is_empty() || self.training == AttentionTraining::FrozenAtInit
    }

    /// Where the trainable part begins when attention trains jointly: the first attention
    /// position. Everything that produces its input is frozen and can be computed once
    /// ([`FeatureExtractor::frozen_prefix`]). `None` when nothing trains.
    pub fn trainable_from(&self) -> Option<&str> {
        if self.is_frozen() {
            return None;
        }
        self.config.first_attention_position()
    }

    /// The layout of the pooled feature vector: one block per scale and feature layer, in the
    /// order their columns appear (scale by scale, layers in network order).
    pub fn feature_blocks(&self) -> Vec<FeatureBlock> {
        let order = self.config.kind.positions();
        let mut layers: Vec<&String> = self.config.feature_layers.iter().collect();
        layers.sort_by_key(|l| order.iter().position(|p| p == l));
        let mut out = Vec::new();
        let mut start = 0;
        for scale in 0..self.config.scales {
            for layer in &layers {
                let width = self.config.kind.channels_at(layer).expect("checked");
                out.push(FeatureBlock {
                    layer: layer.to_string(),
                    scale,
                    start,
                    width,
                });
                start += width;
            }
        }
        out
    }
}
