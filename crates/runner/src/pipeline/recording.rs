//! A run's last stage: the manifest, metrics and scores, written as one folder through
//! `adn_record` (complete, or failed with the reason).

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use adn_record::{
    DatasetSummary, Manifest, MetricsRecord, PixelMetrics, RunFacts, RunRecord, RunState, ScoreRow,
    Status, Threshold, WallTimes, Writer,
};
use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::pipeline::data::RunData;
use crate::pipeline::features::RunFeatures;
use crate::pipeline::train::Trained;
use crate::pipeline::{RunOptions, RunOutcome};

/// When the run started, by the wall clock and by the monotonic one.
pub struct Clock {
    started_unix: f64,
    start: Instant,
}

impl Clock {
    pub fn start() -> Self {
        Clock {
            started_unix: unix_now(),
            start: Instant::now(),
        }
    }
}

/// Seconds of each stage before the record.
pub struct StageTimes {
    pub data: f64,
    pub features: f64,
    pub train: f64,
    pub eval: f64,
}

/// Everything a finished (or stopped) run leaves for its record.
pub struct FinishedRun<'a> {
    pub cfg: &'a Config,
    /// The run folder.
    pub out: &'a Path,
    pub clock: Clock,
    pub times: StageTimes,
    pub data: &'a RunData,
    pub features: &'a RunFeatures,
    pub trained: Trained,
    /// The pixel metrics, where the test set has masks.
    pub pixel: Option<PixelMetrics>,
}

/// The thresholds a complete run records: the held-out good images' 99 % and 99.9 %
/// quantiles where it held some out, the F1-optimal one on the labelled validation folder
/// where it has one, then the test set's F1-optimal one, marked as chosen on the test set.
fn thresholds(data: &RunData, test_scores: &[f64], validation_scores: &[f64]) -> Vec<Threshold> {
    let split = data.held_out.min(validation_scores.len());
    let (held_out, labelled) = validation_scores.split_at(split);
    let mut out: Vec<Threshold> = [0.99, 0.999]
        .into_iter()
        .filter_map(|q| Threshold::good_quantile(held_out, q))
        .collect();
    let f1 = |samples: &[adn_datasets::Sample], scores: &[f64]| {
        let labels: Vec<bool> = samples.iter().map(|s| s.is_anomalous()).collect();
        adn_metrics::f1_max(&labels, scores).ok().map(|best| {
            let anomalous = labels.iter().filter(|&&l| l).count();
            let text = format!(
                "{} images ({} good, {anomalous} anomalous; F1 {:.3}, precision {:.3}, \
                 recall {:.3})",
                labels.len(),
                labels.len() - anomalous,
                best.f1,
                best.precision,
                best.recall
            );
            (best.threshold, labels.len(), text)
        })
    };
    let labelled_samples = &data.validation[split.min(data.validation.len())..];
    if let (Some(folder), Some((value, images, text))) =
        (&data.validation_folder, f1(labelled_samples, labelled))
    {
        out.push(Threshold {
            name: Threshold::VALIDATION_F1.into(),
            value,
            chosen_on: format!(
                "the F1-optimal threshold on the labelled validation folder {} \
                 (data.validation), never trained on: {text}",
                folder.display()
            ),
            images,
            on_test_set: false,
        });
    }
    if let Some((value, images, text)) = f1(&data.images.test, test_scores) {
        out.push(Threshold {
            name: Threshold::TEST_F1.into(),
            value,
            chosen_on: format!(
                "the F1-optimal threshold on the test set, {text}: selected on the images it \
                 is evaluated on, so these numbers flatter it; for a line, use a threshold \
                 from held-out or validation images"
            ),
            images,
            on_test_set: true,
        });
    }
    out
}

/// Writes the record of `run` into its folder.
pub fn write(run: FinishedRun, opts: &RunOptions) -> Result<RunOutcome> {
    let facts = run_facts(&run);
    let FinishedRun {
        cfg,
        out,
        data,
        features,
        trained,
        pixel,
        ..
    } = run;
    let extractor = &features.source.extractor;
    let mut manifest = Manifest {
        format: adn_record::FORMAT,
        run_id: cfg.run_id(),
        experiment: cfg.experiment.clone(),
        status: Status::Complete,
        error: None,
        written_by: Writer::Run,
        run: Some(facts),
    };
    let config_toml = cfg.to_toml();
    let log = || opts.log.as_ref().map(|l| l.contents());

    let metrics = match (
        trained.failure,
        MetricsRecord::from_trajectory(trained.trajectory),
    ) {
        (None, Some(metrics)) => {
            let diagnostics = if trained.diagnostics.iter().all(|d| d.is_finite()) {
                trained.diagnostics
            } else {
                tracing::warn!(
                    "the diagnostics hold a non-finite value (features that overflowed); \
                     they are left out of metrics.json"
                );
                Vec::new()
            };
            MetricsRecord {
                diagnostics,
                pixel,
                thresholds: thresholds(data, &trained.last_scores, &trained.validation_scores),
                ..metrics
            }
        }
        (failure, _) => {
            let error = failure.unwrap_or_else(|| "no meta-epoch was evaluated".into());
            // `--force` replaces a record only with a complete one: a failed replacement
            // leaves the complete run where it is.
            if matches!(adn_record::run_state(out), Ok(RunState::Complete)) {
                bail!(
                    "{error}; the complete run in {} was kept (a run is replaced only by a \
                     complete one)",
                    out.display()
                );
            }
            manifest.status = Status::Failed;
            manifest.error = Some(error.clone());
            let rec = RunRecord {
                config_toml: &config_toml,
                manifest: &manifest,
                metrics: None,
                scores: &[],
                save_model: None,
                log: log(),
            };
            adn_record::write_run(out, &rec, opts.force)?;
            bail!("{error} (failed run recorded in {})", out.display());
        }
    };
    let scores = score_rows(&data.images, &trained.last_scores);
    let save = |path: &Path| -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
        trained
            .flow_vs
            .save(path)
            .with_context(|| format!("cannot save {}", path.display()))?;
        if !extractor.is_frozen() {
            let att = path.with_file_name(adn_record::files::ATTENTION);
            extractor
                .attention_vs
                .save(&att)
                .with_context(|| format!("cannot save {}", att.display()))?;
        }
        Ok(())
    };
    let rec = RunRecord {
        config_toml: &config_toml,
        manifest: &manifest,
        metrics: Some(&metrics),
        scores: &scores,
        save_model: Some(&save),
        log: log(),
    };
    let (dir, manifest) = adn_record::write_run(out, &rec, opts.force)?;
    Ok(RunOutcome {
        dir,
        metrics,
        manifest,
    })
}

/// The manifest's facts about the run: versions, machine, times, data, model sizes.
fn run_facts(run: &FinishedRun) -> RunFacts {
    let FinishedRun {
        cfg,
        clock,
        times,
        data,
        features,
        trained,
        ..
    } = run;
    let extractor = &features.source.extractor;
    let settings = &features.source.settings;
    let images = &data.images;
    let seed = cfg.train.seed;
    let trainable_attention: i64 = extractor
        .attention_vs
        .trainable_variables()
        .iter()
        .filter(|v| v.requires_grad())
        .map(|v| v.numel() as i64)
        .sum();
    RunFacts {
        git_commit: git_commit(),
        adn_version: env!("CARGO_PKG_VERSION").into(),
        libtorch: option_env!("ADN_LIBTORCH_VERSION")
            .unwrap_or("unknown")
            .into(),
        device: format!("{:?}", settings.device),
        threads: settings.threads,
        seed,
        started_unix: clock.started_unix,
        finished_unix: unix_now(),
        wall_s: WallTimes {
            data: times.data,
            features: times.features,
            train: times.train,
            eval: times.eval,
            total: clock.start.elapsed().as_secs_f64(),
        },
        dataset: DatasetSummary {
            root: images.root.display().to_string(),
            category: images.category.clone(),
            train_images: images.train.len(),
            test_images: images.test.len(),
            test_counts: images.test_counts(),
            held_out_images: run.data.held_out,
        },
        feature_dim: extractor.feature_dim(),
        backbone_weights: match extractor.weights_report() {
            Some(w) => format!("{} (sha256 {})", w.path.display(), w.sha256),
            None => format!("random (seed {seed}); not pretrained"),
        },
        flow_parameters: trained
            .flow_vs
            .trainable_variables()
            .iter()
            .map(|v| v.numel() as i64)
            .sum(),
        trainable_attention_parameters: trainable_attention,
        feature_cache: features.cache_stats.clone(),
        // Filled in by `write_run` from the files it writes.
        model_sha256: Default::default(),
        peak_rss_mb: peak_rss_mb(),
        precision: settings.backbone_precision,
        flow_precision: settings.flow_precision,
        machine: Some(crate::pipeline::settings::machine(settings.reproducible)),
    }
}

/// One row per test image of `data`, in its order, with the image's score.
pub fn score_rows(data: &adn_datasets::CategoryData, scores: &[f64]) -> Vec<ScoreRow> {
    data.test
        .iter()
        .zip(scores)
        .map(|(s, &score)| ScoreRow {
            path: s.path.display().to_string(),
            category: data.category.clone(),
            defect: s.defect.clone(),
            label: s.is_anomalous() as u8,
            score,
        })
        .collect()
}

/// This process's peak resident memory in MB, where the OS reports it (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
