//! The wide text views of the tables, rendered as Markdown and LaTeX.

use super::stats::*;
use crate::gather::{Experiment, Status};
use crate::published::Published;

/// `text` as LaTeX text: its special characters escaped, ±, −, Δ and × as math.
pub fn latex_escape(text: &str) -> String {
    text.replace('\\', "\\textbackslash{}")
        .replace('&', "\\&")
        .replace('%', "\\%")
        .replace('_', "\\_")
        .replace('#', "\\#")
        .replace("±", "$\\pm$")
        .replace('−', "$-$")
        .replace('Δ', "$\\Delta$")
        .replace('×', "$\\times$")
}

/// A table ready to print: a title, a header and rows of text.
#[derive(Debug, Clone)]
pub struct TextTable {
    pub title: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl TextTable {
    pub fn markdown(&self) -> String {
        let mut s = format!("**{}**\n\n", self.title);
        s.push_str(&format!("| {} |\n", self.header.join(" | ")));
        let align: Vec<&str> = self
            .header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---" } else { "---:" })
            .collect();
        s.push_str(&format!("| {} |\n", align.join(" | ")));
        for r in &self.rows {
            s.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        for n in &self.notes {
            s.push_str(&format!("\n{n}\n"));
        }
        s
    }

    /// A LaTeX `table` (`table*` when it is too wide for one column) with `\caption` and
    /// `\label`, booktabs rules, `**bold**` cells as `\textbf`, real minus signs.
    pub fn latex(&self) -> String {
        let esc = latex_escape;
        let cell = |t: &str| match t.strip_prefix("**").and_then(|t| t.strip_suffix("**")) {
            Some(inner) => format!("\\textbf{{{}}}", esc(inner)),
            None => esc(t),
        };
        let wide = self.header.len() > 5;
        let env = if wide { "table*" } else { "table" };
        let label: String = self
            .title
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .split('-')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        let mut s = format!("\\begin{{{env}}}[t]\n\\centering\n\\small\n");
        s.push_str("\\setlength{\\tabcolsep}{4pt}\n");
        s.push_str(&format!(
            "\\caption{{{}{}}}\n\\label{{tab:{label}}}\n",
            esc(&self.title),
            if self.notes.is_empty() {
                String::new()
            } else {
                format!(". {}", esc(&self.notes.join(" ")))
            }
        ));
        s.push_str(&format!(
            "\\begin{{tabular}}{{l{}}}\n\\toprule\n",
            "r".repeat(self.header.len().saturating_sub(1))
        ));
        let header: Vec<String> = self.header.iter().map(|h| esc(h)).collect();
        s.push_str(&format!("{} \\\\\n\\midrule\n", header.join(" & ")));
        for (i, r) in self.rows.iter().enumerate() {
            if i + 1 == self.rows.len() && r[0] == MEAN_ROW && self.rows.len() > 1 {
                s.push_str("\\midrule\n");
            }
            let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
            s.push_str(&format!("{} \\\\\n", cells.join(" & ")));
        }
        s.push_str(&format!("\\bottomrule\n\\end{{tabular}}\n\\end{{{env}}}\n"));
        s
    }
}

/// Rows of a dataset: its categories, then the mean when there is more than one.
pub(super) fn row_labels(exp: &Experiment, dataset: &str) -> Vec<String> {
    let mut rows = exp.categories(dataset);
    if rows.len() > 1 {
        rows.push(MEAN_ROW.into());
    }
    rows
}

/// The AUROC table of one dataset, with the published numbers as extra columns.
pub fn auroc_table(
    exp: &Experiment,
    dataset: &str,
    metric: Metric,
    published: &Published,
) -> TextTable {
    let variants = exp.variants();
    let pub_name = exp.plan.published.get(dataset);
    let methods = pub_name
        .filter(|_| metric.is_published())
        .map(|d| published.methods(d))
        .unwrap_or_default();
    let mut header = vec!["category".to_string()];
    header.extend(variants.iter().map(|v| display_name(v)));
    header.extend(methods.iter().map(|m| format!("paper: {m}")));
    let rows = row_labels(exp, dataset)
        .into_iter()
        .map(|c| {
            let mut row = vec![c.clone()];
            let cells: Vec<Option<Cell>> = variants
                .iter()
                .map(|v| cell(exp, dataset, &c, v, metric))
                .collect();
            // The best mean of the row in bold (every tie).
            let best = cells
                .iter()
                .flatten()
                .map(|x| x.mean)
                .fold(f64::NEG_INFINITY, f64::max);
            for x in &cells {
                row.push(match x {
                    Some(x) if cells.iter().flatten().count() > 1 && x.mean == best => {
                        format!("**{}**", x.format())
                    }
                    Some(x) => x.format(),
                    None => "–".into(),
                });
            }
            for m in &methods {
                // A one-category dataset's row is also its mean.
                let value = pub_name.and_then(|d| {
                    published.get(d, &c, m).or_else(|| {
                        (exp.categories(dataset).len() == 1)
                            .then(|| published.get(d, MEAN_ROW, m))
                            .flatten()
                    })
                });
                row.push(value.map_or("n/a".into(), |v| format!("{v:.2}")));
            }
            row
        })
        .collect();
    let seeds = seeds_note(exp, dataset);
    let mut notes = vec![format!(
        "Mean ± sd over seeds ({seeds}); – = no finished run.{}",
        if methods.is_empty() {
            String::new()
        } else {
            " Published numbers are the maximum test AUROC over the training (the paper's \
             protocol) and come from other data and backbones unless the dataset matches; \
             n/a = not published."
                .to_string()
        }
    )];
    if let Some(sources) = pub_name.map(|d| published.sources(d))
        && !sources.is_empty()
    {
        notes.push(format!("Sources: {}", sources.join("; ")));
    }
    TextTable {
        title: format!("{dataset}: {}", metric.title(!exp.flows().is_empty())),
        header,
        rows,
        notes,
    }
}

fn seeds_note(exp: &Experiment, dataset: &str) -> String {
    let mut seeds: Vec<i64> = exp
        .runs
        .iter()
        .filter(|r| r.dataset == dataset && r.status == Status::Complete)
        .map(|r| r.seed)
        .collect();
    seeds.sort();
    seeds.dedup();
    match seeds.len() {
        0 => "none finished".into(),
        1 => format!("1 seed: {}", seeds[0]),
        n => format!("{n} seeds"),
    }
}

/// Every attention variant against its vanilla DifferNet, per category.
pub fn comparison_table(exp: &Experiment, dataset: &str, metric: Metric) -> Option<TextTable> {
    let pairs: Vec<(String, String)> = exp
        .variants()
        .into_iter()
        .filter_map(|v| Some((baseline_of(exp, &v)?, v)))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut header = vec!["category".to_string()];
    for (b, v) in &pairs {
        header.push(format!("Δ {} − {} (pp)", display_name(v), display_name(b)));
        header.push("95 % CI".into());
        header.push("p".into());
        header.push("p (Holm)".into());
    }
    let labels = row_labels(exp, dataset);
    let grid: Vec<Vec<Option<Comparison>>> = labels
        .iter()
        .map(|c| {
            pairs
                .iter()
                .map(|(b, v)| compare(exp, dataset, c, v, b, metric))
                .collect()
        })
        .collect();
    let family: Vec<Option<&Comparison>> = grid.iter().flatten().map(Option::as_ref).collect();
    let holm = holm_of(&family);
    // The family's size: the comparisons that have a p-value.
    let m = holm.iter().flatten().count();
    let mut holm = holm.into_iter();
    let mut tests = Vec::new();
    let rows = labels
        .into_iter()
        .zip(&grid)
        .map(|(c, comparisons)| {
            let mut row = vec![c];
            for x in comparisons {
                let adjusted = holm.next().flatten();
                match x {
                    Some(x) => {
                        if !tests.contains(&x.test) {
                            tests.push(x.test);
                        }
                        row.extend([
                            x.difference_pp(),
                            x.interval_pp(),
                            x.p_text(),
                            holm_text(adjusted),
                        ]);
                    }
                    None => row.extend(["–".to_string(), "–".into(), "–".into(), "–".into()]),
                }
            }
            row
        })
        .collect();
    Some(TextTable {
        title: format!(
            "{dataset}: attention vs vanilla, {} difference in percentage points",
            metric.key()
        ),
        header,
        rows,
        notes: vec![format!(
            "Difference in percentage points, its 95 % interval and two-sided p-value; test: \
             {}. {} – = not enough finished runs.",
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(", ")
            },
            holm_note(m)
        )],
    })
}

/// Variants above which the headline puts one variant per row (a study of many variants);
/// up to it, one dataset per row with each variant's two columns.
const HEADLINE_WIDE_VARIANTS: usize = 4;

/// The README's headline table: each dataset (its category, or the mean over its
/// categories), each variant's `metric` (mean ± sd) and, for every attention variant, its
/// difference from vanilla with the raw and the Holm-adjusted p-value (the family: every
/// comparison of the table). One dataset per row; for more than
/// [`HEADLINE_WIDE_VARIANTS`] variants, one variant per row and a cell per dataset.
pub fn headline_table(exp: &Experiment, metric: Metric) -> TextTable {
    let variants = exp.variants();
    let datasets: Vec<(String, String, String)> = exp
        .datasets()
        .into_iter()
        .map(|d| {
            let categories = exp.categories(&d);
            let (label, row_of) = match categories.as_slice() {
                [one] => (format!("{d}: {one}"), one.clone()),
                many => (format!("{d}: mean of {}", many.len()), MEAN_ROW.to_string()),
            };
            (d, label, row_of)
        })
        .collect();
    // Every comparison first: the Holm family is the whole table. Indexed [dataset][variant].
    let comparisons: Vec<Vec<Option<Comparison>>> = datasets
        .iter()
        .map(|(d, _, row_of)| {
            variants
                .iter()
                .map(|v| baseline_of(exp, v).and_then(|b| compare(exp, d, row_of, v, &b, metric)))
                .collect()
        })
        .collect();
    let family: Vec<Option<&Comparison>> =
        comparisons.iter().flatten().map(Option::as_ref).collect();
    let holm: Vec<Option<f64>> = holm_of(&family);
    let m = holm.iter().flatten().count();
    let mut tests = Vec::new();
    // The cells of dataset `i`, variant `j`: its value, and its Δ where it has a baseline.
    let value = |i: usize, j: usize| -> String {
        let (d, _, row_of) = &datasets[i];
        cell(exp, d, row_of, &variants[j], metric).map_or("–".into(), |x| x.format())
    };
    let mut delta = |i: usize, j: usize| -> Option<String> {
        baseline_of(exp, &variants[j]).map(|_| match &comparisons[i][j] {
            Some(c) => {
                if !tests.contains(&c.test) {
                    tests.push(c.test);
                }
                format!(
                    "{} ({}; {})",
                    c.difference_pp(),
                    c.p_text(),
                    holm_text(holm[i * variants.len() + j])
                )
            }
            None => "–".into(),
        })
    };
    let (header, rows) = if variants.len() > HEADLINE_WIDE_VARIANTS {
        let mut header = vec!["variant".to_string()];
        header.extend(datasets.iter().map(|(_, label, _)| label.clone()));
        let rows = (0..variants.len())
            .map(|j| {
                let mut row = vec![display_name(&variants[j])];
                for i in 0..datasets.len() {
                    row.push(delta(i, j).unwrap_or_else(|| value(i, j)));
                }
                row
            })
            .collect();
        (header, rows)
    } else {
        let mut header = vec!["dataset".to_string()];
        for v in &variants {
            match baseline_of(exp, v) {
                None => header.push(display_name(v)),
                Some(_) => {
                    header.push(format!("+ {}", display_name(v)));
                    header.push(format!("Δ {} (p; Holm)", display_name(v)));
                }
            }
        }
        let rows = (0..datasets.len())
            .map(|i| {
                let mut row = vec![datasets[i].1.clone()];
                for j in 0..variants.len() {
                    row.push(value(i, j));
                    row.extend(delta(i, j));
                }
                row
            })
            .collect();
        (header, rows)
    };
    let what = if !exp.flows().is_empty() {
        "Each flow's row without attention: mean ± sd over seeds; every other row: Δ = variant \
         − the same flow without attention in percentage points, with"
    } else if variants.len() > HEADLINE_WIDE_VARIANTS {
        "DifferNet's row: mean ± sd over seeds; every other row: Δ = variant − DifferNet in \
         percentage points, with"
    } else {
        "Mean ± sd over seeds; Δ = variant − DifferNet in percentage points, with"
    };
    TextTable {
        title: format!(
            "{}: {}",
            exp.plan.experiment,
            metric.title(!exp.flows().is_empty())
        ),
        header,
        rows,
        notes: vec![format!(
            "{what} the two-sided p-value of the {} and, after the semicolon, {}",
            if tests.is_empty() {
                "comparison".to_string()
            } else {
                tests.join(" / ")
            },
            holm_note(m).trim_start_matches("p (Holm): ")
        )],
    }
}
