//! The measurements of `cargo xtask bench`, one function per section; each adds its rows to
//! the sheet and its raw numbers beside them.

use std::process::Command;

use adn_metrics::stats::mean_sd;
use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::harness::*;
use crate::util;

/// What the sections produce: the table's rows and the raw JSON of every measurement.
#[derive(Default)]
pub struct Sheet {
    pub rows: Vec<Vec<String>>,
    pub raw: serde_json::Map<String, Value>,
}

/// (case, Rust / PyTorch, % of the matmul rate) of each extraction case.
pub type Extraction = Vec<(&'static str, f64, f64)>;

/// 1. Feature extraction of every case, Rust (both layouts) and PyTorch interleaved.
pub fn extraction(b: &Bench, peak: f64, sheet: &mut Sheet) -> Result<Extraction> {
    let mut extraction = Vec::new();
    for c in &CASES {
        util::step(&format!("bench: features, {}", c.name));
        let sets = case_sets(c);
        let (images, views) = if c.size > 300 { (8, 4) } else { (32, 4) };
        let args = with_sets(
            &[
                "bench",
                "extract",
                BASE,
                "--images",
                &images.to_string(),
                "--views",
                &views.to_string(),
                "--device",
                "cpu",
            ],
            &sets,
        );
        let torch_config = json!({
            "category": format!("{DATA_ROOT}/{CATEGORY}"),
            "backbone": if c.backbone == "alexnet" { "alexnet" } else { "lite0" },
            "weights": if c.backbone == "alexnet" { Value::Null } else { json!("weights/efficientnet-lite0.safetensors") },
            "image_size": c.size, "scales": c.scales,
            "feature_layers": ["stage5", "stage6", "stage7"],
            "images": images, "views": views, "batch_size": 16, "seed": 0,
        });
        // Interleaved repeats, the median of each: one slow process (a cold page cache, a
        // neighbour on this shared machine) must not decide a ratio.
        let (mut rust, mut nchw, mut torch) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..REPEATS {
            rust.push(b.adn(&args, "adn bench extract")?);
            // The same extractor in PyTorch's default layout: what channels-last brings.
            nchw.push(b.adn_with(&args, "adn bench extract (contiguous)", "contiguous")?);
            torch.push(b.python("extract", torch_config.clone(), "reference extract")?);
        }
        let median_rate = |runs: &[Value]| {
            let mut r: Vec<f64> = runs.iter().map(|v| rate(v, "forwards")).collect();
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        };
        let (r, t, n) = (median_rate(&rust), median_rate(&torch), median_rate(&nchw));
        let gflops = 2.0 * rust[0]["macs_per_forward"].as_f64().unwrap_or(f64::NAN) * r / 1e9;
        sheet.rows.push(vec![
            format!("features: {} (images/s)", c.name),
            format!("{r:.1}"),
            format!("{t:.1}"),
            format!("{:.2}", r / t),
            format!(
                "backbone {gflops:.1} GFLOP/s = {:.0} % of matmul; Rust in NCHW {n:.1} ({:.2}); \
                 medians of {REPEATS}",
                100.0 * gflops / peak,
                n / t
            ),
        ]);
        sheet.raw.insert(
            format!("extract/{}", c.name),
            json!({"rust": rust, "rust_contiguous": nchw, "pytorch": torch}),
        );
        extraction.push((c.name, r / t, 100.0 * gflops / peak));
    }

    Ok(extraction)
}

/// 2. Test-time scoring with 64 rotations per image.
pub fn scoring(b: &Bench, sheet: &mut Sheet) -> Result<()> {
    util::step("bench: scoring with 64 rotations per image");
    let lite224 = case_sets(&CASES[2]);
    let rust = b.adn(
        &with_sets(
            &[
                "bench", "score", BASE, "--images", "4", "--views", "64", "--device", "cpu",
            ],
            &lite224,
        ),
        "adn bench score",
    )?;
    let torch = b.python(
        "score",
        json!({
            "category": format!("{DATA_ROOT}/{CATEGORY}"), "backbone": "lite0",
            "weights": "weights/efficientnet-lite0.safetensors", "image_size": 224, "scales": 1,
            "feature_layers": ["stage5", "stage6", "stage7"], "images": 4, "views": 64,
            "batch_size": 1, "hidden": 256, "seed": 0,
        }),
        "reference score",
    )?;
    let (r, t) = (rate(&rust, "images"), rate(&torch, "images"));
    sheet.rows.push(vec![
        "scoring, 64 rotations, Lite0 224 px (images/s)".into(),
        format!("{r:.2}"),
        format!("{t:.2}"),
        format!("{:.2}", r / t),
        "64 views (one image's rotations) per forward".into(),
    ]);
    sheet
        .raw
        .insert("score".into(), json!({"rust": rust, "pytorch": torch}));

    Ok(())
}

/// 3. Flow training steps (the paper's flow: 768 → 8 blocks × 2048, 24 × 4 rows).
pub fn flow(b: &Bench, sheet: &mut Sheet) -> Result<()> {
    util::step("bench: flow training steps");
    let rust = b.adn(
        &[
            "bench", "flow", "--dim", "768", "--hidden", "2048", "--rows", "96", "--steps", "10",
            "--device", "cpu",
        ]
        .map(String::from),
        "adn bench flow",
    )?;
    let torch = b.python(
        "flow",
        json!({"dim": 768, "hidden": 2048, "rows": 96, "steps": 10}),
        "reference flow",
    )?;
    let (r, t) = (rate(&rust, "steps"), rate(&torch, "steps"));
    sheet.rows.push(vec![
        "flow training, 768-d, width 2048, 96 rows (steps/s)".into(),
        format!("{r:.2}"),
        format!("{t:.2}"),
        format!("{:.2}", r / t),
        "same libtorch kernels".into(),
    ]);
    sheet
        .raw
        .insert("flow".into(), json!({"rust": rust, "pytorch": torch}));

    Ok(())
}

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
        output(
            Command::new(&b.adn)
                .current_dir(&b.root)
                .envs(b.env.iter().cloned())
                .env("OMP_NUM_THREADS", b.threads.to_string())
                .arg("--threads")
                .arg(b.threads.to_string())
                .args(&args),
            "adn run",
        )?;
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

/// 6. Where EfficientNet-Lite0's forward spends its time (it is far from the matmul rate).
pub fn profile(b: &Bench, sheet: &mut Sheet) -> Result<Value> {
    util::step("bench: EfficientNet-Lite0 profile (PyTorch profiler, both layouts)");
    let profile = b.python(
        "profile",
        json!({"weights": "weights/efficientnet-lite0.safetensors", "image_size": 224, "batch": 64}),
        "reference profile",
    )?;
    sheet.raw.insert("profile".into(), profile.clone());
    Ok(profile)
}
