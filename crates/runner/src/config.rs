//! Run configuration: a TOML file, dotted `--set` overrides, validation, and the run id.
//!
//! Unknown keys are errors at every level, so a typo never silently falls back to a
//! default. Defaults are DifferNet's published recipe (../shared/PAPER.md).

use std::path::{Path, PathBuf};

use adn_backbones::{
    AttentionInit, AttentionKind, AttentionTraining, BackboneConfig, BackboneKind,
};
use adn_flows::FlowConfig;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Name of the experiment; runs are written under `results/<experiment>/`.
    pub experiment: String,
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub flow: FlowConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub test: TestConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub kind: DataKind,
    /// Dataset root holding one folder per category.
    pub root: PathBuf,
    pub category: String,
    /// Side of generated images (generated kinds only).
    #[serde(default = "default_generated_size")]
    pub generated_size: u32,
}

fn default_generated_size() -> u32 {
    128
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub backbone: BackboneKind,
    /// Backbone weights (safetensors, torchvision names); random seeded weights when absent.
    pub weights: Option<PathBuf>,
    pub attention: AttentionKind,
    pub positions: Vec<String>,
    pub attention_training: AttentionTraining,
    /// `"random"` (default) or `"identity"`: gates that start at exactly 1. Omitted from the
    /// resolved config when random, so run ids from before this key are unchanged.
    #[serde(skip_serializing_if = "AttentionInit::is_random")]
    pub attention_init: AttentionInit,
    pub se_reduction: i64,
    /// Layers whose pooled outputs form the feature; the backbone's default when absent
    /// (AlexNet: `pool5`, as DifferNet).
    pub feature_layers: Option<Vec<String>>,
    pub image_size: i64,
    pub scales: usize,
    /// Run the frozen backbone under CUDA autocast (float16); ignored on the CPU.
    pub mixed_precision: bool,
    /// The frozen backbone's number format: `fp32`, `bf16`, or `auto` (bf16 where the CPU
    /// has AMX or AVX-512 BF16, or on a CUDA device; fp32 otherwise, and always for jointly
    /// trained attention). fp32 is the default until bf16's effect on AUROC is measured
    /// (issue #16); it is left out of the resolved config, so run ids are unchanged.
    #[serde(skip_serializing_if = "PrecisionChoice::is_fp32")]
    pub precision: PrecisionChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionChoice {
    #[default]
    Fp32,
    Bf16,
    Auto,
}

impl PrecisionChoice {
    fn is_fp32(&self) -> bool {
        *self == PrecisionChoice::Fp32
    }

    /// Whether the flow's matrix multiplies run in bf16 on `device` (`train.precision`).
    pub fn flow_bf16(self, device: tch::Device) -> bool {
        match self {
            PrecisionChoice::Fp32 => false,
            PrecisionChoice::Bf16 => true,
            PrecisionChoice::Auto => device.is_cuda() || cpu_has_bf16_units(),
        }
    }

    /// The precision this choice means on `device` for an extractor trained `training`.
    pub fn resolve(
        self,
        device: tch::Device,
        training: AttentionTraining,
    ) -> adn_backbones::Precision {
        use adn_backbones::Precision;
        match self {
            PrecisionChoice::Fp32 => Precision::Fp32,
            PrecisionChoice::Bf16 => Precision::Bf16,
            PrecisionChoice::Auto if training == AttentionTraining::Joint => Precision::Fp32,
            PrecisionChoice::Auto if device.is_cuda() || cpu_has_bf16_units() => Precision::Bf16,
            PrecisionChoice::Auto => Precision::Fp32,
        }
    }
}

/// Whether this CPU has bfloat16 matrix units (`amx_bf16` or `avx512_bf16` in
/// `/proc/cpuinfo`; false where the file is absent).
pub fn cpu_has_bf16_units() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
        info.lines().filter(|l| l.starts_with("flags")).any(|l| {
            l.split_whitespace()
                .any(|f| f == "amx_bf16" || f == "avx512_bf16")
        })
    })
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub meta_epochs: usize,
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
    pub lr: f64,
    /// Learning rate of jointly trained attention, as a multiple of `lr`.
    pub attention_lr_scale: f64,
    /// Weight of the volume charge added to the loss of jointly trained attention (0: off,
    /// DifferNet; 1: the exact price of a per-dimension rescale): what the features lost
    /// against the same rows with attention off (`adn_flows::volume_charge`). Omitted from
    /// the resolved config when 0, so run ids from before this key are unchanged.
    #[serde(skip_serializing_if = "is_zero")]
    pub volume_charge: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// The flow's matrix multiplies: `fp32`, `bf16` (on bfloat16 copies of the weights that
    /// the optimiser keeps; float32 master weights, loss, log-determinant, clamp and Adam),
    /// or `auto` (bf16 where the CPU has AMX or AVX-512 BF16, or on a CUDA device). The
    /// same forward scores the test images. Left out of the resolved config at fp32.
    #[serde(skip_serializing_if = "PrecisionChoice::is_fp32")]
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
            betas: [0.8, 0.8],
            eps: 1e-4,
            weight_decay: 1e-5,
            seed: 0,
            precision: PrecisionChoice::Fp32,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrainRotations {
    /// Uniform in [-180°, 180°): DifferNet's `RandomRotation(180)`.
    Uniform,
    /// Random multiples of 90°: no black corners, for images with a fixed square frame
    /// (solar cells, dies).
    QuarterTurns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rotations {
    /// `i·360/n`: DifferNet's evaluation script, reproducible.
    Fixed,
    /// Uniform random angles drawn from the run's seed (DifferNet's training loop).
    Random,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestConfig {
    pub test_transforms: usize,
    pub rotations: Rotations,
    /// Whether the run computes DifferNet's anomaly maps and the pixel metrics after its
    /// last meta-epoch. Left out of the resolved config at its default, so that run ids
    /// from before it are unchanged.
    #[serde(skip_serializing_if = "Localize::is_auto")]
    pub localize: Localize,
    /// How many of the test rotations the maps average over, evenly spaced among them;
    /// 0: all (a map costs a backward pass per rotation).
    #[serde(skip_serializing_if = "is_zero_usize")]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl Config {
    /// Reads `path`, applies `key=value` overrides and validates the result.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        let mut value: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        for o in overrides {
            apply_override(&mut value, o)?;
        }
        let mut config: Config = toml::Value::Table(value).try_into().with_context(|| {
            format!("invalid config {} (after --set overrides)", path.display())
        })?;
        config.without_absent_attention();
        config.validate()?;
        Ok(config)
    }

    /// Without attention, the settings of attention change nothing: they are reset to their
    /// defaults, so that the vanilla runs of a grid that crosses attention regimes resolve
    /// to one config (one run id) instead of copies that differ in unused keys.
    fn without_absent_attention(&mut self) {
        if self.model.attention == AttentionKind::None {
            let (model, train) = (ModelConfig::default(), TrainConfig::default());
            self.model.attention_training = model.attention_training;
            self.model.attention_init = model.attention_init;
            self.train.attention_lr_scale = train.attention_lr_scale;
            self.train.volume_charge = train.volume_charge;
        }
    }

    /// Checks value ranges that the types cannot express.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        let positive = [
            ("train.meta_epochs", t.meta_epochs),
            ("train.sub_epochs", t.sub_epochs),
            ("train.batch_size", t.batch_size),
            ("train.train_transforms", t.train_transforms),
            ("train.rotation_pool", t.rotation_pool),
            ("test.test_transforms", self.test.test_transforms),
            ("flow.coupling_blocks", self.flow.coupling_blocks),
            ("model.scales", self.model.scales),
        ];
        for (key, v) in positive {
            if v == 0 {
                bail!("{key} must be at least 1");
            }
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            bail!("train.lr must be a positive number, got {}", t.lr);
        }
        // Adam's settings: out-of-range values fail inside libtorch after the extraction,
        // with a C++ trace that names no key.
        for (k, beta) in t.betas.iter().enumerate() {
            if !(0.0..1.0).contains(beta) {
                bail!("train.betas[{k}] must lie in [0, 1), got {beta}");
            }
        }
        if !(t.eps.is_finite() && t.eps > 0.0) {
            bail!("train.eps must be a positive number, got {}", t.eps);
        }
        let non_negative = [
            ("train.weight_decay", t.weight_decay),
            ("train.attention_lr_scale", t.attention_lr_scale),
            ("train.volume_charge", t.volume_charge),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{key} must be a number >= 0, got {v}");
            }
        }
        if self.model.precision == PrecisionChoice::Bf16
            && self.model.attention_training == AttentionTraining::Joint
        {
            bail!(
                "model.precision = \"bf16\" applies to a frozen extractor; jointly trained \
                 attention runs in fp32 (set model.precision = \"auto\" or \"fp32\")"
            );
        }
        if self.test.map_rotations > self.test.test_transforms {
            bail!(
                "test.map_rotations = {} is more than the {} test rotations it picks from; \
                 choose at most test.test_transforms, or 0 for all",
                self.test.map_rotations,
                self.test.test_transforms
            );
        }
        if t.volume_charge > 0.0 && self.model.attention_training != AttentionTraining::Joint {
            bail!(
                "train.volume_charge = {} charges jointly trained attention only; set \
                 model.attention_training = \"joint\" or leave it at 0",
                t.volume_charge
            );
        }
        if t.volume_charge > 0.0 && self.flow.standardize {
            bail!(
                "train.volume_charge and flow.standardize do not go together: standardised \
                 inputs already make the loss blind to a rescale, so the charge would only pay \
                 attention for growing the features; choose one"
            );
        }
        if self.flow.hidden < 1 {
            bail!("flow.hidden must be at least 1");
        }
        if !(self.flow.clamp.is_finite() && self.flow.clamp > 0.0) {
            bail!("flow.clamp must be a positive number");
        }
        // Sizes and positions the backbone cannot take: checked here so that a sweep refuses
        // such a config before it starts, exactly as a run would.
        self.model.backbone_config().validate()?;
        // The experiment names a folder under `results/`: nothing that leaves it or hides.
        if self.experiment.is_empty()
            || self.experiment.contains(['/', '\\'])
            || self.experiment.starts_with('.')
        {
            bail!(
                "experiment must be a non-empty name without slashes that does not start \
                 with a dot, got {:?}",
                self.experiment
            );
        }
        Ok(())
    }

    /// The fully resolved config as TOML (defaults filled in).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serialises")
    }

    /// A stable id: the first 12 hex digits of the SHA-256 of the resolved config.
    pub fn run_id(&self) -> String {
        adn_util::hash::sha256_hex(self.to_toml().as_bytes())[..12].to_string()
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// The config file and `--set` overrides every command that builds a model takes.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The experiment config (TOML).
    config: PathBuf,
    /// Override a config value by its dotted path, e.g. `--set train.lr=1e-3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

impl ConfigArgs {
    /// The resolved config.
    pub fn load(&self) -> Result<Config> {
        Config::load(&self.config, &self.overrides)
    }
}

/// Applies `a.b.c=value` to a TOML table; `value` is parsed as TOML, or taken as a string.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        bail!("--set expects key=value, got {assignment:?}");
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        bail!("--set: bad key {key:?}");
    }
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").expect("parsed above"),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    let (last, path) = parts.split_last().expect("at least one part");
    let mut node = table;
    for p in path {
        let entry = node
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .with_context(|| format!("--set {key}: {p} is not a table"))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "experiment = \"t\"\n[data]\nkind = \"smoke\"\nroot = \"d\"\ncategory = \"shapes\"\n";

    fn load(text: &str, overrides: &[&str]) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        Config::load(&path, &o)
    }

    #[test]
    fn defaults_are_differnets_recipe() {
        let c = load(MINIMAL, &[]).unwrap();
        assert_eq!(
            (c.train.meta_epochs, c.train.sub_epochs, c.train.batch_size),
            (24, 8, 24)
        );
        assert_eq!(c.train.betas, [0.8, 0.8]);
        assert_eq!((c.model.image_size, c.model.scales), (448, 3));
        assert_eq!((c.flow.coupling_blocks, c.flow.hidden), (8, 2048));
        assert_eq!(c.test.test_transforms, 64);
    }

    #[test]
    fn overrides_are_typed_and_validated() {
        let c = load(
            MINIMAL,
            &["train.lr=1e-3", "model.attention=se", "flow.hidden=64"],
        )
        .unwrap();
        assert_eq!(c.train.lr, 1e-3);
        assert_eq!(c.model.attention, AttentionKind::Se);
        assert_eq!(c.flow.hidden, 64);
        let e = load(MINIMAL, &["train.lrr=1e-3"]).unwrap_err();
        assert!(format!("{e:#}").contains("lrr"), "{e:#}");
        let e = load(MINIMAL, &["model.attention=sse"]).unwrap_err();
        assert!(format!("{e:#}").contains("sse"), "{e:#}");
        let e = load(MINIMAL, &["train.batch_size=0"]).unwrap_err();
        assert!(format!("{e:#}").contains("batch_size"), "{e:#}");
    }

    #[test]
    fn adam_settings_are_checked_with_their_key() {
        let cases = [
            ("train.betas=[0.8, 1.0]", "train.betas[1]"),
            ("train.betas=[-0.1, 0.8]", "train.betas[0]"),
            ("train.eps=0.0", "train.eps"),
            ("train.eps=-1e-4", "train.eps"),
            ("train.weight_decay=-1e-5", "train.weight_decay"),
            ("train.weight_decay=nan", "train.weight_decay"),
        ];
        for (set, key) in cases {
            let err = load(MINIMAL, &[set]).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{set}: {err:#}");
        }
        assert!(
            load(
                MINIMAL,
                &["train.betas=[0.0, 0.999]", "train.weight_decay=0.0"]
            )
            .is_ok()
        );
    }

    #[test]
    fn experiment_names_cannot_leave_or_hide_in_results() {
        for bad in ["..", ".", ".hidden", "a/b", "..\\x", ""] {
            let err = load(MINIMAL, &[&format!("experiment={bad:?}")]).unwrap_err();
            assert!(format!("{err:#}").contains("experiment"), "{bad}: {err:#}");
        }
        assert!(load(MINIMAL, &["experiment=\"demo-2\""]).is_ok());
    }

    #[test]
    fn the_volume_charge_is_checked_and_vanilla_ignores_attention_settings() {
        let joint = [
            "model.attention=se",
            "model.attention_training=\"joint\"",
            "train.volume_charge=1.0",
        ];
        let c = load(MINIMAL, &joint).unwrap();
        assert_eq!(c.train.volume_charge, 1.0);
        assert!(c.to_toml().contains("volume_charge = 1.0"));
        // Off by default, and then absent from the resolved config (run ids unchanged).
        assert!(
            !load(MINIMAL, &[])
                .unwrap()
                .to_toml()
                .contains("volume_charge")
        );
        for (set, key) in [
            ("train.volume_charge=-1.0", "train.volume_charge"),
            ("train.volume_charge=nan", "train.volume_charge"),
            ("train.attention_lr_scale=-0.5", "train.attention_lr_scale"),
        ] {
            let err = load(MINIMAL, &["model.attention=se", set]).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{set}: {err:#}");
        }
        // A charge on frozen attention would do nothing: refused with what to set.
        let err = load(MINIMAL, &["model.attention=se", "train.volume_charge=1.0"]).unwrap_err();
        assert!(format!("{err:#}").contains("attention_training"), "{err:#}");
        // Standardised inputs are already blind to a rescale: the charge would reward growth.
        let mut both = joint.to_vec();
        both.push("flow.standardize=true");
        let err = load(MINIMAL, &both).unwrap_err();
        assert!(format!("{err:#}").contains("flow.standardize"), "{err:#}");
        // Without attention, every regime is the same vanilla run.
        let vanilla = load(MINIMAL, &[]).unwrap();
        let regime = load(
            MINIMAL,
            &[
                "model.attention_training=\"joint\"",
                "model.attention_init=\"identity\"",
                "train.volume_charge=1.0",
                "train.attention_lr_scale=2.0",
            ],
        )
        .unwrap();
        assert_eq!(vanilla.run_id(), regime.run_id());
    }

    #[test]
    fn typos_in_the_file_are_errors() {
        let e = load(&format!("{MINIMAL}[train]\nmeta_epoch = 3\n"), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("meta_epoch"), "{e:#}");
    }

    #[test]
    fn localization_keys_are_checked_and_leave_old_run_ids_alone() {
        let a = load(MINIMAL, &[]).unwrap();
        assert_eq!(a.test.localize, Localize::Auto);
        let explicit = load(MINIMAL, &["test.localize=\"auto\"", "test.map_rotations=0"]).unwrap();
        assert_eq!(a.run_id(), explicit.run_id());
        let off = load(MINIMAL, &["test.localize=\"off\""]).unwrap();
        assert_ne!(a.run_id(), off.run_id());
        let e = load(MINIMAL, &["test.localize=\"yes\""]).unwrap_err();
        assert!(format!("{e:#}").contains("localize"), "{e:#}");
        let e = load(MINIMAL, &["test.test_transforms=4", "test.map_rotations=5"]).unwrap_err();
        assert!(format!("{e:#}").contains("test.map_rotations"), "{e:#}");
        let c = load(MINIMAL, &["test.test_transforms=8", "test.map_rotations=4"]).unwrap();
        let angles = adn_datasets::transforms::fixed_angles(8);
        assert_eq!(
            crate::localize::map_angles(&c, &angles),
            [0.0, 90.0, 180.0, 270.0]
        );
    }

    #[test]
    fn precision_is_checked_and_fp32_leaves_run_ids_alone() {
        let a = load(MINIMAL, &[]).unwrap();
        assert_eq!(a.model.precision, PrecisionChoice::Fp32);
        let fp32 = load(MINIMAL, &["model.precision=\"fp32\""]).unwrap();
        assert_eq!(a.run_id(), fp32.run_id());
        let bf16 = load(MINIMAL, &["model.precision=\"bf16\""]).unwrap();
        assert_ne!(a.run_id(), bf16.run_id());
        let e = load(MINIMAL, &["model.precision=\"bf61\""]).unwrap_err();
        assert!(format!("{e:#}").contains("precision"), "{e:#}");
        let e = load(
            MINIMAL,
            &[
                "model.precision=\"bf16\"",
                "model.attention=\"se\"",
                "model.attention_training=\"joint\"",
            ],
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("model.precision"), "{e:#}");
        // auto: fp32 for joint attention whatever the hardware; bf16 on a GPU.
        use adn_backbones::Precision;
        let cpu = tch::Device::Cpu;
        assert_eq!(
            PrecisionChoice::Auto.resolve(cpu, AttentionTraining::Joint),
            Precision::Fp32
        );
        assert_eq!(
            PrecisionChoice::Auto.resolve(tch::Device::Cuda(0), AttentionTraining::FrozenAtInit),
            Precision::Bf16
        );
        let here = PrecisionChoice::Auto.resolve(cpu, AttentionTraining::FrozenAtInit);
        assert_eq!(here == Precision::Bf16, cpu_has_bf16_units());
        // The flow's: the same words, its own key.
        let flow_fp32 = load(MINIMAL, &["train.precision=\"fp32\""]).unwrap();
        assert_eq!(a.run_id(), flow_fp32.run_id());
        let flow_bf16 = load(MINIMAL, &["train.precision=\"bf16\""]).unwrap();
        assert_ne!(a.run_id(), flow_bf16.run_id());
        assert_ne!(bf16.run_id(), flow_bf16.run_id());
        assert!(flow_bf16.train.precision.flow_bf16(cpu));
        assert!(!a.train.precision.flow_bf16(tch::Device::Cuda(0)));
        assert_eq!(PrecisionChoice::Auto.flow_bf16(cpu), cpu_has_bf16_units());
        let e = load(MINIMAL, &["train.precision=\"fp16\""]).unwrap_err();
        assert!(format!("{e:#}").contains("precision"), "{e:#}");
    }

    #[test]
    fn run_id_follows_the_resolved_config() {
        let a = load(MINIMAL, &[]).unwrap();
        let b = load(MINIMAL, &["train.seed=0"]).unwrap();
        let c = load(MINIMAL, &["train.seed=1"]).unwrap();
        assert_eq!(a.run_id(), b.run_id());
        assert_ne!(a.run_id(), c.run_id());
        assert_eq!(a.run_id().len(), 12);
    }
}
