//! The forward pass: each scale through the backbone with its attention, the feature
//! layers' outputs pooled and concatenated; the gates for the pictures of the attention.

use tch::Tensor;
use tch::nn::ModuleT;

use super::FeatureExtractor;
use super::layout::pooled_kind;
use crate::backbone::Tap;

impl FeatureExtractor {
    /// The images at scale `s` (nearest-neighbour downscaling by `2^s`).
    pub(super) fn at_scale(xs: &Tensor, s: usize) -> Tensor {
        if s == 0 {
            return xs.shallow_clone();
        }
        let (h, w) = (xs.size()[2], xs.size()[3]);
        let f = 1i64 << s;
        xs.upsample_nearest2d([h / f, w / f], None, None)
    }

    /// Runs one scale, attention applied, and returns the output of every feature layer.
    pub fn feature_maps(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        self.feature_maps_with(xs, train, &mut |_, x| x)
    }

    /// The feature layers' maps at every scale, scale after scale (a flow on maps' inputs:
    /// FastFlow's layers at one scale, CS-Flow's one layer at three).
    pub fn feature_maps_per_scale(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        (0..self.config.scales)
            .flat_map(|s| self.feature_maps(&Self::at_scale(xs, s), train))
            .collect()
    }

    /// [`FeatureExtractor::feature_maps`] with a hook after each position (after its
    /// attention) that may replace the tensor that continues.
    pub(super) fn feature_maps_with(&self, xs: &Tensor, train: bool, hook: Tap<'_>) -> Vec<Tensor> {
        let xs = self.laid_out(xs);
        let mut maps = Vec::new();
        let mut tap = |position: &str, x: Tensor| {
            let x = match self.blocks.iter().find(|(p, _)| p == position) {
                Some((_, block)) => block.forward_t(&x, train),
                None => x,
            };
            let x = hook(position, x);
            if self.config.feature_layers.iter().any(|l| l == position) {
                maps.push(x.shallow_clone());
            }
            x
        };
        let _ = self.net.forward_with(&xs, Some(&self.last_layer), &mut tap);
        maps
    }

    /// Pooled features `[N, feature_dim]` of normalised images `[N, 3, S, S]`
    /// (`S = image_size`); smaller scales are nearest-neighbour downscalings.
    pub fn pooled_features(&self, xs: &Tensor, train: bool) -> Tensor {
        self.pooled_features_hooked(xs, train, &mut |_, x| x)
    }

    /// [`FeatureExtractor::pooled_features`] with a hook on the first scale's positions.
    pub(crate) fn pooled_features_hooked(&self, xs: &Tensor, train: bool, hook: Tap<'_>) -> Tensor {
        let mut pooled = Vec::new();
        for s in 0..self.config.scales {
            let maps = if s == 0 {
                self.feature_maps_with(xs, train, hook)
            } else {
                self.feature_maps(&Self::at_scale(xs, s), train)
            };
            for map in maps {
                pooled.push(map.mean_dim([2, 3].as_slice(), false, pooled_kind(map.kind())));
            }
        }
        Tensor::cat(&pooled, 1)
    }

    /// Every gate at every attention position for one scale, in position order: SE
    /// `("channel", [N, C])`; CBAM `("channel", [N, C, 1, 1])` then `("spatial",
    /// [N, 1, H, W])` (see [`AttentionBlock::gates`]). Eval mode; the pictures of
    /// `adn explain` are drawn from these.
    pub fn attention_gates(&self, xs: &Tensor) -> Vec<(String, Vec<(&'static str, Tensor)>)> {
        let xs = self.laid_out(xs);
        let mut out = Vec::new();
        let mut tap =
            |position: &str, x: Tensor| match self.blocks.iter().find(|(p, _)| p == position) {
                Some((name, block)) => {
                    out.push((name.clone(), block.gates(&x)));
                    block.forward_t(&x, false)
                }
                None => x,
            };
        let _ = self.net.forward_with(&xs, Some(&self.last_layer), &mut tap);
        out
    }
}
