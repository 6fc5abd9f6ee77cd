//! Run configuration: what the user asked for. The types and their defaults here; reading
//! a TOML file with dotted `--set` overrides, validation and the run id in [`load`]; the
//! generated key reference (`docs/config.md`) in [`reference`]. What the asked-for values
//! mean on this machine (`auto`, the device) is resolved once, in `crate::pipeline::settings`.
//!
//! Unknown keys are errors at every level, so a typo never silently falls back to a
//! default. Defaults are DifferNet's published recipe (../shared/PAPER.md).

mod load;
pub mod reference;

pub use load::{ConfigArgs, apply_override};

use std::path::PathBuf;

use adn_backbones::{
    AttentionInit, AttentionKind, AttentionTraining, BackboneConfig, BackboneKind,
};
use adn_flows::FlowConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the experiment; runs are written under `results/<experiment>/`.
    pub experiment: String,
    /// The dataset: its layout, root and category.
    pub data: DataConfig,
    #[serde(default)]
    /// The backbone, its attention and the input size.
    pub model: ModelConfig,
    #[serde(default)]
    /// The normalizing flow.
    pub flow: FlowConfig,
    #[serde(default)]
    /// Training: schedule, rotations, optimiser, seed, precision of the flow.
    pub train: TrainConfig,
    #[serde(default)]
    /// Scoring the test set, and the anomaly maps.
    pub test: TestConfig,
    /// How the numbers are computed: the fast kernels of this CPU, or the pinned ones that
    /// give the same bits on any x86-64 CPU with AVX2. Left out of the resolved config at
    /// its default, so run ids from before this section are unchanged.
    #[serde(default, skip_serializing_if = "ComputeConfig::is_default")]
    pub compute: ComputeConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ComputeConfig {
    /// Reproducible mode: libtorch's kernels pinned to AVX2 (ATen's dispatch, oneDNN's
    /// instruction set, MKL's conditional numerical reproducibility) and one intra-op
    /// thread, so the same config gives bit-identical scores on any x86-64 CPU with AVX2,
    /// whatever its vendor or newer units. `auto` precisions mean fp32 and bf16 is refused
    /// (bf16 kernels exist only on some CPUs). Slower where the CPU has wider units; use
    /// more sweep jobs for the cores. The default, false, uses the fastest kernels of the
    /// CPU, whose last bits differ between CPUs (docs/reliability.md). Reproducible runs
    /// compute on the CPU: `--device auto` means the CPU and `--device cuda` is refused.
    pub reproducible: bool,
}

impl ComputeConfig {
    fn is_default(&self) -> bool {
        *self == ComputeConfig::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DataKind {
    /// MVTec AD: masks required for every defective test image.
    Mvtec,
    /// InsPLAD-fault: no masks, folder names matched case-insensitively.
    Insplad,
    /// Any MVTec-style folder (the wafer set, ELPV as written by `adn data make`): masks
    /// optional.
    Folder,
    /// DifferNet-style dummy set (squares good, circles anomalous), generated when missing.
    Smoke,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The layout the dataset follows.
    pub kind: DataKind,
    /// Dataset root holding one folder per category.
    pub root: PathBuf,
    /// The category folder inside `root` (e.g. `bottle`, `elpv-mono`); a whole number names
    /// a numbered folder (`category = 3` or `--set data.category=3` is the folder `3`).
    #[serde(deserialize_with = "category_name")]
    pub category: String,
    /// Side of generated images (generated kinds only).
    #[serde(default = "default_generated_size")]
    pub generated_size: u32,
    /// A labelled folder laid out like a test split (`good/` and one folder per defect
    /// type, images at any depth below each), never trained on: after training its images
    /// are scored to set the F1-optimal threshold `validation-f1` for `adn predict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
}

fn default_generated_size() -> u32 {
    128
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// The network that extracts the features.
    pub backbone: BackboneKind,
    /// Backbone weights (safetensors, torchvision names); random seeded weights when absent.
    pub weights: Option<PathBuf>,
    /// The attention module inserted at each of `positions`.
    pub attention: AttentionKind,
    /// Named backbone positions where attention goes (AlexNet: `relu1`…`relu5`, `pool1`,
    /// …; EfficientNet-Lite0: `stage1`…`stage7`). Ignored without attention.
    pub positions: Vec<String>,
    /// Whether the attention stays at its initialisation or learns with the flow.
    pub attention_training: AttentionTraining,
    /// `"random"` (default) or `"identity"`: gates that start at exactly 1. Omitted from the
    /// resolved config when random, so run ids from before this key are unchanged.
    // A default left out of the resolved config is stated for the reference by hand; the
    // reference's test sets every stated default and checks that the run id stays.
    #[serde(skip_serializing_if = "AttentionInit::is_random")]
    #[schemars(extend("default" = "random"))]
    pub attention_init: AttentionInit,
    /// SE's channel reduction r.
    pub se_reduction: i64,
    /// Layers whose pooled outputs form the feature; the backbone's default when absent
    /// (AlexNet: `pool5`, as DifferNet).
    pub feature_layers: Option<Vec<String>>,
    /// Side of the square input, in pixels, at the first scale.
    pub image_size: i64,
    /// Input scales (each half the previous side) whose pooled features are concatenated.
    pub scales: usize,
    /// Run the frozen backbone under CUDA autocast (float16); ignored on the CPU.
    pub mixed_precision: bool,
    /// The frozen backbone's number format: `fp32`, `bf16`, or `auto` (bf16 where the CPU
    /// has AMX or AVX-512 BF16, or on a CUDA device; fp32 otherwise, and always for jointly
    /// trained attention). fp32, the default, is left out of the resolved config, so run ids
    /// from before this key are unchanged.
    #[serde(skip_serializing_if = "PrecisionChoice::is_fp32")]
    #[schemars(extend("default" = "fp32"))]
    pub precision: PrecisionChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    /// float32.
    #[default]
    Fp32,
    /// bfloat16 (see the key for what is cast).
    Bf16,
    /// bf16 where the CPU has AMX or AVX-512 BF16, or on a CUDA device; fp32 otherwise,
    /// and always in reproducible mode (`compute.reproducible`).
    Auto,
}

impl PrecisionChoice {
    fn is_fp32(&self) -> bool {
        *self == PrecisionChoice::Fp32
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            backbone: BackboneKind::Alexnet,
            weights: None,
            attention: AttentionKind::None,
            positions: vec!["relu1".into(), "relu2".into(), "relu5".into()],
            attention_training: AttentionTraining::FrozenAtInit,
            attention_init: AttentionInit::Random,
            se_reduction: 2,
            feature_layers: None,
            image_size: 448,
            scales: 3,
            mixed_precision: false,
            precision: PrecisionChoice::Fp32,
        }
    }
}

impl ModelConfig {
    pub fn backbone_config(&self) -> BackboneConfig {
        BackboneConfig {
            kind: self.backbone,
            attention: self.attention,
            positions: if self.attention == AttentionKind::None {
                Vec::new()
            } else {
                self.positions.clone()
            },
            se_reduction: self.se_reduction,
            attention_init: self.attention_init,
            feature_layers: self
                .feature_layers
                .clone()
                .unwrap_or_else(|| self.backbone.default_feature_layers()),
            image_size: self.image_size,
            scales: self.scales,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Meta-epochs; the test set is scored after each.
    pub meta_epochs: usize,
    /// Passes over the training images per meta-epoch.
    pub sub_epochs: usize,
    /// Images per batch; each brings all of its `train_transforms` rotations.
    pub batch_size: usize,
    /// Rotations of each training image in every batch (DifferNet: 4).
    pub train_transforms: usize,
    /// How training rotations are drawn.
    pub rotations: TrainRotations,
    /// Draw new rotations for every image in every sub-epoch, as DifferNet's loop does
    /// (true), or draw `train_transforms` once and reuse them (false: fewer backbone passes,
    /// but the flow sees fewer views; not the paper's protocol).
    pub redraw_rotations: bool,
    /// Under `redraw_rotations` with uniform rotations: the draws come from this many evenly
    /// spaced angles `i·360/n`, whose features are computed once (the cache's price for a
    /// continuous angle; 64 puts them 5.6° apart). Quarter turns always draw from their 4.
    pub rotation_pool: usize,
    /// Adam's learning rate for the flow.
    pub lr: f64,
    /// Learning rate of jointly trained attention, as a multiple of `lr`.
    pub attention_lr_scale: f64,
    /// Weight of the volume charge added to the loss of jointly trained attention (0: off,
    /// DifferNet; 1: the exact price of a per-dimension rescale): what the features lost
    /// against the same rows with attention off (`adn_flows::volume_charge`). Omitted from
    /// the resolved config when 0, so run ids from before this key are unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    #[schemars(extend("default" = 0.0))]
    pub volume_charge: f64,
    /// Fraction of the good training images held out from training, drawn with the seed,
    /// to set score thresholds without the test set (`metrics.json`, `thresholds`): the
    /// 99 % and 99.9 % quantiles of their scores, for `adn predict`. 0 (the default) trains
    /// on every image, as the paper does, and keeps every earlier config meaning what it
    /// meant (left out of the resolved config at 0, so run ids are unchanged); 0.1 to 0.2
    /// suits a model meant for an inspection line (docs/guide.md, "Predicting").
    #[serde(skip_serializing_if = "is_zero")]
    #[schemars(extend("default" = 0.0))]
    pub validation_fraction: f64,
    /// Adam's β₁ and β₂.
    pub betas: [f64; 2],
    /// Adam's ε.
    pub eps: f64,
    /// Adam's L2 weight decay.
    pub weight_decay: f64,
    /// Seeds the rotations, batches, the flow's initialisation and random backbone or
    /// attention weights: one seed gives one run.
    pub seed: u64,
    /// The flow's matrix multiplies: `fp32`, `bf16` (on bfloat16 copies of the weights that
    /// the optimiser keeps; float32 master weights, loss, log-determinant, clamp and Adam),
    /// or `auto` (bf16 where the CPU has AMX or AVX-512 BF16, or on a CUDA device). The
    /// same forward scores the test images. Left out of the resolved config at fp32.
    #[serde(skip_serializing_if = "PrecisionChoice::is_fp32")]
    #[schemars(extend("default" = "fp32"))]
    pub precision: PrecisionChoice,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            meta_epochs: 24,
            sub_epochs: 8,
            batch_size: 24,
            train_transforms: 4,
            rotations: TrainRotations::Uniform,
            redraw_rotations: true,
            rotation_pool: 64,
            lr: 2e-4,
            attention_lr_scale: 0.5,
            volume_charge: 0.0,
            validation_fraction: 0.0,
            betas: [0.8, 0.8],
            eps: 1e-4,
            weight_decay: 1e-5,
            seed: 0,
            precision: PrecisionChoice::Fp32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TrainRotations {
    /// Uniform in [-180°, 180°): DifferNet's `RandomRotation(180)`.
    Uniform,
    /// Random multiples of 90°: no black corners, for images with a fixed square frame
    /// (solar cells, dies).
    QuarterTurns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rotations {
    /// `i·360/n`: DifferNet's evaluation script, reproducible.
    Fixed,
    /// Uniform random angles drawn from the run's seed (DifferNet's training loop).
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TestConfig {
    /// Rotations of each test image; its score is the mean over them.
    pub test_transforms: usize,
    /// How the test rotations are chosen.
    pub rotations: Rotations,
    /// Whether the run computes DifferNet's anomaly maps and the pixel metrics after its
    /// last meta-epoch. Left out of the resolved config at its default, so that run ids
    /// from before it are unchanged.
    #[serde(skip_serializing_if = "Localize::is_auto")]
    #[schemars(extend("default" = "auto"))]
    pub localize: Localize,
    /// How many of the test rotations the maps average over, evenly spaced among them;
    /// 0: all (a map costs a backward pass per rotation).
    #[serde(skip_serializing_if = "is_zero_usize")]
    #[schemars(extend("default" = 0))]
    pub map_rotations: usize,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            test_transforms: 64,
            rotations: Rotations::Fixed,
            localize: Localize::Auto,
            map_rotations: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Localize {
    /// Where every anomalous test image has a ground-truth mask.
    Auto,
    /// Always; a test set without masks is an error.
    On,
    Off,
}

impl Localize {
    fn is_auto(&self) -> bool {
        *self == Localize::Auto
    }
}

fn is_zero_usize(v: &usize) -> bool {
    *v == 0
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// A category folder's name: a string, or a whole number written without quotes (a TOML
/// integer, as `--set data.category=3` parses), which names the folder of its digits.
pub fn category_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(CategoryName)
}

struct CategoryName;

impl serde::de::Visitor<'_> for CategoryName {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a category folder name (a string, or a whole number)")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
}
