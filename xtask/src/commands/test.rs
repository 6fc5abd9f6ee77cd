//! `cargo xtask test`: the whole check. Set-up and the `adn` build, `cargo fmt --check`,
//! clippy, every test, then the ignored tests whose needs (Chromium, Slurm, a private
//! tmpfs, the venv's ONNX runtimes) this machine meets; Chromium is installed where apt can.

use anyhow::Result;

use crate::commands::setup;
use crate::{adn, util};

/// An ignored test that `cargo xtask test` runs when the machine has what it needs.
struct GatedTest {
    package: &'static str,
    target: &'static str,
    name: &'static str,
    needs: &'static str,
    available: fn() -> std::result::Result<(), String>,
}

const GATED_TESTS: &[GatedTest] = &[
    GatedTest {
        package: "adn-report",
        target: "page",
        name: "the_page_opens_in_headless_chromium_with_no_error_every_image_loads_and_tables_sort",
        needs: "Chromium",
        available: || succeeds("chromium", &["--version"]),
    },
    GatedTest {
        package: "adn-runner",
        target: "export",
        name: "the_exported_file_scores_as_adn_in_pytorch_onnx_runtime_and_openvino",
        needs: "the venv's Python with torch, onnx, onnxruntime and openvino",
        available: || {
            let python = util::workspace_root().join(".venv/bin/python");
            succeeds(
                &python.display().to_string(),
                &["-c", "import torch, onnx, onnxruntime, openvino"],
            )
        },
    },
    GatedTest {
        package: "adn-runner",
        target: "sweep",
        name: "slurm_job_array_runs_the_grid",
        needs: "Slurm",
        available: || succeeds("sbatch", &["--version"]),
    },
    GatedTest {
        package: "adn-runner",
        target: "full_disk",
        name: "a_full_disk_is_an_error_naming_the_file_or_only_costs_the_cache",
        needs: "a private tmpfs mount",
        available: || {
            succeeds(
                "unshare",
                &[
                    "--user",
                    "--map-root-user",
                    "--mount",
                    "sh",
                    "-c",
                    "mount -t tmpfs -o size=64k tmpfs /mnt",
                ],
            )
        },
    },
];

/// Whether `program args` runs and exits 0; why not otherwise.
fn succeeds(program: &str, args: &[&str]) -> std::result::Result<(), String> {
    match std::process::Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{program}` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("`{program}` cannot run: {e}")),
    }
}

pub fn run(no_lint: bool) -> Result<()> {
    let (_, env) = adn::build()?;
    let root = util::workspace_root();
    if !no_lint {
        util::step("cargo fmt --check");
        util::cargo(&root, &env, &["fmt", "--all", "--check"])?;
        util::step("cargo clippy");
        util::cargo(
            &root,
            &env,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    util::step("cargo test");
    // One libtorch thread per test process: tests run side by side, and OpenMP threads that
    // outnumber the cores spin against each other (a 100-fold slowdown measured here).
    let mut test_env = env.clone();
    test_env.push(("OMP_NUM_THREADS".into(), "1".into()));
    util::cargo(&root, &test_env, &["test", "--workspace"])?;
    // Tests that need something not every machine has are `#[ignore]`d, so that a plain
    // `cargo test` reports them as ignored rather than passed; here they run where they can.
    setup::chromium();
    let mut skipped = Vec::new();
    for gated in GATED_TESTS {
        match (gated.available)() {
            Ok(()) => {
                util::step(&format!(
                    "cargo test (needs {}): {} {}",
                    gated.needs, gated.package, gated.name
                ));
                // `--workspace`, not `-p`: features are unified over the packages a command
                // selects, so `-p` would build polars and the rest a second time with
                // another feature set; the exact name picks the one test.
                util::cargo(
                    &root,
                    &test_env,
                    &[
                        "test",
                        "--workspace",
                        "--test",
                        gated.target,
                        "--",
                        "--ignored",
                        "--exact",
                        gated.name,
                    ],
                )?;
            }
            Err(why) => skipped.push(format!("{} (needs {}: {why})", gated.name, gated.needs)),
        }
    }
    for s in &skipped {
        eprintln!("SKIPPED {s}");
    }
    util::step(if skipped.is_empty() {
        "all checks passed"
    } else {
        "all checks that can run here passed; see SKIPPED above"
    });
    Ok(())
}
