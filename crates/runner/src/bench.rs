//! `adn bench`: the Rust side of `cargo xtask bench`, each measurement the same work as the
//! PyTorch reference's mode of the same name (`bench/reference/differnet.py`), printed as
//! JSON. The full run is measured with `adn run` itself.

use std::time::Instant;

use adn_flows::{DifferNetFlow, FlowConfig, nll_loss};
use anyhow::Result;
use serde_json::{Value, json};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::config::{Config, ConfigArgs};
use crate::device::DeviceChoice;
use crate::extract::{CacheStats, FeatureSource};
use crate::run::data::load_data;
use crate::run::evaluate::score as score_features;
use crate::run::train::adam;

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
            device,
        } => flow_steps(dim, hidden, rows, steps, device.resolve()?)?,
        Args::Matmul { n, repeats, device } => matmul(n, repeats, device.resolve()?),
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
) -> Result<(adn_backbones::FeatureExtractor, Tensor, f64)> {
    let data = load_data(cfg)?;
    let samples = &data.test[..images.min(data.test.len())];
    let angles = vec![adn_datasets::transforms::fixed_angles(views); samples.len()];
    let source = FeatureSource::new(cfg, device, None)?;
    let bar = indicatif::ProgressBar::hidden();
    let mut stats = CacheStats::default();
    let start = Instant::now();
    let feats = source.pooled(samples, &angles, &bar, &mut stats)?;
    let seconds = start.elapsed().as_secs_f64();
    Ok((source.extractor, feats, seconds))
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
    let (extractor, feats, feature_seconds) = test_features(cfg, images, views, device)?;
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let flow = DifferNetFlow::new(&vs.root(), extractor.feature_dim(), &cfg.flow);
    let start = Instant::now();
    let scores = score_features(&flow, &feats, views as i64);
    let seconds = feature_seconds + start.elapsed().as_secs_f64();
    Ok(json!({"images": scores.len(), "views": views, "seconds": seconds}))
}

/// Flow training steps per second on random rows: forward, NLL, backward, Adam.
pub fn flow_steps(dim: i64, hidden: i64, rows: i64, steps: usize, device: Device) -> Result<Value> {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let cfg = FlowConfig {
        hidden,
        ..FlowConfig::default()
    };
    let flow = DifferNetFlow::new(&vs.root(), dim, &cfg);
    // DifferNet's optimiser: the config defaults (betas 0.8/0.8, eps 1e-4, wd 1e-5, lr 2e-4).
    let train = crate::config::TrainConfig::default();
    let mut opt = adam(&train).build(&vs, train.lr)?;
    let x = Tensor::randn([rows, dim], (Kind::Float, device));
    let mut step = || {
        let (z, log_det) = flow.forward(&x);
        opt.backward_step(&nll_loss(&z, &log_det));
    };
    for _ in 0..3 {
        step();
    }
    let start = Instant::now();
    for _ in 0..steps {
        step();
    }
    Ok(json!({"steps": steps, "seconds": start.elapsed().as_secs_f64()}))
}

/// Achieved GFLOP/s of a square float32 matrix multiply: the machine's compute ceiling.
pub fn matmul(n: i64, repeats: usize, device: Device) -> Value {
    let a = Tensor::randn([n, n], (Kind::Float, device));
    let b = Tensor::randn([n, n], (Kind::Float, device));
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
    json!({"n": n, "repeats": repeats, "seconds": seconds, "gflops": flops / seconds / 1e9})
}
