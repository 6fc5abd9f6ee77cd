//! `adn config`: the reference of every config key (`--reference`, what `docs/config.md`
//! holds), or a config resolved as a run would resolve it, with its run id.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::Config;

/// `adn config`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print every config key with its type, default and description (Markdown).
    #[arg(long, conflicts_with = "config")]
    reference: bool,
    /// A config to resolve: defaults filled in, overrides applied, validated.
    config: Option<PathBuf>,
    /// Override a config value by its dotted path, e.g. `--set train.lr=1e-3`.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "config")]
    overrides: Vec<String>,
}

/// `adn config`: prints the reference or the resolved config.
pub fn command(args: Args) -> Result<()> {
    if args.reference {
        print!("{}", crate::config::reference::reference());
        return Ok(());
    }
    let Some(path) = args.config else {
        bail!("give a config to resolve, or --reference for the list of every key");
    };
    let cfg = Config::load(&path, &args.overrides)?;
    println!("# run id {}\n{}", cfg.run_id(), cfg.to_toml());
    Ok(())
}
