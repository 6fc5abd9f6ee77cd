//! How the bench runs each side: `adn` and the PyTorch reference as subprocesses printing
//! JSON, and the extraction cases both sides run.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::util;

/// The data every measurement uses: the generated MVTec stand-in, category `fabric`
/// (60 train, 120 test images, 256 px).
pub const DATA_ROOT: &str = "data/synthetic-mvtec";
pub const CATEGORY: &str = "fabric";
pub const BASE: &str = "bench/base.toml";

pub fn json_of(out: &[u8], what: &str) -> Result<Value> {
    let text = String::from_utf8_lossy(out);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{what} printed no JSON: {text}"))?;
    serde_json::from_str(line).with_context(|| format!("{what}: bad JSON {line}"))
}

pub fn output(cmd: &mut Command, what: &str) -> Result<Vec<u8>> {
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

pub struct Bench {
    pub root: PathBuf,
    pub adn: PathBuf,
    pub python: PathBuf,
    pub env: util::Env,
    pub threads: usize,
}

impl Bench {
    pub fn adn(&self, args: &[String], what: &str) -> Result<Value> {
        self.adn_with(args, what, "channels-last")
    }

    /// `adn` with the activation layout `memory_format` (`ADN_MEMORY_FORMAT`).
    pub fn adn_with(&self, args: &[String], what: &str, memory_format: &str) -> Result<Value> {
        let out = output(
            Command::new(&self.adn)
                .current_dir(&self.root)
                .envs(self.env.iter().cloned())
                .env("ADN_MEMORY_FORMAT", memory_format)
                .env("OMP_NUM_THREADS", self.threads.to_string())
                .arg("--threads")
                .arg(self.threads.to_string())
                .args(args),
            what,
        )?;
        json_of(&out, what)
    }

    /// `adn` with `args` (a run), its output discarded.
    pub fn adn_run(&self, args: &[String]) -> Result<()> {
        output(
            Command::new(&self.adn)
                .current_dir(&self.root)
                .envs(self.env.iter().cloned())
                .env("OMP_NUM_THREADS", self.threads.to_string())
                .arg("--threads")
                .arg(self.threads.to_string())
                .args(args),
            "adn run",
        )?;
        Ok(())
    }

    pub fn python(&self, mode: &str, config: Value, what: &str) -> Result<Value> {
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
pub struct Case {
    pub name: &'static str,
    pub backbone: &'static str,
    pub size: i64,
    pub scales: i64,
}

pub const CASES: [Case; 4] = [
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

pub fn case_sets(c: &Case) -> Vec<String> {
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

pub fn with_sets(args: &[&str], sets: &[String]) -> Vec<String> {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for s in sets {
        v.push("--set".into());
        v.push(s.clone());
    }
    v
}

/// Repeats of each extraction measurement (the median is reported).
pub const REPEATS: usize = 3;

/// The seeds of the full-run comparison.
pub const SEEDS: [u64; 3] = [0, 1, 2];

pub fn rate(v: &Value, count: &str) -> f64 {
    v[count].as_f64().unwrap_or(f64::NAN) / v["seconds"].as_f64().unwrap_or(f64::NAN)
}
