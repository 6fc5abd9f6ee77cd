//! A sweep as a Slurm job array: the same `adn run` command lines, one per array task.

use std::fs;
use std::path::{Path, PathBuf};

use adn_record::{Plan, RunState};
use anyhow::{Context, Result};

use super::grid::Grid;
use super::local::run_args;
use super::state::{run_state, runs_dir, write_plan};

/// Writes a Slurm job array for the pending runs of `plan` into `out`: `jobs.txt` (one
/// `adn run` command per line), `sweep.sbatch` and `logs/`. Returns the script's path and
/// the number of tasks.
pub fn write_slurm(
    plan: &Plan,
    grid: &Grid,
    results: &Path,
    out: &Path,
    retry_failed: bool,
) -> Result<(PathBuf, usize)> {
    let results = std::path::absolute(results)?;
    let runs = runs_dir(&results, &plan.experiment);
    fs::create_dir_all(&runs)?;
    write_plan(&results, plan)?;
    fs::create_dir_all(out.join("logs"))
        .with_context(|| format!("cannot create {}", out.display()))?;
    let out = std::path::absolute(out)?;
    let adn = std::env::current_exe().context("cannot find the adn executable")?;
    let workdir = std::env::current_dir()?;
    let threads = grid.slurm.cpus_per_task.max(1);
    let mut lines = String::new();
    let mut tasks = 0;
    for r in &plan.runs {
        if r.missing.is_some() {
            continue;
        }
        match run_state(&runs, &r.run_id)? {
            RunState::Complete => continue,
            RunState::Failed if !retry_failed => continue,
            _ => {}
        }
        let mut words = vec![shell_quote(&adn.display().to_string())];
        words.extend(
            run_args(plan, r, &runs, threads)
                .iter()
                .map(|a| shell_quote(a)),
        );
        lines.push_str(&words.join(" "));
        lines.push('\n');
        tasks += 1;
    }
    let jobs_file = out.join("jobs.txt");
    adn_util::atomic::write_file(&jobs_file, lines.as_bytes())?;
    let s = &grid.slurm;
    let mut script = String::from("#!/bin/bash\n");
    script.push_str(&format!("#SBATCH --job-name=adn-{}\n", plan.experiment));
    script.push_str(&format!("#SBATCH --array=0-{}\n", tasks.max(1) - 1));
    script.push_str(&format!("#SBATCH --cpus-per-task={}\n", s.cpus_per_task));
    script.push_str(&format!("#SBATCH --mem={}\n", s.mem));
    script.push_str(&format!("#SBATCH --time={}\n", s.time));
    if let Some(p) = &s.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if s.gpus_per_task > 0 {
        script.push_str(&format!("#SBATCH --gpus-per-task={}\n", s.gpus_per_task));
    }
    script.push_str(&format!(
        "#SBATCH --output={}/logs/%A_%a.out\n",
        out.display()
    ));
    script.push_str(&format!(
        "# {tasks} runs of experiment {:?}; one array task = one `adn run`.\n\
         # Written by `adn sweep --slurm`; gather what finished with `cargo xtask tables {}`.\n\
         set -euo pipefail\n\
         cd {}\n\
         export OMP_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{threads}}}\"\n\
         line=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {})\n\
         eval \"$line\"\n",
        plan.experiment,
        plan.experiment,
        shell_quote(&workdir.display().to_string()),
        shell_quote(&jobs_file.display().to_string()),
    ));
    let script_path = out.join("sweep.sbatch");
    adn_util::atomic::write_file(&script_path, script.as_bytes())?;
    Ok((script_path, tasks))
}

/// Quotes a word for a POSIX shell.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_spaces_and_quotes() {
        assert_eq!(shell_quote("data.root=x"), "data.root=x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("k=\"se\""), "'k=\"se\"'");
    }
}
