//! GLOW's affine coupling as DifferNet uses it (FrEIA's `glow_coupling_layer`).
//!
//! With the input split into `x1` (first half) and `x2`:
//! `y1 = e(s2(x2))·x1 + t2(x2)`, `y2 = e(s1(y1))·x2 + t1(y1)`, where `e(s) = exp(log_e(s))`
//! and `log_e(s) = α·0.636·atan(s/α)` softly limits each scale to `exp(±α·π/2·0.636)`.

use tch::Tensor;
use tch::nn::{self, Module};

/// DifferNet's subnet: four linear layers with ReLU between them (dropout 0).
#[derive(Debug)]
pub struct Subnet {
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc2b: nn::Linear,
    fc3: nn::Linear,
}

impl Subnet {
    pub fn new(p: &nn::Path, size_in: i64, size_out: i64, hidden: i64) -> Self {
        use crate::init::linear as cfg;
        Subnet {
            fc1: nn::linear(p / "fc1", size_in, hidden, cfg(size_in)),
            fc2: nn::linear(p / "fc2", hidden, hidden, cfg(hidden)),
            fc2b: nn::linear(p / "fc2b", hidden, hidden, cfg(hidden)),
            fc3: nn::linear(p / "fc3", hidden, size_out, cfg(hidden)),
        }
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
