//! Reading a config: the TOML file, dotted `--set` overrides, validation of what the types
//! cannot express, and the run id (a hash of the resolved config).

use std::path::{Path, PathBuf};

use adn_backbones::{AttentionKind, AttentionTraining};
use anyhow::{Context, Result, bail};

use adn_flows::FlowKind;

use super::{Config, ModelConfig, PrecisionChoice, TrainConfig};

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
        config.without_unused_flow_keys();
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

    /// A flow other than DifferNet's has no use for DifferNet's flow keys: they are reset to
    /// their defaults, so that a grid crossing them with families resolves each family's
    /// runs to one config.
    fn without_unused_flow_keys(&mut self) {
        let d = adn_flows::FlowConfig::default();
        if self.flow.kind != FlowKind::Cflow {
            self.flow.fiber_batch = d.fiber_batch;
        }
        match self.flow.kind {
            FlowKind::Differnet => {}
            FlowKind::Cflow => {
                self.flow.hidden = d.hidden;
                self.flow.standardize = d.standardize;
            }
            FlowKind::Fastflow => {
                self.flow.hidden = d.hidden;
                self.flow.clamp = d.clamp;
                self.flow.standardize = d.standardize;
            }
            FlowKind::Csflow => self.flow.standardize = d.standardize,
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
        if self.compute.reproducible {
            for (key, choice) in [
                ("model.precision", self.model.precision),
                ("train.precision", self.train.precision),
            ] {
                if choice == PrecisionChoice::Bf16 {
                    bail!(
                        "{key} = \"bf16\" cannot be reproducible: bfloat16 kernels exist only \
                         on CPUs with AVX-512 BF16 or AMX, and differ between them; set {key} \
                         = \"fp32\" (or \"auto\", which means fp32 here), or \
                         compute.reproducible = false"
                    );
                }
            }
        }
        if self.test.map_rotations > self.test.test_transforms {
            bail!(
                "test.map_rotations = {} is more than the {} test rotations it picks from; \
                 choose at most test.test_transforms, or 0 for all",
                self.test.map_rotations,
                self.test.test_transforms
            );
        }
        if !(0.0..0.9).contains(&t.validation_fraction) {
            bail!(
                "train.validation_fraction must lie in [0, 0.9), got {}: it is the share of \
                 the good training images held out to set thresholds",
                t.validation_fraction
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
        if self.flow.kind != FlowKind::Differnet {
            let kind = format!("{:?}", self.flow.kind).to_lowercase();
            let refuse = |what: &str| {
                anyhow::anyhow!("flow.kind = \"{kind}\" {what} (docs/flow-families.md)")
            };
            if self.model.attention_training == AttentionTraining::Joint {
                let b = self.model.backbone_config();
                let order = |p: &str| b.kind.positions().iter().position(|q| *q == p);
                let first = b.first_attention_position().and_then(order);
                if let Some(early) = b
                    .feature_layers
                    .iter()
                    .find(|l| first.is_some_and(|f| order(l).is_some_and(|o| o < f)))
                {
                    return Err(refuse(&format!(
                        "with jointly trained attention takes its maps through the attention: \
                         feature layer {early} comes before the first attention position; \
                         place model.positions at or before every model.feature_layers entry"
                    )));
                }
                if self.train.volume_charge > 0.0 {
                    return Err(refuse(
                        "has no volume charge yet (it is defined for DifferNet's loss); set \
                         train.volume_charge = 0",
                    ));
                }
            }
            if matches!(self.flow.kind, FlowKind::Fastflow | FlowKind::Cflow)
                && self.model.scales != 1
            {
                return Err(refuse(
                    "takes its scales from model.feature_layers at one input size; set \
                     model.scales = 1",
                ));
            }
            if self.flow.kind == FlowKind::Csflow
                && (self.model.scales != 3
                    || self.model.backbone_config().feature_layers.len() != 1)
            {
                return Err(refuse(
                    "takes one feature layer at three input scales; set model.scales = 3 \
                     and one model.feature_layers entry",
                ));
            }
            if self.train.precision == PrecisionChoice::Bf16 {
                return Err(refuse(
                    "trains in float32; set train.precision = \"fp32\" or \"auto\"",
                ));
            }
        }
        if self.flow.hidden < 1 {
            bail!("flow.hidden must be at least 1");
        }
        if self.flow.fiber_batch < 1 {
            bail!("flow.fiber_batch must be at least 1");
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
    use crate::config::*;

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
    fn fastflow_is_its_own_config_and_differnets_ids_do_not_change() {
        let differnet = load(MINIMAL, &[]).unwrap();
        assert!(!differnet.to_toml().contains("kind = \"differnet\""));
        let explicit = load(MINIMAL, &["flow.kind=differnet"]).unwrap();
        assert_eq!(explicit.run_id(), differnet.run_id());
        let fast = load(MINIMAL, &["flow.kind=fastflow", "model.scales=1"]).unwrap();
        assert_ne!(fast.run_id(), differnet.run_id());
        assert!(fast.to_toml().contains("kind = \"fastflow\""));
        // DifferNet's keys do not apply: a grid crossing them gives one FastFlow config.
        let other = load(
            MINIMAL,
            &[
                "flow.kind=fastflow",
                "model.scales=1",
                "flow.hidden=64",
                "flow.clamp=1.5",
                "flow.standardize=true",
            ],
        )
        .unwrap();
        assert_eq!(other.run_id(), fast.run_id());
        // CS-Flow keeps DifferNet's coupling_blocks, hidden and clamp keys (its blocks, its
        // cross-scale convolutions' width, its α).
        let cs = load(
            MINIMAL,
            &[
                "flow.kind=csflow",
                "model.feature_layers=[\"pool5\"]",
                "flow.hidden=64",
            ],
        )
        .unwrap();
        assert_eq!(cs.flow.hidden, 64);
        // CFlow-AD keeps clamp (its α) and blocks; its subnets' width is fixed.
        let cf = load(
            MINIMAL,
            &[
                "flow.kind=cflow",
                "model.scales=1",
                "flow.clamp=1.9",
                "flow.hidden=64",
            ],
        )
        .unwrap();
        let d = adn_flows::FlowConfig::default();
        assert_eq!((cf.flow.clamp, cf.flow.hidden), (1.9, d.hidden));
        // What is not built for it yet is refused by name.
        for (overrides, key) in [
            (vec!["flow.kind=fastflow"], "model.scales"),
            (vec!["flow.kind=cflow"], "model.scales"),
            (
                vec![
                    "flow.kind=fastflow",
                    "model.scales=1",
                    "model.attention=se",
                    "model.positions=[\"relu2\"]",
                    "model.feature_layers=[\"relu1\",\"relu2\"]",
                    "model.attention_training=joint",
                ],
                "feature layer relu1",
            ),
            (
                vec![
                    "flow.kind=fastflow",
                    "model.scales=1",
                    "model.attention=se",
                    "model.positions=[\"relu1\"]",
                    "model.feature_layers=[\"relu1\",\"relu2\"]",
                    "model.attention_training=joint",
                    "train.volume_charge=1",
                ],
                "train.volume_charge",
            ),
            (
                vec![
                    "flow.kind=fastflow",
                    "model.scales=1",
                    "train.precision=bf16",
                ],
                "train.precision",
            ),
            (
                vec!["flow.kind=csflow", "model.scales=1"],
                "model.scales = 3",
            ),
            (
                vec![
                    "flow.kind=csflow",
                    "model.feature_layers=[\"pool2\", \"pool5\"]",
                ],
                "one model.feature_layers",
            ),
        ] {
            let e = load(MINIMAL, &overrides).unwrap_err().to_string();
            assert!(
                e.contains("flow.kind") && e.contains(key),
                "{overrides:?}: {e}"
            );
        }
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
    fn a_numbered_category_is_its_folder_name_quoted_or_not() {
        let quoted = load(MINIMAL, &["data.category=\"3\""]).unwrap();
        let bare = load(MINIMAL, &["data.category=3"]).unwrap();
        assert_eq!(bare.data.category, "3");
        assert_eq!(bare.run_id(), quoted.run_id());
        let e = load(MINIMAL, &["data.category=3.5"]).unwrap_err();
        assert!(format!("{e:#}").contains("category folder name"), "{e:#}");
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
            crate::pipeline::localize::map_angles(&c, &angles),
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
        // What `auto` means on a machine: `crate::pipeline::settings`.
        // The flow's: the same words, its own key.
        let flow_fp32 = load(MINIMAL, &["train.precision=\"fp32\""]).unwrap();
        assert_eq!(a.run_id(), flow_fp32.run_id());
        let flow_bf16 = load(MINIMAL, &["train.precision=\"bf16\""]).unwrap();
        assert_ne!(a.run_id(), flow_bf16.run_id());
        assert_ne!(bf16.run_id(), flow_bf16.run_id());
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
