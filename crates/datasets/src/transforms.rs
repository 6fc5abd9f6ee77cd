//! DifferNet's image transforms: resize, rotation about the centre, normalisation.
//!
//! Order as in DifferNet's data pipeline: resize the decoded image (bilinear, antialiased
//! when shrinking, as PIL does), rotate the resized image (nearest neighbour, black fill,
//! same size), convert to `[0, 1]` and normalise per channel. The output is a CHW `f32`
//! buffer.

use image::RgbImage;
use image::imageops::{self, FilterType};
use serde::{Deserialize, Serialize};

/// Per-channel input normalisation of a backbone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// torchvision's ImageNet statistics (AlexNet and most torchvision models).
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
}

/// Resizes to `size`×`size` with a bilinear filter whose support widens when shrinking.
pub fn resize_square(img: &RgbImage, size: u32) -> RgbImage {
    if img.width() == size && img.height() == size {
        return img.clone();
    }
    imageops::resize(img, size, size, FilterType::Triangle)
}

/// Rotates counter-clockwise by `degrees` about the image centre, nearest neighbour, filling
/// uncovered pixels with black; the output keeps the input's size.
pub fn rotate_nearest(img: &RgbImage, degrees: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    if degrees.rem_euclid(360.0) == 0.0 {
        return img.clone();
    }
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        let dy = y as f64 + 0.5 - cy;
        for x in 0..w {
            let dx = x as f64 + 0.5 - cx;
            // Inverse mapping: the source pixel that lands on (x, y) after a
            // counter-clockwise rotation (y axis pointing down).
            let sx = cos * dx - sin * dy + cx;
            let sy = sin * dx + cos * dy + cy;
            if sx >= 0.0 && sy >= 0.0 && sx < w as f64 && sy < h as f64 {
                out.put_pixel(x, y, *img.get_pixel(sx as u32, sy as u32));
            }
        }
    }
    out
}

/// Converts to a normalised CHW `f32` buffer.
pub fn to_chw(img: &RgbImage, norm: &Normalization) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 / 255.0 - norm.mean[c]) / norm.std[c];
        }
    }
    out
}

/// The rotation angles of `n` test-time transforms: `i·360/n` (DifferNet's evaluation script).
pub fn fixed_angles(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 360.0 / n as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, (x + y) as u8]))
    }

    #[test]
    fn full_turns_and_quarter_turns_are_exact() {
        let img = gradient(8, 8);
        assert_eq!(rotate_nearest(&img, 360.0), img);
        let once = rotate_nearest(&img, 90.0);
        let back = rotate_nearest(&rotate_nearest(&rotate_nearest(&once, 90.0), 90.0), 90.0);
        assert_eq!(back, img);
        // A quarter turn of an even-sized image loses no pixel.
        assert!(once.pixels().filter(|p| p.0 == [0, 0, 0]).count() <= 1);
    }

    #[test]
    fn rotation_fills_corners_with_black() {
        let img = RgbImage::from_pixel(16, 16, image::Rgb([200, 200, 200]));
        let r = rotate_nearest(&img, 45.0);
        assert_eq!(r.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(r.get_pixel(8, 8).0, [200, 200, 200]);
    }

    #[test]
    fn normalisation_is_per_channel_chw() {
        let img = RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 128]));
        let v = to_chw(&img, &Normalization::IMAGENET);
        assert_eq!(v.len(), 6);
        assert!((v[0] - (1.0 - 0.485) / 0.229).abs() < 1e-6);
        assert!((v[2] - (0.0 - 0.456) / 0.224).abs() < 1e-6);
    }

    #[test]
    fn fixed_angles_cover_the_circle() {
        assert_eq!(fixed_angles(4), vec![0.0, 90.0, 180.0, 270.0]);
    }
}
