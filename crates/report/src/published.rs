//! Published numbers (`experiments/published.toml`): image AUROC in percent per dataset,
//! category and method, with their source, shown beside ours and "n/a" where none is known.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// Methods in column order, each with the variant (`model.attention`) it corresponds to.
    #[serde(default)]
    pub methods: Vec<Method>,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub name: String,
    /// Our variant that reproduces it, if any (e.g. `none` for DifferNet).
    #[serde(default)]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub dataset: String,
    /// A category, or `mean` for the dataset average.
    pub category: String,
    pub method: String,
    /// Image AUROC in percent.
    pub auroc: f64,
    pub source: String,
}

impl Published {
    /// Reads and checks the file: every entry names a listed method and a value in [0, 100].
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let p: Published =
            toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
        for (i, e) in p.entries.iter().enumerate() {
            if !p.methods.iter().any(|m| m.name == e.method) {
                bail!(
                    "{}: entry {} names method {:?}, which [[methods]] does not list",
                    path.display(),
                    i + 1,
                    e.method
                );
            }
            if !(0.0..=100.0).contains(&e.auroc) {
                bail!(
                    "{}: entry {} has AUROC {} (percent expected)",
                    path.display(),
                    i + 1,
                    e.auroc
                );
            }
        }
        Ok(p)
    }

    /// Methods with at least one number for `dataset`, in file order.
    pub fn methods(&self, dataset: &str) -> Vec<String> {
        self.methods
            .iter()
            .filter(|m| {
                self.entries
                    .iter()
                    .any(|e| e.dataset == dataset && e.method == m.name)
            })
            .map(|m| m.name.clone())
            .collect()
    }

    /// The published AUROC (%), if any.
    pub fn get(&self, dataset: &str, category: &str, method: &str) -> Option<f64> {
        self.entries
            .iter()
            .find(|e| e.dataset == dataset && e.category == category && e.method == method)
            .map(|e| e.auroc)
    }

    /// The method our `variant` reproduces.
    pub fn method_of(&self, variant: &str) -> Option<String> {
        self.methods
            .iter()
            .find(|m| m.variant.as_deref() == Some(variant))
            .map(|m| m.name.clone())
    }

    /// Distinct sources cited for `dataset`.
    pub fn sources(&self, dataset: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in self.entries.iter().filter(|e| e.dataset == dataset) {
            if !out.contains(&e.source) {
                out.push(e.source.clone());
            }
        }
        out
    }
}
