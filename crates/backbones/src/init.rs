//! PyTorch's default initialisation of `nn.Linear` and `nn.Conv2d`: weights and biases
//! uniform in ±1/√fan_in. tch's default (Kaiming with the ReLU gain, zero bias) is √6 times
//! wider; random-init modules (attention, a backbone without pretrained weights) must start
//! where the PyTorch reference code starts.

use tch::nn::{self, Init};

fn bound(fan_in: i64) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}

/// `nn.Linear(fan_in, _, bias)` as PyTorch initialises it.
pub fn linear(fan_in: i64, bias: bool) -> nn::LinearConfig {
    let b = bound(fan_in);
    nn::LinearConfig {
        ws_init: Init::Uniform { lo: -b, up: b },
        bs_init: Some(Init::Uniform { lo: -b, up: b }),
        bias,
    }
}

/// `nn.Conv2d` with `fan_in = c_in / groups · k²` as PyTorch initialises it.
pub fn conv(fan_in: i64, stride: i64, padding: i64, bias: bool) -> nn::ConvConfig {
    let b = bound(fan_in);
    nn::ConvConfig {
        stride,
        padding,
        bias,
        ws_init: Init::Uniform { lo: -b, up: b },
        bs_init: Init::Uniform { lo: -b, up: b },
        ..Default::default()
    }
}
