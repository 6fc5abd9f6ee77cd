//! A trained model: its checkpoint loaded strictly, and the model of a complete run rebuilt
//! as it was trained (features, attention, flow, precisions).

use std::path::Path;

use adn_flows::DifferNetFlow;
use adn_record::{RunState, files};
use anyhow::{Context, Result, bail};
use tch::{Device, nn};

use crate::config::Config;
use crate::pipeline::features::FeatureSource;
use crate::pipeline::settings::Settings;
use crate::pipeline::train::build_flow;
use crate::pipeline::train_maps::MapFlow;

/// Loads `path` into the flow's store, refusing a checkpoint whose tensors differ in name
/// or shape from what the config builds, and saying how.
pub fn load_flow_checkpoint(vs: &mut nn::VarStore, path: &Path) -> Result<()> {
    let saved = tch::Tensor::read_safetensors(path)
        .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
    let saved: std::collections::BTreeMap<String, Vec<i64>> =
        saved.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let wanted: std::collections::BTreeMap<String, Vec<i64>> = vs
        .variables()
        .iter()
        .map(|(n, t)| (n.clone(), t.size()))
        .collect();
    if saved != wanted {
        let blocks = |m: &std::collections::BTreeMap<String, Vec<i64>>| {
            m.keys().filter(|k| k.ends_with("s1.fc1.weight")).count()
        };
        let first_diff = wanted
            .iter()
            .find(|(n, shape)| saved.get(*n) != Some(*shape))
            .map(|(n, shape)| match saved.get(n) {
                Some(s) => format!("{n} is {s:?} in the checkpoint but {shape:?} in the config"),
                None => format!("{n} is missing from the checkpoint"),
            })
            .unwrap_or_else(|| "the checkpoint has tensors the config does not build".into());
        // DifferNet's blocks are counted; the flows on maps name theirs otherwise.
        let counted = match (blocks(&saved), blocks(&wanted)) {
            (0, 0) => String::new(),
            (s, w) => format!("{s} coupling blocks saved vs {w} configured; "),
        };
        bail!(
            "checkpoint {} does not match the config: {counted}{first_diff}",
            path.display(),
        );
    }
    vs.load(path)
        .with_context(|| format!("cannot load {}", path.display()))?;
    Ok(())
}

/// The trained model of a complete run: its features (with the trained attention of a
/// joint run, then frozen), and its flow with the variables that hold it.
pub struct TrainedModel {
    /// The config it was built with: the caller's, asking for the precisions the run
    /// recorded ([`Settings::pinned`]).
    pub config: Config,
    pub features: FeatureSource,
    pub flow_vs: nn::VarStore,
    pub flow: DifferNetFlow,
}

impl TrainedModel {
    /// Anomaly scores of the image files `paths`, each viewed under `angles`: what `adn
    /// predict` decides with and what an export is checked against. Features come through
    /// the run's extractor (and its feature cache, when it has one), scores from its flow.
    pub fn score_files(&self, paths: &[std::path::PathBuf], angles: &[f64]) -> Result<Vec<f64>> {
        let samples: Vec<adn_datasets::Sample> = paths
            .iter()
            .map(|path| adn_datasets::Sample {
                path: path.clone(),
                defect: "unlabelled".into(),
                mask: None,
            })
            .collect();
        let views = vec![angles.to_vec(); samples.len()];
        let feats = self.features.pooled(
            &samples,
            &views,
            &indicatif::ProgressBar::hidden(),
            &mut crate::pipeline::features::CacheStats::default(),
        )?;
        Ok(crate::pipeline::score::score(
            &self.flow,
            &feats,
            angles.len() as i64,
        ))
    }
}

/// Refuses a run whose flow is not DifferNet's for `what` (a command), which is built for
/// DifferNet's alone so far: the run's own `scores.csv` and `metrics.json` hold its results.
pub fn require_differnet(cfg: &Config, what: &str) -> Result<()> {
    if cfg.flow.kind != adn_flows::FlowKind::Differnet {
        bail!(
            "{what} works on DifferNet runs only so far; this run has flow.kind = {:?} (its \
             scores.csv and metrics.json hold its results; docs/flow-families.md)",
            format!("{:?}", cfg.flow.kind).to_lowercase()
        );
    }
    Ok(())
}

/// Loads the model of the complete run in `run_dir`; `cache_root` serves its features when
/// its extractor is frozen.
pub fn load_trained(
    run_dir: &Path,
    cfg: &Config,
    device: Device,
    cache_root: Option<&Path>,
) -> Result<TrainedModel> {
    require_differnet(cfg, "loading a trained model")?;
    let (settings, features) = recorded_features(run_dir, cfg, device, cache_root)?;
    let mut flow_vs = nn::VarStore::new(device);
    let flow = build_flow(cfg, &settings, &flow_vs, features.extractor.feature_dim());
    load_flow_checkpoint(&mut flow_vs, &run_dir.join(files::MODEL))?;
    flow.sync_bf16_copies();
    Ok(TrainedModel {
        config: settings.pinned(cfg),
        features,
        flow_vs,
        flow,
    })
}

/// The trained model of a complete run of a flow on feature maps (FastFlow, CS-Flow,
/// CFlow-AD): its features as [`TrainedModel`]'s, its flow as it was trained. A CFlow-AD
/// flow's map maxima are not part of the model: they are fixed on the test set
/// ([`crate::pipeline::train_maps::fix_cflow_maxima`]) before its maps are drawn.
pub struct TrainedMaps {
    /// As [`TrainedModel::config`].
    pub config: Config,
    pub features: FeatureSource,
    pub flow_vs: nn::VarStore,
    pub flow: MapFlow,
}

/// Loads the model of the complete run of a flow on feature maps in `run_dir`.
pub fn load_trained_maps(run_dir: &Path, cfg: &Config, device: Device) -> Result<TrainedMaps> {
    if cfg.flow.kind == adn_flows::FlowKind::Differnet {
        bail!(
            "{} is a DifferNet run, not a flow on feature maps",
            run_dir.display()
        );
    }
    let (settings, features) = recorded_features(run_dir, cfg, device, None)?;
    let mut flow_vs = nn::VarStore::new(device);
    let flow = MapFlow::build(cfg, &flow_vs, &features.map_dims())?;
    load_flow_checkpoint(&mut flow_vs, &run_dir.join(files::MODEL))?;
    Ok(TrainedMaps {
        config: settings.pinned(cfg),
        features,
        flow_vs,
        flow,
    })
}

/// The settings a complete run in `run_dir` ran with and its feature source (with a joint
/// run's trained attention), after checking that its config still resolves to its run id.
fn recorded_features(
    run_dir: &Path,
    cfg: &Config,
    device: Device,
    cache_root: Option<&Path>,
) -> Result<(Settings, FeatureSource)> {
    // `auto` precisions resolve by machine: a run trained with bf16 units and scored on a
    // machine without them would silently score in another precision. The run's record
    // says what it used (a precision name this build does not know is refused there).
    let manifest = adn_record::read_manifest(run_dir)?;
    require_recorded_config(run_dir, &manifest)?;
    let settings = Settings::recorded(cfg, device, manifest.run.as_ref())?;
    let features = FeatureSource::trained(cfg, run_dir, &settings, cache_root)?;
    Ok((settings, features))
}

/// Refuses a run whose `config.toml` no longer resolves to the run id it was recorded
/// under: an edit after training (say `flow.clamp`) keeps the tensor shapes, so the model
/// would load and score silently under settings it was not trained with.
fn require_recorded_config(run_dir: &Path, manifest: &adn_record::Manifest) -> Result<()> {
    let path = run_dir.join(files::CONFIG);
    let resolved = Config::load(&path, &[])?.run_id();
    if resolved != manifest.run_id {
        bail!(
            "{} resolves to run id {resolved}, but the run was recorded as {}: the config was \
             edited after training, so its model would be scored with settings it was not \
             trained with; restore the file (rescoring other data takes --data, --category \
             or --set, which leave the file alone)",
            path.display(),
            manifest.run_id
        );
    }
    Ok(())
}

/// Whether the model files in `dir` are the ones its run recorded (SHA-256). `--any-model`
/// skips the check that refuses other files; the records of eval and predict say this.
pub fn model_matches_record(dir: &Path) -> bool {
    adn_record::read_manifest(dir).is_ok_and(|m| adn_record::verify_model_files(dir, &m).is_ok())
}

/// Fails unless `dir` holds a complete run record with its model, and (unless
/// `any_model`) the model files are the ones the run recorded.
pub fn require_complete(dir: &Path, any_model: bool) -> Result<()> {
    let complete = adn_record::run_state(dir)? == RunState::Complete;
    if !complete || !dir.join(files::MODEL).is_file() {
        bail!(
            "{} is not a complete run with its model ({})",
            dir.display(),
            files::MODEL
        );
    }
    if !any_model {
        let manifest = adn_record::read_manifest(dir)?;
        adn_record::verify_model_files(dir, &manifest)
            .map_err(|e| anyhow::anyhow!("{e}; pass --any-model to score it anyway"))?;
    }
    Ok(())
}
