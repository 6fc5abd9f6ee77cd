//! DifferNet's feature: the backbone applied at several scales, each output averaged over
//! its spatial positions, the per-scale vectors concatenated.

use std::path::Path;

use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use crate::alexnet::{self, AlexNetFeatures};
use crate::attention::AttentionBlock;
use crate::{AttentionKind, AttentionTraining, BackboneConfig, BackboneError, BackboneKind};

/// A backbone with its attention blocks, producing pooled multi-scale features.
pub struct FeatureExtractor {
    config: BackboneConfig,
    /// Pretrained (or seeded random) backbone weights; always frozen.
    pub backbone_vs: nn::VarStore,
    /// Attention parameters; trainable only under [`AttentionTraining::Joint`].
    pub attention_vs: nn::VarStore,
    net: AlexNetFeatures,
    blocks: Vec<(String, AttentionBlock)>,
    training: AttentionTraining,
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
    /// attention always) come from `seed`. Weights are read from a safetensors file with
    /// torchvision's names; every backbone variable must be present in it.
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
            BackboneKind::Alexnet => AlexNetFeatures::new(&backbone_vs.root()),
        };
        if let Some(path) = weights {
            backbone_vs.load(path).map_err(|e| BackboneError::Weights {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        backbone_vs.freeze();

        let mut attention_vs = nn::VarStore::new(device);
        let mut blocks = Vec::new();
        for position in &config.positions {
            let channels = alexnet::channels_at(position).expect("checked above");
            let p = attention_vs.root() / position.as_str();
            if let Some(block) =
                AttentionBlock::new(&p, config.attention, channels, config.se_reduction)
            {
                blocks.push((position.clone(), block));
            }
        }
        if training == AttentionTraining::FrozenAtInit {
            attention_vs.freeze();
        }
        Ok(FeatureExtractor {
            config: config.clone(),
            backbone_vs,
            attention_vs,
            net,
            blocks,
            training,
        })
    }

    pub fn config(&self) -> &BackboneConfig {
        &self.config
    }

    /// Length of the pooled multi-scale feature vector.
    pub fn feature_dim(&self) -> i64 {
        alexnet::OUT_CHANNELS * self.config.scales as i64
    }

    /// True when nothing in the extractor trains, so its outputs can be cached.
    pub fn is_frozen(&self) -> bool {
        self.blocks.is_empty() || self.training == AttentionTraining::FrozenAtInit
    }

    /// The backbone's final feature map for one scale, attention applied.
    pub fn feature_map(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut tap =
            |position: &str, x: Tensor| match self.blocks.iter().find(|(p, _)| p == position) {
                Some((_, block)) => block.forward_t(&x, train),
                None => x,
            };
        self.net.forward_with(xs, &mut tap)
    }

    /// Pooled features `[N, feature_dim]` of normalised images `[N, 3, S, S]`
    /// (`S = image_size`); smaller scales are nearest-neighbour downscalings.
    pub fn pooled_features(&self, xs: &Tensor, train: bool) -> Tensor {
        let (h, w) = (xs.size()[2], xs.size()[3]);
        let per_scale: Vec<Tensor> = (0..self.config.scales)
            .map(|s| {
                let x = if s == 0 {
                    xs.shallow_clone()
                } else {
                    let f = 1i64 << s;
                    xs.upsample_nearest2d([h / f, w / f], None, None)
                };
                self.feature_map(&x, train)
                    .mean_dim([2, 3].as_slice(), false, x.kind())
            })
            .collect();
        Tensor::cat(&per_scale, 1)
    }
}

/// AlexNet's final spatial side for an input side, or `None` when a layer would be empty.
fn alexnet_output_side(side: i64) -> Option<i64> {
    let pool = |a: i64| if a >= 3 { Some((a - 3) / 2 + 1) } else { None };
    let conv1 = (side + 4 - 11) / 4 + 1;
    if side + 4 < 11 {
        return None;
    }
    pool(pool(pool(conv1)?)?)
}

fn check_config(config: &BackboneConfig) -> Result<(), BackboneError> {
    if config.scales == 0 {
        return Err(BackboneError::Config(
            "model.scales must be at least 1".into(),
        ));
    }
    if config.se_reduction < 1 {
        return Err(BackboneError::Config(
            "model.se_reduction must be at least 1".into(),
        ));
    }
    let smallest = config.image_size >> (config.scales - 1);
    if alexnet_output_side(smallest).is_none() {
        return Err(BackboneError::Config(format!(
            "model.image_size = {} with {} scales gives {} px at the smallest scale, too small \
             for AlexNet (needs at least 63 px); use a larger image or fewer scales",
            config.image_size, config.scales, smallest
        )));
    }
    if config.attention != AttentionKind::None && config.positions.is_empty() {
        return Err(BackboneError::Config(
            "model.attention is set but model.positions is empty".into(),
        ));
    }
    for p in &config.positions {
        if alexnet::channels_at(p).is_none() {
            return Err(BackboneError::UnknownPosition {
                position: p.clone(),
                backbone: config.kind.name(),
                known: alexnet::POSITIONS.join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(attention: AttentionKind) -> BackboneConfig {
        BackboneConfig {
            kind: BackboneKind::Alexnet,
            attention,
            positions: vec!["relu1".into(), "relu2".into(), "relu5".into()],
            se_reduction: 2,
            image_size: 128,
            scales: 2,
        }
    }

    #[test]
    fn output_sides_match_torchvision() {
        assert_eq!(alexnet_output_side(224), Some(6));
        assert_eq!(alexnet_output_side(448), Some(13));
        assert_eq!(alexnet_output_side(112), Some(2));
        assert_eq!(alexnet_output_side(56), None);
    }

    #[test]
    fn pooled_features_have_the_reported_dimension() {
        for kind in [
            AttentionKind::None,
            AttentionKind::Se,
            AttentionKind::Cbam,
            AttentionKind::CbamOfficial,
        ] {
            let fx = FeatureExtractor::new(
                &config(kind),
                None,
                AttentionTraining::FrozenAtInit,
                0,
                Device::Cpu,
            )
            .unwrap();
            let x = Tensor::randn([2, 3, 128, 128], (tch::Kind::Float, Device::Cpu));
            let f = fx.pooled_features(&x, false);
            assert_eq!(f.size(), vec![2, fx.feature_dim()]);
            assert!(fx.is_frozen());
        }
    }

    #[test]
    fn se_with_r2_adds_the_expected_parameters() {
        let fx = FeatureExtractor::new(
            &config(AttentionKind::Se),
            None,
            AttentionTraining::Joint,
            0,
            Device::Cpu,
        )
        .unwrap();
        let n: i64 = fx
            .attention_vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        // Two bias-free linears C→C/2→C at 64, 192 and 256 channels.
        assert_eq!(n, 64 * 64 + 192 * 192 + 256 * 256);
        assert!(!fx.is_frozen());
    }

    #[test]
    fn bad_positions_and_sizes_are_refused() {
        let mut c = config(AttentionKind::Se);
        c.positions = vec!["conv9".into()];
        let e = FeatureExtractor::new(&c, None, AttentionTraining::FrozenAtInit, 0, Device::Cpu)
            .unwrap_err();
        assert!(e.to_string().contains("conv9"), "{e}");
        let mut c = config(AttentionKind::None);
        c.image_size = 224;
        c.scales = 3;
        let e = FeatureExtractor::new(&c, None, AttentionTraining::FrozenAtInit, 0, Device::Cpu)
            .unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
    }
}
