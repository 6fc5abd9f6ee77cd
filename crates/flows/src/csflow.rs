//! CS-Flow (Rudolph et al., WACV 2022): one flow over three feature-map scales at once, as
//! anomalib 2.7.0 builds it (`csflow/torch_model.py`: `CrossScaleFlow`'s graph of
//! `ParallelPermute` and `ParallelGlowCouplingLayer`), so that its weights load here by their
//! names and the two compute the same numbers.
//!
//! The three maps `[N, C, H/2ˢ, W/2ˢ]` pass `blocks` blocks. A block permutes the channels
//! (`np.random.default_rng(block).permutation(C)`, the same at every scale), then couples
//! the halves GLOW-style across scales: cross-scale convolutions of the second halves give
//! scale and shift of the first, `y₁ = e(s)·x₁ + t`, then of the new first halves for the
//! second. A cross-scale convolution runs a conv and a leaky ReLU (slope 0.1) per scale, a
//! second conv back, and adds each neighbour's hidden map (upsampled ×2 then a conv from the
//! coarser scale, a stride-2 conv from the finer), times a learnt `γ` per scale that starts
//! at 0 (a fresh flow is the identity up to the permutations). `e(s) = exp(α·0.636·atan(s/α))`.
//! Kernels are 3 × 3 but 5 × 5 in the last block.
//!
//! Where anomalib departs from the paper, this follows anomalib (the goldens are made from
//! it): each block's log-determinant is summed over the batch as well as the positions, so
//! every image's `log|det J|` is the batch's total and the loss's log-det term grows with
//! the batch; the image score is `mean(z²/2)` over every position of every scale; the map
//! is the product over scales of `mean_C z²` upsampled to the input.

use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

use crate::init::conv2d;
use crate::numpy_rng::default_rng_permutation;

/// CS-Flow's settings (anomalib's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CsFlowConfig {
    /// Coupling blocks; the last has 5 × 5 kernels.
    pub blocks: usize,
    /// Hidden channels of the cross-scale convolutions.
    pub hidden: i64,
    /// α of the soft clamp `α·0.636·atan(s/α)`.
    pub clamp: f64,
}

impl Default for CsFlowConfig {
    fn default() -> Self {
        CsFlowConfig {
            blocks: 4,
            hidden: 1024,
            clamp: 3.0,
        }
    }
}

/// Leaky ReLU with slope 0.1 (tch's has PyTorch's default 0.01): `x` where positive, else
/// `0.1·x`, as ATen's kernel computes it (and so its gradient).
fn leaky_relu(x: &Tensor) -> Tensor {
    x.where_self(&x.gt(0.0), &(x * 0.1))
}

/// The subnet of one coupling half: three scales in, three out, with cross-scale terms.
#[derive(Debug)]
struct CrossConvolutions {
    gamma: [Tensor; 3],
    first: [nn::Conv2D; 3],
    second: [nn::Conv2D; 3],
    up_conv10: nn::Conv2D,
    up_conv21: nn::Conv2D,
    down_conv01: nn::Conv2D,
    down_conv12: nn::Conv2D,
}

impl CrossConvolutions {
    fn new(p: &nn::Path, c_in: i64, c_out: i64, hidden: i64, k: i64) -> Self {
        let gamma = [0, 1, 2].map(|s| p.var(&format!("gamma{s}"), &[1], Init::Const(0.0)));
        let first = [0, 1, 2].map(|s| conv2d(p / format!("conv_scale{s}_0"), c_in, hidden, k, 1));
        let second = [0, 1, 2].map(|s| conv2d(p / format!("conv_scale{s}_1"), hidden, c_out, k, 1));
        CrossConvolutions {
            gamma,
            first,
            second,
            up_conv10: conv2d(p / "up_conv10", hidden, c_out, k, 1),
            up_conv21: conv2d(p / "up_conv21", hidden, c_out, k, 1),
            down_conv01: conv2d(p / "down_conv01", hidden, c_out, k, 2),
            down_conv12: conv2d(p / "down_conv12", hidden, c_out, k, 2),
        }
    }

    fn forward(&self, x: [&Tensor; 3]) -> [Tensor; 3] {
        let hidden: Vec<Tensor> = (0..3)
            .map(|s| leaky_relu(&self.first[s].forward(x[s])))
            .collect();
        let own: Vec<Tensor> = (0..3).map(|s| self.second[s].forward(&hidden[s])).collect();
        let up = |t: &Tensor| {
            let (h, w) = (t.size()[2], t.size()[3]);
            t.upsample_bilinear2d([2 * h, 2 * w], false, Some(2.0), Some(2.0))
        };
        let up1 = self.up_conv10.forward(&up(&hidden[1]));
        let up2 = self.up_conv21.forward(&up(&hidden[2]));
        let down0 = self.down_conv01.forward(&hidden[0]);
        let down1 = self.down_conv12.forward(&hidden[1]);
        [
            (&own[0] + up1) * &self.gamma[0],
            (&own[1] + down0 + up2) * &self.gamma[1],
            (&own[2] + down1) * &self.gamma[2],
        ]
    }
}

/// One block's coupling of the two channel halves at the three scales.
#[derive(Debug)]
struct CrossScaleCoupling {
    /// Conditioned on the (new) first half, gives the second's scale and shift.
    cross_convolution1: CrossConvolutions,
    /// Conditioned on the second half, gives the first's.
    cross_convolution2: CrossConvolutions,
    split: (i64, i64),
    clamp: f64,
}

impl CrossScaleCoupling {
    fn new(p: &nn::Path, channels: i64, hidden: i64, k: i64, clamp: f64) -> Self {
        let (c1, c2) = (channels / 2, channels - channels / 2);
        CrossScaleCoupling {
            cross_convolution1: CrossConvolutions::new(
                &(p / "cross_convolution1"),
                c1,
                2 * c2,
                hidden,
                k,
            ),
            cross_convolution2: CrossConvolutions::new(
                &(p / "cross_convolution2"),
                c2,
                2 * c1,
                hidden,
                k,
            ),
            split: (c1, c2),
            clamp,
        }
    }

    /// `log e(s) = α·0.636·atan(s/α)`.
    fn log_e(&self, s: &Tensor) -> Tensor {
        (s / self.clamp).atan() * (self.clamp * 0.636)
    }

    /// The coupled maps and the block's log-determinant summed over the batch (a scalar).
    fn forward(&self, x: &[Tensor; 3]) -> ([Tensor; 3], Tensor) {
        let (c1, c2) = self.split;
        let first: Vec<Tensor> = x.iter().map(|t| t.narrow(1, 0, c1)).collect();
        let second: Vec<Tensor> = x.iter().map(|t| t.narrow(1, c1, c2)).collect();
        let r = self
            .cross_convolution2
            .forward([&second[0], &second[1], &second[2]]);
        let s_first: Vec<Tensor> = r.iter().map(|t| t.narrow(1, 0, c1)).collect();
        let y_first: Vec<Tensor> = (0..3)
            .map(|s| self.log_e(&s_first[s]).exp() * &first[s] + r[s].narrow(1, c1, c1))
            .collect();
        let q = self
            .cross_convolution1
            .forward([&y_first[0], &y_first[1], &y_first[2]]);
        let s_second: Vec<Tensor> = q.iter().map(|t| t.narrow(1, 0, c2)).collect();
        let y_second: Vec<Tensor> = (0..3)
            .map(|s| self.log_e(&s_second[s]).exp() * &second[s] + q[s].narrow(1, c2, c2))
            .collect();
        let sum = |t: Tensor| t.sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float);
        let jac: Vec<Tensor> = (0..3)
            .map(|s| sum(self.log_e(&s_second[s])) + sum(self.log_e(&s_first[s])))
            .collect();
        let z = [0, 1, 2].map(|s| Tensor::cat(&[&y_first[s], &y_second[s]], 1).clamp(-1e6, 1e6));
        (z, Tensor::stack(&jac, 1).sum(Kind::Float))
    }
}

/// CS-Flow over three feature-map scales.
#[derive(Debug)]
pub struct CsFlow {
    /// Each block's channel order, the same at every scale.
    permutations: Vec<Tensor>,
    couplings: Vec<CrossScaleCoupling>,
}

impl CsFlow {
    /// Builds the flow for `channels`-channel maps under `p`; block `b`'s coupling is
    /// `module_list.{2b + 1}` (the permutations, without parameters, hold the even indices),
    /// anomalib's names.
    pub fn new(p: &nn::Path, channels: i64, config: &CsFlowConfig) -> Self {
        let list = p / "module_list";
        let mut permutations = Vec::new();
        let mut couplings = Vec::new();
        for b in 0..config.blocks {
            let order: Vec<i64> = default_rng_permutation(b as u64, channels as usize)
                .into_iter()
                .map(|i| i as i64)
                .collect();
            permutations.push(Tensor::from_slice(&order).to_device(p.device()));
            let kernel = if b + 1 == config.blocks { 5 } else { 3 };
            couplings.push(CrossScaleCoupling::new(
                &(&list / (2 * b + 1)),
                channels,
                config.hidden,
                kernel,
                config.clamp,
            ));
        }
        CsFlow {
            permutations,
            couplings,
        }
    }

    /// `(z per scale, log|det J|)` of the three maps (finest first; each side half the
    /// previous one's). Every entry of `log|det J|` `[N]` is the batch's total, as anomalib's.
    pub fn forward(&self, features: &[Tensor; 3]) -> ([Tensor; 3], Tensor) {
        let n = features[0].size()[0];
        let mut x = [0, 1, 2].map(|s| features[s].shallow_clone());
        let mut log_det = Tensor::zeros([n], (Kind::Float, features[0].device()));
        for (order, coupling) in self.permutations.iter().zip(&self.couplings) {
            let permuted = [0, 1, 2].map(|s| x[s].index_select(1, order));
            let (y, j) = coupling.forward(&permuted);
            x = y;
            log_det += j;
        }
        (x, log_det)
    }
}

/// All of `z`'s values per image, `[N, D]`, scale after scale.
fn flat(z: &[Tensor; 3]) -> Tensor {
    let n = z[0].size()[0];
    Tensor::cat(&z.iter().map(|t| t.reshape([n, -1])).collect::<Vec<_>>(), 1)
}

/// CS-Flow's loss: `mean_N(½·Σ z² − log|det J|) / D`, `D` the values per image.
pub fn csflow_loss(z: &[Tensor; 3], log_det: &Tensor) -> Tensor {
    let all = flat(z);
    let d = all.size()[1] as f64;
    ((all
        .square()
        .sum_dim_intlist([1].as_slice(), false, Kind::Float)
        * 0.5
        - log_det)
        .mean(Kind::Float))
        / d
}

/// The image score `[N]`: `mean(z²/2)` over every value of every scale.
pub fn csflow_score(z: &[Tensor; 3]) -> Tensor {
    (flat(z).square() / 2.0).mean_dim([1].as_slice(), false, Kind::Float)
}

/// The anomaly map `[N, 1, H, W]` at `size`: the product over scales of `mean_C z²`,
/// each upsampled bilinearly (half-pixel centres) to the input.
pub fn csflow_map(z: &[Tensor; 3], size: (i64, i64)) -> Tensor {
    let n = z[0].size()[0];
    let mut map = Tensor::ones([n, 1, size.0, size.1], (Kind::Float, z[0].device()));
    for t in z {
        let mean = t.square().mean_dim([1].as_slice(), true, Kind::Float);
        map *= mean.upsample_bilinear2d([size.0, size.1], false, None, None);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn a_fresh_flow_only_permutes() {
        // γ starts at 0: every coupling is the identity, so z is the input permuted by each
        // block in turn and log|det J| is 0.
        let vs = nn::VarStore::new(Device::Cpu);
        let flow = CsFlow::new(
            &vs.root(),
            7,
            &CsFlowConfig {
                blocks: 3,
                hidden: 4,
                clamp: 3.0,
            },
        );
        let x = [8, 4, 2].map(|s| Tensor::randn([2, 7, s, s], (Kind::Float, Device::Cpu)));
        let (z, log_det) = flow.forward(&x);
        for s in 0..3 {
            let mut expected = x[s].shallow_clone();
            for b in 0..3 {
                let order: Vec<i64> = default_rng_permutation(b, 7)
                    .into_iter()
                    .map(|i| i as i64)
                    .collect();
                expected = expected.index_select(1, &Tensor::from_slice(&order));
            }
            assert_eq!(f64::try_from((&z[s] - expected).abs().max()).unwrap(), 0.0);
        }
        assert_eq!(f64::try_from(log_det.abs().max()).unwrap(), 0.0);
    }
}
