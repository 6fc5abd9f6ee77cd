//! Project chores, run as `cargo xtask <command>`: one module each under `commands/`.
//!
//! xtask never links libtorch: it is what installs it. Everything that trains or evaluates
//! is delegated to the `adn` binary as a subprocess (`adn.rs`).

mod adn;
mod commands;
mod util;

use std::path::{Path, PathBuf};

use commands::{bench, demo, figures, page, setup, sweep, tables, test};

use clap::{Parser, Subcommand};

/// The paper's grid.
const PAPER_GRID: &str = "experiments/paper.toml";

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
    /// ELPV × vanilla/SE/CBAM × 3 seeds), its tables and figures under results/demo, and
    /// whether it reproduced the committed runs (same run ids, same scores).
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
    Figures {
        experiment: String,
        /// Only lay the charts out and check them against the print rules (sizes, widths,
        /// clipping, collisions); write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Write an experiment's HTML page (results/EXP/index.html) from its runs, tables and
    /// figures.
    Page { experiment: String },
    /// Rust vs the PyTorch reference (bench/reference/differnet.py) on the same work:
    /// results/bench/README.md and bench.json, and the inspection line (line.md).
    Bench {
        /// Only the inspection line: adn predict against the exported model in PyTorch,
        /// ONNX Runtime and OpenVINO (results/bench/line.md, a few minutes).
        #[arg(long)]
        line: bool,
    },
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
        Command::Test { no_lint } => test::run(no_lint),
        Command::Demo { jobs } => demo::run(jobs),
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
            sweep::run(&grid, jobs, &extra)
        }
        Command::Bench { line } => bench::run(line),
        Command::Tables { experiment } => tables::run(&experiment),
        Command::Figures { experiment, check } => {
            if check {
                figures::check(&experiment)
            } else {
                figures::run(&experiment)
            }
        }
        Command::Page { experiment } => page::run(&experiment),
        Command::Paper { jobs } => sweep::run(Path::new(PAPER_GRID), jobs, &[]),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
