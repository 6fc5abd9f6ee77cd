//! `adn`: train and evaluate DifferNet / AttentDifferNet from a TOML config.

use std::path::PathBuf;
use std::process::ExitCode;

use adn_runner::{Config, DeviceChoice, RunOptions};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "adn",
    version,
    about = "Attention-augmented DifferNet anomaly detection"
)]
struct Cli {
    /// libtorch intra-op threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<i32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate one configuration, and write its run record.
    Run {
        /// The experiment config (TOML).
        config: PathBuf,
        /// Override a config value by its dotted path, e.g. `--set train.lr=1e-3`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Run folder (default: results/<experiment>/<run-id>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
        /// No progress bars; one summary line.
        #[arg(long)]
        quiet: bool,
        /// Replace an existing run folder (only once the new record is complete).
        #[arg(long)]
        force: bool,
    },
    /// Image-level metrics of a scores CSV (`label,score[,defect]`; a run's scores.csv works),
    /// or a comparison of two score files on the same images.
    Metrics {
        /// Score file to report on.
        #[arg(long, conflicts_with = "compare", required_unless_present = "compare")]
        scores: Option<PathBuf>,
        /// Two score files (variant A, variant B) to compare with DeLong's test.
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        compare: Option<Vec<PathBuf>>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ADN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(n) = cli.threads {
        tch::set_num_threads(n);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1) as usize)
            .build_global()
            .ok();
    }
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run {
            config,
            overrides,
            out,
            device,
            quiet,
            force,
        } => {
            let cfg = Config::load(&config, &overrides)?;
            let opts = RunOptions {
                out,
                device,
                quiet,
                force,
            };
            let outcome = adn_runner::run(&cfg, &opts)?;
            let m = &outcome.metrics;
            println!(
                "{} {}/{} attention={:?} auroc_last={:.4} auroc_best={:.4} (meta-epoch {}, test-selected) \
                 device={} wall={:.1}s -> {}",
                cfg.experiment,
                cfg.data.category,
                outcome.manifest.run_id,
                cfg.model.attention,
                m.auroc_last,
                m.auroc_best,
                m.auroc_best_epoch,
                outcome.manifest.device,
                outcome.manifest.wall_s.total,
                outcome.dir.display()
            );
            Ok(())
        }
        Command::Metrics { scores, compare } => {
            let report = match (scores, compare) {
                (Some(path), _) => adn_metrics::report_scores_file(&path)?,
                (None, Some(pair)) => adn_metrics::compare_scores_files(&pair[0], &pair[1])?,
                (None, None) => unreachable!("clap requires one of them"),
            };
            print!("{report}");
            Ok(())
        }
    }
}
