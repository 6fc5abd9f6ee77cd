//! `adn model summary` and `adn extract`.

use std::fmt::Write;
use std::path::Path;

use adn_flows::DifferNetFlow;
use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{Device, nn};

use crate::config::Config;
use crate::run;

fn count(vs: &nn::VarStore) -> i64 {
    vs.variables().values().map(|v| v.numel() as i64).sum()
}

/// Parameters and MACs of the model a config builds.
pub fn model_summary(cfg: &Config) -> Result<String> {
    let extractor = adn_backbones::FeatureExtractor::new(
        &cfg.model.backbone_config(),
        cfg.model.weights.as_deref(),
        cfg.model.attention_training,
        cfg.train.seed as i64,
        Device::Cpu,
    )?;
    let flow_vs = nn::VarStore::new(Device::Cpu);
    let _flow = DifferNetFlow::new(&flow_vs.root(), extractor.feature_dim(), &cfg.flow);
    let b = extractor.config();
    let macs = adn_backbones::cost::macs(b);
    let (backbone, attention, flow) = (
        count(&extractor.backbone_vs),
        count(&extractor.attention_vs),
        count(&flow_vs),
    );
    let mut out = String::new();
    let m = |n: i64| n as f64 / 1e6;
    writeln!(
        out,
        "backbone       {} ({})",
        b.kind.name(),
        match &cfg.model.weights {
            Some(p) => p.display().to_string(),
            None => "random weights".into(),
        }
    )?;
    writeln!(
        out,
        "attention      {:?} at {:?}, {:?}",
        b.attention, b.positions, cfg.model.attention_training
    )?;
    writeln!(
        out,
        "input          {} px, {} scales; features from {:?}",
        b.image_size, b.scales, b.feature_layers
    )?;
    writeln!(out, "feature dim    {}", extractor.feature_dim())?;
    writeln!(
        out,
        "parameters     backbone {:.3} M (frozen; all layers built, incl. unused ones)",
        m(backbone)
    )?;
    writeln!(out, "               attention {:.4} M", m(attention))?;
    writeln!(
        out,
        "               flow {:.3} M ({} blocks, hidden {})",
        m(flow),
        cfg.flow.coupling_blocks,
        cfg.flow.hidden
    )?;
    writeln!(
        out,
        "               total {:.3} M",
        m(backbone + attention + flow)
    )?;
    writeln!(
        out,
        "MACs / image   backbone+attention {:.3} G over all scales (x{} test rotations at test time)",
        macs / 1e9,
        cfg.test.test_transforms
    )?;
    Ok(out)
}

/// Writes `[images, test_transforms, dim]` pooled features of the test set and the image
/// paths beside them; returns the number of images.
pub fn extract_test_features(cfg: &Config, out: &Path, device: Device) -> Result<usize> {
    let extractor = run::build_extractor(cfg, device)?;
    let data = run::load_data(cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed);
    let angles = run::test_angles(cfg, data.test.len(), &mut rng);
    let mut stats = crate::extract::CacheStats::default();
    let bar = run::progress(false, data.test.len() as u64, "features");
    let how = crate::extract::Extraction {
        extractor: &extractor,
        device,
        cache: None,
        mixed_precision: cfg.model.mixed_precision,
        progress: &bar,
    };
    let feats = crate::extract::pooled_features(&how, &data.test, &angles, &mut stats)?;
    bar.finish_and_clear();
    let feats = feats.reshape([
        data.test.len() as i64,
        cfg.test.test_transforms as i64,
        extractor.feature_dim(),
    ]);
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.partial",
        out.file_name().unwrap_or_default().to_string_lossy()
    ));
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
