//! `adn eval`: rescoring a trained run's model on another dataset folder.

use std::path::{Path, PathBuf};

use adn_flows::DifferNetFlow;
use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::{Device, nn};

use crate::config::Config;
use crate::extract::CacheStats;
use crate::record;
use crate::run::{self, DeviceChoice};

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

/// The trained model of a complete run: its extractor (with the trained attention of a
/// joint run, then frozen), and its flow with the variables that hold it.
pub fn load_trained(
    run_dir: &Path,
    cfg: &Config,
    device: Device,
) -> Result<(adn_backbones::FeatureExtractor, nn::VarStore, DifferNetFlow)> {
    let mut extractor = run::build_extractor(cfg, device)?;
    // A joint run trained its attention: load it. Its features depend on those weights, which
    // the cache key does not cover, so callers compute them afresh.
    if !extractor.is_frozen() {
        let path = run_dir.join(run::ATTENTION_FILE);
        extractor
            .attention_vs
            .load(&path)
            .with_context(|| format!("cannot load the trained attention {}", path.display()))?;
        extractor.attention_vs.freeze();
    }
    let mut flow_vs = nn::VarStore::new(device);
    let flow = DifferNetFlow::new(&flow_vs.root(), extractor.feature_dim(), &cfg.flow);
    load_flow_checkpoint(&mut flow_vs, &run_dir.join("model.safetensors"))?;
    Ok((extractor, flow_vs, flow))
}

/// Rescores the model of `run_dir` on the data named by the overrides.
pub fn eval(run_dir: &Path, opts: &EvalOptions) -> Result<(PathBuf, EvalRecord)> {
    if !record::is_complete(run_dir) {
        bail!("{} is not a complete run record", run_dir.display());
    }
    let cfg = Config::load(&run_dir.join("config.toml"), &opts.overrides)?;
    let device: Device = opts.device.resolve()?;
    let (extractor, _flow_vs, flow) = load_trained(run_dir, &cfg, device)?;
    let joint = !extractor.is_frozen();

    let data = run::load_data(&cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let angles = run::test_angles(&cfg, data.test.len(), &mut rng);
    let cache_dir = if joint {
        None
    } else {
        opts.cache_dir.as_deref()
    };
    let cache = run::feature_cache(cache_dir, &cfg, &extractor, device);
    let mut stats = CacheStats::default();
    let bar = run::progress(opts.quiet, data.test.len() as u64, "features");
    let how = crate::extract::Extraction {
        extractor: &extractor,
        device,
        cache: cache.as_ref(),
        mixed_precision: cfg.model.mixed_precision,
        progress: &bar,
    };
    let feats = crate::extract::pooled_features(&how, &data.test, &angles, &mut stats)?;
    bar.finish_and_clear();
    let scores = run::score(&flow, &feats, cfg.test.test_transforms as i64);
    let labels: Vec<bool> = data.test.iter().map(|s| s.is_anomalous()).collect();
    let auroc = adn_metrics::auroc(&labels, &scores).context("cannot compute the AUROC")?;
    let rows = record::score_rows(&data, &scores);
    let rec = EvalRecord {
        source_run: run_dir.display().to_string(),
        data_root: data.root.display().to_string(),
        category: data.category.clone(),
        test_images: data.test.len(),
        auroc,
        device: format!("{device:?}"),
        feature_cache: stats,
    };
    let dir = record::commit_folder(&opts.out, opts.force, |tmp| {
        record::write_file(&tmp.join("config.toml"), cfg.to_toml().as_bytes())?;
        record::write_file(
            &tmp.join("scores.csv"),
            record::scores_csv(&rows).as_bytes(),
        )?;
        record::write_file(
            &tmp.join("eval.json"),
            serde_json::to_string_pretty(&rec)?.as_bytes(),
        )
    })?;
    Ok((dir, rec))
}
