//! AlexNet's `features` stack with torchvision's names (`features.0`, `features.3`, ...),
//! including the last max-pool, with named taps where attention can be inserted.

use crate::backbone::{Backbone, Tap};
use tch::Tensor;
use tch::nn::{self, Module};

/// Insertion points, in forward order.
pub const POSITIONS: &[&str] = &["relu1", "pool1", "relu2", "pool2", "relu5", "pool5"];

/// Channels at each position of [`POSITIONS`].
pub fn channels_at(position: &str) -> Option<i64> {
    match position {
        "relu1" | "pool1" => Some(64),
        "relu2" | "pool2" => Some(192),
        "relu5" | "pool5" => Some(256),
        _ => None,
    }
}

/// A named position and the layers that lead to it.
type Step<'a> = (&'a str, &'a dyn Fn(&Tensor) -> Tensor);

/// The convolutions of AlexNet's `features`.
#[derive(Debug)]
pub struct AlexNetFeatures {
    convs: [nn::Conv2D; 5],
}

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    nn::conv2d(
        p,
        c_in,
        c_out,
        k,
        crate::init::conv(c_in * k * k, stride, padding, true),
    )
}

/// ReLU of a freshly computed activation, in place when no gradient is wanted (saves the
/// allocation of a second activation).
fn relu(xs: Tensor) -> Tensor {
    if xs.requires_grad() {
        xs.relu()
    } else {
        let mut xs = xs;
        let _ = xs.relu_();
        xs
    }
}

fn max_pool(xs: &Tensor) -> Tensor {
    xs.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

impl AlexNetFeatures {
    /// Builds under `p / "features"`, so variables are named as torchvision's.
    pub fn new(p: &nn::Path) -> Self {
        let f = p / "features";
        AlexNetFeatures {
            convs: [
                conv(&f / "0", 3, 64, 11, 4, 2),
                conv(&f / "3", 64, 192, 5, 1, 2),
                conv(&f / "6", 192, 384, 3, 1, 1),
                conv(&f / "8", 384, 256, 3, 1, 1),
                conv(&f / "10", 256, 256, 3, 1, 1),
            ],
        }
    }
}

impl Backbone for AlexNetFeatures {
    fn forward_from(
        &self,
        xs: &Tensor,
        start: Option<&str>,
        last: Option<&str>,
        tap: Tap<'_>,
    ) -> Tensor {
        let [c1, c2, c3, c4, c5] = &self.convs;
        let steps: [Step<'_>; 6] = [
            ("relu1", &|x| relu(c1.forward(x))),
            ("pool1", &max_pool),
            ("relu2", &|x| relu(c2.forward(x))),
            ("pool2", &max_pool),
            ("relu5", &|x| {
                relu(c5.forward(&relu(c4.forward(&relu(c3.forward(x))))))
            }),
            ("pool5", &max_pool),
        ];
        let mut x = xs.shallow_clone();
        let mut skipping = start.is_some();
        for (name, step) in steps {
            if skipping {
                if start != Some(name) {
                    continue;
                }
                skipping = false;
                x = tap(name, x);
            } else {
                x = tap(name, step(&x));
            }
            if last == Some(name) {
                break;
            }
        }
        x
    }
}
