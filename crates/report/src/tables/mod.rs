//! The experiment's tables: image AUROC (and, where the test sets have masks, the pixel
//! metrics of DifferNet's anomaly map) per dataset × category × variant (mean ± sd over
//! seeds), each attention variant against vanilla DifferNet (difference, 95 % interval,
//! p-value), and the published numbers beside them. Numbers are computed here; polars holds
//! the long-form tables written as Parquet and CSV; Markdown and LaTeX are the wide views.

mod frames;
mod stats;
mod text;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::gather::{Experiment, Run, Status};
use crate::published::Published;

pub(crate) use frames::scores_sha256;
use frames::summary_frame;
pub use frames::{SessionFacts, committed_session_facts, runs_frame, scores_fingerprints};
pub use stats::*;
pub use text::*;

/// Files written by [`write_tables`].
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// All Markdown tables, in order, for printing.
    pub markdown: String,
    /// The headline table (`tables/headline.md`), which the README carries.
    pub headline: String,
}

/// Writes `text` to `path` atomically (temporary file, then rename).
fn write_text(path: &Path, text: &str, written: &mut Written) -> Result<()> {
    adn_util::atomic::write_file(path, text.as_bytes())?;
    written.files.push(path.to_path_buf());
    Ok(())
}

/// Writes `df` to `path` as Parquet or CSV (by its extension), atomically.
fn write_frame(path: &Path, df: &mut DataFrame, written: &mut Written) -> Result<()> {
    let mut bytes = Vec::new();
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            ParquetWriter::new(&mut bytes)
                .finish(df)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        _ => {
            CsvWriter::new(&mut bytes)
                .finish(df)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
    }
    adn_util::atomic::write_file(path, &bytes)?;
    written.files.push(path.to_path_buf());
    Ok(())
}

/// Writes `runs.parquet` / `runs.csv` beside the runs and every table under `tables/`
/// (Parquet, CSV, Markdown, LaTeX). Each file is written under a temporary name and
/// renamed, so an interrupted call leaves the previous tables whole.
pub fn write_tables(exp: &Experiment, published: &Published) -> Result<Written> {
    let mut written = Written::default();
    let mut runs = runs_frame(exp)?;
    write_frame(&exp.dir.join("runs.parquet"), &mut runs, &mut written)?;
    write_frame(&exp.dir.join("runs.csv"), &mut runs, &mut written)?;
    let dir = exp.dir.join("tables");
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut summary = summary_frame(exp, published)?;
    write_frame(&dir.join("summary.parquet"), &mut summary, &mut written)?;
    write_frame(&dir.join("summary.csv"), &mut summary, &mut written)?;

    let mut md = format!(
        "# {}: {} runs complete, {} failed, {} pending, {} skipped\n\n",
        exp.plan.experiment,
        exp.count(Status::Complete),
        exp.count(Status::Failed),
        exp.count(Status::Pending),
        exp.count(Status::Skipped)
    );
    md.push_str(&machines_note(exp));
    let mut tex = String::new();
    for t in all_tables(exp, published) {
        md.push_str(&t.markdown());
        md.push('\n');
        tex.push_str(&t.latex());
        tex.push('\n');
    }
    let mut skipped: Vec<(&str, &str, usize)> = Vec::new();
    for r in exp.runs.iter().filter(|r| r.status == Status::Skipped) {
        let reason = r.error.as_deref().unwrap_or("");
        match skipped
            .iter_mut()
            .find(|(d, e, _)| *d == r.dataset && *e == reason)
        {
            Some((_, _, n)) => *n += 1,
            None => skipped.push((&r.dataset, reason, 1)),
        }
    }
    if !skipped.is_empty() {
        md.push_str("**Runs that cannot run here**\n\n| dataset | runs | what is missing |\n|---|---:|---|\n");
        for (d, e, n) in skipped {
            md.push_str(&format!("| {d} | {n} | {} |\n", e.replace('|', "/")));
        }
        md.push('\n');
    }
    let failed: Vec<&Run> = exp
        .runs
        .iter()
        .filter(|r| r.status == Status::Failed)
        .collect();
    if !failed.is_empty() {
        md.push_str("**Runs that did not finish**\n\n| run | dataset | category | variant | seed | status | error |\n|---|---|---|---|---:|---|---|\n");
        for r in failed {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.run_id,
                r.dataset,
                r.category,
                display_name(&r.variant),
                r.seed,
                r.status.name(),
                r.error
                    .as_deref()
                    .unwrap_or("")
                    .replace('\n', " ")
                    .replace('|', "/")
            ));
        }
    }
    let headline = headline_table(exp, Metric::Last);
    write_text(&dir.join("headline.md"), &headline.markdown(), &mut written)?;
    written.headline = headline.markdown();
    write_text(&dir.join("tables.md"), &md, &mut written)?;
    write_text(&dir.join("tables.tex"), &tex, &mut written)?;
    written.markdown = md;
    Ok(written)
}

/// Every metric's tables in the order `tables.md` prints them: per metric and dataset, the
/// AUROC table with the published numbers, then its comparison with vanilla DifferNet.
pub fn all_tables(exp: &Experiment, published: &Published) -> Vec<TextTable> {
    let mut out = Vec::new();
    let all = [Metric::IMAGE.as_slice(), Metric::PIXEL.as_slice()].concat();
    for metric in all {
        for dataset in exp.datasets() {
            if !metrics_of(exp, &dataset).contains(&metric) {
                continue;
            }
            out.push(auroc_table(exp, &dataset, metric, published));
            out.extend(comparison_table(exp, &dataset, metric));
        }
    }
    out
}

/// Which machines and modes made the complete runs, as a paragraph of tables.md: one line
/// when they agree, a warning when they differ (the same config's last bits differ between
/// CPUs outside reproducible mode).
pub fn machines_note(exp: &Experiment) -> String {
    let mut made: Vec<(String, usize)> = Vec::new();
    for r in exp.runs.iter().filter(|r| r.status == Status::Complete) {
        let key = machine_label(r);
        match made.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => made.push((key, 1)),
        }
    }
    let list = made
        .iter()
        .map(|(k, n)| format!("{k} ({n} runs)"))
        .collect::<Vec<_>>()
        .join("; ");
    match made.len() {
        0 => String::new(),
        1 => format!("Made on {list}.\n\n"),
        _ => format!(
            "**Warning: these runs come from {} different machines or modes**: {list}. Outside \
             reproducible mode a config's last bits depend on the CPU, so differences between \
             them mix the variants' effect with the machines'.\n\n",
            made.len()
        ),
    }
}

/// A run's machine and mode, as [`machines_note`] names it.
fn machine_label(r: &crate::gather::Run) -> String {
    let Some(facts) = r.manifest.as_ref() else {
        return "an unrecorded machine".into();
    };
    match &facts.machine {
        None => format!("{}, machine not recorded", facts.device),
        Some(m) if m.reproducible => format!("{} in reproducible mode", m.cpu),
        Some(m) => format!(
            "{} ({}), fast mode, {} thread{}",
            m.cpu,
            m.cpu_features.join(" "),
            facts.threads,
            if facts.threads == 1 { "" } else { "s" }
        ),
    }
}
