//! PyTorch's default `nn.Linear` and `nn.Conv2d` initialisation (weights and bias uniform
//! in ±1/√fan_in). tch's default is √6 times wider, which makes a fresh 8-block flow
//! saturate its output clamp; DifferNet and the flow families start from PyTorch's.

use tch::nn::{self, Init};

pub fn linear(fan_in: i64) -> nn::LinearConfig {
    let b = 1.0 / (fan_in.max(1) as f64).sqrt();
    nn::LinearConfig {
        ws_init: Init::Uniform { lo: -b, up: b },
        bs_init: Some(Init::Uniform { lo: -b, up: b }),
        bias: true,
    }
}

/// A `k × k` convolution with PyTorch's default initialisation, zero padding `k / 2`.
pub fn conv2d(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> nn::Conv2D {
    let b = 1.0 / ((c_in * k * k).max(1) as f64).sqrt();
    nn::conv2d(
        p,
        c_in,
        c_out,
        k,
        nn::ConvConfig {
            padding: k / 2,
            stride,
            ws_init: Init::Uniform { lo: -b, up: b },
            bs_init: Init::Uniform { lo: -b, up: b },
            ..Default::default()
        },
    )
}
