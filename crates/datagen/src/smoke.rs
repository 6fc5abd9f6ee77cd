//! A tiny generated dataset in the MVTec layout, in the spirit of DifferNet's dummy set:
//! good images hold a square, anomalous ones a circle. Any working pipeline must separate
//! them; it is the first thing an end-to-end test runs.

use std::fs;
use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use adn_datasets::DatasetError;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SmokeSpec {
    pub size: u32,
    pub train_good: usize,
    pub test_good: usize,
    pub test_anomalous: usize,
    pub seed: u64,
}

impl Default for SmokeSpec {
    fn default() -> Self {
        SmokeSpec {
            size: 128,
            train_good: 100,
            test_good: 20,
            test_anomalous: 20,
            seed: 0,
        }
    }
}

/// The category folder name the smoke set is written under.
pub const CATEGORY: &str = "shapes";
/// The defect folder name of the anomalous test images.
pub const DEFECT: &str = "circle";

#[derive(Clone, Copy)]
enum Shape {
    Square,
    Circle,
}

/// Writes `<root>/shapes/{train/good, test/good, test/circle, ground_truth/circle}`.
/// The folder is first written beside its final place and renamed, so an interrupted
/// generation never leaves a half-written dataset that looks complete.
pub fn generate(root: &Path, spec: &SmokeSpec) -> Result<(), DatasetError> {
    let final_dir = root.join(CATEGORY);
    let tmp_dir = root.join(format!(".{CATEGORY}.partial"));
    let write_err = |path: &Path, e: &dyn std::fmt::Display| DatasetError::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if tmp_dir.exists() {
        fs::remove_dir_all(&tmp_dir).map_err(|e| DatasetError::io(&tmp_dir, e))?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let groups = [
        ("train/good", spec.train_good, Shape::Square),
        ("test/good", spec.test_good, Shape::Square),
        ("test/circle", spec.test_anomalous, Shape::Circle),
    ];
    for (folder, count, shape) in groups {
        let dir = tmp_dir.join(folder);
        fs::create_dir_all(&dir).map_err(|e| DatasetError::io(&dir, e))?;
        for i in 0..count {
            let (img, mask) = draw(spec.size, shape, &mut rng);
            let path = dir.join(format!("{i:03}.png"));
            img.save(&path).map_err(|e| write_err(&path, &e))?;
            if let Shape::Circle = shape {
                let gt = tmp_dir.join("ground_truth").join(DEFECT);
                fs::create_dir_all(&gt).map_err(|e| DatasetError::io(&gt, e))?;
                let mpath = gt.join(format!("{i:03}_mask.png"));
                mask.save(&mpath).map_err(|e| write_err(&mpath, &e))?;
            }
        }
    }
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| DatasetError::io(&final_dir, e))?;
    }
    fs::rename(&tmp_dir, &final_dir).map_err(|e| DatasetError::io(&final_dir, e))
}

fn draw(size: u32, shape: Shape, rng: &mut ChaCha8Rng) -> (RgbImage, GrayImage) {
    let s = size as f32;
    // A black background, like the black fill of rotations, so that rotating an image
    // changes nothing but the shape's orientation.
    let mut img = RgbImage::new(size, size);
    let mut mask = GrayImage::new(size, size);
    // The circle is wider than any square (area about 1.8 times), with no corners.
    let half = s * rng.random_range(0.17..0.19f32);
    let radius = half * 1.5;
    let cx = s / 2.0 + rng.random_range(-0.01..0.01f32) * s;
    let cy = s / 2.0 + rng.random_range(-0.01..0.01f32) * s;
    let colour = Rgb([210, 200, 190]);
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let inside = match shape {
                Shape::Square => dx.abs() <= half && dy.abs() <= half,
                Shape::Circle => dx * dx + dy * dy <= radius * radius,
            };
            if inside {
                img.put_pixel(x, y, colour);
                if let Shape::Circle = shape {
                    mask.put_pixel(x, y, Luma([255]));
                }
            }
        }
    }
    (img, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use adn_datasets::layout::{Masks, load_category};

    #[test]
    fn generated_set_loads_in_the_mvtec_layout() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SmokeSpec {
            size: 32,
            train_good: 3,
            test_good: 2,
            test_anomalous: 2,
            seed: 1,
        };
        generate(dir.path(), &spec).unwrap();
        let data = load_category(dir.path(), CATEGORY, Masks::Required).unwrap();
        assert_eq!(data.train.len(), 3);
        assert_eq!(
            data.test_counts(),
            vec![("circle".into(), 2), ("good".into(), 2)]
        );
        assert!(
            data.test
                .iter()
                .filter(|s| s.is_anomalous())
                .all(|s| s.mask.is_some())
        );
    }

    #[test]
    fn generation_is_seeded() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let spec = SmokeSpec {
            size: 24,
            train_good: 2,
            test_good: 1,
            test_anomalous: 1,
            seed: 7,
        };
        generate(a.path(), &spec).unwrap();
        generate(b.path(), &spec).unwrap();
        let read = |d: &Path| fs::read(d.join(CATEGORY).join("test/circle/000.png")).unwrap();
        assert_eq!(read(a.path()), read(b.path()));
    }
}
