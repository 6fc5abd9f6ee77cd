//! Project chores, run as `cargo xtask <command>`.
//!
//! xtask never links libtorch: it is what installs it. Everything that trains or evaluates
//! is delegated to the `adn` binary as a subprocess.

mod bench;
mod report;
mod setup;
mod util;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "AttentDifferNet project chores")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install libtorch (PyTorch 2.13.0 from PyPI) into the project's .venv and link it for cargo.
    Setup,
    /// The whole check: set-up, formatting, clippy, every test.
    Test {
        /// Skip `cargo fmt --check` and clippy.
        #[arg(long)]
        no_lint: bool,
    },
    /// The main job: set-up, then the demo grid (experiments/demo.toml: three stand-ins and
    /// ELPV × vanilla/SE/CBAM × 3 seeds), its tables and figures under results/demo.
    Demo {
        /// Concurrent runs (default: the grid's).
        #[arg(long)]
        jobs: Option<usize>,
    },
    /// Run a sweep grid (each run its own `adn run`; resumes what is missing), then write
    /// runs.parquet, the tables and the figures.
    Sweep {
        grid: PathBuf,
        #[arg(long)]
        jobs: Option<usize>,
        /// Run again the runs recorded as failed.
        #[arg(long)]
        retry_failed: bool,
        /// Write a Slurm job array into this folder instead of running.
        #[arg(long)]
        slurm: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Gather an experiment's finished runs into runs.parquet and its tables (results/EXP).
    Tables { experiment: String },
    /// Draw an experiment's figures (results/EXP/figures).
    Figures { experiment: String },
    /// Rust vs the PyTorch reference (bench/reference/differnet.py) on the same work:
    /// results/bench/README.md and bench.json.
    Bench,
    /// The paper's grid (experiments/paper.toml): runs what is missing and possible here,
    /// says what is absent and how to provide it, then regenerates every table and figure.
    Paper {
        #[arg(long)]
        jobs: Option<usize>,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::run().map(|_| ()),
        Command::Test { no_lint } => test(no_lint),
        Command::Demo { jobs } => {
            report::sweep(Path::new("experiments/demo.toml"), jobs, &[]).map(|_| ())
        }
        Command::Sweep {
            grid,
            jobs,
            retry_failed,
            slurm,
            quiet,
        } => {
            let mut extra: Vec<String> = Vec::new();
            if retry_failed {
                extra.push("--retry-failed".into());
            }
            if quiet {
                extra.push("--quiet".into());
            }
            if let Some(dir) = slurm {
                extra.push("--slurm".into());
                extra.push(dir.display().to_string());
            }
            report::sweep(&grid, jobs, &extra).map(|_| ())
        }
        Command::Bench => bench::run(),
        Command::Tables { experiment } => report::tables(&experiment).map(|_| ()),
        Command::Figures { experiment } => report::figures(&experiment),
        Command::Paper { jobs } => {
            report::sweep(Path::new("experiments/paper.toml"), jobs, &[]).map(|_| ())
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

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

fn test(no_lint: bool) -> Result<()> {
    let (_, env) = report::build_adn()?;
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
    let mut skipped = Vec::new();
    for gated in GATED_TESTS {
        match (gated.available)() {
            Ok(()) => {
                util::step(&format!(
                    "cargo test (needs {}): {}",
                    gated.needs, gated.name
                ));
                util::cargo(
                    &root,
                    &test_env,
                    &[
                        "test",
                        "-p",
                        gated.package,
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
