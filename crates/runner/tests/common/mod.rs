//! What the runner's end-to-end tests share: the `adn` binary run on the generated smoke set.
#![allow(dead_code)] // each test file uses a part

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `adn --threads 1 SUBCOMMAND`, run from the workspace root.
pub fn adn(subcommand: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adn"));
    cmd.current_dir(workspace_root())
        .args(["--threads", "1", subcommand]);
    cmd
}

/// Runs `adn run experiments/smoke.toml` with its data and record in `dir`.
pub fn run_smoke(dir: &Path, name: &str, extra: &[&str]) -> std::process::Output {
    run_smoke_with(
        &dir.join("data"),
        &dir.join("cache"),
        &dir.join(name),
        extra,
    )
}

/// `adn run experiments/smoke.toml` on the data in `data` (generated there when missing),
/// with the feature cache in `cache` and the record in `out`.
pub fn run_smoke_with(
    data: &Path,
    cache: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    smoke_command(data, cache, out, extra)
        .output()
        .expect("adn runs")
}

/// The command [`run_smoke_with`] runs.
pub fn smoke_command(data: &Path, cache: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = adn("run");
    cmd.arg(workspace_root().join("experiments/smoke.toml"))
        .arg("--set")
        .arg(format!("data.root={:?}", data.display().to_string()))
        .arg("--out")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--device", "cpu", "--quiet"])
        .args(extra);
    cmd
}

pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// One meta-epoch of one sub-epoch: enough to exercise a run end to end.
pub const SHORT: [&str; 4] = [
    "--set",
    "train.meta_epochs=1",
    "--set",
    "train.sub_epochs=1",
];

pub fn assert_ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first `n` good and `n` anomalous (`circle`) test images, by name, of the smoke set
/// generated in `dir/data`, copied into `to/good` and `to/circle`.
pub fn copy_test_images(dir: &Path, to: &Path, n: usize) {
    for class in ["good", "circle"] {
        let mut images: Vec<PathBuf> = std::fs::read_dir(dir.join("data/shapes/test").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        images.sort();
        std::fs::create_dir_all(to.join(class)).unwrap();
        for img in &images[..n] {
            std::fs::copy(img, to.join(class).join(img.file_name().unwrap())).unwrap();
        }
    }
}
