//! Atomic output: a folder is written beside its final place under a hidden temporary name
//! and renamed when complete, so an interrupted or failed `make` never leaves a half-written
//! dataset that looks complete, and never touches what is already there.

use std::fs;
use std::path::{Path, PathBuf};

use adn_datasets::DatasetError;

/// What committing a folder did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// The folder was written.
    Written,
    /// An identical folder (same manifest) was already there; nothing was changed.
    Unchanged,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Written => "written",
            Outcome::Unchanged => "already present, unchanged",
        })
    }
}

/// A folder being written.
pub struct Staging {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

/// Creates `out` (and parents) or fails naming it.
pub fn ensure_dir(out: &Path) -> Result<(), DatasetError> {
    match fs::metadata(out) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(DatasetError::NotAFolder {
            path: out.to_path_buf(),
        }),
        Err(_) => fs::create_dir_all(out).map_err(|e| DatasetError::write(out, e)),
    }
}

/// Whether `dest` already holds a folder whose manifest is `manifest`; an error when it
/// holds something else (so nothing is overwritten).
pub fn already_present(
    dest: &Path,
    manifest_name: &str,
    manifest: &str,
) -> Result<bool, DatasetError> {
    if fs::symlink_metadata(dest).is_err() {
        return Ok(false);
    }
    let existing = fs::read_to_string(dest.join(manifest_name)).ok();
    match existing {
        Some(text) if text == manifest => Ok(true),
        Some(_) => Err(DatasetError::AlreadyExists {
            path: dest.to_path_buf(),
            reason: format!("its {manifest_name} records other settings"),
        }),
        None => Err(DatasetError::AlreadyExists {
            path: dest.to_path_buf(),
            reason: format!("it has no {manifest_name}"),
        }),
    }
}

impl Staging {
    /// Starts writing `<out>/<name>` in `<out>/.<name>.partial-<pid>`.
    pub fn begin(out: &Path, name: &str) -> Result<Self, DatasetError> {
        ensure_dir(out)?;
        let tmp = adn_util::atomic::partial_path(&out.join(name));
        if fs::symlink_metadata(&tmp).is_ok() {
            fs::remove_dir_all(&tmp).map_err(|e| DatasetError::write(&tmp, e))?;
        }
        fs::create_dir_all(&tmp).map_err(|e| DatasetError::write(&tmp, e))?;
        Ok(Staging {
            tmp,
            dest: out.join(name),
            done: false,
        })
    }

    /// The temporary folder to write into.
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Writes `bytes` to `rel` inside the temporary folder, creating sub-folders.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), DatasetError> {
        let path = self.tmp.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| DatasetError::write(parent, e))?;
        }
        fs::write(&path, bytes).map_err(|e| DatasetError::write(&path, e))
    }

    /// Writes the manifest and moves the folder into place. When the destination exists
    /// with the same manifest, the new copy is dropped ([`Outcome::Unchanged`]); when it
    /// exists with another, it is an error and the destination is left as it was.
    pub fn commit(mut self, manifest_name: &str, manifest: &str) -> Result<Outcome, DatasetError> {
        if already_present(&self.dest, manifest_name, manifest)? {
            return Ok(Outcome::Unchanged);
        }
        self.write(manifest_name, manifest.as_bytes())?;
        fs::rename(&self.tmp, &self.dest).map_err(|e| DatasetError::write(&self.dest, e))?;
        self.done = true;
        Ok(Outcome::Written)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Writes a single file atomically (temporary file, then rename). An existing file with the
/// same content is left alone; one with other content is an error.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<Outcome, DatasetError> {
    if let Ok(existing) = fs::read(path) {
        return if existing == bytes {
            Ok(Outcome::Unchanged)
        } else {
            Err(DatasetError::AlreadyExists {
                path: path.to_path_buf(),
                reason: "its content differs".into(),
            })
        };
    }
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    adn_util::atomic::write_file(path, bytes).map_err(|e| DatasetError::write(path, e))?;
    Ok(Outcome::Written)
}
