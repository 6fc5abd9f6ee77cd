//! Sweeps of real `adn run` processes on the generated smoke set: killed with SIGKILL and
//! resumed, a failing dataset recorded and skipped over, and the Slurm job array run by a
//! real single-node Slurm when one is installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BASE: &str = r#"
experiment = "base"
[data]
kind = "smoke"
root = "data/smoke"
category = "shapes"
generated_size = 128
[model]
backbone = "alexnet"
image_size = 128
scales = 2
[flow]
hidden = 64
[train]
meta_epochs = 2
sub_epochs = 2
batch_size = 8
[test]
test_transforms = 4
"#;

fn adn(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adn"));
    cmd.current_dir(dir).env("OMP_NUM_THREADS", "1");
    cmd
}

/// A grid of `seeds` × {none, se} on the smoke set, plus `extra` grid text.
fn write_grid(dir: &Path, name: &str, seeds: &str, extra: &str) -> PathBuf {
    std::fs::write(dir.join("base.toml"), BASE).unwrap();
    let grid = format!(
        "experiment = \"{name}\"\nbase = \"base.toml\"\n\
         [slurm]\ncpus_per_task = 1\nmem = \"1G\"\ntime = \"00:10:00\"\n\
         [[datasets]]\nlabel = \"Smoke\"\nmake = \"smoke\"\nset = {{ \"data.root\" = \"data/smoke\" }}\n\
         {extra}\
         [axes]\n\"model.attention\" = [\"none\", \"se\"]\n\"train.seed\" = {seeds}\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, grid).unwrap();
    path
}

fn complete_runs(runs: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        let manifest = e.path().join("manifest.json");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if text.contains("\"status\": \"complete\"") {
            let modified = manifest.metadata().unwrap().modified().unwrap();
            out.push((e.file_name().to_string_lossy().into_owned(), modified));
        }
    }
    out.sort();
    out
}

#[test]
fn a_killed_sweep_resumes_without_redoing_finished_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A dataset with a wrong layout (no test images, a corrupt training image): every run
    // on it fails before training, with the folder and the problem named.
    let broken = dir.join("broken/shapes");
    for sub in ["train/good", "test/good", "test/bad", "ground_truth/bad"] {
        std::fs::create_dir_all(broken.join(sub)).unwrap();
    }
    std::fs::write(broken.join("train/good/000.png"), b"not a png").unwrap();
    write_grid(
        dir,
        "resume",
        "[0, 1, 2]",
        "[[datasets]]\nlabel = \"Broken\"\n\
         set = { \"data.kind\" = \"mvtec\", \"data.root\" = \"broken\" }\ncategories = [\"shapes\"]\n",
    );
    let runs = dir.join("results/resume/runs");

    // First sweep: killed (SIGKILL) once two runs are complete.
    let mut child = adn(dir)
        .args([
            "sweep",
            "resume.toml",
            "--jobs",
            "1",
            "--quiet",
            "--device",
            "cpu",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while complete_runs(&runs).len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "no two runs finished in 10 minutes"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A second sweep of the same experiment meanwhile is refused, touching nothing.
    let second = adn(dir)
        .args(["sweep", "resume.toml", "--quiet", "--device", "cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        !second.status.success(),
        "a second sweep ran beside the first"
    );
    assert!(
        stderr.contains("is in use by another process (pid"),
        "{stderr}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let before = complete_runs(&runs);
    // The runs in flight died with the sweep: nothing completes after the kill.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        complete_runs(&runs),
        before,
        "a run finished after the kill"
    );
    assert!(before.len() < 6, "all runs finished before the kill");

    // Second sweep: runs only what is missing.
    let out = adn(dir)
        .args([
            "sweep",
            "resume.toml",
            "--jobs",
            "2",
            "--quiet",
            "--device",
            "cpu",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Failed runs make a failed sweep, with the count.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("6 of 12 runs of resume failed"), "{stderr}");
    let after = complete_runs(&runs);
    assert_eq!(after.len(), 6, "{stdout}\n{stderr}");
    for (id, modified) in &before {
        let same = after.iter().find(|(a, _)| a == id).unwrap();
        assert_eq!(&same.1, modified, "finished run {id} was recomputed");
    }
    assert!(
        stdout.contains(&format!(
            "resume: 6 complete ({} this time), 6 failed",
            6 - before.len()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("broken/shapes/test holds no images"),
        "the failure should name the folder and the problem: {stderr}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "half-written folders left: {leftovers:?}"
    );

    // A third sweep has nothing to do, and failed runs stay failed without --retry-failed.
    let out = adn(dir)
        .args(["sweep", "resume.toml", "--quiet", "--device", "cpu"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("resume: 6 complete (0 this time), 6 failed"),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1));
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("results/resume/plan.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(plan["runs"].as_array().unwrap().len(), 12);
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
#[ignore = "needs Slurm (sbatch on PATH); `cargo xtask test` runs it where it is installed"]
fn slurm_job_array_runs_the_grid() {
    let up = Command::new(workspace_root().join("ci/slurm-up.sh"))
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "ci/slurm-up.sh failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_grid(dir, "slurm", "[0]", "");
    let out = adn(dir)
        .args(["sweep", "slurm.toml", "--slurm", "job", "--device", "cpu"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let script = dir.join("job/sweep.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --array=0-1"), "{text}");
    let jobs = std::fs::read_to_string(dir.join("job/jobs.txt")).unwrap();
    assert_eq!(jobs.lines().count(), 2);

    let submitted = Command::new("sbatch")
        .arg("--wait")
        .arg(&script)
        .current_dir(dir)
        .output()
        .unwrap();
    let logs: String = std::fs::read_dir(dir.join("job/logs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        submitted.status.success(),
        "sbatch --wait failed: {}\n{logs}",
        String::from_utf8_lossy(&submitted.stderr)
    );
    let done = complete_runs(&dir.join("results/slurm/runs"));
    assert_eq!(done.len(), 2, "task logs:\n{logs}");

    // The sweep sees them as finished: a new job array would be empty.
    let out = adn(dir)
        .args(["sweep", "slurm.toml", "--dry-run"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches(" complete").count(), 2, "{stdout}");
}

/// The `threads` of every run manifest under `runs`.
fn recorded_threads(runs: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(runs)
        .unwrap()
        .flatten()
        .map(|e| {
            let text = std::fs::read_to_string(e.path().join("manifest.json")).unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap()["threads"].clone()
        })
        .collect()
}

#[test]
fn the_global_thread_count_reaches_every_run_of_a_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    write_grid(tmp.path(), "threads", "[0]", "");
    let sweep = [
        "--threads",
        "1",
        "sweep",
        "threads.toml",
        "--jobs",
        "1",
        "--quiet",
    ];
    let out = adn(tmp.path())
        .args(sweep)
        .args(["--device", "cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let threads = recorded_threads(&tmp.path().join("results/threads/runs"));
    assert_eq!(threads, [1, 1], "one thread per run, as --threads 1 says");
}
