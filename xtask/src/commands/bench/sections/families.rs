//! The flow families (#32) against anomalib's modules: `bench/families.py` runs
//! `crates/flows/examples/families_bench.rs` and `bench/reference/families.py` in turn on
//! the same shapes and threads, and writes `results/bench/families.{json,md}`; this section
//! runs it and carries its ratios into the bench's table and targets.

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use super::super::harness::Bench;
use super::Sheet;
use crate::util;

/// Rounds of each side: the median is reported.
const ROUNDS: &str = "3";

/// Runs the families bench; returns its targets (training and scoring ≥ 1.0 × anomalib).
pub fn families(b: &Bench, sheet: &mut Sheet) -> Result<Vec<[String; 3]>> {
    util::step("bench: anomalib 2.7.0 (the flow families' reference) into the venv, once");
    util::run(Command::new(&b.python).current_dir(&b.root).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-c",
        "crates/flows/goldens/constraints.txt",
        "anomalib==2.7.0",
    ]))?;
    util::step("bench: the flow families, Rust and anomalib side by side");
    util::cargo(
        &b.root,
        &b.env,
        &[
            "build",
            "--quiet",
            "--release",
            "-p",
            "adn-flows",
            "--example",
            "families_bench",
        ],
    )?;
    util::run(
        Command::new(&b.python)
            .current_dir(&b.root)
            .envs(b.env.iter().cloned())
            .arg("bench/families.py")
            .args([b.threads.to_string().as_str(), ROUNDS]),
    )?;
    let path = b.root.join("results/bench/families.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let summary: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut targets = Vec::new();
    for (family, label) in [
        ("fastflow", "FastFlow"),
        ("csflow", "CS-Flow"),
        ("cflow", "CFlow-AD"),
    ] {
        for (key, what) in [
            ("train_steps_per_s", "training (steps/s)"),
            ("score_images_per_s", "scoring (images/s)"),
        ] {
            let m = &summary[format!("{family}.{key}")];
            let num = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
            let (rust, theirs, ratio) = (num("rust"), num("anomalib"), num("ratio"));
            sheet.rows.push(vec![
                format!("{label} {what}"),
                format!("{rust:.2}"),
                format!("{theirs:.2}"),
                format!("{ratio:.2}"),
                "peer: anomalib 2.7.0's module on the same feature shapes (families.md)".into(),
            ]);
            targets.push([
                format!("{label} {what}: Rust ≥ 1.0 × anomalib (#32)"),
                format!("{ratio:.2}"),
                if ratio >= 1.0 { "met" } else { "**not met**" }.into(),
            ]);
        }
    }
    sheet.raw.insert("families".into(), summary);
    Ok(targets)
}
