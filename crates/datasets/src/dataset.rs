//! The dataset kinds, their rules, and the validation that `adn data check` prints and that
//! runs apply before training: every image and mask is decoded, masks must match their
//! images in size, and counts are compared with the published ones where they are known.
//!
//! Longer than most files (about 460 lines) because the kinds' rules and the report that
//! checks a dataset against them are read together; splitting them would put each rule's
//! check away from its definition.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use crate::DatasetError;
use crate::decode::{self, ImageInfo};
use crate::layout::{self, CategoryData, Masks, Sample};

/// How a dataset lies on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DatasetKind {
    /// MVTec AD: `<root>/<category>/{train/good, test/good, test/<defect>,
    /// ground_truth/<defect>/<stem>_mask.png}`; every defective image has a mask.
    Mvtec,
    /// InsPLAD-fault: `<root>/<asset>/{train/good, test/good, test/<defect>}`, JPEG or PNG,
    /// no masks, folder names matched case-insensitively.
    Insplad,
    /// Any MVTec-style folder (the Semiconductor Wafer set, ELPV as written by `make`):
    /// any common image format, masks optional (`<stem>_mask.<ext>`).
    Folder,
}

impl DatasetKind {
    pub const ALL: [DatasetKind; 3] = [
        DatasetKind::Mvtec,
        DatasetKind::Insplad,
        DatasetKind::Folder,
    ];

    /// The `--kind` name.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mvtec => "mvtec",
            DatasetKind::Insplad => "insplad",
            DatasetKind::Folder => "folder",
        }
    }

    /// Whether masks are required for defective test images.
    pub fn masks(self) -> Masks {
        match self {
            DatasetKind::Mvtec => Masks::Required,
            DatasetKind::Insplad | DatasetKind::Folder => Masks::Optional,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DatasetError;

    /// `mvtec`, `insplad` or `folder`; also `mvtec-ad`, `insplad-fault`, and `wafer`,
    /// `elpv`, `generic` for `folder`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "mvtec" | "mvtec-ad" | "mvtecad" => Ok(DatasetKind::Mvtec),
            "insplad" | "insplad-fault" => Ok(DatasetKind::Insplad),
            "folder" | "generic" | "wafer" | "semiconductor-wafer" | "elpv" => {
                Ok(DatasetKind::Folder)
            }
            _ => Err(DatasetError::UnknownKind {
                what: "dataset kind",
                given: s.to_string(),
                expected: "mvtec, insplad, folder".into(),
            }),
        }
    }
}

/// Published image counts (train good, test good, test anomalous) of MVTec AD's categories.
pub const MVTEC_COUNTS: &[(&str, usize, usize, usize)] = &[
    ("bottle", 209, 20, 63),
    ("cable", 224, 58, 92),
    ("capsule", 219, 23, 109),
    ("carpet", 280, 28, 89),
    ("grid", 264, 21, 57),
    ("hazelnut", 391, 40, 70),
    ("leather", 245, 32, 92),
    ("metal_nut", 220, 22, 93),
    ("pill", 267, 26, 141),
    ("screw", 320, 41, 119),
    ("tile", 230, 33, 84),
    ("toothbrush", 60, 12, 30),
    ("transistor", 213, 60, 40),
    ("wood", 247, 19, 60),
    ("zipper", 240, 32, 119),
];

/// MVTec AD's 1-channel categories (replicated to 3 channels for ImageNet backbones).
pub const MVTEC_GRAY: &[&str] = &["grid", "screw", "zipper"];

/// Published counts of InsPLAD-fault's unsupervised assets.
pub const INSPLAD_COUNTS: &[(&str, usize, usize, usize)] = &[
    ("glass-insulator", 2298, 581, 90),
    ("lightning-rod-suspension", 462, 117, 50),
    ("polymer-insulator-upper-shackle", 935, 235, 102),
    ("vari-grip", 477, 114, 111),
    ("yoke-suspension", 4834, 1207, 49),
];

fn published(kind: DatasetKind, category: &str) -> Option<(&'static str, usize, usize, usize)> {
    let table = match kind {
        DatasetKind::Mvtec => MVTEC_COUNTS,
        DatasetKind::Insplad => INSPLAD_COUNTS,
        DatasetKind::Folder => return None,
    };
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    table
        .iter()
        .find(|(name, ..)| norm(name) == norm(category))
        .copied()
}

/// What validation found in one category.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryReport {
    pub category: String,
    pub path: PathBuf,
    pub train_good: usize,
    /// Test images per folder, `good` included, in name order.
    pub test: Vec<(String, usize)>,
    pub masks: usize,
    /// Smallest and largest width and height.
    pub min_size: (u32, u32),
    pub max_size: (u32, u32),
    /// Images per stored pixel format, e.g. `gray 8-bit`, `RGBA 8-bit`.
    pub formats: BTreeMap<String, usize>,
    pub warnings: Vec<String>,
}

impl CategoryReport {
    pub fn images(&self) -> usize {
        self.train_good + self.test.iter().map(|(_, n)| n).sum::<usize>()
    }

    fn test_split(&self) -> (usize, usize) {
        let good: usize = self
            .test
            .iter()
            .filter(|(d, _)| d.eq_ignore_ascii_case(layout::GOOD))
            .map(|(_, n)| n)
            .sum();
        let all: usize = self.test.iter().map(|(_, n)| n).sum();
        (good, all - good)
    }
}

impl fmt::Display for CategoryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", self.category, self.path.display())?;
        writeln!(
            f,
            "  {:<6} {:<28} {:>6}",
            "train",
            layout::GOOD,
            self.train_good
        )?;
        for (d, n) in &self.test {
            writeln!(f, "  {:<6} {:<28} {:>6}", "test", d, n)?;
        }
        let (good, bad) = self.test_split();
        writeln!(
            f,
            "  total  {} images: train {}, test {} ({} good, {} anomalous); {} masks",
            self.images(),
            self.train_good,
            good + bad,
            good,
            bad,
            self.masks
        )?;
        let formats: Vec<String> = self
            .formats
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect();
        let size = if self.min_size == self.max_size {
            format!("{}x{}", self.min_size.0, self.min_size.1)
        } else {
            format!(
                "{}x{} to {}x{}",
                self.min_size.0, self.min_size.1, self.max_size.0, self.max_size.1
            )
        };
        let gray = if self.formats.keys().any(|k| k.starts_with("gray")) {
            " (gray is replicated to 3 channels for ImageNet backbones)"
        } else {
            ""
        };
        writeln!(f, "  images {size}; {}{gray}", formats.join(", "))?;
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}

/// What `adn data check` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub kind: DatasetKind,
    /// The folder that holds the categories.
    pub root: PathBuf,
    pub categories: Vec<CategoryReport>,
}

impl CheckReport {
    pub fn warnings(&self) -> impl Iterator<Item = &String> {
        self.categories.iter().flat_map(|c| c.warnings.iter())
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let images: usize = self.categories.iter().map(CategoryReport::images).sum();
        writeln!(
            f,
            "{} dataset {}: {} categor{}, {} images, all decoded",
            self.kind,
            self.root.display(),
            self.categories.len(),
            if self.categories.len() == 1 {
                "y"
            } else {
                "ies"
            },
            images
        )?;
        for c in &self.categories {
            write!(f, "{c}")?;
        }
        let n = self.warnings().count();
        if n > 0 {
            writeln!(f, "{n} warning{}", if n == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// How validation runs.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Show a progress bar on stderr (only drawn on a terminal, only for long loads).
    pub progress: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { progress: true }
    }
}

/// Validates every category of a dataset: the folder contract of `kind`, every image and
/// mask decoded, mask sizes, and counts against the published ones (warnings). `root` may
/// hold categories or be a category folder itself. All problems are reported together.
pub fn check(kind: DatasetKind, root: &Path) -> Result<CheckReport, DatasetError> {
    check_with(kind, root, &CheckOptions::default())
}

/// [`check`] with options.
pub fn check_with(
    kind: DatasetKind,
    root: &Path,
    opts: &CheckOptions,
) -> Result<CheckReport, DatasetError> {
    let (base, names) = layout::discover_categories(root)?;
    let mut categories = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        match validate_category(kind, &base, &name, opts) {
            Ok((_, report)) => categories.push(report),
            Err(e) => problems.extend(flatten(e)),
        }
    }
    if !problems.is_empty() {
        return Err(DatasetError::from_problems(root, problems));
    }
    Ok(CheckReport {
        kind,
        root: base,
        categories,
    })
}

fn flatten(e: DatasetError) -> Vec<DatasetError> {
    match e {
        DatasetError::Problems { problems, .. } => problems,
        other => vec![other],
    }
}

/// Lists and validates one category the way a run needs it: the same rules as [`check`].
/// Warnings go to the log. `root` may also be the category folder itself.
pub fn load(kind: DatasetKind, root: &Path, category: &str) -> Result<CategoryData, DatasetError> {
    let (data, report) = load_with(kind, root, category, &CheckOptions::default())?;
    for w in &report.warnings {
        tracing::warn!("{}: {w}", report.category);
    }
    Ok(data)
}

/// [`load`] that also returns the category's report.
pub fn load_with(
    kind: DatasetKind,
    root: &Path,
    category: &str,
    opts: &CheckOptions,
) -> Result<(CategoryData, CategoryReport), DatasetError> {
    let root = resolve_root(root, category);
    validate_category(kind, &root, category, opts)
}

/// `root` as given, or its parent when `root` is the category folder itself.
fn resolve_root(root: &Path, category: &str) -> PathBuf {
    if !root.join(category).exists()
        && root.file_name().is_some_and(|n| n == category)
        && root.join("train").is_dir()
        && let Some(parent) = root.parent()
    {
        return if parent.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            parent.to_path_buf()
        };
    }
    root.to_path_buf()
}

fn format_name(info: &ImageInfo) -> String {
    let colour = match info.channels {
        1 => "gray",
        2 => "gray+alpha",
        3 => "RGB",
        _ => "RGBA",
    };
    format!("{colour} {}-bit", info.bits)
}

fn progress_bar(n: usize, what: &str, opts: &CheckOptions) -> ProgressBar {
    if !opts.progress || n < 200 {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(n as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} images ({eta} left)")
    {
        pb.set_style(style);
    }
    pb.set_message(format!("checking {what}"));
    pb
}

fn validate_category(
    kind: DatasetKind,
    root: &Path,
    category: &str,
    opts: &CheckOptions,
) -> Result<(CategoryData, CategoryReport), DatasetError> {
    let scanned = layout::scan_category(root, category, kind.masks())?;
    let data = scanned.data;
    let mut warnings = scanned.warnings;
    let samples: Vec<&Sample> = data.all().collect();
    let pb = progress_bar(samples.len(), category, opts);
    let results: Vec<Result<(ImageInfo, bool), DatasetError>> = samples
        .par_iter()
        .map(|s| {
            let r = validate_sample(s);
            pb.inc(1);
            r
        })
        .collect();
    pb.finish_and_clear();
    let mut problems = Vec::new();
    let mut formats = BTreeMap::new();
    let (mut min_size, mut max_size) = ((u32::MAX, u32::MAX), (0, 0));
    let mut masks = 0;
    for r in results {
        match r {
            Ok((info, has_mask)) => {
                *formats.entry(format_name(&info)).or_insert(0usize) += 1;
                min_size = (min_size.0.min(info.width), min_size.1.min(info.height));
                max_size = (max_size.0.max(info.width), max_size.1.max(info.height));
                masks += has_mask as usize;
            }
            Err(e) => problems.push(e),
        }
    }
    if !problems.is_empty() {
        return Err(DatasetError::from_problems(root.join(category), problems));
    }
    let converted: usize = formats
        .iter()
        .filter(|(k, _)| !k.starts_with("RGB 8") && !k.starts_with("gray 8"))
        .map(|(_, n)| n)
        .sum();
    if converted > 0 {
        warnings.push(format!(
            "{converted} images are 16-bit or have alpha: they are converted to 8-bit RGB \
             (16-bit values scaled by 1/257, alpha dropped)"
        ));
    }
    let report = CategoryReport {
        category: category.to_string(),
        path: root.join(category),
        train_good: data.train.len(),
        test: data.test_counts(),
        masks,
        min_size,
        max_size,
        formats,
        warnings,
    };
    let mut report = report;
    if let Some((name, train, good, bad)) = published(kind, category) {
        let (g, b) = report.test_split();
        let found = (report.train_good, g, b);
        if found != (train, good, bad) {
            report.warnings.push(format!(
                "{name}: found {} train / {} test good / {} test anomalous images, the \
                 published dataset has {train} / {good} / {bad}",
                found.0, found.1, found.2
            ));
        }
    }
    Ok((data, report))
}

/// Decodes a sample's image and mask; the mask must have the image's size.
fn validate_sample(s: &Sample) -> Result<(ImageInfo, bool), DatasetError> {
    let info = decode::inspect(&s.path)?;
    if let Some(mask) = &s.mask {
        let m = decode::inspect(mask)?;
        if (m.width, m.height) != (info.width, info.height) {
            return Err(DatasetError::MaskSize {
                mask: mask.clone(),
                image: s.path.clone(),
                mask_size: (m.width, m.height),
                image_size: (info.width, info.height),
            });
        }
    }
    Ok((info, s.mask.is_some()))
}
