//! `adn extract`: the pooled features of a config's test images, to a safetensors file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::Device;

use crate::config::{Config, ConfigArgs};
use crate::device::DeviceChoice;
use crate::pipeline::data::{fixed_test_angles, load_data};
use crate::pipeline::features::{CacheStats, FeatureSource};
use crate::pipeline::settings::Settings;
use crate::progress;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output file; `<out>.paths.txt` lists the images, one per row of the tensor.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    device: DeviceChoice,
}

pub fn command(args: Args) -> Result<()> {
    let cfg = args.config.load()?;
    crate::pipeline::reproducible::enter(cfg.compute.reproducible)?;
    let device = args.device.resolve_for(cfg.compute.reproducible)?;
    let n = extract_test_features(&cfg, &args.out, device)?;
    println!("{n} test images -> {}", args.out.display());
    Ok(())
}

/// Writes `[images, test_transforms, dim]` pooled features of the test set and the image
/// paths beside them; returns the number of images.
pub fn extract_test_features(cfg: &Config, out: &Path, device: Device) -> Result<usize> {
    crate::pipeline::settings::require_switches(cfg)?;
    let settings = Settings::on_device(cfg, device)?;
    let source = FeatureSource::new(cfg, &settings, None)?;
    let data = load_data(cfg)?;
    let angles = fixed_test_angles(cfg, data.test.len());
    let mut stats = CacheStats::default();
    let bar = progress::bar(false, data.test.len() as u64, "features");
    let feats = source.pooled(&data.test, &angles, &bar, &mut stats)?;
    bar.finish_and_clear();
    let feats = feats.reshape([
        data.test.len() as i64,
        cfg.test.test_transforms as i64,
        source.extractor.feature_dim(),
    ]);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = adn_util::atomic::partial_path(out);
    tch::Tensor::write_safetensors(&[("features", &feats)], &tmp)?;
    let paths: String = data
        .test
        .iter()
        .map(|s| format!("{}\t{}\n", s.path.display(), s.defect))
        .collect();
    let mut paths_file = out.as_os_str().to_owned();
    paths_file.push(".paths.txt");
    std::fs::write(&paths_file, paths)
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(data.test.len())
}
