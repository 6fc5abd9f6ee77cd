//! The DifferNet flow: `blocks` × [fixed permutation, GLOW coupling], then an output clamp.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::coupling::GlowCoupling;
use crate::numpy_rng::seeded_permutation;

/// Which flow a run trains.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum FlowKind {
    /// DifferNet's flow on globally pooled features; anomaly maps are its input gradients.
    #[default]
    Differnet,
    /// FastFlow's 2D flows on the feature maps of `model.feature_layers` (one flow per
    /// layer, anomalib's recipe), with native anomaly maps.
    Fastflow,
    /// CS-Flow's cross-scale flow on one feature layer's maps at the three input scales
    /// (`model.scales = 3`), with native anomaly maps.
    Csflow,
    /// CFlow-AD's conditional flows on single feature vectors of each layer of
    /// `model.feature_layers`, conditioned on the position, with native anomaly maps.
    Cflow,
}

impl FlowKind {
    pub fn is_differnet(&self) -> bool {
        *self == FlowKind::Differnet
    }

    /// The family's name as its paper writes it, for records and figures.
    pub fn display_name(&self) -> &'static str {
        match self {
            FlowKind::Differnet => "DifferNet",
            FlowKind::Fastflow => "FastFlow",
            FlowKind::Csflow => "CS-Flow",
            FlowKind::Cflow => "CFlow-AD",
        }
    }
}

/// Shape of the flow. Defaults are DifferNet's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// Which flow: `differnet` (DifferNet's, on pooled features), `fastflow` (FastFlow's, on
    /// feature maps; `coupling_blocks` is its number of steps per layer, and `hidden`,
    /// `clamp` and `standardize` do not apply) or `csflow` (CS-Flow's; `coupling_blocks`
    /// blocks, anomalib's 4; `hidden` channels of its cross-scale convolutions, anomalib's
    /// 1024; `clamp` its α, 3; `standardize` does not apply) or `cflow` (CFlow-AD's;
    /// `coupling_blocks` blocks per decoder, anomalib's 8; `clamp` its α, anomalib's 1.9;
    /// `hidden` and `standardize` do not apply). Left out of the resolved
    /// config at `differnet`, so run ids from before this setting are unchanged.
    #[serde(skip_serializing_if = "FlowKind::is_differnet")]
    #[schemars(extend("default" = "differnet"))]
    pub kind: FlowKind,
    /// Number of [permutation, coupling] blocks.
    pub coupling_blocks: usize,
    /// Width of the subnets' hidden layers.
    pub hidden: i64,
    /// α of the soft clamp `α·0.636·atan(s/α)`.
    pub clamp: f64,
    /// Standardise each input dimension (mean 0, sd 1 over the training features) before
    /// the first coupling, outside the log-determinant, so that a global rescale of the
    /// features cannot lower the loss. Off (DifferNet) is left out of the serialised form,
    /// so run ids from before this setting are unchanged.
    #[serde(skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub standardize: bool,
    /// CFlow-AD's fibers (positions) per training step, anomalib's `fiber_batch_size`
    /// (64). Fewer, larger steps over the same fibers train faster on a CPU. Left out of the
    /// resolved config at 64, so run ids from before this setting are unchanged.
    #[serde(skip_serializing_if = "is_default_fiber_batch")]
    #[schemars(extend("default" = 64))]
    pub fiber_batch: i64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// anomalib's CFlow-AD `fiber_batch_size`.
pub const DEFAULT_FIBER_BATCH: i64 = 64;

fn is_default_fiber_batch(n: &i64) -> bool {
    *n == DEFAULT_FIBER_BATCH
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            kind: FlowKind::Differnet,
            coupling_blocks: 8,
            hidden: 2048,
            clamp: 3.0,
            standardize: false,
            fiber_batch: DEFAULT_FIBER_BATCH,
        }
    }
}

/// Per-dimension mean and sd of the training features, saved with the flow (`input_std.mean`,
/// `input_std.sd`) so that a reloaded model scores as the trained one did.
#[derive(Debug)]
struct Standardizer {
    mean: Tensor,
    sd: Tensor,
}

/// The smallest sd a dimension is divided by: a constant feature stays finite.
const MIN_SD: f64 = 1e-6;

/// Mean and sd over the rows of `x` (`[N, dim]`).
pub fn row_moments(x: &Tensor) -> (Tensor, Tensor) {
    let mean = x.mean_dim(0, true, Kind::Float);
    let sd = x.std_dim(0, false, true).clamp_min(MIN_SD);
    (mean, sd)
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
    standardizer: Option<Standardizer>,
    bf16: bool,
}

/// One trained tensor: the float32 `master` the optimiser updates (and the var store
/// saves), and the `leaf` the forward uses and autograd differentiates: the master itself,
/// or a bfloat16 copy the optimiser rewrites after each update.
#[derive(Debug)]
pub struct Param {
    pub master: Tensor,
    pub leaf: Tensor,
}

impl Param {
    /// A tensor trained as it is (no copy).
    pub fn plain(t: &Tensor) -> Self {
        Param {
            master: t.shallow_clone(),
            leaf: t.shallow_clone(),
        }
    }
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
        let standardizer = config.standardize.then(|| {
            let q = p / "input_std";
            Standardizer {
                mean: q.zeros_no_train("mean", &[1, dim]),
                sd: q.ones_no_train("sd", &[1, dim]),
            }
        });
        DifferNetFlow {
            dim,
            permutations,
            inverse_permutations,
            couplings,
            standardizer,
            bf16: false,
        }
    }

    /// Runs every subnet's matrix multiplies in bfloat16 on kept copies of the weights (see
    /// [`crate::coupling::Linear`]); the clamp, log-determinant and loss stay float32.
    /// Call [`DifferNetFlow::sync_bf16_copies`] after loading weights.
    pub fn with_bf16_matmuls(mut self) -> Self {
        self.couplings
            .iter_mut()
            .for_each(GlowCoupling::keep_bf16_copies);
        self.bf16 = true;
        self
    }

    /// Whether the matrix multiplies run on bfloat16 copies.
    pub fn bf16_matmuls(&self) -> bool {
        self.bf16
    }

    /// Rewrites the bfloat16 copies from the float32 weights (no-op without them).
    pub fn sync_bf16_copies(&self) {
        self.couplings.iter().for_each(GlowCoupling::sync_copies);
    }

    /// What an optimiser updates: every weight and bias, each with the tensor autograd
    /// differentiates (the weight itself, or its bfloat16 copy).
    pub fn params(&self) -> Vec<Param> {
        self.couplings
            .iter()
            .flat_map(GlowCoupling::params)
            .map(|(master, leaf)| Param { master, leaf })
            .collect()
    }

    /// Whether inputs are standardised before the couplings.
    pub fn standardizes(&self) -> bool {
        self.standardizer.is_some()
    }

    /// Sets the stored input statistics (no-op without standardisation).
    pub fn set_standardization(&self, mean: &Tensor, sd: &Tensor) {
        if let Some(s) = &self.standardizer {
            tch::no_grad(|| {
                s.mean.shallow_clone().copy_(&mean.reshape([1, self.dim]));
                s.sd.shallow_clone()
                    .copy_(&sd.reshape([1, self.dim]).clamp_min(MIN_SD));
            });
        }
    }

    /// Stores the statistics of the training features `x` (`[N, dim]`).
    pub fn fit_standardization(&self, x: &Tensor) {
        let (mean, sd) = tch::no_grad(|| row_moments(x));
        self.set_standardization(&mean, &sd);
    }

    /// `(z, log|det J|)` with the batch's own statistics instead of the stored ones, for
    /// features that change while the flow trains (jointly trained attention): the loss
    /// cannot fall by shrinking the features, and the gradient flows through the statistics.
    pub fn forward_batch_standardized(&self, x: &Tensor) -> (Tensor, Tensor) {
        let (mean, sd) = row_moments(x);
        self.couplings_forward(&((x - mean) / sd))
    }

    pub fn dim(&self) -> i64 {
        self.dim
    }

    /// `(z, log|det J|)` for features `x` of shape `[N, dim]`, standardised with the stored
    /// statistics first when the flow standardises.
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        match &self.standardizer {
            Some(s) => self.couplings_forward(&((x - &s.mean) / &s.sd)),
            None => self.couplings_forward(x),
        }
    }

    fn couplings_forward(&self, x: &Tensor) -> (Tensor, Tensor) {
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
        match &self.standardizer {
            Some(s) => h * &s.sd + &s.mean,
            None => h,
        }
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

/// The two parts of [`nll_loss`], each a scalar per dimension: `mean_batch(0.5·Σ z²) / dim`
/// and `mean_batch(−log|det J|) / dim`. For diagnostics: a collapse shows as a falling
/// `z` part with the features' volume, not as better separation.
pub fn nll_parts(z: &Tensor, log_det: &Tensor) -> (Tensor, Tensor) {
    let dim = z.size()[1] as f64;
    let zz = z
        .pow_tensor_scalar(2)
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
        * (0.5 / dim);
    let ld = -log_det.mean(Kind::Float) / dim;
    (zz, ld)
}

/// The volume that features `x` lost against `reference` (the same rows with attention
/// off), per dimension: `mean_j 0.5·(log E[ref_j²] − log E[x_j²])`, the moments over the
/// batch. Scaling dimension `j` by `c_j` changes the adapted NLL per dimension by
/// `+mean_j log c_j` (a shrink, `c_j < 1`, lowers it); this charge is `−mean_j log c_j`, so
/// attention gains nothing by shrinking the features nor loses by growing them. The second
/// moment, not the variance: attention scales values, it does not centre them. 0 when `x`
/// equals `reference`.
pub fn volume_charge(x: &Tensor, reference: &Tensor) -> Tensor {
    const FLOOR: f64 = 1e-12;
    let ms = |t: &Tensor| {
        t.pow_tensor_scalar(2)
            .mean_dim([0].as_slice(), false, Kind::Float)
            .clamp_min(FLOOR)
            .log()
    };
    ((ms(reference) - ms(x)) * 0.5).mean(Kind::Float)
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
            standardize: false,
            ..FlowConfig::default()
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

    #[test]
    fn the_loss_parts_add_up_and_the_volume_charge_measures_a_rescale() {
        let z = Tensor::randn([8, 6], (Kind::Float, Device::Cpu));
        let ld = Tensor::randn([8], (Kind::Float, Device::Cpu));
        let (a, b) = nll_parts(&z, &ld);
        let total = nll_loss(&z, &ld).double_value(&[]);
        assert!((a.double_value(&[]) + b.double_value(&[]) - total).abs() < 1e-6);
        // Per-dimension scales c_j: the charge is −mean_j log c_j, whatever the rows.
        let reference = Tensor::randn([16, 4], (Kind::Float, Device::Cpu));
        let c = [0.5f32, 0.1, 2.0, 1.0];
        let x = &reference * Tensor::from_slice(&c).reshape([1, 4]);
        let want = -c.iter().map(|v| (*v as f64).ln()).sum::<f64>() / 4.0;
        let got = volume_charge(&x, &reference).double_value(&[]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(
            volume_charge(&reference, &reference)
                .double_value(&[])
                .abs()
                < 1e-7
        );
        // Its gradient reaches whatever made the features, pushing a shrink back up.
        let scale = Tensor::from_slice(&[0.5f32]).set_requires_grad(true);
        volume_charge(&(&reference * &scale), &reference).backward();
        assert!(scale.grad().double_value(&[0]) < 0.0);
    }

    #[test]
    fn standardized_inputs_make_the_loss_blind_to_a_global_rescale() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FlowConfig {
            coupling_blocks: 4,
            hidden: 16,
            clamp: 3.0,
            standardize: true,
            ..FlowConfig::default()
        };
        let flow = DifferNetFlow::new(&vs.root(), 6, &cfg);
        let x = Tensor::randn([32, 6], (Kind::Float, Device::Cpu)) * 3.0 + 1.0;
        let loss_at = |x: &Tensor| {
            flow.fit_standardization(x);
            let (z, ld) = flow.forward(x);
            nll_loss(&z, &ld).double_value(&[])
        };
        let base = loss_at(&x);
        for scale in [0.01, 0.5, 20.0] {
            let scaled = loss_at(&(&x * scale));
            assert!(
                (scaled - base).abs() < 1e-5,
                "scale {scale}: {scaled} vs {base}"
            );
            let (z, ld) = flow.forward_batch_standardized(&(&x * scale));
            let batch = nll_loss(&z, &ld).double_value(&[]);
            assert!((batch - base).abs() < 1e-5, "batch stats, scale {scale}");
        }
        // Without standardisation a shrink does lower it: what jointly trained attention
        // exploited.
        let (_, plain) = small_flow(6);
        let loss = |x: &Tensor| {
            let (z, ld) = plain.forward(x);
            nll_loss(&z, &ld).double_value(&[])
        };
        assert!(loss(&(&x * 0.01)) < loss(&x));
        // The batch statistics pass the gradient on to whatever made the features.
        let input = (&x * 1.0).set_requires_grad(true);
        let (z, ld) = flow.forward_batch_standardized(&(&input * 2.0));
        nll_loss(&z, &ld).backward();
        assert!(f64::try_from(input.grad().abs().sum(None)).unwrap() > 0.0);
        // The statistics are saved with the flow, and the inverse undoes them.
        let names: Vec<String> = vs.variables().into_keys().collect();
        assert!(names.iter().any(|n| n == "input_std.mean"), "{names:?}");
        flow.fit_standardization(&x);
        let back = flow.inverse(&flow.forward(&x).0);
        assert!(f64::try_from((back - &x).abs().max()).unwrap() < 1e-3);
    }
}
