//! Captions written from the data: what a figure shows, on which runs, over how many seeds,
//! so that the figure itself need carry no internal names. One caption per figure file the
//! report draws, found by its file stem (`roc_<dataset>_<category>` and so on).

use crate::figures::slug;
use crate::gather::{Experiment, Status, read_scores};
use crate::tables::display_name;

/// The dataset and category a figure's stem ends with, with the prefix it starts with.
struct Subject {
    prefix: &'static str,
    dataset: String,
    /// `None` for a figure of the whole dataset (its categories side by side).
    category: Option<String>,
}

/// Figure kinds that end in `_<dataset>[_<category>]`, longest first so that
/// `attention_channels_` wins over a shorter prefix.
const PER_SUBJECT: [&str; 8] = [
    "attention_channels_",
    "attention_spatial_",
    "diagnostics_",
    "training_",
    "gradcam_",
    "heatmap_",
    "scores_",
    "maps_",
];

fn subject_of(exp: &Experiment, stem: &str) -> Option<Subject> {
    let prefix = PER_SUBJECT
        .iter()
        .copied()
        .find(|p| stem.starts_with(p))
        .or(stem.starts_with("roc_").then_some("roc_"))?;
    let rest = &stem[prefix.len()..];
    for d in exp.datasets() {
        if rest == slug(&d) {
            return Some(Subject {
                prefix,
                dataset: d,
                category: None,
            });
        }
        for c in exp.categories(&d) {
            if rest == format!("{}_{}", slug(&d), slug(&c)) {
                return Some(Subject {
                    prefix,
                    dataset: d,
                    category: Some(c),
                });
            }
        }
    }
    None
}

/// "A, B and C".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The variants in display form, in plan order.
fn variants(exp: &Experiment) -> String {
    list(
        &exp.variants()
            .iter()
            .map(|v| display_name(v))
            .collect::<Vec<_>>(),
    )
}

/// How many complete seeds the best-covered variant of a cell has.
fn seeds(exp: &Experiment, dataset: &str, category: Option<&str>) -> usize {
    let categories = match category {
        Some(c) => vec![c.to_string()],
        None => exp.categories(dataset),
    };
    exp.variants()
        .iter()
        .flat_map(|v| {
            categories
                .iter()
                .map(move |c| exp.complete(dataset, c, v).len())
        })
        .max()
        .unwrap_or(0)
}

fn over(n: usize) -> String {
    if n == 1 {
        "one seed".into()
    } else {
        format!("{n} seeds")
    }
}

/// The defect types of a category's test set, from its first complete run's scores.
fn defects(exp: &Experiment, dataset: &str, category: &str) -> Vec<String> {
    let Some(run) = exp
        .variants()
        .iter()
        .find_map(|v| exp.complete(dataset, category, v).into_iter().next())
    else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    if let Ok(s) = read_scores(run) {
        for (d, &anomalous) in s.defects.iter().zip(&s.labels) {
            if anomalous && !out.contains(d) {
                out.push(d.clone());
            }
        }
    }
    out
}

/// Whether `dataset`'s runs measured their maps against masks (its test set has them).
fn has_masks(exp: &Experiment, dataset: &str) -> bool {
    exp.runs
        .iter()
        .any(|r| r.dataset == dataset && r.metrics.as_ref().is_some_and(|m| m.pixel.is_some()))
}

/// The caption of the figure `stem` (a file name without extension), or `None` for a
/// stem the report does not draw.
pub fn caption(exp: &Experiment, stem: &str) -> Option<String> {
    if let Some(text) = caption_of_one(exp, stem) {
        return Some(text);
    }
    // A page of a figure split over pages: `<stem>_<k>`.
    let (base, k) = stem.rsplit_once('_')?;
    let k: usize = k.parse().ok()?;
    let text = caption_of_one(exp, base)?;
    Some(format!(
        "{text} Page {k}: what does not fit one page (7 in wide, at most 9 in tall) goes on \
         further pages."
    ))
}

fn caption_of_one(exp: &Experiment, stem: &str) -> Option<String> {
    let datasets_with_pixels = || {
        exp.datasets()
            .into_iter()
            .filter(|d| has_masks(exp, d))
            .collect::<Vec<_>>()
    };
    let bars = |what: &str, datasets: Vec<String>| {
        format!(
            "{what}: one group of bars per dataset and category ({}), one bar per variant \
             ({}), mean ± sd over up to {} per bar.",
            list(&datasets),
            variants(exp),
            over(
                datasets
                    .iter()
                    .map(|d| seeds(exp, d, None))
                    .max()
                    .unwrap_or(0)
            )
        )
    };
    match stem {
        "auroc_last_bars" => {
            return Some(bars(
                "Image AUROC (%) after the last meta-epoch, without model selection (the \
                 headline number)",
                exp.datasets(),
            ));
        }
        "auroc_best_bars" => {
            return Some(bars(
                "Image AUROC (%) at the best meta-epoch, selected on the test set as \
                 DifferNet-style papers report it (optimistic by construction)",
                exp.datasets(),
            ));
        }
        "pixel_auroc_bars" => {
            return Some(bars(
                "Pixel AUROC (%) of each run's anomaly map after the last meta-epoch, on the \
                 datasets whose test images have ground-truth masks",
                datasets_with_pixels(),
            ));
        }
        "auroc_last_delta" | "pixel_auroc_delta" => {
            let what = if stem == "auroc_last_delta" {
                "image AUROC after the last meta-epoch"
            } else {
                "pixel AUROC"
            };
            return Some(format!(
                "The effect of attention on {what}: per dataset (a panel; the mean over its \
                 categories where it has several) and attention variant (a row), the mean \
                 difference from the same setting without attention in percentage points \
                 (dot) with its 95 % interval (line; paired t over seeds, or DeLong on one \
                 seed), the dashed line at no difference. Each panel has its own axis. The \
                 tables give the raw and Holm-corrected p-values."
            ));
        }
        _ => {}
    }
    let s = subject_of(exp, stem)?;
    let d = &s.dataset;
    let n = seeds(exp, d, s.category.as_deref());
    let on = match &s.category {
        Some(c) => format!("{d}, category {c}"),
        None => d.clone(),
    };
    let text = match (s.prefix, s.category.as_deref()) {
        ("roc_", Some(c)) => {
            let defects = defects(exp, d, c);
            let per = if defects.len() > 1 {
                format!(
                    ", then one panel per defect type against the good images ({})",
                    list(&defects)
                )
            } else {
                String::new()
            };
            format!(
                "ROC curves of the image scores on {on} after the last meta-epoch: all \
                 anomalous images first{per}. Each seed's curve is sampled on one \
                 false-positive-rate grid; the line is the mean and the band ± sd over {}; \
                 the legend gives each variant's mean AUROC (%).",
                over(n)
            )
        }
        ("scores_", Some(_)) => format!(
            "Test scores of good and anomalous images on {on} after the last meta-epoch, one \
             panel per variant on shared axes, the scores of {} pooled.",
            over(n)
        ),
        ("training_", Some(_)) => format!(
            "Training on {on}: the mean training loss and the test image AUROC per \
             meta-epoch (counted from 0), mean with a ± sd band over {}; the marker is each \
             variant's best mean AUROC.",
            over(n)
        ),
        ("diagnostics_", Some(c)) => {
            let gates = exp
                .runs
                .iter()
                .filter(|r| r.status == Status::Complete && &r.dataset == d && r.category == c)
                .any(|r| {
                    r.metrics
                        .as_ref()
                        .is_some_and(|m| m.diagnostics.iter().any(|g| !g.gates.is_empty()))
                });
            format!(
                "What collapse looks like on {on}, against the meta-epochs trained (0: before \
                 training): the norm of the training features relative to its value before \
                 training (dashed lines at 1, unchanged, and 0.5, halved) and the −log|det J| \
                 part of the loss per dimension{}; mean ± sd over {}.",
                if gates {
                    ", then the mean attention gate"
                } else {
                    ""
                },
                over(n)
            )
        }
        ("heatmap_", None) => format!(
            "Image AUROC (%) on {on} after the last meta-epoch, one cell per category (rows; \
             the mean last) and variant (columns), mean over {}, one colour scale for the \
             whole map.",
            over(n)
        ),
        ("gradcam_", Some(_)) => format!(
            "Grad-CAM on {on}: test images (rows) and, beside each input, the Grad-CAM of the \
             first complete seed of every variant ({}) laid over it in viridis, on one colour \
             scale for every image and run, so that a weak map looks weak.",
            variants(exp)
        ),
        ("maps_", Some(_)) => format!(
            "Anomaly maps on {on}: one row per defect type, then a missed anomalous image and \
             a good image; columns are the input and the map of the first complete seed of \
             every variant ({}) laid over it{}, the image's score and its decision at the \
             run's F1-optimal threshold below; one colour scale per row.",
            variants(exp),
            if has_masks(exp, d) {
                ", the ground-truth mask outlined in red"
            } else {
                " (this dataset has no ground-truth masks)"
            }
        ),
        ("maps_", None) => format!(
            "Anomaly maps on {on}: variants ({}) as rows below the input row, one column per \
             category showing its first defective test image, the map of each variant's \
             first complete seed laid over it; each column on its own colour scale, its \
             largest value in its header.",
            variants(exp)
        ),
        ("attention_channels_", Some(_)) => format!(
            "The channel attention gates on {on}: one cell per run with attention (rows) and \
             position (columns), each channels (down) × test images (across, the good images \
             left of the defective ones), the gate's value as colour on one scale."
        ),
        ("attention_spatial_", Some(_)) => format!(
            "CBAM's spatial attention gates on {on}, laid over test images: rows are good and \
             defective images, columns the input and then each CBAM run at each position."
        ),
        _ => return None,
    };
    Some(text)
}
