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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::MetricsError;
use crate::stats::BootstrapConfig;

mod compare;
mod report;

pub use compare::{compare_scores, compare_scores_files, compare_scores_files_with};
pub use report::{report_scores, report_scores_file, report_scores_file_with};

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
