//! A sweep on this machine: every pending run its own `adn run` process, `jobs` at a time,
//! each with its share of the cores.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use adn_record::{Manifest, Plan, PlannedRun, RunState};
use anyhow::{Context, Result, bail};

use super::state::{remove_leftovers, run_state, runs_dir, write_plan};

/// Options of a local sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub results: PathBuf,
    pub jobs: usize,
    /// Cores to split between the concurrent runs.
    pub cores: usize,
    pub retry_failed: bool,
    pub quiet: bool,
    /// Extra arguments of every `adn run` (e.g. `--device cpu`).
    pub run_args: Vec<String>,
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct SweepSummary {
    pub already_done: usize,
    pub completed: usize,
    /// Run id and error of every run that failed in this sweep or before.
    pub failed: Vec<(String, String)>,
    /// Run id and what is missing.
    pub skipped: Vec<(String, String)>,
}

/// Runs every pending run of `plan`, `jobs` at a time, each as `adn run` with its share of
/// the cores.
pub fn run_local(plan: &Plan, opts: &SweepOptions) -> Result<SweepSummary> {
    let runs = runs_dir(&opts.results, &plan.experiment);
    fs::create_dir_all(&runs).with_context(|| format!("cannot create {}", runs.display()))?;
    remove_leftovers(&runs)?;
    write_plan(&opts.results, plan)?;
    let adn = std::env::current_exe().context("cannot find the adn executable")?;

    let mut summary = SweepSummary::default();
    let mut pending = Vec::new();
    for r in &plan.runs {
        if let Some(m) = &r.missing {
            summary.skipped.push((r.run_id.clone(), m.clone()));
            continue;
        }
        match run_state(&runs, &r.run_id)? {
            RunState::Complete => summary.already_done += 1,
            RunState::Failed if !opts.retry_failed => summary
                .failed
                .push((r.run_id.clone(), failure_message(&runs.join(&r.run_id)))),
            _ => pending.push(r),
        }
    }
    let jobs = opts.jobs.max(1).min(pending.len().max(1));
    let threads = (opts.cores / jobs).max(1);
    let bar = crate::progress::bar(opts.quiet, pending.len() as u64, "sweep");
    bar.set_message(format!("{} runs", plan.experiment));
    let next = Mutex::new(pending.into_iter());
    let results = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let Some(r) = next.lock().expect("no panics hold it").next() else {
                        break;
                    };
                    let outcome = run_one(&adn, plan, r, &runs, threads, &opts.run_args);
                    bar.inc(1);
                    results
                        .lock()
                        .expect("no panics hold it")
                        .push((r, outcome));
                }
            });
        }
    });
    bar.finish_and_clear();
    for (r, outcome) in results.into_inner().expect("threads joined") {
        match outcome {
            Ok(()) => summary.completed += 1,
            Err(e) => summary.failed.push((r.run_id.clone(), format!("{e:#}"))),
        }
    }
    if !opts.quiet {
        eprintln!(
            "sweep {}: {} ran, {} already done, {} failed, {} skipped in {:.0} s",
            plan.experiment,
            summary.completed,
            summary.already_done,
            summary.failed.len(),
            summary.skipped.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(summary)
}

/// The command line of one run (without the program), as a sweep or a Slurm task runs it.
pub fn run_args(plan: &Plan, r: &PlannedRun, runs: &Path, threads: usize) -> Vec<String> {
    let mut args = vec![
        "--threads".to_string(),
        threads.to_string(),
        "run".into(),
        plan.base.display().to_string(),
    ];
    for o in &r.overrides {
        args.push("--set".into());
        args.push(o.clone());
    }
    args.extend([
        "--out".into(),
        runs.join(&r.run_id).display().to_string(),
        "--quiet".into(),
        "--force".into(),
    ]);
    args
}

/// Runs one `adn run`. A run that dies before writing its record (bad data, a signal) gets a
/// failed record written here, with the end of its error output.
fn run_one(
    adn: &Path,
    plan: &Plan,
    r: &PlannedRun,
    runs: &Path,
    threads: usize,
    extra: &[String],
) -> Result<()> {
    let mut cmd = Command::new(adn);
    cmd.args(run_args(plan, r, runs, threads))
        .args(extra)
        .env("OMP_NUM_THREADS", threads.to_string())
        .env("MKL_NUM_THREADS", threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut cmd);
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {}", adn.display()))?;
    let dir = runs.join(&r.run_id);
    match run_state(runs, &r.run_id).ok() {
        Some(RunState::Complete) if out.status.success() => Ok(()),
        Some(RunState::Failed) => bail!("{}", failure_message(&dir)),
        _ => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let error = format!(
                "adn run exited with {} before writing a complete record: {}",
                out.status,
                tail.join("\n")
            );
            write_failure(&dir, plan, r, &error)?;
            bail!("{error}")
        }
    }
}

/// The error recorded in a failed run folder.
pub fn failure_message(dir: &Path) -> String {
    match adn_record::read_manifest(dir) {
        Ok(m) => m.error.unwrap_or_else(|| "unknown error".into()),
        Err(e) => format!("unreadable record: {e}"),
    }
}

/// A failed record for a run that could not write its own. Only under the run folder's
/// lock: a run refused because another process (a standalone `adn run`, a Slurm task) holds
/// the folder must not have that process's record replaced by a failed one.
fn write_failure(dir: &Path, plan: &Plan, r: &PlannedRun, error: &str) -> Result<()> {
    let _owner = adn_util::lock::try_lock(dir, &format!("run folder {}", dir.display()))?;
    let manifest = Manifest::failed_elsewhere(&r.run_id, &plan.experiment, error);
    adn_record::write_failure(dir, &manifest)?;
    Ok(())
}

/// Children die with the sweep (Linux), so a killed sweep leaves no orphan runs that could
/// race a restarted one.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Writes the summary of a sweep to `out` (human-readable lines).
pub fn print_summary(summary: &SweepSummary, mut out: impl Write) -> std::io::Result<()> {
    for (id, e) in &summary.failed {
        writeln!(out, "failed  {id}: {e}")?;
    }
    // Skipped runs share few reasons (a missing dataset, missing weights): one line each.
    let mut reasons: Vec<(&str, usize)> = Vec::new();
    for (_, m) in &summary.skipped {
        match reasons.iter_mut().find(|(r, _)| *r == m.as_str()) {
            Some((_, n)) => *n += 1,
            None => reasons.push((m, 1)),
        }
    }
    for (reason, n) in reasons {
        writeln!(out, "skipped {n} runs: {reason}")?;
    }
    Ok(())
}
