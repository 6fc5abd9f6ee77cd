//! A tiny generated dataset in the MVTec layout, in the spirit of DifferNet's dummy set:
//! good images hold a square, anomalous ones a circle. Any working pipeline must separate
//! them; it is the first thing an end-to-end test runs.

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use adn_datasets::DatasetError;

use crate::staging::{self, Outcome, Staging};

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

/// Writes `<root>/shapes/{train/good, test/good, test/circle, ground_truth/circle}` and a
/// `manifest.json` of the spec. The folder is first written beside its final place and
/// renamed ([`Staging`]), every write is checked (a full disk is an error naming the file),
/// and the generation holds the lock of `<root>/shapes`, so two processes that both find
/// the set missing write it once: the second waits, then finds it there.
pub fn generate(root: &Path, spec: &SmokeSpec) -> Result<Outcome, DatasetError> {
    let final_dir = root.join(CATEGORY);
    staging::ensure_dir(root)?;
    let _owner = adn_util::lock::lock_waiting(&final_dir, "the smoke dataset")
        .map_err(|e| DatasetError::write(&final_dir, e))?;
    let manifest = format!(
        "{{\"generator\": \"adn smoke\", \"size\": {}, \"train_good\": {}, \"test_good\": {}, \
         \"test_anomalous\": {}, \"seed\": {}}}\n",
        spec.size, spec.train_good, spec.test_good, spec.test_anomalous, spec.seed
    );
    if staging::already_present(&final_dir, MANIFEST, &manifest)? {
        return Ok(Outcome::Unchanged);
    }
    let stage = Staging::begin(root, CATEGORY)?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let groups = [
        ("train/good", spec.train_good, Shape::Square),
        ("test/good", spec.test_good, Shape::Square),
        ("test/circle", spec.test_anomalous, Shape::Circle),
    ];
    for (folder, count, shape) in groups {
        for i in 0..count {
            let (img, mask) = draw(spec.size, shape, &mut rng);
            let rel = format!("{folder}/{i:03}.png");
            stage.write(&rel, &png(&img, &stage.dir().join(&rel))?)?;
            if let Shape::Circle = shape {
                let rel = format!("ground_truth/{DEFECT}/{i:03}_mask.png");
                stage.write(&rel, &png(&mask, &stage.dir().join(&rel))?)?;
            }
        }
    }
    stage.commit(MANIFEST, &manifest)
}

/// The name of the spec file in the category folder.
pub const MANIFEST: &str = "manifest.json";

/// An image encoded as PNG in memory, so that writing it is one checked write.
fn png<P, C>(img: &image::ImageBuffer<P, C>, path: &Path) -> Result<Vec<u8>, DatasetError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| DatasetError::write(path, e))?;
    Ok(buf.into_inner())
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
        let read = |d: &Path| std::fs::read(d.join(CATEGORY).join("test/circle/000.png")).unwrap();
        assert_eq!(read(a.path()), read(b.path()));
    }
}
