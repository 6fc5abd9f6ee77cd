//! The run-record contract: what a run folder holds and how it is read and written.
//!
//! A run is one folder, `results/<experiment>/<run-id>` (`runs/<run-id>` in a sweep):
//!
//! | file | type | written |
//! |---|---|---|
//! | `config.toml` | the resolved config (the runner's `Config`) | always |
//! | `manifest.json` | [`Manifest`]: status, format, times, device, data, cache | always, last |
//! | `metrics.json` | [`MetricsRecord`]: `auroc_last`, test-selected `auroc_best`, trajectory | complete runs |
//! | `scores.csv` | [`ScoreRow`]s: one per test image | complete runs |
//! | `model.safetensors`, `attention.safetensors` | the trained flow (and joint attention) | complete runs |
//! | `log.txt` | the run's log | runs that got far enough |
//!
//! An experiment folder adds `plan.json` ([`Plan`]), written by the sweep. Beside the runs,
//! `adn explain` writes `explain.json` ([`Explanation`]) and `attention.json`
//! ([`AttentionPictures`]) into its folder, `adn eval` writes `eval.json`
//! ([`EvalRecord`]) with the rescored `scores.csv`, and `adn predict` writes
//! `predictions.csv` ([`PredictionRow`]s), `predict.json` ([`PredictRecord`]) and, asked,
//! `maps/`; `adn export` writes `model.pt`, `export.json` ([`ExportRecord`]) and
//! `check.safetensors`.
//!
//! The runner writes through this crate and the report and `xtask bench` read through it,
//! so a field is declared once. Reading is strict: a missing or unknown field is an error
//! naming the file, and a manifest of another [`FORMAT`] is refused with a clear message.
//! The folder appears by rename only once whole ([`write_run`]), so its state
//! ([`RunState`]) is read from what is there. No libtorch here.

mod error;
mod explain;
mod folder;
mod manifest;
mod metrics;
mod plan;
mod predict;
mod scores;

pub use adn_util::Precision;
pub use error::RecordError;
pub use explain::{
    AttentionPictures, EvalRecord, ExplainedImage, ExplainedRun, Explanation, GateValues,
    MapDescription, PictureImage, PositionGates, RunGates,
};
pub use folder::{
    RunRecord, RunState, SaveModel, read_json, read_manifest, read_metrics, run_state,
    verify_model_files, write_failure, write_run,
};
pub use manifest::{
    CacheStats, DatasetSummary, Machine, Manifest, RunFacts, Status, WallTimes, Writer,
};
pub use metrics::{
    Diagnostics, EvalPoint, GateRecord, LayerNorm, LossParts, MetricsRecord, PixelMetrics,
    Threshold,
};
pub use plan::{Plan, PlannedRun};
pub use predict::{
    ExportInput, ExportRecord, PREDICTIONS_HEADER, PredictRecord, PredictionRow, Unreadable,
    prediction_line, predictions_header,
};
pub use scores::{ScoreRow, read_scores, scores_csv};

/// The version of the record layout this build writes and reads. Raised whenever a field of
/// [`Manifest`], [`MetricsRecord`] or `scores.csv` changes meaning, is renamed or removed.
pub const FORMAT: u32 = 1;

/// File names inside a run folder.
pub mod files {
    pub const CONFIG: &str = "config.toml";
    pub const MANIFEST: &str = "manifest.json";
    pub const METRICS: &str = "metrics.json";
    pub const SCORES: &str = "scores.csv";
    pub const MODEL: &str = "model.safetensors";
    /// The trained attention of a joint run, beside the flow's model.
    pub const ATTENTION: &str = "attention.safetensors";
    pub const LOG: &str = "log.txt";
    /// In the experiment folder, beside `runs/`.
    pub const PLAN: &str = "plan.json";
    /// The experiment folder's sub-folder of run folders.
    pub const RUNS: &str = "runs";
    /// In the experiment folder: the report's page (tables, figures, every run).
    pub const PAGE: &str = "index.html";
    /// In an `adn explain` folder: the Grad-CAM and map figures' images and runs.
    pub const EXPLAIN: &str = "explain.json";
    /// In an `adn explain` folder: the attention gates (not the joint weights,
    /// [`ATTENTION`]).
    pub const ATTENTION_GATES: &str = "attention.json";
    /// In an `adn eval` folder.
    pub const EVAL: &str = "eval.json";
    /// In an `adn predict` folder: a row per image.
    pub const PREDICTIONS: &str = "predictions.csv";
    /// In an `adn predict` folder: what was scored with what.
    pub const PREDICT: &str = "predict.json";
    /// In an `adn predict` folder: the anomaly maps and overlays (`--maps`).
    pub const MAPS: &str = "maps";
    /// In an `adn export` folder: the TorchScript model.
    pub const TORCHSCRIPT: &str = "model.pt";
    /// In an `adn export` folder: what the model expects and returns.
    pub const EXPORT: &str = "export.json";
    /// In an `adn export` folder: the checked images' inputs and `adn`'s scores of them
    /// (safetensors `inputs`, `scores`), for checking the file elsewhere.
    pub const EXPORT_CHECK: &str = "check.safetensors";
}
