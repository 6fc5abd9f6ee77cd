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

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::record;

/// The grid file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Results go to `results/<experiment>/`.
    pub experiment: String,
    /// The base run config, relative to the grid file.
    pub base: PathBuf,
    /// Concurrent runs when `--jobs` is not given (default 1).
    #[serde(default)]
    pub jobs: Option<usize>,
    pub datasets: Vec<DatasetAxis>,
    /// Config key → values; every combination is a run (keys in file order are not kept:
    /// runs are ordered by key name).
    #[serde(default)]
    pub axes: BTreeMap<String, Vec<toml::Value>>,
    #[serde(default)]
    pub slurm: SlurmResources,
}

/// One dataset of a grid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetAxis {
    /// Name in tables and figures, e.g. "MVTec AD".
    pub label: String,
    /// Overrides for this dataset (`data.kind`, `data.root`, and anything it needs).
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// One run per category (`data.category`); otherwise `set` names it.
    #[serde(default)]
    pub categories: Vec<String>,
    /// An environment variable that, when set, replaces `data.root`.
    #[serde(default)]
    pub root_env: Option<String>,
    /// `adn data make --kind <make>` writes the root when it is missing.
    #[serde(default)]
    pub make: Option<String>,
    /// How a user obtains this dataset, printed when its root is missing.
    #[serde(default)]
    pub how_to_get: Option<String>,
    /// The dataset's name in `experiments/published.toml`.
    #[serde(default)]
    pub published: Option<String>,
}

/// Resources of one Slurm array task.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmResources {
    pub cpus_per_task: usize,
    pub mem: String,
    pub time: String,
    pub partition: Option<String>,
    pub gpus_per_task: usize,
}

impl Default for SlurmResources {
    fn default() -> Self {
        SlurmResources {
            cpus_per_task: 4,
            mem: "16G".into(),
            time: "04:00:00".into(),
            partition: None,
            gpus_per_task: 0,
        }
    }
}

/// One planned run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedRun {
    pub run_id: String,
    pub dataset: String,
    pub category: String,
    /// Axis key → value (as TOML text), e.g. `model.attention` → `"se"`.
    pub axes: BTreeMap<String, String>,
    /// The `--set` overrides that make this run from the base config.
    pub overrides: Vec<String>,
    /// Why this run cannot start here (missing dataset or weights), if so.
    pub missing: Option<String>,
}

/// `plan.json`: the expanded grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub experiment: String,
    /// The base config, as the sweep was given it.
    pub base: PathBuf,
    /// Axis keys in the order tables group by.
    pub axis_keys: Vec<String>,
    /// Dataset label → its name in the published-numbers file.
    pub published: BTreeMap<String, String>,
    pub runs: Vec<PlannedRun>,
}

/// Where a run stands on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Complete,
    Failed,
    Pending,
}

/// Reads a grid file.
pub fn load_grid(path: &Path) -> Result<Grid> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read grid {}", path.display()))?;
    let grid: Grid =
        toml::from_str(&text).with_context(|| format!("invalid grid file {}", path.display()))?;
    if grid.datasets.is_empty() {
        bail!(
            "{}: a grid needs at least one [[datasets]] entry",
            path.display()
        );
    }
    for (key, values) in &grid.axes {
        if values.is_empty() {
            bail!("{}: axis {key:?} has no values", path.display());
        }
    }
    Ok(grid)
}

/// The base config path of a grid, resolved against the grid file's folder.
pub fn base_path(grid_path: &Path, grid: &Grid) -> PathBuf {
    grid_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&grid.base)
}

fn setting(key: &str, value: &toml::Value) -> String {
    format!("{key}={value}")
}

/// Expands the grid into runs, resolving (and so validating) every config. A typo anywhere
/// fails here, before anything runs.
pub fn expand(grid_path: &Path, grid: &Grid) -> Result<Plan> {
    let base = base_path(grid_path, grid);
    let mut runs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let axis_keys: Vec<String> = grid.axes.keys().cloned().collect();
    // Cartesian product of the axes, in key order.
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, values) in &grid.axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    for ds in &grid.datasets {
        let mut set = ds.set.clone();
        if let Some(var) = &ds.root_env
            && let Ok(root) = std::env::var(var)
        {
            set.insert("data.root".into(), toml::Value::String(root));
        }
        let categories: Vec<Option<&String>> = if ds.categories.is_empty() {
            vec![None]
        } else {
            ds.categories.iter().map(Some).collect()
        };
        for category in categories {
            for combo in &combos {
                let mut overrides = vec![setting(
                    "experiment",
                    &toml::Value::String(grid.experiment.clone()),
                )];
                overrides.extend(set.iter().map(|(k, v)| setting(k, v)));
                if let Some(c) = category {
                    overrides.push(setting("data.category", &toml::Value::String(c.clone())));
                }
                overrides.extend(combo.iter().map(|(k, v)| setting(k, v)));
                let config = Config::load(&base, &overrides).with_context(|| {
                    format!(
                        "grid {}: dataset {:?}, run {}",
                        grid_path.display(),
                        ds.label,
                        overrides.join(" ")
                    )
                })?;
                let run_id = config.run_id();
                if !seen.insert(run_id.clone()) {
                    continue;
                }
                runs.push(PlannedRun {
                    run_id,
                    dataset: ds.label.clone(),
                    category: config.data.category.clone(),
                    axes: combo
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect(),
                    overrides,
                    missing: missing_inputs(&config, ds),
                });
            }
        }
    }
    Ok(Plan {
        experiment: grid.experiment.clone(),
        base,
        axis_keys,
        published: grid
            .datasets
            .iter()
            .filter_map(|d| Some((d.label.clone(), d.published.clone()?)))
            .collect(),
        runs,
    })
}

/// What a run needs that is not on this machine, and how to get it. Datasets with a `make`
/// kind are generated by the sweep itself, so they are never missing.
fn missing_inputs(config: &Config, ds: &DatasetAxis) -> Option<String> {
    let mut missing = Vec::new();
    let root = &config.data.root;
    // A missing root is one message for the whole dataset; a missing category its own.
    let category_dir = if root.is_dir() {
        root.join(&config.data.category)
    } else {
        root.clone()
    };
    if ds.make.is_none() && !category_dir.is_dir() {
        let how = ds
            .how_to_get
            .clone()
            .unwrap_or_else(|| "download it and point data.root at it".into());
        let env = ds
            .root_env
            .as_ref()
            .map(|v| format!(" or set {v}"))
            .unwrap_or_default();
        missing.push(format!(
            "dataset {:?} is not at {} ({how}; set data.root in the grid{env})",
            ds.label,
            category_dir.display()
        ));
    }
    if let Some(w) = &config.model.weights
        && !w.is_file()
    {
        let how = match config.model.backbone {
            adn_backbones::BackboneKind::Alexnet => {
                "convert torchvision's alexnet-owt-7be5be79.pth with `adn weights import \
                 --from alexnet-owt-7be5be79.pth`"
            }
            adn_backbones::BackboneKind::EfficientnetLite0 => {
                "run `adn weights fetch efficientnet-lite0`"
            }
        };
        missing.push(format!("weights {} are missing ({how})", w.display()));
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

/// The folder of the experiment's runs.
pub fn runs_dir(results: &Path, experiment: &str) -> PathBuf {
    results.join(experiment).join("runs")
}

/// Where `run_id` stands in `runs`.
pub fn run_state(runs: &Path, run_id: &str) -> RunState {
    let dir = runs.join(run_id);
    if record::is_complete(&dir) {
        return RunState::Complete;
    }
    let manifest = fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    match manifest {
        Some(m) if m["status"] == "failed" => RunState::Failed,
        _ => RunState::Pending,
    }
}

/// Removes what killed runs left behind: `.<id>.partial-<pid>` and `.<id>.old-<pid>` folders.
pub fn remove_leftovers(runs: &Path) -> Result<usize> {
    let Ok(entries) = fs::read_dir(runs) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && (name.contains(".partial-") || name.contains(".old-")) {
            fs::remove_dir_all(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `plan.json` (atomically: a killed sweep never leaves half of it).
pub fn write_plan(results: &Path, plan: &Plan) -> Result<PathBuf> {
    let dir = results.join(&plan.experiment);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("plan.json");
    let tmp = dir.join(format!(".plan.json.{}", std::process::id()));
    record::write_file(&tmp, serde_json::to_string_pretty(plan)?.as_bytes())?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

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
        match run_state(&runs, &r.run_id) {
            RunState::Complete => summary.already_done += 1,
            RunState::Failed if !opts.retry_failed => summary
                .failed
                .push((r.run_id.clone(), failure_message(&runs.join(&r.run_id)))),
            _ => pending.push(r),
        }
    }
    let jobs = opts.jobs.max(1).min(pending.len().max(1));
    let threads = (opts.cores / jobs).max(1);
    let bar = crate::run::progress(opts.quiet, pending.len() as u64, "sweep");
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
    match run_state(runs, &r.run_id) {
        RunState::Complete if out.status.success() => Ok(()),
        RunState::Failed => bail!("{}", failure_message(&dir)),
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
    fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|m| m["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown error".into())
}

/// A failed record for a run that could not write its own.
fn write_failure(dir: &Path, plan: &Plan, r: &PlannedRun, error: &str) -> Result<()> {
    let manifest = serde_json::json!({
        "run_id": r.run_id,
        "experiment": plan.experiment,
        "status": "failed",
        "error": error,
        "written_by": "sweep",
    });
    record::commit_folder(dir, true, |tmp| {
        record::write_file(
            &tmp.join("manifest.json"),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )
    })?;
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

/// Writes a Slurm job array for the pending runs of `plan` into `out`: `jobs.txt` (one
/// `adn run` command per line), `sweep.sbatch` and `logs/`. Returns the script's path and
/// the number of tasks.
pub fn write_slurm(
    plan: &Plan,
    grid: &Grid,
    results: &Path,
    out: &Path,
    retry_failed: bool,
) -> Result<(PathBuf, usize)> {
    let results = std::path::absolute(results)?;
    let runs = runs_dir(&results, &plan.experiment);
    fs::create_dir_all(&runs)?;
    write_plan(&results, plan)?;
    fs::create_dir_all(out.join("logs"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::path::absolute(out)?;
    let adn = std::env::current_exe().context("cannot find the adn executable")?;
    let workdir = std::env::current_dir()?;
    let threads = grid.slurm.cpus_per_task.max(1);
    let mut lines = String::new();
    let mut tasks = 0;
    for r in &plan.runs {
        if r.missing.is_some() {
            continue;
        }
        match run_state(&runs, &r.run_id) {
            RunState::Complete => continue,
            RunState::Failed if !retry_failed => continue,
            _ => {}
        }
        let mut words = vec![shell_quote(&adn.display().to_string())];
        words.extend(
            run_args(plan, r, &runs, threads)
                .iter()
                .map(|a| shell_quote(a)),
        );
        lines.push_str(&words.join(" "));
        lines.push('\n');
        tasks += 1;
    }
    let jobs_file = out.join("jobs.txt");
    record::write_file(&jobs_file, lines.as_bytes())?;
    let s = &grid.slurm;
    let mut script = String::from("#!/bin/bash\n");
    script.push_str(&format!("#SBATCH --job-name=adn-{}\n", plan.experiment));
    script.push_str(&format!("#SBATCH --array=0-{}\n", tasks.max(1) - 1));
    script.push_str(&format!("#SBATCH --cpus-per-task={}\n", s.cpus_per_task));
    script.push_str(&format!("#SBATCH --mem={}\n", s.mem));
    script.push_str(&format!("#SBATCH --time={}\n", s.time));
    if let Some(p) = &s.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if s.gpus_per_task > 0 {
        script.push_str(&format!("#SBATCH --gpus-per-task={}\n", s.gpus_per_task));
    }
    script.push_str(&format!(
        "#SBATCH --output={}/logs/%A_%a.out\n",
        out.display()
    ));
    script.push_str(&format!(
        "# {tasks} runs of experiment {:?}; one array task = one `adn run`.\n\
         # Written by `adn sweep --slurm`; gather what finished with `cargo xtask tables {}`.\n\
         set -euo pipefail\n\
         cd {}\n\
         export OMP_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{threads}}}\"\n\
         line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\n\
         eval \"$line\"\n",
        plan.experiment,
        plan.experiment,
        shell_quote(&workdir.display().to_string()),
        shell_quote(&jobs_file.display().to_string()),
    ));
    let script_path = out.join("sweep.sbatch");
    record::write_file(&script_path, script.as_bytes())?;
    Ok((script_path, tasks))
}

/// Quotes a word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("data.root=x"), "data.root=x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("k=\"se\""), "'k=\"se\"'");
    }

    #[test]
    fn grid_expands_to_the_product_with_stable_ids() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("base.toml"),
            "experiment = \"x\"\n[data]\nkind = \"smoke\"\nroot = \"d\"\ncategory = \"shapes\"\n",
        )
        .unwrap();
        let grid_text = "experiment = \"g\"\nbase = \"base.toml\"\n\
            [[datasets]]\nlabel = \"A\"\nmake = \"smoke\"\n\
            [[datasets]]\nlabel = \"B\"\nset = { \"data.root\" = \"e\" }\ncategories = [\"p\", \"q\"]\n\
            [axes]\n\"model.attention\" = [\"none\", \"se\"]\n\"train.seed\" = [0, 1, 2]\n";
        let grid_path = dir.path().join("grid.toml");
        fs::write(&grid_path, grid_text).unwrap();
        let grid = load_grid(&grid_path).unwrap();
        let plan = expand(&grid_path, &grid).unwrap();
        assert_eq!(plan.runs.len(), 3 * 2 * 3);
        let again = expand(&grid_path, &grid).unwrap();
        let ids: Vec<_> = plan.runs.iter().map(|r| &r.run_id).collect();
        let ids2: Vec<_> = again.runs.iter().map(|r| &r.run_id).collect();
        assert_eq!(ids, ids2);
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        // Generated data is never missing; B's root does not exist.
        assert!(plan.runs[0].missing.is_none());
        assert!(plan.runs[6].missing.as_ref().unwrap().contains("\"B\""));
        assert_eq!(plan.runs[6].category, "p");
        assert_eq!(plan.runs[0].axes["model.attention"], "\"none\"");
    }

    #[test]
    fn grid_typos_fail_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("base.toml"),
            "experiment = \"x\"\n[data]\nkind = \"smoke\"\nroot = \"d\"\ncategory = \"shapes\"\n",
        )
        .unwrap();
        let grid_path = dir.path().join("grid.toml");
        fs::write(
            &grid_path,
            "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabel = \"A\"\n\
             [axes]\n\"model.atention\" = [\"se\"]\n",
        )
        .unwrap();
        let grid = load_grid(&grid_path).unwrap();
        let e = expand(&grid_path, &grid).unwrap_err();
        assert!(format!("{e:#}").contains("atention"), "{e:#}");
        fs::write(
            &grid_path,
            "experiment = \"g\"\nbase = \"base.toml\"\n[[datasets]]\nlabell = \"A\"\n",
        )
        .unwrap();
        let e = load_grid(&grid_path).unwrap_err();
        assert!(format!("{e:#}").contains("labell"), "{e:#}");
    }
}
