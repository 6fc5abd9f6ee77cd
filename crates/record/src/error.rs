use std::path::PathBuf;

/// Why a record could not be read or written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    // The underlying error is part of the message, not a `source`, so that error chains
    // (anyhow's `{:#}`) print it once.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {error}")]
    Json {
        path: PathBuf,
        what: &'static str,
        error: serde_json::Error,
    },
    #[error(
        "{path} was written in record format {found}, and this adn reads format {expected}: \
         {advice}"
    )]
    Format {
        path: PathBuf,
        /// `none` for records written before the format was numbered.
        found: String,
        expected: u32,
        advice: &'static str,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Scores(#[from] adn_metrics::ScoresError),
    /// From the atomic-write helpers, whose messages already name their path.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

impl RecordError {
    pub(crate) fn io(path: &std::path::Path, error: std::io::Error) -> Self {
        RecordError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}
