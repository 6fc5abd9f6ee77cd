//! Where the time goes: the PyTorch profiles of EfficientNet-Lite0 (section 6) and of
//! AlexNet's convolutions.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{Value, json};

use super::super::harness::*;
use super::{Peak, Sheet};
use crate::util;

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
