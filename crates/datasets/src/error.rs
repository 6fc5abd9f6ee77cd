use std::fmt;
use std::path::PathBuf;

/// Everything that can be wrong with a dataset on disk. Each variant names the file or
/// folder at fault so that a user can fix it without reading code.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset folder {path} does not exist")]
    MissingFolder { path: PathBuf },
    #[error("{path} is not a folder")]
    NotAFolder { path: PathBuf },
    #[error("{path} holds no images (expected {expected})")]
    NoImages { path: PathBuf, expected: String },
    #[error(
        "{root} holds no dataset category (expected <root>/<category>/train/good and \
         <root>/<category>/test/good, or a category folder itself)"
    )]
    NoCategories { root: PathBuf },
    // The io error is part of the message, not a `source`, so that error chains print it once.
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot decode image {path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("image {path} has an empty size ({width}x{height} pixels)")]
    EmptyImage {
        path: PathBuf,
        width: u32,
        height: u32,
    },
    #[error("defective test image {image} has no mask (expected {expected})")]
    MissingMask { image: PathBuf, expected: PathBuf },
    #[error("mask {mask} has no test image (expected {expected})")]
    OrphanMask { mask: PathBuf, expected: PathBuf },
    #[error(
        "mask {mask} is {}x{} pixels but its image {image} is {}x{}",
        mask_size.0, mask_size.1, image_size.0, image_size.1
    )]
    MaskSize {
        mask: PathBuf,
        image: PathBuf,
        mask_size: (u32, u32),
        image_size: (u32, u32),
    },
    #[error("{path} is a symbolic link loop (it resolves to itself or to a folder above it)")]
    SymlinkLoop { path: PathBuf },
    #[error("{path} is a symbolic link to nothing ({reason})")]
    BrokenLink { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error(
        "{path} already exists and differs from what would be written ({reason}); nothing was changed: remove it or choose another output folder"
    )]
    AlreadyExists { path: PathBuf, reason: String },
    /// A pinned wheel (ELPV) could not be had: a wrong checksum or a failed download.
    #[error(transparent)]
    Wheel(#[from] adn_util::wheel::WheelError),
    #[error("{path} is malformed: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("unknown {what} `{given}` (expected one of: {expected})")]
    UnknownKind {
        what: &'static str,
        given: String,
        expected: String,
    },
    #[error("{}", ProblemList { root, problems })]
    Problems {
        root: PathBuf,
        problems: Vec<DatasetError>,
    },
}

/// How many problems [`DatasetError::Problems`] prints before summarising the rest.
const SHOWN_PROBLEMS: usize = 20;

struct ProblemList<'a> {
    root: &'a PathBuf,
    problems: &'a [DatasetError],
}

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} problems in dataset {}:",
            self.problems.len(),
            self.root.display()
        )?;
        for p in self.problems.iter().take(SHOWN_PROBLEMS) {
            write!(f, "\n  - {p}")?;
        }
        if self.problems.len() > SHOWN_PROBLEMS {
            write!(
                f,
                "\n  ... and {} more",
                self.problems.len() - SHOWN_PROBLEMS
            )?;
        }
        Ok(())
    }
}

impl DatasetError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        DatasetError::Io {
            path: path.into(),
            error,
        }
    }

    /// `path` could not be written.
    pub fn write(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        DatasetError::Write {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// `path` holds something it should not.
    pub fn invalid(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Self {
        DatasetError::Invalid {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// One error for a list of problems: the problem itself when there is one.
    pub(crate) fn from_problems(root: impl Into<PathBuf>, mut problems: Vec<DatasetError>) -> Self {
        if problems.len() == 1 {
            problems.pop().expect("one problem")
        } else {
            DatasetError::Problems {
                root: root.into(),
                problems,
            }
        }
    }

    /// The individual problems: the list of [`DatasetError::Problems`], else this error.
    pub fn problems(&self) -> Vec<&DatasetError> {
        match self {
            DatasetError::Problems { problems, .. } => problems.iter().collect(),
            other => vec![other],
        }
    }
}
