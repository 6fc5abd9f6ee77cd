//! A run's first stage: the configured category's images, validated, and the rotation of
//! every view the run will use.

use std::path::{Path, PathBuf};

use adn_datagen::smoke;
use adn_datasets::layout::{list_dirs, list_images};
use adn_datasets::transforms::fixed_angles;
use anyhow::{Context, Result, bail};
use rand::seq::SliceRandom;
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
    /// Images scored after training, with test-time rotations, to set thresholds: first
    /// the `held_out` good training images (`train.validation_fraction`), then the labelled
    /// folder `data.validation`, if any. Never trained on.
    pub validation: Vec<adn_datasets::Sample>,
    pub validation_angles: Vec<Vec<f64>>,
    pub held_out: usize,
    /// The labelled folder the rest of `validation` came from.
    pub validation_folder: Option<PathBuf>,
}

/// Loads the data and draws the rotations; returns the run's random generator, which
/// training continues to draw from (so a seed gives the same run).
pub fn prepare(cfg: &Config) -> Result<(RunData, ChaCha8Rng)> {
    let mut images = load_data(cfg)?;
    require_both_classes(&images)?;
    let (mut validation, mut validation_angles) = hold_out(cfg, &mut images)?;
    let held_out = validation.len();
    if let Some(folder) = &cfg.data.validation {
        let labelled = labelled_folder(folder)?;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
        rng.set_stream(2);
        validation_angles.extend(test_angles(cfg, labelled.len(), &mut rng));
        validation.extend(labelled);
    }
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
        validation,
        validation_angles,
        held_out,
        validation_folder: cfg.data.validation.clone(),
    };
    Ok((data, rng))
}

/// The images of a labelled folder laid out like a test split: `good/` and one folder per
/// defect type, images at any depth below each (hidden entries skipped), sorted. It needs
/// both classes: the F1-optimal threshold weighs misses against false alarms.
pub fn labelled_folder(folder: &Path) -> Result<Vec<adn_datasets::Sample>> {
    let classes = list_dirs(folder).with_context(|| {
        format!(
            "cannot list the validation folder {} (data.validation)",
            folder.display()
        )
    })?;
    let mut samples = Vec::new();
    for class in classes {
        let defect = class
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        samples.extend(
            images_below(&class)?
                .into_iter()
                .map(|path| adn_datasets::Sample {
                    path,
                    defect: defect.clone(),
                    mask: None,
                }),
        );
    }
    let anomalous = samples.iter().filter(|s| s.is_anomalous()).count();
    let good = samples.len() - anomalous;
    if good == 0 || anomalous == 0 {
        bail!(
            "the validation folder {} (data.validation) holds {good} good and {anomalous} \
             anomalous images; it needs both, in good/ and one folder per defect type",
            folder.display()
        );
    }
    Ok(samples)
}

/// Every image file below `folder`, at any depth, sorted: the dataset layouts' listing
/// (hidden entries skipped, broken links and folder links that loop refused) applied to
/// every sub-folder.
pub fn images_below(folder: &Path) -> Result<Vec<PathBuf>> {
    fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        out.extend(list_images(dir)?);
        for sub in list_dirs(dir)? {
            collect(&sub, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    collect(folder, &mut out)?;
    out.sort();
    Ok(out)
}

/// [`images_below`] a folder of images to score, refusing a path that is not a folder and a
/// folder without an image; errors name the folder as `named` (its path, or the option
/// that gave it).
pub fn images_to_score(folder: &Path, named: &str) -> Result<Vec<PathBuf>> {
    if !folder.is_dir() {
        bail!("{named} is not a folder of images");
    }
    let images = images_below(folder)?;
    if images.is_empty() {
        bail!(
            "{named} holds no images ({} at any depth)",
            adn_datasets::layout::IMAGE_EXTENSIONS.join(", ")
        );
    }
    Ok(images)
}

/// Moves `train.validation_fraction` of the good training images (rounded, at least one)
/// out of `images.train`, chosen by a generator of their own so that the run's other draws
/// stay those of a run without a hold-out; returns them with their test-time rotations.
fn hold_out(
    cfg: &Config,
    images: &mut adn_datasets::CategoryData,
) -> Result<(Vec<adn_datasets::Sample>, Vec<Vec<f64>>)> {
    let fraction = cfg.train.validation_fraction;
    if fraction == 0.0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let n = images.train.len();
    let k = ((fraction * n as f64).round() as usize).max(1);
    if k >= n {
        bail!(
            "train.validation_fraction = {fraction} holds out {k} of the {n} training images \
             of {} (category {}), leaving none to train on; lower it",
            images.root.display(),
            images.category
        );
    }
    // A stream apart from the run's: ChaCha8's stream 1 under the same seed.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    rng.set_stream(1);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let mut held: Vec<usize> = order[..k].to_vec();
    held.sort_unstable();
    let mut validation = Vec::with_capacity(k);
    for &i in held.iter().rev() {
        validation.push(images.train.remove(i));
    }
    validation.reverse();
    let angles = test_angles(cfg, k, &mut rng);
    Ok((validation, angles))
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

/// The rotations every image is scored under by `adn predict` and an exported model: the
/// run's test-time ones. Random ones are the first test image's draw from the run's seed,
/// the same for every image, so that an image's score does not depend on the folder it is
/// in.
pub fn scoring_angles(cfg: &Config) -> Vec<f64> {
    match cfg.test.rotations {
        Rotations::Fixed => fixed_angles(cfg.test.test_transforms),
        Rotations::Random => fixed_test_angles(cfg, 1).remove(0),
    }
}

/// The test-time rotations of `n` images for commands that score a trained model (`eval`,
/// `extract`): drawn from the run's seed as the run drew them when they are random.
pub fn fixed_test_angles(cfg: &Config, n: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    test_angles(cfg, n, &mut rng)
}
