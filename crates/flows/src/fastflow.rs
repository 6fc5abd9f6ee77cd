//! FastFlow (Yu et al. 2021): one 2D normalizing flow per feature-map scale, as anomalib
//! 2.7.0 builds it (its `fastflow/torch_model.py` over its own `AllInOneBlock`), so that its
//! weights load here by their names and the two compute the same numbers.
//!
//! Per scale, the backbone's map `[N, C, h, w]` is layer-normalised over `(C, h, w)` with a
//! learnt weight and bias per position, then passes `flow_steps` blocks. A block splits the
//! channels (the first ⌈C/2⌉ condition the last ⌊C/2⌋), runs a two-convolution subnet on
//! the first part (3 × 3 convolutions on even steps, 1 × 1 on odd ones unless
//! `conv3x3_only`), scales the subnet's output by 0.1, and applies
//! `y₂ = x₂·exp(clamp·tanh(s)) + t`; then a learnt per-channel affine
//! `u·0.1·softplus₀.₅(g) + o` and a fixed channel permutation.
//!
//! Where anomalib departs from the paper, this follows anomalib (the goldens are made from
//! it): the soft clamp is `clamp·tanh(s)`, not FrEIA's `clamp·tanh(s/clamp)`; the 0.1
//! multiplies the shift too; the subnet's hidden width is `hidden_ratio` × the conditioning
//! half, not × C.
//!
//! The loss is `Σ_scales mean_N(½‖z‖² − log|det J|)`. The anomaly map is, per scale,
//! `−exp(−½·mean_C z²)` upsampled bilinearly to the input and averaged over the scales; the
//! image score is the map's maximum.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::all_in_one::AffinePermute;
use crate::init::conv2d;

/// FastFlow's settings (anomalib's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FastFlowConfig {
    /// Blocks per scale.
    pub flow_steps: usize,
    /// 3 × 3 convolutions on every step, not only the even ones.
    pub conv3x3_only: bool,
    /// The subnet's hidden channels over the conditioning channels.
    pub hidden_ratio: f64,
    /// The coupling's scale is `clamp·tanh(s)`.
    pub clamp: f64,
}

impl Default for FastFlowConfig {
    fn default() -> Self {
        FastFlowConfig {
            flow_steps: 8,
            conv3x3_only: false,
            hidden_ratio: 1.0,
            clamp: 2.0,
        }
    }
}

/// One block: affine coupling, per-channel affine, channel permutation.
#[derive(Debug)]
pub struct FlowBlock {
    /// Named `subnet.0` and `subnet.2`, as anomalib 2.7.0's `nn.Sequential` numbers them.
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    affine: AffinePermute,
    split: (i64, i64),
    clamp: f64,
}

impl FlowBlock {
    fn new(p: &nn::Path, channels: i64, kernel: i64, config: &FastFlowConfig) -> Self {
        let c1 = channels - channels / 2;
        let c2 = channels / 2;
        let hidden = (c1 as f64 * config.hidden_ratio) as i64;
        let affine = AffinePermute::new(p, channels, 2);
        let subnet = p / "subnet";
        FlowBlock {
            conv1: conv2d(&subnet / "0", c1, hidden, kernel, 1),
            conv2: conv2d(&subnet / "2", hidden, 2 * c2, kernel, 1),
            affine,
            split: (c1, c2),
            clamp: config.clamp,
        }
    }

    /// `(y, log|det J|)` of `x` `[N, C, h, w]`, the log-determinant `[N]`.
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (c1, c2) = self.split;
        let (h, w) = (x.size()[2], x.size()[3]);
        let x1 = x.narrow(1, 0, c1);
        let x2 = x.narrow(1, c1, c2);
        let a = self.conv2.forward(&self.conv1.forward(&x1).relu()) * 0.1;
        let s = a.narrow(1, 0, c2).tanh() * self.clamp;
        let t = a.narrow(1, c2, c2);
        let y2 = x2 * s.exp() + t;
        let log_det = s.sum_dim_intlist([1, 2, 3].as_slice(), false, s.kind());
        let (out, affine_log_det) = self.affine.forward(&Tensor::cat(&[x1, y2], 1));
        (out, log_det + affine_log_det * (h * w) as f64)
    }
}

/// One scale: the layer norm and its blocks.
#[derive(Debug)]
pub struct ScaleFlow {
    norm: nn::LayerNorm,
    blocks: Vec<FlowBlock>,
}

impl ScaleFlow {
    /// `(z, log|det J|)` of the backbone's map at this scale.
    pub fn forward(&self, features: &Tensor) -> (Tensor, Tensor) {
        let mut x = self.norm.forward(features);
        let mut log_det = Tensor::zeros([features.size()[0]], (features.kind(), features.device()));
        for block in &self.blocks {
            let (y, j) = block.forward(&x);
            x = y;
            log_det = j + log_det;
        }
        (x, log_det)
    }
}

/// FastFlow over several feature-map scales.
#[derive(Debug)]
pub struct FastFlow {
    scales: Vec<ScaleFlow>,
}

impl FastFlow {
    /// Builds one flow per `(C, h, w)` of `dims` under `p`: `norms.{i}` and
    /// `fast_flow_blocks.{i}.module_list.{k}`, anomalib's names.
    pub fn new(p: &nn::Path, dims: &[(i64, i64, i64)], config: &FastFlowConfig) -> Self {
        let scales = dims
            .iter()
            .enumerate()
            .map(|(i, &(c, h, w))| {
                let norm = nn::layer_norm(
                    p / "norms" / i,
                    vec![c, h, w],
                    nn::LayerNormConfig {
                        eps: 1e-5,
                        ..Default::default()
                    },
                );
                let blocks_path = p / "fast_flow_blocks" / i / "module_list";
                let blocks = (0..config.flow_steps)
                    .map(|k| {
                        let kernel = if k % 2 == 1 && !config.conv3x3_only {
                            1
                        } else {
                            3
                        };
                        FlowBlock::new(&(&blocks_path / k), c, kernel, config)
                    })
                    .collect();
                ScaleFlow { norm, blocks }
            })
            .collect();
        FastFlow { scales }
    }

    /// `(z, log|det J|)` per scale of `features` (one map per scale, in order).
    pub fn forward(&self, features: &[Tensor]) -> Vec<(Tensor, Tensor)> {
        assert_eq!(
            features.len(),
            self.scales.len(),
            "one feature map per scale"
        );
        self.scales
            .iter()
            .zip(features)
            .map(|(s, f)| s.forward(f))
            .collect()
    }
}

/// FastFlow's loss: `Σ_scales mean_N(½·Σ z² − log|det J|)`.
pub fn fastflow_loss(outputs: &[(Tensor, Tensor)]) -> Tensor {
    let mut loss: Option<Tensor> = None;
    for (z, log_det) in outputs {
        let term = (z
            .square()
            .sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float)
            * 0.5
            - log_det)
            .mean(Kind::Float);
        loss = Some(match loss {
            None => term,
            Some(l) => l + term,
        });
    }
    loss.expect("at least one scale")
}

/// The anomaly map `[N, 1, H, W]` at `size` = `(H, W)`: per scale `−exp(−½·mean_C z²)`
/// upsampled bilinearly (half-pixel centres), averaged over the scales. In `[−1, 0)`: higher
/// is more anomalous.
pub fn fastflow_map(outputs: &[(Tensor, Tensor)], size: (i64, i64)) -> Tensor {
    let maps: Vec<Tensor> = outputs
        .iter()
        .map(|(z, _)| {
            let log_prob = z.square().mean_dim([1].as_slice(), true, Kind::Float) * -0.5;
            (-log_prob.exp()).upsample_bilinear2d([size.0, size.1], false, None, None)
        })
        .collect();
    Tensor::stack(&maps, -1).mean_dim([-1].as_slice(), false, Kind::Float)
}

/// The image score: the map's maximum, `[N]`.
pub fn fastflow_score(map: &Tensor) -> Tensor {
    map.amax([1, 2, 3].as_slice(), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn block(channels: i64, kernel: i64) -> (nn::VarStore, FlowBlock) {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let b = FlowBlock::new(&vs.root(), channels, kernel, &FastFlowConfig::default());
        vs.double();
        (vs, b)
    }

    #[test]
    fn the_global_affine_starts_at_one_and_the_permutation_is_one() {
        let (_vs, b) = block(5, 3);
        let (global_scale, w_perm) = b.affine.parts();
        let scale = (global_scale * 0.5).softplus() * 2.0 * 0.1;
        let e = f64::try_from((scale - 1.0).abs().max()).unwrap();
        assert!(e < 1e-6, "{e:e}");
        let w = w_perm.view([5, 5]);
        for dim in [0, 1] {
            let sums = w.sum_dim_intlist([dim].as_slice(), false, Kind::Double);
            assert_eq!(f64::try_from((sums - 1.0).abs().max()).unwrap(), 0.0);
        }
    }

    #[test]
    fn the_log_determinant_is_the_jacobian_s() {
        // A 3-channel, 2 × 1 map: 6 inputs, the full Jacobian by autograd, in float64.
        let (vs, b) = block(3, 3);
        // Move the trained weights off their start (the permutation stays one).
        tch::no_grad(|| {
            for mut v in vs.trainable_variables() {
                let moved = &v + v.randn_like() * 0.3;
                v.copy_(&moved);
            }
        });
        let x = Tensor::randn([1, 3, 2, 1], (Kind::Double, Device::Cpu)).set_requires_grad(true);
        let (y, log_det) = b.forward(&x);
        let y = y.reshape([-1]);
        let rows: Vec<Tensor> = (0..6)
            .map(|i| {
                let g = Tensor::run_backward(&[y.get(i)], &[&x], true, false);
                g[0].reshape([-1])
            })
            .collect();
        let jacobian = Tensor::stack(&rows, 0);
        let (_, logabsdet) = Tensor::linalg_slogdet(&jacobian);
        let expected = f64::try_from(logabsdet).unwrap();
        let got = f64::try_from(log_det.get(0)).unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }
}
