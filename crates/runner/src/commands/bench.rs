//! `adn bench`: the Rust side of `cargo xtask bench`, each measurement the same work as the
//! PyTorch reference's mode of the same name (`bench/reference/differnet.py`), printed as
//! JSON. The full run is measured with `adn run` itself.

use std::time::Instant;

use adn_backbones::Precision;
use adn_flows::{DifferNetFlow, FlowConfig, nll_loss};
use anyhow::Result;
use serde_json::{Value, json};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::config::{Config, ConfigArgs};
use crate::device::DeviceChoice;
use crate::pipeline::data::load_data;
use crate::pipeline::features::{CacheStats, FeatureSource};
use crate::pipeline::score::score as score_features;
use crate::pipeline::settings::Settings;
use crate::pipeline::train::adam;
use crate::pipeline::train::build_flow;

/// `adn bench`'s measurements.
#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Backbone features (decode, transforms, forward) of the first test images, no cache.
    Extract {
        #[command(flatten)]
        config: ConfigArgs,
        #[arg(long, default_value_t = 32)]
        images: usize,
        #[arg(long, default_value_t = 4)]
        views: usize,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// Test-time scoring: features and flow under many rotations per image.
    Score {
        #[command(flatten)]
        config: ConfigArgs,
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
        /// The flow's matrix multiplies (`train.precision`).
        #[arg(long, default_value = "fp32")]
        precision: Precision,
        /// `one-pass`: the project's Adam; `libtorch`: libtorch's per-tensor Adam (what
        /// the project used before), for the comparison.
        #[arg(long, value_enum, default_value = "one-pass")]
        optimizer: BenchOptimizer,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
    /// A square matrix multiply: the machine's achievable GFLOP/s in a precision.
    Matmul {
        #[arg(long, default_value_t = 1024)]
        n: i64,
        #[arg(long, default_value_t = 10)]
        repeats: usize,
        #[arg(long, default_value = "fp32")]
        precision: Precision,
        #[arg(long, value_enum, default_value = "auto")]
        device: DeviceChoice,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchOptimizer {
    OnePass,
    Libtorch,
}

/// `adn bench`: one measurement, as JSON on stdout.
pub fn command(args: Args) -> Result<()> {
    let value = match args {
        Args::Extract {
            config,
            images,
            views,
            device,
        } => extract(&config.load()?, images, views, device.resolve()?)?,
        Args::Score {
            config,
            images,
            views,
            device,
        } => score(&config.load()?, images, views, device.resolve()?)?,
        Args::Flow {
            dim,
            hidden,
            rows,
            steps,
            precision,
            optimizer,
            device,
        } => flow_steps(
            FlowBench {
                dim,
                hidden,
                rows,
                steps,
                bf16: precision == Precision::Bf16,
                optimizer,
            },
            device.resolve()?,
        )?,
        Args::Matmul {
            n,
            repeats,
            precision,
            device,
        } => matmul(n, repeats, precision, device.resolve()?),
    };
    println!("{value}");
    Ok(())
}

/// The extractor of `cfg` and the features of its first `images` test images under `views`
/// fixed rotations each, computed without the cache, with the seconds that took.
fn test_features(
    cfg: &Config,
    images: usize,
    views: usize,
    device: Device,
) -> Result<(FeatureSource, Tensor, f64)> {
    let data = load_data(cfg)?;
    let samples = &data.test[..images.min(data.test.len())];
    let angles = vec![adn_datasets::transforms::fixed_angles(views); samples.len()];
    let source = FeatureSource::new(cfg, &Settings::on_device(cfg, device)?, None)?;
    let bar = indicatif::ProgressBar::hidden();
    let mut stats = CacheStats::default();
    let start = Instant::now();
    let feats = source.pooled(samples, &angles, &bar, &mut stats)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((source, feats, seconds))
}

/// Backbone features of the first `images` test images under `views` fixed rotations each,
/// no cache: images/s with decoding, transforms and the forward, as a run computes them.
pub fn extract(cfg: &Config, images: usize, views: usize, device: Device) -> Result<Value> {
    let (_, feats, seconds) = test_features(cfg, images, views, device)?;
    let macs = adn_backbones::cost::macs(&cfg.model.backbone_config());
    Ok(json!({
        "forwards": feats.size()[0],
        "seconds": seconds,
        "macs_per_forward": macs,
        "feature_dim": feats.size()[1],
    }))
}

/// Test-time scoring with `views` rotations per image: features and flow, images/s.
pub fn score(cfg: &Config, images: usize, views: usize, device: Device) -> Result<Value> {
    crate::pipeline::model::require_differnet(cfg, "adn bench score")?;
    let (source, feats, feature_seconds) = test_features(cfg, images, views, device)?;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let flow = build_flow(cfg, &source.settings, &vs, source.extractor.feature_dim());
    let start = Instant::now();
    let scores = score_features(&flow, &feats, views as i64);
    let seconds = feature_seconds + start.elapsed().as_secs_f64();
    Ok(json!({"images": scores.len(), "views": views, "seconds": seconds}))
}

/// One training step, writing the seconds of its parts (forward, backward, Adam).
type StepFn = dyn FnMut(&mut [f64; 3]) -> Result<()>;

/// What `adn bench flow` measures.
pub struct FlowBench {
    pub dim: i64,
    pub hidden: i64,
    pub rows: i64,
    pub steps: usize,
    pub bf16: bool,
    pub optimizer: BenchOptimizer,
}

/// Flow training steps per second on random rows: forward, NLL, backward, Adam; with the
/// seconds of the last step's parts (forward, backward, Adam) when the optimiser is ours.
pub fn flow_steps(b: FlowBench, device: Device) -> Result<Value> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let cfg = FlowConfig {
        hidden: b.hidden,
        ..FlowConfig::default()
    };
    let flow = DifferNetFlow::new(&vs.root(), b.dim, &cfg);
    let flow = if b.bf16 {
        flow.with_bf16_matmuls()
    } else {
        flow
    };
    // DifferNet's optimiser: the config defaults (betas 0.8/0.8, eps 1e-4, wd 1e-5, lr 2e-4).
    let train = crate::config::TrainConfig::default();
    let x = Tensor::randn([b.rows, b.dim], (Kind::Float, device));
    let mut parts = [0.0f64; 3];
    let mut step: Box<StepFn> = match b.optimizer {
        BenchOptimizer::OnePass => {
            let mut opt = adn_flows::Adam::new(flow.params(), adam(&train, train.lr));
            Box::new(move |parts: &mut [f64; 3]| {
                let t0 = Instant::now();
                let (z, log_det) = flow.forward(&x);
                let loss = nll_loss(&z, &log_det);
                let t1 = Instant::now();
                let grads = Tensor::f_run_backward(&[&loss], &opt.leaves(), false, false)?;
                let t2 = Instant::now();
                opt.step(&grads);
                *parts = [
                    (t1 - t0).as_secs_f64(),
                    (t2 - t1).as_secs_f64(),
                    t2.elapsed().as_secs_f64(),
                ];
                Ok(())
            })
        }
        BenchOptimizer::Libtorch => {
            anyhow::ensure!(
                !b.bf16,
                "libtorch's Adam cannot update bf16 copies; use --optimizer one-pass"
            );
            let mut opt = nn::Adam {
                beta1: train.betas[0],
                beta2: train.betas[1],
                wd: train.weight_decay,
                eps: train.eps,
                amsgrad: false,
            }
            .build(&vs, train.lr)?;
            Box::new(move |_: &mut [f64; 3]| {
                let (z, log_det) = flow.forward(&x);
                opt.backward_step(&nll_loss(&z, &log_det));
                Ok(())
            })
        }
    };
    for _ in 0..3 {
        step(&mut parts)?;
    }
    let start = Instant::now();
    for _ in 0..b.steps {
        step(&mut parts)?;
    }
    Ok(json!({
        "steps": b.steps,
        "seconds": start.elapsed().as_secs_f64(),
        "precision": if b.bf16 { "bf16" } else { "fp32" },
        "optimizer": match b.optimizer { BenchOptimizer::OnePass => "one-pass", BenchOptimizer::Libtorch => "libtorch" },
        "last_step_s": {"forward": parts[0], "backward": parts[1], "adam": parts[2]},
    }))
}

/// Achieved GFLOP/s of a square matrix multiply: the machine's compute ceiling in a
/// precision.
pub fn matmul(n: i64, repeats: usize, precision: Precision, device: Device) -> Value {
    let kind = match precision {
        Precision::Fp32 => Kind::Float,
        Precision::Bf16 => Kind::BFloat16,
    };
    let a = Tensor::randn([n, n], (kind, device));
    let b = Tensor::randn([n, n], (kind, device));
    let _ = a.matmul(&b);
    let start = Instant::now();
    for _ in 0..repeats {
        let _ = a.matmul(&b);
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    let seconds = start.elapsed().as_secs_f64();
    let flops = 2.0 * (n as f64).powi(3) * repeats as f64;
    json!({
        "n": n,
        "repeats": repeats,
        "precision": precision.name(),
        "seconds": seconds,
        "gflops": flops / seconds / 1e9,
    })
}
