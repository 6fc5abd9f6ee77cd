//! The bench's outputs: `results/bench/bench.json` and the Markdown table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::sections::{Peak, Sheet};
use crate::util;

pub fn write(
    root: &Path,
    sheet: &Sheet,
    targets: &[[String; 3]],
    profile: &Value,
    peak: &Peak,
    threads: usize,
) -> Result<()> {
    let mut md = String::from("# Benchmarks: Rust vs PyTorch at its best\n\n");
    let cpu = cpu_name();
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench`; every side ran one after the other on this machine \
         ({cpu}, {threads} threads) with the same libtorch (2.13.0), weights and data (the \
         generated MVTec stand-in `fabric`). Ratio = Rust / the fastest peer of the same \
         precision for rates, PyTorch / Rust for wall time. Matrix multiply 2048², \
         {threads} threads: float32 {:.1} GFLOP/s, bf16 {:.1} GFLOP/s ({:.2} ×).\n\n\
         The peers (`bench/reference/differnet.py`): DifferNet the ordinary PyTorch way \
         (eager NCHW modules, a DataLoader over PIL, the backbone every epoch), the same \
         modules channels-last, under `torch.compile`, and converted to OpenVINO's runtime \
         (what anomalib deploys with); in bf16, channels-last and compiled under \
         `torch.autocast(\"cpu\", dtype=torch.bfloat16)` and OpenVINO at bf16 inference \
         precision. The Rust side runs channels-last activations (`ADN_MEMORY_FORMAT`), \
         EfficientNet's BatchNorm folded into its convolutions, symmetric padding inside the \
         convolution, ReLU in place, bf16 weights cast once (`model.precision`), and each \
         (image, rotation) feature computed once and cached. The flow trains with a one-pass \
         Adam (`adn_flows::optim`) and, at `train.precision = \"bf16\"`, bf16 copies of its \
         weights that the same pass rewrites.\n",
        peak.fp32,
        peak.bf16,
        peak.bf16 / peak.fp32
    );
    md.push_str("## Targets (issues #8 and #16)\n\n| target | measured | |\n|---|---|---|\n");
    for t in targets {
        let _ = writeln!(md, "| {} |", t.join(" | "));
    }
    md.push_str("\n## Measurements\n\n");
    md.push_str("| measurement | Rust | fastest peer | ratio | note |\n|---|---:|---:|---:|---|\n");
    for r in &sheet.rows {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    for section in &sheet.sections {
        md.push_str(section);
    }
    md.push_str(&profile_table(profile));
    md.push_str(
        "\n## The inspection line\n\n`adn predict` on a folder of files against the same run \
         exported by `adn export` in PyTorch, ONNX Runtime and OpenVINO: [line.md](line.md).\n",
    );
    let dir = root.join("results/bench");
    std::fs::write(dir.join("README.md"), &md)?;
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&Value::Object(sheet.raw.clone()))?,
    )?;
    println!("{md}");
    util::step(&format!("bench: {}", dir.display()));
    Ok(())
}

/// This machine's CPU model, as /proc/cpuinfo names it.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The Lite0 profile as a Markdown section: time and FLOP shares by kind of operation.
fn profile_table(profile: &Value) -> String {
    let mut md = String::from(
        "\n## Where EfficientNet-Lite0's time goes\n\n\
         One forward of 64 images at 224 px under PyTorch's profiler, the reference's way \
         (NCHW, separate BatchNorm, padded copies) and the Rust extractor's way rebuilt in \
         PyTorch (same kernels; see `profile` in the reference). GFLOP/s is per kind of \
         operation.\n\n| operation | PyTorch ms | % | Rust-way ms | % | GFLOP | Rust-way GFLOP/s |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    let kinds = |way: &str| {
        profile[way]["kinds"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    };
    let (torch, rust) = (kinds("pytorch"), kinds("rust"));
    let total = |k: &serde_json::Map<String, Value>| {
        k.values()
            .map(|v| v["ms"].as_f64().unwrap_or(0.0))
            .sum::<f64>()
    };
    let (tt, rt) = (total(&torch), total(&rust));
    let mut names: Vec<&String> = torch.keys().chain(rust.keys()).collect();
    names.sort();
    names.dedup();
    names.sort_by(|a, b| {
        let ms = |n: &String| {
            torch
                .get(n)
                .map_or(0.0, |v| v["ms"].as_f64().unwrap_or(0.0))
        };
        ms(b).total_cmp(&ms(a))
    });
    for name in names {
        let get = |k: &serde_json::Map<String, Value>, f: &str| {
            k.get(name).map_or(0.0, |v| v[f].as_f64().unwrap_or(0.0))
        };
        let (t_ms, r_ms, gflop) = (get(&torch, "ms"), get(&rust, "ms"), get(&torch, "gflop"));
        let rate = if gflop > 0.0 && r_ms > 0.0 {
            format!("{:.1}", gflop / (r_ms / 1e3))
        } else {
            "—".into()
        };
        let _ = writeln!(
            md,
            "| {name} | {t_ms:.0} | {:.1} | {r_ms:.0} | {:.1} | {gflop:.1} | {rate} |",
            100.0 * t_ms / tt,
            100.0 * r_ms / rt
        );
    }
    let per_s = |way: &str| {
        profile[way]["images"].as_f64().unwrap_or(f64::NAN)
            / profile[way]["seconds"].as_f64().unwrap_or(f64::NAN)
    };
    let _ = writeln!(
        md,
        "| **total** | {tt:.0} | | {rt:.0} | | | |\n\n\
         Under the profiler: {:.1} images/s the reference's way, {:.1} the Rust way.\n",
        per_s("pytorch"),
        per_s("rust")
    );
    md
}
