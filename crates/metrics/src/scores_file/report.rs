//! One score file's report: every metric overall, per defect type and per category.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::roc::{Ranking, RocCurve};
use crate::stats::{BootstrapConfig, bootstrap_auroc_ci, delong_auroc};
use crate::{BootstrapCi, DeLongAuroc, F1Max, MetricsError, TprAtFpr};

use super::{ReportOptions, ScoresError, ScoresFile};

/// A group of images a report covers: a title and row indices.
pub(super) struct Section {
    pub(super) title: String,
    pub(super) rows: Vec<usize>,
    pub(super) per_defect: bool,
}

/// The whole file, or (with several categories) all pooled plus one section per category.
pub(super) fn sections(categories: &[Option<String>]) -> Vec<Section> {
    let distinct: BTreeSet<&str> = categories
        .iter()
        .map(|c| c.as_deref().unwrap_or(""))
        .collect();
    let all: Vec<usize> = (0..categories.len()).collect();
    if distinct.len() <= 1 {
        let title = match distinct.iter().next() {
            Some(c) if !c.is_empty() => format!("Overall (category {c})"),
            _ => "Overall".to_string(),
        };
        return vec![Section {
            title,
            rows: all,
            per_defect: true,
        }];
    }
    let mut out = vec![Section {
        title: format!(
            "All {} categories pooled (each category's own section below is the one to quote)",
            distinct.len()
        ),
        rows: all,
        per_defect: false,
    }];
    for cat in distinct {
        out.push(Section {
            title: format!(
                "Category {}",
                if cat.is_empty() { "(unspecified)" } else { cat }
            ),
            rows: (0..categories.len())
                .filter(|&i| categories[i].as_deref().unwrap_or("") == cat)
                .collect(),
            per_defect: true,
        });
    }
    out
}

/// Groups a section's anomalous rows by defect type; each group also holds all the
/// section's good rows.
pub(super) fn defect_groups(
    rows: &[usize],
    labels: &[bool],
    defects: &[Option<String>],
) -> Vec<(String, Vec<usize>)> {
    let good: Vec<usize> = rows.iter().copied().filter(|&i| !labels[i]).collect();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &i in rows.iter().filter(|&&i| labels[i]) {
        let name = match defects[i].as_deref() {
            Some(d) if !d.is_empty() => d.to_string(),
            _ => "(unspecified)".to_string(),
        };
        groups.entry(name).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|(name, mut idx)| {
            idx.extend_from_slice(&good);
            (name, idx)
        })
        .collect()
}

pub(super) fn pick<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&i| values[i]).collect()
}

/// Every metric of one group of images.
pub(super) struct GroupMetrics {
    pub(super) positives: usize,
    pub(super) negatives: usize,
    pub(super) auroc: f64,
    pub(super) bootstrap: BootstrapCi,
    /// `None` with fewer than two images of a class.
    pub(super) delong: Option<DeLongAuroc>,
    pub(super) average_precision: f64,
    pub(super) f1: F1Max,
    pub(super) tpr: Vec<TprAtFpr>,
    pub(super) roc: RocCurve,
}

pub(super) fn group_metrics(
    labels: &[bool],
    scores: &[f64],
    options: &ReportOptions,
) -> Result<GroupMetrics, MetricsError> {
    let ranking = Ranking::new(labels, scores)?;
    let delong = match delong_auroc(labels, scores) {
        Ok(d) => Some(d),
        Err(MetricsError::TooFew { .. }) => None,
        Err(e) => return Err(e),
    };
    Ok(GroupMetrics {
        positives: ranking.positives(),
        negatives: ranking.negatives(),
        auroc: ranking.auroc(),
        bootstrap: bootstrap_auroc_ci(labels, scores, &options.bootstrap)?,
        delong,
        average_precision: ranking.average_precision(),
        f1: ranking.f1_max(),
        tpr: options
            .fpr_bounds
            .iter()
            .map(|&f| ranking.tpr_at_fpr(f))
            .collect::<Result<_, _>>()?,
        roc: ranking.roc_curve(true),
    })
}

pub(super) fn pct(fraction: f64) -> String {
    let p = 100.0 * fraction;
    if p == p.round() {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

pub(super) fn threshold(t: f64) -> String {
    if t.is_infinite() {
        "inf".to_string()
    } else {
        format!("{t}")
    }
}

pub(super) fn bootstrap_note(cfg: &BootstrapConfig) -> String {
    format!(
        "bootstrap: {} stratified resamples, seed {}",
        cfg.resamples, cfg.seed
    )
}

pub(super) fn write_group_block(out: &mut String, m: &GroupMetrics, options: &ReportOptions) {
    let level = pct(m.bootstrap.confidence);
    let _ = writeln!(
        out,
        "  AUROC              {:.4}   {level} CI [{:.4}, {:.4}] ({})",
        m.auroc,
        m.bootstrap.lower,
        m.bootstrap.upper,
        bootstrap_note(&options.bootstrap)
    );
    match &m.delong {
        Some(d) => {
            let (lo, hi) = d.ci(m.bootstrap.confidence).unwrap_or((f64::NAN, f64::NAN));
            let _ = writeln!(
                out,
                "                              DeLong SE {:.4}, {level} CI [{lo:.4}, {hi:.4}]",
                d.std_error
            );
        }
        None => {
            let _ = writeln!(
                out,
                "                              DeLong SE n/a (needs at least 2 images of each class)"
            );
        }
    }
    let _ = writeln!(out, "  Average precision  {:.4}", m.average_precision);
    let _ = writeln!(
        out,
        "  F1-max             {:.4}   at score >= {} (precision {:.4}, recall {:.4})",
        m.f1.f1,
        threshold(m.f1.threshold),
        m.f1.precision,
        m.f1.recall
    );
    for t in &m.tpr {
        let label = format!("TPR @ FPR <= {}", pct(t.max_fpr));
        let _ = writeln!(
            out,
            "  {label:<18} {:.4}   at score >= {} (FPR {:.4})",
            t.tpr,
            threshold(t.threshold),
            t.fpr
        );
    }
}

pub(super) fn write_roc(out: &mut String, roc: &RocCurve) {
    let _ = writeln!(
        out,
        "  ROC curve ({} points; collinear points dropped as scikit-learn's roc_curve does)",
        roc.fpr.len()
    );
    let _ = writeln!(out, "    {:>8}  {:>8}  threshold", "fpr", "tpr");
    for k in 0..roc.fpr.len() {
        let _ = writeln!(
            out,
            "    {:>8.6}  {:>8.6}  {}",
            roc.fpr[k],
            roc.tpr[k],
            threshold(roc.thresholds[k])
        );
    }
}

/// The text report of one score file with default [`ReportOptions`]: what
/// `adn metrics --scores FILE` prints.
pub fn report_scores_file(path: &Path) -> Result<String, ScoresError> {
    report_scores_file_with(path, &ReportOptions::default())
}

/// [`report_scores_file`] with explicit options.
pub fn report_scores_file_with(
    path: &Path,
    options: &ReportOptions,
) -> Result<String, ScoresError> {
    report_scores(&ScoresFile::read(path)?, options)
}

/// The text report of a parsed score file.
pub fn report_scores(file: &ScoresFile, options: &ReportOptions) -> Result<String, ScoresError> {
    let labels = file.labels();
    let scores = file.scores();
    let defects: Vec<Option<String>> = file.rows.iter().map(|r| r.defect.clone()).collect();
    let categories: Vec<Option<String>> = file.rows.iter().map(|r| r.category.clone()).collect();
    let metrics_err = |context: String, error: MetricsError| ScoresError::Metrics {
        file: file.source.clone(),
        context,
        error,
    };
    let mut out = String::new();
    let anomalous = labels.iter().filter(|&&l| l).count();
    let _ = writeln!(out, "Scores: {}", file.source.display());
    let _ = writeln!(
        out,
        "Images: {} ({} good, {} anomalous); an image is flagged anomalous when score >= threshold",
        labels.len(),
        labels.len() - anomalous,
        anomalous
    );
    for section in sections(&categories) {
        let l = pick(&labels, &section.rows);
        let s = pick(&scores, &section.rows);
        let m = group_metrics(&l, &s, options).map_err(|e| {
            metrics_err(
                format!("{} ({} images)", section.title, section.rows.len()),
                e,
            )
        })?;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}: {} anomalous vs {} good",
            section.title, m.positives, m.negatives
        );
        write_group_block(&mut out, &m, options);
        if section.per_defect && file.has_defect {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "  Per defect type (each against all {} good images):",
                m.negatives
            );
            let mut header = format!(
                "    {:<20} {:>5}  {:>6}  {:>17}  {:>9}  {:>6}  {:>6}",
                "defect", "n", "AUROC", "bootstrap CI", "DeLong SE", "AP", "F1-max"
            );
            for &f in &options.fpr_bounds {
                let _ = write!(header, "  {:>10}", format!("TPR@{}", pct(f)));
            }
            let _ = writeln!(out, "{header}");
            for (name, rows) in defect_groups(&section.rows, &labels, &defects) {
                let l = pick(&labels, &rows);
                let s = pick(&scores, &rows);
                let d = group_metrics(&l, &s, options).map_err(|e| {
                    metrics_err(format!("{}, defect type {name}", section.title), e)
                })?;
                let se = d
                    .delong
                    .map_or("n/a".to_string(), |x| format!("{:.4}", x.std_error));
                let mut line = format!(
                    "    {:<20} {:>5}  {:>6.4}  [{:.4}, {:.4}]  {:>9}  {:>6.4}  {:>6.4}",
                    name,
                    d.positives,
                    d.auroc,
                    d.bootstrap.lower,
                    d.bootstrap.upper,
                    se,
                    d.average_precision,
                    d.f1.f1
                );
                for t in &d.tpr {
                    let _ = write!(line, "  {:>10.4}", t.tpr);
                }
                let _ = writeln!(out, "{line}");
            }
        }
        if options.roc_points {
            let _ = writeln!(out);
            write_roc(&mut out, &m.roc);
        }
    }
    Ok(out)
}
