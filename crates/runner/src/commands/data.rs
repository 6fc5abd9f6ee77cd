//! `adn data make|check`: write a dataset in its real layout, or validate one.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Subcommand)]
pub enum Args {
    /// Write a dataset in its real layout: elpv | synthetic-mvtec | synthetic-insplad |
    /// synthetic-wafer | smoke.
    Make {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        out: PathBuf,
        /// Image side (generated kinds).
        #[arg(long)]
        size: Option<u32>,
        /// Images per split (generated kinds).
        #[arg(long)]
        per_split: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Decode every image and mask of a dataset, apply every layout rule, and print the
    /// counts per category, split and defect type: mvtec | insplad | folder.
    Check {
        #[arg(long)]
        kind: String,
        /// Dataset root (or one category folder).
        #[arg(long)]
        root: PathBuf,
    },
}

pub fn command(args: Args) -> Result<()> {
    match args {
        Args::Make {
            kind,
            out,
            size,
            per_split,
            seed,
        } => {
            let kind: adn_datagen::MakeKind = kind.parse()?;
            let opts = adn_datagen::MakeOptions {
                size,
                per_split,
                seed,
                ..Default::default()
            };
            print!("{}", adn_datagen::make(kind, &out, &opts)?);
        }
        Args::Check { kind, root } => {
            let kind: adn_datasets::DatasetKind = kind.parse()?;
            let opts = adn_datasets::CheckOptions { progress: true };
            print!("{}", adn_datasets::check_with(kind, &root, &opts)?);
        }
    }
    Ok(())
}
