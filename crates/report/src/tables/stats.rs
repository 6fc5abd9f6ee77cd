//! The numbers of the tables: a cell (mean ± sd over seeds), a variant against its vanilla
//! baseline (difference, interval, p), and the mean row over categories.

use crate::gather::{Experiment, Run, read_scores};

/// Which number of a run a table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// After the last meta-epoch: the headline, no model selection.
    Last,
    /// Maximum over the evaluations: selected on the test set, as DifferNet-style papers
    /// report it.
    Best,
    /// Pixel AUROC of DifferNet's anomaly map (last model), where the test set has masks.
    PixelAuroc,
    /// AUPRO of the same map up to 30 % FPR.
    Aupro,
    /// Fraction of defects whose map peaks inside the mask.
    PeakInMask,
}

impl Metric {
    /// The image-level metrics, which every run has.
    pub const IMAGE: [Metric; 2] = [Metric::Last, Metric::Best];
    /// The pixel-level ones, for runs on test sets with masks.
    pub const PIXEL: [Metric; 3] = [Metric::PixelAuroc, Metric::Aupro, Metric::PeakInMask];

    pub fn key(self) -> &'static str {
        match self {
            Metric::Last => "auroc_last",
            Metric::Best => "auroc_best",
            Metric::PixelAuroc => "pixel_auroc",
            Metric::Aupro => "pixel_aupro",
            Metric::PeakInMask => "peak_in_mask",
        }
    }

    /// Whether the paper publishes this metric (image AUROC only).
    pub fn is_published(self) -> bool {
        matches!(self, Metric::Last | Metric::Best)
    }

    /// The metric in a table's title; `flows`: the experiment crosses flows, whose maps
    /// are their own (DifferNet's is its input gradient).
    pub(super) fn title(self, flows: bool) -> &'static str {
        match (self, flows) {
            (Metric::PixelAuroc, true) => {
                return "pixel AUROC (%) of each flow's anomaly map (DifferNet: input gradient; \
                        the others: their own), last epoch";
            }
            (Metric::Aupro, true) => {
                return "AUPRO (%) up to 30 % FPR of each flow's anomaly map, last epoch";
            }
            _ => {}
        }
        match self {
            Metric::Last => "image AUROC (%) after the last epoch (no model selection)",
            Metric::Best => {
                "image AUROC (%), best evaluation selected on the test set (the paper's protocol)"
            }
            Metric::PixelAuroc => {
                "pixel AUROC (%) of DifferNet's anomaly map (input gradient), last epoch"
            }
            Metric::Aupro => "AUPRO (%) up to 30 % FPR of DifferNet's anomaly map, last epoch",
            Metric::PeakInMask => {
                "defects (%) whose anomaly map peaks inside the ground-truth mask, last epoch"
            }
        }
    }

    pub fn of(self, run: &Run) -> Option<f64> {
        let m = run.metrics.as_ref()?;
        match self {
            Metric::Last => Some(m.auroc_last),
            Metric::Best => Some(m.auroc_best),
            Metric::PixelAuroc => m.pixel.as_ref().map(|p| p.auroc),
            Metric::Aupro => m.pixel.as_ref().map(|p| p.aupro),
            Metric::PeakInMask => m.pixel.as_ref().map(|p| p.peak_in_mask),
        }
    }
}

/// The metrics an experiment's tables show for `dataset`: the image ones, then the pixel
/// ones where any of its runs has them.
pub fn metrics_of(exp: &Experiment, dataset: &str) -> Vec<Metric> {
    let mut out = Metric::IMAGE.to_vec();
    if exp
        .runs
        .iter()
        .any(|r| r.dataset == dataset && Metric::PixelAuroc.of(r).is_some())
    {
        out.extend(Metric::PIXEL);
    }
    out
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

/// `v` in percentage points with its sign, a real minus for negatives: `+1.69`, `−6.60`.
pub fn signed_pp(v: f64) -> String {
    let t = format!("{:+.2}", 100.0 * v);
    match t.strip_prefix('-') {
        Some(rest) => format!("−{rest}"),
        None => t,
    }
}

impl Comparison {
    /// The difference alone, in percentage points.
    pub fn difference_pp(&self) -> String {
        signed_pp(self.difference)
    }

    /// The 95 % interval in percentage points, or `all n seeds` when every seed gave the
    /// same difference (no interval).
    pub fn interval_pp(&self) -> String {
        if self.p_value.is_nan() {
            format!("same on all {} seeds", self.n)
        } else {
            format!("[{}, {}]", signed_pp(self.ci.0), signed_pp(self.ci.1))
        }
    }

    pub fn p_text(&self) -> String {
        if self.p_value.is_nan() {
            "n/a".into()
        } else {
            adn_metrics::stats::format_p(self.p_value)
        }
    }

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

/// Holm-adjusted p-values of a family of comparisons (one table's), in the given order;
/// `None` where there is no comparison or it has no p-value.
pub fn holm_of(family: &[Option<&Comparison>]) -> Vec<Option<f64>> {
    let raw: Vec<f64> = family
        .iter()
        .map(|c| c.map_or(f64::NAN, |c| c.p_value))
        .collect();
    adn_metrics::holm_adjust(&raw)
        .into_iter()
        .map(|p| (!p.is_nan()).then_some(p))
        .collect()
}

/// A Holm-adjusted p as the tables print it; `n/a` where there is none.
pub fn holm_text(p: Option<f64>) -> String {
    p.map_or("n/a".into(), adn_metrics::stats::format_p)
}

/// The caption sentence of a table with Holm-adjusted p-values over `m` comparisons.
pub fn holm_note(m: usize) -> String {
    format!(
        "p (Holm): the p-value adjusted by Holm's step-down method over the {m} comparisons \
         of this table (family-wise error rate); read significance from it, not from the raw p."
    )
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

/// How variants are named in tables and figures: `se / joint` is "SE / joint"; with
/// `[[flows]]`, `none (flow=FastFlow)` is "FastFlow" and `se / joint (flow=FastFlow)`
/// "FastFlow + SE / joint".
pub fn display_name(variant: &str) -> String {
    let (head, context) = match variant.split_once(" (") {
        Some((h, c)) => (h, c.strip_suffix(')').unwrap_or(c)),
        None => (variant, ""),
    };
    let mut items: Vec<&str> = context.split(", ").filter(|i| !i.is_empty()).collect();
    let flow = items
        .iter()
        .position(|i| i.starts_with("flow="))
        .map(|k| items.remove(k)["flow=".len()..].to_string());
    let (attention, regime) = match head.split_once(' ') {
        Some((a, r)) => (a, format!(" {r}")),
        None => (head, String::new()),
    };
    let label = match attention {
        "none" => "DifferNet",
        "se" => "SE",
        "cbam" => "CBAM lab",
        "cbam-official" => "CBAM official",
        other => other,
    };
    let name = match (flow, attention) {
        (Some(f), "none") => f,
        (Some(f), _) => format!("{f} + {label}{regime}"),
        (None, _) => format!("{label}{regime}"),
    };
    match items.is_empty() {
        true => name,
        false => format!("{name} ({})", items.join(", ")),
    }
}
