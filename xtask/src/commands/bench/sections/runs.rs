//! Whole runs: the full run against PyTorch (section 4) and what bf16 does to AUROC (7).

use std::fmt::Write as _;

use adn_metrics::stats::mean_sd;
use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::super::harness::*;
use super::Sheet;
use crate::util;

/// What the full runs measured, for the targets.
pub struct FullRuns {
    /// Wall seconds of seed 0 (cold cache), Rust and PyTorch.
    pub rust_cold: f64,
    pub torch_cold: f64,
    /// Largest peak RSS of the Rust runs, MB.
    pub rust_mem: f64,
    /// Mean `auroc_last`, Rust minus PyTorch.
    pub delta: f64,
}

/// 4-5. Full train + evaluate runs of the demo's base config on the stand-in, seeds 0-2 on
/// each side. Rust's seed 0 starts from an empty cache (the like-for-like wall time); seeds
/// 1 and 2 reuse its features, as the runs of a sweep do.
pub fn full_runs(b: &Bench, sheet: &mut Sheet) -> Result<FullRuns> {
    let cache_dir = b.root.join("results/bench/.cache");
    std::fs::remove_dir_all(&cache_dir).ok();
    let mut rust_runs = Vec::new();
    for seed in SEEDS {
        util::step(&format!(
            "bench: full run, seed {seed} (demo config on the MVTec stand-in)"
        ));
        let run_dir = b.root.join(format!("results/bench/.run-{seed}"));
        let mut args = with_sets(&["run", BASE], &case_sets(&CASES[2]));
        args.extend([
            "--set".to_string(),
            "model.image_size=160".into(),
            "--set".into(),
            format!("train.seed={seed}"),
            "--out".into(),
            run_dir.display().to_string(),
            "--cache-dir".into(),
            cache_dir.display().to_string(),
            "--force".into(),
            "--quiet".into(),
            "--device".into(),
            "cpu".into(),
        ]);
        b.adn_run(&args)?;
        let manifest = adn_record::read_manifest(&run_dir)?;
        let metrics = adn_record::read_metrics(&run_dir)?;
        let facts = manifest
            .run
            .clone()
            .with_context(|| format!("{}: a run without its facts", run_dir.display()))?;
        rust_runs.push((
            facts,
            metrics.clone(),
            json!({"manifest": manifest.to_json(), "metrics": metrics}),
        ));
        std::fs::remove_dir_all(&run_dir).ok();
    }
    std::fs::remove_dir_all(&cache_dir).ok();
    let mut torch_runs = Vec::new();
    for seed in SEEDS {
        util::step(&format!("bench: PyTorch reference run, seed {seed}"));
        torch_runs.push(b.python(
            "run",
            json!({
                "category": format!("{DATA_ROOT}/{CATEGORY}"), "backbone": "lite0",
                "weights": "weights/efficientnet-lite0.safetensors", "image_size": 160,
                "scales": 1, "feature_layers": ["stage5", "stage6", "stage7"],
                "batch_size": 24, "hidden": 256, "meta_epochs": 4, "sub_epochs": 4,
                "train_transforms": 2, "test_transforms": 2, "quarter_turns": true,
                "lr": 2e-4, "seed": seed,
            }),
            "reference run",
        )?);
    }
    let field = |v: &Value, path: &[&str]| {
        path.iter()
            .fold(v, |v, k| &v[*k])
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    let rust_wall: Vec<f64> = rust_runs.iter().map(|r| r.0.wall_s.total).collect();
    let torch_wall: Vec<f64> = torch_runs.iter().map(|r| field(r, &["seconds"])).collect();
    sheet.rows.push(vec![
        "full run, 16 epochs, Lite0 160 px, seed 0, cold cache (wall s)".into(),
        format!("{:.1}", rust_wall[0]),
        format!("{:.1}", torch_wall[0]),
        format!("{:.2} (speed-up)", torch_wall[0] / rust_wall[0]),
        "features once (cache) vs every epoch".into(),
    ]);
    let (rw, tw) = (mean_sd(&rust_wall[1..]).0, mean_sd(&torch_wall[1..]).0);
    sheet.rows.push(vec![
        "full run, seeds 1-2, warm cache (mean wall s)".into(),
        format!("{rw:.1}"),
        format!("{tw:.1}"),
        format!("{:.2} (speed-up)", tw / rw),
        "the features of seed 0's run are reused".into(),
    ]);
    let rust_mem = rust_runs
        .iter()
        .map(|r| r.0.peak_rss_mb.unwrap_or(f64::NAN))
        .fold(f64::NAN, f64::max);
    let torch_mem = torch_runs
        .iter()
        .map(|r| field(r, &["peak_rss_mb"]))
        .fold(f64::NAN, f64::max);
    sheet.rows.push(vec![
        "full run, peak memory (MB)".into(),
        format!("{rust_mem:.0}"),
        format!("{torch_mem:.0}"),
        format!("{:.2}", rust_mem / torch_mem),
        "process peak RSS, largest of the 3 runs".into(),
    ]);
    let rust_auroc: Vec<f64> = rust_runs.iter().map(|r| r.1.auroc_last).collect();
    let torch_auroc: Vec<f64> = torch_runs
        .iter()
        .map(|r| field(r, &["auroc_last"]))
        .collect();
    let ((rust_mean, rust_sd), (torch_mean, torch_sd)) =
        (mean_sd(&rust_auroc), mean_sd(&torch_auroc));
    let delta = rust_mean - torch_mean;
    sheet.rows.push(vec![
        format!("full run, auroc_last (mean ± sd, seeds {SEEDS:?})"),
        format!("{rust_mean:.4} ± {rust_sd:.4}"),
        format!("{torch_mean:.4} ± {torch_sd:.4}"),
        format!("Δ {delta:+.4}"),
        format!(
            "target |Δ| ≤ 0.01: {}; same protocol, different random streams",
            if delta.abs() <= 0.01 {
                "met"
            } else {
                "NOT met"
            }
        ),
    ]);
    sheet.raw.insert(
        "run".into(),
        json!({
            "seeds": SEEDS,
            "rust": rust_runs.iter().map(|r| &r.2).collect::<Vec<_>>(),
            "pytorch": torch_runs,
        }),
    );
    Ok(FullRuns {
        rust_cold: rust_wall[0],
        torch_cold: torch_wall[0],
        rust_mem,
        delta,
    })
}

/// The precisions the accuracy section compares: (label, model.precision, train.precision).
const PRECISIONS: [(&str, &str, &str); 4] = [
    ("fp32", "fp32", "fp32"),
    ("bf16 backbone", "bf16", "fp32"),
    ("bf16 flow", "fp32", "bf16"),
    ("bf16 both", "bf16", "bf16"),
];

/// The datasets of the accuracy section: (label, data.kind, data.root, category, how
/// `adn data make` writes it).
const ACCURACY_DATA: [(&str, &str, &str, &str, &str); 2] = [
    (
        "ELPV mono (real)",
        "folder",
        "data/elpv",
        "elpv-mono",
        "elpv",
    ),
    (
        "MVTec stand-in",
        "mvtec",
        DATA_ROOT,
        CATEGORY,
        "synthetic-mvtec",
    ),
];

/// The worst |Δ auroc_last| (mean of the seeds, bf16 minus float32) over datasets and
/// precisions, for the target.
pub struct Accuracy {
    pub worst: f64,
    pub worst_at: String,
}

/// Section 7, what bf16 does to AUROC: the demo's DifferNet (Lite0 160 px, flow 8 × 256, 16 epochs)
/// on ELPV mono and the MVTec stand-in, backbone and flow in bf16 separately and together,
/// seeds 0-2 each; one feature cache, so every float32 backbone is computed once.
pub fn accuracy(b: &Bench, sheet: &mut Sheet) -> Result<Accuracy> {
    let cache_dir = b.root.join("results/bench/.cache-precision");
    std::fs::remove_dir_all(&cache_dir).ok();
    let mut table = String::from(
        "\n## bf16 and AUROC\n\n`auroc_last` (mean ± sd over seeds 0-2) of the demo's DifferNet \
         (`experiments/demo-base.toml`: Lite0 160 px, flow 8 × 256, 4 × 4 epochs), every \
         setting run with the same seeds; Δ is the mean of the per-seed differences against \
         float32, with their sd. Target |Δ| ≤ 0.005.\n\n\
         | dataset | precision | auroc_last | Δ vs fp32 | pixel AUROC | train s |\n\
         |---|---|---:|---:|---:|---:|\n",
    );
    let mut raw = serde_json::Map::new();
    let mut worst = (0.0f64, String::new());
    for (label, kind, root, category, make) in ACCURACY_DATA {
        if !b.root.join(root).join(category).is_dir() {
            b.adn(
                &["data", "make", "--kind", make, "--out", root].map(String::from),
                "adn data make",
            )
            .ok();
        }
        let mut fp32 = Vec::new();
        for (name, model, flow) in PRECISIONS {
            util::step(&format!("bench: auroc at {name}, {label}"));
            let mut aurocs = Vec::new();
            let (mut pixel, mut train_s) = (Vec::new(), Vec::new());
            for seed in SEEDS {
                let run_dir = b.root.join("results/bench/.run-precision");
                let sets = [
                    format!("data.kind=\"{kind}\""),
                    format!("data.root=\"{root}\""),
                    format!("data.category=\"{category}\""),
                    format!("model.precision=\"{model}\""),
                    format!("train.precision=\"{flow}\""),
                    format!("train.seed={seed}"),
                ];
                let mut args = with_sets(&["run", "experiments/demo-base.toml"], &sets);
                args.extend(
                    ["--force", "--quiet", "--device", "cpu", "--out"]
                        .map(String::from)
                        .into_iter()
                        .chain([
                            run_dir.display().to_string(),
                            "--cache-dir".into(),
                            cache_dir.display().to_string(),
                        ]),
                );
                b.adn_run(&args)?;
                let metrics = adn_record::read_metrics(&run_dir)?;
                let manifest = adn_record::read_manifest(&run_dir)?;
                aurocs.push(metrics.auroc_last);
                pixel.extend(metrics.pixel.as_ref().map(|p| p.auroc));
                train_s.extend(manifest.run.as_ref().map(|r| r.wall_s.train));
                raw.insert(
                    format!("{label}/{name}/{seed}"),
                    json!({"auroc_last": metrics.auroc_last, "manifest": manifest.to_json()}),
                );
                std::fs::remove_dir_all(&run_dir).ok();
            }
            let (mean, sd) = mean_sd(&aurocs);
            let delta = if name == "fp32" {
                fp32 = aurocs.clone();
                "—".to_string()
            } else {
                let d: Vec<f64> = aurocs.iter().zip(&fp32).map(|(a, b)| a - b).collect();
                let (dm, ds) = mean_sd(&d);
                if dm.abs() > worst.0.abs() || worst.1.is_empty() {
                    worst = (dm, format!("{label}, {name}"));
                }
                format!("{dm:+.4} ± {ds:.4}")
            };
            let pixel = if pixel.is_empty() {
                "—".into()
            } else {
                format!("{:.4}", mean_sd(&pixel).0)
            };
            let _ = writeln!(
                table,
                "| {label} | {name} | {mean:.4} ± {sd:.4} | {delta} | {pixel} | {:.1} |",
                mean_sd(&train_s).0
            );
        }
    }
    std::fs::remove_dir_all(&cache_dir).ok();
    sheet.sections.push(table);
    sheet.raw.insert("accuracy".into(), Value::Object(raw));
    Ok(Accuracy {
        worst: worst.0,
        worst_at: worst.1,
    })
}
