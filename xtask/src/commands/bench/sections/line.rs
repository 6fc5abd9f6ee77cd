//! The inspection line (#33): `adn predict` on a folder of image files against the same
//! trained run exported by `adn export` and run in PyTorch (TorchScript), ONNX Runtime and
//! OpenVINO, all on this CPU with the same threads; written to `results/bench/line.md` and
//! `line.json` by `cargo xtask bench` and, alone, by `cargo xtask bench --line`.
//!
//! The two sides do not do the same work, and the rows say so: `adn predict` goes from files
//! to decisions (decode, resize, the rotations, backbone, flow, the CSV), the exported model
//! from a tensor of resized, normalised images to scores.

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use std::fmt::Write as _;

use super::median;
use crate::commands::bench::harness::*;

/// Images per call of the exported model.
const EXPORT_BATCH: usize = 8;
/// Images the export is checked on, evenly spaced over the test set.
const CHECKED: usize = 64;
/// Calls of each exported runtime that are timed (after one warm-up).
const CALLS: usize = 10;

pub fn line(b: &Bench) -> Result<()> {
    let scratch = b.root.join("results/bench/.line");
    std::fs::create_dir_all(&scratch)?;
    let run = scratch.join("run");
    let folder = b.root.join(DATA_ROOT).join(CATEGORY).join("test");
    let path = |p: &std::path::Path| p.display().to_string();
    // The bench's base config (pretrained Lite0 at 160 px, 2 test rotations), one
    // meta-epoch: the model's quality does not change its speed. A tenth of the good
    // training images is held out, so that decisions have a threshold.
    b.adn_run(&with_sets(
        &["run", BASE, "--out", &path(&run), "--force", "--quiet"],
        &[
            "model.weights=\"weights/efficientnet-lite0.safetensors\"".into(),
            "train.meta_epochs=1".into(),
            "train.validation_fraction=0.1".into(),
        ],
    ))?;
    let predict_out = scratch.join("predict");
    let mut rates = Vec::new();
    let mut images = 0;
    for _ in 0..REPEATS {
        output(
            Command::new(&b.adn)
                .current_dir(&b.root)
                .envs(b.env.iter().cloned())
                .env("OMP_NUM_THREADS", b.threads.to_string())
                .args(["--threads", &b.threads.to_string(), "predict"])
                .arg(&run)
                .arg(&folder)
                .args(["--quiet", "--force", "--out", &path(&predict_out)]),
            "adn predict",
        )?;
        let record: Value =
            serde_json::from_str(&std::fs::read_to_string(predict_out.join("predict.json"))?)?;
        images = record["scored"].as_u64().unwrap_or(0);
        rates.push(images as f64 / record["wall_s"].as_f64().unwrap_or(f64::NAN));
    }
    let predict_rate = median(rates.clone());

    let export_out = scratch.join("export");
    b.adn_run(&[
        "export".into(),
        path(&run),
        "--batch".into(),
        EXPORT_BATCH.to_string(),
        "--check".into(),
        path(&folder),
        "--check-images".into(),
        CHECKED.to_string(),
        "--out".into(),
        path(&export_out),
        "--force".into(),
    ])?;
    let peers = json_of(
        &output(
            Command::new(&b.python)
                .current_dir(&b.root)
                .env("OMP_NUM_THREADS", b.threads.to_string())
                .args(["-W", "ignore", "bench/export/check.py"])
                .arg(&export_out)
                .args(["--onnx", "--time", &CALLS.to_string()])
                .args(["--threads", &b.threads.to_string()]),
            "bench/export/check.py",
        )?,
        "bench/export/check.py",
    )
    .context("the exported model's runtimes")?;
    let rate = |key: &str| {
        peers[format!("{key}_images_per_s")]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    let rel = |key: &str| peers[format!("{key}_max_rel")].as_f64().unwrap_or(f64::NAN);
    let mut md = String::from("# The inspection line: adn predict and the exported model\n\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench --line` (and by `cargo xtask bench`) on this machine \
         ({}, {} threads for every side). One run of the bench's base config (pretrained \
         EfficientNet-Lite0, 160 px, 2 test rotations, flow 8 × 256, one meta-epoch, a tenth \
         of the good images held out for thresholds) scores the {images} test images of the \
         MVTec stand-in `fabric`. `adn predict` goes from files to decisions: decoding, \
         resizing, the rotations, backbone, flow and the CSV, no feature cache (median of \
         {REPEATS}). The exported model (`adn export --batch {EXPORT_BATCH}`) goes from a \
         tensor of resized, normalised images to scores: no decoding, so its rate is an upper \
         bound for a line that decodes too ({CALLS} timed calls after a warm-up). The relative \
         difference is to `adn`'s scores of the {CHECKED} images the export was checked on.\n",
        super::super::write::cpu_name(),
        b.threads
    );
    md.push_str(
        "| runtime | images/s | adn predict / it | largest relative difference |\n\
         |---|---:|---:|---:|\n",
    );
    let _ = writeln!(
        md,
        "| adn predict (files → decisions) | {predict_rate:.1} | 1.00 | 0 |"
    );
    for (label, key) in [
        ("TorchScript in PyTorch (tensors → scores)", "torchscript"),
        ("ONNX Runtime (tensors → scores)", "onnxruntime"),
        ("OpenVINO, f32 (tensors → scores)", "openvino"),
    ] {
        let _ = writeln!(
            md,
            "| {label} | {:.1} | {:.2} | {:.1e} |",
            rate(key),
            predict_rate / rate(key),
            rel(key)
        );
    }
    let dir = b.root.join("results/bench");
    adn_util::atomic::write_file(&dir.join("line.md"), md.as_bytes())?;
    adn_util::atomic::write_file(
        &dir.join("line.json"),
        serde_json::to_string_pretty(
            &json!({"predict_images_per_s": rates, "images": images, "exported": peers}),
        )?
        .as_bytes(),
    )?;
    std::fs::remove_dir_all(&scratch).ok();
    Ok(())
}
