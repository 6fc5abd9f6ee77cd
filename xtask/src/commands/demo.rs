//! `cargo xtask demo`: the demo grid (`experiments/demo.toml`), its tables and figures, and
//! whether the committed results were reproduced. The committed runs were made in
//! reproducible mode, so a rerun on any x86-64 CPU with AVX2 must give the same run ids and
//! the same scores bit for bit; when it does not, the READMEs keep their committed headline
//! and the difference is reported instead of written over them.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::commands::{figures, page, sweep, tables};
use crate::util;

/// The main job's grid: three stand-ins and ELPV × vanilla/SE/CBAM × 3 seeds.
pub const GRID: &str = "experiments/demo.toml";

/// Runs the demo grid and says whether it reproduced the committed runs.
pub fn run(jobs: Option<usize>) -> Result<()> {
    let grid = Path::new(GRID);
    let experiment = sweep::experiment_of(&util::workspace_root().join(grid))?;
    let parquet = tables::experiment_dir(&experiment).join("runs.parquet");
    // What was there before the sweep rewrites it: the committed runs, on a clean clone.
    // Absent, there is nothing to compare with; present but unreadable is an error, not a
    // licence to write over the READMEs.
    let session_facts = if parquet.exists() {
        Some(adn_report::tables::committed_session_facts(&parquet)?)
    } else {
        None
    };
    let committed: Option<BTreeMap<String, Option<String>>> = session_facts.as_ref().map(|facts| {
        facts
            .iter()
            .map(|(id, f)| (id.clone(), f.scores_sha256.clone()))
            .collect()
    });
    sweep::run_grid(grid, jobs, &[])?;
    let mut exp = adn_report::gather(&tables::experiment_dir(&experiment))?;
    // A reproduced run is the committed run: the committed table keeps its wall times,
    // machine and commit, so a clean clone that reproduces every run leaves the tree clean;
    // this machine's timings stay in the local run folders (results/<experiment>/runs).
    let kept = session_facts.map_or(0, |facts| exp.keep_committed_session_facts(&facts));
    if kept > 0 {
        util::step(&format!(
            "{kept} runs reproduced the committed scores: the tables keep their committed \
             wall times, machine and commit (this machine's are in their run folders)"
        ));
    }
    let headline = tables::write_from(&exp)?;
    figures::draw(&exp)?;
    page::write(&exp)?;
    let Some(committed) = committed else {
        // Nothing to compare with: a first run writes everything.
        return tables::update_readme(&experiment, &headline);
    };
    let now = adn_report::tables::scores_fingerprints(&parquet)?;
    let check = Reproduction::of(&committed, &now);
    if check.is_complete() {
        util::step(&format!(
            "reproduced {} of {} committed runs (same run ids, same scores)",
            check.same, check.committed
        ));
        tables::update_readme(&experiment, &headline)
    } else {
        util::step(&format!(
            "NOT reproduced: {} of {} committed runs have the same run id and scores; {}. \
             The READMEs keep the committed headline; the new tables and figures are under \
             results/{experiment} (`git diff` shows them)",
            check.same,
            check.committed,
            check.describe()
        ));
        Ok(())
    }
}

/// How a rerun compares with the committed runs.
#[derive(Debug, PartialEq)]
struct Reproduction {
    committed: usize,
    same: usize,
    /// Committed run ids with other scores now.
    changed: Vec<String>,
    /// Committed run ids that the rerun does not have (another config resolves differently).
    missing: Vec<String>,
    /// Run ids of the rerun that were not committed.
    new: Vec<String>,
}

impl Reproduction {
    fn of(
        committed: &BTreeMap<String, Option<String>>,
        now: &BTreeMap<String, Option<String>>,
    ) -> Reproduction {
        let mut r = Reproduction {
            committed: committed.len(),
            same: 0,
            changed: Vec::new(),
            missing: Vec::new(),
            new: now
                .keys()
                .filter(|id| !committed.contains_key(*id))
                .cloned()
                .collect(),
        };
        for (id, sha) in committed {
            match now.get(id) {
                None => r.missing.push(id.clone()),
                Some(s) if sha.is_some() && s == sha => r.same += 1,
                Some(_) => r.changed.push(id.clone()),
            }
        }
        r
    }

    fn is_complete(&self) -> bool {
        self.same == self.committed && self.new.is_empty()
    }

    fn describe(&self) -> String {
        let list = |what: &str, ids: &[String]| {
            (!ids.is_empty()).then(|| format!("{} {what} ({})", ids.len(), ids.join(", ")))
        };
        [
            list("with other scores", &self.changed),
            list(
                "not rerun (their config now resolves to another run id)",
                &self.missing,
            ),
            list("new", &self.new),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(rows: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        rows.iter()
            .map(|(id, sha)| (id.to_string(), sha.map(str::to_string)))
            .collect()
    }

    #[test]
    fn a_rerun_is_reproduced_only_with_the_same_ids_and_scores() {
        let committed = runs(&[("a", Some("1")), ("b", Some("2"))]);
        let same = Reproduction::of(&committed, &committed);
        assert!(same.is_complete() && same.same == 2);

        let other = Reproduction::of(&committed, &runs(&[("a", Some("1")), ("b", Some("3"))]));
        assert!(!other.is_complete());
        assert_eq!(other.changed, vec!["b".to_string()]);
        assert!(other.describe().contains("1 with other scores (b)"));

        let renamed = Reproduction::of(&committed, &runs(&[("a", Some("1")), ("c", Some("2"))]));
        assert_eq!((renamed.missing.len(), renamed.new.len()), (1, 1));
        assert!(!renamed.is_complete());

        // A committed table without fingerprints cannot be said to be reproduced.
        let old = runs(&[("a", None)]);
        assert!(!Reproduction::of(&old, &runs(&[("a", Some("1"))])).is_complete());
    }
}
