//! `cargo xtask setup`: libtorch for tch 0.26 on a fresh machine, with no manual step.
//!
//! PyPI's `torch==2.13.0` wheel carries libtorch (and its CUDA libraries). It is installed
//! into the git-ignored `.venv`, and `.libtorch` is linked to its `torch` folder; the
//! committed `.cargo/config.toml` points `LIBTORCH` there, so plain `cargo build/test/run`
//! work afterwards. A `LIBTORCH` set by the user wins and is only checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{self, Env};

/// The PyTorch release tch 0.26 is built against.
pub const TORCH_VERSION: &str = "2.13.0";
/// Python packages of the venv: libtorch itself, what weight conversion and the
/// golden-tensor scripts use, and the runtimes an exported model is checked in (ONNX's
/// exporter needs `onnx`; ONNX Runtime and OpenVINO run the result).
const PIP_PACKAGES: &[&str] = &[
    "torch==2.13.0",
    "safetensors==0.8.0",
    "numpy==2.4.6",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
    "openvino==2026.4.1",
];
/// Written into the venv once everything above is installed.
const MARKER: &str = ".adn-setup-complete";

/// Makes libtorch available; returns extra environment for child processes.
pub fn run() -> Result<Env> {
    let root = util::workspace_root();
    let own_link = root.join(".libtorch");
    // `cargo xtask` itself receives `.cargo/config.toml`'s LIBTORCH (the link made below);
    // any other value was set by the user.
    let user = std::env::var_os("LIBTORCH")
        .map(PathBuf::from)
        .filter(|p| *p != own_link);
    if let Some(dir) = user {
        check_libtorch(&dir).with_context(|| {
            format!(
                "LIBTORCH={} is set but is not a usable libtorch {TORCH_VERSION}; fix it, or unset \
                 LIBTORCH and run `cargo xtask setup` to install one into .venv",
                dir.display()
            )
        })?;
        util::step(&format!("using LIBTORCH={}", dir.display()));
        return Ok(Env::new());
    }

    let venv = root.join(".venv");
    let ready =
        fs::read_to_string(venv.join(MARKER)).is_ok_and(|m| m.trim() == PIP_PACKAGES.join(" "));
    let torch = match (ready, torch_dir(&venv)) {
        (true, Some(dir)) if check_libtorch(&dir).is_ok() => dir,
        _ => install(&venv)?,
    };
    link(&own_link, &torch, &root)?;
    Ok(Env::new())
}

fn install(venv: &Path) -> Result<PathBuf> {
    let python = venv.join("bin/python");
    if !python.exists() {
        let system = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        util::step(&format!("creating {} with {system}", venv.display()));
        let status = Command::new(&system)
            .args(["-m", "venv"])
            .arg(venv)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(_) => bail!(
                "`{system} -m venv {}` failed. Install Python 3 with its venv module \
                 (Debian: apt install python3-venv), or set LIBTORCH to a libtorch {TORCH_VERSION}",
                venv.display()
            ),
            Err(e) => bail!(
                "cannot run {system} ({e}). libtorch is installed from PyPI and needs Python 3 with \
                 pip: install it (Debian: apt install python3 python3-venv), point PYTHON at one, \
                 or set LIBTORCH to an existing libtorch {TORCH_VERSION}"
            ),
        }
    }
    util::step(&format!(
        "installing {} into {} (about 2.6 GB of wheels, a few minutes)",
        PIP_PACKAGES.join(" "),
        venv.display()
    ));
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--progress-bar",
            "off",
        ])
        .args(PIP_PACKAGES)
        .status()
        .with_context(|| format!("cannot run {}", python.display()))?;
    if !status.success() {
        bail!(
            "pip could not install {} (see its output above). Check the connection to PyPI and \
             that about 6 GB of disk are free, then run `cargo xtask setup` again; it resumes.",
            PIP_PACKAGES.join(" ")
        );
    }
    let torch =
        torch_dir(venv).context("pip reported success but the venv has no torch package")?;
    check_libtorch(&torch)?;
    fs::write(venv.join(MARKER), PIP_PACKAGES.join(" "))?;
    Ok(torch)
}

/// `<venv>/lib/python3.X/site-packages/torch`, whatever the Python minor version.
fn torch_dir(venv: &Path) -> Option<PathBuf> {
    let lib = fs::read_dir(venv.join("lib")).ok()?;
    lib.filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/torch"))
        .find(|p| p.join("lib").is_dir())
}

/// A usable libtorch folder has the shared library, the C++ headers and version 2.13.0.
fn check_libtorch(dir: &Path) -> Result<()> {
    let lib = dir.join("lib/libtorch_cpu.so");
    if !lib.exists() {
        bail!("{} is missing", lib.display());
    }
    let headers = dir.join("include/torch");
    if !headers.is_dir() {
        bail!("{} is missing (libtorch's C++ headers)", headers.display());
    }
    // A pip wheel has version.py; a libtorch zip has build-version.
    let version = fs::read_to_string(dir.join("version.py"))
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("__version__ = ")
                    .map(|v| v.trim_matches(['\'', '"']).to_string())
            })
        })
        .or_else(|| {
            fs::read_to_string(dir.join("build-version"))
                .ok()
                .map(|v| v.trim().to_string())
        });
    match version {
        Some(v) if v.split('+').next() == Some(TORCH_VERSION) => Ok(()),
        Some(v) => bail!(
            "{} holds libtorch {v}, but tch 0.26 needs {TORCH_VERSION}",
            dir.display()
        ),
        None => bail!("cannot tell the libtorch version of {}", dir.display()),
    }
}

/// Points the `.libtorch` link at `target`, relative to the workspace root.
fn link(link: &Path, target: &Path, root: &Path) -> Result<()> {
    let relative = target.strip_prefix(root).unwrap_or(target);
    if fs::read_link(link).is_ok_and(|t| t == relative) {
        return Ok(());
    }
    if link.symlink_metadata().is_ok() {
        fs::remove_file(link).with_context(|| format!("cannot replace {}", link.display()))?;
    }
    std::os::unix::fs::symlink(relative, link)
        .with_context(|| format!("cannot link {} to {}", link.display(), relative.display()))?;
    util::step(&format!(
        "libtorch: {} -> {}",
        link.display(),
        relative.display()
    ));
    Ok(())
}

/// Debian's Chromium, for the test that opens an experiment's page in a real browser:
/// installed with apt where this runs as root and it is missing. Never an error: without
/// it, `cargo xtask test` reports the browser test as skipped.
pub fn chromium() {
    let runs = |program: &str| {
        Command::new(program)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs("chromium") {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !runs("apt-get") {
        util::step("Chromium not installed (Debian: apt install chromium)");
        return;
    }
    util::step("installing Debian's Chromium (apt-get install chromium)");
    let install = || {
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "chromium",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let updated = || {
        Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !(install() || (updated() && install())) {
        util::step("Chromium could not be installed; the browser test will be skipped");
    }
}
