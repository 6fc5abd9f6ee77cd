//! `cargo xtask page EXP`: the experiment's HTML page (`results/EXP/index.html`), from its
//! runs, tables and the figures already drawn.

use anyhow::Result;

use crate::commands::tables::experiment_dir;
use crate::util;

/// Writes `results/<experiment>/index.html`.
pub fn run(experiment: &str) -> Result<()> {
    write(&adn_report::gather(&experiment_dir(experiment))?)
}

/// Writes the page of the gathered experiment `exp`.
pub fn write(exp: &adn_report::Experiment) -> Result<()> {
    let published =
        adn_report::Published::load(&util::workspace_root().join("experiments/published.toml"))?;
    let page = adn_report::page::write_page(exp, &published)?;
    util::step(&format!("page: {}", page.display()));
    Ok(())
}
