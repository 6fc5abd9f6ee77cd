//! `manifest.json`: what ran, where, how long, and whether it finished.

use adn_util::Precision;
use serde::{Deserialize, Serialize};

/// How a run ended. The manifest is written last, so its status is what marks a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Complete,
    Failed,
}

/// Who wrote the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Writer {
    /// The run itself (`adn run`).
    Run,
    /// The sweep, for a run that died before it could write its own record; such a manifest
    /// has no [`RunFacts`].
    Sweep,
}

/// `manifest.json`. On disk it is one flat JSON object: the header fields below and, when
/// present, the fields of [`RunFacts`] beside them (so `jq .wall_s.total` works). Read it
/// with [`crate::read_manifest`], which checks the format and every field.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// [`crate::FORMAT`] of the adn that wrote it.
    pub format: u32,
    pub run_id: String,
    pub experiment: String,
    pub status: Status,
    /// Why a failed run failed.
    pub error: Option<String>,
    pub written_by: Writer,
    /// What the run measured about itself; `None` only when the sweep wrote the record.
    pub run: Option<RunFacts>,
}

/// The fields every manifest has.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    pub format: u32,
    pub run_id: String,
    pub experiment: String,
    pub status: Status,
    #[serde(deserialize_with = "required")]
    pub error: Option<String>,
    pub written_by: Writer,
}

pub(crate) const HEADER_FIELDS: [&str; 6] = [
    "format",
    "run_id",
    "experiment",
    "status",
    "error",
    "written_by",
];

/// An `Option` field that must be present (as `null` when empty): serde would otherwise
/// read a missing or renamed one as `None`.
fn required<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// What a run that started records about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFacts {
    #[serde(deserialize_with = "required")]
    pub git_commit: Option<String>,
    pub adn_version: String,
    /// The libtorch the binary was built against.
    pub libtorch: String,
    pub device: String,
    pub threads: i32,
    pub seed: u64,
    pub started_unix: f64,
    pub finished_unix: f64,
    pub wall_s: WallTimes,
    pub dataset: DatasetSummary,
    pub feature_dim: i64,
    pub backbone_weights: String,
    pub flow_parameters: i64,
    pub trainable_attention_parameters: i64,
    pub feature_cache: CacheStats,
    /// SHA-256 of each trained-model file in the folder (`model.safetensors`, and
    /// `attention.safetensors` for joint runs), filled in by [`crate::write_run`]; empty for
    /// a failed run. `adn eval` refuses model files whose hash differs.
    pub model_sha256: std::collections::BTreeMap<String, String>,
    /// The process's peak resident memory (Linux `VmHWM`), in MB.
    #[serde(deserialize_with = "required")]
    pub peak_rss_mb: Option<f64>,
    /// The number format of the frozen backbone's forward pass (`fp32`, `bf16`); records
    /// from before the setting existed ran in fp32.
    #[serde(default)]
    pub precision: Precision,
    /// The number format of the flow's matrix multiplies (`fp32`, `bf16` on copies of
    /// float32 master weights); records from before the setting existed ran in fp32.
    #[serde(default)]
    pub flow_precision: Precision,
    /// The machine it ran on; records from before it was recorded have none.
    #[serde(default)]
    pub machine: Option<Machine>,
}

/// What about the machine can change a run's numbers: libtorch's CPU kernels dispatch on
/// the instruction set, so one config gives different floating-point results on CPUs with
/// different units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// The CPU's model name (`/proc/cpuinfo`), `unknown` where the OS does not say.
    pub cpu: String,
    /// The instruction-set extensions that libtorch's kernels choose between, of those this
    /// CPU has (e.g. `avx2`, `avx512f`, `avx512_bf16`, `amx_bf16`).
    pub cpu_features: Vec<String>,
    /// The optional parts libtorch was built with (`mkl`, `mkldnn`, `openmp`, `lapack`,
    /// `cuda`).
    pub libtorch_build: Vec<String>,
    /// Whether the run was made in reproducible mode (`compute.reproducible`): kernels
    /// pinned to AVX2 and one thread, the same bits on any x86-64 CPU with AVX2. Absent in
    /// records from before the mode: false.
    #[serde(default)]
    pub reproducible: bool,
    /// The environment switches reproducible mode set (`NAME=value`); empty otherwise.
    #[serde(default)]
    pub switches: Vec<String>,
}

/// Wall time of each stage of a run, in seconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallTimes {
    pub data: f64,
    pub features: f64,
    pub train: f64,
    pub eval: f64,
    pub total: f64,
}

/// The data a run saw.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSummary {
    pub root: String,
    pub category: String,
    /// Images trained on (held-out ones excluded).
    pub train_images: usize,
    pub test_images: usize,
    /// Test images per defect type, `good` included.
    pub test_counts: Vec<(String, usize)>,
    /// Good training images held out to set thresholds (`train.validation_fraction`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held_out_images: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What the feature cache did for a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheStats {
    pub enabled: bool,
    pub hits: usize,
    pub misses: usize,
    /// Wall time spent computing the misses.
    pub compute_seconds: f64,
    /// Hits times the measured cost of one computed entry.
    pub estimated_seconds_saved: f64,
    /// Entries that failed verification (damaged, or written for another key): recomputed
    /// and rewritten. Absent in records written before verification existed.
    #[serde(default)]
    pub rejected: usize,
    /// Computed features that could not be stored (full disk, unwritable folder); the run
    /// went on without storing them.
    #[serde(default)]
    pub unstored: usize,
}

impl Manifest {
    /// The record of a run that died before writing its own (written by the sweep).
    pub fn failed_elsewhere(run_id: &str, experiment: &str, error: &str) -> Manifest {
        Manifest {
            format: crate::FORMAT,
            run_id: run_id.to_string(),
            experiment: experiment.to_string(),
            status: Status::Failed,
            error: Some(error.to_string()),
            written_by: Writer::Sweep,
            run: None,
        }
    }
}

/// The on-disk form: the header, then the run's facts beside it, in declaration order.
#[derive(Serialize)]
struct Flat<'a> {
    #[serde(flatten)]
    header: Header,
    #[serde(flatten)]
    run: Option<&'a RunFacts>,
}

impl Manifest {
    /// The text of `manifest.json`: one flat object, fields in declaration order.
    pub fn to_json_text(&self) -> String {
        serde_json::to_string_pretty(&self.flat()).expect("plain data")
    }

    /// The flat JSON object written to `manifest.json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.flat()).expect("plain data")
    }

    fn flat(&self) -> Flat<'_> {
        Flat {
            header: Header {
                format: self.format,
                run_id: self.run_id.clone(),
                experiment: self.experiment.clone(),
                status: self.status,
                error: self.error.clone(),
                written_by: self.written_by,
            },
            run: self.run.as_ref(),
        }
    }

    pub(crate) fn from_parts(header: Header, run: Option<RunFacts>) -> Manifest {
        Manifest {
            format: header.format,
            run_id: header.run_id,
            experiment: header.experiment,
            status: header.status,
            error: header.error,
            written_by: header.written_by,
            run,
        }
    }
}
