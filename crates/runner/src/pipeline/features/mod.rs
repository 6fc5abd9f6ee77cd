//! A run's second stage: what the flow trains on. [`FeatureSource`] is the one way images
//! become pooled features or the frozen prefixes that jointly trained attention starts from
//! (extraction in [`source`], its verified [`cache`]); [`inputs`] is what the training loop
//! asks of them, the same for both.

pub mod cache;
mod inputs;
mod source;

pub use source::{
    CacheStats, FeatureSource, activation_floats, build_extractor, check_batch_memory, check_memory,
};

use anyhow::Result;
use tch::{Kind, Tensor};

use crate::pipeline::RunOptions;
use crate::pipeline::data::RunData;
use crate::pipeline::settings::Settings;

/// Fixed features (a frozen extractor, cached), or the frozen prefixes that jointly trained
/// attention starts from.
pub enum Inputs {
    /// `[images · views, dim]` each: every rotation of the training pool, every test view,
    /// every view of the validation images (`None` without).
    Fixed {
        train: Tensor,
        test: Tensor,
        validation: Option<Tensor>,
    },
    /// Per scale `[images · views, C, H, W]`: the frozen prefixes that jointly trained
    /// attention starts from, before DifferNet's flow or a flow on maps.
    Joint {
        train: Vec<Tensor>,
        test: Vec<Tensor>,
        validation: Option<Vec<Tensor>>,
    },
    /// The feature maps a flow on maps trains on behind a frozen extractor: per scale and
    /// feature layer `[images · views, C, H, W]`, rows as above.
    Maps {
        train: Vec<Tensor>,
        test: Vec<Tensor>,
        validation: Option<Vec<Tensor>>,
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
        (images.train.len() + images.test.len() + data.validation.len()) as u64,
        "features",
    );
    let on_maps = cfg.flow.kind != adn_flows::FlowKind::Differnet;
    if on_maps {
        crate::pipeline::train_maps::check_dims(cfg, &source.map_dims())?;
    }
    let inputs = if !extractor.is_frozen() {
        // Jointly trained attention, before a flow on pooled features or on maps: the
        // frozen prefixes, run through the attention at every step.
        let validation = match data.validation.is_empty() {
            true => None,
            false => {
                Some(source.frozen_prefixes(&data.validation, &data.validation_angles, &bar)?)
            }
        };
        Inputs::Joint {
            train: source.frozen_prefixes(&images.train, &data.train_angles, &bar)?,
            test: source.frozen_prefixes(&images.test, &data.test_angles, &bar)?,
            validation,
        }
    } else if on_maps {
        let validation = match data.validation.is_empty() {
            true => None,
            false => Some(source.maps(&data.validation, &data.validation_angles, &bar)?),
        };
        Inputs::Maps {
            train: source.maps(&images.train, &data.train_angles, &bar)?,
            test: source.maps(&images.test, &data.test_angles, &bar)?,
            validation,
        }
    } else {
        let train = source.pooled(&images.train, &data.train_angles, &bar, &mut cache_stats)?;
        let test = source.pooled(&images.test, &data.test_angles, &bar, &mut cache_stats)?;
        tracing::info!(
            train_mean = train.mean(Kind::Float).double_value(&[]),
            train_std = train.std(true).double_value(&[]),
            test_std = test.std(true).double_value(&[]),
            "pooled features"
        );
        let validation = match data.validation.is_empty() {
            true => None,
            false => Some(source.pooled(
                &data.validation,
                &data.validation_angles,
                &bar,
                &mut cache_stats,
            )?),
        };
        Inputs::Fixed {
            train,
            test,
            validation,
        }
    };
    bar.finish_and_clear();
    Ok(RunFeatures {
        source,
        inputs,
        cache_stats,
    })
}
