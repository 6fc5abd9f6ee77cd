//! The pipeline: everything a command does with data, models and run records, as stages
//! each command calls. One run goes through them in order (ARCHITECTURE.md, "One run"):
//!
//! 1. [`data`]: the images (listed and validated) and the rotations of every view;
//! 2. [`features`]: pooled features from the frozen backbone (extraction and its cache), or
//!    the frozen prefixes that jointly trained attention starts from;
//! 3. [`train`]: the flow (and joint attention) trained with DifferNet's Adam, the test set
//! 4. [`score`]d after every meta-epoch;
//! 5. [`localize`]: the last model's anomaly maps scored against the masks, where the test
//!    set has them;
//! 6. [`recording`]: the run record, written whole or not at all through `adn_record`.
//!
//! [`settings`] resolves what the config asks (`auto`, the device) once against the machine,
//! [`reproducible`] pins libtorch's kernels when the config asks for the same bits anywhere;
//! [`model`] builds, saves and loads a trained model (for `eval` and `explain`), [`explain`]
//! explains its scores, [`output`] checks a command's output folder before any work,
//! [`diagnostics`] measures what the flow sees. Commands (`crate::commands`)
//! call these stages; nothing here knows about command-line arguments.

pub mod data;
pub mod diagnostics;
pub mod explain;
pub mod export;
pub mod features;
pub mod localize;
pub mod model;
pub mod objective;
pub mod output;
pub mod predict;
pub mod recording;
pub mod reproducible;
pub mod score;
pub mod settings;
pub mod train;
pub mod train_maps;

use std::path::{Path, PathBuf};
use std::time::Instant;

use adn_record::{Manifest, MetricsRecord, RunState};
use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::device::DeviceChoice;

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
    // What the config asks for, resolved once against this machine.
    let settings = settings::Settings::resolve(cfg, opts.device)?;
    features::check_memory(cfg, settings.device)?;
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
    let clock = recording::Clock::start();

    let t = Instant::now();
    let (data, mut rng) = data::prepare(cfg)?;
    let wall_data = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut features = features::compute(cfg, &data, &settings, opts)?;
    let wall_features = t.elapsed().as_secs_f64();

    let trained = match cfg.flow.kind {
        adn_flows::FlowKind::Differnet => {
            train::train(cfg, &data, &features, opts.quiet, &mut rng)?
        }
        adn_flows::FlowKind::Fastflow
        | adn_flows::FlowKind::Csflow
        | adn_flows::FlowKind::Cflow => {
            train_maps::train(cfg, &data, &features, opts.quiet, &mut rng)?
        }
    };

    // 5. The last model's anomaly maps against the masks, where the test set has them.
    let pixel = match trained.failure {
        None => settings::in_fp32_for_gradients(&mut features.source.extractor, |extractor| {
            localize::evaluate(
                cfg,
                &data.images,
                &data.test_angles,
                extractor,
                &trained.flow,
                settings.device,
            )
        })
        .context("cannot compute the anomaly maps and pixel metrics")?,
        Some(_) => None,
    };

    let times = recording::StageTimes {
        data: wall_data,
        features: wall_features,
        train: trained.wall_train,
        eval: trained.wall_eval + pixel.as_ref().map_or(0.0, |p| p.wall_s),
    };
    recording::write(
        recording::FinishedRun {
            cfg,
            out: &out,
            clock,
            times,
            data: &data,
            features: &features,
            trained,
            pixel,
        },
        opts,
    )
}
