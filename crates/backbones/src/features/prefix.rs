//! Jointly trained attention starts from a frozen prefix: everything before the first
//! attention position, computed once per (image, rotation); the rest of the backbone then
//! runs from it with autograd, and diagnostics probe it.

use tch::nn::ModuleT;
use tch::{Kind, Tensor};

use super::layout::pooled_kind;
use super::{FeatureExtractor, GateStats};

impl FeatureExtractor {
    /// The frozen prefix of each scale: the activation at [`FeatureExtractor::trainable_from`]
    /// before its attention, computed without autograd. Panics when nothing trains.
    pub fn frozen_prefix(&self, xs: &Tensor) -> Vec<Tensor> {
        let start = self
            .trainable_from()
            .expect("frozen_prefix needs jointly trained attention")
            .to_string();
        let xs = self.laid_out(xs);
        tch::no_grad(|| {
            (0..self.config.scales)
                .map(|s| {
                    let mut out = None;
                    let _ = self.net.forward_with(
                        &Self::at_scale(&xs, s),
                        Some(&start),
                        &mut |p, x| {
                            if p == start {
                                out = Some(x.shallow_clone());
                            }
                            x
                        },
                    );
                    out.expect("the prefix reaches its last position")
                })
                .collect()
        })
    }

    /// Pooled features `[N, feature_dim]` from frozen prefixes (one per scale, as
    /// [`FeatureExtractor::frozen_prefix`] returns them), through the trainable attention
    /// and the rest of the backbone; gradients reach the attention parameters.
    pub fn pooled_from_prefix(&self, prefix: &[Tensor], train: bool) -> Tensor {
        self.walk_from_prefix(prefix, train, true, None)
    }

    /// [`FeatureExtractor::pooled_from_prefix`] with every attention block skipped, without
    /// autograd: what the pretrained backbone alone makes of the same prefix (vanilla's
    /// features, the reference of the volume charge).
    pub fn pooled_from_prefix_without_attention(&self, prefix: &[Tensor]) -> Tensor {
        tch::no_grad(|| self.walk_from_prefix(prefix, false, false, None))
    }

    /// Pooled features of the prefix (evaluation mode, no autograd) and the mean and sd of
    /// every gate at every attention position, over all images and gate entries.
    pub fn probe_from_prefix(&self, prefix: &[Tensor]) -> (Tensor, Vec<GateStats>) {
        let mut gates = Vec::new();
        let pooled = tch::no_grad(|| self.walk_from_prefix(prefix, false, true, Some(&mut gates)));
        (pooled, gates)
    }

    /// The feature layers' maps from frozen prefixes, scale after scale (as
    /// [`FeatureExtractor::feature_maps_per_scale`] orders them), through the trainable
    /// attention and the rest of the backbone; gradients reach the attention parameters.
    /// Every feature layer must lie at or after the first attention position.
    pub fn maps_from_prefix(&self, prefix: &[Tensor], train: bool) -> Vec<Tensor> {
        self.maps_walk(prefix, train, true, None)
            .into_iter()
            .flatten()
            .collect()
    }

    pub(super) fn walk_from_prefix(
        &self,
        prefix: &[Tensor],
        train: bool,
        attention: bool,
        gates: Option<&mut Vec<GateStats>>,
    ) -> Tensor {
        let mut pooled = Vec::new();
        for maps in self.maps_walk(prefix, train, attention, gates) {
            for map in maps {
                pooled.push(map.mean_dim([2, 3].as_slice(), false, pooled_kind(map.kind())));
            }
        }
        Tensor::cat(&pooled, 1)
    }

    /// Per scale, the feature layers' maps reached from the prefix.
    fn maps_walk(
        &self,
        prefix: &[Tensor],
        train: bool,
        attention: bool,
        mut gates: Option<&mut Vec<GateStats>>,
    ) -> Vec<Vec<Tensor>> {
        let start = self
            .trainable_from()
            .expect("features from the prefix need jointly trained attention");
        let mut per_scale = Vec::new();
        for (scale, x) in prefix.iter().enumerate() {
            let mut maps = Vec::new();
            let mut tap = |position: &str, x: Tensor| {
                let block = self.blocks.iter().find(|(p, _)| p == position);
                let x = match block {
                    Some((_, block)) if attention => {
                        if let Some(out) = gates.as_deref_mut() {
                            for (gate, g) in block.gates(&x) {
                                out.push(GateStats {
                                    position: position.to_string(),
                                    scale,
                                    gate: gate.to_string(),
                                    mean: g.mean(Kind::Float).double_value(&[]),
                                    sd: g.to_kind(Kind::Float).std(false).double_value(&[]),
                                });
                            }
                        }
                        block.forward_t(&x, train)
                    }
                    _ => x,
                };
                if self.config.feature_layers.iter().any(|l| l == position) {
                    maps.push(x.shallow_clone());
                }
                x
            };
            let _ = self
                .net
                .forward_from(x, Some(start), Some(&self.last_layer), &mut tap);
            per_scale.push(maps);
        }
        per_scale
    }
}
