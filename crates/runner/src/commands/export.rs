//! `adn export`: a trained run as one TorchScript file that scores without `adn`.

use std::path::PathBuf;

use anyhow::Result;

use crate::pipeline::export::{ExportOptions, export};

/// `adn export`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run folder (holds config.toml, metrics.json and model.safetensors).
    run_dir: PathBuf,
    /// The format: TorchScript (ONNX: see docs/guide.md, "Exporting").
    #[arg(long, value_enum, default_value = "torchscript")]
    format: Format,
    /// Output folder (default: <run_dir>/export).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Images per call of the exported file (a traced file takes one batch size).
    #[arg(long, default_value_t = 1)]
    batch: i64,
    /// Check the export on the images below this folder (default: the run's test images).
    #[arg(long)]
    check: Option<PathBuf>,
    /// At most this many images are checked, evenly spaced.
    #[arg(long, default_value_t = 16)]
    check_images: usize,
    /// Replace an existing output folder (only once the new one is complete).
    #[arg(long)]
    force: bool,
    /// Export model files whose SHA-256 differs from the run's record.
    #[arg(long)]
    any_model: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Torchscript,
}

/// `adn export`: writes the export folder and prints one line.
pub fn command(args: Args) -> Result<()> {
    crate::pipeline::reproducible::enter_for_runs(&[&args.run_dir])?;
    let Format::Torchscript = args.format;
    let opts = ExportOptions {
        out: args.out.unwrap_or_else(|| args.run_dir.join("export")),
        batch: args.batch,
        check: args.check,
        check_images: args.check_images,
        force: args.force,
        any_model: args.any_model,
    };
    let (dir, r) = export(&args.run_dir, &opts)?;
    println!(
        "export {}: TorchScript, batch {}, {} checked images within {:.1e} of adn's scores -> {}",
        r.run_id,
        r.input.shape[0],
        r.checked_images,
        r.max_relative_difference,
        dir.display()
    );
    Ok(())
}
