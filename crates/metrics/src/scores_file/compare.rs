//! Two score files on the same images compared: both metrics, DeLong's test and a paired
//! bootstrap interval of the AUROC difference.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::MetricsError;
use crate::roc::Ranking;
use crate::stats::{bootstrap_auroc_diff_ci, delong_test, format_p};

use super::report::*;
use super::{ReportOptions, ScoresError, ScoresFile};

/// Two score files' rows matched image by image.
struct Matched {
    how: String,
    labels: Vec<bool>,
    a: Vec<f64>,
    b: Vec<f64>,
    defects: Vec<Option<String>>,
    categories: Vec<Option<String>>,
    has_defect: bool,
}

fn match_rows(a: &ScoresFile, b: &ScoresFile) -> Result<Matched, ScoresError> {
    let mismatch = |message: String| ScoresError::Mismatch {
        a: a.source.clone(),
        b: b.source.clone(),
        message,
    };
    // Pairs of row indices (in A, in B).
    let pairs: Vec<(usize, usize)>;
    let how;
    if a.has_path && b.has_path {
        let index = |f: &ScoresFile| -> Result<HashMap<String, usize>, ScoresError> {
            let mut map: HashMap<String, usize> = HashMap::with_capacity(f.rows.len());
            for (i, row) in f.rows.iter().enumerate() {
                let key = row.path.clone().unwrap_or_default();
                if let Some(prev) = map.insert(key.clone(), i) {
                    return Err(ScoresError::Parse {
                        file: f.source.clone(),
                        line: row.line,
                        message: format!(
                            "path `{key}` already appeared on line {}; rows cannot be matched by path",
                            f.rows[prev].line
                        ),
                    });
                }
            }
            Ok(map)
        };
        let (in_a, in_b) = (index(a)?, index(b)?);
        let missing = |from: &ScoresFile, other: &HashMap<String, usize>| -> Vec<String> {
            from.rows
                .iter()
                .filter_map(|r| r.path.clone())
                .filter(|p| !other.contains_key(p))
                .collect()
        };
        let (only_a, only_b) = (missing(a, &in_b), missing(b, &in_a));
        if !only_a.is_empty() || !only_b.is_empty() {
            let show = |v: &[String]| {
                let head: Vec<&str> = v.iter().take(3).map(String::as_str).collect();
                let more = if v.len() > 3 {
                    format!(" and {} more", v.len() - 3)
                } else {
                    String::new()
                };
                format!("{} ({}{more})", v.len(), head.join(", "))
            };
            return Err(mismatch(format!(
                "the files do not hold the same images: only in A: {}; only in B: {}",
                show(&only_a),
                show(&only_b)
            )));
        }
        pairs = a
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| (i, in_b[r.path.as_deref().unwrap_or_default()]))
            .collect();
        how = format!("{} images matched by path", pairs.len());
    } else {
        if a.rows.len() != b.rows.len() {
            return Err(mismatch(format!(
                "{} rows vs {} rows; without a `path` column in both files rows are matched by order",
                a.rows.len(),
                b.rows.len()
            )));
        }
        pairs = (0..a.rows.len()).map(|i| (i, i)).collect();
        how = format!(
            "{} images matched by row order (no `path` column in both files)",
            pairs.len()
        );
    }
    for &(i, j) in &pairs {
        let (ra, rb) = (&a.rows[i], &b.rows[j]);
        let image = ra
            .path
            .as_ref()
            .map_or(format!("row {}", i + 1), |p| format!("image `{p}`"));
        if ra.label != rb.label {
            return Err(mismatch(format!(
                "{image}: label {} in A (line {}) but {} in B (line {})",
                ra.label as u8, ra.line, rb.label as u8, rb.line
            )));
        }
        for (what, x, y) in [
            ("defect", &ra.defect, &rb.defect),
            ("category", &ra.category, &rb.category),
        ] {
            if let (Some(x), Some(y)) = (x, y)
                && x != y
            {
                return Err(mismatch(format!(
                    "{image}: {what} `{x}` in A (line {}) but `{y}` in B (line {})",
                    ra.line, rb.line
                )));
            }
        }
    }
    let either = |x: &Option<String>, y: &Option<String>| x.clone().or_else(|| y.clone());
    Ok(Matched {
        how,
        labels: pairs.iter().map(|&(i, _)| a.rows[i].label).collect(),
        a: pairs.iter().map(|&(i, _)| a.rows[i].score).collect(),
        b: pairs.iter().map(|&(_, j)| b.rows[j].score).collect(),
        defects: pairs
            .iter()
            .map(|&(i, j)| either(&a.rows[i].defect, &b.rows[j].defect))
            .collect(),
        categories: pairs
            .iter()
            .map(|&(i, j)| either(&a.rows[i].category, &b.rows[j].category))
            .collect(),
        has_defect: a.has_defect || b.has_defect,
    })
}

/// The text comparison of two score files on the same images with default
/// [`ReportOptions`]: what `adn metrics --compare A B` prints. Differences are A − B.
pub fn compare_scores_files(a: &Path, b: &Path) -> Result<String, ScoresError> {
    compare_scores_files_with(a, b, &ReportOptions::default())
}

/// [`compare_scores_files`] with explicit options.
pub fn compare_scores_files_with(
    a: &Path,
    b: &Path,
    options: &ReportOptions,
) -> Result<String, ScoresError> {
    compare_scores(&ScoresFile::read(a)?, &ScoresFile::read(b)?, options)
}

fn pp(diff: f64) -> String {
    format!("{:+.2} pp", 100.0 * diff)
}

/// The text comparison of two parsed score files.
pub fn compare_scores(
    a: &ScoresFile,
    b: &ScoresFile,
    options: &ReportOptions,
) -> Result<String, ScoresError> {
    let m = match_rows(a, b)?;
    let metrics_err = |context: String, source: MetricsError| ScoresError::Mismatch {
        a: a.source.clone(),
        b: b.source.clone(),
        message: format!("{context}: {source}"),
    };
    let mut out = String::new();
    let anomalous = m.labels.iter().filter(|&&l| l).count();
    let _ = writeln!(out, "A: {}", a.source.display());
    let _ = writeln!(out, "B: {}", b.source.display());
    let _ = writeln!(
        out,
        "{} ({} good, {} anomalous); differences are A − B",
        m.how,
        m.labels.len() - anomalous,
        anomalous
    );
    let level = pct(options.bootstrap.confidence);
    for section in sections(&m.categories) {
        let l = pick(&m.labels, &section.rows);
        let sa = pick(&m.a, &section.rows);
        let sb = pick(&m.b, &section.rows);
        let context = format!("{} ({} images)", section.title, section.rows.len());
        let ra = Ranking::new(&l, &sa).map_err(|e| metrics_err(context.clone(), e))?;
        let rb = Ranking::new(&l, &sb).map_err(|e| metrics_err(context.clone(), e))?;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}: {} anomalous vs {} good",
            section.title,
            ra.positives(),
            ra.negatives()
        );
        let _ = writeln!(
            out,
            "  {:<18} {:>8}  {:>8}  {:>10}",
            "metric", "A", "B", "A − B"
        );
        let mut row = |name: String, x: f64, y: f64| {
            let _ = writeln!(out, "  {name:<18} {x:>8.4}  {y:>8.4}  {:>10}", pp(x - y));
        };
        row("AUROC".into(), ra.auroc(), rb.auroc());
        row(
            "Average precision".into(),
            ra.average_precision(),
            rb.average_precision(),
        );
        row("F1-max".into(), ra.f1_max().f1, rb.f1_max().f1);
        for &f in &options.fpr_bounds {
            let ta = ra
                .tpr_at_fpr(f)
                .map_err(|e| metrics_err(context.clone(), e))?;
            let tb = rb
                .tpr_at_fpr(f)
                .map_err(|e| metrics_err(context.clone(), e))?;
            row(format!("TPR @ FPR <= {}", pct(f)), ta.tpr, tb.tpr);
        }
        match delong_test(&l, &sa, &sb) {
            Ok(d) => {
                let (lo, hi) = d
                    .ci(options.bootstrap.confidence)
                    .map_err(|e| metrics_err(context.clone(), e))?;
                let _ = writeln!(
                    out,
                    "  DeLong test of AUROC: {} (SE {:.2} pp, {level} CI [{}, {}]), z = {:.3}, p = {}",
                    pp(d.difference),
                    100.0 * d.std_error,
                    pp(lo),
                    pp(hi),
                    d.z,
                    format_p(d.p_value)
                );
            }
            Err(MetricsError::TooFew { .. }) => {
                let _ = writeln!(
                    out,
                    "  DeLong test of AUROC: n/a (needs at least 2 images of each class)"
                );
            }
            Err(e) => return Err(metrics_err(context.clone(), e)),
        }
        let boot = bootstrap_auroc_diff_ci(&l, &sa, &sb, &options.bootstrap)
            .map_err(|e| metrics_err(context.clone(), e))?;
        let _ = writeln!(
            out,
            "  Paired bootstrap of the AUROC difference: {level} CI [{}, {}], SE {:.2} pp ({})",
            pp(boot.lower),
            pp(boot.upper),
            100.0 * boot.std_error,
            bootstrap_note(&options.bootstrap)
        );
        if section.per_defect && m.has_defect {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "  Per defect type (each against all {} good images):",
                ra.negatives()
            );
            let _ = writeln!(
                out,
                "    {:<20} {:>5}  {:>7}  {:>7}  {:>10}  {:>8}  {:>8}",
                "defect", "n", "AUROC A", "AUROC B", "A − B", "z", "p"
            );
            for (name, rows) in defect_groups(&section.rows, &m.labels, &m.defects) {
                let l = pick(&m.labels, &rows);
                let sa = pick(&m.a, &rows);
                let sb = pick(&m.b, &rows);
                let ctx = format!("{}, defect type {name}", section.title);
                let xa = Ranking::new(&l, &sa).map_err(|e| metrics_err(ctx.clone(), e))?;
                let xb = Ranking::new(&l, &sb).map_err(|e| metrics_err(ctx.clone(), e))?;
                let (z, p) = match delong_test(&l, &sa, &sb) {
                    Ok(d) => (format!("{:.3}", d.z), format_p(d.p_value)),
                    Err(MetricsError::TooFew { .. }) => ("n/a".into(), "n/a".into()),
                    Err(e) => return Err(metrics_err(ctx, e)),
                };
                let _ = writeln!(
                    out,
                    "    {:<20} {:>5}  {:>7.4}  {:>7.4}  {:>10}  {:>8}  {:>8}",
                    name,
                    xa.positives(),
                    xa.auroc(),
                    xb.auroc(),
                    pp(xa.auroc() - xb.auroc()),
                    z,
                    p
                );
            }
        }
    }
    Ok(out)
}
