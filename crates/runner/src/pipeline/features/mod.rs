//! A run's second stage: what the flow trains on. [`FeatureSource`] is the one way images
//! become pooled features (extraction in [`source`], its verified [`cache`]); [`joint`]
//! holds the frozen prefixes that jointly trained attention starts from.

pub mod cache;
pub mod joint;
mod source;

pub use source::{CacheStats, FeatureSource, build_extractor, check_memory};

use anyhow::Result;
use tch::{Kind, Tensor};

use crate::pipeline::RunOptions;
use crate::pipeline::data::RunData;
use crate::pipeline::settings::Settings;

/// Fixed features (a frozen extractor, cached), or the frozen prefixes that jointly trained
/// attention starts from.
pub enum Inputs {
    /// `[images · views, dim]` each: every rotation of the training pool, every test view.
    Fixed { train: Tensor, test: Tensor },
    /// Per scale `[images · views, C, H, W]`.
    Joint {
        train: Vec<Tensor>,
        test: Vec<Tensor>,
    },
}

/// The extractor with what it produced for this run.
pub struct RunFeatures {
    pub source: FeatureSource,
    pub inputs: Inputs,
    pub cache_stats: CacheStats,
}

/// Computes the training and test inputs of the flow.
pub fn compute(
    cfg: &crate::config::Config,
    data: &RunData,
    settings: &Settings,
    opts: &RunOptions,
) -> Result<RunFeatures> {
    let device = settings.device;
    let source = FeatureSource::new(cfg, settings, opts.cache_dir.as_deref())?;
    let extractor = &source.extractor;
    let images = &data.images;
    let mut cache_stats = CacheStats::default();
    tracing::info!(
        run_id = %cfg.run_id(),
        device = ?device,
        train_images = images.train.len(),
        test_images = images.test.len(),
        joint_attention = !extractor.is_frozen(),
        "run started"
    );
    let bar = crate::progress::bar(
        opts.quiet,
        (images.train.len() + images.test.len()) as u64,
        "features",
    );
    let inputs = if extractor.is_frozen() {
        let train = source.pooled(&images.train, &data.train_angles, &bar, &mut cache_stats)?;
        let test = source.pooled(&images.test, &data.test_angles, &bar, &mut cache_stats)?;
        tracing::info!(
            train_mean = train.mean(Kind::Float).double_value(&[]),
            train_std = train.std(true).double_value(&[]),
            test_std = test.std(true).double_value(&[]),
            "pooled features"
        );
        Inputs::Fixed { train, test }
    } else {
        let prefixes = |samples: &[adn_datasets::Sample], angles: &[Vec<f64>]| {
            joint::frozen_prefixes(extractor, device, samples, angles, &bar)
        };
        let train = prefixes(&images.train, &data.train_angles)?;
        let test = prefixes(&images.test, &data.test_angles)?;
        Inputs::Joint { train, test }
    };
    bar.finish_and_clear();
    Ok(RunFeatures {
        source,
        inputs,
        cache_stats,
    })
}

/// What the training loop asks of its inputs, the same for fixed features and for jointly
/// trained attention, so that the loop reads as DifferNet's algorithm.
impl RunFeatures {
    /// Whether the attention trains with the flow.
    pub fn is_joint(&self) -> bool {
        matches!(self.inputs, Inputs::Joint { .. })
    }

    /// The fixed training features, when they do not change during training.
    pub fn fixed_train(&self) -> Option<&Tensor> {
        match &self.inputs {
            Inputs::Fixed { train, .. } => Some(train),
            Inputs::Joint { .. } => None,
        }
    }

    /// The training feature rows `rows`: picked from the fixed features, or computed
    /// through the attention with autograd.
    pub fn train_rows(&self, rows: &Tensor) -> Tensor {
        match &self.inputs {
            Inputs::Fixed { train, .. } => train.index_select(0, rows),
            Inputs::Joint { train, .. } => joint::features(&self.source.extractor, train, rows),
        }
    }

    /// Every test feature row `[images · views, dim]`, without autograd.
    pub fn test_rows(&self) -> Tensor {
        match &self.inputs {
            Inputs::Fixed { test, .. } => test.shallow_clone(),
            Inputs::Joint { test, .. } => joint::all_features(&self.source.extractor, test),
        }
    }

    /// A joint run's training rows through the backbone alone, attention skipped: what the
    /// volume charge compares each batch with. `None` for fixed features.
    pub fn train_without_attention(&self) -> Option<Tensor> {
        match &self.inputs {
            Inputs::Fixed { .. } => None,
            Inputs::Joint { train, .. } => Some(joint::features_without_attention(
                &self.source.extractor,
                train,
            )),
        }
    }
}
