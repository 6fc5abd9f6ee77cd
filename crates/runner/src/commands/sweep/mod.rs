//! Sweeps: a grid file expanded into runs, each run its own `adn run` process, resumable
//! after any interruption, or written out as a Slurm job array.
//!
//! A grid file names a base run config, the datasets (each a set of overrides, optionally
//! with a list of categories) and the axes (any config key with a list of values). Every
//! combination is one run with a stable id, the run id of its resolved config, and one
//! folder `results/<experiment>/runs/<run-id>`. `plan.json` beside it lists every run with
//! its dataset and axis values, so the tables can be regenerated from `results/` alone.
//!
//! Resuming is cheap because a run folder only appears, by rename, once its record is
//! whole: a complete or failed record is never recomputed (failed ones with
//! `--retry-failed`), and the half-written temporary folders of a killed run are removed.

mod grid;
mod local;
mod slurm;
mod state;

use std::path::PathBuf;

use adn_record::RunState;
use anyhow::{Context, Result, bail};

pub use grid::{DatasetAxis, Grid, SlurmResources, base_path, expand, load_grid};
pub use local::{SweepOptions, SweepSummary, failure_message, print_summary, run_args, run_local};
pub use slurm::write_slurm;
pub use state::{remove_leftovers, run_state, runs_dir, write_plan};

use crate::device::DeviceChoice;

/// `adn sweep`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The grid file (TOML: experiment, base, [[datasets]], [axes], [slurm]).
    grid: PathBuf,
    /// Concurrent runs (default: the grid's `jobs`, else 1); the cores are split
    /// between them.
    #[arg(long)]
    jobs: Option<usize>,
    /// Where experiments are written.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Run again the runs recorded as failed.
    #[arg(long)]
    retry_failed: bool,
    /// Write a Slurm job array (sweep.sbatch, jobs.txt) into this folder instead of
    /// running.
    #[arg(long)]
    slurm: Option<PathBuf>,
    /// Only print the planned runs and their state.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    quiet: bool,
    /// Passed to every run.
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
}

/// `adn sweep`: plans the grid, writes missing generated datasets, then runs what is pending
/// here or writes it as a Slurm array.
/// `threads` is the global `--threads`: the cores the sweep shares out between its runs
/// (default: all of them).
pub fn command(a: Args, threads: Option<i32>) -> Result<()> {
    let grid = load_grid(&a.grid)?;
    let plan = expand(&a.grid, &grid)?;
    let runs = runs_dir(&a.results, &plan.experiment);
    if a.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for r in &plan.runs {
            let state = match &r.missing {
                Some(m) => format!("skipped: {m}"),
                None => match run_state(&runs, &r.run_id)? {
                    // `Partial` is what a killed run leaves: the sweep runs it again.
                    RunState::Absent | RunState::Partial => "pending".to_string(),
                    s => format!("{s:?}").to_lowercase(),
                },
            };
            let axes: Vec<String> = r.axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let line = format!(
                "{} {} / {} {} {state}",
                r.run_id,
                r.dataset,
                r.category,
                axes.join(" ")
            );
            if writeln!(out, "{line}").is_err() {
                break; // a closed pipe (`| head`) is not an error
            }
        }
        return Ok(());
    }
    // One sweep per experiment: a second one refuses rather than redo or delete the first
    // one's runs in flight. Held until the sweep ends.
    let experiment_dir = a.results.join(&plan.experiment);
    let _owner = adn_util::lock::try_lock(
        &experiment_dir,
        &format!(
            "experiment {:?} ({})",
            plan.experiment,
            experiment_dir.display()
        ),
    )?;
    // Generated and packaged datasets are written before any run starts.
    for ds in &grid.datasets {
        let (Some(kind), Some(root)) = (&ds.make, ds.set.get("data.root").and_then(|v| v.as_str()))
        else {
            continue;
        };
        let root = PathBuf::from(root);
        if !root.is_dir() {
            let kind: adn_datagen::MakeKind = kind.parse()?;
            eprintln!(
                "writing dataset {:?} ({kind}) to {}",
                ds.label,
                root.display()
            );
            adn_datagen::make(kind, &root, &adn_datagen::MakeOptions::default())?;
        }
    }
    if let Some(out) = &a.slurm {
        let (script, tasks) = slurm::write_slurm(&plan, &grid, &a.results, out, a.retry_failed)?;
        println!(
            "{tasks} runs in a Slurm job array: sbatch {}\nthen gather them with `cargo xtask tables {}`",
            script.display(),
            plan.experiment
        );
        return Ok(());
    }
    // What a run checks before its extraction, checked for every run before the first starts.
    let resolved = a.device.resolve()?;
    for r in plan.runs.iter().filter(|r| r.missing.is_none()) {
        let cfg = crate::config::Config::load(&plan.base, &r.overrides)?;
        crate::pipeline::features::check_memory(&cfg, resolved)
            .with_context(|| format!("run {} ({} / {})", r.run_id, r.dataset, r.category))?;
    }
    let device = a.device.name();
    let opts = SweepOptions {
        results: a.results,
        jobs: a.jobs.or(grid.jobs).unwrap_or(1),
        cores: match threads {
            Some(n) => n.max(1) as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
        retry_failed: a.retry_failed,
        quiet: a.quiet,
        run_args: vec!["--device".into(), device.into()],
    };
    let summary = run_local(&plan, &opts)?;
    print_summary(&summary, std::io::stderr())?;
    println!(
        "{}: {} complete ({} this time), {} failed, {} skipped",
        plan.experiment,
        summary.completed + summary.already_done,
        summary.completed,
        summary.failed.len(),
        summary.skipped.len()
    );
    // A sweep whose experiment has failed runs did not produce what it was asked for.
    if !summary.failed.is_empty() {
        bail!(
            "{} of {} runs of {} failed (their records say why; `adn sweep --retry-failed` runs \
             them again)",
            summary.failed.len(),
            plan.runs.len() - summary.skipped.len(),
            plan.experiment
        );
    }
    Ok(())
}
