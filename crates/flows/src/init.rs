//! PyTorch's default `nn.Linear` initialisation (weights and bias uniform in ±1/√fan_in).
//! tch's default is √6 times wider, which makes a fresh 8-block flow saturate its output
//! clamp; DifferNet starts from PyTorch's.

use tch::nn::{self, Init};

pub fn linear(fan_in: i64) -> nn::LinearConfig {
    let b = 1.0 / (fan_in.max(1) as f64).sqrt();
    nn::LinearConfig {
        ws_init: Init::Uniform { lo: -b, up: b },
        bs_init: Some(Init::Uniform { lo: -b, up: b }),
        bias: true,
    }
}
