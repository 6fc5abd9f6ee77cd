//! Where an experiment's runs stand on disk, and the files the sweep keeps beside them.

use std::fs;
use std::path::{Path, PathBuf};

use adn_record::{Plan, RunState, files};
use anyhow::{Context, Result};

/// The folder of the experiment's runs.
pub fn runs_dir(results: &Path, experiment: &str) -> PathBuf {
    results.join(experiment).join(files::RUNS)
}

/// Where `run_id` stands in `runs`. An unreadable record (another format, a broken
/// manifest) is an error naming it, so the sweep never replaces what it cannot read.
pub fn run_state(runs: &Path, run_id: &str) -> Result<RunState> {
    Ok(adn_record::run_state(&runs.join(run_id))?)
}

/// Removes what killed runs left behind: `.<id>.partial-<pid>` and `.<id>.old-<pid>` folders,
/// except those of a run folder another process holds (a standalone `adn run` or a Slurm
/// task still writing).
pub fn remove_leftovers(runs: &Path) -> Result<usize> {
    let Ok(entries) = fs::read_dir(runs) else {
        return Ok(0);
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = adn_util::atomic::leftover_of(&name) {
            let Ok(_owner) = adn_util::lock::try_lock(&runs.join(id), "run folder") else {
                continue;
            };
            fs::remove_dir_all(e.path())
                .with_context(|| format!("cannot remove {}", e.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `plan.json` (atomically: a killed sweep never leaves half of it).
pub fn write_plan(results: &Path, plan: &Plan) -> Result<PathBuf> {
    let dir = results.join(&plan.experiment);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(files::PLAN);
    plan.write(&path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_a_run_folder_someone_holds_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path();
        let partial = runs.join(".abc.partial-123");
        fs::create_dir_all(&partial).unwrap();
        let held = adn_util::lock::try_lock(&runs.join("abc"), "run folder").unwrap();
        assert_eq!(remove_leftovers(runs).unwrap(), 0);
        assert!(partial.is_dir(), "a run in flight lost its folder");
        drop(held);
        assert_eq!(remove_leftovers(runs).unwrap(), 1);
        assert!(!partial.exists());
    }
}
