//! The long-form polars frames: one row per planned run (`runs.parquet`) and one per
//! dataset × category × variant (`summary`).

use anyhow::Result;
use polars::prelude::*;

use super::stats::*;
use super::text::row_labels;
use crate::gather::{Experiment, Run};
use crate::published::Published;

/// The loss parts of a run's last meta-epoch, when it recorded them.
fn last_loss(r: &Run) -> Option<adn_record::LossParts> {
    r.metrics.as_ref()?.diagnostics.last()?.loss
}

/// Run id → the SHA-256 of its `scores.csv` (`None` for a run without scores, or a table
/// from before the column), read from an experiment's `runs.parquet`: what a rerun must
/// match to have reproduced a run bit for bit.
pub fn scores_fingerprints(
    runs_parquet: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, Option<String>>> {
    Ok(committed_session_facts(runs_parquet)?
        .into_iter()
        .map(|(id, facts)| (id, facts.scores_sha256))
        .collect())
}

/// What a committed run table recorded of the session that made a run: the columns that a
/// rerun on another machine or day changes although its scores do not (wall times, cache
/// use, device, threads, CPU, commit), with the scores' SHA-256 that tells a reproduced run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionFacts {
    pub scores_sha256: Option<String>,
    pub wall_total_s: Option<f64>,
    pub wall_features_s: Option<f64>,
    pub wall_train_s: Option<f64>,
    pub wall_maps_s: Option<f64>,
    pub cache_hits: Option<i64>,
    pub cache_misses: Option<i64>,
    pub device: Option<String>,
    pub threads: Option<i64>,
    pub cpu: Option<String>,
    pub git_commit: Option<String>,
}

/// Run id → its [`SessionFacts`], read from an experiment's `runs.parquet`; a table from
/// before a column gives `None` for it.
pub fn committed_session_facts(
    runs_parquet: &std::path::Path,
) -> Result<std::collections::BTreeMap<String, SessionFacts>> {
    let file = std::fs::File::open(runs_parquet)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", runs_parquet.display()))?;
    let df = ParquetReader::new(file).finish().map_err(|e| {
        anyhow::anyhow!(
            "{} is not a readable Parquet file: {e}",
            runs_parquet.display()
        )
    })?;
    let text = |name: &str, i: usize| -> Option<String> {
        df.column(name).ok()?.str().ok()?.get(i).map(str::to_string)
    };
    let float = |name: &str, i: usize| -> Option<f64> { df.column(name).ok()?.f64().ok()?.get(i) };
    let int = |name: &str, i: usize| -> Option<i64> { df.column(name).ok()?.i64().ok()?.get(i) };
    Ok((0..df.height())
        .filter_map(|i| {
            let facts = SessionFacts {
                scores_sha256: text("scores_sha256", i),
                wall_total_s: float("wall_total_s", i),
                wall_features_s: float("wall_features_s", i),
                wall_train_s: float("wall_train_s", i),
                wall_maps_s: float("wall_maps_s", i),
                cache_hits: int("cache_hits", i),
                cache_misses: int("cache_misses", i),
                device: text("device", i),
                threads: int("threads", i),
                cpu: text("cpu", i),
                git_commit: text("git_commit", i),
            };
            Some((text("run_id", i)?, facts))
        })
        .collect())
}

/// The SHA-256 of a complete run's `scores.csv`, as `runs.parquet` records it.
pub(crate) fn scores_sha256(r: &Run) -> Option<String> {
    r.metrics.as_ref()?;
    adn_util::sha256_file(&r.dir.join(adn_record::files::SCORES)).ok()
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
            "feature_norm_ratio".into(),
            of(&|r| r.metrics.as_ref().and_then(|m| m.feature_norm_ratio())),
        ),
        Column::new("pixel_auroc".into(), of(&|r| Metric::PixelAuroc.of(r))),
        Column::new("pixel_aupro".into(), of(&|r| Metric::Aupro.of(r))),
        Column::new("peak_in_mask".into(), of(&|r| Metric::PeakInMask.of(r))),
        Column::new(
            "wall_maps_s".into(),
            of(&|r| {
                r.metrics
                    .as_ref()
                    .and_then(|m| m.pixel.as_ref())
                    .map(|p| p.wall_s)
            }),
        ),
        Column::new("loss_z_last".into(), of(&|r| last_loss(r).map(|l| l.z))),
        Column::new(
            "loss_neg_log_det_last".into(),
            of(&|r| last_loss(r).map(|l| l.neg_log_det)),
        ),
        Column::new(
            "volume_charge_last".into(),
            of(&|r| last_loss(r).map(|l| l.volume_charge)),
        ),
        Column::new(
            "wall_total_s".into(),
            of(&|r| r.manifest.as_ref().map(|m| m.wall_s.total)),
        ),
        Column::new(
            "wall_features_s".into(),
            of(&|r| r.manifest.as_ref().map(|m| m.wall_s.features)),
        ),
        Column::new(
            "wall_train_s".into(),
            of(&|r| r.manifest.as_ref().map(|m| m.wall_s.train)),
        ),
        Column::new(
            "cache_hits".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.feature_cache.hits as i64)),
        ),
        Column::new(
            "cache_misses".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.feature_cache.misses as i64)),
        ),
        Column::new(
            "feature_dim".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.feature_dim)),
        ),
        Column::new(
            "train_images".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.dataset.train_images as i64)),
        ),
        Column::new(
            "test_images".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.dataset.test_images as i64)),
        ),
        Column::new(
            "device".into(),
            runs.iter()
                .map(|r| r.manifest.as_ref().map(|m| m.device.clone()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "threads".into(),
            oi(&|r| r.manifest.as_ref().map(|m| m.threads as i64)),
        ),
        Column::new(
            "cpu".into(),
            runs.iter()
                .map(|r| {
                    let machine = r.manifest.as_ref()?.machine.as_ref()?;
                    Some(machine.cpu.clone())
                })
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "reproducible".into(),
            runs.iter()
                .map(|r| {
                    let facts = r.manifest.as_ref()?;
                    Some(facts.machine.as_ref().is_some_and(|m| m.reproducible))
                })
                .collect::<Vec<_>>(),
        ),
        // The test scores themselves, to tell whether a rerun reproduced a run bit for bit.
        Column::new(
            "scores_sha256".into(),
            runs.iter().map(scores_sha256).collect::<Vec<_>>(),
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
                .map(|r| {
                    r.manifest
                        .as_ref()
                        .map(|m| m.git_commit.clone().unwrap_or_default())
                })
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

/// Long form of the tables: one row per dataset × category × variant × metric, in % (and
/// differences in percentage points) like every other table; `p_holm` is Holm-adjusted over
/// the comparisons of the same dataset and metric, as in the Markdown and LaTeX tables.
pub(super) fn summary_frame(exp: &Experiment, published: &Published) -> Result<DataFrame> {
    let (mut ds, mut cat, mut var, mut met) = (vec![], vec![], vec![], vec![]);
    let (mut n, mut mean, mut sd) = (vec![], vec![], vec![]);
    let (mut base, mut diff, mut lo, mut hi, mut p, mut test) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut paper: Vec<Option<f64>> = vec![];
    for dataset in exp.datasets() {
        let pub_name = exp.plan.published.get(&dataset);
        for c in row_labels(exp, &dataset) {
            for v in exp.variants() {
                for metric in metrics_of(exp, &dataset) {
                    let x = cell(exp, &dataset, &c, &v, metric);
                    let b = baseline_of(exp, &v);
                    let cmp = b
                        .as_ref()
                        .and_then(|b| compare(exp, &dataset, &c, &v, b, metric));
                    ds.push(dataset.clone());
                    cat.push(c.clone());
                    var.push(v.clone());
                    met.push(metric.key().to_string());
                    // Percent and percentage points, as every other table and figure.
                    n.push(x.map_or(0, |x| x.n as i64));
                    mean.push(x.map(|x| 100.0 * x.mean));
                    sd.push(x.map(|x| 100.0 * x.sd));
                    base.push(b.clone());
                    diff.push(cmp.as_ref().map(|c| 100.0 * c.difference));
                    lo.push(cmp.as_ref().map(|c| 100.0 * c.ci.0));
                    hi.push(cmp.as_ref().map(|c| 100.0 * c.ci.1));
                    p.push(cmp.as_ref().map(|c| c.p_value));
                    test.push(cmp.as_ref().map(|c| c.test.to_string()));
                    let method = published.method_of(&v).filter(|_| metric.is_published());
                    paper.push(
                        pub_name
                            .zip(method)
                            .and_then(|(d, m)| published.get(d, &c, &m)),
                    );
                }
            }
        }
    }
    // Holm over each (dataset, metric): the comparisons of one comparison table.
    let mut p_holm: Vec<Option<f64>> = vec![None; p.len()];
    let mut families: Vec<(&String, &String)> = ds.iter().zip(&met).collect();
    families.sort();
    families.dedup();
    for (d, m) in families {
        let members: Vec<usize> = (0..p.len())
            .filter(|&i| &ds[i] == d && &met[i] == m)
            .collect();
        let raw: Vec<f64> = members.iter().map(|&i| p[i].unwrap_or(f64::NAN)).collect();
        for (&i, adjusted) in members.iter().zip(adn_metrics::holm_adjust(&raw)) {
            p_holm[i] = (!adjusted.is_nan()).then_some(adjusted);
        }
    }
    Ok(DataFrame::new_infer_height(vec![
        Column::new("dataset".into(), ds),
        Column::new("category".into(), cat),
        Column::new("variant".into(), var),
        Column::new("metric".into(), met),
        Column::new("n_seeds".into(), n),
        Column::new("mean_pct".into(), mean),
        Column::new("sd_pct".into(), sd),
        Column::new("baseline".into(), base),
        Column::new("diff_pp".into(), diff),
        Column::new("diff_ci_low_pp".into(), lo),
        Column::new("diff_ci_high_pp".into(), hi),
        Column::new("p_value".into(), p),
        Column::new("p_holm".into(), p_holm),
        Column::new("test".into(), test),
        Column::new("published_pct".into(), paper),
    ])?)
}
