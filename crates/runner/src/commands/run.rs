//! `adn run`: one configuration from data to run record ([`crate::pipeline::run`]), and a
//! summary line.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::ConfigArgs;
use crate::device::DeviceChoice;
use crate::pipeline::{RunOptions, run};

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
    crate::pipeline::reproducible::enter(cfg.compute.reproducible)?;
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
