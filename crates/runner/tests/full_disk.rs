//! A full disk, for real: a 64 KiB tmpfs mounted in a private mount namespace (`unshare`),
//! so nothing outside the test sees it. Ignored by plain `cargo test` because not every
//! machine lets a process mount one; `cargo xtask test` runs it where it can and says so
//! where it cannot.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{SHORT, assert_ok, json, run_smoke, workspace_root};

/// Runs `adn ARGS` with a 64 KiB tmpfs mounted at `mount` (created first).
fn adn_on_full_tmpfs(mount: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(mount).unwrap();
    Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount -t tmpfs -o size=64k tmpfs "$0" && shift && exec "$@""#)
        .arg(mount)
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_adn"))
        .args(["--threads", "1"])
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("unshare runs")
}

/// Runs `adn --threads 1 ARGS` (made from the mount point) with a tmpfs of `size` mounted at
/// `mount`; its stdout is what the mount holds afterwards, listed from inside the private
/// namespace (the only place that sees it), and adn's own output goes to stderr.
fn adn_then_list_tmpfs(
    mount: &Path,
    size: &str,
    args: impl Fn(&Path) -> Vec<std::ffi::OsString>,
) -> Output {
    std::fs::create_dir_all(mount).unwrap();
    Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c"])
        .arg(
            r#"mount -t tmpfs -o size="$1" tmpfs "$0" || exit 99; m="$0"; shift
               "$@" >&2; rc=$?; ls -A "$m"; exit $rc"#,
        )
        .arg(mount)
        .arg(size)
        .arg(env!("CARGO_BIN_EXE_adn"))
        .args(["--threads", "1"])
        .args(args(mount))
        .current_dir(workspace_root())
        .output()
        .expect("unshare runs")
}

#[test]
#[ignore = "needs a private tmpfs mount (unshare); `cargo xtask test` runs it where it can"]
fn a_full_disk_is_an_error_naming_the_file_or_only_costs_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");

    // A generator fills the disk: a failure naming the file, no dataset that looks whole.
    let out = adn_on_full_tmpfs(
        &full,
        &[
            "data",
            "make",
            "--kind",
            "smoke",
            "--out",
            &format!("{}/smoke", full.display()),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a full disk was reported as success: {stderr}"
    );
    assert!(
        stderr.contains("No space left on device") && stderr.contains(".png"),
        "{stderr}"
    );
    // Nothing was left in the unshared mount's folder on the real disk either.
    assert!(!full.join("smoke/shapes").exists());

    // The feature cache fills the disk: the run goes on without it, with the same scores.
    let reference = run_smoke(dir.path(), "reference", &SHORT);
    assert_ok(&reference);
    let cache = format!("{}/cache", full.display());
    let data = format!(
        "data.root={:?}",
        dir.path().join("data").display().to_string()
    );
    let run = dir.path().join("run");
    let mut args = vec![
        "run",
        "experiments/smoke.toml",
        "--set",
        &data,
        "--cache-dir",
        &cache,
        "--device",
        "cpu",
        "--quiet",
        "--out",
    ];
    let run_str = run.display().to_string();
    args.push(&run_str);
    args.extend(SHORT);
    let out = adn_on_full_tmpfs(&full, &args);
    assert_ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("No space left on device") && stderr.contains("going on without storing"),
        "{stderr}"
    );
    assert!(
        json(&run.join("manifest.json"))["feature_cache"]["unstored"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        std::fs::read_to_string(run.join("scores.csv")).unwrap(),
        std::fs::read_to_string(dir.path().join("reference/scores.csv")).unwrap()
    );

    // `adn explain` fills the disk: an error naming the file, and nothing left behind on
    // it (the folder is staged).
    let reference = dir.path().join("reference");
    let out = adn_then_list_tmpfs(&full, "16k", |out| {
        vec![
            "explain".into(),
            reference.clone().into(),
            "--device".into(),
            "cpu".into(),
            "--out".into(),
            out.join("explain").into(),
        ]
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("explain"),
        "{stderr}"
    );
    let left = String::from_utf8_lossy(&out.stdout);
    assert!(left.trim().is_empty(), "left on the full disk: {left}");

    // `adn export` fills the disk: our error with its cause, not an abort with C++ frames
    // (libtorch's writer threw from a destructor), and no partial folder left behind.
    let out = adn_then_list_tmpfs(&full, "64k", |out| {
        vec![
            "export".into(),
            reference.clone().into(),
            "--out".into(),
            out.join("export").into(),
        ]
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("model.pt"),
        "{stderr}"
    );
    for bad in ["terminate called", "c10::Error", "internal error"] {
        assert!(!stderr.contains(bad), "{bad:?} in: {stderr}");
    }
    let left = String::from_utf8_lossy(&out.stdout);
    assert!(left.trim().is_empty(), "left on the full disk: {left}");
}
