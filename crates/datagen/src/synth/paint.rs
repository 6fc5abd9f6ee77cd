//! Small raster toolkit for the generated stand-ins: float canvases, seeded value noise,
//! antialiased shapes, coverage masks and moment matching.

use image::{DynamicImage, GrayImage, ImageBuffer, Luma, Rgb};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A `w`×`h` image of `c` channels (1 or 3) with values in `[0, 1]`, row-major, interleaved.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    pub c: usize,
    pub px: Vec<f32>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, c: usize, fill: &[f32]) -> Self {
        let mut px = Vec::with_capacity(w * h * c);
        for _ in 0..w * h {
            px.extend_from_slice(&fill[..c]);
        }
        Canvas { w, h, c, px }
    }

    /// Fills every pixel from `f(x, y) -> colour` (colour has `c` or more entries).
    pub fn fill_with(&mut self, mut f: impl FnMut(usize, usize) -> [f32; 3]) {
        let c = self.c;
        for y in 0..self.h {
            for x in 0..self.w {
                let v = f(x, y);
                let i = (y * self.w + x) * c;
                self.px[i..i + c].copy_from_slice(&v[..c]);
            }
        }
    }

    pub fn get(&self, x: usize, y: usize) -> [f32; 3] {
        let i = (y * self.w + x) * self.c;
        if self.c == 1 {
            let v = self.px[i];
            [v, v, v]
        } else {
            [self.px[i], self.px[i + 1], self.px[i + 2]]
        }
    }

    pub fn set(&mut self, x: usize, y: usize, v: [f32; 3]) {
        let i = (y * self.w + x) * self.c;
        self.px[i..i + self.c].copy_from_slice(&v[..self.c]);
    }

    /// Alpha-blends `colour` over pixel `(x, y)`.
    pub fn blend(&mut self, x: usize, y: usize, colour: [f32; 3], alpha: f32) {
        if alpha <= 0.0 {
            return;
        }
        let a = alpha.min(1.0);
        let i = (y * self.w + x) * self.c;
        for (v, c) in self.px[i..i + self.c].iter_mut().zip(colour) {
            *v = *v * (1.0 - a) + c * a;
        }
    }

    /// Luminance (gray value) at a pixel.
    pub fn luma(&self, x: usize, y: usize) -> f32 {
        let v = self.get(x, y);
        if self.c == 1 {
            v[0]
        } else {
            0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]
        }
    }

    /// Per-channel mean and standard deviation.
    pub fn moments(&self) -> Vec<(f64, f64)> {
        let n = (self.w * self.h) as f64;
        (0..self.c)
            .map(|k| {
                let (mut s, mut s2) = (0f64, 0f64);
                for v in self.px.iter().skip(k).step_by(self.c) {
                    let v = *v as f64;
                    s += v;
                    s2 += v * v;
                }
                let m = s / n;
                (m, (s2 / n - m * m).max(0.0).sqrt())
            })
            .collect()
    }

    /// Applies a per-channel affine map so that mean and std become `target`'s.
    pub fn match_moments(&mut self, target: &[(f64, f64)]) {
        let now = self.moments();
        let c = self.c;
        for k in 0..c {
            let (m0, s0) = now[k];
            let (m1, s1) = target[k];
            let a = if s0 > 1e-6 { s1 / s0 } else { 1.0 };
            for v in self.px.iter_mut().skip(k).step_by(c) {
                *v = ((*v as f64 - m0) * a + m1) as f32;
            }
        }
    }

    /// Brightness/contrast jitter of the whole image: `(v − 0.5)·contrast + 0.5 + offset`.
    pub fn photometric(&mut self, contrast: f32, offset: f32, tint: [f32; 3]) {
        let c = self.c;
        for (i, v) in self.px.iter_mut().enumerate() {
            let k = i % c;
            let t = if c == 1 { 0.0 } else { tint[k] };
            *v = (*v - 0.5) * contrast + 0.5 + offset + t;
        }
    }

    /// Adds independent Gaussian-like pixel noise (sum of uniforms).
    pub fn add_noise(&mut self, rng: &mut ChaCha8Rng, sigma: f32) {
        for v in self.px.iter_mut() {
            let n: f32 = rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5;
            *v += n * sigma * 2.0;
        }
    }

    /// Separable 3-tap box blur, `passes` times (optics of a real camera).
    pub fn blur(&mut self, passes: usize) {
        let (w, h, c) = (self.w, self.h, self.c);
        let mut tmp = self.px.clone();
        for _ in 0..passes {
            for y in 0..h {
                for x in 0..w {
                    let (x0, x1) = (x.saturating_sub(1), (x + 1).min(w - 1));
                    for k in 0..c {
                        let s = self.px[(y * w + x0) * c + k]
                            + self.px[(y * w + x) * c + k]
                            + self.px[(y * w + x1) * c + k];
                        tmp[(y * w + x) * c + k] = s / 3.0;
                    }
                }
            }
            for y in 0..h {
                let (y0, y1) = (y.saturating_sub(1), (y + 1).min(h - 1));
                for x in 0..w {
                    for k in 0..c {
                        let s = tmp[(y0 * w + x) * c + k]
                            + tmp[(y * w + x) * c + k]
                            + tmp[(y1 * w + x) * c + k];
                        self.px[(y * w + x) * c + k] = s / 3.0;
                    }
                }
            }
        }
    }

    /// Rounds to 8 bits: gray for 1 channel, RGB for 3.
    pub fn to_image(&self) -> DynamicImage {
        let q = |v: f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
        let (w, h) = (self.w as u32, self.h as u32);
        if self.c == 1 {
            DynamicImage::ImageLuma8(ImageBuffer::from_fn(w, h, |x, y| {
                Luma([q(self.px[y as usize * self.w + x as usize])])
            }))
        } else {
            DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
                let v = self.get(x as usize, y as usize);
                Rgb([q(v[0]), q(v[1]), q(v[2])])
            }))
        }
    }
}

/// Per-pixel coverage in `[0, 1]` of a defect (or an object).
#[derive(Clone, Debug)]
pub struct Coverage {
    pub w: usize,
    pub h: usize,
    pub v: Vec<f32>,
}

impl Coverage {
    pub fn new(w: usize, h: usize) -> Self {
        Coverage {
            w,
            h,
            v: vec![0.0; w * h],
        }
    }

    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.v[y * self.w + x]
    }

    pub fn max_at(&mut self, x: usize, y: usize, a: f32) {
        let i = y * self.w + x;
        self.v[i] = self.v[i].max(a);
    }

    /// Binary mask (0/255), a pixel is in when its coverage is at least `threshold`.
    pub fn to_mask(&self, threshold: f32) -> GrayImage {
        GrayImage::from_fn(self.w as u32, self.h as u32, |x, y| {
            Luma([if self.at(x as usize, y as usize) >= threshold {
                255
            } else {
                0
            }])
        })
    }

    pub fn area(&self, threshold: f32) -> usize {
        self.v.iter().filter(|&&a| a >= threshold).count()
    }
}

/// Marks as defective every pixel where `after` differs from `before` by more than `eps`.
pub fn diff_coverage(before: &Canvas, after: &Canvas, eps: f32) -> Coverage {
    let mut cov = Coverage::new(before.w, before.h);
    for y in 0..before.h {
        for x in 0..before.w {
            let (a, b) = (before.get(x, y), after.get(x, y));
            let d = (0..before.c)
                .map(|k| (a[k] - b[k]).abs())
                .fold(0.0, f32::max);
            if d > eps {
                cov.v[y * before.w + x] = 1.0;
            }
        }
    }
    cov
}

/// Seeded lattice value noise in `[0, 1]`, smooth between integer lattice points.
#[derive(Clone, Copy, Debug)]
pub struct Noise {
    pub seed: u64,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Noise {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Noise { seed: rng.random() }
    }

    fn lattice(&self, ix: i64, iy: i64) -> f32 {
        let h =
            mix64(self.seed ^ mix64((ix as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (iy as u64)));
        (h >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Value noise at `(x, y)` in lattice units.
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let (fx, fy) = (x.floor(), y.floor());
        let (ix, iy) = (fx as i64, fy as i64);
        let (tx, ty) = (x - fx, y - fy);
        let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
        let a = self.lattice(ix, iy);
        let b = self.lattice(ix + 1, iy);
        let c = self.lattice(ix, iy + 1);
        let d = self.lattice(ix + 1, iy + 1);
        let top = a + (b - a) * sx;
        let bottom = c + (d - c) * sx;
        top + (bottom - top) * sy
    }

    /// Fractal sum of `octaves` octaves, normalised to `[0, 1]`.
    pub fn fbm(&self, x: f32, y: f32, octaves: usize) -> f32 {
        let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
        for o in 0..octaves {
            let shifted = Noise {
                seed: self
                    .seed
                    .wrapping_add((o as u64).wrapping_mul(0x5851_F42D_4C95_7F2D)),
            };
            sum += amp * shifted.at(x * f, y * f);
            norm += amp;
            amp *= 0.5;
            f *= 2.0;
        }
        sum / norm
    }
}

/// `c` with each channel moved by a uniform draw in `[-amp, amp]`.
pub fn jitter3(rng: &mut ChaCha8Rng, c: [f32; 3], amp: f32) -> [f32; 3] {
    [
        c[0] + rng.random_range(-amp..=amp),
        c[1] + rng.random_range(-amp..=amp),
        c[2] + rng.random_range(-amp..=amp),
    ]
}

/// Coverage of a pixel centre at distance `d` from an edge at `r` (antialiased step).
pub fn soft_inside(d: f32, r: f32) -> f32 {
    (r - d + 0.5).clamp(0.0, 1.0)
}

/// Distance from point `p` to segment `a`–`b`.
pub fn segment_distance(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - qx).powi(2) + (p.1 - qy).powi(2)).sqrt()
}

/// Pixel bounds (clamped) of a box around `(cx, cy)` with half-size `r`.
pub fn bbox(cx: f32, cy: f32, r: f32, w: usize, h: usize) -> (usize, usize, usize, usize) {
    let x0 = (cx - r - 1.0).floor().max(0.0) as usize;
    let y0 = (cy - r - 1.0).floor().max(0.0) as usize;
    let x1 = ((cx + r + 2.0).ceil().max(0.0) as usize).min(w);
    let y1 = ((cy + r + 2.0).ceil().max(0.0) as usize).min(h);
    (x0, y0, x1, y1)
}

/// Draws a polyline of width `width` with colour `colour` and opacity `alpha`, recording
/// coverage.
pub fn draw_polyline(
    canvas: &mut Canvas,
    cov: &mut Coverage,
    pts: &[(f32, f32)],
    width: f32,
    colour: [f32; 3],
    alpha: f32,
) {
    let half = width / 2.0;
    let mut acc = Coverage::new(canvas.w, canvas.h);
    for seg in pts.windows(2) {
        let (a, b) = (seg[0], seg[1]);
        let (cx, cy) = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
        let r = ((a.0 - b.0).abs().max((a.1 - b.1).abs())) / 2.0 + half + 1.0;
        let (x0, y0, x1, y1) = bbox(cx, cy, r, canvas.w, canvas.h);
        for y in y0..y1 {
            for x in x0..x1 {
                let d = segment_distance((x as f32 + 0.5, y as f32 + 0.5), a, b);
                acc.max_at(x, y, soft_inside(d, half));
            }
        }
    }
    for y in 0..canvas.h {
        for x in 0..canvas.w {
            let a = acc.at(x, y);
            if a > 0.0 {
                canvas.blend(x, y, colour, a * alpha);
                cov.max_at(x, y, a);
            }
        }
    }
}

/// A random-walk polyline (cracks, twigs) from `start`, `steps` steps of `step` pixels,
/// direction `angle` (radians) wandering by up to `wander` per step.
pub fn random_walk(
    rng: &mut ChaCha8Rng,
    start: (f32, f32),
    angle: f32,
    steps: usize,
    step: f32,
    wander: f32,
) -> Vec<(f32, f32)> {
    let mut pts = vec![start];
    let (mut x, mut y, mut a) = (start.0, start.1, angle);
    for _ in 0..steps {
        a += rng.random_range(-wander..=wander);
        x += a.cos() * step;
        y += a.sin() * step;
        pts.push((x, y));
    }
    pts
}

/// An irregular blob: inside where `dist/r < 1 + amp·(noise − 0.5)`; returns coverage.
pub fn blob(w: usize, h: usize, centre: (f32, f32), r: f32, noise: Noise, amp: f32) -> Coverage {
    let mut cov = Coverage::new(w, h);
    let (x0, y0, x1, y1) = bbox(centre.0, centre.1, r * (1.0 + amp), w, h);
    let freq = 3.0 / r.max(1.0);
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let d = ((px - centre.0).powi(2) + (py - centre.1).powi(2)).sqrt();
            let edge = r * (1.0 + amp * (noise.fbm(px * freq, py * freq, 2) - 0.5) * 2.0);
            cov.v[y * w + x] = soft_inside(d, edge);
        }
    }
    cov
}

/// `a + (b − a)·t` per channel.
pub fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

pub fn scale3(a: [f32; 3], s: f32) -> [f32; 3] {
    [a[0] * s, a[1] * s, a[2] * s]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn moment_matching_restores_mean_and_std() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut c = Canvas::new(16, 16, 3, &[0.5, 0.4, 0.3]);
        c.add_noise(&mut rng, 0.1);
        let target = c.moments();
        for y in 4..8 {
            for x in 4..8 {
                c.set(x, y, [0.0, 0.0, 0.0]);
            }
        }
        c.match_moments(&target);
        for (a, b) in c.moments().iter().zip(&target) {
            assert!((a.0 - b.0).abs() < 1e-5 && (a.1 - b.1).abs() < 1e-5);
        }
    }

    #[test]
    fn noise_is_seeded_and_bounded() {
        let n = Noise { seed: 9 };
        let a = n.fbm(3.3, 7.1, 4);
        assert_eq!(a, Noise { seed: 9 }.fbm(3.3, 7.1, 4));
        for i in 0..200 {
            let v = n.fbm(i as f32 * 0.37, i as f32 * 0.11, 3);
            assert!((0.0..=1.0).contains(&v));
        }
    }
}
