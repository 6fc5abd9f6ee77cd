use std::path::PathBuf;

/// Everything that can be wrong with a dataset on disk. Each variant names the file or
/// folder at fault so that a user can fix it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset folder {path} does not exist")]
    MissingFolder { path: PathBuf },
    #[error("{path} holds no images (expected *.png, *.jpg or *.jpeg)")]
    NoImages { path: PathBuf },
    // The io error is part of the message, not a `source`, so that error chains print it once.
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot decode image {path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("image {path} has an empty size ({width}x{height})")]
    EmptyImage {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("defective test image {image} has no mask (expected {expected})")]
    MissingMask { image: PathBuf, expected: PathBuf },
    #[error("mask {mask} has no test image (expected {expected})")]
    OrphanMask { mask: PathBuf, expected: PathBuf },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        DatasetError::Io {
            path: path.into(),
            error,
        }
    }
}
