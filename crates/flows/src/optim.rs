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

    /// [`Adam::backward_step`] with the gradients first scaled to a joint 2-norm of at most
    /// `max_norm`, as PyTorch's `clip_grad_norm_` (and Lightning's `gradient_clip_val`) does.
    pub fn backward_clipped_step(&mut self, loss: &Tensor, max_norm: f64) -> Result<(), TchError> {
        backward_step_all_clipped(loss, &mut [self], Some(max_norm))
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
    backward_step_all_clipped(loss, optimizers, None)
}

/// [`backward_step_all`] with, given `max_norm`, the gradients of every optimiser's leaves
/// first scaled to a joint 2-norm of at most `max_norm`, as PyTorch's `clip_grad_norm_`
/// (and Lightning's `gradient_clip_val`) does over a model's parameters.
pub fn backward_step_all_clipped(
    loss: &Tensor,
    optimizers: &mut [&mut Adam],
    max_norm: Option<f64>,
) -> Result<(), TchError> {
    let leaves: Vec<Tensor> = optimizers.iter().flat_map(|o| o.leaves()).collect();
    let mut grads = Tensor::f_run_backward(&[loss], &leaves, false, false)?;
    if let Some(max_norm) = max_norm {
        grads = clip_grad_norm(&grads, max_norm)?;
    }
    let mut rest = grads.as_slice();
    for opt in optimizers.iter_mut() {
        let (mine, others) = rest.split_at(opt.slots.len());
        opt.step(mine);
        rest = others;
    }
    Ok(())
}

/// `grads` scaled to a joint 2-norm of at most `max_norm`, as PyTorch's `clip_grad_norm_`
/// scales a model's gradients (by `max_norm / (norm + 1e-6)` when that is below 1).
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f64) -> Result<Vec<Tensor>, TchError> {
    let norms: Vec<Tensor> = grads.iter().map(Tensor::norm).collect();
    let total = f64::try_from(Tensor::stack(&norms, 0).norm())?;
    let k = (max_norm / (total + 1e-6)).min(1.0);
    Ok(grads.iter().map(|g| g * k).collect())
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
mod tests;
