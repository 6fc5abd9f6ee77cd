//! `synthetic-insplad`: power-line components as non-square JPEG crops on cluttered
//! backgrounds (sky, clouds, vegetation, cables, towers), no masks.
//!
//! The background varies far more between images than the object does, which is what gives
//! attention something to do; defects sit on the object only.
//!
//! - `glass-insulator` (tall crops): a string of glass discs; defect `missing-cap` (one disc
//!   of the string is gone).
//! - `lightning-rod-suspension` (wide crops): a clamp with bolts, a rod and a conductor;
//!   defect `rust`.
//! - `vari-grip` (wide crops): helical armour rods around a conductor; defects `bird-nest`,
//!   `rust`.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::paint::{
    Canvas, Coverage, Noise, blob, diff_coverage, draw_polyline, jitter3, lerp3, random_walk,
    scale3, segment_distance, soft_inside,
};
use super::{Category, Ctx, Look, Rendered, finish};

pub(super) const CATEGORIES: &[Category] = &[
    Category {
        name: "glass-insulator",
        channels: 3,
        defects: &["missing-cap"],
        jpeg: true,
        render: glass_insulator,
    },
    Category {
        name: "lightning-rod-suspension",
        channels: 3,
        defects: &["rust"],
        jpeg: true,
        render: lightning_rod,
    },
    Category {
        name: "vari-grip",
        channels: 3,
        defects: &["bird-nest", "rust"],
        jpeg: true,
        render: vari_grip,
    },
];

const LOOK: Look = Look {
    contrast: 0.1,
    offset: 0.05,
    tint: 0.03,
    noise: 0.01,
    blur: 1,
};

/// A crop size around `size` with aspect `aspect` (width / height), each side jittered.
fn crop(rng: &mut ChaCha8Rng, size: usize, aspect: (f32, f32)) -> (usize, usize) {
    let a = rng.random_range(aspect.0..aspect.1);
    let h = size as f32 * rng.random_range(0.9..1.1);
    let w = (h * a).round().max(8.0) as usize;
    (w, h.round().max(8.0) as usize)
}

/// Sky, clouds, vegetation under a wavy horizon, cables and sometimes a tower.
fn clutter(rng: &mut ChaCha8Rng, w: usize, h: usize) -> Canvas {
    let (wf, hf) = (w as f32, h as f32);
    let horizon = rng.random_range(-0.3f32..1.3);
    let overcast = rng.random_bool(0.3);
    let mut top = jitter3(rng, [0.42, 0.58, 0.84], 0.05);
    let mut bottom = jitter3(rng, [0.78, 0.84, 0.92], 0.04);
    if overcast {
        top = lerp3(top, [0.68, 0.7, 0.72], 0.7);
        bottom = lerp3(bottom, [0.8, 0.81, 0.82], 0.7);
    }
    let cloud_amount = rng.random_range(0.0f32..0.8);
    let cloud = Noise::new(rng);
    let wave = Noise::new(rng);
    let veg_mix = Noise::new(rng);
    let leaves = Noise::new(rng);
    let veg = [
        jitter3(rng, [0.16, 0.3, 0.1], 0.03),
        jitter3(rng, [0.36, 0.4, 0.16], 0.03),
        jitter3(rng, [0.42, 0.32, 0.2], 0.03),
        jitter3(rng, [0.6, 0.55, 0.36], 0.03),
    ];
    let leaf_scale = rng.random_range(1.5f32..4.0);
    let mut canvas = Canvas::new(w, h, 3, &[0.0; 3]);
    canvas.fill_with(|x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let hy = horizon * hf + 0.18 * hf * (wave.fbm(xf / (0.35 * wf), 0.5, 3) - 0.5);
        let sky = {
            let g = lerp3(top, bottom, (yf / hf).clamp(0.0, 1.0));
            let c = (cloud.fbm(xf / 60.0, yf / 30.0, 4) - 0.45).max(0.0) * 2.2 * cloud_amount;
            lerp3(g, [0.95, 0.95, 0.96], c.min(1.0))
        };
        let t = veg_mix.fbm(xf / 45.0, yf / 45.0, 3) * 3.0;
        let i = (t.floor() as usize).min(2);
        let base = lerp3(veg[i], veg[i + 1], t - i as f32);
        let leaf = 0.65 + 0.7 * leaves.fbm(xf / leaf_scale, yf / leaf_scale, 2);
        let vegetation = scale3(base, leaf);
        let a = ((yf - hy) / 3.0).clamp(0.0, 1.0);
        lerp3(sky, vegetation, a)
    });
    // Cables: catenaries across the crop.
    let mut scratch = Coverage::new(w, h);
    for _ in 0..rng.random_range(0..=3) {
        let (y0, y1) = (rng.random_range(0.0..hf), rng.random_range(0.0..hf));
        let sag = rng.random_range(0.0..0.2) * hf;
        let pts: Vec<(f32, f32)> = (0..=24)
            .map(|i| {
                let t = i as f32 / 24.0;
                (t * wf, y0 + (y1 - y0) * t + sag * 4.0 * t * (1.0 - t))
            })
            .collect();
        let width = rng.random_range(1.2..2.8) * (wf.min(hf) / 256.0).max(0.5);
        let shade = rng.random_range(0.06..0.2);
        draw_polyline(&mut canvas, &mut scratch, &pts, width, [shade; 3], 0.9);
    }
    // A distant lattice tower.
    if rng.random_bool(0.25) {
        let x0 = rng.random_range(0.0..wf);
        let spread = rng.random_range(0.05..0.15) * wf;
        let grey = [0.45, 0.45, 0.47];
        let lw = (wf.min(hf) / 160.0).max(1.0);
        let legs = [
            [(x0 - spread, hf), (x0 - spread * 0.3, 0.0)],
            [(x0 + spread, hf), (x0 + spread * 0.3, 0.0)],
        ];
        for leg in legs {
            draw_polyline(&mut canvas, &mut scratch, &leg, lw, grey, 0.8);
        }
        let mut zig = Vec::new();
        for k in 0..=10 {
            let yy = hf * (1.0 - k as f32 / 10.0);
            let half = spread * (1.0 - 0.7 * k as f32 / 10.0);
            zig.push((if k % 2 == 0 { x0 - half } else { x0 + half }, yy));
        }
        draw_polyline(&mut canvas, &mut scratch, &zig, lw * 0.8, grey, 0.7);
    }
    canvas
}

/// Metal shading: light from the upper left, with a little grain.
fn metal(colour: [f32; 3], nx: f32, grain: f32) -> [f32; 3] {
    scale3(colour, (0.7 + 0.35 * nx + 0.12 * (grain - 0.5)).max(0.1))
}

/// Rust stains on the object: a few mottled orange-brown blobs, only where `obj` covers.
fn rust(
    canvas: &mut Canvas,
    obj: &Coverage,
    rng: &mut ChaCha8Rng,
    anchors: &[(f32, f32)],
    r: f32,
) -> Coverage {
    let (w, h) = (canvas.w, canvas.h);
    let mut cov = Coverage::new(w, h);
    let mottle = Noise::new(rng);
    let n = rng.random_range(1..=3).min(anchors.len().max(1));
    for _ in 0..n {
        let c = anchors[rng.random_range(0..anchors.len())];
        let c = (
            c.0 + rng.random_range(-0.5..0.5) * r,
            c.1 + rng.random_range(-0.5..0.5) * r,
        );
        let rr = r * rng.random_range(0.6..1.0);
        let b = blob(w, h, c, rr, Noise::new(rng), 0.5);
        for y in 0..h {
            for x in 0..w {
                let a = b.at(x, y) * obj.at(x, y);
                if a > 0.0 {
                    let m = mottle.fbm(x as f32 / 3.0, y as f32 / 3.0, 2);
                    let p = canvas.get(x, y);
                    let l = (p[0] + p[1] + p[2]) / 3.0;
                    let colour = [0.45 + 0.5 * l * m, 0.22 + 0.3 * l * m, 0.08 + 0.1 * m];
                    canvas.blend(x, y, colour, a * (0.55 + 0.4 * m));
                    cov.max_at(x, y, a);
                }
            }
        }
    }
    cov
}

struct Insulator {
    centre: (f32, f32),
    tilt: f32,
    discs: usize,
    spacing: f32,
    rx: f32,
    ry: f32,
    glass: [f32; 3],
    cap: [f32; 3],
    grain: Noise,
    missing: Option<usize>,
}

impl Insulator {
    fn draw(&self, canvas: &mut Canvas, obj: &mut Coverage) {
        let (st, ct) = self.tilt.sin_cos();
        let len = self.spacing * self.discs as f32;
        for y in 0..canvas.h {
            for x in 0..canvas.w {
                let (dx, dy) = (
                    x as f32 + 0.5 - self.centre.0,
                    y as f32 + 0.5 - self.centre.1,
                );
                let u = ct * dx + st * dy;
                let v = -st * dx + ct * dy + len / 2.0;
                if v < -self.ry * 2.0 || v > len + self.ry * 2.0 || u.abs() > self.rx * 1.2 {
                    continue;
                }
                let grain = self.grain.fbm(x as f32 / 5.0, y as f32 / 5.0, 2);
                // The rod and caps through the whole string.
                let rod_w = self.rx * 0.07;
                let mut colour = None;
                let mut a = soft_inside(u.abs(), rod_w)
                    * soft_inside((v - len / 2.0).abs(), len / 2.0 + self.ry);
                if a > 0.0 {
                    colour = Some(metal(self.cap, -u / rod_w, grain));
                }
                let k =
                    ((v / self.spacing).floor() as i64).clamp(0, self.discs as i64 - 1) as usize;
                let local = v - (k as f32 + 0.5) * self.spacing;
                // Cap (metal) above each disc.
                let cap_a = soft_inside(u.abs(), self.rx * 0.2)
                    * soft_inside((local + self.ry * 0.9).abs(), self.ry * 0.55);
                if cap_a > 0.0 && Some(k) != self.missing {
                    a = a.max(cap_a);
                    colour = Some(metal(self.cap, -u / (self.rx * 0.2), grain));
                }
                // The glass disc, an ellipse seen slightly from below.
                let e = (u / self.rx).powi(2) + (local / self.ry).powi(2);
                let disc_a = soft_inside(e.sqrt() * self.ry, self.ry);
                if disc_a > 0.0 && Some(k) != self.missing {
                    let rim = e.sqrt();
                    let highlight =
                        (-((u / self.rx + 0.45).powi(2) + (local / self.ry + 0.3).powi(2)) * 18.0)
                            .exp();
                    let shade =
                        0.75 + 0.35 * (1.0 - rim) - 0.15 * (u / self.rx) + 0.1 * (grain - 0.5);
                    let c = lerp3(
                        scale3(self.glass, shade),
                        [0.92, 0.95, 0.95],
                        highlight * 0.8,
                    );
                    colour = Some(match colour {
                        Some(under) if disc_a < 1.0 => lerp3(under, c, disc_a),
                        _ => c,
                    });
                    a = a.max(disc_a);
                }
                if let Some(c) = colour {
                    canvas.blend(x, y, c, a);
                    obj.max_at(x, y, a);
                }
            }
        }
    }
}

fn glass_insulator(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let (w, h) = crop(rng, ctx.size, (0.5, 0.68));
    let background = clutter(rng, w, h);
    let (wf, hf) = (w as f32, h as f32);
    let discs = 7;
    let mut ins = Insulator {
        centre: (
            wf / 2.0 + wf * rng.random_range(-0.04..0.04),
            hf / 2.0 + hf * rng.random_range(-0.03..0.03),
        ),
        tilt: rng.random_range(-0.07..0.07),
        discs,
        spacing: hf * 0.8 / discs as f32 * rng.random_range(0.96..1.04),
        rx: wf * 0.36 * rng.random_range(0.95..1.05),
        ry: hf * 0.8 / discs as f32 * 0.36,
        glass: jitter3(rng, [0.28, 0.52, 0.48], 0.03),
        cap: jitter3(rng, [0.55, 0.55, 0.56], 0.03),
        grain: Noise::new(rng),
        missing: None,
    };
    let mut canvas = background.clone();
    let mut obj = Coverage::new(w, h);
    ins.draw(&mut canvas, &mut obj);
    let Some(_) = defect else {
        return finish(canvas, None, None, rng, &LOOK);
    };
    let target = canvas.clone();
    ins.missing = Some(rng.random_range(1..discs - 1));
    let mut broken = background;
    ins.draw(&mut broken, &mut Coverage::new(w, h));
    let cov = diff_coverage(&canvas, &broken, 0.04);
    finish(broken, Some(target), Some(cov), rng, &LOOK)
}

fn lightning_rod(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let (w, h) = crop(rng, ctx.size, (1.2, 1.5));
    let mut canvas = clutter(rng, w, h);
    let (wf, hf) = (w as f32, h as f32);
    let c = (
        wf / 2.0 + wf * rng.random_range(-0.04..0.04),
        hf * 0.58 + hf * rng.random_range(-0.04..0.04),
    );
    let steel = jitter3(rng, [0.6, 0.61, 0.63], 0.03);
    let conductor = jitter3(rng, [0.42, 0.42, 0.44], 0.03);
    let grain = Noise::new(rng);
    let rod_angle = -rng.random_range(0.5f32..0.8);
    let rod_len = wf * 0.42;
    let rod_end = (
        c.0 + rod_angle.cos() * rod_len,
        c.1 + rod_angle.sin() * rod_len,
    );
    let (body_w, body_h) = (wf * 0.2, hf * 0.2);
    let bolts = [(c.0 - body_w * 0.5, c.1), (c.0 + body_w * 0.5, c.1)];
    let cond_y = c.1 + body_h * 0.1;
    let cond_r = hf * 0.045;
    let rod_r = hf * 0.03;
    let mut obj = Coverage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let g = grain.fbm(px / 4.0, py / 4.0, 2);
            let mut colour = None;
            let mut a = 0f32;
            // Conductor, left to right.
            let dc = (py - cond_y).abs();
            let ac = soft_inside(dc, cond_r);
            if ac > 0.0 {
                let strand = 0.08 * ((px + py * 0.8) / (cond_r * 0.5)).sin();
                colour = Some(scale3(
                    metal(conductor, -(py - cond_y) / cond_r, g),
                    1.0 + strand,
                ));
                a = ac;
            }
            // Rod.
            let dr = segment_distance((px, py), c, rod_end);
            let ar = soft_inside(dr, rod_r);
            if ar > 0.0 {
                colour = Some(metal(steel, 0.3, g));
                a = a.max(ar);
            }
            // Clamp body: a rounded box.
            let (qx, qy) = ((px - c.0).abs() - body_w, (py - c.1).abs() - body_h * 0.5);
            let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt() + qx.max(qy).min(0.0);
            let ab = soft_inside(outside, body_h * 0.15);
            if ab > 0.0 {
                colour = Some(metal(steel, -(py - c.1) / body_h, g));
                a = a.max(ab);
            }
            // Bolts.
            for b in bolts {
                let d = ((px - b.0).powi(2) + (py - b.1).powi(2)).sqrt();
                let ab = soft_inside(d, body_h * 0.3);
                if ab > 0.0 {
                    let ring = if d > body_h * 0.18 { 0.8 } else { 1.1 };
                    colour = Some(scale3(metal(steel, -(py - b.1) / (body_h * 0.3), g), ring));
                    a = a.max(ab);
                }
            }
            if let Some(col) = colour {
                canvas.blend(x, y, col, a);
                obj.max_at(x, y, a);
            }
        }
    }
    let Some(_) = defect else {
        return finish(canvas, None, None, rng, &LOOK);
    };
    let target = canvas.clone();
    let rod_mid = ((c.0 + rod_end.0) / 2.0, (c.1 + rod_end.1) / 2.0);
    let anchors = vec![bolts[0], bolts[1], c, rod_mid];
    let cov = rust(&mut canvas, &obj, rng, &anchors, body_h * 0.7);
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}

fn vari_grip(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let (w, h) = crop(rng, ctx.size, (1.0, 1.35));
    let mut canvas = clutter(rng, w, h);
    let (wf, hf) = (w as f32, h as f32);
    let a0 = (wf * 0.02, hf * (0.68 + rng.random_range(-0.06..0.06)));
    let a1 = (wf * 0.98, hf * (0.32 + rng.random_range(-0.06..0.06)));
    let r = hf * 0.085 * rng.random_range(0.95..1.05);
    let silver = jitter3(rng, [0.72, 0.73, 0.74], 0.03);
    let pitch = r * rng.random_range(1.6..2.0);
    let phase = rng.random_range(0.0..2.0 * PI);
    let grain = Noise::new(rng);
    let (dx, dy) = (a1.0 - a0.0, a1.1 - a0.1);
    let len = (dx * dx + dy * dy).sqrt();
    let (ux, uy) = (dx / len, dy / len);
    let mut obj = Coverage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let d = segment_distance((px, py), a0, a1);
            let a = soft_inside(d, r);
            if a <= 0.0 {
                continue;
            }
            let along = (px - a0.0) * ux + (py - a0.1) * uy;
            let across = -(px - a0.0) * uy + (py - a0.1) * ux;
            let n = (across / r).clamp(-1.0, 1.0);
            let helix = (2.0 * PI * (along + across * 0.9) / pitch + phase).sin();
            let g = grain.fbm(px / 4.0, py / 4.0, 2);
            let shade = 0.8 - 0.35 * n + 0.12 * helix + 0.1 * (g - 0.5);
            canvas.blend(x, y, scale3(silver, shade.max(0.1)), a);
            obj.max_at(x, y, a);
        }
    }
    let Some(defect) = defect else {
        return finish(canvas, None, None, rng, &LOOK);
    };
    let target = canvas.clone();
    let t = rng.random_range(0.25..0.75);
    let at = (a0.0 + dx * t, a0.1 + dy * t);
    let cov = if defect == "rust" {
        let anchors: Vec<(f32, f32)> = (0..5)
            .map(|k| {
                let tt = (t + (k as f32 - 2.0) * 0.06).clamp(0.05, 0.95);
                (a0.0 + dx * tt, a0.1 + dy * tt)
            })
            .collect();
        rust(&mut canvas, &obj, rng, &anchors, r * 0.9)
    } else {
        // "bird-nest": a dense tangle of twigs sitting on the grip.
        let mut cov = Coverage::new(w, h);
        let radius = hf * rng.random_range(0.1..0.14);
        let twig_w = (hf / 180.0).max(1.0);
        for _ in 0..70 {
            let ang = rng.random_range(0.0..2.0 * PI);
            let rr = radius * rng.random::<f32>().sqrt();
            let start = (at.0 + ang.cos() * rr, at.1 + ang.sin() * rr * 0.7 - r * 0.3);
            let heading = rng.random_range(0.0..2.0 * PI);
            let pts = random_walk(rng, start, heading, 5, radius * 0.18, 0.7);
            let tone = rng.random_range(0.55..1.1);
            let colour = scale3([0.42, 0.31, 0.18], tone);
            draw_polyline(&mut canvas, &mut cov, &pts, twig_w, colour, 0.95);
        }
        cov
    };
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}
