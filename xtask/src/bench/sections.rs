//! The measurements of `cargo xtask bench`, one function per section; each adds its rows to
//! the sheet and its raw numbers beside them.

use std::fmt::Write as _;

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
    /// Further Markdown sections, after the measurements.
    pub sections: Vec<String>,
}

/// What one extraction case measured, for the targets.
pub struct ExtractionCase {
    pub name: &'static str,
    pub backbone: &'static str,
    /// Rust / the fastest PyTorch peer of the same precision.
    pub vs_peer_fp32: f64,
    pub vs_peer_bf16: f64,
    /// The backbone's achieved rate against the matmul rate of its precision, %.
    pub of_matmul_fp32: f64,
    pub of_matmul_bf16: f64,
    /// Rust bf16 / Rust float32.
    pub bf16_speedup: f64,
}

/// The PyTorch peers of an extraction case: (way, precision) as the reference names them,
/// and their labels. `compile` runs once per case (its compilation is not timed, but costs
/// tens of seconds per process); the others are repeated and interleaved with Rust.
const PEERS: [(&str, &str, &str); 7] = [
    ("eager", "fp32", "eager"),
    ("channels_last", "fp32", "channels-last"),
    ("compile", "fp32", "torch.compile"),
    ("openvino", "fp32", "OpenVINO"),
    ("channels_last", "bf16", "channels-last + autocast"),
    ("compile", "bf16", "torch.compile + autocast"),
    ("openvino", "bf16", "OpenVINO bf16"),
];

/// The median; NaN for no values (a peer that did not run).
fn median(mut r: Vec<f64>) -> f64 {
    r.sort_by(f64::total_cmp);
    r.get(r.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Section 1, feature extraction of every case: Rust in float32 (both layouts) and bf16, each
/// PyTorch peer, interleaved; one row per case and precision against the fastest peer of
/// that precision.
pub fn extraction(b: &Bench, peak: &Peak, sheet: &mut Sheet) -> Result<Vec<ExtractionCase>> {
    let mut cases = Vec::new();
    for c in &CASES {
        util::step(&format!("bench: features, {}", c.name));
        let sets = case_sets(c);
        // Whole chunks: the Rust extractor forwards 64 views at a time (a short last chunk is
        // padded to that size so a feature never depends on its batch), so 8 images × 4 views
        // at 448 px computed 64 views and counted 32, halving its rate against the peers.
        let (images, views) = if c.size > 300 { (16, 4) } else { (32, 4) };
        let args = |precision: &str| {
            let mut sets = sets.clone();
            sets.push(format!("model.precision=\"{precision}\""));
            with_sets(
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
            )
        };
        let torch_config = |way: &str, precision: &str| {
            json!({
                "category": format!("{DATA_ROOT}/{CATEGORY}"),
                "backbone": if c.backbone == "alexnet" { "alexnet" } else { "lite0" },
                "weights": if c.backbone == "alexnet" { Value::Null } else { json!("weights/efficientnet-lite0.safetensors") },
                "image_size": c.size, "scales": c.scales,
                "feature_layers": ["stage5", "stage6", "stage7"],
                "images": images, "views": views, "batch_size": 16, "seed": 0,
                "way": way, "precision": precision,
            })
        };
        // Interleaved repeats, the median of each: one slow process (a cold page cache, a
        // neighbour on this shared machine) must not decide a ratio.
        let (mut rust, mut nchw, mut rust_bf16) = (Vec::new(), Vec::new(), Vec::new());
        let mut peers: Vec<Vec<Value>> = vec![Vec::new(); PEERS.len()];
        let mut failed: Vec<Option<String>> = vec![None; PEERS.len()];
        for repeat in 0..REPEATS {
            rust.push(b.adn(&args("fp32"), "adn bench extract")?);
            // The same extractor in PyTorch's default layout: what channels-last brings.
            nchw.push(b.adn_with(
                &args("fp32"),
                "adn bench extract (contiguous)",
                "contiguous",
            )?);
            rust_bf16.push(b.adn(&args("bf16"), "adn bench extract (bf16)")?);
            for (k, (way, precision, label)) in PEERS.iter().enumerate() {
                if (*way == "compile" && repeat > 0) || failed[k].is_some() {
                    continue;
                }
                let what = format!("reference extract ({label})");
                match b.python("extract", torch_config(way, precision), &what) {
                    Ok(v) => peers[k].push(v),
                    // A peer that does not run here is reported as such, not fatal: the
                    // optional runtimes (compile, OpenVINO) depend on the machine.
                    Err(e) if *way == "compile" || *way == "openvino" => {
                        util::step(&format!("bench: {what} failed, left out: {e:#}"));
                        failed[k] = Some(format!("{e:#}"));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        let rates = |runs: &[Value]| median(runs.iter().map(|v| rate(v, "forwards")).collect());
        let (r, n, r16) = (rates(&rust), rates(&nchw), rates(&rust_bf16));
        let peer_rates: Vec<f64> = peers.iter().map(|p| rates(p)).collect();
        let macs = rust[0]["macs_per_forward"].as_f64().unwrap_or(f64::NAN);
        let gflops = |rate: f64| 2.0 * macs * rate / 1e9;
        let mut ratios = [0.0; 2];
        for (slot, precision) in ["fp32", "bf16"].into_iter().enumerate() {
            let (ours, matmul) = if precision == "fp32" {
                (r, peak.fp32)
            } else {
                (r16, peak.bf16)
            };
            let of_precision: Vec<(usize, f64)> = PEERS
                .iter()
                .enumerate()
                .filter(|(_, p)| p.1 == precision)
                .map(|(k, _)| (k, peer_rates[k]))
                .collect();
            let &(best, best_rate) = of_precision
                .iter()
                .filter(|p| p.1.is_finite())
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .expect("the eager and channels-last peers always run");
            let others = of_precision
                .iter()
                .map(|(k, v)| match &failed[*k] {
                    Some(_) => format!("{} did not run (bench.json)", PEERS[*k].2),
                    None => format!("{} {v:.1}", PEERS[*k].2),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let extra = if precision == "fp32" {
                format!("Rust in NCHW {n:.1} ({:.2})", n / best_rate)
            } else {
                format!("Rust bf16 / Rust fp32 {:.2}×", r16 / r)
            };
            sheet.rows.push(vec![
                format!("features {precision}: {} (images/s)", c.name),
                format!("{ours:.1}"),
                format!("{best_rate:.1}"),
                format!("{:.2}", ours / best_rate),
                format!(
                    "fastest peer: {}; peers {others}; {extra}; backbone {:.1} GFLOP/s = {:.0} % \
                     of the {precision} matmul; medians of {REPEATS} (torch.compile: 1 run, \
                     compilation untimed)",
                    PEERS[best].2,
                    gflops(ours),
                    100.0 * gflops(ours) / matmul
                ),
            ]);
            ratios[slot] = ours / best_rate;
        }
        let peer_json: serde_json::Map<String, Value> = PEERS
            .iter()
            .zip(&peers)
            .zip(&failed)
            .map(|((p, runs), failed)| {
                let v = match failed {
                    Some(e) => json!({"failed": e}),
                    None => json!(runs),
                };
                (format!("{}/{}", p.0, p.1), v)
            })
            .collect();
        sheet.raw.insert(
            format!("extract/{}", c.name),
            json!({"rust": rust, "rust_contiguous": nchw, "rust_bf16": rust_bf16, "pytorch": peer_json}),
        );
        cases.push(ExtractionCase {
            name: c.name,
            backbone: c.backbone,
            vs_peer_fp32: ratios[0],
            vs_peer_bf16: ratios[1],
            of_matmul_fp32: 100.0 * gflops(r) / peak.fp32,
            of_matmul_bf16: 100.0 * gflops(r16) / peak.bf16,
            bf16_speedup: r16 / r,
        });
    }
    Ok(cases)
}

/// The machine's matrix-multiply rates, GFLOP/s.
pub struct Peak {
    pub fp32: f64,
    pub bf16: f64,
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

/// What the flow section measured, for the targets (steps/s).
pub struct FlowSteps {
    /// libtorch's per-tensor Adam in float32: what the project trained with before.
    pub before: f64,
    pub bf16: f64,
    /// The fastest PyTorch bf16 path (autocast, either Adam).
    pub peer_bf16: f64,
}

/// Section 3, flow training steps (the paper's flow: 768 → 8 blocks × 2048, 24 × 4 rows): Rust with
/// libtorch's Adam (before), the one-pass Adam in float32 and with bf16 matmuls; PyTorch
/// with its default (foreach) and fused Adam, in float32 and under bf16 autocast.
pub fn flow(b: &Bench, sheet: &mut Sheet) -> Result<FlowSteps> {
    util::step("bench: flow training steps");
    let rust_ways = [
        ("libtorch", "fp32"),
        ("one-pass", "fp32"),
        ("one-pass", "bf16"),
    ];
    let torch_ways = [
        (false, "fp32"),
        (true, "fp32"),
        (false, "bf16"),
        (true, "bf16"),
    ];
    let mut rust: Vec<Vec<Value>> = vec![Vec::new(); rust_ways.len()];
    let mut torch: Vec<Vec<Value>> = vec![Vec::new(); torch_ways.len()];
    for _ in 0..REPEATS {
        for (k, (optimizer, precision)) in rust_ways.iter().enumerate() {
            rust[k].push(
                b.adn(
                    &[
                        "bench",
                        "flow",
                        "--dim",
                        "768",
                        "--hidden",
                        "2048",
                        "--rows",
                        "96",
                        "--steps",
                        "10",
                        "--optimizer",
                        optimizer,
                        "--precision",
                        precision,
                        "--device",
                        "cpu",
                    ]
                    .map(String::from),
                    "adn bench flow",
                )?,
            );
        }
        for (k, (fused, precision)) in torch_ways.iter().enumerate() {
            torch[k].push(b.python(
                "flow",
                json!({"dim": 768, "hidden": 2048, "rows": 96, "steps": 10,
                       "fused": fused, "precision": precision}),
                "reference flow",
            )?);
        }
    }
    let rates = |runs: &[Value]| median(runs.iter().map(|v| rate(v, "steps")).collect());
    let r: Vec<f64> = rust.iter().map(|v| rates(v)).collect();
    let t: Vec<f64> = torch.iter().map(|v| rates(v)).collect();
    let parts = |runs: &[Value]| {
        let p = &runs[runs.len() - 1]["last_step_s"];
        let s = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
        format!(
            "last step: forward {:.2} s, backward {:.2} s, Adam {:.2} s",
            s("forward"),
            s("backward"),
            s("adam")
        )
    };
    let (peer32, peer16) = (t[0].max(t[1]), t[2].max(t[3]));
    sheet.rows.push(vec![
        "flow training fp32, 768-d, width 2048, 96 rows (steps/s)".into(),
        format!("{:.2}", r[1]),
        format!("{peer32:.2}"),
        format!("{:.2}", r[1] / peer32),
        format!(
            "one-pass Adam; {}; Rust with libtorch's Adam (before) {:.2}; PyTorch foreach Adam \
             {:.2}, fused Adam {:.2}; medians of {REPEATS}",
            parts(&rust[1]),
            r[0],
            t[0],
            t[1]
        ),
    ]);
    sheet.rows.push(vec![
        "flow training bf16 matmuls (steps/s)".into(),
        format!("{:.2}", r[2]),
        format!("{peer16:.2}"),
        format!("{:.2}", r[2] / peer16),
        format!(
            "bf16 copies written by the one-pass Adam; {}; {:.2}× the float32 libtorch-Adam \
             step; PyTorch autocast with foreach Adam {:.2}, fused Adam {:.2}; medians of \
             {REPEATS}",
            parts(&rust[2]),
            r[2] / r[0],
            t[2],
            t[3]
        ),
    ]);
    let label = |w: &(&str, &str)| format!("{}/{}", w.0, w.1);
    sheet.raw.insert(
        "flow".into(),
        json!({
            "rust": rust_ways.iter().map(label).zip(&rust).map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
            "pytorch": torch_ways.iter().map(|w| format!("{}/{}", if w.0 { "fused" } else { "foreach" }, w.1)).zip(&torch).map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<_, _>>(),
        }),
    );
    Ok(FlowSteps {
        before: r[0],
        bf16: r[2],
        peer_bf16: peer16,
    })
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

/// Section 8, where AlexNet's forward at 448 px × 3 scales spends its time, float32 and bf16
/// (PyTorch's profiler on the Rust extractor's layout and kernels: channels-last oneDNN
/// convolutions), each convolution's achieved rate against the matmul of its precision.
pub fn profile_alexnet(b: &Bench, peak: &Peak, sheet: &mut Sheet) -> Result<()> {
    util::step("bench: AlexNet 448 px profile (PyTorch profiler, float32 and bf16)");
    let profile = b.python(
        "profile_alexnet",
        json!({"image_size": 448, "batch": 16}),
        "reference profile_alexnet",
    )?;
    let mut md = String::from(
        "\n## Where AlexNet's time goes (448 px, 3 scales)\n\n\
         One forward of 16 images under PyTorch's profiler, channels-last as the Rust \
         extractor runs it (the same oneDNN kernels), in float32 and under bf16 autocast. \
         Rates are per convolution, against the matmul rate of the same precision.\n\n\
         | operation | fp32 ms | fp32 GFLOP/s | % of fp32 matmul | bf16 ms | bf16 GFLOP/s | % of bf16 matmul |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let kinds = |way: &str| {
        profile[way]["kinds"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let (k32, k16) = (kinds("fp32"), kinds("bf16"));
    let mut names: Vec<&String> = k32.keys().collect();
    let ms = |k: &serde_json::Map<String, Value>, n: &str, f: &str| {
        k.get(n).map_or(0.0, |v| v[f].as_f64().unwrap_or(0.0))
    };
    names.sort_by(|a, b| ms(&k32, b, "ms").total_cmp(&ms(&k32, a, "ms")));
    let rate = |k: &serde_json::Map<String, Value>, n: &str, peak: f64| {
        let (t, g) = (ms(k, n, "ms"), ms(&k32, n, "gflop"));
        if g > 0.0 && t > 0.0 {
            let r = g / (t / 1e3);
            (format!("{r:.0}"), format!("{:.0}", 100.0 * r / peak))
        } else {
            ("—".into(), "—".into())
        }
    };
    let (mut total32, mut total16) = (0.0, 0.0);
    for n in names {
        let (r32, p32) = rate(&k32, n, peak.fp32);
        let (r16, p16) = rate(&k16, n, peak.bf16);
        total32 += ms(&k32, n, "ms");
        total16 += ms(&k16, n, "ms");
        let _ = writeln!(
            md,
            "| {n} | {:.0} | {r32} | {p32} | {:.0} | {r16} | {p16} |",
            ms(&k32, n, "ms"),
            ms(&k16, n, "ms")
        );
    }
    let per_s = |way: &str| {
        profile[way]["images"].as_f64().unwrap_or(f64::NAN)
            / profile[way]["seconds"].as_f64().unwrap_or(f64::NAN)
    };
    let _ = writeln!(
        md,
        "| **total** | {total32:.0} | | | {total16:.0} | | |\n\n\
         Outside the profiler: {:.1} images/s in float32, {:.1} in bf16.\n",
        per_s("fp32"),
        per_s("bf16")
    );
    sheet.sections.push(md);
    sheet.raw.insert("profile_alexnet".into(), profile);
    Ok(())
}
