//! Score files and the text reports of `adn metrics`.
//!
//! A score file is CSV with a header row. It must name the columns `label` (0/1 or
//! true/false; 1 = anomalous) and `score` (finite, higher = more anomalous); `path`, `defect`
//! and `category` are optional and other columns are ignored. A run's `scores.csv`
//! (`path,category,defect,label,score`) works as it is. Fields may be quoted (`"a,b"`, with
//! `""` for a quote inside); a quoted field cannot span lines.
//!
//! - [`report_scores_file`]: every metric of one file, overall and per defect type (each
//!   defect type against all good images), per category when the file holds several.
//! - [`compare_scores_files`]: two files scored on the same images (rows matched by `path`
//!   when both files have it, else by row order with equal labels): both sets of metrics,
//!   DeLong's test and a paired bootstrap interval of the AUROC difference.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::roc::{Ranking, RocCurve};
use crate::stats::{
    BootstrapConfig, bootstrap_auroc_ci, bootstrap_auroc_diff_ci, delong_auroc, delong_test,
    format_p,
};
use crate::{BootstrapCi, DeLongAuroc, F1Max, MetricsError, TprAtFpr};

/// Why a score file could not be read, or its report not made. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScoresError {
    // The io error is part of the message, not a `source`, so that error chains print it once.
    #[error("{}: cannot read: {error}", file.display())]
    Io {
        file: PathBuf,
        error: std::io::Error,
    },
    /// A problem on one line (1-based) of the file.
    #[error("{}:{line}: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        message: String,
    },
    /// A problem with the file as a whole (e.g. no data rows).
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
    /// A metric failed on a group of the file's images (e.g. only one class present).
    #[error("{}: {context}: {error}", file.display())]
    Metrics {
        file: PathBuf,
        context: String,
        error: MetricsError,
    },
    /// Two files that should hold the same images do not.
    #[error("{} vs {}: {message}", a.display(), b.display())]
    Mismatch {
        a: PathBuf,
        b: PathBuf,
        message: String,
    },
}

/// One data row of a score file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// 1-based line number in the file.
    pub line: usize,
    pub path: Option<String>,
    pub category: Option<String>,
    pub defect: Option<String>,
    /// `true` for an anomalous image.
    pub label: bool,
    pub score: f64,
}

/// A parsed score file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoresFile {
    /// Where it was read from (used in error messages and reports).
    pub source: PathBuf,
    pub rows: Vec<ScoreRow>,
    pub has_path: bool,
    pub has_category: bool,
    pub has_defect: bool,
}

/// What a report computes beyond the fixed metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Bootstrap settings for AUROC intervals.
    pub bootstrap: BootstrapConfig,
    /// FPR bounds at which the TPR is reported.
    pub fpr_bounds: Vec<f64>,
    /// Whether to list the ROC curve points (scikit-learn's `drop_intermediate=True` points).
    pub roc_points: bool,
}

impl Default for ReportOptions {
    /// Bootstrap 2,000 resamples at 95% with seed 0; TPR at FPR 1%, 5% and 10%; ROC points on.
    fn default() -> Self {
        ReportOptions {
            bootstrap: BootstrapConfig::default(),
            fpr_bounds: vec![0.01, 0.05, 0.10],
            roc_points: true,
        }
    }
}

/// Splits one CSV line into fields, honouring double quotes.
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    current.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                current.push(c);
            }
        } else if c == '"' && current.trim().is_empty() {
            current.clear();
            in_quotes = true;
        } else if c == ',' {
            fields.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if in_quotes {
        return Err("unterminated quoted field (a quoted field cannot span lines)".into());
    }
    fields.push(current);
    Ok(fields)
}

fn parse_label(field: &str) -> Result<bool, String> {
    match field.trim().to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!(
            "label must be 0/1 or true/false (1 = anomalous), got `{other}`"
        )),
    }
}

fn parse_score(field: &str) -> Result<f64, String> {
    let field = field.trim();
    let value: f64 = field
        .parse()
        .map_err(|_| format!("score `{field}` is not a number"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!("score `{field}` is not finite"))
    }
}

impl ScoresFile {
    /// Reads and parses a score file.
    pub fn read(path: &Path) -> Result<Self, ScoresError> {
        let text = std::fs::read_to_string(path).map_err(|error| ScoresError::Io {
            file: path.to_path_buf(),
            error,
        })?;
        Self::parse(&text, path)
    }

    /// Parses score-file text; `source` names it in errors.
    pub fn parse(text: &str, source: &Path) -> Result<Self, ScoresError> {
        let file = source.to_path_buf();
        let parse_err = |line: usize, message: String| ScoresError::Parse {
            file: file.clone(),
            line,
            message,
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((header_line, header)) = lines.next() else {
            return Err(ScoresError::Invalid {
                file,
                message: "empty file: expected a header with columns `label` and `score`".into(),
            });
        };
        let names: Vec<String> = split_csv_line(header)
            .map_err(|m| parse_err(header_line, m))?
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let mut columns: HashMap<&str, usize> = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            if columns.insert(name.as_str(), i).is_some() && !name.is_empty() {
                return Err(parse_err(
                    header_line,
                    format!("column `{name}` appears twice in the header"),
                ));
            }
        }
        let (Some(&label_col), Some(&score_col)) = (columns.get("label"), columns.get("score"))
        else {
            return Err(parse_err(
                header_line,
                format!(
                    "the header must name columns `label` and `score` (found: {})",
                    names.join(", ")
                ),
            ));
        };
        let path_col = columns.get("path").copied();
        let category_col = columns.get("category").copied();
        let defect_col = columns.get("defect").copied();
        let mut rows = Vec::new();
        for (line, text) in lines {
            let fields = split_csv_line(text).map_err(|m| parse_err(line, m))?;
            if fields.len() != names.len() {
                return Err(parse_err(
                    line,
                    format!(
                        "expected {} fields as in the header, found {}",
                        names.len(),
                        fields.len()
                    ),
                ));
            }
            let optional = |col: Option<usize>| col.map(|c| fields[c].trim().to_string());
            rows.push(ScoreRow {
                line,
                path: optional(path_col),
                category: optional(category_col),
                defect: optional(defect_col),
                label: parse_label(&fields[label_col]).map_err(|m| parse_err(line, m))?,
                score: parse_score(&fields[score_col]).map_err(|m| parse_err(line, m))?,
            });
        }
        if rows.is_empty() {
            return Err(ScoresError::Invalid {
                file,
                message: "no data rows after the header".into(),
            });
        }
        Ok(ScoresFile {
            source: source.to_path_buf(),
            rows,
            has_path: path_col.is_some(),
            has_category: category_col.is_some(),
            has_defect: defect_col.is_some(),
        })
    }

    /// Labels in row order.
    pub fn labels(&self) -> Vec<bool> {
        self.rows.iter().map(|r| r.label).collect()
    }

    /// Scores in row order.
    pub fn scores(&self) -> Vec<f64> {
        self.rows.iter().map(|r| r.score).collect()
    }
}

/// A group of images a report covers: a title and row indices.
struct Section {
    title: String,
    rows: Vec<usize>,
    per_defect: bool,
}

/// The whole file, or (with several categories) all pooled plus one section per category.
fn sections(categories: &[Option<String>]) -> Vec<Section> {
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
fn defect_groups(
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

fn pick<T: Copy>(values: &[T], rows: &[usize]) -> Vec<T> {
    rows.iter().map(|&i| values[i]).collect()
}

/// Every metric of one group of images.
struct GroupMetrics {
    positives: usize,
    negatives: usize,
    auroc: f64,
    bootstrap: BootstrapCi,
    /// `None` with fewer than two images of a class.
    delong: Option<DeLongAuroc>,
    average_precision: f64,
    f1: F1Max,
    tpr: Vec<TprAtFpr>,
    roc: RocCurve,
}

fn group_metrics(
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

fn pct(fraction: f64) -> String {
    let p = 100.0 * fraction;
    if p == p.round() {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

fn threshold(t: f64) -> String {
    if t.is_infinite() {
        "inf".to_string()
    } else {
        format!("{t}")
    }
}

fn bootstrap_note(cfg: &BootstrapConfig) -> String {
    format!(
        "bootstrap: {} stratified resamples, seed {}",
        cfg.resamples, cfg.seed
    )
}

fn write_group_block(out: &mut String, m: &GroupMetrics, options: &ReportOptions) {
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

fn write_roc(out: &mut String, roc: &RocCurve) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_and_quotes() {
        assert_eq!(split_csv_line("a,b,,c").unwrap(), vec!["a", "b", "", "c"]);
        assert_eq!(
            split_csv_line(r#""x,y",1,"say ""hi""""#).unwrap(),
            vec!["x,y", "1", r#"say "hi""#]
        );
        assert!(split_csv_line(r#""open,1"#).is_err());
    }

    #[test]
    fn labels_and_scores() {
        assert_eq!(parse_label(" 1 "), Ok(true));
        assert_eq!(parse_label("False"), Ok(false));
        assert!(parse_label("2").is_err());
        assert_eq!(parse_score("1e-3"), Ok(1e-3));
        assert!(parse_score("nan").is_err());
        assert!(parse_score("inf").is_err());
        assert!(parse_score("x").is_err());
    }
}
