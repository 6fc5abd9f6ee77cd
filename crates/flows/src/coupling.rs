//! GLOW's affine coupling as DifferNet uses it (FrEIA's `glow_coupling_layer`).
//!
//! With the input split into `x1` (first half) and `x2`:
//! `y1 = e(s2(x2))·x1 + t2(x2)`, `y2 = e(s1(y1))·x2 + t1(y1)`, where `e(s) = exp(log_e(s))`
//! and `log_e(s) = α·0.636·atan(s/α)` softly limits each scale to `exp(±α·π/2·0.636)`.

use tch::nn::{self, Module};
use tch::{Kind, Tensor};

/// A linear layer whose matrix multiply may run on a kept bfloat16 copy of its weight.
///
/// The float32 weight in the var store stays the master: it is what is saved, loaded and
/// updated by the optimiser, which also writes the copy (the copy, not the master, is then
/// what autograd differentiates). Keeping the copy costs one 2-byte write per weight per
/// step instead of a cast of every weight on every forward and its gradient's cast back.
#[derive(Debug)]
pub struct Linear {
    inner: nn::Linear,
    low: Option<Tensor>,
}

impl Linear {
    fn new(p: nn::Path, size_in: i64, size_out: i64) -> Self {
        Linear {
            inner: nn::linear(p, size_in, size_out, crate::init::linear(size_in)),
            low: None,
        }
    }

    /// Starts multiplying with a bfloat16 copy of the weight (made now, from the master).
    fn keep_bf16_copy(&mut self) {
        let copy = tch::no_grad(|| self.inner.ws.to_kind(Kind::BFloat16));
        self.low = Some(copy.set_requires_grad(true));
    }

    /// Rewrites the bfloat16 copy from the master (after the master was loaded or changed
    /// by anything but [`Linear::params`]' optimiser).
    fn sync_copy(&self) {
        if let Some(low) = &self.low {
            tch::no_grad(|| low.shallow_clone().copy_(&self.inner.ws));
        }
    }

    /// `(master, differentiated)` pairs: the weight with its copy (or itself), the bias.
    fn params(&self) -> Vec<(Tensor, Tensor)> {
        let ws = self.inner.ws.shallow_clone();
        let leaf = self
            .low
            .as_ref()
            .map_or_else(|| ws.shallow_clone(), Tensor::shallow_clone);
        let mut params = vec![(ws, leaf)];
        if let Some(bs) = &self.inner.bs {
            params.push((bs.shallow_clone(), bs.shallow_clone()));
        }
        params
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match &self.low {
            None => self.inner.forward(xs),
            // bf16 × bf16 with float32 accumulation inside the kernel; the bias is added in
            // float32, and the output returns to the input's kind.
            Some(w) => {
                let y = xs
                    .to_kind(Kind::BFloat16)
                    .linear(w, None::<Tensor>)
                    .to_kind(xs.kind());
                match &self.inner.bs {
                    Some(b) => y + b,
                    None => y,
                }
            }
        }
    }
}

/// DifferNet's subnet: four linear layers with ReLU between them (dropout 0).
#[derive(Debug)]
pub struct Subnet {
    fc1: Linear,
    fc2: Linear,
    fc2b: Linear,
    fc3: Linear,
}

impl Subnet {
    pub fn new(p: &nn::Path, size_in: i64, size_out: i64, hidden: i64) -> Self {
        Subnet {
            fc1: Linear::new(p / "fc1", size_in, hidden),
            fc2: Linear::new(p / "fc2", hidden, hidden),
            fc2b: Linear::new(p / "fc2b", hidden, hidden),
            fc3: Linear::new(p / "fc3", hidden, size_out),
        }
    }

    fn layers(&self) -> [&Linear; 4] {
        [&self.fc1, &self.fc2, &self.fc2b, &self.fc3]
    }

    fn layers_mut(&mut self) -> [&mut Linear; 4] {
        [&mut self.fc1, &mut self.fc2, &mut self.fc2b, &mut self.fc3]
    }
}

impl Module for Subnet {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let x = self.fc1.forward(xs).relu();
        let x = self.fc2.forward(&x).relu();
        let x = self.fc2b.forward(&x).relu();
        self.fc3.forward(&x)
    }
}

/// One affine coupling block.
#[derive(Debug)]
pub struct GlowCoupling {
    len1: i64,
    len2: i64,
    clamp: f64,
    s1: Subnet,
    s2: Subnet,
}

impl GlowCoupling {
    pub fn new(p: &nn::Path, dim: i64, hidden: i64, clamp: f64) -> Self {
        let len1 = dim / 2;
        let len2 = dim - len1;
        GlowCoupling {
            len1,
            len2,
            clamp,
            s1: Subnet::new(&(p / "s1"), len1, 2 * len2, hidden),
            s2: Subnet::new(&(p / "s2"), len2, 2 * len1, hidden),
        }
    }

    fn subnets(&self) -> [&Subnet; 2] {
        [&self.s1, &self.s2]
    }

    /// See [`crate::DifferNetFlow::with_bf16_matmuls`].
    pub(crate) fn keep_bf16_copies(&mut self) {
        for subnet in [&mut self.s1, &mut self.s2] {
            subnet
                .layers_mut()
                .into_iter()
                .for_each(Linear::keep_bf16_copy);
        }
    }

    pub(crate) fn sync_copies(&self) {
        for subnet in self.subnets() {
            subnet.layers().into_iter().for_each(Linear::sync_copy);
        }
    }

    pub(crate) fn params(&self) -> Vec<(Tensor, Tensor)> {
        self.subnets()
            .into_iter()
            .flat_map(|s| s.layers().into_iter().flat_map(Linear::params))
            .collect()
    }

    fn log_e(&self, s: &Tensor) -> Tensor {
        (s / self.clamp).atan() * (self.clamp * 0.636)
    }

    /// `(y, log|det J|)` for a batch `x` of shape `[N, dim]`.
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let x1 = x.narrow(1, 0, self.len1);
        let x2 = x.narrow(1, self.len1, self.len2);
        let r2 = self.s2.forward(&x2);
        let (s2, t2) = (
            r2.narrow(1, 0, self.len1),
            r2.narrow(1, self.len1, self.len1),
        );
        let log_e2 = self.log_e(&s2);
        let y1 = log_e2.exp() * x1 + t2;
        let r1 = self.s1.forward(&y1);
        let (s1, t1) = (
            r1.narrow(1, 0, self.len2),
            r1.narrow(1, self.len2, self.len2),
        );
        let log_e1 = self.log_e(&s1);
        let y2 = log_e1.exp() * x2 + t1;
        let log_det = log_e1.sum_dim_intlist(1, false, log_e1.kind())
            + log_e2.sum_dim_intlist(1, false, log_e2.kind());
        (Tensor::cat(&[y1, y2], 1), log_det)
    }

    /// The exact inverse of [`GlowCoupling::forward`].
    pub fn inverse(&self, y: &Tensor) -> Tensor {
        let y1 = y.narrow(1, 0, self.len1);
        let y2 = y.narrow(1, self.len1, self.len2);
        let r1 = self.s1.forward(&y1);
        let (s1, t1) = (
            r1.narrow(1, 0, self.len2),
            r1.narrow(1, self.len2, self.len2),
        );
        let x2 = (y2 - t1) * self.log_e(&s1).neg().exp();
        let r2 = self.s2.forward(&x2);
        let (s2, t2) = (
            r2.narrow(1, 0, self.len1),
            r2.narrow(1, self.len1, self.len1),
        );
        let x1 = (y1 - t2) * self.log_e(&s2).neg().exp();
        Tensor::cat(&[x1, x2], 1)
    }
}
