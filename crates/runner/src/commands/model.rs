//! `adn model summary`: parameters and multiply-accumulates of a config's model.

use std::fmt::Write;

use adn_flows::DifferNetFlow;
use anyhow::Result;
use tch::{Device, nn};

use crate::config::{Config, ConfigArgs};
use crate::pipeline::features::FeatureSource;
use crate::pipeline::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Print the model of CONFIG: parameters per part, feature size, MACs per image.
    Summary {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn command(args: Args) -> Result<()> {
    let Args::Summary { config } = args;
    let cfg = config.load()?;
    print!("{}", model_summary(&cfg)?);
    Ok(())
}

fn count(vs: &nn::VarStore) -> i64 {
    vs.variables().values().map(|v| v.numel() as i64).sum()
}

/// Parameters and MACs of the model a config builds.
pub fn model_summary(cfg: &Config) -> Result<String> {
    crate::pipeline::model::require_differnet(cfg, "adn model summary")?;
    let extractor =
        FeatureSource::new(cfg, &Settings::on_device(cfg, Device::Cpu)?, None)?.extractor;
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
