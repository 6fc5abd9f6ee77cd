//! One run: data → frozen features → flow training → evaluation after every meta-epoch →
//! run record.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use adn_backbones::FeatureExtractor;
use adn_datasets::smoke;
use adn_datasets::transforms::fixed_angles;
use adn_flows::flow::anomaly_scores;
use adn_flows::{DifferNetFlow, nll_loss};
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::cache::FeatureCache;
use crate::config::{Config, DataKind, Rotations, TrainRotations};
use crate::extract::CacheStats;
use crate::record::{self, DatasetSummary, EvalPoint, Manifest, MetricsRecord, WallTimes};

/// Which device trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    Auto,
    Cpu,
    Cuda,
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Cuda => {
                bail!("--device cuda was asked for but libtorch sees no CUDA device")
            }
        }
    }
}

/// How to run, apart from what the config says.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    pub device: DeviceChoice,
    pub quiet: bool,
    pub force: bool,
    /// Root of the feature cache; `None` disables it.
    pub cache_dir: Option<PathBuf>,
    /// The process's log, written into the record as `log.txt`.
    pub log: Option<crate::logging::RunLog>,
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub metrics: MetricsRecord,
    pub manifest: Manifest,
}

/// DifferNet's Adam with the run's betas, eps and weight decay (the learning rate is given
/// when it is built).
pub fn adam(t: &crate::config::TrainConfig) -> nn::Adam {
    nn::Adam {
        beta1: t.betas[0],
        beta2: t.betas[1],
        wd: t.weight_decay,
        eps: t.eps,
        amsgrad: false,
    }
}

/// The trained attention of a joint run, beside the flow's `model.safetensors`.
pub const ATTENTION_FILE: &str = "attention.safetensors";

/// What the flow trains on: fixed features (a frozen extractor, cached), or the frozen
/// prefixes that jointly trained attention starts from.
enum Features {
    /// `[images · views, dim]` each: every rotation of the training pool, every test view.
    Fixed { train: Tensor, test: Tensor },
    /// Per scale `[images · views, C, H, W]`.
    Joint {
        train: Vec<Tensor>,
        test: Vec<Tensor>,
    },
}

/// Rows scored per forward pass at evaluation time.
const EVAL_ROWS: i64 = 4096;

pub(crate) fn progress(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
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

/// The folder a run writes to when `--out` is not given.
pub fn default_out(config: &Config) -> PathBuf {
    Path::new("results")
        .join(&config.experiment)
        .join(config.run_id())
}

/// Runs `config` and writes its record. A run that fails after it started training writes a
/// record marked `failed` (no metrics, no scores) and returns the error.
pub fn run(config: &Config, opts: &RunOptions) -> Result<RunOutcome> {
    let out = opts.out.clone().unwrap_or_else(|| default_out(config));
    if out.exists() && !opts.force {
        let state = if record::is_complete(&out) {
            "a complete run"
        } else {
            "something"
        };
        bail!(
            "{} already holds {state}; pass --force to replace it or --out to write elsewhere",
            out.display()
        );
    }
    let device = opts.device.resolve()?;
    let started = unix_now();
    let t0 = Instant::now();
    let cfg = config;
    let seed = cfg.train.seed;

    // Data.
    let data = load_data(cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // The rotations each training image has features for. Under `redraw_rotations` every
    // batch draws its views from them; otherwise they are the views, drawn once.
    let train_angles: Vec<Vec<f64>> = if cfg.train.redraw_rotations {
        let pool = match cfg.train.rotations {
            TrainRotations::QuarterTurns => fixed_angles(4),
            TrainRotations::Uniform => fixed_angles(cfg.train.rotation_pool),
        };
        vec![pool; data.train.len()]
    } else {
        data.train
            .iter()
            .map(|_| {
                (0..cfg.train.train_transforms)
                    .map(|_| match cfg.train.rotations {
                        TrainRotations::Uniform => rng.random_range(-180.0..180.0),
                        TrainRotations::QuarterTurns => 90.0 * rng.random_range(0..4) as f64,
                    })
                    .collect()
            })
            .collect()
    };
    let test_angles = test_angles(cfg, data.test.len(), &mut rng);
    let wall_data = t0.elapsed().as_secs_f64();
    // Frozen features, or frozen prefixes when the attention trains.
    let t1 = Instant::now();
    let extractor = build_extractor(cfg, device)?;
    let mut cache_stats = CacheStats::default();
    tracing::info!(
        run_id = %cfg.run_id(),
        device = ?device,
        train_images = data.train.len(),
        test_images = data.test.len(),
        joint_attention = !extractor.is_frozen(),
        "run started"
    );
    let bar = progress(
        opts.quiet,
        (data.train.len() + data.test.len()) as u64,
        "features",
    );
    let features = if extractor.is_frozen() {
        let cache = feature_cache(opts.cache_dir.as_deref(), cfg, &extractor, device);
        let how = crate::extract::Extraction {
            extractor: &extractor,
            device,
            cache: cache.as_ref(),
            mixed_precision: cfg.model.mixed_precision,
            progress: &bar,
        };
        let mut extract = |samples: &[adn_datasets::Sample], angles: &[Vec<f64>]| {
            crate::extract::pooled_features(&how, samples, angles, &mut cache_stats)
        };
        let train = extract(&data.train, &train_angles)?;
        let test = extract(&data.test, &test_angles)?;
        tracing::info!(
            train_mean = train.mean(Kind::Float).double_value(&[]),
            train_std = train.std(true).double_value(&[]),
            test_std = test.std(true).double_value(&[]),
            "pooled features"
        );
        Features::Fixed { train, test }
    } else {
        let prefixes = |samples: &[adn_datasets::Sample], angles: &[Vec<f64>]| {
            crate::joint::frozen_prefixes(&extractor, device, samples, angles, &bar)
        };
        let train = prefixes(&data.train, &train_angles)?;
        let test = prefixes(&data.test, &test_angles)?;
        Features::Joint { train, test }
    };
    bar.finish_and_clear();
    let wall_features = t1.elapsed().as_secs_f64();

    // Flow.
    tch::manual_seed(seed as i64);
    let flow_vs = nn::VarStore::new(device);
    let dim = extractor.feature_dim();
    let flow = DifferNetFlow::new(&flow_vs.root(), dim, &cfg.flow);
    let t = &cfg.train;
    let mut opt = adam(t).build(&flow_vs, t.lr)?;
    // Jointly trained attention: its own Adam, at `lr · attention_lr_scale`.
    let mut attention_opt = match &features {
        Features::Joint { .. } => {
            Some(adam(t).build(&extractor.attention_vs, t.lr * t.attention_lr_scale)?)
        }
        Features::Fixed { .. } => None,
    };

    let labels: Vec<bool> = data.test.iter().map(|s| s.is_anomalous()).collect();
    let n_train = data.train.len();
    let pool = train_angles.first().map_or(0, Vec::len) as i64;
    let views = t.train_transforms as i64;
    let mut trajectory = Vec::new();
    let mut last_scores = Vec::new();
    let (mut wall_train, mut wall_eval) = (0.0, 0.0);
    let total_epochs = (t.meta_epochs * t.sub_epochs) as u64;
    let bar = progress(opts.quiet, total_epochs, "train");
    let mut failure = None;
    'meta: for meta in 0..t.meta_epochs {
        let t2 = Instant::now();
        let (mut loss_sum, mut loss_count) = (0.0, 0usize);
        for _sub in 0..t.sub_epochs {
            let mut order: Vec<i64> = (0..n_train as i64).collect();
            order.shuffle(&mut rng);
            for batch in order.chunks(t.batch_size) {
                let rows = batch_rows(batch, pool, views, t.redraw_rotations, &mut rng);
                let rows = Tensor::from_slice(&rows).to_device(device);
                let x = match &features {
                    Features::Fixed { train, .. } => train.index_select(0, &rows),
                    Features::Joint { train, .. } => {
                        crate::joint::features(&extractor, train, &rows)
                    }
                };
                let (z, log_det) = flow.forward(&x);
                let loss = nll_loss(&z, &log_det);
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    failure = Some(format!(
                        "training loss became {value} at meta-epoch {meta}; the run is stopped \
                         (try a lower train.lr or check the features for NaN)"
                    ));
                    break 'meta;
                }
                match attention_opt.as_mut() {
                    None => opt.backward_step(&loss),
                    Some(att) => {
                        opt.zero_grad();
                        att.zero_grad();
                        loss.backward();
                        opt.step();
                        att.step();
                    }
                }
                loss_sum += value;
                loss_count += 1;
            }
            bar.inc(1);
        }
        wall_train += t2.elapsed().as_secs_f64();

        let t3 = Instant::now();
        let scores = match &features {
            Features::Fixed { test, .. } => score(&flow, test, cfg.test.test_transforms as i64),
            Features::Joint { test, .. } => {
                let test = crate::joint::all_features(&extractor, test);
                score(&flow, &test, cfg.test.test_transforms as i64)
            }
        };
        wall_eval += t3.elapsed().as_secs_f64();
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            failure = Some(format!(
                "the score of test image {} is {} after meta-epoch {meta}; the flow diverged",
                data.test[i].path.display(),
                scores[i]
            ));
            break;
        }
        let auroc =
            adn_metrics::auroc(&labels, &scores).context("cannot compute the test AUROC")?;
        let train_loss = loss_sum / loss_count.max(1) as f64;
        tracing::info!(meta_epoch = meta, train_loss, auroc, "evaluated");
        trajectory.push(EvalPoint {
            meta_epoch: meta,
            train_loss,
            auroc,
        });
        last_scores = scores;
    }
    bar.finish_and_clear();

    let trainable_attention: i64 = extractor
        .attention_vs
        .trainable_variables()
        .iter()
        .filter(|v| v.requires_grad())
        .map(|v| v.numel() as i64)
        .sum();
    let mut manifest = Manifest {
        run_id: cfg.run_id(),
        experiment: cfg.experiment.clone(),
        status: "complete".into(),
        error: None,
        git_commit: git_commit(),
        adn_version: env!("CARGO_PKG_VERSION").into(),
        libtorch: option_env!("ADN_LIBTORCH_VERSION")
            .unwrap_or("unknown")
            .into(),
        device: format!("{device:?}"),
        threads: tch::get_num_threads(),
        seed,
        started_unix: started,
        finished_unix: unix_now(),
        wall_s: WallTimes {
            data: wall_data,
            features: wall_features,
            train: wall_train,
            eval: wall_eval,
            total: t0.elapsed().as_secs_f64(),
        },
        dataset: DatasetSummary {
            root: data.root.display().to_string(),
            category: data.category.clone(),
            train_images: data.train.len(),
            test_images: data.test.len(),
            test_counts: data.test_counts(),
        },
        feature_dim: dim,
        backbone_weights: match extractor.weights_report() {
            Some(w) => format!("{} (sha256 {})", w.path.display(), w.sha256),
            None => format!("random (seed {seed}); not pretrained"),
        },
        flow_parameters: flow_vs
            .trainable_variables()
            .iter()
            .map(|v| v.numel() as i64)
            .sum(),
        trainable_attention_parameters: trainable_attention,
        feature_cache: cache_stats,
        peak_rss_mb: record::peak_rss_mb(),
    };
    let config_toml = cfg.to_toml();

    if let Some(error) = failure {
        manifest.status = "failed".into();
        manifest.error = Some(error.clone());
        let rec = record::RunRecord {
            config_toml: &config_toml,
            manifest: &manifest,
            metrics: None,
            scores: &[],
            save_model: None,
            log: opts.log.as_ref().map(|l| l.contents()),
        };
        record::write(&out, &rec, opts.force)?;
        bail!("{error} (failed run recorded in {})", out.display());
    }

    let metrics = summarise(trajectory);
    let scores = record::score_rows(&data, &last_scores);
    let save = |path: &Path| -> Result<()> {
        flow_vs
            .save(path)
            .with_context(|| format!("cannot save {}", path.display()))?;
        if !extractor.is_frozen() {
            let att = path.with_file_name(ATTENTION_FILE);
            extractor
                .attention_vs
                .save(&att)
                .with_context(|| format!("cannot save {}", att.display()))?;
        }
        Ok(())
    };
    let rec = record::RunRecord {
        config_toml: &config_toml,
        manifest: &manifest,
        metrics: Some(&metrics),
        scores: &scores,
        save_model: Some(&save),
        log: opts.log.as_ref().map(|l| l.contents()),
    };
    let dir = record::write(&out, &rec, opts.force)?;
    Ok(RunOutcome {
        dir,
        metrics,
        manifest,
    })
}

/// Lists and validates the configured category (every image and mask is decoded and every
/// layout rule applied), generating the smoke set first when needed.
pub fn load_data(cfg: &Config) -> Result<adn_datasets::CategoryData> {
    let data_root = &cfg.data.root;
    let kind = match cfg.data.kind {
        DataKind::Mvtec | DataKind::Smoke => adn_datasets::DatasetKind::Mvtec,
        DataKind::Insplad => adn_datasets::DatasetKind::Insplad,
        DataKind::Folder => adn_datasets::DatasetKind::Folder,
    };
    if cfg.data.kind == DataKind::Smoke && !data_root.join(&cfg.data.category).is_dir() {
        let spec = smoke::SmokeSpec {
            size: cfg.data.generated_size,
            ..Default::default()
        };
        smoke::generate(data_root, &spec).with_context(|| {
            format!(
                "cannot generate the smoke dataset in {}",
                data_root.display()
            )
        })?;
    }
    Ok(adn_datasets::load(kind, data_root, &cfg.data.category)?)
}

/// The test-time rotation angles of `n` images.
pub fn test_angles(cfg: &Config, n: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    (0..n)
        .map(|_| match cfg.test.rotations {
            Rotations::Fixed => fixed_angles(cfg.test.test_transforms),
            Rotations::Random => (0..cfg.test.test_transforms)
                .map(|_| rng.random_range(-180.0..180.0))
                .collect(),
        })
        .collect()
}

/// The frozen feature extractor of `cfg`.
pub fn build_extractor(cfg: &Config, device: Device) -> Result<FeatureExtractor> {
    let extractor = FeatureExtractor::new(
        &cfg.model.backbone_config(),
        cfg.model.weights.as_deref(),
        cfg.model.attention_training,
        cfg.train.seed as i64,
        device,
    )?;
    Ok(extractor.with_memory_format(memory_format()?))
}

/// The activation layout: channels-last unless `ADN_MEMORY_FORMAT` says otherwise. A runtime
/// setting like the thread count: values agree up to float rounding, so it is not part of
/// the config or the cache key.
pub fn memory_format() -> Result<adn_backbones::MemoryFormat> {
    match std::env::var("ADN_MEMORY_FORMAT") {
        Ok(v) => v
            .parse()
            .map_err(|e: String| anyhow::anyhow!("ADN_MEMORY_FORMAT: {e}")),
        Err(_) => Ok(adn_backbones::MemoryFormat::default()),
    }
}

/// The feature cache under `root` for this extractor, if caching is on.
pub fn feature_cache(
    root: Option<&Path>,
    cfg: &Config,
    extractor: &FeatureExtractor,
    device: Device,
) -> Option<FeatureCache> {
    root.map(|root| {
        FeatureCache::new(
            root,
            &extractor_key(cfg, extractor, device),
            extractor.feature_dim() as usize,
        )
    })
}

/// Everything about the frozen extractor that changes its output, for the feature cache.
/// The seed matters only where something is randomly initialised.
fn extractor_key(cfg: &Config, extractor: &FeatureExtractor, device: Device) -> String {
    let b = extractor.config();
    let weights = match extractor.weights_report() {
        Some(w) => w.sha256.clone(),
        None => format!("random-seed-{}", cfg.train.seed),
    };
    let attention = match b.attention {
        adn_backbones::AttentionKind::None => "none".to_string(),
        kind => format!(
            "{kind:?}@{:?}/r{}/seed-{}",
            b.positions, b.se_reduction, cfg.train.seed
        ),
    };
    let device = match (device.is_cuda(), cfg.model.mixed_precision) {
        (false, _) => "cpu",
        (true, false) => "cuda",
        (true, true) => "cuda-autocast",
    };
    format!(
        "{}|weights={weights}|attention={attention}|layers={:?}|scales={}|size={}|norm={:?}|{device}",
        b.kind.name(),
        b.feature_layers,
        b.scales,
        b.image_size,
        b.kind.normalization()
    )
}

/// The training feature rows of a batch of images: `views` rows `i·pool + v` per image `i`,
/// each rotation `v` drawn independently from the image's pool (DifferNet's RandomRotation
/// per view) under `redraw`, else the whole pool, which then holds the once-drawn views.
fn batch_rows(
    images: &[i64],
    pool: i64,
    views: i64,
    redraw: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<i64> {
    let mut rows = Vec::with_capacity(images.len() * views as usize);
    for &i in images {
        for k in 0..views {
            let v = if redraw { rng.random_range(0..pool) } else { k };
            rows.push(i * pool + v);
        }
    }
    rows
}

/// Per-image anomaly scores of test features laid out `[image · transforms, dim]`.
pub fn score(flow: &DifferNetFlow, feats: &Tensor, transforms: i64) -> Vec<f64> {
    let rows = feats.size()[0];
    let step = (EVAL_ROWS / transforms).max(1) * transforms;
    let mut out = Vec::new();
    tch::no_grad(|| {
        let mut start = 0;
        while start < rows {
            let len = step.min(rows - start);
            let (z, _) = flow.forward(&feats.narrow(0, start, len));
            let s = anomaly_scores(&z, transforms)
                .to_kind(Kind::Double)
                .to_device(Device::Cpu);
            out.extend(Vec::<f64>::try_from(s).expect("1-d double tensor"));
            start += len;
        }
    });
    out
}

fn summarise(trajectory: Vec<EvalPoint>) -> MetricsRecord {
    let last = trajectory.last().expect("at least one meta-epoch");
    // Earliest evaluation wins ties.
    let first = &trajectory[0];
    let best = trajectory
        .iter()
        .fold(first, |b, p| if p.auroc > b.auroc { p } else { b });
    let min_loss = trajectory.iter().fold(
        first,
        |b, p| if p.train_loss < b.train_loss { p } else { b },
    );
    MetricsRecord {
        auroc_last: last.auroc,
        auroc_best: best.auroc,
        auroc_best_epoch: best.meta_epoch,
        auroc_best_selection: "maximum over evaluations, selected on the test set".into(),
        auroc_min_loss: min_loss.auroc,
        auroc_min_loss_epoch: min_loss.meta_epoch,
        trajectory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrawn_views_come_from_each_images_pool_and_change_between_batches() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let images = [3i64, 0, 5];
        let draws: Vec<Vec<i64>> = (0..20)
            .map(|_| batch_rows(&images, 4, 2, true, &mut rng))
            .collect();
        for rows in &draws {
            assert_eq!(rows.len(), 6);
            for (k, r) in rows.iter().enumerate() {
                let i = images[k / 2];
                assert!((i * 4..i * 4 + 4).contains(r), "row {r} of image {i}");
            }
        }
        // Independent draws: every rotation of image 3 appears across the batches, and the
        // batches are not all the same.
        let seen: std::collections::BTreeSet<i64> =
            draws.iter().flat_map(|r| r[..2].to_vec()).collect();
        assert_eq!(seen, (12..16).collect());
        assert!(draws.iter().any(|r| r != &draws[0]));
    }

    #[test]
    fn without_redraw_every_batch_takes_each_images_fixed_views() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..3 {
            assert_eq!(batch_rows(&[2, 0], 2, 2, false, &mut rng), vec![4, 5, 0, 1]);
        }
    }
}
