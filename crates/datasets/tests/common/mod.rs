//! Small fixtures written in the real layouts.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage, ImageFormat, Luma, Rgb, RgbImage};

pub fn rgb(w: u32, h: u32, seed: u8) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x as u8).wrapping_mul(7).wrapping_add(seed),
            (y as u8).wrapping_mul(5),
            seed,
        ])
    }))
}

pub fn gray(w: u32, h: u32, seed: u8) -> DynamicImage {
    DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, y| {
        Luma([(x as u8 ^ y as u8).wrapping_add(seed)])
    }))
}

pub fn mask(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageLuma8(GrayImage::from_fn(w, h, |x, _| {
        Luma([if x < w / 2 { 255 } else { 0 }])
    }))
}

pub fn save(img: &DynamicImage, path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = ImageFormat::from_path(path).unwrap();
    img.save_with_format(path, format).unwrap();
}

/// `<root>/<cat>` in MVTec's layout: `train` good images, `good` good test images and, per
/// defect, `n` images with masks; `size`×`size` RGB (or gray with `gray_images`).
pub fn mvtec_category(
    root: &Path,
    cat: &str,
    train: usize,
    good: usize,
    defects: &[(&str, usize)],
    size: u32,
    gray_images: bool,
) -> PathBuf {
    let dir = root.join(cat);
    let img = |i: usize| {
        if gray_images {
            gray(size, size, i as u8)
        } else {
            rgb(size, size, i as u8)
        }
    };
    for i in 0..train {
        save(&img(i), &dir.join(format!("train/good/{i:03}.png")));
    }
    for i in 0..good {
        save(&img(100 + i), &dir.join(format!("test/good/{i:03}.png")));
    }
    for (d, n) in defects {
        for i in 0..*n {
            save(&img(200 + i), &dir.join(format!("test/{d}/{i:03}.png")));
            save(
                &mask(size, size),
                &dir.join(format!("ground_truth/{d}/{i:03}_mask.png")),
            );
        }
    }
    dir
}

/// CRC-32 (IEEE) for hand-made PNG chunks.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header says `w`×`h` (0 allowed), with no pixel data.
pub fn png_with_size(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = b"IHDR".to_vec();
    chunk.extend(w.to_be_bytes());
    chunk.extend(h.to_be_bytes());
    chunk.extend([8, 0, 0, 0, 0]);
    out.extend(13u32.to_be_bytes());
    out.extend(&chunk);
    out.extend(crc32(&chunk).to_be_bytes());
    out.extend(0u32.to_be_bytes());
    out.extend(b"IEND");
    out.extend(crc32(b"IEND").to_be_bytes());
    out
}
