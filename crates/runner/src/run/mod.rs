//! `adn run`: one configuration from data to run record, in the stages ARCHITECTURE.md's
//! "One run" describes:
//!
//! 1. [`data`]: the images (listed and validated) and the rotations of every view;
//! 2. [`features`]: pooled features from the frozen backbone (cached), or the frozen
//!    prefixes that jointly trained attention starts from;
//! 3. [`train`]: the flow (and joint attention) trained with DifferNet's Adam, and
//! 4. [`evaluate`]d after every meta-epoch;
//! 5. the last model's anomaly maps scored against the masks ([`crate::localize`]), where
//!    the test set has them;
//! 6. [`record`]: the run folder, written whole or not at all.

pub mod data;
pub mod diagnostics;
pub mod evaluate;
pub mod features;
pub mod record;
pub mod train;

use std::path::{Path, PathBuf};
use std::time::Instant;

use adn_record::{Manifest, MetricsRecord, RunState};
use anyhow::{Context, Result, bail};

use crate::config::{Config, ConfigArgs};
use crate::device::DeviceChoice;

/// `adn run`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Run folder (default: results/<experiment>/<run-id>).
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// No progress bars; one summary line.
    #[arg(long)]
    quiet: bool,
    /// Replace an existing run folder (only once the new record is complete).
    #[arg(long)]
    force: bool,
    /// Root of the feature cache.
    #[arg(long, default_value = "cache/features")]
    cache_dir: PathBuf,
    /// Compute every feature afresh and store nothing.
    #[arg(long)]
    no_cache: bool,
}

/// `adn run`: runs the config and prints one summary line.
pub fn command(args: Args, log: crate::logging::RunLog) -> Result<()> {
    let cfg = args.config.load()?;
    let opts = RunOptions {
        out: args.out,
        device: args.device,
        quiet: args.quiet,
        force: args.force,
        cache_dir: (!args.no_cache).then_some(args.cache_dir),
        log: Some(log),
    };
    let outcome = run(&cfg, &opts)?;
    let m = &outcome.metrics;
    let facts = outcome
        .manifest
        .run
        .as_ref()
        .expect("a run records its facts");
    println!(
        "{} {}/{} attention={:?} auroc_last={:.4} auroc_best={:.4} (meta-epoch {}, test-selected) \
         device={} wall={:.1}s cache={}/{} hits -> {}",
        cfg.experiment,
        cfg.data.category,
        outcome.manifest.run_id,
        cfg.model.attention,
        m.auroc_last,
        m.auroc_best,
        m.auroc_best_epoch,
        facts.device,
        facts.wall_s.total,
        facts.feature_cache.hits,
        facts.feature_cache.hits + facts.feature_cache.misses,
        outcome.dir.display()
    );
    if let Some(p) = &m.pixel {
        println!(
            "  pixel auroc={:.4} aupro@{:.0}%={:.4} map peak in mask {:.0}% of {} defects \
             ({} rotations, {:.1}s)",
            p.auroc,
            100.0 * p.aupro_max_fpr,
            p.aupro,
            100.0 * p.peak_in_mask,
            p.anomalous,
            p.rotations,
            p.wall_s
        );
    }
    Ok(())
}

/// How to run, apart from what the config says.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    pub device: DeviceChoice,
    pub quiet: bool,
    pub force: bool,
    /// Root of the feature cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// The process's log, written into the record as `log.txt`.
    pub log: Option<crate::logging::RunLog>,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub metrics: MetricsRecord,
    pub manifest: Manifest,
}

/// The folder a run writes to when `--out` is not given.
pub fn default_out(config: &Config) -> PathBuf {
    Path::new("results")
        .join(&config.experiment)
        .join(config.run_id())
}

/// Refuses, before any work, an output path that is a file or lies under one: the record
/// could never be written there, and a user's file is never moved aside for it.
fn check_output_folder(out: &Path) -> Result<()> {
    for p in out.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if p == out => bail!(
                "--out {} is a file, not a run folder; choose another --out",
                out.display()
            ),
            Ok(_) => bail!(
                "cannot create the run folder {}: {} is a file",
                out.display(),
                p.display()
            ),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Runs `cfg` and writes its record. A run that fails after it started training writes a
/// record marked `failed` (no metrics, no scores) and returns the error.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunOutcome> {
    let out = opts.out.clone().unwrap_or_else(|| default_out(cfg));
    check_output_folder(&out)?;
    let device = opts.device.resolve()?;
    crate::extract::check_memory(cfg, device)?;
    // One process per run folder: a second one refuses instead of racing the first.
    let _owner = adn_util::lock::try_lock(&out, &format!("run folder {}", out.display()))?;
    if out.exists() && !opts.force {
        let state = match adn_record::run_state(&out) {
            Ok(RunState::Complete) => "a complete run",
            _ => "something",
        };
        bail!(
            "{} already holds {state}; pass --force to replace it or --out to write elsewhere",
            out.display()
        );
    }
    let clock = record::Clock::start();

    let t = Instant::now();
    let (data, mut rng) = data::prepare(cfg)?;
    let wall_data = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut features = features::compute(cfg, &data, device, opts)?;
    let wall_features = t.elapsed().as_secs_f64();

    let trained = train::train(cfg, &data, &features, device, opts.quiet, &mut rng)?;

    // 5. The last model's anomaly maps against the masks, where the test set has them.
    // Their gradients are taken in float32: a bf16 backbone is cast up for them (exactly)
    // and back after, so the maps differentiate the weights the run scored with.
    let pixel = match trained.failure {
        None => {
            let extractor = &mut features.source.extractor;
            let precision = extractor.precision();
            extractor.set_precision(adn_backbones::Precision::Fp32)?;
            let pixel = crate::localize::evaluate(
                cfg,
                &data.images,
                &data.test_angles,
                extractor,
                &trained.flow,
                device,
            )
            .context("cannot compute the anomaly maps and pixel metrics")?;
            extractor.set_precision(precision)?;
            pixel
        }
        Some(_) => None,
    };

    let times = record::StageTimes {
        data: wall_data,
        features: wall_features,
        train: trained.wall_train,
        eval: trained.wall_eval + pixel.as_ref().map_or(0.0, |p| p.wall_s),
    };
    record::write(
        cfg, opts, &out, &clock, times, &data, &features, trained, pixel,
    )
}
