//! `cargo xtask figures EXP`: an experiment's figures, with the map, Grad-CAM and attention
//! pictures from `adn explain` where the runs still hold their models (for an experiment
//! that crosses flows, each flow's map without attention, side by side).

use std::path::PathBuf;

use anyhow::Result;

use crate::commands::tables::experiment_dir;
use crate::{adn, util};

/// Checks the charts of `results/<experiment>` against the print rules; an error naming
/// every breach when there is one. (The pictures from `adn explain` are checked whenever
/// they are drawn.)
pub fn check(experiment: &str) -> Result<()> {
    let exp = adn_report::gather(&experiment_dir(experiment))?;
    let checked = adn_report::figures::check_figures(&exp)?;
    refuse_breaches(&checked)?;
    util::step(&format!(
        "figures: {} layouts keep the print rules",
        checked.len()
    ));
    Ok(())
}

/// An error naming every layout of `checked` that breaks the print rules, and its breaches.
fn refuse_breaches(checked: &[(String, Vec<String>)]) -> Result<()> {
    let broken: Vec<String> = checked
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, v)| format!("{name}:\n  {}", v.join("\n  ")))
        .collect();
    if !broken.is_empty() {
        anyhow::bail!(
            "{} of {} figure layouts break the print rules:\n{}",
            broken.len(),
            checked.len(),
            broken.join("\n")
        );
    }
    Ok(())
}

/// Draws the figures of `results/<experiment>`.
pub fn run(experiment: &str) -> Result<()> {
    draw(&adn_report::gather(&experiment_dir(experiment))?)
}

/// Draws the figures of the gathered experiment `exp`.
pub fn draw(exp: &adn_report::Experiment) -> Result<()> {
    let dir = exp.dir.clone();
    let mut files = adn_report::figures::write_figures(exp)?;
    // The qualitative maps, the Grad-CAM grid and the attention pictures need the trained
    // models and libtorch: `adn explain`.
    let adn = adn::path();
    // An experiment that crosses flows explains each flow without attention: each flow's
    // native map (DifferNet's: its input gradient) side by side; Grad-CAM is DifferNet's.
    let groups = adn_report::figures::explain_groups(exp);
    if !adn.is_file() {
        util::step("map figures skipped: build adn first (cargo build -p adn-runner)");
    } else if groups.is_empty() {
        util::step("map figures skipped: the run folders no longer hold their models");
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
        let gradcam = figures_dir.join(format!("gradcam_{}", group.slug));
        let maps = figures_dir.join(format!("maps_{}", group.slug));
        let with_cams = adn_record::Explanation::read(&explain_dir)?.has_cams();
        // Laid out and checked first: a figure that breaks the print rules does not replace
        // the one already there.
        let mut checked = match with_cams {
            true => adn_report::figures::check_gradcam_grid(&explain_dir, exp, &gradcam)?,
            false => Vec::new(),
        };
        checked.extend(adn_report::figures::check_map_grid(
            &explain_dir,
            exp,
            &maps,
        )?);
        checked.extend(adn_report::figures::check_attention_pictures(
            &explain_dir,
            exp,
            &figures_dir,
            &group.slug,
        )?);
        refuse_breaches(&checked)?;
        if with_cams {
            files.extend(adn_report::figures::write_gradcam_grid(
                &explain_dir,
                exp,
                &gradcam,
            )?);
        }
        files.extend(adn_report::figures::write_map_grid(
            &explain_dir,
            exp,
            &maps,
        )?);
        files.extend(adn_report::figures::write_attention_pictures(
            &explain_dir,
            exp,
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
        // The categories figure compares one flow's variants.
        if categories.len() > 1 && exp.flows().is_empty() {
            let stem = figures_dir.join(format!("maps_{}", adn_report::figures::slug(d)));
            refuse_breaches(&adn_report::figures::check_category_maps(
                &categories,
                exp,
                &stem,
            )?)?;
            files.extend(adn_report::figures::write_category_maps(
                &categories,
                exp,
                &stem,
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
