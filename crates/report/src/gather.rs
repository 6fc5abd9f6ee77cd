//! Reading an experiment back from `results/<experiment>/`: `plan.json` (written by
//! `adn sweep`) and every run folder under `runs/`, finished or not.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use adn_record::{EvalPoint, MetricsRecord, Plan, PlannedRun, RunFacts};
use adn_record::{RunState, files};
use anyhow::{Context, Result, bail};

/// Where a planned run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Complete,
    Failed,
    /// Not run yet (or killed before its record was written).
    Pending,
    /// Cannot run here: its dataset or weights are missing.
    Skipped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Failed => "failed",
            Status::Pending => "pending",
            Status::Skipped => "skipped",
        }
    }
}

/// One run of the experiment, as the tables see it.
#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: String,
    pub dir: PathBuf,
    pub dataset: String,
    pub category: String,
    /// The attention variant and any other non-seed axis, e.g. `se` or `se / joint`.
    pub variant: String,
    /// `model.attention` of this run (`none` for vanilla DifferNet).
    pub attention: String,
    /// Axis values other than the attention and the seed, to pair a variant with its vanilla.
    pub context: String,
    pub seed: i64,
    pub axes: BTreeMap<String, String>,
    pub status: Status,
    pub error: Option<String>,
    /// A complete run's `metrics.json`.
    pub metrics: Option<MetricsRecord>,
    /// What a complete run recorded about itself in `manifest.json`.
    pub manifest: Option<RunFacts>,
}

/// An experiment: its plan and every planned run.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub dir: PathBuf,
    pub plan: Plan,
    pub runs: Vec<Run>,
}

impl Experiment {
    /// Dataset labels in plan order.
    pub fn datasets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.runs {
            if !out.contains(&r.dataset) {
                out.push(r.dataset.clone());
            }
        }
        out
    }

    /// Variants in plan order, vanilla first; with `[[flows]]`, grouped by flow in plan
    /// order, each flow's vanilla first.
    pub fn variants(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.runs.iter().filter(|r| r.attention == "none") {
            if !out.contains(&r.variant) {
                out.push(r.variant.clone());
            }
        }
        for r in &self.runs {
            if !out.contains(&r.variant) {
                out.push(r.variant.clone());
            }
        }
        let flows = self.flows();
        let group = |v: &String| {
            let run = self.runs.iter().find(|r| &r.variant == v);
            let flow = run.and_then(|r| r.axes.get(FLOW_KEY));
            flow.and_then(|f| flows.iter().position(|g| g == f))
        };
        out.sort_by_key(group);
        out
    }

    /// The `[[flows]]` labels (as recorded, quoted) in plan order; empty without flows.
    pub fn flows(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self.runs.iter().filter_map(|r| r.axes.get(FLOW_KEY)) {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }

    /// Categories of `dataset` in plan order.
    pub fn categories(&self, dataset: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.runs.iter().filter(|r| r.dataset == dataset) {
            if !out.contains(&r.category) {
                out.push(r.category.clone());
            }
        }
        out
    }

    /// Complete runs of one cell, sorted by seed.
    pub fn complete(&self, dataset: &str, category: &str, variant: &str) -> Vec<&Run> {
        let mut runs: Vec<&Run> = self
            .runs
            .iter()
            .filter(|r| {
                r.status == Status::Complete
                    && r.dataset == dataset
                    && r.category == category
                    && r.variant == variant
            })
            .collect();
        runs.sort_by_key(|r| r.seed);
        runs
    }

    pub fn count(&self, status: Status) -> usize {
        self.runs.iter().filter(|r| r.status == status).count()
    }
}

const SEED_KEY: &str = "train.seed";
const ATTENTION_KEY: &str = "model.attention";
/// The axis `adn sweep` records a grid's `[[regimes]]` under.
const REGIME_KEY: &str = "regime";
/// The axis `adn sweep` records a grid's `[[flows]]` under.
pub(crate) const FLOW_KEY: &str = "flow";

/// A TOML value as written in the plan, without the quotes of a string.
fn bare(value: &str) -> String {
    value.trim_matches('"').to_string()
}

/// Reads `results/<experiment>` (the folder holding `plan.json`).
pub fn gather(dir: &Path) -> Result<Experiment> {
    let plan_path = dir.join(files::PLAN);
    if !plan_path.is_file() {
        bail!(
            "cannot read {} (an experiment folder is written by `adn sweep` / `cargo xtask sweep`)",
            plan_path.display()
        );
    }
    let plan = Plan::read(&plan_path)?;
    if plan.runs.is_empty() {
        bail!("{} lists no runs", plan_path.display());
    }
    let runs_dir = dir.join(files::RUNS);
    let mut runs = Vec::new();
    for p in &plan.runs {
        let run_dir = runs_dir.join(&p.run_id);
        let attention = p
            .axes
            .get(ATTENTION_KEY)
            .map(|v| bare(v))
            .unwrap_or_else(|| attention_from_config(&run_dir).unwrap_or_else(|| "none".into()));
        let others: Vec<String> = p
            .axes
            .iter()
            .filter(|(k, _)| ![SEED_KEY, ATTENTION_KEY, REGIME_KEY].contains(&k.as_str()))
            .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), bare(v)))
            .collect();
        let context = others.join(", ");
        // A regime names how attention is trained, so vanilla (one run across regimes) has
        // none, and every regime of a variant pairs with the same vanilla.
        let named = match p.axes.get(REGIME_KEY) {
            Some(regime) if attention != "none" => format!("{attention} / {}", bare(regime)),
            _ => attention.clone(),
        };
        let variant = if others.is_empty() {
            named
        } else {
            format!("{named} ({context})")
        };
        let seed = p
            .axes
            .get(SEED_KEY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let (status, error, metrics, manifest) = read_run(&run_dir, p.missing.as_deref())?;
        runs.push(Run {
            run_id: p.run_id.clone(),
            dir: run_dir,
            dataset: p.dataset.clone(),
            category: p.category.clone(),
            variant,
            attention,
            context,
            seed,
            axes: p.axes.clone(),
            status,
            error,
            metrics,
            manifest,
        });
    }
    Ok(Experiment {
        dir: dir.to_path_buf(),
        plan,
        runs,
    })
}

impl Experiment {
    /// Gives every run whose scores are bit for bit those a committed run table recorded
    /// (`committed`, by run id) that table's session facts (wall times, cache use, device,
    /// threads, CPU, commit): a reproduced run is the committed run, so a rerun on another
    /// machine or day leaves the committed tables, figures and page as they were, and its
    /// own timings stay in the local run folders. Returns how many runs were given them.
    pub fn keep_committed_session_facts(
        &mut self,
        committed: &BTreeMap<String, crate::tables::SessionFacts>,
    ) -> usize {
        let mut kept = 0;
        for run in &mut self.runs {
            let Some(c) = committed.get(&run.run_id) else {
                continue;
            };
            let now = crate::tables::scores_sha256(run);
            if now.is_none() || now != c.scores_sha256 {
                continue;
            }
            if let Some(f) = run.manifest.as_mut() {
                let keep = |slot: &mut f64, v: Option<f64>| *slot = v.unwrap_or(*slot);
                keep(&mut f.wall_s.total, c.wall_total_s);
                keep(&mut f.wall_s.features, c.wall_features_s);
                keep(&mut f.wall_s.train, c.wall_train_s);
                if let Some(v) = c.cache_hits {
                    f.feature_cache.hits = v as usize;
                }
                if let Some(v) = c.cache_misses {
                    f.feature_cache.misses = v as usize;
                }
                if let Some(v) = &c.device {
                    f.device = v.clone();
                }
                if let Some(v) = c.threads {
                    f.threads = v as i32;
                }
                if let (Some(m), Some(cpu)) = (f.machine.as_mut(), &c.cpu) {
                    m.cpu = cpu.clone();
                }
                if let Some(g) = &c.git_commit {
                    // The table writes a run without a commit as an empty string.
                    f.git_commit = (!g.is_empty()).then(|| g.clone());
                }
            }
            if let (Some(p), Some(v)) = (
                run.metrics.as_mut().and_then(|m| m.pixel.as_mut()),
                c.wall_maps_s,
            ) {
                p.wall_s = v;
            }
            kept += 1;
        }
        kept
    }
}

fn attention_from_config(run_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(run_dir.join("config.toml")).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    Some(value.get("model")?.get("attention")?.as_str()?.to_string())
}

type RunFiles = (
    Status,
    Option<String>,
    Option<MetricsRecord>,
    Option<RunFacts>,
);

/// Reads one run folder through the record contract: anything unreadable is an error naming
/// the file, never a silent NaN.
fn read_run(dir: &Path, missing: Option<&str>) -> Result<RunFiles> {
    Ok(match adn_record::run_state(dir)? {
        RunState::Absent | RunState::Partial => match missing {
            Some(m) => (Status::Skipped, Some(m.to_string()), None, None),
            None => (Status::Pending, None, None, None),
        },
        RunState::Failed => (
            Status::Failed,
            adn_record::read_manifest(dir)?.error,
            None,
            None,
        ),
        RunState::Complete => {
            let manifest = adn_record::read_manifest(dir)?;
            let Some(facts) = manifest.run else {
                bail!(
                    "{}: a complete record without the run's own facts",
                    dir.join(files::MANIFEST).display()
                );
            };
            let metrics = adn_record::read_metrics(dir)?;
            (Status::Complete, None, Some(metrics), Some(facts))
        }
    })
}

/// A run's test scores (`scores.csv`): labels, scores and defect types in file order.
pub struct Scores {
    pub labels: Vec<bool>,
    pub scores: Vec<f64>,
    pub defects: Vec<String>,
}

/// Reads a complete run's `scores.csv`.
pub fn read_scores(run: &Run) -> Result<Scores> {
    let path = run.dir.join(files::SCORES);
    let rows = adn_record::read_scores(&path)
        .with_context(|| format!("cannot read the scores of run {}", run.run_id))?;
    Ok(Scores {
        labels: rows.iter().map(|r| r.label == 1).collect(),
        scores: rows.iter().map(|r| r.score).collect(),
        defects: rows.into_iter().map(|r| r.defect).collect(),
    })
}
