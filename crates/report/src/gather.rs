//! Reading an experiment back from `results/<experiment>/`: `plan.json` (written by
//! `adn sweep`) and every run folder under `runs/`, finished or not.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The part of `plan.json` the reports use.
#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    pub experiment: String,
    #[serde(default)]
    pub axis_keys: Vec<String>,
    /// Dataset label → its name in the published-numbers file.
    #[serde(default)]
    pub published: BTreeMap<String, String>,
    pub runs: Vec<PlannedRun>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PlannedRun {
    pub run_id: String,
    pub dataset: String,
    pub category: String,
    pub axes: BTreeMap<String, String>,
    #[serde(default)]
    pub missing: Option<String>,
}

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

/// One evaluation after a meta-epoch.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct EvalPoint {
    pub meta_epoch: usize,
    pub train_loss: f64,
    pub auroc: f64,
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
    pub metrics: Option<Metrics>,
    pub manifest: Option<ManifestInfo>,
}

/// `metrics.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Metrics {
    pub auroc_last: f64,
    pub auroc_best: f64,
    pub auroc_best_epoch: usize,
    pub auroc_min_loss: f64,
    pub trajectory: Vec<EvalPoint>,
}

/// The parts of `manifest.json` the tables use.
#[derive(Debug, Clone, Default)]
pub struct ManifestInfo {
    pub device: String,
    pub threads: i64,
    pub wall_total: f64,
    pub wall_features: f64,
    pub wall_train: f64,
    pub cache_hits: i64,
    pub cache_misses: i64,
    pub feature_dim: i64,
    pub train_images: i64,
    pub test_images: i64,
    pub backbone_weights: String,
    pub git_commit: String,
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

    /// Variants in plan order, vanilla first.
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

/// A TOML value as written in the plan, without the quotes of a string.
fn bare(value: &str) -> String {
    value.trim_matches('"').to_string()
}

/// Reads `results/<experiment>` (the folder holding `plan.json`).
pub fn gather(dir: &Path) -> Result<Experiment> {
    let plan_path = dir.join("plan.json");
    let text = fs::read_to_string(&plan_path).with_context(|| {
        format!(
            "cannot read {} (an experiment folder is written by `adn sweep` / `cargo xtask sweep`)",
            plan_path.display()
        )
    })?;
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid plan", plan_path.display()))?;
    if plan.runs.is_empty() {
        bail!("{} lists no runs", plan_path.display());
    }
    let runs_dir = dir.join("runs");
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
            .filter(|(k, _)| k.as_str() != SEED_KEY && k.as_str() != ATTENTION_KEY)
            .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), bare(v)))
            .collect();
        let context = others.join(", ");
        let variant = if others.is_empty() {
            attention.clone()
        } else {
            format!("{attention} ({context})")
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

fn attention_from_config(run_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(run_dir.join("config.toml")).ok()?;
    let value: toml::Table = toml::from_str(&text).ok()?;
    Some(value.get("model")?.get("attention")?.as_str()?.to_string())
}

type RunFiles = (
    Status,
    Option<String>,
    Option<Metrics>,
    Option<ManifestInfo>,
);

fn read_run(dir: &Path, missing: Option<&str>) -> Result<RunFiles> {
    let manifest_path = dir.join("manifest.json");
    let Ok(text) = fs::read_to_string(&manifest_path) else {
        return Ok(match missing {
            Some(m) => (Status::Skipped, Some(m.to_string()), None, None),
            None => (Status::Pending, None, None, None),
        });
    };
    let m: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", manifest_path.display()))?;
    let status = m["status"].as_str().unwrap_or("");
    let error = m["error"].as_str().map(str::to_string);
    if status != "complete" {
        return Ok((Status::Failed, error, None, None));
    }
    let metrics_path = dir.join("metrics.json");
    let metrics: Metrics = serde_json::from_str(
        &fs::read_to_string(&metrics_path)
            .with_context(|| format!("cannot read {}", metrics_path.display()))?,
    )
    .with_context(|| format!("{} is not a metrics record", metrics_path.display()))?;
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let i = |v: &serde_json::Value| v.as_i64().unwrap_or(0);
    let info = ManifestInfo {
        device: m["device"].as_str().unwrap_or("").into(),
        threads: i(&m["threads"]),
        wall_total: f(&m["wall_s"]["total"]),
        wall_features: f(&m["wall_s"]["features"]),
        wall_train: f(&m["wall_s"]["train"]),
        cache_hits: i(&m["feature_cache"]["hits"]),
        cache_misses: i(&m["feature_cache"]["misses"]),
        feature_dim: i(&m["feature_dim"]),
        train_images: i(&m["dataset"]["train_images"]),
        test_images: i(&m["dataset"]["test_images"]),
        backbone_weights: m["backbone_weights"].as_str().unwrap_or("").into(),
        git_commit: m["git_commit"].as_str().unwrap_or("").into(),
    };
    Ok((Status::Complete, None, Some(metrics), Some(info)))
}

/// A run's test scores (`scores.csv`): labels, scores and defect types in file order.
pub struct Scores {
    pub labels: Vec<bool>,
    pub scores: Vec<f64>,
    pub defects: Vec<String>,
}

/// Reads a complete run's `scores.csv`.
pub fn read_scores(run: &Run) -> Result<Scores> {
    let path = run.dir.join("scores.csv");
    let file = adn_metrics::ScoresFile::read(&path)
        .with_context(|| format!("cannot read the scores of run {}", run.run_id))?;
    Ok(Scores {
        labels: file.labels(),
        scores: file.scores(),
        defects: file
            .rows
            .iter()
            .map(|r| r.defect.clone().unwrap_or_default())
            .collect(),
    })
}
