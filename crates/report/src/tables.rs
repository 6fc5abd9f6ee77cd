//! The experiment's tables: image AUROC per dataset × category × variant (mean ± sd over
//! seeds), each attention variant against vanilla DifferNet (difference, 95 % interval,
//! p-value), and the published numbers beside them. Numbers are computed here; polars holds
//! the long-form tables written as Parquet and CSV; Markdown and LaTeX are the wide views.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::*;

use crate::gather::{Experiment, Run, Status, read_scores};
use crate::published::Published;

/// Which AUROC of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// After the last meta-epoch: the headline, no model selection.
    Last,
    /// Maximum over the evaluations: selected on the test set, as DifferNet-style papers
    /// report it.
    Best,
}

impl Metric {
    pub fn key(self) -> &'static str {
        match self {
            Metric::Last => "auroc_last",
            Metric::Best => "auroc_best",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::Last => "image AUROC (%) after the last epoch (no model selection)",
            Metric::Best => {
                "image AUROC (%), best evaluation selected on the test set (the paper's protocol)"
            }
        }
    }

    pub fn of(self, run: &Run) -> Option<f64> {
        let m = run.metrics.as_ref()?;
        Some(match self {
            Metric::Last => m.auroc_last,
            Metric::Best => m.auroc_best,
        })
    }
}

/// Mean and sample standard deviation over seeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
}

impl Cell {
    pub fn of(values: &[f64]) -> Option<Cell> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        Some(Cell { n, mean, sd })
    }

    /// In percent: `92.41 ± 0.30`, or `92.41` for one seed.
    pub fn format(&self) -> String {
        if self.n > 1 {
            format!("{:.2} ± {:.2}", 100.0 * self.mean, 100.0 * self.sd)
        } else {
            format!("{:.2}", 100.0 * self.mean)
        }
    }
}

/// A variant against vanilla on the same category.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub n: usize,
    /// Mean difference (variant − vanilla), as a fraction.
    pub difference: f64,
    pub ci: (f64, f64),
    pub p_value: f64,
    /// `paired t over seeds` or `DeLong (one seed)`.
    pub test: &'static str,
}

impl Comparison {
    pub fn format(&self) -> String {
        if self.p_value.is_nan() {
            return format!(
                "{:+.2} pp on all {} seeds, p = n/a",
                100.0 * self.difference,
                self.n
            );
        }
        format!(
            "{:+.2} pp [{:+.2}, {:+.2}], p = {}",
            100.0 * self.difference,
            100.0 * self.ci.0,
            100.0 * self.ci.1,
            adn_metrics::stats::format_p(self.p_value)
        )
    }
}

/// The row label of the per-dataset average.
pub const MEAN_ROW: &str = "mean";

/// Per seed, the metric of each category of `dataset` for `variant`, averaged over the
/// categories; only seeds where every category finished count.
fn category_mean_by_seed(
    exp: &Experiment,
    dataset: &str,
    variant: &str,
    metric: Metric,
) -> Vec<(i64, f64)> {
    let categories = exp.categories(dataset);
    let mut seeds: Vec<i64> = exp
        .runs
        .iter()
        .filter(|r| r.dataset == dataset && r.variant == variant)
        .map(|r| r.seed)
        .collect();
    seeds.sort();
    seeds.dedup();
    seeds
        .into_iter()
        .filter_map(|seed| {
            let values: Option<Vec<f64>> = categories
                .iter()
                .map(|c| {
                    exp.complete(dataset, c, variant)
                        .into_iter()
                        .find(|r| r.seed == seed)
                        .and_then(|r| metric.of(r))
                })
                .collect();
            let values = values?;
            Some((seed, values.iter().sum::<f64>() / values.len() as f64))
        })
        .collect()
}

/// Seed → metric of one cell (a category, or [`MEAN_ROW`]).
fn by_seed(
    exp: &Experiment,
    dataset: &str,
    category: &str,
    variant: &str,
    metric: Metric,
) -> Vec<(i64, f64)> {
    if category == MEAN_ROW {
        return category_mean_by_seed(exp, dataset, variant, metric);
    }
    exp.complete(dataset, category, variant)
        .into_iter()
        .filter_map(|r| Some((r.seed, metric.of(r)?)))
        .collect()
}

/// The cell of one dataset × category × variant.
pub fn cell(
    exp: &Experiment,
    dataset: &str,
    category: &str,
    variant: &str,
    metric: Metric,
) -> Option<Cell> {
    let values: Vec<f64> = by_seed(exp, dataset, category, variant, metric)
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    Cell::of(&values)
}

/// The vanilla variant a variant is compared with: same other axes, attention `none`.
pub fn baseline_of(exp: &Experiment, variant: &str) -> Option<String> {
    let run = exp.runs.iter().find(|r| r.variant == variant)?;
    if run.attention == "none" {
        return None;
    }
    exp.runs
        .iter()
        .find(|r| r.attention == "none" && r.context == run.context)
        .map(|r| r.variant.clone())
}

/// `variant` against `baseline` on one cell: a paired t-test over the seeds both finished
/// when there are at least two, otherwise DeLong's test on the test images of the one seed.
pub fn compare(
    exp: &Experiment,
    dataset: &str,
    category: &str,
    variant: &str,
    baseline: &str,
    metric: Metric,
) -> Option<Comparison> {
    let a = by_seed(exp, dataset, category, variant, metric);
    let b = by_seed(exp, dataset, category, baseline, metric);
    let pairs: Vec<(f64, f64)> = a
        .iter()
        .filter_map(|(s, x)| b.iter().find(|(t, _)| t == s).map(|(_, y)| (*x, *y)))
        .collect();
    if pairs.len() >= 2 {
        let (xs, ys): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let c = match adn_metrics::paired_comparison(&xs, &ys) {
            Ok(c) => c,
            // The same non-zero difference on every seed: no p-value exists; say so.
            Err(adn_metrics::MetricsError::ZeroVariance(_)) => {
                let d = xs[0] - ys[0];
                return Some(Comparison {
                    n: xs.len(),
                    difference: d,
                    ci: (d, d),
                    p_value: f64::NAN,
                    test: "paired over seeds, identical difference on every seed (no p-value)",
                });
            }
            Err(_) => return None,
        };
        return Some(Comparison {
            n: c.n,
            difference: c.mean_difference,
            ci: c.ci(0.95).ok()?,
            p_value: c.p_value,
            test: "paired t over seeds",
        });
    }
    // One seed: DeLong on the same images (last-epoch scores only: scores.csv holds those).
    if pairs.len() != 1 || metric != Metric::Last || category == MEAN_ROW {
        return None;
    }
    let ra = exp
        .complete(dataset, category, variant)
        .into_iter()
        .next()?;
    let rb = exp
        .complete(dataset, category, baseline)
        .into_iter()
        .find(|r| r.seed == ra.seed)?;
    let (sa, sb) = (read_scores(ra).ok()?, read_scores(rb).ok()?);
    if sa.labels != sb.labels {
        return None;
    }
    let t = adn_metrics::delong_test(&sa.labels, &sa.scores, &sb.scores).ok()?;
    Some(Comparison {
        n: 1,
        difference: t.difference,
        ci: t.ci(0.95).ok()?,
        p_value: t.p_value,
        test: "DeLong (one seed)",
    })
}

/// How variants are named in tables and figures.
pub fn display_name(variant: &str) -> String {
    let (attention, rest) = match variant.split_once(' ') {
        Some((a, r)) => (a, format!(" {r}")),
        None => (variant, String::new()),
    };
    let name = match attention {
        "none" => "DifferNet",
        "se" => "SE",
        "cbam" => "CBAM",
        "cbam-official" => "CBAM (official)",
        other => other,
    };
    format!("{name}{rest}")
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
fn row_labels(exp: &Experiment, dataset: &str) -> Vec<String> {
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
    let methods = pub_name.map(|d| published.methods(d)).unwrap_or_default();
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

/// Files written by [`write_tables`].
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// All Markdown tables, in order, for printing.
    pub markdown: String,
}

fn write_text(path: &Path, text: &str, written: &mut Written) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    written.files.push(path.to_path_buf());
    Ok(())
}

fn write_frame(path: &Path, df: &mut DataFrame, written: &mut Written) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let file =
        fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            ParquetWriter::new(file)
                .finish(df)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        _ => {
            CsvWriter::new(file)
                .finish(df)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    written.files.push(path.to_path_buf());
    Ok(())
}

/// One row per planned run: status, metrics, times and axis values.
pub fn runs_frame(exp: &Experiment) -> Result<DataFrame> {
    let runs = &exp.runs;
    let s = |f: &dyn Fn(&Run) -> String| runs.iter().map(f).collect::<Vec<String>>();
    let of = |f: &dyn Fn(&Run) -> Option<f64>| runs.iter().map(f).collect::<Vec<Option<f64>>>();
    let oi = |f: &dyn Fn(&Run) -> Option<i64>| runs.iter().map(f).collect::<Vec<Option<i64>>>();
    let mut columns = vec![
        Column::new("run_id".into(), s(&|r| r.run_id.clone())),
        Column::new("dataset".into(), s(&|r| r.dataset.clone())),
        Column::new("category".into(), s(&|r| r.category.clone())),
        Column::new("variant".into(), s(&|r| r.variant.clone())),
        Column::new("attention".into(), s(&|r| r.attention.clone())),
        Column::new(
            "seed".into(),
            runs.iter().map(|r| r.seed).collect::<Vec<i64>>(),
        ),
        Column::new("status".into(), s(&|r| r.status.name().to_string())),
        Column::new(
            "error".into(),
            runs.iter().map(|r| r.error.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "auroc_last".into(),
            of(&|r| r.metrics.as_ref().map(|m| m.auroc_last)),
        ),
        Column::new(
            "auroc_best".into(),
            of(&|r| r.metrics.as_ref().map(|m| m.auroc_best)),
        ),
        Column::new(
            "auroc_best_epoch".into(),
            oi(&|r| r.metrics.as_ref().map(|m| m.auroc_best_epoch as i64)),
        ),
        Column::new(
            "auroc_min_loss".into(),
            of(&|r| r.metrics.as_ref().map(|m| m.auroc_min_loss)),
        ),
        Column::new(
            "final_train_loss".into(),
            of(&|r| {
                r.metrics
                    .as_ref()
                    .and_then(|m| m.trajectory.last().map(|p| p.train_loss))
            }),
        ),
        Column::new(
            "wall_total_s".into(),
            of(&|r| r.manifest.as_ref().map(|m| m.wall_total)),
        ),
        Column::new(
            "wall_features_s".into(),
            of(&|r| r.manifest.as_ref().map(|m| m.wall_features)),
        ),
        Column::new(
            "wall_train_s".into(),
            of(&|r| r.manifest.as_ref().map(|m| m.wall_train)),
        ),
        Column::new(
            "cache_hits".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.cache_hits)),
        ),
        Column::new(
            "cache_misses".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.cache_misses)),
        ),
        Column::new(
            "feature_dim".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.feature_dim)),
        ),
        Column::new(
            "train_images".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.train_images)),
        ),
        Column::new(
            "test_images".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.test_images)),
        ),
        Column::new(
            "device".into(),
            runs.iter()
                .map(|r| r.manifest.as_ref().map(|m| m.device.clone()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "threads".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.threads)),
        ),
        Column::new(
            "backbone_weights".into(),
            runs.iter()
                .map(|r| r.manifest.as_ref().map(|m| m.backbone_weights.clone()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "git_commit".into(),
            runs.iter()
                .map(|r| r.manifest.as_ref().map(|m| m.git_commit.clone()))
                .collect::<Vec<_>>(),
        ),
    ];
    for key in &exp.plan.axis_keys {
        columns.push(Column::new(
            format!("axis:{key}").into(),
            runs.iter()
                .map(|r| r.axes.get(key).cloned())
                .collect::<Vec<_>>(),
        ));
    }
    Ok(DataFrame::new_infer_height(columns)?)
}

/// Long form of the AUROC tables: one row per dataset × category × variant × metric.
fn summary_frame(exp: &Experiment, published: &Published) -> Result<DataFrame> {
    let (mut ds, mut cat, mut var, mut met) = (vec![], vec![], vec![], vec![]);
    let (mut n, mut mean, mut sd) = (vec![], vec![], vec![]);
    let (mut base, mut diff, mut lo, mut hi, mut p, mut test) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut paper: Vec<Option<f64>> = vec![];
    for dataset in exp.datasets() {
        let pub_name = exp.plan.published.get(&dataset);
        for c in row_labels(exp, &dataset) {
            for v in exp.variants() {
                for metric in [Metric::Last, Metric::Best] {
                    let x = cell(exp, &dataset, &c, &v, metric);
                    let b = baseline_of(exp, &v);
                    let cmp = b
                        .as_ref()
                        .and_then(|b| compare(exp, &dataset, &c, &v, b, metric));
                    ds.push(dataset.clone());
                    cat.push(c.clone());
                    var.push(v.clone());
                    met.push(metric.key().to_string());
                    n.push(x.map_or(0, |x| x.n as i64));
                    mean.push(x.map(|x| x.mean));
                    sd.push(x.map(|x| x.sd));
                    base.push(b.clone());
                    diff.push(cmp.as_ref().map(|c| c.difference));
                    lo.push(cmp.as_ref().map(|c| c.ci.0));
                    hi.push(cmp.as_ref().map(|c| c.ci.1));
                    p.push(cmp.as_ref().map(|c| c.p_value));
                    test.push(cmp.as_ref().map(|c| c.test.to_string()));
                    let method = published.method_of(&v);
                    paper.push(
                        pub_name
                            .zip(method)
                            .and_then(|(d, m)| published.get(d, &c, &m))
                            .map(|v| v / 100.0),
                    );
                }
            }
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("dataset".into(), ds),
        Column::new("category".into(), cat),
        Column::new("variant".into(), var),
        Column::new("metric".into(), met),
        Column::new("n_seeds".into(), n),
        Column::new("mean".into(), mean),
        Column::new("sd".into(), sd),
        Column::new("baseline".into(), base),
        Column::new("diff_vs_baseline".into(), diff),
        Column::new("diff_ci_low".into(), lo),
        Column::new("diff_ci_high".into(), hi),
        Column::new("p_value".into(), p),
        Column::new("test".into(), test),
        Column::new("published".into(), paper),
    ])?)
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
    let mut tex = String::new();
    for metric in [Metric::Last, Metric::Best] {
        for dataset in exp.datasets() {
            let t = auroc_table(exp, &dataset, metric, published);
            md.push_str(&t.markdown());
            md.push('\n');
            tex.push_str(&t.latex());
            tex.push('\n');
            if let Some(t) = comparison_table(exp, &dataset, metric) {
                md.push_str(&t.markdown());
                md.push('\n');
                tex.push_str(&t.latex());
                tex.push('\n');
            }
        }
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
    write_text(&dir.join("tables.md"), &md, &mut written)?;
    write_text(&dir.join("tables.tex"), &tex, &mut written)?;
    written.markdown = md;
    Ok(written)
}
