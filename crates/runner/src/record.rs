//! The run record: one folder per run, written beside its final place and renamed into it,
//! so that an interrupted run never leaves a folder that looks complete.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// `manifest.json`: what ran, where, how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub experiment: String,
    /// `complete` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub git_commit: Option<String>,
    pub adn_version: String,
    pub libtorch: String,
    pub device: String,
    pub threads: i32,
    pub seed: u64,
    pub started_unix: f64,
    pub finished_unix: f64,
    pub wall_s: WallTimes,
    pub dataset: DatasetSummary,
    pub feature_dim: i64,
    pub backbone_weights: String,
    pub flow_parameters: i64,
    pub trainable_attention_parameters: i64,
    pub feature_cache: crate::extract::CacheStats,
    /// The process's peak resident memory (Linux `VmHWM`), in MB.
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

/// This process's peak resident memory in MB, where the OS reports it (Linux).
pub fn peak_rss_mb() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WallTimes {
    pub data: f64,
    pub features: f64,
    pub train: f64,
    pub eval: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub root: String,
    pub category: String,
    pub train_images: usize,
    pub test_images: usize,
    /// Test images per defect type, `good` included.
    pub test_counts: Vec<(String, usize)>,
}

/// One evaluation after a meta-epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalPoint {
    pub meta_epoch: usize,
    pub train_loss: f64,
    pub auroc: f64,
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// AUROC after the last meta-epoch: the headline number, no model selection.
    pub auroc_last: f64,
    /// Maximum AUROC over all evaluations. Selected on the test set, as DifferNet-style
    /// papers report it; optimistic by construction.
    pub auroc_best: f64,
    pub auroc_best_epoch: usize,
    pub auroc_best_selection: String,
    /// AUROC at the meta-epoch with the lowest mean training loss (selection without labels).
    pub auroc_min_loss: f64,
    pub auroc_min_loss_epoch: usize,
    pub trajectory: Vec<EvalPoint>,
}

/// One row of `scores.csv`.
#[derive(Debug, Clone)]
pub struct ScoreRow {
    pub path: String,
    pub category: String,
    pub defect: String,
    pub label: u8,
    pub score: f64,
}

/// Writes the trained model into the given file.
pub type SaveModel<'a> = &'a dyn Fn(&Path) -> Result<()>;

/// Everything a finished run writes.
pub struct RunRecord<'a> {
    pub config_toml: &'a str,
    pub manifest: &'a Manifest,
    pub metrics: Option<&'a MetricsRecord>,
    pub scores: &'a [ScoreRow],
    /// Writes `model.safetensors`.
    pub save_model: Option<SaveModel<'a>>,
    /// The run's log, written as `log.txt`.
    pub log: Option<Vec<u8>>,
}

/// True when `dir` holds a complete run record.
pub fn is_complete(dir: &Path) -> bool {
    let Ok(text) = fs::read_to_string(dir.join("manifest.json")) else {
        return false;
    };
    serde_json::from_str::<Manifest>(&text).is_ok_and(|m| m.status == "complete")
        && dir.join("metrics.json").is_file()
        && dir.join("scores.csv").is_file()
}

/// Writes the record with [`commit_folder`]; the manifest goes last.
pub fn write(dir: &Path, record: &RunRecord<'_>, replace: bool) -> Result<PathBuf> {
    commit_folder(dir, replace, |tmp| {
        write_file(&tmp.join("config.toml"), record.config_toml.as_bytes())?;
        if let Some(metrics) = record.metrics {
            write_file(
                &tmp.join("metrics.json"),
                serde_json::to_string_pretty(metrics)?.as_bytes(),
            )?;
        }
        if !record.scores.is_empty() {
            write_file(
                &tmp.join("scores.csv"),
                scores_csv(record.scores).as_bytes(),
            )?;
        }
        if let Some(save) = record.save_model {
            save(&tmp.join("model.safetensors"))?;
        }
        if let Some(log) = &record.log {
            write_file(&tmp.join("log.txt"), log)?;
        }
        // The manifest's status is what marks the folder complete.
        write_file(
            &tmp.join("manifest.json"),
            serde_json::to_string_pretty(record.manifest)?.as_bytes(),
        )
    })
}

/// One row per test image of `data`, in its order, with the image's score.
pub fn score_rows(data: &adn_datasets::CategoryData, scores: &[f64]) -> Vec<ScoreRow> {
    data.test
        .iter()
        .zip(scores)
        .map(|(s, &score)| ScoreRow {
            path: s.path.display().to_string(),
            category: data.category.clone(),
            defect: s.defect.clone(),
            label: s.is_anomalous() as u8,
            score,
        })
        .collect()
}

/// The `scores.csv` text.
pub fn scores_csv(scores: &[ScoreRow]) -> String {
    let mut csv = String::from("path,category,defect,label,score\n");
    for r in scores {
        csv.push_str(&format!(
            "{},{},{},{},{:.9e}\n",
            csv_field(&r.path),
            csv_field(&r.category),
            csv_field(&r.defect),
            r.label,
            r.score
        ));
    }
    csv
}

/// Fills a temporary sibling of `dir` with `fill`, then renames it to `dir`. An existing
/// folder at `dir` is replaced only when `replace` is set, and only after the new one is
/// complete; on any error the temporary folder is removed and `dir` is untouched.
pub fn commit_folder(
    dir: &Path,
    replace: bool,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = dir
        .file_name()
        .context("output folder has no name")?
        .to_string_lossy()
        .into_owned();
    let pid = std::process::id();
    let tmp = parent.join(format!(".{name}.partial-{pid}"));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        if !replace {
            fs::remove_dir_all(&tmp)?;
            bail!(
                "{} already exists; pass --force to replace it",
                dir.display()
            );
        }
        let old = parent.join(format!(".{name}.old-{pid}"));
        fs::rename(dir, &old).with_context(|| format!("cannot move aside {}", dir.display()))?;
        fs::rename(&tmp, dir)
            .with_context(|| format!("cannot move the new folder to {}", dir.display()))?;
        fs::remove_dir_all(&old)?;
    } else {
        fs::rename(&tmp, dir)
            .with_context(|| format!("cannot move the new folder to {}", dir.display()))?;
    }
    Ok(dir.to_path_buf())
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Quotes a CSV field when it holds a comma, quote or newline.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
