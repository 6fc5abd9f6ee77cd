//! `cargo xtask bench`: the Rust pipeline and the PyTorch reference
//! (`bench/reference/differnet.py`) doing the same work on the same machine, one after the
//! other with the same thread count, written to `results/bench/bench.json` and a Markdown
//! table of ratios (`results/bench/README.md`). [`harness`] runs the two sides,
//! [`sections`] measures, [`write`] writes.

mod harness;
mod sections;
mod write;

use std::process::Command;

use anyhow::Result;

use crate::{report, util};
use harness::*;
use sections::Sheet;

pub fn run() -> Result<()> {
    let (adn, env) = report::build_adn()?;
    let root = util::workspace_root();
    let python = adn_util::python::venv_python(&root);
    util::step("bench: Pillow for the PyTorch reference's DataLoader (venv, once)");
    util::run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "pillow==12.0.0",
    ]))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let b = Bench {
        root: root.clone(),
        adn,
        python,
        env,
        threads,
    };
    std::fs::create_dir_all(root.join("results/bench"))?;
    if !root.join(DATA_ROOT).join(CATEGORY).is_dir() {
        b.adn(
            &[
                "data".into(),
                "make".into(),
                "--kind".into(),
                "synthetic-mvtec".into(),
                "--out".into(),
                DATA_ROOT.into(),
            ],
            "adn data make",
        )
        .ok();
    }
    let matmul = b.adn(
        &["bench".into(), "matmul".into(), "--n".into(), "1024".into()],
        "adn bench matmul",
    )?;
    let peak = matmul["gflops"].as_f64().unwrap_or(f64::NAN);
    let mut sheet = Sheet::default();
    let extraction = sections::extraction(&b, peak, &mut sheet)?;
    sections::scoring(&b, &mut sheet)?;
    sections::flow(&b, &mut sheet)?;
    let full = sections::full_runs(&b, &mut sheet)?;
    let profile = sections::profile(&b, &mut sheet)?;
    sheet.raw.insert("matmul".into(), matmul);

    let worst = extraction
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("four cases");
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let below_half: Vec<String> = extraction
        .iter()
        .filter(|e| e.2 < 50.0)
        .map(|e| format!("{} {:.0} %", e.0, e.2))
        .collect();
    let targets = vec![
        [
            "feature extraction ≥ 1.0 × PyTorch".to_string(),
            format!("lowest {:.2} ({})", worst.1, worst.0),
            met(worst.1 >= 1.0).into(),
        ],
        [
            "full run ≥ 3 × faster".into(),
            format!("{:.2} × (cold cache)", full.torch_cold / full.rust_cold),
            met(full.torch_cold / full.rust_cold >= 3.0).into(),
        ],
        [
            "backbone ≥ 50 % of matmul GFLOP/s".into(),
            if below_half.is_empty() {
                "every case".into()
            } else {
                format!("below: {}", below_half.join(", "))
            },
            if below_half.is_empty() {
                "met".into()
            } else {
                "AlexNet met; Lite0 **not met** (profile below)".into()
            },
        ],
        [
            "demo peak memory < 4 GB".into(),
            format!("{:.0} MB (one demo run)", full.rust_mem),
            met(full.rust_mem < 4096.0).into(),
        ],
        [
            "AUROC within 0.01 of PyTorch".into(),
            format!("Δ {:+.4} (means of 3 seeds)", full.delta),
            met(full.delta.abs() <= 0.01).into(),
        ],
        [
            "paper schedule, one category, H200 < 5 min".into(),
            "not measured here: `ci/gpu-bench.sh` on a GPU machine".into(),
            "**not measured**".into(),
        ],
    ];
    write::write(
        &root,
        &sheet.rows,
        &targets,
        &profile,
        sheet.raw,
        peak,
        threads,
    )
}
