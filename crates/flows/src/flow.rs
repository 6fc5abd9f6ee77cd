//! The DifferNet flow: `blocks` × [fixed permutation, GLOW coupling], then an output clamp.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::coupling::GlowCoupling;
use crate::numpy_rng::seeded_permutation;

/// Shape of the flow. Defaults are DifferNet's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Number of [permutation, coupling] blocks.
    pub coupling_blocks: usize,
    /// Width of the subnets' hidden layers.
    pub hidden: i64,
    /// α of the soft clamp `α·0.636·atan(s/α)`.
    pub clamp: f64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            coupling_blocks: 8,
            hidden: 2048,
            clamp: 3.0,
        }
    }
}

/// Latents are clamped to ±1e6, as DifferNet's output node does.
pub const Z_CLAMP: f64 = 1e6;

/// DifferNet's normalizing flow over `dim`-dimensional features.
#[derive(Debug)]
pub struct DifferNetFlow {
    dim: i64,
    permutations: Vec<Tensor>,
    inverse_permutations: Vec<Tensor>,
    couplings: Vec<GlowCoupling>,
}

impl DifferNetFlow {
    /// Builds the flow under `p`; coupling `k` is named `coupling.{k}` with subnets `s1`, `s2`
    /// and layers `fc1`, `fc2`, `fc2b`, `fc3`.
    pub fn new(p: &nn::Path, dim: i64, config: &FlowConfig) -> Self {
        let device: Device = p.device();
        let mut permutations = Vec::new();
        let mut inverse_permutations = Vec::new();
        let mut couplings = Vec::new();
        for k in 0..config.coupling_blocks {
            let perm = seeded_permutation(k as u32, dim as usize);
            let mut inverse = vec![0i64; perm.len()];
            for (i, &j) in perm.iter().enumerate() {
                inverse[j] = i as i64;
            }
            let perm: Vec<i64> = perm.into_iter().map(|j| j as i64).collect();
            permutations.push(Tensor::from_slice(&perm).to_device(device));
            inverse_permutations.push(Tensor::from_slice(&inverse).to_device(device));
            couplings.push(GlowCoupling::new(
                &(p / "coupling" / k),
                dim,
                config.hidden,
                config.clamp,
            ));
        }
        DifferNetFlow {
            dim,
            permutations,
            inverse_permutations,
            couplings,
        }
    }

    pub fn dim(&self) -> i64 {
        self.dim
    }

    /// `(z, log|det J|)` for features `x` of shape `[N, dim]`.
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        let mut log_det = Tensor::zeros([x.size()[0]], (x.kind(), x.device()));
        for (perm, coupling) in self.permutations.iter().zip(&self.couplings) {
            let (y, ld) = coupling.forward(&h.index_select(1, perm));
            h = y;
            log_det += ld;
        }
        (h.clamp(-Z_CLAMP, Z_CLAMP), log_det)
    }

    /// Maps latents back to features (the output clamp aside).
    pub fn inverse(&self, z: &Tensor) -> Tensor {
        let mut h = z.shallow_clone();
        for (inv, coupling) in self.inverse_permutations.iter().zip(&self.couplings).rev() {
            h = coupling.inverse(&h).index_select(1, inv);
        }
        h
    }
}

/// DifferNet's loss: `mean_batch(0.5·Σ z² − log|det J|) / dim`.
pub fn nll_loss(z: &Tensor, log_det: &Tensor) -> Tensor {
    let dim = z.size()[1] as f64;
    ((z.pow_tensor_scalar(2)
        .sum_dim_intlist(1, false, Kind::Float)
        * 0.5)
        - log_det)
        .mean(Kind::Float)
        / dim
}

/// DifferNet's anomaly score per image: the mean of `z²` over its `transforms` rows (all
/// transforms of one image are consecutive) and all dimensions.
pub fn anomaly_scores(z: &Tensor, transforms: i64) -> Tensor {
    let dim = z.size()[1];
    z.pow_tensor_scalar(2)
        .reshape([-1, transforms, dim])
        .mean_dim([1, 2].as_slice(), false, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_flow(dim: i64) -> (nn::VarStore, DifferNetFlow) {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FlowConfig {
            coupling_blocks: 4,
            hidden: 16,
            clamp: 3.0,
        };
        let flow = DifferNetFlow::new(&vs.root(), dim, &cfg);
        (vs, flow)
    }

    #[test]
    fn inverse_undoes_forward() {
        // In double precision: a random-init flow multiplies scales by up to e^3 per block,
        // so float32 rounding in `y - t` is amplified beyond any useful tolerance.
        let (mut vs, flow) = small_flow(7);
        vs.double();
        let x = Tensor::randn([5, 7], (Kind::Double, Device::Cpu));
        let (z, _) = flow.forward(&x);
        let back = flow.inverse(&z);
        let err = (back - &x).abs().max().double_value(&[]);
        // Rounding in `y - t` grows with the latents' magnitude (large for a random flow).
        let scale = z.abs().max().double_value(&[]);
        assert!(
            err < 1e-12 * scale.max(1.0).powi(2),
            "max reconstruction error {err}, max abs z {scale}"
        );
    }

    #[test]
    fn log_det_matches_a_brute_force_jacobian() {
        let (mut vs, flow) = small_flow(5);
        vs.double();
        let x = Tensor::randn([1, 5], (Kind::Double, Device::Cpu));
        let (_, log_det) = flow.forward(&x);
        // The full Jacobian by autograd, one output row at a time.
        let x = x.set_requires_grad(true);
        let (z, _) = flow.forward(&x);
        let rows: Vec<Tensor> = (0..5)
            .map(|i| {
                let g = Tensor::run_backward(&[z.get(0).get(i)], &[&x], true, false);
                g[0].get(0)
            })
            .collect();
        let jac = Tensor::stack(&rows, 0);
        let brute = jac.det().abs().log().double_value(&[]);
        let analytic = log_det.double_value(&[0]);
        assert!(
            (brute - analytic).abs() < 1e-9,
            "brute {brute} vs analytic {analytic}"
        );
    }

    #[test]
    fn scores_average_over_transforms_and_dims() {
        let z = Tensor::from_slice(&[1f32, 1., 3., 3., 0., 0., 2., 2.]).reshape([4, 2]);
        let s = anomaly_scores(&z, 2);
        assert_eq!(Vec::<f32>::try_from(s).unwrap(), vec![5.0, 2.0]);
    }
}
