//! `plan.json`: an experiment's expanded grid, written by the sweep before any run starts;
//! the reports need nothing else to place every run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::RecordError;

/// One planned run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedRun {
    /// The resolved config's hash: the name of its folder under `runs/`.
    pub run_id: String,
    /// The dataset's label in the grid.
    pub dataset: String,
    pub category: String,
    /// Axis key → value (as TOML text), e.g. `model.attention` → `"se"`.
    pub axes: BTreeMap<String, String>,
    /// The `--set` overrides that make this run from the base config.
    pub overrides: Vec<String>,
    /// Why this run cannot start here (missing dataset or weights), if so.
    #[serde(default)]
    pub missing: Option<String>,
}

/// `plan.json`: the expanded grid.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub experiment: String,
    /// The base config, as the sweep was given it.
    pub base: PathBuf,
    /// Axis keys in the order tables group by.
    pub axis_keys: Vec<String>,
    /// Dataset label → its name in the published-numbers file.
    pub published: BTreeMap<String, String>,
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// Reads `path`, strictly.
    pub fn read(path: &Path) -> Result<Plan, RecordError> {
        crate::read_json(path, "plan")
    }

    /// Writes `path` atomically: a killed sweep never leaves half of it.
    pub fn write(&self, path: &Path) -> Result<(), RecordError> {
        let text = serde_json::to_string_pretty(self).expect("plain data");
        adn_util::atomic::write_file(path, text.as_bytes())?;
        Ok(())
    }
}
