//! Attention modules of AttentDifferNet: squeeze-and-excitation and two CBAM variants.

use tch::Tensor;
use tch::nn::{self, Module, ModuleT};

use crate::{AttentionInit, AttentionKind, init};

/// A gate from its pre-activation: `sigmoid(a)` in `(0, 1)`, or `2·sigmoid(a)` in `(0, 2)`
/// for identity-initialised modules, which is 1 where `a` starts at 0.
fn gate(a: &Tensor, identity: bool) -> Tensor {
    if identity {
        a.sigmoid() * 2.0
    } else {
        a.sigmoid()
    }
}

/// Zeroes a layer's weight and bias: the last layer of an identity-initialised gate.
fn zero(ws: &mut Tensor, bs: Option<&mut Tensor>) {
    tch::no_grad(|| {
        let _ = ws.zero_();
        if let Some(b) = bs {
            let _ = b.zero_();
        }
    });
}

/// Squeeze-and-excitation (Hu et al.), the AttentDifferNet lab's form: global average pool,
/// `Linear(C, C/r, no bias)`, ReLU, `Linear(C/r, C, no bias)`, sigmoid, channel scaling.
#[derive(Debug)]
pub struct SqueezeExcitation {
    fc1: nn::Linear,
    fc2: nn::Linear,
    identity: bool,
}

impl SqueezeExcitation {
    pub fn new(p: &nn::Path, channels: i64, reduction: i64, start: AttentionInit) -> Self {
        let hidden = (channels / reduction).max(1);
        let fc1 = nn::linear(p / "fc1", channels, hidden, init::linear(channels, false));
        let mut fc2 = nn::linear(p / "fc2", hidden, channels, init::linear(hidden, false));
        let identity = start == AttentionInit::Identity;
        if identity {
            zero(&mut fc2.ws, fc2.bs.as_mut());
        }
        SqueezeExcitation { fc1, fc2, identity }
    }

    /// The channel weights `s`, shape `[N, C]`: in `(0, 1)`, or `(0, 2)` starting at 1 for
    /// an identity-initialised module.
    pub fn channel_weights(&self, xs: &Tensor) -> Tensor {
        let squeezed = xs.mean_dim([2, 3].as_slice(), false, xs.kind());
        gate(
            &self.fc2.forward(&self.fc1.forward(&squeezed).relu()),
            self.identity,
        )
    }
}

/// CBAM (Woo et al. 2018): a channel gate from average- and max-pooled descriptors through a
/// shared MLP, then a spatial gate from a convolution over [max, mean] across channels.
#[derive(Debug)]
pub struct Cbam {
    mlp1: nn::Conv2D,
    mlp2: nn::Conv2D,
    spatial: nn::Conv2D,
    spatial_bn: Option<nn::BatchNorm>,
    residual: bool,
    identity: bool,
}

impl Cbam {
    /// The lab variant: r = 16, 1×1-conv MLP without bias, spatial k = 49 with bias,
    /// no BatchNorm, `out + x`.
    pub fn lab(p: &nn::Path, channels: i64, start: AttentionInit) -> Self {
        Self::build(p, channels, 16, 49, false, false, true).starting(start)
    }

    /// The original CBAM: r = 16, MLP with bias, spatial k = 7 without bias followed by
    /// BatchNorm, no residual.
    pub fn official(p: &nn::Path, channels: i64, start: AttentionInit) -> Self {
        Self::build(p, channels, 16, 7, true, true, false).starting(start)
    }

    /// Zeroes the last layer of both gates for an identity start. In the official variant
    /// that layer is the spatial BatchNorm's scale: a zeroed convolution before it would feed
    /// it a constant, which BatchNorm in training mode blows up (its gradient scales by
    /// 1/√eps) and renormalises to sd 1 after one step.
    fn starting(mut self, start: AttentionInit) -> Self {
        self.identity = start == AttentionInit::Identity;
        if self.identity {
            zero(&mut self.mlp2.ws, self.mlp2.bs.as_mut());
            match self.spatial_bn.as_mut() {
                Some(bn) => zero(bn.ws.as_mut().expect("an affine BatchNorm"), bn.bs.as_mut()),
                None => zero(&mut self.spatial.ws, self.spatial.bs.as_mut()),
            }
        }
        self
    }

    fn build(
        p: &nn::Path,
        channels: i64,
        reduction: i64,
        kernel: i64,
        mlp_bias: bool,
        batch_norm: bool,
        residual: bool,
    ) -> Self {
        let hidden = (channels / reduction).max(1);
        let bn_cfg = nn::BatchNormConfig {
            eps: 1e-5,
            momentum: 0.01,
            ..Default::default()
        };
        Cbam {
            mlp1: nn::conv2d(
                p / "mlp1",
                channels,
                hidden,
                1,
                init::conv(channels, 1, 0, mlp_bias),
            ),
            mlp2: nn::conv2d(
                p / "mlp2",
                hidden,
                channels,
                1,
                init::conv(hidden, 1, 0, mlp_bias),
            ),
            spatial: nn::conv2d(
                p / "spatial",
                2,
                1,
                kernel,
                init::conv(2 * kernel * kernel, 1, kernel / 2, !batch_norm),
            ),
            spatial_bn: batch_norm.then(|| nn::batch_norm2d(p / "spatial_bn", 1, bn_cfg)),
            residual,
            identity: false,
        }
    }

    fn channel_gate(&self, xs: &Tensor) -> Tensor {
        let mlp = |t: &Tensor| self.mlp2.forward(&self.mlp1.forward(t).relu());
        let avg = xs.adaptive_avg_pool2d([1, 1]);
        let max = xs.adaptive_max_pool2d([1, 1]).0;
        gate(&(mlp(&avg) + mlp(&max)), self.identity)
    }

    /// The spatial attention map, shape `[N, 1, H, W]`, in `(0, 1)` (or `(0, 2)` from an
    /// identity start), for input `xs` already scaled by the channel gate.
    fn spatial_gate(&self, xs: &Tensor, train: bool) -> Tensor {
        let max = xs.amax([1].as_slice(), true);
        let mean = xs.mean_dim([1].as_slice(), true, xs.kind());
        let mut s = self.spatial.forward(&Tensor::cat(&[max, mean], 1));
        if let Some(bn) = &self.spatial_bn {
            s = bn.forward_t(&s, train);
        }
        gate(&s, self.identity)
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = xs * self.channel_gate(xs);
        let out = &out * self.spatial_gate(&out, train);
        match (self.residual, self.identity) {
            (false, _) => out,
            (true, false) => out + xs,
            (true, true) => (out + xs) * 0.5,
        }
    }
}

/// One attention block at one position.
#[derive(Debug)]
pub enum AttentionBlock {
    Se(SqueezeExcitation),
    Cbam(Box<Cbam>),
}

impl AttentionBlock {
    /// Builds the block of `kind` for `channels` input channels; `None` for no attention.
    pub fn new(
        p: &nn::Path,
        kind: AttentionKind,
        channels: i64,
        se_reduction: i64,
        start: AttentionInit,
    ) -> Option<Self> {
        match kind {
            AttentionKind::None => None,
            AttentionKind::Se => Some(Self::Se(SqueezeExcitation::new(
                p,
                channels,
                se_reduction,
                start,
            ))),
            AttentionKind::Cbam => Some(Self::Cbam(Box::new(Cbam::lab(p, channels, start)))),
            AttentionKind::CbamOfficial => {
                Some(Self::Cbam(Box::new(Cbam::official(p, channels, start))))
            }
        }
    }

    /// Every gate this block multiplies its input by, named: SE `("channel", [N, C])`; CBAM
    /// `("channel", [N, C, 1, 1])` then `("spatial", [N, 1, H, W])`. For the diagnostics and
    /// `adn explain`'s pictures.
    pub fn gates(&self, xs: &Tensor) -> Vec<(&'static str, Tensor)> {
        match self {
            Self::Se(se) => vec![("channel", se.channel_weights(xs))],
            Self::Cbam(cbam) => {
                let channel = cbam.channel_gate(xs);
                let spatial = cbam.spatial_gate(&(xs * &channel), false);
                vec![("channel", channel), ("spatial", spatial)]
            }
        }
    }
}

impl ModuleT for AttentionBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Self::Se(se) => {
                let s = se.channel_weights(xs);
                xs * s.unsqueeze(-1).unsqueeze(-1)
            }
            Self::Cbam(cbam) => cbam.forward_t(xs, train),
        }
    }
}
