//! A run folder as a whole: its state, strict readers, and the atomic writer.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use adn_util::atomic;
use serde::de::DeserializeOwned;

use crate::manifest::{HEADER_FIELDS, Header, RunFacts};
use crate::{FORMAT, Manifest, MetricsRecord, RecordError, ScoreRow, Status, Writer, files};

/// Where a run folder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// No folder.
    Absent,
    /// A folder without a complete or failed record: an interrupted writer's, or a complete
    /// manifest whose metrics or scores are missing.
    Partial,
    Failed,
    Complete,
}

/// Where the run folder `dir` stands. A manifest that cannot be read (another format,
/// invalid JSON, a missing field) is an error, so nothing treats it as absent and replaces it.
pub fn run_state(dir: &Path) -> Result<RunState, RecordError> {
    if fs::symlink_metadata(dir).is_err() {
        return Ok(RunState::Absent);
    }
    if !dir.join(files::MANIFEST).is_file() {
        return Ok(RunState::Partial);
    }
    let manifest = read_manifest(dir)?;
    Ok(match manifest.status {
        Status::Failed => RunState::Failed,
        Status::Complete
            if dir.join(files::METRICS).is_file() && dir.join(files::SCORES).is_file() =>
        {
            RunState::Complete
        }
        Status::Complete => RunState::Partial,
    })
}

/// Reads a JSON file into `T`, strictly; errors name the file and say what it should be.
pub fn read_json<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, RecordError> {
    let text = fs::read_to_string(path).map_err(|e| RecordError::io(path, e))?;
    serde_json::from_str(&text).map_err(|error| RecordError::Json {
        path: path.to_path_buf(),
        what,
        error,
    })
}

/// Reads `<dir>/manifest.json`, refusing another format and any missing or unknown field.
pub fn read_manifest(dir: &Path) -> Result<Manifest, RecordError> {
    let path = dir.join(files::MANIFEST);
    let value: serde_json::Value = read_json(&path, "manifest")?;
    let serde_json::Value::Object(mut map) = value else {
        return Err(RecordError::Invalid {
            path,
            reason: "a manifest is a JSON object".into(),
        });
    };
    match map.get("format") {
        Some(v) if v.as_u64() == Some(FORMAT as u64) => {}
        found => {
            let newer = found
                .and_then(|v| v.as_u64())
                .is_some_and(|f| f > FORMAT as u64);
            return Err(RecordError::Format {
                path,
                found: found.map_or("none (before formats were numbered)".into(), |v| {
                    v.to_string()
                }),
                expected: FORMAT,
                advice: if newer {
                    "read it with the newer adn that wrote it"
                } else {
                    "remove the folder to rerun it with this adn, or read it with the adn that wrote it"
                },
            });
        }
    }
    let mut header = serde_json::Map::new();
    for key in HEADER_FIELDS {
        if let Some(v) = map.remove(key) {
            header.insert(key.to_string(), v);
        }
    }
    let invalid = |error| RecordError::Json {
        path: path.clone(),
        what: "manifest",
        error,
    };
    let header: Header = serde_json::from_value(header.into()).map_err(invalid)?;
    let run = match header.written_by {
        Writer::Run => Some(serde_json::from_value::<RunFacts>(map.into()).map_err(invalid)?),
        Writer::Sweep if map.is_empty() => None,
        Writer::Sweep => {
            let keys: Vec<&String> = map.keys().collect();
            return Err(RecordError::Invalid {
                path,
                reason: format!(
                    "a record written by the sweep has no run fields, but has {keys:?}"
                ),
            });
        }
    };
    Ok(Manifest::from_parts(header, run))
}

/// Reads `<dir>/metrics.json`, strictly.
pub fn read_metrics(dir: &Path) -> Result<MetricsRecord, RecordError> {
    read_json(&dir.join(files::METRICS), "metrics record")
}

/// `error` and every cause under it, `outer: inner: …`: the cause (a full disk, say) is what
/// the user needs, and it sits at the bottom of the chain.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// Writes the trained model into the given file.
pub type SaveModel<'a> = &'a dyn Fn(&Path) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Everything a finished run writes.
pub struct RunRecord<'a> {
    pub config_toml: &'a str,
    pub manifest: &'a Manifest,
    pub metrics: Option<&'a MetricsRecord>,
    pub scores: &'a [ScoreRow],
    /// Writes `model.safetensors` (and the joint attention beside it).
    pub save_model: Option<SaveModel<'a>>,
    /// The run's log, written as `log.txt`.
    pub log: Option<Vec<u8>>,
}

/// Writes the record into a hidden sibling of `dir` and renames it into place
/// ([`atomic::commit_folder`]); the manifest goes last, with the SHA-256 of every model file
/// the save wrote. An existing `dir` is replaced only when `replace` is set, and only once
/// the new record is whole. Returns the folder and the manifest as written.
pub fn write_run(
    dir: &Path,
    record: &RunRecord<'_>,
    replace: bool,
) -> Result<(PathBuf, Manifest), RecordError> {
    let mut manifest = record.manifest.clone();
    let dir = atomic::commit_folder(dir, replace, |tmp| -> Result<(), RecordError> {
        atomic::write_synced(&tmp.join(files::CONFIG), record.config_toml.as_bytes())?;
        if let Some(metrics) = record.metrics {
            let text = serde_json::to_string_pretty(metrics).expect("plain data");
            atomic::write_synced(&tmp.join(files::METRICS), text.as_bytes())?;
        }
        if !record.scores.is_empty() {
            let csv = crate::scores_csv(record.scores);
            atomic::write_synced(&tmp.join(files::SCORES), csv.as_bytes())?;
        }
        if let Some(save) = record.save_model {
            let path = tmp.join(files::MODEL);
            save(&path).map_err(|e| RecordError::Invalid {
                path: dir.join(files::MODEL),
                reason: format!("cannot save the model: {}", with_causes(e.as_ref())),
            })?;
        }
        if let Some(log) = &record.log {
            atomic::write_synced(&tmp.join(files::LOG), log)?;
        }
        if let Some(facts) = manifest.run.as_mut() {
            facts.model_sha256 = model_hashes(tmp)?;
        }
        write_manifest(tmp, &manifest)
    })?;
    Ok((dir, manifest))
}

/// SHA-256 of the model files present in `dir`, by file name.
fn model_hashes(dir: &Path) -> Result<BTreeMap<String, String>, RecordError> {
    let mut hashes = BTreeMap::new();
    for name in [files::MODEL, files::ATTENTION] {
        let path = dir.join(name);
        if path.is_file() {
            let hash = adn_util::sha256_file(&path).map_err(|e| RecordError::io(&path, e))?;
            hashes.insert(name.to_string(), hash);
        }
    }
    Ok(hashes)
}

/// Checks that the model files of the run in `dir` are the ones it recorded (by SHA-256),
/// so a model copied in from another run of the same shape is not scored in its name.
pub fn verify_model_files(dir: &Path, manifest: &Manifest) -> Result<(), RecordError> {
    let Some(facts) = &manifest.run else {
        return Ok(());
    };
    for (name, recorded) in &facts.model_sha256 {
        let path = dir.join(name);
        let actual = adn_util::sha256_file(&path).map_err(|e| RecordError::io(&path, e))?;
        if &actual != recorded {
            return Err(RecordError::Invalid {
                path,
                reason: format!(
                    "SHA-256 is {actual}, but the run recorded {recorded}: this is not the model \
                     the run trained"
                ),
            });
        }
    }
    Ok(())
}

/// Records `manifest` (a failure) as the whole content of `dir`, replacing what is there.
pub fn write_failure(dir: &Path, manifest: &Manifest) -> Result<PathBuf, RecordError> {
    atomic::commit_folder(dir, true, |tmp| write_manifest(tmp, manifest))
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), RecordError> {
    let text = manifest.to_json_text();
    atomic::write_synced(&dir.join(files::MANIFEST), text.as_bytes())?;
    Ok(())
}
