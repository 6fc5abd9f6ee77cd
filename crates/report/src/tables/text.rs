//! The wide text views of the tables, rendered as Markdown and LaTeX.

use super::stats::*;
use crate::gather::{Experiment, Status};
use crate::published::Published;

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

    pub fn latex(&self) -> String {
        let esc = |t: &str| {
            t.replace('\\', "\\textbackslash{}")
                .replace('&', "\\&")
                .replace('%', "\\%")
                .replace('_', "\\_")
                .replace('#', "\\#")
                .replace("±", "$\\pm$")
                .replace('−', "$-$")
        };
        let mut s = format!("% {}\n", self.title);
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
            let cells: Vec<String> = r.iter().map(|c| esc(c)).collect();
            s.push_str(&format!("{} \\\\\n", cells.join(" & ")));
        }
        s.push_str("\\bottomrule\n\\end{tabular}\n");
        for n in &self.notes {
            s.push_str(&format!("% {}\n", esc(n)));
        }
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
            for v in &variants {
                row.push(
                    cell(exp, dataset, &c, v, metric)
                        .map(|x| x.format())
                        .unwrap_or_else(|| "–".into()),
                );
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
        title: format!("{dataset}: {}", metric.title()),
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
    header.extend(
        pairs
            .iter()
            .map(|(b, v)| format!("{} − {}", display_name(v), display_name(b))),
    );
    let mut tests = Vec::new();
    let rows = row_labels(exp, dataset)
        .into_iter()
        .map(|c| {
            let mut row = vec![c.clone()];
            for (b, v) in &pairs {
                match compare(exp, dataset, &c, v, b, metric) {
                    Some(x) => {
                        if !tests.contains(&x.test) {
                            tests.push(x.test);
                        }
                        row.push(x.format());
                    }
                    None => row.push("–".into()),
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
            "Difference [95 % interval], two-sided p-value; test: {}. – = not enough finished \
             runs.",
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(", ")
            }
        )],
    })
}
