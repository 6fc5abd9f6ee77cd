//! `cargo xtask sweep GRID` (and the demo and paper grids): `adn sweep` does the runs, then
//! the experiment's tables and figures are written.

use std::path::Path;

use anyhow::{Context, Result};

use crate::commands::{figures, page, tables};
use crate::{adn, util};

/// The experiment name of a grid file.
pub fn experiment_of(grid: &Path) -> Result<String> {
    let text = std::fs::read_to_string(grid)
        .with_context(|| format!("cannot read grid {}", grid.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", grid.display()))?;
    table
        .get("experiment")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no `experiment = \"...\"`", grid.display()))
}

/// Runs `adn sweep GRID`, then (unless it only wrote a Slurm script) the tables, figures
/// and page.
pub fn run(grid: &Path, jobs: Option<usize>, extra: &[String]) -> Result<()> {
    let experiment = experiment_of(&util::workspace_root().join(grid))?;
    run_grid(grid, jobs, extra)?;
    if extra.iter().any(|a| a == "--slurm") {
        return Ok(());
    }
    tables::run(&experiment)?;
    figures::run(&experiment)?;
    page::run(&experiment)
}

/// Runs `adn sweep GRID` alone.
pub fn run_grid(grid: &Path, jobs: Option<usize>, extra: &[String]) -> Result<()> {
    let root = util::workspace_root();
    // Relative paths stay relative (adn runs in the workspace root), so plan.json and the
    // Slurm job lines name files the same way on every machine.
    let (adn, env) = adn::build()?;
    util::step(&format!("sweep {}", grid.display()));
    let mut cmd = std::process::Command::new(&adn);
    cmd.current_dir(&root)
        .envs(env.iter().cloned())
        .arg("sweep")
        .arg(grid)
        .args(extra);
    if let Some(j) = jobs {
        cmd.args(["--jobs", &j.to_string()]);
    }
    util::run(&mut cmd)
}
