//! The end of anomalib's `AllInOneBlock` that FastFlow and CFlow-AD share: after the affine
//! coupling, a learnt per-channel affine `u·0.1·softplus₀.₅(g) + o` (it starts at `u`), then a
//! fixed channel permutation stored as a one-hot matrix (`w_perm`, not trained, with its
//! transpose `w_perm_inv`), as anomalib stores it so that its weights load by name.

use tch::nn::{self, Init};
use tch::{Kind, Tensor};

#[derive(Debug)]
pub(crate) struct AffinePermute {
    global_scale: Tensor,
    global_offset: Tensor,
    w_perm: Tensor,
}

impl AffinePermute {
    /// Under `p`: `global_scale` and `global_offset` `[1, C, 1…]` with `rank` trailing
    /// spatial ones, a permutation drawn from libtorch's generator.
    pub(crate) fn new(p: &nn::Path, channels: i64, rank: usize) -> Self {
        let mut shape = vec![1, channels];
        shape.extend(std::iter::repeat_n(1, rank));
        // softplus₀.₅⁻¹(10) in float32, as anomalib computes it: the affine starts at 1.
        let g0 = f64::try_from((Tensor::from(5.0f32).exp() - 1.0).log() * 2.0).expect("a scalar");
        let global_scale = p.var("global_scale", &shape, Init::Const(g0));
        let global_offset = p.var("global_offset", &shape, Init::Const(0.0));
        let order = Tensor::randperm(channels, (Kind::Int64, p.device()));
        let mut perm_shape = vec![channels, channels];
        perm_shape.extend(std::iter::repeat_n(1, rank));
        let w_perm = p.zeros_no_train("w_perm", &perm_shape);
        let w_perm_inv = p.zeros_no_train("w_perm_inv", &perm_shape);
        tch::no_grad(|| {
            let one_hot = Tensor::eye(channels, (Kind::Float, p.device())).index_select(0, &order);
            w_perm
                .shallow_clone()
                .copy_(&one_hot.view(perm_shape.as_slice()));
            w_perm_inv
                .shallow_clone()
                .copy_(&one_hot.tr().view(perm_shape.as_slice()));
        });
        AffinePermute {
            global_scale,
            global_offset,
            w_perm,
        }
    }

    /// The affine and the permutation of `u` `[N, C, …]`, with the affine's log-determinant
    /// per position (`Σ_c log scale_c`, a scalar).
    pub(crate) fn forward(&self, u: &Tensor) -> (Tensor, Tensor) {
        // softplus with β = ½ (threshold 20 on β·g, as PyTorch's): softplus(g/2)·2.
        let scale = (&self.global_scale * 0.5).softplus() * 2.0 * 0.1;
        let log_det = scale.log().sum(scale.kind());
        let v = u * &scale + &self.global_offset;
        // The one-hot permutation as the gather it is: output channel i is input order[i].
        let c = self.w_perm.size()[0];
        let order = self.w_perm.view([c, -1]).argmax(1, false);
        (v.index_select(1, &order), log_det)
    }

    #[cfg(test)]
    pub(crate) fn parts(&self) -> (&Tensor, &Tensor) {
        (&self.global_scale, &self.w_perm)
    }
}
