//! `adn predict`: a trained run's decisions on a folder of unlabelled images.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::device::DeviceChoice;
use crate::pipeline::predict::{PredictOptions, ThresholdChoice, predict};

/// `adn predict`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run folder (holds config.toml, metrics.json and model.safetensors).
    run_dir: PathBuf,
    /// The folder of images to score, at any depth (png, jpg, jpeg, bmp, tif, tiff).
    folder: PathBuf,
    /// The threshold that decides: one the run recorded (`good-q99`, `good-q99.9`,
    /// `validation-f1`, or `test-f1`, chosen on the test set) or a score. Default:
    /// `validation-f1` where the run had a labelled data.validation folder, else `good-q99`
    /// where it held good images out (train.validation_fraction), else no decisions.
    #[arg(long)]
    threshold: Option<ThresholdChoice>,
    /// Also write each image's anomaly map (16-bit PNG) and an overlay under maps/.
    #[arg(long)]
    maps: bool,
    /// Output folder (default: <run_dir>/predict-<folder name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images decoded and scored together.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
    /// Use the feature cache at this root (off by default: a line's images are new).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    #[arg(long)]
    quiet: bool,
    /// Replace an existing output folder (only once the new one is complete).
    #[arg(long)]
    force: bool,
    /// Score model files whose SHA-256 differs from the run's record.
    #[arg(long)]
    any_model: bool,
}

/// `adn predict`: writes the predictions and prints one line; fails at the end when some
/// images could not be read (each was named as it was met).
pub fn command(args: Args) -> Result<()> {
    crate::pipeline::reproducible::enter_for_runs(&[&args.run_dir])?;
    let name = args
        .folder
        .file_name()
        .map_or_else(|| "images".into(), |n| n.to_string_lossy().into_owned());
    let out = args
        .out
        .unwrap_or_else(|| args.run_dir.join(format!("predict-{name}")));
    let opts = PredictOptions {
        out,
        threshold: args.threshold.unwrap_or(ThresholdChoice::Default),
        maps: args.maps,
        device: args.device,
        cache_dir: args.cache_dir,
        batch: args.batch,
        quiet: args.quiet,
        force: args.force,
        any_model: args.any_model,
    };
    let outcome = predict(&args.run_dir, &args.folder, &opts)?;
    let r = &outcome.record;
    let decisions = match (&r.threshold, r.anomalous) {
        (Some(t), Some(n)) => format!("{n} anomalous at {} = {:.6}", t.name, t.value),
        _ => "no threshold, scores only".into(),
    };
    println!(
        "predict {}: {} images scored ({decisions}) -> {}",
        r.run_id,
        r.scored,
        outcome.dir.display()
    );
    if !r.unreadable.is_empty() {
        bail!(
            "{} of {} images could not be read (each is named above and in {}); the other {} \
             were scored",
            r.unreadable.len(),
            r.unreadable.len() + r.scored,
            outcome.dir.join(adn_record::files::PREDICT).display(),
            r.scored
        );
    }
    Ok(())
}
