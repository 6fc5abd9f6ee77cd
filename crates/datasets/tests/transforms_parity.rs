//! Parity of the transforms with torchvision 0.28 / Pillow 13 / torch 2.13 on golden outputs
//! made by `goldens/make_goldens.py` (stored in `tests/fixtures/transforms`).
//!
//! Tolerances:
//! - resize (PIL bilinear, antialiased) and rotation (PIL nearest, black fill): **exact**,
//!   every byte equal;
//! - the full pipeline (resize → rotate → ToTensor → Normalize → nearest downscales):
//!   max |Δ| ≤ 1e-6 on the float tensors (ImageNet mean/std and EfficientNet-Lite scaling).

use std::path::{Path, PathBuf};

use adn_datasets::decode::load_rgb;
use adn_datasets::transforms::{
    Normalization, resize_bilinear, resize_nearest_chw, resize_square, rotate_nearest, to_chw,
};
use serde_json::Value;

const FLOAT_TOLERANCE: f32 = 1e-6;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/transforms")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(dir().join("goldens.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn rgb(name: &str) -> image::RgbImage {
    load_rgb(&dir().join(name)).unwrap()
}

fn f32s(name: &str) -> Vec<f32> {
    let bytes = std::fs::read(dir().join(name)).unwrap();
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn count_diff(a: &image::RgbImage, b: &image::RgbImage) -> usize {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, y)| x != y)
        .count()
}

#[test]
fn resize_matches_pil_bilinear_exactly() {
    let m = manifest();
    let cases = m["resize"].as_array().unwrap();
    assert!(cases.len() >= 6);
    for case in cases {
        let input = rgb(case["input"].as_str().unwrap());
        let (w, h) = (
            case["width"].as_u64().unwrap() as u32,
            case["height"].as_u64().unwrap() as u32,
        );
        let ours = if w == h {
            resize_square(&input, w)
        } else {
            resize_bilinear(&input, w, h)
        };
        let golden = rgb(case["output"].as_str().unwrap());
        let diff = count_diff(&ours, &golden);
        assert_eq!(diff, 0, "{case}: {diff} bytes differ");
    }
}

#[test]
fn rotation_matches_pil_nearest_exactly() {
    let m = manifest();
    let cases = m["rotate"].as_array().unwrap();
    assert!(cases.len() >= 40);
    for case in cases {
        let input = rgb(case["input"].as_str().unwrap());
        let degrees = case["degrees"].as_f64().unwrap();
        let ours = rotate_nearest(&input, degrees);
        let golden = rgb(case["output"].as_str().unwrap());
        let diff = count_diff(&ours, &golden);
        assert_eq!(diff, 0, "{case}: {diff} bytes differ");
    }
}

#[test]
fn pipeline_matches_torchvision_within_1e_6() {
    let m = manifest();
    let cases = m["pipeline"].as_array().unwrap();
    assert!(cases.len() >= 4);
    for case in cases {
        let input = rgb(case["input"].as_str().unwrap());
        let size = case["size"].as_u64().unwrap() as u32;
        let degrees = case["degrees"].as_f64().unwrap();
        let norm = match case["norm"].as_str().unwrap() {
            "imagenet" => Normalization::IMAGENET,
            "efficientnet_lite" => Normalization::EFFICIENTNET_LITE,
            other => panic!("unknown normalisation {other}"),
        };
        let ours = to_chw(
            &rotate_nearest(&resize_square(&input, size), degrees),
            &norm,
        );
        let golden = f32s(case["output"].as_str().unwrap());
        assert_close(&ours, &golden, &case.to_string());
        let s0 = size as usize;
        for scale in case["scales"].as_array().unwrap() {
            let s = scale["size"].as_u64().unwrap() as usize;
            let down = resize_nearest_chw(&ours, 3, s0, s0, s, s);
            let golden = f32s(scale["output"].as_str().unwrap());
            assert_close(&down, &golden, &format!("{case} at {s}"));
        }
    }
}

fn assert_close(ours: &[f32], golden: &[f32], what: &str) {
    assert_eq!(ours.len(), golden.len(), "{what}: length");
    let max = ours
        .iter()
        .zip(golden)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max <= FLOAT_TOLERANCE, "{what}: max |diff| {max}");
}
