//! The grid file and its expansion into planned runs, every config resolved (and so
//! validated) before anything runs.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use adn_backbones::AttentionKind;
use adn_record::{Plan, PlannedRun};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::config::{Config, category_name};

/// The grid file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Results go to `results/<experiment>/`.
    pub experiment: String,
    /// The base run config, relative to the grid file.
    pub base: PathBuf,
    /// Concurrent runs when `--jobs` is not given (default 1).
    #[serde(default)]
    pub jobs: Option<usize>,
    pub datasets: Vec<DatasetAxis>,
    /// Config key → values; every combination is a run (keys in file order are not kept:
    /// runs are ordered by key name).
    #[serde(default)]
    pub axes: BTreeMap<String, Vec<toml::Value>>,
    /// Named sets of overrides crossed with the axes (`[[regimes]]`): one regime is several
    /// keys that only make sense together (joint training from an identity start with a
    /// volume charge). Runs record it as the axis `regime`; tables name a variant
    /// `<attention> / <regime>`. Vanilla runs, on which attention settings are reset, are
    /// one run across regimes.
    #[serde(default)]
    pub regimes: Vec<Regime>,
    /// Named flows crossed with everything else (`[[flows]]`): each a family and the keys
    /// it needs (CS-Flow's one layer at three scales, a learning rate). Runs record it as
    /// the axis `flow`, so a variant pairs with the same flow without attention.
    #[serde(default)]
    pub flows: Vec<FlowEntry>,
    #[serde(default)]
    pub slurm: SlurmResources,
}

/// One `[[flows]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowEntry {
    pub label: String,
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
}

/// The axis name under which a run's `[[flows]]` entry is recorded in `plan.json`.
pub const FLOW_AXIS: &str = "flow";

/// One `[[regimes]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regime {
    pub label: String,
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// The `model.attention` values this regime applies to (all when empty): a study of
    /// chosen pairs, e.g. SE remedied and CBAM frozen, instead of every attention × regime.
    #[serde(default)]
    pub attention: Vec<AttentionKind>,
}

/// What a regime may set: the keys that `Config` resets when there is no attention.
pub const REGIME_KEYS: [&str; 4] = [
    "model.attention_training",
    "model.attention_init",
    "train.attention_lr_scale",
    "train.volume_charge",
];

/// The axis name under which a run's regime is recorded in `plan.json`.
pub const REGIME_AXIS: &str = "regime";

/// One dataset of a grid.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetAxis {
    /// Name in tables and figures, e.g. "MVTec AD".
    pub label: String,
    /// Overrides for this dataset (`data.kind`, `data.root`, and anything it needs).
    #[serde(default)]
    pub set: BTreeMap<String, toml::Value>,
    /// One run per category (`data.category`); otherwise `set` names it. Whole numbers
    /// name numbered folders, as in the config.
    #[serde(default, deserialize_with = "category_names")]
    pub categories: Vec<String>,
    /// An environment variable that, when set, replaces `data.root`.
    #[serde(default)]
    pub root_env: Option<String>,
    /// `adn data make --kind <make>` writes the root when it is missing.
    #[serde(default)]
    pub make: Option<String>,
    /// How a user obtains this dataset, printed when its root is missing.
    #[serde(default)]
    pub how_to_get: Option<String>,
    /// The dataset's name in `experiments/published.toml`.
    #[serde(default)]
    pub published: Option<String>,
}

/// The `categories` of a dataset: each a name or a whole number ([`category_name`]).
fn category_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    struct Name(#[serde(deserialize_with = "category_name")] String);
    Ok(Vec::<Name>::deserialize(d)?
        .into_iter()
        .map(|n| n.0)
        .collect())
}

/// Resources of one Slurm array task.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlurmResources {
    pub cpus_per_task: usize,
    pub mem: String,
    pub time: String,
    pub partition: Option<String>,
    pub gpus_per_task: usize,
}

impl Default for SlurmResources {
    fn default() -> Self {
        SlurmResources {
            cpus_per_task: 4,
            mem: "16G".into(),
            time: "04:00:00".into(),
            partition: None,
            gpus_per_task: 0,
        }
    }
}

/// Reads a grid file.
pub fn load_grid(path: &Path) -> Result<Grid> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read grid {}", path.display()))?;
    let grid: Grid =
        toml::from_str(&text).with_context(|| format!("invalid grid file {}", path.display()))?;
    if grid.datasets.is_empty() {
        bail!(
            "{}: a grid needs at least one [[datasets]] entry",
            path.display()
        );
    }
    for (key, values) in &grid.axes {
        if values.is_empty() {
            bail!("{}: axis {key:?} has no values", path.display());
        }
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(i, v)| values[..*i].contains(v))
        {
            bail!(
                "{}: axis {key:?} lists {v} twice (value {} of {}); each value is a run, so \
                 list it once",
                path.display(),
                i + 1,
                values.len()
            );
        }
    }
    unique_labels(path, "regimes", grid.regimes.iter().map(|r| &r.label))?;
    unique_labels(path, "flows", grid.flows.iter().map(|f| &f.label))?;
    for r in &grid.regimes {
        // Vanilla is one run across regimes only if a regime sets nothing that vanilla
        // keeps (the config resets these keys without attention); anything else is an axis.
        if let Some(key) = r.set.keys().find(|k| !REGIME_KEYS.contains(&k.as_str())) {
            bail!(
                "{}: regime {:?} sets {key:?}; a regime may set only the attention's training \
                 keys ({}), anything else belongs in [axes]",
                path.display(),
                r.label,
                REGIME_KEYS.join(", ")
            );
        }
        if let Some(key) = r.set.keys().find(|k| grid.axes.contains_key(*k)) {
            bail!(
                "{}: regime {:?} sets {key:?}, which is also an axis",
                path.display(),
                r.label
            );
        }
    }
    for f in &grid.flows {
        let shared = f.set.keys().find(|k| {
            grid.axes.contains_key(*k) || grid.regimes.iter().any(|r| r.set.contains_key(*k))
        });
        if let Some(key) = shared {
            bail!(
                "{}: flow {:?} sets {key:?}, which an axis or a regime sets too",
                path.display(),
                f.label
            );
        }
    }
    Ok(grid)
}

/// Refuses a `[[section]]` entry whose label is empty or another entry's.
fn unique_labels<'a>(
    path: &Path,
    section: &str,
    labels: impl Iterator<Item = &'a String>,
) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for label in labels {
        if label.is_empty() || !seen.insert(label) {
            bail!(
                "{}: every [[{section}]] entry needs its own non-empty label (got {label:?} \
                 twice or empty)",
                path.display()
            );
        }
    }
    Ok(())
}

/// The base config path of a grid, resolved against the grid file's folder.
pub fn base_path(grid_path: &Path, grid: &Grid) -> PathBuf {
    grid_path
        .parent()
        .unwrap_or(Path::new("."))
        .join(&grid.base)
}

fn setting(key: &str, value: &toml::Value) -> String {
    format!("{key}={value}")
}

/// Expands the grid into runs, resolving (and so validating) every config. A typo anywhere
/// fails here, before anything runs.
pub fn expand(grid_path: &Path, grid: &Grid) -> Result<Plan> {
    let base = base_path(grid_path, grid);
    let mut runs = Vec::new();
    // Run id → the entries that planned it, to tell a duplicate entry from values that the
    // config resets (vanilla shared across regimes).
    let mut planned_by: std::collections::HashMap<String, PlannedBy> = Default::default();
    let mut axis_keys: Vec<String> = grid.axes.keys().cloned().collect();
    if !grid.regimes.is_empty() {
        axis_keys.push(REGIME_AXIS.into());
    }
    if !grid.flows.is_empty() {
        axis_keys.push(FLOW_AXIS.into());
    }
    // No flows is one flow that sets nothing.
    let flows: Vec<Option<&FlowEntry>> = if grid.flows.is_empty() {
        vec![None]
    } else {
        grid.flows.iter().map(Some).collect()
    };
    // No regimes is one regime that sets nothing.
    let regimes: Vec<Option<&Regime>> = if grid.regimes.is_empty() {
        vec![None]
    } else {
        grid.regimes.iter().map(Some).collect()
    };
    // Cartesian product of the axes, in key order.
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for (key, values) in &grid.axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    for ds in &grid.datasets {
        let mut set = ds.set.clone();
        if let Some(var) = &ds.root_env
            && let Ok(root) = std::env::var(var)
        {
            set.insert("data.root".into(), toml::Value::String(root));
        }
        let categories: Vec<Option<&String>> = if ds.categories.is_empty() {
            vec![None]
        } else {
            ds.categories.iter().map(Some).collect()
        };
        for category in categories {
            let mut runs_of = Vec::new();
            for c in &combos {
                for f in &flows {
                    runs_of.extend(regimes.iter().map(|r| (c, *f, *r)));
                }
            }
            for (combo, flow, regime) in runs_of {
                let mut overrides = vec![setting(
                    "experiment",
                    &toml::Value::String(grid.experiment.clone()),
                )];
                overrides.extend(set.iter().map(|(k, v)| setting(k, v)));
                if let Some(c) = category {
                    overrides.push(setting("data.category", &toml::Value::String(c.clone())));
                }
                overrides.extend(combo.iter().map(|(k, v)| setting(k, v)));
                if let Some(f) = flow {
                    overrides.extend(f.set.iter().map(|(k, v)| setting(k, v)));
                }
                if let Some(r) = regime {
                    overrides.extend(r.set.iter().map(|(k, v)| setting(k, v)));
                }
                let config = Config::load(&base, &overrides).with_context(|| {
                    format!(
                        "grid {}: dataset {:?}, run {}",
                        grid_path.display(),
                        ds.label,
                        overrides.join(" ")
                    )
                })?;
                // A regime that names its attention values skips the others (vanilla is
                // one run across regimes either way).
                if let Some(r) = regime
                    && !r.attention.is_empty()
                    && config.model.attention != AttentionKind::None
                    && !r.attention.contains(&config.model.attention)
                {
                    continue;
                }
                let run_id = config.run_id();
                let by = PlannedBy {
                    dataset: ds.label.clone(),
                    category: category.cloned(),
                    flow: flow.map(|f| f.label.clone()),
                };
                if let Some(earlier) = planned_by.get(&run_id) {
                    match earlier.duplicate(&by) {
                        None => continue,
                        Some(why) => bail!(
                            "{}: {why} resolve to the same run ({run_id}); each entry must \
                             change the config, so remove one or make them differ",
                            grid_path.display()
                        ),
                    }
                }
                planned_by.insert(run_id.clone(), by);
                runs.push(PlannedRun {
                    run_id,
                    dataset: ds.label.clone(),
                    category: config.data.category.clone(),
                    axes: combo
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .chain(regime.map(|r| {
                            let label = toml::Value::String(r.label.clone());
                            (REGIME_AXIS.to_string(), label.to_string())
                        }))
                        .chain(flow.map(|f| {
                            let label = toml::Value::String(f.label.clone());
                            (FLOW_AXIS.to_string(), label.to_string())
                        }))
                        .collect(),
                    overrides,
                    missing: missing_inputs(&config, ds),
                });
            }
        }
    }
    Ok(Plan {
        experiment: grid.experiment.clone(),
        base,
        axis_keys,
        published: grid
            .datasets
            .iter()
            .filter_map(|d| Some((d.label.clone(), d.published.clone()?)))
            .collect(),
        runs,
    })
}

/// The grid entries that planned one run.
struct PlannedBy {
    dataset: String,
    category: Option<String>,
    flow: Option<String>,
}

impl PlannedBy {
    /// Why `later`, which resolves to this run too, is a duplicate entry that would be
    /// dropped without a word; `None` where sharing the run is meant: values of an axis or
    /// a regime that the config resets (attention settings without attention, one family's
    /// keys on another family) resolve to one run, and a value listed twice is refused when
    /// the grid is read.
    fn duplicate(&self, later: &PlannedBy) -> Option<String> {
        let name = |v: &Option<String>| v.clone().unwrap_or_default();
        if self.dataset != later.dataset {
            Some(format!(
                "[[datasets]] {:?} and {:?}",
                self.dataset, later.dataset
            ))
        } else if self.category != later.category {
            Some(format!(
                "categories {:?} and {:?} of [[datasets]] {:?}",
                name(&self.category),
                name(&later.category),
                self.dataset
            ))
        } else if self.flow != later.flow {
            Some(format!(
                "[[flows]] {:?} and {:?}",
                name(&self.flow),
                name(&later.flow)
            ))
        } else {
            None
        }
    }
}

/// What a run needs that is not on this machine, and how to get it. Datasets with a `make`
/// kind are generated by the sweep itself, so they are never missing.
fn missing_inputs(config: &Config, ds: &DatasetAxis) -> Option<String> {
    let mut missing = Vec::new();
    let root = &config.data.root;
    // A missing root is one message for the whole dataset; a missing category its own.
    let category_dir = if root.is_dir() {
        root.join(&config.data.category)
    } else {
        root.clone()
    };
    if ds.make.is_none() && !category_dir.is_dir() {
        let how = ds
            .how_to_get
            .clone()
            .unwrap_or_else(|| "download it and point data.root at it".into());
        let env = ds
            .root_env
            .as_ref()
            .map(|v| format!(" or set {v}"))
            .unwrap_or_default();
        missing.push(format!(
            "dataset {:?} is not at {} ({how}; set data.root in the grid{env})",
            ds.label,
            category_dir.display()
        ));
    }
    if let Some(w) = &config.model.weights
        && !w.is_file()
    {
        let how = match config.model.backbone {
            adn_backbones::BackboneKind::Alexnet => {
                "convert torchvision's alexnet-owt-7be5be79.pth with `adn weights import \
                 --from alexnet-owt-7be5be79.pth`"
            }
            adn_backbones::BackboneKind::EfficientnetLite0 => {
                "run `adn weights fetch efficientnet-lite0`"
            }
        };
        missing.push(format!("weights {} are missing ({how})", w.display()));
    }
    (!missing.is_empty()).then(|| missing.join("; "))
}

#[cfg(test)]
mod tests;
