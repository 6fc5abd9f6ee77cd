//! Grad-CAM (Selvaraju et al. 2017) for an anomaly score: which regions of a layer's
//! activation raise the score the most.
//!
//! With `A` the layer's activation at the first scale and `y` a scalar score computed from
//! the pooled multi-scale features, the map is `ReLU(Σ_c mean_hw(∂y/∂A_c) · A_c)`, upsampled
//! bilinearly to the input size. [`FeatureExtractor::grad_cam`] divides each map by its
//! own maximum (the usual picture); [`FeatureExtractor::grad_cam_unscaled`] keeps the values,
//! so that maps of several images or models can share one colour scale.

use tch::Tensor;

use crate::{BackboneError, FeatureExtractor};

impl FeatureExtractor {
    /// Grad-CAM maps `[N, H, W]` in `[0, 1]` for images `[N, 3, H, W]` at `layer`, where
    /// `score` maps pooled features `[N, D]` to per-image scores `[N]`: each map divided by
    /// its maximum.
    pub fn grad_cam(
        &self,
        xs: &Tensor,
        layer: &str,
        score: &dyn Fn(&Tensor) -> Tensor,
    ) -> Result<Tensor, BackboneError> {
        let cam = self.grad_cam_unscaled(xs, layer, score)?;
        let max = cam.amax([1, 2].as_slice(), true).clamp_min(1e-12);
        Ok(cam / max)
    }

    /// The Grad-CAM maps `[N, H, W]` before any scaling: `ReLU(Σ_c mean_hw(∂y/∂A_c) · A_c)`
    /// in the score's units per activation position, upsampled to the input size.
    pub fn grad_cam_unscaled(
        &self,
        xs: &Tensor,
        layer: &str,
        score: &dyn Fn(&Tensor) -> Tensor,
    ) -> Result<Tensor, BackboneError> {
        if self.config().kind.channels_at(layer).is_none() {
            return Err(BackboneError::UnknownPosition {
                key: "the Grad-CAM layer",
                position: layer.into(),
                backbone: self.config().kind.name(),
                known: self.config().kind.positions().join(", "),
            });
        }
        let (h, w) = (xs.size()[2], xs.size()[3]);
        let mut captured: Option<Tensor> = None;
        let features = tch::with_grad(|| {
            self.pooled_features_hooked(xs, false, &mut |position, x| {
                if position == layer && captured.is_none() {
                    // A leaf to differentiate against; the forward continues from it.
                    let leaf = x.detach().set_requires_grad(true);
                    captured = Some(leaf.shallow_clone());
                    leaf
                } else {
                    x
                }
            })
        });
        let activation = captured.ok_or_else(|| {
            BackboneError::Config(format!(
                "layer {layer} is not reached by the feature extractor"
            ))
        })?;
        let total = tch::with_grad(|| score(&features).sum(features.kind()));
        let grads = Tensor::run_backward(&[total], &[&activation], false, false);
        let weights = grads[0].mean_dim([2, 3].as_slice(), true, activation.kind());
        let cam = (weights * activation.detach())
            .sum_dim_intlist(1, true, activation.kind())
            .relu();
        Ok(cam
            .upsample_bilinear2d([h, w], false, None, None)
            .squeeze_dim(1))
    }
}
