//! The MVTec AD folder contract, shared by every MVTec-style dataset:
//! `<root>/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png}`.
//!
//! Folder names (`train`, `test`, `good`, `ground_truth`) match case-insensitively, hidden
//! entries (names starting with `.`) are skipped, and symbolic links are followed except
//! when they loop or point nowhere, which is an error naming the link.
//!
//! Longer than most files (about 470 lines) because it answers one question, "is this folder
//! an MVTec-style dataset, and which file is what?", with every rule and every error that
//! names the offending path in one place; its tests are `tests/layouts.rs` and
//! `tests/bad_input.rs`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::DatasetError;
use crate::decode::{is_loop_error, link_error};

/// Extensions accepted as images, compared case-insensitively.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

/// The folder name of normal images; every other test folder holds anomalies.
pub const GOOD: &str = "good";

/// One image of a category with what is known about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    pub path: PathBuf,
    /// `good` or the defect folder's name.
    pub defect: String,
    /// Ground-truth mask, when the layout has one.
    pub mask: Option<PathBuf>,
}

impl Sample {
    /// True for anomalous images (label 1 in AUROC terms).
    pub fn is_anomalous(&self) -> bool {
        !self.defect.eq_ignore_ascii_case(GOOD)
    }
}

/// The train and test images of one category, each list in sorted path order.
#[derive(Debug, Clone)]
pub struct CategoryData {
    pub root: PathBuf,
    pub category: String,
    pub train: Vec<Sample>,
    pub test: Vec<Sample>,
}

impl CategoryData {
    /// Test images per defect type, `good` included, in name order.
    pub fn test_counts(&self) -> Vec<(String, usize)> {
        let mut counts = BTreeMap::<String, usize>::new();
        for s in &self.test {
            *counts.entry(s.defect.clone()).or_default() += 1;
        }
        counts.into_iter().collect()
    }

    /// Good and anomalous test images.
    pub fn test_good_anomalous(&self) -> (usize, usize) {
        let bad = self.test.iter().filter(|s| s.is_anomalous()).count();
        (self.test.len() - bad, bad)
    }

    /// Every sample, train first.
    pub fn all(&self) -> impl Iterator<Item = &Sample> {
        self.train.iter().chain(self.test.iter())
    }
}

/// Whether masks must exist for every defective image (MVTec AD) or may be absent
/// (InsPLAD-fault, generic folders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masks {
    Required,
    Optional,
}

/// A category listed from disk, with what looked odd but is not an error.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub data: CategoryData,
    pub warnings: Vec<String>,
}

/// Lists a category of an MVTec-style dataset and checks the pairing of images and masks.
/// Images are not decoded here; see [`crate::decode`] and [`crate::dataset::load`].
pub fn load_category(
    root: &Path,
    category: &str,
    masks: Masks,
) -> Result<CategoryData, DatasetError> {
    scan_category(root, category, masks).map(|s| s.data)
}

/// [`load_category`] that also returns warnings (empty defect folders, stray files, a test
/// split without good or without anomalous images).
pub fn scan_category(root: &Path, category: &str, masks: Masks) -> Result<Scanned, DatasetError> {
    check_root(root)?;
    let dir = root.join(category);
    check_dir(&dir)?;
    let mut warnings = Vec::new();
    let mut problems = Vec::new();

    let train_root = find_dir(&dir, "train")?.ok_or_else(|| DatasetError::MissingFolder {
        path: dir.join("train"),
    })?;
    let train_dir = find_dir(&train_root, GOOD)?.ok_or_else(|| DatasetError::MissingFolder {
        path: train_root.join(GOOD),
    })?;
    let train: Vec<Sample> = list_images_collect(&train_dir, &mut problems)?
        .into_iter()
        .map(|path| Sample {
            path,
            defect: GOOD.to_string(),
            mask: None,
        })
        .collect();
    if train.is_empty() && problems.is_empty() {
        return Err(DatasetError::NoImages {
            path: train_dir,
            expected: extensions_text(),
        });
    }
    for other in list_dirs(&train_root)? {
        if !file_name(&other).eq_ignore_ascii_case(GOOD) {
            warnings.push(format!(
                "{} is ignored: training uses only {}",
                other.display(),
                train_dir.display()
            ));
        }
    }

    let test_dir = find_dir(&dir, "test")?.ok_or_else(|| DatasetError::MissingFolder {
        path: dir.join("test"),
    })?;
    let gt_dir = find_dir(&dir, "ground_truth")?;
    let mut test = Vec::new();
    for defect_dir in list_dirs(&test_dir)? {
        let folder = file_name(&defect_dir);
        let anomalous = !folder.eq_ignore_ascii_case(GOOD);
        let images = list_images_collect(&defect_dir, &mut problems)?;
        if images.is_empty() {
            warnings.push(format!("{} holds no images", defect_dir.display()));
        }
        let gt_defect = match &gt_dir {
            Some(gt) => find_dir(gt, &folder)?,
            None => None,
        };
        for path in images {
            let mask = if anomalous {
                let found = gt_defect
                    .as_deref()
                    .and_then(|d| find_mask(d, &path, masks));
                match (found, masks) {
                    (Some(m), _) => Some(m),
                    (None, Masks::Required) => {
                        let gt = gt_dir.clone().unwrap_or_else(|| dir.join("ground_truth"));
                        problems.push(DatasetError::MissingMask {
                            expected: mask_path(&gt, &folder, &path),
                            image: path.clone(),
                        });
                        None
                    }
                    (None, Masks::Optional) => None,
                }
            } else {
                None
            };
            test.push(Sample {
                path,
                defect: if anomalous {
                    folder.clone()
                } else {
                    GOOD.to_string()
                },
                mask,
            });
        }
    }
    if test.is_empty() && problems.is_empty() {
        return Err(DatasetError::NoImages {
            path: test_dir,
            expected: format!(
                "test/good and test/<defect> folders of {}",
                extensions_text()
            ),
        });
    }
    if let Some(gt) = &gt_dir {
        check_orphan_masks(gt, &test_dir, &mut problems)?;
    }
    if !problems.is_empty() {
        return Err(DatasetError::from_problems(dir, problems));
    }
    let data = CategoryData {
        root: root.to_path_buf(),
        category: category.to_string(),
        train,
        test,
    };
    let (good, bad) = data.test_good_anomalous();
    if good == 0 {
        warnings.push(format!(
            "{} has no good test images: AUROC is undefined",
            test_dir.display()
        ));
    }
    if bad == 0 {
        warnings.push(format!(
            "{} has no anomalous test images: AUROC is undefined",
            test_dir.display()
        ));
    }
    Ok(Scanned { data, warnings })
}

/// Category folders under `root`: sub-folders (not hidden) that hold a `train` or `test`
/// folder. When `root` itself is a category (it holds `train` and `test`), returns
/// `(parent, [name])` so that `root` can be given either way.
pub fn discover_categories(root: &Path) -> Result<(PathBuf, Vec<String>), DatasetError> {
    check_root(root)?;
    if find_dir(root, "train")?.is_some() && find_dir(root, "test")?.is_some() {
        let canonical = root.canonicalize().map_err(|e| link_error(root, e))?;
        let name = file_name(&canonical);
        let parent = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        // Keep the path as given when it has a parent, so reports show the user's path.
        let parent = match root.parent() {
            Some(p) if !p.as_os_str().is_empty() && file_name(root) == name => p.to_path_buf(),
            _ => parent,
        };
        return Ok((parent, vec![name]));
    }
    let mut cats = Vec::new();
    for d in list_dirs(root)? {
        if find_dir(&d, "train")?.is_some() || find_dir(&d, "test")?.is_some() {
            cats.push(file_name(&d));
        }
    }
    if cats.is_empty() {
        return Err(DatasetError::NoCategories {
            root: root.to_path_buf(),
        });
    }
    Ok((root.to_path_buf(), cats))
}

/// `ground_truth/<defect>/<stem>_mask.png` for `test/<defect>/<stem>.<ext>`.
pub fn mask_path(gt_dir: &Path, defect: &str, image: &Path) -> PathBuf {
    gt_dir
        .join(defect)
        .join(mask_name(image.file_stem().unwrap_or_default(), "png"))
}

/// `<stem>_mask.<ext>`, built on the OS string so that a name that is not UTF-8 still
/// finds its mask.
fn mask_name(stem: &OsStr, ext: &str) -> OsString {
    let mut name = stem.to_os_string();
    name.push("_mask.");
    name.push(ext);
    name
}

/// The image stem a mask belongs to: its own stem without `_mask`, byte for byte.
fn mask_image_stem(mask: &Path) -> Option<&OsStr> {
    let stem = mask.file_stem()?.as_bytes();
    stem.strip_suffix(b"_mask").map(OsStr::from_bytes)
}

/// The mask of `image` inside a `ground_truth/<defect>` folder: `<stem>_mask.png` (MVTec),
/// or with [`Masks::Optional`] `<stem>_mask.<any image extension>`.
fn find_mask(gt_defect: &Path, image: &Path, masks: Masks) -> Option<PathBuf> {
    let stem = image.file_stem()?;
    let exts: &[&str] = match masks {
        Masks::Required => &["png"],
        Masks::Optional => IMAGE_EXTENSIONS,
    };
    for ext in exts {
        let p = gt_defect.join(mask_name(stem, ext));
        if p.exists() || p.symlink_metadata().is_ok() {
            return Some(p);
        }
        let upper = gt_defect.join(mask_name(stem, &ext.to_ascii_uppercase()));
        if upper.symlink_metadata().is_ok() {
            return Some(upper);
        }
    }
    None
}

/// Every mask must belong to a test image of the same defect folder.
fn check_orphan_masks(
    gt_dir: &Path,
    test_dir: &Path,
    problems: &mut Vec<DatasetError>,
) -> Result<(), DatasetError> {
    for defect_dir in list_dirs(gt_dir)? {
        let defect = file_name(&defect_dir);
        let test_defect = find_dir(test_dir, &defect)?;
        let images = match &test_defect {
            Some(d) => list_images_collect(d, &mut Vec::new()).unwrap_or_default(),
            None => Vec::new(),
        };
        for mask in list_images_collect(&defect_dir, problems)? {
            let Some(image_stem) = mask_image_stem(&mask) else {
                problems.push(DatasetError::invalid(
                    &mask,
                    "a mask's name must be <image stem>_mask.<ext>",
                ));
                continue;
            };
            let found = images.iter().any(|p| p.file_stem() == Some(image_stem));
            if !found {
                let folder = test_defect
                    .clone()
                    .unwrap_or_else(|| test_dir.join(&defect));
                let mut expected = image_stem.to_os_string();
                expected.push(".png");
                problems.push(DatasetError::OrphanMask {
                    expected: folder.join(expected),
                    mask,
                });
            }
        }
    }
    Ok(())
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn is_hidden(path: &Path) -> bool {
    file_name(path).starts_with('.')
}

pub(crate) fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

fn extensions_text() -> String {
    let list: Vec<String> = IMAGE_EXTENSIONS.iter().map(|e| format!("*.{e}")).collect();
    list.join(", ")
}

/// Image files directly inside `dir`, sorted. A missing folder is an error; so is an
/// image-named entry that is a symbolic link loop or a dangling link.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut problems = Vec::new();
    let out = list_images_collect(dir, &mut problems)?;
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(DatasetError::from_problems(dir, problems))
    }
}

/// [`list_images`] that records bad entries in `problems` and goes on.
fn list_images_collect(
    dir: &Path,
    problems: &mut Vec<DatasetError>,
) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    for p in read_dir(dir)? {
        if is_hidden(&p) || !has_image_extension(&p) {
            continue;
        }
        match fs::metadata(&p) {
            Ok(m) if m.is_file() => out.push(p),
            Ok(m) if m.is_dir() => problems.push(DatasetError::invalid(
                &p,
                "a folder named like an image file",
            )),
            Ok(_) => problems.push(DatasetError::invalid(&p, "not a regular file")),
            Err(e) => problems.push(link_error(&p, e)),
        }
    }
    out.sort();
    Ok(out)
}

/// Sub-folders of `dir` (not hidden), sorted. A folder link that points to `dir` or to a
/// folder above it is a [`DatasetError::SymlinkLoop`].
pub fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out = Vec::new();
    let mut here: Option<PathBuf> = None;
    for p in read_dir(dir)? {
        if is_hidden(&p) {
            continue;
        }
        let link = p.symlink_metadata().is_ok_and(|m| m.is_symlink());
        match fs::metadata(&p) {
            Ok(m) if m.is_dir() => {
                if link {
                    let target = p.canonicalize().map_err(|e| link_error(&p, e))?;
                    if here.is_none() {
                        here = Some(dir.canonicalize().map_err(|e| link_error(dir, e))?);
                    }
                    if here.as_ref().is_some_and(|h| h.starts_with(&target)) {
                        return Err(DatasetError::SymlinkLoop { path: p });
                    }
                }
                out.push(p);
            }
            Ok(_) => {}
            Err(e) if link && is_loop_error(&e) => {
                return Err(DatasetError::SymlinkLoop { path: p });
            }
            // A dangling link without an image name is not part of the dataset.
            Err(_) if link => {}
            Err(e) => return Err(DatasetError::io(&p, e)),
        }
    }
    out.sort();
    Ok(out)
}

/// The sub-folder of `dir` named `name`, compared case-insensitively (an exact match wins).
pub fn find_dir(dir: &Path, name: &str) -> Result<Option<PathBuf>, DatasetError> {
    let exact = dir.join(name);
    if exact.is_dir() {
        return Ok(Some(exact));
    }
    Ok(list_dirs(dir)?
        .into_iter()
        .find(|d| file_name(d).eq_ignore_ascii_case(name)))
}

fn check_root(root: &Path) -> Result<(), DatasetError> {
    check_dir(root)
}

fn check_dir(dir: &Path) -> Result<(), DatasetError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(DatasetError::NotAFolder {
            path: dir.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !is_link(dir) => {
            Err(DatasetError::MissingFolder {
                path: dir.to_path_buf(),
            })
        }
        Err(e) => Err(link_error(dir, e)),
    }
}

fn is_link(p: &Path) -> bool {
    p.symlink_metadata().is_ok_and(|m| m.is_symlink())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    check_dir(dir)?;
    let entries = fs::read_dir(dir).map_err(|e| link_error(dir, e))?;
    entries
        .map(|e| e.map(|e| e.path()).map_err(|e| DatasetError::io(dir, e)))
        .collect()
}
