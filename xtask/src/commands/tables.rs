//! `cargo xtask tables EXP`: an experiment's finished runs gathered into runs.parquet and
//! its tables; the headline table written between its markers in the README and in the
//! experiment's own README (`results/EXP/README.md`).

use std::path::PathBuf;

use anyhow::Result;

use crate::util;

/// `results/<experiment>`.
pub fn experiment_dir(experiment: &str) -> PathBuf {
    util::workspace_root().join("results").join(experiment)
}

/// Writes runs.parquet and the tables of `results/<experiment>` and the headline table into
/// the READMEs; prints the Markdown.
pub fn run(experiment: &str) -> Result<()> {
    let headline = write(experiment)?;
    update_readme(experiment, &headline)
}

/// Writes runs.parquet and the tables of `results/<experiment>`, prints the Markdown, and
/// returns the headline table (for [`update_readme`]).
pub fn write(experiment: &str) -> Result<String> {
    write_from(&adn_report::gather(&experiment_dir(experiment))?)
}

/// As [`write`], for the gathered experiment `exp`.
pub fn write_from(exp: &adn_report::Experiment) -> Result<String> {
    let dir = &exp.dir;
    let published_path = util::workspace_root().join("experiments/published.toml");
    let published = adn_report::Published::load(&published_path)?;
    let written = adn_report::write_tables(exp, &published)?;
    println!("{}", written.markdown);
    util::step(&format!(
        "tables: {} files under {}",
        written.files.len(),
        dir.display()
    ));
    Ok(written.headline)
}

/// Replaces what lies between `<!-- headline:<experiment> -->` and
/// `<!-- /headline:<experiment> -->` with the experiment's headline table, in README.md and
/// in `results/<experiment>/README.md`, so the READMEs' numbers are the tables', never
/// typed. A file without the markers is left alone.
pub fn update_readme(experiment: &str, headline: &str) -> Result<()> {
    let root = util::workspace_root();
    for path in [
        root.join("README.md"),
        experiment_dir(experiment).join("README.md"),
    ] {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some(updated) = replace_block(&text, experiment, headline) else {
            continue;
        };
        if updated != text {
            adn_util::atomic::write_file(&path, updated.as_bytes())?;
            util::step(&format!(
                "{}: headline table of {experiment} updated",
                path.strip_prefix(&root).unwrap_or(&path).display()
            ));
        }
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
