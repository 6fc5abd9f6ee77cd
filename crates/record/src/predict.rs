//! What the inspection line gets: `adn predict` writes `predictions.csv`, one row per
//! readable image, and `predict.json`, what was scored, with which model and threshold, and
//! what could not be read; `adn export` writes a TorchScript file and `export.json`, what it
//! expects, returns and was checked against.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::folder::read_json;
use crate::{RecordError, Threshold, files};

/// One row of `predictions.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// The image, relative to the folder that was scored.
    pub path: String,
    pub score: f64,
    /// Whether the score reaches the threshold; `None` without a threshold.
    pub anomalous: Option<bool>,
    /// The anomaly map's file, relative to the predict folder, under `--maps`.
    pub map: Option<String>,
    /// The map's largest value: its 16-bit PNG holds `map / map_max · 65535`.
    pub map_max: Option<f64>,
}

/// The header of `predictions.csv`.
pub const PREDICTIONS_HEADER: &str = "path,score,decision,threshold,map,map_max";

/// The first line of `predictions.csv`.
pub fn predictions_header() -> String {
    format!("{PREDICTIONS_HEADER}\n")
}

/// One line of `predictions.csv` (score with ten significant digits); `threshold` is the
/// name of the threshold the decision was taken at.
pub fn prediction_line(row: &PredictionRow, threshold: Option<&str>) -> String {
    let decision = match row.anomalous {
        Some(true) => "anomalous",
        Some(false) => "good",
        None => "",
    };
    format!(
        "{},{:.9e},{decision},{},{},{}\n",
        crate::scores::csv_field(&row.path),
        row.score,
        threshold.map(crate::scores::csv_field).unwrap_or_default(),
        row.map
            .as_deref()
            .map(crate::scores::csv_field)
            .unwrap_or_default(),
        row.map_max.map(|m| format!("{m:.9e}")).unwrap_or_default(),
    )
}

/// An image `adn predict` could not score, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unreadable {
    pub path: String,
    pub error: String,
}

/// `predict.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRecord {
    /// The run folder whose model scored.
    pub source_run: String,
    pub run_id: String,
    /// The folder scored, every image below it at any depth.
    pub folder: String,
    /// Images scored (rows of `predictions.csv`), and of those called anomalous.
    pub scored: usize,
    pub anomalous: Option<usize>,
    /// The threshold the decisions were taken at; `None` when no threshold was chosen.
    pub threshold: Option<Threshold>,
    /// Test-time rotations of every image, in degrees (the run's `test.rotations`).
    pub rotations: Vec<f64>,
    /// Images found but not scored.
    pub unreadable: Vec<Unreadable>,
    pub device: String,
    /// Whether the model files' SHA-256 are the ones the run recorded (`--any-model`).
    pub model_matches_record: bool,
    /// Seconds from the first image decoded to the last row written (the model's loading
    /// excluded).
    pub wall_s: f64,
}

impl PredictRecord {
    /// `predict.json` of the `adn predict` folder `dir`.
    pub fn read(dir: &Path) -> Result<PredictRecord, RecordError> {
        read_json(&dir.join(files::PREDICT), "predict.json")
    }
}

/// How an exported model's input is made from an image file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportInput {
    /// `[batch, 3, size, size]`, float32, RGB, channels first.
    pub shape: [i64; 4],
    /// In words: decoding, resizing, scaling to [0, 1].
    pub preprocessing: String,
    /// Per-channel mean and standard deviation subtracted and divided after scaling.
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

/// `export.json`: beside the exported model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRecord {
    pub source_run: String,
    pub run_id: String,
    /// The model files that were exported and their SHA-256, read when they were loaded.
    pub model_sha256: std::collections::BTreeMap<String, String>,
    /// The model files and their SHA-256 as the run recorded them when it trained.
    #[serde(default)]
    pub recorded_model_sha256: std::collections::BTreeMap<String, String>,
    /// Whether the exported files are the ones the run recorded; `false` only under
    /// `any_model` (otherwise the export is refused).
    #[serde(default)]
    pub model_matches_record: bool,
    /// `adn export --any-model` was given: files that differ from the record were allowed.
    #[serde(default)]
    pub any_model: bool,
    /// `torchscript`.
    pub format: String,
    /// The exported file, relative to the export folder, and its SHA-256.
    pub file: String,
    pub file_sha256: String,
    /// The libtorch that traced it.
    pub libtorch: String,
    pub input: ExportInput,
    /// What the file returns, in words.
    pub output: String,
    /// The test-time rotations inside the model, in degrees.
    pub rotations: Vec<f64>,
    /// The run's thresholds, to decide with the scores; none when the exported model is
    /// not the run's (they were chosen on another model's scores; `thresholds_note` says so).
    pub thresholds: Vec<Threshold>,
    /// Why `thresholds` is empty, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds_note: Option<String>,
    /// The check made before writing: images scored by the run's model through `adn`
    /// and by the exported file, and the largest relative difference.
    pub checked_images: usize,
    pub max_relative_difference: f64,
}

impl ExportRecord {
    /// `export.json` of the `adn export` folder `dir`.
    pub fn read(dir: &Path) -> Result<ExportRecord, RecordError> {
        read_json(&dir.join(files::EXPORT), "export.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_awkward_paths_and_leave_absent_values_empty() {
        let row = PredictionRow {
            path: "line 3/a, b.png".into(),
            score: 1.5,
            anomalous: None,
            map: None,
            map_max: None,
        };
        assert_eq!(
            prediction_line(&row, None),
            "\"line 3/a, b.png\",1.500000000e0,,,,\n"
        );
        let row = PredictionRow {
            anomalous: Some(true),
            map: Some("maps/x.png".into()),
            map_max: Some(2.0),
            ..row
        };
        assert_eq!(
            prediction_line(&row, Some("good-q99")),
            "\"line 3/a, b.png\",1.500000000e0,anomalous,good-q99,maps/x.png,2.000000000e0\n"
        );
        assert_eq!(predictions_header().trim_end().split(',').count(), 6);
    }
}
