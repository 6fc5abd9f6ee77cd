//! Speed: feature extraction against every PyTorch peer (section 1), test-time scoring
//! (2) and flow training steps (3).

use anyhow::Result;
use serde_json::{Value, json};

use super::super::harness::*;
use super::{Sheet, median};
use crate::util;

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

/// The machine's matrix-multiply rates, GFLOP/s.
pub struct Peak {
    pub fp32: f64,
    pub bf16: f64,
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
