//! `cargo xtask bench`: the Rust pipeline and the PyTorch reference
//! (`bench/reference/differnet.py`) doing the same work on the same machine, one after the
//! other with the same thread count, written to `results/bench/bench.json` and a Markdown
//! table of ratios (`results/bench/README.md`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{report, setup, util};

/// The data every measurement uses: the generated MVTec stand-in, category `fabric`
/// (60 train, 120 test images, 256 px).
const DATA_ROOT: &str = "data/synthetic-mvtec";
const CATEGORY: &str = "fabric";
const BASE: &str = "bench/base.toml";

fn json_of(out: &[u8], what: &str) -> Result<Value> {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{what} printed no JSON: {text}"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: bad JSON {line}"))
}

fn output(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(out.stdout)
}

struct Bench {
    root: PathBuf,
    adn: PathBuf,
    python: PathBuf,
    env: util::Env,
    threads: usize,
}

impl Bench {
    fn adn(&self, args: &[String], what: &str) -> Result<Value> {
        let out = output(
            Command::new(&self.adn)
                .current_dir(&self.root)
                .envs(self.env.iter().cloned())
                .env("OMP_NUM_THREADS", self.threads.to_string())
                .arg("--threads")
                .arg(self.threads.to_string())
                .args(args),
            what,
        )?;
        json_of(&out, what)
    }

    fn python(&self, mode: &str, config: Value, what: &str) -> Result<Value> {
        let out_file = self
            .root
            .join(format!("results/bench/.pytorch-{mode}.json"));
        let mut config = config;
        config["threads"] = json!(self.threads);
        output(
            Command::new(&self.python)
                .current_dir(&self.root)
                .env("OMP_NUM_THREADS", self.threads.to_string())
                .arg("bench/reference/differnet.py")
                .arg(mode)
                .arg("--config")
                .arg(config.to_string())
                .arg("--out")
                .arg(&out_file),
            what,
        )?;
        let v = serde_json::from_str(&std::fs::read_to_string(&out_file)?)?;
        std::fs::remove_file(&out_file).ok();
        Ok(v)
    }
}

/// The backbone settings of one extraction case.
struct Case {
    name: &'static str,
    backbone: &'static str,
    size: i64,
    scales: i64,
}

const CASES: [Case; 4] = [
    Case {
        name: "AlexNet 224 px, 1 scale",
        backbone: "alexnet",
        size: 224,
        scales: 1,
    },
    Case {
        name: "AlexNet 448 px, 3 scales (paper)",
        backbone: "alexnet",
        size: 448,
        scales: 3,
    },
    Case {
        name: "EfficientNet-Lite0 224 px, 1 scale",
        backbone: "efficientnet-lite0",
        size: 224,
        scales: 1,
    },
    Case {
        name: "EfficientNet-Lite0 448 px, 3 scales",
        backbone: "efficientnet-lite0",
        size: 448,
        scales: 3,
    },
];

fn case_sets(c: &Case) -> Vec<String> {
    let mut sets = vec![
        format!("model.backbone=\"{}\"", c.backbone),
        format!("model.image_size={}", c.size),
        format!("model.scales={}", c.scales),
    ];
    if c.backbone == "alexnet" {
        // Seeded random AlexNet (the ImageNet file cannot be fetched here); speed does not
        // depend on the values. The Lite0 cases use the real weights on both sides.
        sets.push("model.feature_layers=[\"pool5\"]".into());
    } else {
        sets.push("model.weights=\"weights/efficientnet-lite0.safetensors\"".into());
    }
    sets
}

fn with_sets(args: &[&str], sets: &[String]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for s in sets {
        v.push("--set".into());
        v.push(s.clone());
    }
    v
}

fn rate(v: &Value, count: &str) -> f64 {
    v[count].as_f64().unwrap_or(f64::NAN) / v["seconds"].as_f64().unwrap_or(f64::NAN)
}

pub fn run() -> Result<()> {
    let (adn, env) = report::build_adn()?;
    let root = util::workspace_root();
    let python = setup::venv_python(&root);
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
    let mut rows = Vec::new();
    let mut raw = serde_json::Map::new();

    // 1. Feature extraction.
    for c in &CASES {
        util::step(&format!("bench: features, {}", c.name));
        let sets = case_sets(c);
        let (images, views) = if c.size > 300 { (8, 4) } else { (32, 4) };
        let rust = b.adn(
            &with_sets(
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
            ),
            "adn bench extract",
        )?;
        let torch = b.python(
            "extract",
            json!({
                "category": format!("{DATA_ROOT}/{CATEGORY}"),
                "backbone": if c.backbone == "alexnet" { "alexnet" } else { "lite0" },
                "weights": if c.backbone == "alexnet" { Value::Null } else { json!("weights/efficientnet-lite0.safetensors") },
                "image_size": c.size, "scales": c.scales,
                "feature_layers": ["stage5", "stage6", "stage7"],
                "images": images, "views": views, "batch_size": 16, "seed": 0,
            }),
            "reference extract",
        )?;
        let (r, t) = (rate(&rust, "forwards"), rate(&torch, "forwards"));
        let gflops = 2.0 * rust["macs_per_forward"].as_f64().unwrap_or(f64::NAN) * r / 1e9;
        rows.push(vec![
            format!("features: {} (images/s)", c.name),
            format!("{r:.1}"),
            format!("{t:.1}"),
            format!("{:.2}", r / t),
            format!(
                "backbone {gflops:.1} GFLOP/s = {:.0} % of matmul",
                100.0 * gflops / peak
            ),
        ]);
        raw.insert(
            format!("extract/{}", c.name),
            json!({"rust": rust, "pytorch": torch}),
        );
    }

    // 2. Test-time scoring with 64 rotations.
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
    rows.push(vec![
        "scoring, 64 rotations, Lite0 224 px (images/s)".into(),
        format!("{r:.2}"),
        format!("{t:.2}"),
        format!("{:.2}", r / t),
        "all 64 views of an image in one forward".into(),
    ]);
    raw.insert("score".into(), json!({"rust": rust, "pytorch": torch}));

    // 3. Flow training steps (the paper's flow: 768 → 8 blocks × 2048, 24 × 4 rows).
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
    rows.push(vec![
        "flow training, 768-d, width 2048, 96 rows (steps/s)".into(),
        format!("{r:.2}"),
        format!("{t:.2}"),
        format!("{:.2}", r / t),
        "same libtorch kernels".into(),
    ]);
    raw.insert("flow".into(), json!({"rust": rust, "pytorch": torch}));

    // 4-5. One full train + evaluate run of the demo's base config on the stand-in.
    util::step("bench: full run (demo config on the MVTec stand-in), cold cache");
    let run_dir = root.join("results/bench/.run");
    let cache_dir = root.join("results/bench/.cache");
    std::fs::remove_dir_all(&cache_dir).ok();
    let mut args = with_sets(&["run", BASE], &case_sets(&CASES[2]));
    args.extend(
        [
            "--set",
            "model.image_size=160",
            "--out",
            &run_dir.display().to_string(),
            "--cache-dir",
            &cache_dir.display().to_string(),
            "--force",
            "--quiet",
            "--device",
            "cpu",
        ]
        .map(String::from),
    );
    output(
        Command::new(&b.adn)
            .current_dir(&root)
            .envs(b.env.iter().cloned())
            .env("OMP_NUM_THREADS", threads.to_string())
            .arg("--threads")
            .arg(threads.to_string())
            .args(&args),
        "adn run",
    )?;
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json"))?)?;
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("metrics.json"))?)?;
    let torch = b.python(
        "run",
        json!({
            "category": format!("{DATA_ROOT}/{CATEGORY}"), "backbone": "lite0",
            "weights": "weights/efficientnet-lite0.safetensors", "image_size": 160, "scales": 1,
            "feature_layers": ["stage5", "stage6", "stage7"], "batch_size": 24, "hidden": 256,
            "meta_epochs": 4, "sub_epochs": 4, "train_transforms": 2, "test_transforms": 2,
            "quarter_turns": true, "lr": 2e-4, "seed": 0,
        }),
        "reference run",
    )?;
    let rust_wall = manifest["wall_s"]["total"].as_f64().unwrap_or(f64::NAN);
    let torch_wall = torch["seconds"].as_f64().unwrap_or(f64::NAN);
    rows.push(vec![
        "full run, 16 epochs, Lite0 160 px (wall s)".into(),
        format!("{rust_wall:.1}"),
        format!("{torch_wall:.1}"),
        format!("{:.2} (speed-up)", torch_wall / rust_wall),
        "features once (cache) vs every epoch".into(),
    ]);
    let rust_mem = manifest["peak_rss_mb"].as_f64().unwrap_or(f64::NAN);
    let torch_mem = torch["peak_rss_mb"].as_f64().unwrap_or(f64::NAN);
    rows.push(vec![
        "full run, peak memory (MB)".into(),
        format!("{rust_mem:.0}"),
        format!("{torch_mem:.0}"),
        format!("{:.2}", rust_mem / torch_mem),
        "process peak RSS".into(),
    ]);
    let (ra, ta) = (
        metrics["auroc_last"].as_f64().unwrap_or(f64::NAN),
        torch["auroc_last"].as_f64().unwrap_or(f64::NAN),
    );
    rows.push(vec![
        "full run, auroc_last".into(),
        format!("{ra:.4}"),
        format!("{ta:.4}"),
        format!("Δ {:+.4}", ra - ta),
        "different random init, rotations and batch order".into(),
    ]);
    raw.insert(
        "run".into(),
        json!({"rust": {"manifest": manifest, "metrics": metrics}, "pytorch": torch}),
    );
    raw.insert("matmul".into(), matmul.clone());
    std::fs::remove_dir_all(&run_dir).ok();
    std::fs::remove_dir_all(&cache_dir).ok();

    write(&root, &rows, raw, peak, threads)
}

fn write(
    root: &Path,
    rows: &[Vec<String>],
    raw: serde_json::Map<String, Value>,
    peak: f64,
    threads: usize,
) -> Result<()> {
    let mut md = String::from("# Benchmarks: Rust vs the PyTorch reference\n\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench`; both sides ran one after the other on this machine \
         with {threads} threads, the same libtorch (2.13.0), weights and data (the generated \
         MVTec stand-in `fabric`). Ratio = Rust / PyTorch for rates, PyTorch / Rust for wall \
         time. Matrix multiply (1024², float32): {peak:.1} GFLOP/s.\n"
    );
    md.push_str("| measurement | Rust | PyTorch | ratio | note |\n|---|---:|---:|---:|---|\n");
    for r in rows {
        let _ = writeln!(md, "| {} |", r.join(" | "));
    }
    let dir = root.join("results/bench");
    std::fs::write(dir.join("README.md"), &md)?;
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&Value::Object(raw))?,
    )?;
    println!("{md}");
    util::step(&format!("bench: {}", dir.display()));
    Ok(())
}
