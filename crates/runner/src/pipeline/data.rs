//! A run's first stage: the configured category's images, validated, and the rotation of
//! every view the run will use.

use adn_datagen::smoke;
use adn_datasets::transforms::fixed_angles;
use anyhow::{Context, Result, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, DataKind, Rotations, TrainRotations};

/// The images of a run and their rotations.
pub struct RunData {
    pub images: adn_datasets::CategoryData,
    /// The rotations each training image has features for. Under `train.redraw_rotations`
    /// every batch draws its views from them (the same pool for every image); otherwise they
    /// are the views themselves, drawn once.
    pub train_angles: Vec<Vec<f64>>,
    /// The test-time rotations of each test image.
    pub test_angles: Vec<Vec<f64>>,
}

/// Loads the data and draws the rotations; returns the run's random generator, which
/// training continues to draw from (so a seed gives the same run).
pub fn prepare(cfg: &Config) -> Result<(RunData, ChaCha8Rng)> {
    let images = load_data(cfg)?;
    require_both_classes(&images)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let train_angles: Vec<Vec<f64>> = if cfg.train.redraw_rotations {
        let pool = match cfg.train.rotations {
            TrainRotations::QuarterTurns => fixed_angles(4),
            TrainRotations::Uniform => fixed_angles(cfg.train.rotation_pool),
        };
        vec![pool; images.train.len()]
    } else {
        images
            .train
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
    let test_angles = test_angles(cfg, images.test.len(), &mut rng);
    let data = RunData {
        images,
        train_angles,
        test_angles,
    };
    Ok((data, rng))
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

/// Fails unless the test set has good and anomalous images: the AUROC needs both, and
/// finding out after the extraction and a meta-epoch wastes the run.
pub fn require_both_classes(images: &adn_datasets::CategoryData) -> Result<()> {
    let anomalous = images.test.iter().filter(|s| s.is_anomalous()).count();
    let good = images.test.len() - anomalous;
    if good == 0 || anomalous == 0 {
        bail!(
            "the test set of {} (category {}) has {good} good and {anomalous} anomalous \
             images; the AUROC needs both (`adn data check` lists what is there)",
            images.root.display(),
            images.category
        );
    }
    Ok(())
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

/// The test-time rotations of `n` images for commands that score a trained model (`eval`,
/// `extract`): drawn from the run's seed as the run drew them when they are random.
pub fn fixed_test_angles(cfg: &Config, n: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    test_angles(cfg, n, &mut rng)
}
