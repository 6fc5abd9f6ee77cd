//! The MVTec AD folder contract, shared by every MVTec-style dataset:
//! `<root>/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>/<stem>_mask.png}`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::DatasetError;

/// Extensions accepted as images, compared case-insensitively.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

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
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for s in &self.test {
            *counts.entry(s.defect.clone()).or_default() += 1;
        }
        counts.into_iter().collect()
    }
}

/// Whether masks must exist for every defective image (MVTec AD) or may be absent
/// (InsPLAD-fault, generic folders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masks {
    Required,
    Optional,
}

/// Lists a category of an MVTec-style dataset and checks the pairing of images and masks.
/// Images are not decoded here; see [`crate::decode`].
pub fn load_category(
    root: &Path,
    category: &str,
    masks: Masks,
) -> Result<CategoryData, DatasetError> {
    let dir = root.join(category);
    if !dir.is_dir() {
        return Err(DatasetError::MissingFolder { path: dir });
    }
    let train_dir = dir.join("train").join(GOOD);
    let train: Vec<Sample> = list_images(&train_dir)?
        .into_iter()
        .map(|path| Sample {
            path,
            defect: GOOD.to_string(),
            mask: None,
        })
        .collect();
    if train.is_empty() {
        return Err(DatasetError::NoImages { path: train_dir });
    }

    let test_dir = dir.join("test");
    let gt_dir = dir.join("ground_truth");
    let mut test = Vec::new();
    for defect_dir in list_dirs(&test_dir)? {
        let defect = file_name(&defect_dir);
        let anomalous = !defect.eq_ignore_ascii_case(GOOD);
        for path in list_images(&defect_dir)? {
            let mask = if anomalous {
                let expected = mask_path(&gt_dir, &defect, &path);
                match (expected.is_file(), masks) {
                    (true, _) => Some(expected),
                    (false, Masks::Required) => {
                        return Err(DatasetError::MissingMask {
                            image: path,
                            expected,
                        });
                    }
                    (false, Masks::Optional) => None,
                }
            } else {
                None
            };
            test.push(Sample {
                path,
                defect: if anomalous {
                    defect.clone()
                } else {
                    GOOD.to_string()
                },
                mask,
            });
        }
    }
    if test.is_empty() {
        return Err(DatasetError::NoImages { path: test_dir });
    }
    check_orphan_masks(&gt_dir, &test_dir)?;
    Ok(CategoryData {
        root: root.to_path_buf(),
        category: category.to_string(),
        train,
        test,
    })
}

/// `ground_truth/<defect>/<stem>_mask.png` for `test/<defect>/<stem>.<ext>`.
pub fn mask_path(gt_dir: &Path, defect: &str, image: &Path) -> PathBuf {
    let stem = image.file_stem().unwrap_or_default().to_string_lossy();
    gt_dir.join(defect).join(format!("{stem}_mask.png"))
}

/// Every mask must belong to a test image of the same defect folder.
fn check_orphan_masks(gt_dir: &Path, test_dir: &Path) -> Result<(), DatasetError> {
    if !gt_dir.is_dir() {
        return Ok(());
    }
    for defect_dir in list_dirs(gt_dir)? {
        let defect = file_name(&defect_dir);
        let images = list_images(&test_dir.join(&defect)).unwrap_or_default();
        for mask in list_images(&defect_dir)? {
            let stem = file_name(&mask);
            let Some(image_stem) = stem
                .strip_suffix(".png")
                .and_then(|s| s.strip_suffix("_mask"))
            else {
                continue;
            };
            let found = images.iter().any(|p| {
                p.file_stem()
                    .is_some_and(|s| s.to_string_lossy() == image_stem)
            });
            if !found {
                return Err(DatasetError::OrphanMask {
                    expected: test_dir.join(&defect).join(format!("{image_stem}.png")),
                    mask,
                });
            }
        }
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Image files directly inside `dir`, sorted. A missing folder is an error.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out: Vec<PathBuf> = read_dir(dir)?
        .into_iter()
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    out.sort();
    Ok(out)
}

/// Sub-folders of `dir`, sorted.
pub fn list_dirs(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let mut out: Vec<PathBuf> = read_dir(dir)?.into_iter().filter(|p| p.is_dir()).collect();
    out.sort();
    Ok(out)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    if !dir.is_dir() {
        return Err(DatasetError::MissingFolder {
            path: dir.to_path_buf(),
        });
    }
    let entries = fs::read_dir(dir).map_err(|e| DatasetError::io(dir, e))?;
    entries
        .map(|e| e.map(|e| e.path()).map_err(|e| DatasetError::io(dir, e)))
        .collect()
}
