//! DifferNet's image transforms: resize, rotation about the centre, normalisation, and the
//! nearest-neighbour downscaling of its smaller scales.
//!
//! Order as in DifferNet's data pipeline: resize the decoded image, rotate the resized image
//! (nearest neighbour, black fill, same size), convert to `[0, 1]`, normalise per channel,
//! and for the smaller scales downscale the normalised tensor with `interpolate(mode="nearest")`.
//! The output is a CHW `f32` buffer.
//!
//! [`resize_square`] and [`rotate_nearest`] follow Pillow's integer arithmetic step by step
//! (what torchvision's `Resize` and `rotate` call on PIL images), so they give the same
//! bytes as torchvision, not just close ones; `tests/transforms_parity.rs` checks this
//! against golden outputs of torchvision 0.28 / Pillow 13.

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Per-channel input normalisation of a backbone: `(x/255 − mean) / std`.
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

    /// The EfficientNet-Lite weights' input scaling `(x·255 − 127) / 128`, written as a
    /// mean/std pair on `[0, 1]` inputs (equal up to float rounding, below 1e-6).
    pub const EFFICIENTNET_LITE: Normalization = Normalization {
        mean: [127.0 / 255.0; 3],
        std: [128.0 / 255.0; 3],
    };
}

/// Resizes to `size`×`size` exactly as Pillow's `Image.resize(..., BILINEAR)` does (what
/// torchvision's `Resize((size, size))` calls on PIL images): a triangle filter whose support
/// widens by the shrink factor (antialiasing), fixed-point weights with 22 fraction bits, the
/// horizontal pass first and rounded to 8 bits, then the vertical pass.
pub fn resize_square(img: &RgbImage, size: u32) -> RgbImage {
    resize_bilinear(img, size, size)
}

/// [`resize_square`] to any `width`×`height`.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if (w, h) == (width, height) || w == 0 || h == 0 || width == 0 || height == 0 {
        return if (w, h) == (width, height) {
            img.clone()
        } else {
            RgbImage::new(width, height)
        };
    }
    // Pillow 13 runs the vertical pass first when the height shrinks by more than twice as
    // many pixels as the width (earlier Pillow always went horizontal first; the two orders
    // differ only in the rounding of the 8-bit intermediate, by at most 1 per pass).
    let (dh, dw) = (h as i64 - height as i64, w as i64 - width as i64);
    let vertical_first = dh > 0 && dh > dw * 2;
    let mut cur = img.clone();
    if vertical_first {
        cur = resample_pass(&cur, height, Axis::Vertical);
        if width != w {
            cur = resample_pass(&cur, width, Axis::Horizontal);
        }
    } else {
        if width != w {
            cur = resample_pass(&cur, width, Axis::Horizontal);
        }
        if height != h {
            cur = resample_pass(&cur, height, Axis::Vertical);
        }
    }
    cur
}

#[derive(Clone, Copy)]
enum Axis {
    Horizontal,
    Vertical,
}

/// Fraction bits of Pillow's 8-bit resampling weights.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's `precompute_coeffs` for the bilinear filter, then `normalize_coeffs_8bpc`:
/// per output index, the first input index, the tap count, and `ksize` integer weights.
fn coefficients(in_size: u32, out_size: u32) -> (Vec<(usize, usize)>, usize, Vec<i64>) {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 1.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size as usize);
    let mut weights = vec![0i64; out_size as usize * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size as usize {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates toward zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let taps = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(taps) {
            let t = ((x + xmin) as f64 - center + 0.5) * ss;
            let t = t.abs();
            let w = if t < 1.0 { 1.0 - t } else { 0.0 };
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(taps) {
            let v = if ww != 0.0 { kx / ww } else { *kx };
            let scaled = v * (1u64 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (-0.5 + scaled) as i64
            } else {
                (0.5 + scaled) as i64
            };
        }
        bounds.push((xmin, taps));
    }
    (bounds, ksize, weights)
}

fn clip8(v: i64) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

fn resample_pass(img: &RgbImage, out_len: u32, axis: Axis) -> RgbImage {
    let (w, h) = img.dimensions();
    let (in_len, out_w, out_h) = match axis {
        Axis::Horizontal => (w, out_len, h),
        Axis::Vertical => (h, w, out_len),
    };
    let (bounds, ksize, weights) = coefficients(in_len, out_len);
    let src = img.as_raw();
    let mut out = vec![0u8; out_w as usize * out_h as usize * 3];
    let row = w as usize * 3;
    let half = 1i64 << (PRECISION_BITS - 1);
    for oy in 0..out_h as usize {
        for ox in 0..out_w as usize {
            let o = (oy * out_w as usize + ox) * 3;
            let (i, fixed) = match axis {
                Axis::Horizontal => (ox, oy),
                Axis::Vertical => (oy, ox),
            };
            let (start, taps) = bounds[i];
            let k = &weights[i * ksize..i * ksize + taps];
            for c in 0..3 {
                let mut ss = half;
                for (t, &kt) in k.iter().enumerate() {
                    let idx = match axis {
                        Axis::Horizontal => fixed * row + (start + t) * 3 + c,
                        Axis::Vertical => (start + t) * row + fixed * 3 + c,
                    };
                    ss += src[idx] as i64 * kt;
                }
                out[o + c] = clip8(ss);
            }
        }
    }
    RgbImage::from_raw(out_w, out_h, out).unwrap_or_else(|| RgbImage::new(out_w, out_h))
}

/// Python's `round(x, 15)`, which Pillow applies to the rotation matrix.
fn round15(x: f64) -> f64 {
    format!("{x:.15}").parse().unwrap_or(x)
}

/// Rotates counter-clockwise by `degrees` about the image centre, nearest neighbour, filling
/// uncovered pixels with black; the output keeps the input's size. This is Pillow's
/// `Image.rotate(degrees, NEAREST, fillcolor=0)` (torchvision's `rotate(img, degrees,
/// InterpolationMode.NEAREST, fill=0)` on a PIL image): exact transposes for multiples of 90°
/// where the size allows, otherwise the affine map with the matrix rounded to 15 decimals and
/// evaluated in 16.16 fixed point at pixel centres.
pub fn rotate_nearest(img: &RgbImage, degrees: f64) -> RgbImage {
    let (w, h) = img.dimensions();
    let angle = degrees.rem_euclid(360.0);
    if angle == 0.0 || w == 0 || h == 0 {
        return img.clone();
    }
    if angle == 180.0 {
        return image::imageops::rotate180(img);
    }
    if w == h && angle == 90.0 {
        // Counter-clockwise quarter turn.
        return image::imageops::rotate270(img);
    }
    if w == h && angle == 270.0 {
        return image::imageops::rotate90(img);
    }
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let theta = -angle.to_radians();
    let a0 = round15(theta.cos());
    let a1 = round15(theta.sin());
    let a3 = round15(-theta.sin());
    let a4 = round15(theta.cos());
    let a2 = a0 * -cx + a1 * -cy + 0.0 + cx;
    let a5 = a3 * -cx + a4 * -cy + 0.0 + cy;
    let mut out = RgbImage::new(w, h);
    let (wi, hi) = (w as i64, h as i64);
    let fits = |x: f64, y: f64| {
        (x * a0 + y * a1 + a2).abs() < 32768.0 && (x * a3 + y * a4 + a5).abs() < 32768.0
    };
    let fixed =
        fits(0.0, 0.0) && fits(w as f64, h as f64) && fits(0.0, h as f64) && fits(w as f64, 0.0);
    if a1 == 0.0 && a3 == 0.0 || !fixed {
        // Pillow's floating-point paths (scale-only matrices, huge images).
        let coord = |v: f64| if v < 0.0 { -1 } else { v as i64 };
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f64 + 0.5, y as f64 + 0.5);
                let xin = coord(a0 * xf + a1 * yf + a2);
                let yin = coord(a3 * xf + a4 * yf + a5);
                if (0..wi).contains(&xin) && (0..hi).contains(&yin) {
                    out.put_pixel(x, y, *img.get_pixel(xin as u32, yin as u32));
                }
            }
        }
        return out;
    }
    let fix = |v: f64| (v * 65536.0 + 0.5).floor() as i64;
    let (f0, f1, f3, f4) = (fix(a0), fix(a1), fix(a3), fix(a4));
    let mut row_x = fix(a2 + a0 * 0.5 + a1 * 0.5);
    let mut row_y = fix(a5 + a3 * 0.5 + a4 * 0.5);
    for y in 0..h {
        let (mut xx, mut yy) = (row_x, row_y);
        for x in 0..w {
            let (xin, yin) = (xx >> 16, yy >> 16);
            if (0..wi).contains(&xin) && (0..hi).contains(&yin) {
                out.put_pixel(x, y, *img.get_pixel(xin as u32, yin as u32));
            }
            xx += f0;
            yy += f3;
        }
        row_x += f1;
        row_y += f4;
    }
    out
}

/// Where each pixel of [`rotate_nearest`]`(img, degrees)` of a `width` × `height` image
/// comes from: `Some(y · width + x)` of the source, or `None` where the rotation fills black.
/// Found by rotating an image whose pixels hold their own index, so it is `rotate_nearest`'s
/// mapping by construction (what a differentiable rotation of pixel tensors gathers by).
/// `None` for images of 2²⁴ − 1 pixels or more, whose indices do not fit in three bytes.
pub fn rotation_sources(width: u32, height: u32, degrees: f64) -> Option<Vec<Option<u32>>> {
    let plane = width as u64 * height as u64;
    if plane >= (1 << 24) - 1 {
        return None;
    }
    // Index + 1, so that the black fill (0) means "no source".
    let coded = RgbImage::from_fn(width, height, |x, y| {
        let i = (y * width + x + 1).to_le_bytes();
        image::Rgb([i[0], i[1], i[2]])
    });
    let rotated = rotate_nearest(&coded, degrees);
    Some(
        rotated
            .pixels()
            .map(|p| {
                let i = u32::from_le_bytes([p[0], p[1], p[2], 0]);
                i.checked_sub(1)
            })
            .collect(),
    )
}

/// Converts to a normalised CHW `f32` buffer, as torchvision's `ToTensor` then `Normalize`.
pub fn to_chw(img: &RgbImage, norm: &Normalization) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let mut out = vec![0f32; 3 * (w * h) as usize];
    to_chw_into(img, norm, &mut out);
    out
}

/// [`to_chw`] into `out`, which holds exactly `3·width·height` values.
pub fn to_chw_into(img: &RgbImage, norm: &Normalization, out: &mut [f32]) {
    let plane = img.width() as usize * img.height() as usize;
    assert_eq!(out.len(), 3 * plane, "to_chw_into: wrong buffer size");
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    let px = img.as_raw().chunks_exact(3);
    for (((px, r), g), b) in px.zip(r).zip(g).zip(b) {
        *r = (px[0] as f32 / 255.0 - norm.mean[0]) / norm.std[0];
        *g = (px[1] as f32 / 255.0 - norm.mean[1]) / norm.std[1];
        *b = (px[2] as f32 / 255.0 - norm.mean[2]) / norm.std[2];
    }
}

/// Downscales a CHW buffer to `out_h`×`out_w` as PyTorch's `F.interpolate(x, size=...)`
/// does with its default `mode="nearest"`: source index `floor(dst · in/out)` in `f32`,
/// with the exact shortcuts PyTorch takes for equal and doubled sizes. `src` holds
/// `channels·height·width` values.
pub fn resize_nearest_chw(
    src: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f32> {
    let index = |dst: usize, in_len: usize, out_len: usize| -> usize {
        if out_len == in_len {
            dst
        } else if out_len == 2 * in_len {
            dst >> 1
        } else {
            let scale = in_len as f32 / out_len as f32;
            (((dst as f32) * scale).floor() as usize).min(in_len.saturating_sub(1))
        }
    };
    let xs: Vec<usize> = (0..out_w).map(|x| index(x, width, out_w)).collect();
    let mut out = Vec::with_capacity(channels * out_h * out_w);
    for c in 0..channels {
        let plane = &src[c * height * width..(c + 1) * height * width];
        for y in 0..out_h {
            let sy = index(y, height, out_h);
            let row = &plane[sy * width..(sy + 1) * width];
            out.extend(xs.iter().map(|&sx| row[sx]));
        }
    }
    out
}

/// The rotation angles of `n` test-time transforms: `i·360/n` (DifferNet's evaluation script).
pub fn fixed_angles(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 * 360.0 / n as f64).collect()
}

/// `n` seeded rotation angles, uniform in `[-180, 180)` (torchvision's `RandomRotation(180)`).
pub fn random_angles(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-180.0..180.0)).collect()
}

/// One image through DifferNet's pipeline at several scales: resize to `sizes[0]`, rotate by
/// `degrees`, normalise, then nearest-downscale the normalised buffer to each further size.
/// Returns one CHW buffer per size.
pub fn differnet_views(
    img: &RgbImage,
    sizes: &[u32],
    degrees: f64,
    norm: &Normalization,
) -> Vec<Vec<f32>> {
    let Some(&first) = sizes.first() else {
        return Vec::new();
    };
    let base = to_chw(&rotate_nearest(&resize_square(img, first), degrees), norm);
    let s0 = first as usize;
    sizes
        .iter()
        .map(|&s| {
            let s = s as usize;
            if s == s0 {
                base.clone()
            } else {
                resize_nearest_chw(&base, 3, s0, s0, s, s)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
