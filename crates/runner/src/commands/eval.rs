//! `adn eval`: rescoring a trained run's model on another dataset folder, DifferNet's or a
//! flow on feature maps (whose image score is its own; CFlow-AD's maxima are fixed on the
//! scored test set, as at a run's evaluation).

use std::path::{Path, PathBuf};

use adn_record::{EvalRecord, files};
use adn_util::atomic::{commit_folder, write_synced};
use anyhow::{Context, Result};
use tch::Device;

use crate::config::Config;
use crate::device::DeviceChoice;
use crate::pipeline::data::{fixed_test_angles, load_data, require_both_classes};
use crate::pipeline::features::CacheStats;
use crate::pipeline::model::{
    load_trained, load_trained_maps, model_matches_record, require_complete,
};
use crate::pipeline::output::{OutputFolder, check_output};
use crate::pipeline::recording::score_rows;
use crate::pipeline::score::score;
use crate::pipeline::train_maps::map_scores;
use crate::progress;

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
    crate::pipeline::reproducible::enter_for_runs(&[&args.run_dir])?;
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

/// Rescores the model of `run_dir` on the data named by the overrides.
pub fn eval(run_dir: &Path, opts: &EvalOptions) -> Result<(PathBuf, EvalRecord)> {
    require_complete(run_dir, opts.any_model)?;
    // Under --any-model the files were not checked: eval.json says whether they match.
    let model_matches_record = model_matches_record(run_dir);
    let cfg = Config::load(&run_dir.join(files::CONFIG), &opts.overrides)?;
    check_output(&OutputFolder {
        out: &opts.out,
        force: opts.force,
        command: "adn eval",
        record: files::EVAL,
        run: run_dir,
        inputs: &[("dataset", &cfg.data.root.join(&cfg.data.category))],
    })?;
    let device: Device = opts.device.resolve_for(cfg.compute.reproducible)?;
    let data = load_data(&cfg)?;
    require_both_classes(&data)?;
    let angles = fixed_test_angles(&cfg, data.test.len());
    let mut stats = CacheStats::default();
    let bar = progress::bar(opts.quiet, data.test.len() as u64, "features");
    let transforms = cfg.test.test_transforms as i64;
    let (scores, model_config) = if cfg.flow.kind.is_differnet() {
        let model = load_trained(run_dir, &cfg, device, opts.cache_dir.as_deref())?;
        let feats = model
            .features
            .pooled(&data.test, &angles, &bar, &mut stats)?;
        (score(&model.flow, &feats, transforms), model.config)
    } else {
        let model = load_trained_maps(run_dir, &cfg, device)?;
        let maps = model.features.maps(&data.test, &angles, &bar)?;
        let size = cfg.model.image_size;
        (
            map_scores(&model.flow, &maps, transforms, size, true),
            model.config,
        )
    };
    bar.finish_and_clear();
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
        model_matches_record,
    };
    let dir = commit_folder(&opts.out, opts.force, |tmp| -> Result<()> {
        // The model's config: it says the precisions this eval scored with.
        write_synced(&tmp.join(files::CONFIG), model_config.to_toml().as_bytes())?;
        write_synced(
            &tmp.join(files::SCORES),
            adn_record::scores_csv(&rows).as_bytes(),
        )?;
        write_synced(
            &tmp.join(files::EVAL),
            serde_json::to_string_pretty(&rec)?.as_bytes(),
        )?;
        Ok(())
    })?;
    Ok((dir, rec))
}
