//! `adn eval`: rescoring a trained run's model on another dataset folder.

use std::path::{Path, PathBuf};

use adn_flows::DifferNetFlow;
use adn_record::{RunState, files};
use adn_util::atomic::{commit_folder, write_synced};
use anyhow::{Context, Result, bail};
use serde::Serialize;
use tch::{Device, nn};

use crate::config::{Config, PrecisionChoice};
use crate::device::DeviceChoice;
use crate::extract::{CacheStats, FeatureSource};
use crate::progress;
use crate::run::data::{fixed_test_angles, load_data, require_both_classes};
use crate::run::evaluate::score;
use crate::run::record::score_rows;

/// `adn eval`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run folder (holds config.toml and model.safetensors).
    run_dir: PathBuf,
    /// Dataset root to score (default: the run's).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Category inside the root (default: the run's).
    #[arg(long)]
    category: Option<String>,
    /// Further overrides of the run's config, e.g. `--set data.kind=folder`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Output folder (default: <run_dir>/eval-<category>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    #[arg(long, default_value = "cache/features")]
    cache_dir: PathBuf,
    #[arg(long)]
    quiet: bool,
    #[arg(long)]
    force: bool,
    /// Score the model files even when their SHA-256 differs from what the run recorded
    /// (a model copied in from elsewhere).
    #[arg(long)]
    any_model: bool,
}

/// `adn eval`: rescores and prints one line.
pub fn command(args: Args) -> Result<()> {
    let mut overrides = args.overrides;
    if let Some(root) = &args.data {
        overrides.push(format!("data.root={:?}", root.display().to_string()));
    }
    if let Some(c) = &args.category {
        overrides.push(format!("data.category={c:?}"));
    }
    let out = args.out.unwrap_or_else(|| {
        args.run_dir.join(format!(
            "eval-{}",
            args.category.as_deref().unwrap_or("test")
        ))
    });
    let opts = EvalOptions {
        overrides,
        out,
        device: args.device,
        cache_dir: Some(args.cache_dir),
        quiet: args.quiet,
        force: args.force,
        any_model: args.any_model,
    };
    let (dir, rec) = eval(&args.run_dir, &opts)?;
    println!(
        "eval {} on {}/{}: auroc={:.4} ({} images) -> {}",
        rec.source_run,
        rec.data_root,
        rec.category,
        rec.auroc,
        rec.test_images,
        dir.display()
    );
    Ok(())
}

/// What to rescore and where.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// `key=value` overrides of the run's config (typically `data.root`, `data.category`).
    pub overrides: Vec<String>,
    pub out: PathBuf,
    pub device: DeviceChoice,
    pub cache_dir: Option<PathBuf>,
    pub quiet: bool,
    pub force: bool,
    /// Skip the check that the model files are the ones the run recorded.
    pub any_model: bool,
}

/// `eval.json`.
#[derive(Debug, Clone, Serialize)]
pub struct EvalRecord {
    pub source_run: String,
    pub data_root: String,
    pub category: String,
    pub test_images: usize,
    pub auroc: f64,
    pub device: String,
    pub feature_cache: CacheStats,
}

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
        bail!(
            "checkpoint {} does not match the config: {} coupling blocks saved vs {} configured; {}",
            path.display(),
            blocks(&saved),
            blocks(&wanted),
            first_diff
        );
    }
    vs.load(path)
        .with_context(|| format!("cannot load {}", path.display()))?;
    Ok(())
}

/// The trained model of a complete run: its features (with the trained attention of a
/// joint run, then frozen), and its flow with the variables that hold it.
pub struct TrainedModel {
    /// The config it was built with: the caller's, in the precisions the run recorded.
    pub config: Config,
    pub features: FeatureSource,
    pub flow_vs: nn::VarStore,
    pub flow: DifferNetFlow,
}

/// Loads the model of the complete run in `run_dir`; `cache_root` serves its features when
/// its extractor is frozen.
pub fn load_trained(
    run_dir: &Path,
    cfg: &Config,
    device: Device,
    cache_root: Option<&Path>,
) -> Result<TrainedModel> {
    // `auto` precisions resolve by machine: a run trained with bf16 units and scored on a
    // machine without them would silently score in another precision. The run's record
    // says what it used.
    let mut config = cfg.clone();
    pin_recorded_precisions(run_dir, &mut config)?;
    let features = FeatureSource::trained(&config, run_dir, device, cache_root)?;
    let mut flow_vs = nn::VarStore::new(device);
    let flow = crate::run::train::build_flow(&config, &flow_vs, features.extractor.feature_dim());
    load_flow_checkpoint(&mut flow_vs, &run_dir.join(files::MODEL))?;
    flow.sync_bf16_copies();
    Ok(TrainedModel {
        config,
        features,
        flow_vs,
        flow,
    })
}

/// Sets `cfg`'s precisions to the ones `run_dir`'s manifest records, when it records them.
fn pin_recorded_precisions(run_dir: &Path, cfg: &mut Config) -> Result<()> {
    if let Some(facts) = adn_record::read_manifest(run_dir).ok().and_then(|m| m.run) {
        cfg.model.precision = recorded_precision(run_dir, &facts.precision)?;
        cfg.train.precision = recorded_precision(run_dir, &facts.flow_precision)?;
    }
    Ok(())
}

/// The setting that rebuilds a run in the precision its manifest records (`name`); a name
/// this build does not know is refused rather than read as fp32.
fn recorded_precision(run_dir: &Path, name: &str) -> Result<PrecisionChoice> {
    match name {
        "bf16" => Ok(PrecisionChoice::Bf16),
        "fp32" => Ok(PrecisionChoice::Fp32),
        other => bail!(
            "{}: the manifest records an unknown precision {other:?} (expected fp32 or bf16)",
            run_dir.display()
        ),
    }
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

/// Rescores the model of `run_dir` on the data named by the overrides.
pub fn eval(run_dir: &Path, opts: &EvalOptions) -> Result<(PathBuf, EvalRecord)> {
    require_complete(run_dir, opts.any_model)?;
    let cfg = Config::load(&run_dir.join(files::CONFIG), &opts.overrides)?;
    let device: Device = opts.device.resolve()?;
    let model = load_trained(run_dir, &cfg, device, opts.cache_dir.as_deref())?;

    let data = load_data(&cfg)?;
    require_both_classes(&data)?;
    let angles = fixed_test_angles(&cfg, data.test.len());
    let mut stats = CacheStats::default();
    let bar = progress::bar(opts.quiet, data.test.len() as u64, "features");
    let feats = model
        .features
        .pooled(&data.test, &angles, &bar, &mut stats)?;
    bar.finish_and_clear();
    let scores = score(&model.flow, &feats, cfg.test.test_transforms as i64);
    let labels: Vec<bool> = data.test.iter().map(|s| s.is_anomalous()).collect();
    let auroc = adn_metrics::auroc(&labels, &scores).context("cannot compute the AUROC")?;
    let rows = score_rows(&data, &scores);
    let rec = EvalRecord {
        source_run: run_dir.display().to_string(),
        data_root: data.root.display().to_string(),
        category: data.category.clone(),
        test_images: data.test.len(),
        auroc,
        device: format!("{device:?}"),
        feature_cache: stats,
    };
    let dir = commit_folder(&opts.out, opts.force, |tmp| -> Result<()> {
        // The model's config: it says the precisions this eval scored with.
        write_synced(&tmp.join(files::CONFIG), model.config.to_toml().as_bytes())?;
        write_synced(
            &tmp.join(files::SCORES),
            adn_record::scores_csv(&rows).as_bytes(),
        )?;
        write_synced(
            &tmp.join("eval.json"),
            serde_json::to_string_pretty(&rec)?.as_bytes(),
        )?;
        Ok(())
    })?;
    Ok((dir, rec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_precisions_pin_the_run_and_refuse_unknown_names() {
        let dir = Path::new("results/x/runs/abc");
        // `auto` never comes back: the record names what the run actually used.
        assert_eq!(
            recorded_precision(dir, "bf16").unwrap(),
            PrecisionChoice::Bf16
        );
        assert_eq!(
            recorded_precision(dir, "fp32").unwrap(),
            PrecisionChoice::Fp32
        );
        for bad in ["auto", "fp16", ""] {
            let err = recorded_precision(dir, bad).unwrap_err().to_string();
            assert!(err.contains("results/x/runs/abc"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
