//! How the frozen forward pass is run: the activation layout (channels-last) and the number
//! format (float32 or bf16), set once on the extractor; values agree up to float rounding.

use tch::{Kind, Tensor};

use super::FeatureExtractor;
use crate::BackboneError;

/// How activations are laid out in memory during the forward pass. The values are the same
/// up to float rounding; only the speed differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryFormat {
    /// `[N, C, H, W]` row-major, PyTorch's default.
    Contiguous,
    /// Channels innermost (NHWC strides behind the NCHW shape). oneDNN's convolutions,
    /// depthwise ones above all, run much faster on it: 1.2× for AlexNet and 2.1× for
    /// EfficientNet-Lite0 on this project's 2-core CPU (`cargo xtask bench`).
    #[default]
    ChannelsLast,
}

impl std::str::FromStr for MemoryFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "contiguous" => Ok(MemoryFormat::Contiguous),
            "channels-last" => Ok(MemoryFormat::ChannelsLast),
            other => Err(format!(
                "unknown memory format {other:?}; expected \"channels-last\" or \"contiguous\""
            )),
        }
    }
}

pub use adn_util::Precision;

/// The tensor kind of a precision.
pub(super) fn kind_of(precision: Precision) -> Kind {
    match precision {
        Precision::Fp32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
    }
}

/// The kind pooled features are returned in: float32 for bf16 activations, otherwise the
/// activations' own (float64 in the parity tests).
pub(super) fn pooled_kind(activation: Kind) -> Kind {
    match activation {
        Kind::BFloat16 | Kind::Half => Kind::Float,
        k => k,
    }
}

/// `xs` `[N, C, H, W]` with channels-last strides; other ranks are returned as they are.
pub(super) fn channels_last(xs: &Tensor) -> Tensor {
    if xs.dim() != 4 {
        return xs.shallow_clone();
    }
    xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

impl FeatureExtractor {
    /// Lays the frozen backbone's convolution weights and every input out in `format`.
    /// The attention store is left contiguous so that it saves and loads as it is;
    /// convolutions follow their input's layout.
    pub fn with_memory_format(mut self, format: MemoryFormat) -> Self {
        if format != self.memory_format {
            tch::no_grad(|| {
                for (_, mut var) in self.backbone_vs.variables() {
                    if var.dim() == 4 {
                        let laid_out = match format {
                            MemoryFormat::ChannelsLast => channels_last(&var),
                            MemoryFormat::Contiguous => var.contiguous(),
                        };
                        var.set_data(&laid_out);
                    }
                }
            });
            self.memory_format = format;
        }
        self
    }

    pub fn memory_format(&self) -> MemoryFormat {
        self.memory_format
    }

    /// Casts every weight (backbone and attention) to `precision` once; inputs are cast
    /// on entry and pooled features returned as float32. Only for a frozen extractor:
    /// jointly trained attention keeps float32 weights for its optimiser.
    pub fn with_precision(mut self, precision: Precision) -> Result<Self, BackboneError> {
        self.set_precision(precision)?;
        Ok(self)
    }

    /// [`FeatureExtractor::with_precision`] in place. bf16 → fp32 → bf16 is exact, so
    /// gradients can be taken in float32 on the very weights a bf16 run scored with
    /// (Grad-CAM and the anomaly maps do) and the extractor returned to bf16 after.
    pub fn set_precision(&mut self, precision: Precision) -> Result<(), BackboneError> {
        if precision == self.precision {
            return Ok(());
        }
        if !self.is_frozen() {
            return Err(BackboneError::Config(format!(
                "model.precision = \"{}\" applies to a frozen extractor; jointly trained \
                 attention runs in fp32",
                precision.name()
            )));
        }
        let kind = kind_of(precision);
        tch::no_grad(|| {
            for vs in [&self.backbone_vs, &self.attention_vs] {
                for (_, mut var) in vs.variables() {
                    // `to_kind` keeps the strides: channels-last weights stay so.
                    let cast = var.to_kind(kind);
                    var.set_data(&cast);
                }
            }
        });
        self.precision = precision;
        Ok(())
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The input as the forward pass wants it: in the extractor's precision, laid out.
    pub(super) fn laid_out(&self, xs: &Tensor) -> Tensor {
        // fp32 leaves the input's kind alone (parity tests run the nets in float64).
        let xs = match self.precision {
            Precision::Fp32 => xs.shallow_clone(),
            Precision::Bf16 => xs.to_kind(Kind::BFloat16),
        };
        match self.memory_format {
            MemoryFormat::ChannelsLast => channels_last(&xs),
            MemoryFormat::Contiguous => xs,
        }
    }
}
