//! Adam as DifferNet trains with it (PyTorch's `torch.optim.Adam`, L2 weight decay added to
//! the gradient), applied in one pass over memory.
//!
//! The flow's 172 M parameters make the update memory-bound: libtorch's per-tensor Adam
//! reads and writes each parameter's four tensors about eight times (a temporary per
//! operation), which costs more than the flow's forward and backward together on the CPU.
//! Here each element of a contiguous float32 CPU tensor is read once, updated in registers
//! and written once, across threads (rayon), and a parameter trained through a bfloat16
//! copy ([`Param`]) gets its copy written in the same pass. Elsewhere (CUDA, other kinds)
//! the same arithmetic runs as tensor operations.

use rayon::prelude::*;
use tch::{Device, Kind, TchError, Tensor};

use crate::flow::Param;

/// Adam's hyper-parameters, PyTorch's names and meaning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// L2 penalty added to the gradient (`grad + wd·p`), as `torch.optim.Adam` does.
    pub weight_decay: f64,
}

/// One trained tensor with its moments and its own step count (a tensor without a
/// gradient in a step is skipped, as PyTorch skips it).
struct Slot {
    param: Param,
    m: Tensor,
    v: Tensor,
    step: i32,
}

/// Adam over a fixed list of [`Param`]s.
pub struct Adam {
    config: AdamConfig,
    slots: Vec<Slot>,
}

/// Elements per task of the threaded pass: large enough to amortise scheduling, small
/// enough to spread one 4 M-element weight over the threads.
const CHUNK: usize = 1 << 16;

impl Adam {
    pub fn new(params: Vec<Param>, config: AdamConfig) -> Self {
        let slots = params
            .into_iter()
            .map(|param| {
                let zeros = || Tensor::zeros_like(&param.master).contiguous();
                Slot {
                    m: zeros(),
                    v: zeros(),
                    param,
                    step: 0,
                }
            })
            .collect();
        Adam { config, slots }
    }

    pub fn config(&self) -> AdamConfig {
        self.config
    }

    /// The tensors whose gradients [`Adam::step`] wants, in its order.
    pub fn leaves(&self) -> Vec<Tensor> {
        self.slots
            .iter()
            .map(|s| s.param.leaf.shallow_clone())
            .collect()
    }

    /// Differentiates `loss` with respect to every leaf (without accumulating into
    /// `.grad`, so nothing needs zeroing) and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<(), TchError> {
        backward_step_all(loss, &mut [self])
    }

    /// One update with `grads`, one per leaf in [`Adam::leaves`]' order; an undefined
    /// gradient leaves its tensor (and its step count) as they were.
    pub fn step(&mut self, grads: &[Tensor]) {
        assert_eq!(grads.len(), self.slots.len(), "one gradient per parameter");
        let c = self.config;
        tch::no_grad(|| {
            for (slot, grad) in self.slots.iter_mut().zip(grads) {
                if grad.defined() {
                    slot.step += 1;
                    slot.update(grad, c);
                }
            }
        });
    }
}

/// Differentiates `loss` once for the leaves of every optimiser (e.g. the flow's and the
/// jointly trained attention's, at their own rates) and steps each.
pub fn backward_step_all(loss: &Tensor, optimizers: &mut [&mut Adam]) -> Result<(), TchError> {
    let leaves: Vec<Tensor> = optimizers.iter().flat_map(|o| o.leaves()).collect();
    let grads = Tensor::f_run_backward(&[loss], &leaves, false, false)?;
    let mut rest = grads.as_slice();
    for opt in optimizers.iter_mut() {
        let (mine, others) = rest.split_at(opt.slots.len());
        opt.step(mine);
        rest = others;
    }
    Ok(())
}

/// The per-step constants, in the precision PyTorch's CPU kernels apply them (float).
#[derive(Clone, Copy)]
struct Step {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    weight_decay: f32,
    sqrt_correction2: f32,
    eps: f32,
    neg_step_size: f32,
}

impl Step {
    fn new(c: AdamConfig, step: i32) -> Self {
        let correction1 = 1.0 - c.beta1.powi(step);
        let correction2 = 1.0 - c.beta2.powi(step);
        Step {
            beta1: c.beta1 as f32,
            one_minus_beta1: (1.0 - c.beta1) as f32,
            beta2: c.beta2 as f32,
            one_minus_beta2: (1.0 - c.beta2) as f32,
            weight_decay: c.weight_decay as f32,
            sqrt_correction2: correction2.sqrt() as f32,
            eps: c.eps as f32,
            neg_step_size: (-c.lr / correction1) as f32,
        }
    }

    /// One element, in the order of `torch.optim.Adam`'s operations.
    #[inline(always)]
    fn apply(&self, p: &mut f32, m: &mut f32, v: &mut f32, g: f32) {
        let g = g + self.weight_decay * *p;
        *m = *m * self.beta1 + self.one_minus_beta1 * g;
        *v = *v * self.beta2 + self.one_minus_beta2 * g * g;
        let denom = v.sqrt() / self.sqrt_correction2 + self.eps;
        *p += self.neg_step_size * (*m / denom);
    }
}

/// A gradient element as float32 (a bfloat16 gradient is that of a bfloat16 copy).
trait GradElem: Copy + Send + Sync {
    fn value(self) -> f32;
}

impl GradElem for f32 {
    #[inline(always)]
    fn value(self) -> f32 {
        self
    }
}

impl GradElem for u16 {
    #[inline(always)]
    fn value(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

/// The bfloat16 nearest `x` (ties to even; NaN stays NaN), as its bits. Written without
/// branches so the loop vectorises (a library conversion took five times the whole
/// update).
#[inline(always)]
fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16;
    let quiet_nan = (b >> 16) | 0x0040;
    (if x.is_nan() { quiet_nan } else { rounded }) as u16
}

/// Raw element pointers shared by the threads of one pass; each thread touches a disjoint
/// range.
#[derive(Clone, Copy)]
struct Shared<T>(*mut T);
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer `offset` elements on (a method, so closures capture the `Send` whole).
    ///
    /// # Safety
    /// As [`pointer::add`].
    unsafe fn at(self, offset: usize) -> *mut T {
        unsafe { self.0.add(offset) }
    }
}

impl Slot {
    fn update(&mut self, grad: &Tensor, c: AdamConfig) {
        let step = Step::new(c, self.step);
        let master = &self.param.master;
        let copy = (self.param.leaf.data_ptr() != master.data_ptr()).then_some(&self.param.leaf);
        let grad = grad.contiguous();
        let n = master.numel();
        // The pass below reads `n` elements through every pointer: a wrong-sized gradient or
        // copy is a caller's bug that must stop here, not read out of bounds.
        assert!(
            grad.numel() == n && copy.is_none_or(|t| t.numel() == n),
            "Adam: parameter of {n} elements, gradient of {}{}",
            grad.numel(),
            copy.map_or(String::new(), |t| format!(", bf16 copy of {}", t.numel()))
        );
        let on_cpu = |t: &Tensor, kind: Kind| {
            t.device() == Device::Cpu && t.kind() == kind && t.is_contiguous()
        };
        // A gradient sharing memory with what the pass writes (a caller passing the weight
        // itself) would alias a `&mut`; such a step goes through tensor operations.
        let bytes = |t: &Tensor| {
            let start = t.data_ptr() as usize;
            start..start + t.numel() * t.kind().elt_size_in_bytes()
        };
        let g = bytes(&grad);
        let aliased = [master, &self.m, &self.v].into_iter().chain(copy).any(|t| {
            let w = bytes(t);
            w.start < g.end && g.start < w.end
        });
        let fast = !aliased
            && on_cpu(master, Kind::Float)
            && copy.is_none_or(|t| on_cpu(t, Kind::BFloat16))
            && (on_cpu(&grad, Kind::Float) || on_cpu(&grad, Kind::BFloat16));
        if !fast {
            let has_copy = copy.is_some();
            return self.update_with_tensor_ops(&grad, has_copy, c);
        }
        let p = Shared(master.data_ptr() as *mut f32);
        let m = Shared(self.m.data_ptr() as *mut f32);
        let v = Shared(self.v.data_ptr() as *mut f32);
        let low = copy.map(|t| Shared(t.data_ptr() as *mut u16));
        // SAFETY: every pointer addresses `n` contiguous elements of its kind (checked
        // above; the moments were made contiguous like the master), the tensors outlive the
        // pass, and the tasks' ranges are disjoint.
        unsafe {
            match grad.kind() {
                Kind::Float => pass(n, p, m, v, grad.data_ptr() as *const f32, low, step),
                _ => pass(n, p, m, v, grad.data_ptr() as *const u16, low, step),
            }
        }
    }

    /// The same update as tensor operations, for tensors the one-pass loop cannot take.
    fn update_with_tensor_ops(&mut self, grad: &Tensor, has_copy: bool, c: AdamConfig) {
        let s = Step::new(c, self.step);
        let mut p = self.param.master.shallow_clone();
        let g = grad.to_kind(p.kind()) + &p * c.weight_decay;
        self.m *= c.beta1;
        self.m += &g * (1.0 - c.beta1);
        self.v *= c.beta2;
        self.v += &g * &g * (1.0 - c.beta2);
        let denom = self.v.sqrt() / f64::from(s.sqrt_correction2) + c.eps;
        p += (&self.m / denom) * f64::from(s.neg_step_size);
        if has_copy {
            self.param.leaf.shallow_clone().copy_(&p);
        }
    }
}

/// # Safety
/// `p`, `m`, `v`, `g` (and `low`) must each address `n` valid, contiguous elements that
/// nothing else touches during the call.
unsafe fn pass<G: GradElem>(
    n: usize,
    p: Shared<f32>,
    m: Shared<f32>,
    v: Shared<f32>,
    g: *const G,
    low: Option<Shared<u16>>,
    step: Step,
) {
    let g = Shared(g as *mut G);
    (0..n.div_ceil(CHUNK)).into_par_iter().for_each(|chunk| {
        let start = chunk * CHUNK;
        let len = CHUNK.min(n - start);
        // SAFETY: the caller's contract; `start..start + len` is this task's own range.
        let (p, m, v, g) = unsafe {
            (
                std::slice::from_raw_parts_mut(p.at(start), len),
                std::slice::from_raw_parts_mut(m.at(start), len),
                std::slice::from_raw_parts_mut(v.at(start), len),
                std::slice::from_raw_parts(g.at(start), len),
            )
        };
        // SAFETY: as above.
        let low = low.map(|low| unsafe { std::slice::from_raw_parts_mut(low.at(start), len) });
        update_chunk(p, m, v, g, low, &step);
    });
}

/// One task's elements, in the widest vector units this CPU has (the same arithmetic in
/// each: no fused multiply-add is introduced, so every path gives the same bits).
fn update_chunk<G: GradElem>(
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[G],
    low: Option<&mut [u16]>,
    step: &Step,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the feature.
            return unsafe { update_chunk_avx512(p, m, v, g, low, step) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has the feature.
            return unsafe { update_chunk_avx2(p, m, v, g, low, step) };
        }
    }
    update_chunk_portable(p, m, v, g, low, step)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn update_chunk_avx512<G: GradElem>(
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[G],
    low: Option<&mut [u16]>,
    step: &Step,
) {
    update_chunk_portable(p, m, v, g, low, step)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn update_chunk_avx2<G: GradElem>(
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[G],
    low: Option<&mut [u16]>,
    step: &Step,
) {
    update_chunk_portable(p, m, v, g, low, step)
}

#[inline(always)]
fn update_chunk_portable<G: GradElem>(
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[G],
    low: Option<&mut [u16]>,
    step: &Step,
) {
    let n = p.len();
    let (m, v, g) = (&mut m[..n], &mut v[..n], &g[..n]);
    match low {
        None => {
            for i in 0..n {
                step.apply(&mut p[i], &mut m[i], &mut v[i], g[i].value());
            }
        }
        Some(low) => {
            let low = &mut low[..n];
            for i in 0..n {
                step.apply(&mut p[i], &mut m[i], &mut v[i], g[i].value());
                low[i] = bf16_bits(p[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DifferNetFlow, FlowConfig, nll_loss};
    use tch::nn::{self, OptimizerConfig};

    const CONFIG: AdamConfig = AdamConfig {
        lr: 2e-4,
        beta1: 0.8,
        beta2: 0.8,
        eps: 1e-4,
        weight_decay: 1e-5,
    };

    fn small(seed: i64) -> (nn::VarStore, DifferNetFlow) {
        tch::manual_seed(seed);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = FlowConfig {
            coupling_blocks: 2,
            hidden: 300,
            ..FlowConfig::default()
        };
        let flow = DifferNetFlow::new(&vs.root(), 40, &cfg);
        (vs, flow)
    }

    /// ‖a − b‖ / ‖b‖ and ‖a − b‖ / ‖b − start‖ over every variable: the difference against
    /// the weights, and against the updates themselves.
    fn relative_differences(
        a: &nn::VarStore,
        b: &nn::VarStore,
        start: &std::collections::HashMap<String, Tensor>,
    ) -> (f64, f64) {
        let (mut diff, mut size, mut moved) = (0.0, 0.0, 0.0);
        let bv = b.variables();
        let sq = |t: Tensor| f64::try_from(t.square().sum(Kind::Double)).unwrap();
        for (name, t) in a.variables() {
            let other = &bv[&name];
            diff += sq(&t - other);
            size += sq(other.shallow_clone());
            moved += sq(other - &start[&name]);
        }
        ((diff / size).sqrt(), (diff / moved).sqrt())
    }

    #[test]
    fn one_pass_adam_matches_libtorchs_over_ten_steps() {
        let (vs_ref, flow_ref) = small(1);
        let (mut vs, flow) = small(2);
        vs.copy(&vs_ref).unwrap();
        let start: std::collections::HashMap<String, Tensor> = vs_ref
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect();
        let mut reference = nn::Adam {
            beta1: CONFIG.beta1,
            beta2: CONFIG.beta2,
            wd: CONFIG.weight_decay,
            eps: CONFIG.eps,
            amsgrad: false,
        }
        .build(&vs_ref, CONFIG.lr)
        .unwrap();
        let mut ours = Adam::new(flow.params(), CONFIG);
        for step in 0..10 {
            let x = Tensor::randn([16, 40], (Kind::Float, Device::Cpu)) * (1.0 + step as f64);
            let (z, ld) = flow_ref.forward(&x);
            reference.backward_step(&nll_loss(&z, &ld));
            let (z, ld) = flow.forward(&x);
            ours.backward_step(&nll_loss(&z, &ld)).unwrap();
        }
        // Float rounding of the weights alone is ~1e-7 of them (~1e-6 of ten small updates).
        let (of_weights, of_update) = relative_differences(&vs, &vs_ref, &start);
        assert!(of_weights <= 1e-6, "relative to the weights {of_weights:e}");
        assert!(of_update <= 1e-5, "relative to the update {of_update:e}");
    }

    #[test]
    fn tensor_operations_give_the_one_pass_update() {
        // The path CUDA tensors take, run here on the same gradients as the one-pass loop.
        let (vs_a, flow_a) = small(3);
        let (mut vs_b, flow_b) = small(4);
        vs_b.copy(&vs_a).unwrap();
        let mut fast = Adam::new(flow_a.params(), CONFIG);
        let mut slow = Adam::new(flow_b.params(), CONFIG);
        for _ in 0..3 {
            let grads: Vec<Tensor> = fast.leaves().iter().map(Tensor::randn_like).collect();
            fast.step(&grads);
            tch::no_grad(|| {
                for (slot, g) in slow.slots.iter_mut().zip(&grads) {
                    slot.step += 1;
                    slot.update_with_tensor_ops(g, false, CONFIG);
                }
            });
        }
        let bv = vs_b.variables();
        for (name, a) in vs_a.variables() {
            let b = &bv[&name];
            let e = f64::try_from((&a - b).abs().max()).unwrap()
                / f64::try_from(b.abs().max()).unwrap();
            assert!(e < 1e-6, "{name}: relative difference {e:e}");
        }
    }

    #[test]
    fn a_gradient_sharing_the_weights_memory_is_stepped_as_a_copy_would_be() {
        let start = Tensor::randn([1000], (Kind::Float, Device::Cpu));
        let (a, b) = (start.copy(), start.copy());
        let mut aliased = Adam::new(vec![Param::plain(&a)], CONFIG);
        let mut copied = Adam::new(vec![Param::plain(&b)], CONFIG);
        for _ in 0..3 {
            aliased.step(&[a.shallow_clone()]);
            copied.step(&[b.copy()]);
        }
        let e = f64::try_from((&a - &b).abs().max()).unwrap();
        assert!(e < 1e-6, "difference {e:e}");
        assert!(f64::try_from((&a - &start).abs().max()).unwrap() > 1e-5);
    }

    #[test]
    #[should_panic(expected = "parameter of 1000 elements, gradient of 10")]
    fn a_wrong_sized_gradient_is_refused() {
        let w = Tensor::zeros([1000], (Kind::Float, Device::Cpu));
        let mut adam = Adam::new(vec![Param::plain(&w)], CONFIG);
        adam.step(&[Tensor::zeros([10], (Kind::Float, Device::Cpu))]);
    }

    #[test]
    fn bf16_rounding_matches_the_half_crate() {
        let mut values = vec![
            0.0f32,
            -0.0,
            1.0,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-40,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::from_bits(0x3F80_8000), // a tie, rounds to even (down)
            f32::from_bits(0x3F81_8000), // a tie, rounds to even (up)
        ];
        let mut x = 0x1234_5678u32;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            values.push(f32::from_bits(x));
        }
        for v in values {
            let want = half::bf16::from_f32(v);
            if v.is_nan() {
                assert!(f32::from_bits(u32::from(bf16_bits(v)) << 16).is_nan());
            } else {
                assert_eq!(bf16_bits(v), want.to_bits(), "{v:e}");
            }
            assert_eq!(bf16_bits(v).value().to_bits(), want.to_f32().to_bits());
        }
    }

    #[test]
    fn bf16_copies_are_updated_with_their_masters_and_gradients_reach_the_masters() {
        let (_vs, flow) = small(5);
        let flow = flow.with_bf16_matmuls();
        let params = flow.params();
        let copies = params
            .iter()
            .filter(|p| p.leaf.kind() == Kind::BFloat16)
            .count();
        assert_eq!(copies, 2 * 2 * 4, "every subnet weight has a copy");
        let before: Vec<Tensor> = params.iter().map(|p| p.master.copy()).collect();
        let mut opt = Adam::new(params, CONFIG);
        let x = Tensor::randn([16, 40], (Kind::Float, Device::Cpu));
        let (z, ld) = flow.forward(&x);
        assert_eq!(z.kind(), Kind::Float);
        opt.backward_step(&nll_loss(&z, &ld)).unwrap();
        for (slot, before) in opt.slots.iter().zip(&before) {
            let p = &slot.param;
            assert!(
                f64::try_from((&p.master - before).abs().max()).unwrap() > 0.0,
                "every master moved"
            );
            if p.leaf.kind() == Kind::BFloat16 {
                let rounded = p.master.to_kind(Kind::BFloat16);
                assert!(bool::try_from(rounded.eq_tensor(&p.leaf).all()).unwrap());
            }
        }
    }
}
