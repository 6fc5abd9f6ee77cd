//! `synthetic-mvtec`: textures and objects in MVTec AD's layout, with masks.
//!
//! - `fabric` (RGB texture): a woven pattern; defects `color` (stain), `hole`, `thread`.
//! - `grid` (1-channel texture, like MVTec's grid): a wire mesh; defects `broken`, `bent`,
//!   `glue`.
//! - `tile` (RGB texture): terrazzo with random chips; defects `crack`, `cut_paste`, `oil`.
//! - `washer` (RGB object): a machined ring with four holes on a dark table; defects
//!   `scratch`, `notch` (a missing piece of the rim), `stain`.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::paint::{
    Canvas, Coverage, Noise, blob, diff_coverage, draw_polyline, lerp3, random_walk, scale3,
    soft_inside,
};
use super::{Category, Ctx, Look, Rendered, finish};

pub(super) const CATEGORIES: &[Category] = &[
    Category {
        name: "fabric",
        channels: 3,
        defects: &["color", "hole", "thread"],
        jpeg: false,
        render: fabric,
    },
    Category {
        name: "grid",
        channels: 1,
        defects: &["bent", "broken", "glue"],
        jpeg: false,
        render: grid,
    },
    Category {
        name: "tile",
        channels: 3,
        defects: &["crack", "cut_paste", "oil"],
        jpeg: false,
        render: tile,
    },
    Category {
        name: "washer",
        channels: 3,
        defects: &["notch", "scratch", "stain"],
        jpeg: false,
        render: washer,
    },
];

const LOOK: Look = Look {
    contrast: 0.06,
    offset: 0.035,
    tint: 0.015,
    noise: 0.012,
    blur: 0,
};

fn jitter3(rng: &mut ChaCha8Rng, c: [f32; 3], amp: f32) -> [f32; 3] {
    [
        c[0] + rng.random_range(-amp..=amp),
        c[1] + rng.random_range(-amp..=amp),
        c[2] + rng.random_range(-amp..=amp),
    ]
}

fn rand_point(rng: &mut ChaCha8Rng, s: f32, margin: f32) -> (f32, f32) {
    (
        rng.random_range(margin * s..(1.0 - margin) * s),
        rng.random_range(margin * s..(1.0 - margin) * s),
    )
}

fn fabric(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let s = ctx.size;
    let sf = s as f32;
    let base = jitter3(rng, [0.55, 0.44, 0.31], 0.02);
    let period = sf / 12.0 * rng.random_range(0.96..1.04);
    let theta: f32 = rng.random_range(-0.05..0.05);
    let (phx, phy) = (rng.random_range(0.0..period), rng.random_range(0.0..period));
    let coarse = Noise::new(rng);
    let fine = Noise::new(rng);
    let (st, ct) = theta.sin_cos();
    let mut canvas = Canvas::new(s, s, 3, &[0.0; 3]);
    canvas.fill_with(|x, y| {
        let (dx, dy) = (x as f32 - sf / 2.0, y as f32 - sf / 2.0);
        let u = (ct * dx - st * dy + phx) / period;
        let v = (st * dx + ct * dy + phy) / period;
        let warp_on_top = ((u.floor() + v.floor()) as i64).rem_euclid(2) == 0;
        let prof = if warp_on_top {
            (PI * v.rem_euclid(1.0)).sin()
        } else {
            (PI * u.rem_euclid(1.0)).sin()
        };
        let shade = 0.62
            + 0.3 * prof
            + 0.16 * (coarse.fbm(x as f32 / 18.0, y as f32 / 18.0, 3) - 0.5)
            + 0.08 * (fine.at(x as f32 / 1.7, y as f32 / 1.7) - 0.5);
        let tint = if warp_on_top { 1.0 } else { 0.92 };
        scale3(base, shade * tint)
    });
    let Some(defect) = defect else {
        return finish(canvas, None, None, rng, &LOOK);
    };
    let target = canvas.clone();
    let mut cov = Coverage::new(s, s);
    match defect {
        "color" => {
            let c = rand_point(rng, sf, 0.15);
            let r = sf * rng.random_range(0.05..0.08);
            let b = blob(s, s, c, r, Noise::new(rng), 0.35);
            let shift = [1.3, 0.78, 0.85];
            for y in 0..s {
                for x in 0..s {
                    let a = b.at(x, y);
                    if a > 0.0 {
                        let p = canvas.get(x, y);
                        let stained = [p[0] * shift[0], p[1] * shift[1], p[2] * shift[2]];
                        canvas.blend(x, y, stained, 0.6 * a);
                        cov.max_at(x, y, a);
                    }
                }
            }
        }
        "hole" => {
            let c = rand_point(rng, sf, 0.12);
            let r = sf * rng.random_range(0.03..0.05);
            let b = blob(s, s, c, r, Noise::new(rng), 0.45);
            let dark = scale3(base, 0.25);
            for y in 0..s {
                for x in 0..s {
                    let a = b.at(x, y);
                    if a > 0.0 {
                        canvas.blend(x, y, dark, a);
                        cov.max_at(x, y, a);
                    }
                }
            }
        }
        _ => {
            // "thread": a stray lighter thread lying on the fabric.
            let start = rand_point(rng, sf, 0.2);
            let angle = rng.random_range(0.0..2.0 * PI);
            let pts = random_walk(rng, start, angle, 30, sf * 0.012, 0.18);
            let colour = scale3(base, 1.45);
            draw_polyline(
                &mut canvas,
                &mut cov,
                &pts,
                (sf * 0.011).max(1.5),
                colour,
                0.9,
            );
        }
    }
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}

/// A local displacement of the wires.
#[derive(Clone, Copy)]
struct Bend {
    centre: (f32, f32),
    radius: f32,
    shift: (f32, f32),
}

/// Geometry of one grid image, and the structural defects that change how it is drawn.
struct GridScene {
    period: f32,
    half_width: f32,
    theta: f32,
    phase: (f32, f32),
    wobble: f32,
    shade: Noise,
    bg: Noise,
    /// Bent wires: centre, radius, displacement.
    bend: Option<Bend>,
    /// A broken wire: vertical?, wire index, start and end along the wire (in periods).
    cut: Option<(bool, i64, f32, f32)>,
}

fn draw_grid(scene: &GridScene, s: usize) -> Canvas {
    let sf = s as f32;
    let (st, ct) = scene.theta.sin_cos();
    let mut canvas = Canvas::new(s, s, 1, &[0.0]);
    canvas.fill_with(|x, y| {
        let (mut px, mut py) = (x as f32 + 0.5, y as f32 + 0.5);
        if let Some(b) = scene.bend {
            let (c, r, d) = (b.centre, b.radius, b.shift);
            let w = (-((px - c.0).powi(2) + (py - c.1).powi(2)) / (r * r)).exp();
            px -= d.0 * w;
            py -= d.1 * w;
        }
        let (dx, dy) = (px - sf / 2.0, py - sf / 2.0);
        let u = (ct * dx - st * dy) / scene.period + scene.phase.0;
        let v = (st * dx + ct * dy) / scene.period + scene.phase.1;
        let u = u + scene.wobble * (v * 0.7).sin();
        let v = v + scene.wobble * (u * 0.6).cos();
        let hw = scene.half_width;
        let profile = |t: f32| {
            let d = (t - t.round()).abs();
            (1.0 - (d / hw).powi(2)).max(0.0)
        };
        let mut vert = profile(u);
        let mut horiz = profile(v);
        if let Some((vertical, k, a, b)) = scene.cut {
            if vertical && u.round() as i64 == k && (a..b).contains(&v) {
                vert = 0.0;
            }
            if !vertical && v.round() as i64 == k && (a..b).contains(&u) {
                horiz = 0.0;
            }
        }
        let wire = vert.max(horiz);
        let shade = 0.62 + 0.2 * (scene.shade.fbm(px / 30.0, py / 30.0, 2) - 0.5);
        let bg = 0.2 + 0.12 * (scene.bg.fbm(px / 10.0, py / 10.0, 3) - 0.5);
        let v = bg + (shade + 0.15 * wire - bg) * wire;
        [v, v, v]
    });
    canvas
}

fn grid(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let s = ctx.size;
    let sf = s as f32;
    let period = sf / 9.0 * rng.random_range(0.97..1.03);
    let mut scene = GridScene {
        period,
        half_width: rng.random_range(0.1..0.13),
        theta: rng.random_range(-0.05..0.05),
        phase: (rng.random_range(0.0..1.0), rng.random_range(0.0..1.0)),
        wobble: rng.random_range(0.0..0.03),
        shade: Noise::new(rng),
        bg: Noise::new(rng),
        bend: None,
        cut: None,
    };
    let base = draw_grid(&scene, s);
    let Some(defect) = defect else {
        return finish(base, None, None, rng, &LOOK);
    };
    let target = base.clone();
    let (canvas, cov) = match defect {
        "bent" => {
            let c = rand_point(rng, sf, 0.2);
            let r = period * rng.random_range(0.6..0.9);
            let a = rng.random_range(0.0..2.0 * PI);
            let d = period * rng.random_range(0.22..0.32);
            scene.bend = Some(Bend {
                centre: c,
                radius: r,
                shift: (a.cos() * d, a.sin() * d),
            });
            let bent = draw_grid(&scene, s);
            let cov = diff_coverage(&base, &bent, 0.08);
            (bent, cov)
        }
        "broken" => {
            let vertical = rng.random_bool(0.5);
            let k = rng.random_range(-3i64..=3);
            let start = rng.random_range(-3.0f32..2.0).floor() + rng.random_range(0.15..0.3);
            let len = rng.random_range(0.4..0.65);
            scene.cut = Some((vertical, k, start, start + len));
            let broken = draw_grid(&scene, s);
            let cov = diff_coverage(&base, &broken, 0.08);
            (broken, cov)
        }
        _ => {
            // "glue": a translucent blob bridging cells.
            let mut canvas = base.clone();
            let mut cov = Coverage::new(s, s);
            let c = rand_point(rng, sf, 0.15);
            let r = sf * rng.random_range(0.05..0.08);
            let b = blob(s, s, c, r, Noise::new(rng), 0.4);
            for y in 0..s {
                for x in 0..s {
                    let a = b.at(x, y);
                    if a > 0.0 {
                        canvas.blend(x, y, [0.5; 3], 0.65 * a);
                        cov.max_at(x, y, a);
                    }
                }
            }
            (canvas, cov)
        }
    };
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}

fn draw_chip(
    canvas: &mut Canvas,
    centre: (f32, f32),
    radii: (f32, f32),
    angle: f32,
    colour: [f32; 3],
) {
    let (sa, ca) = angle.sin_cos();
    let r = radii.0.max(radii.1);
    let (x0, y0, x1, y1) = super::paint::bbox(centre.0, centre.1, r, canvas.w, canvas.h);
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f32 + 0.5 - centre.0, y as f32 + 0.5 - centre.1);
            let (u, v) = (
                (ca * dx + sa * dy) / radii.0,
                (-sa * dx + ca * dy) / radii.1,
            );
            let d = (u * u + v * v).sqrt();
            // Distance to the ellipse edge, approximately, in pixels.
            let a = soft_inside(d * radii.0.min(radii.1), radii.0.min(radii.1));
            canvas.blend(x, y, colour, a);
        }
    }
}

fn tile(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let s = ctx.size;
    let sf = s as f32;
    let ground = jitter3(rng, [0.63, 0.61, 0.57], 0.015);
    let mottle = Noise::new(rng);
    let grain = Noise::new(rng);
    let mut canvas = Canvas::new(s, s, 3, &[0.0; 3]);
    canvas.fill_with(|x, y| {
        let m = 0.12 * (mottle.fbm(x as f32 / 40.0, y as f32 / 40.0, 3) - 0.5)
            + 0.1 * (grain.at(x as f32 / 1.5, y as f32 / 1.5) - 0.5);
        scale3(ground, 1.0 + m)
    });
    let palette = [
        [0.32, 0.31, 0.3],
        [0.86, 0.85, 0.82],
        [0.58, 0.38, 0.32],
        [0.2, 0.2, 0.22],
        [0.5, 0.52, 0.56],
    ];
    for _ in 0..55 {
        let c = (rng.random_range(0.0..sf), rng.random_range(0.0..sf));
        let radii = (
            sf * rng.random_range(0.008..0.03),
            sf * rng.random_range(0.006..0.022),
        );
        let pick = palette[rng.random_range(0..palette.len())];
        let colour = jitter3(rng, pick, 0.04);
        let angle = rng.random_range(0.0..PI);
        draw_chip(&mut canvas, c, radii, angle, colour);
    }
    let Some(defect) = defect else {
        return finish(canvas, None, None, rng, &LOOK);
    };
    let target = canvas.clone();
    let mut cov = Coverage::new(s, s);
    match defect {
        "crack" => {
            let start = rand_point(rng, sf, 0.2);
            let angle = rng.random_range(0.0..2.0 * PI);
            let pts = random_walk(rng, start, angle, 32, sf * 0.009, 0.55);
            draw_polyline(
                &mut canvas,
                &mut cov,
                &pts,
                (sf * 0.006).max(1.2),
                [0.15, 0.14, 0.14],
                0.9,
            );
            let branch_at = pts[pts.len() / 2];
            let pts2 = random_walk(rng, branch_at, angle + 0.9, 12, sf * 0.008, 0.6);
            draw_polyline(
                &mut canvas,
                &mut cov,
                &pts2,
                (sf * 0.004).max(1.0),
                [0.15, 0.14, 0.14],
                0.8,
            );
        }
        "cut_paste" => {
            // A square of the same tile, taken elsewhere, turned a quarter and slightly
            // lighter, pasted with hard edges.
            let ps = (sf * rng.random_range(0.14..0.2)) as usize;
            let ps = ps.max(3).min(s / 2);
            let src = (rng.random_range(0..s - ps), rng.random_range(0..s - ps));
            let dst = (rng.random_range(0..s - ps), rng.random_range(0..s - ps));
            let gain = rng.random_range(1.06..1.12);
            let original = canvas.clone();
            for j in 0..ps {
                for i in 0..ps {
                    let v = original.get(src.0 + (ps - 1 - j), src.1 + i);
                    canvas.set(dst.0 + i, dst.1 + j, scale3(v, gain));
                    cov.max_at(dst.0 + i, dst.1 + j, 1.0);
                }
            }
        }
        _ => {
            // "oil": a soft darker, warmer patch.
            let c = rand_point(rng, sf, 0.15);
            let r = sf * rng.random_range(0.07..0.11);
            let b = blob(s, s, c, r, Noise::new(rng), 0.3);
            for y in 0..s {
                for x in 0..s {
                    let a = b.at(x, y);
                    if a > 0.0 {
                        let p = canvas.get(x, y);
                        let oily = [p[0] * 0.8, p[1] * 0.76, p[2] * 0.7];
                        canvas.blend(x, y, oily, a);
                        cov.max_at(x, y, a);
                    }
                }
            }
        }
    }
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}

struct WasherScene {
    centre: (f32, f32),
    outer: f32,
    inner: f32,
    phi: f32,
    light: f32,
    metal: [f32; 3],
    table: [f32; 3],
    grain: Noise,
    table_noise: Noise,
    /// A bite out of the rim: centre and radius.
    notch: Option<((f32, f32), f32)>,
}

impl WasherScene {
    /// Ring coverage at a pixel centre (holes and notch removed).
    fn ring(&self, px: f32, py: f32) -> f32 {
        let d = ((px - self.centre.0).powi(2) + (py - self.centre.1).powi(2)).sqrt();
        let mut a = soft_inside(d, self.outer) * (1.0 - soft_inside(d, self.inner));
        let hole_r = (self.outer - self.inner) * 0.2;
        let mid = (self.outer + self.inner) / 2.0;
        for k in 0..4 {
            let ang = self.phi + k as f32 * PI / 2.0;
            let (hx, hy) = (
                self.centre.0 + mid * ang.cos(),
                self.centre.1 + mid * ang.sin(),
            );
            let dh = ((px - hx).powi(2) + (py - hy).powi(2)).sqrt();
            a *= 1.0 - soft_inside(dh, hole_r);
        }
        if let Some((c, r)) = self.notch {
            let dn = ((px - c.0).powi(2) + (py - c.1).powi(2)).sqrt();
            a *= 1.0 - soft_inside(dn, r);
        }
        a
    }

    fn draw(&self, s: usize) -> Canvas {
        let mut canvas = Canvas::new(s, s, 3, &[0.0; 3]);
        canvas.fill_with(|x, y| {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let t = 1.0 + 0.25 * (self.table_noise.fbm(px / 25.0, py / 25.0, 3) - 0.5);
            let table = scale3(self.table, t);
            let a = self.ring(px, py);
            if a <= 0.0 {
                return table;
            }
            let (dx, dy) = (px - self.centre.0, py - self.centre.1);
            let d = (dx * dx + dy * dy).sqrt();
            let ang = dy.atan2(dx);
            let groove = (d / (s as f32 * 0.008) * 2.0 * PI).sin();
            let b = 0.62
                + 0.2 * (ang - self.light).cos()
                + 0.04 * groove
                + 0.1 * (self.grain.fbm(px / 6.0, py / 6.0, 2) - 0.5);
            lerp3(table, scale3(self.metal, b), a)
        });
        canvas
    }
}

fn washer(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let s = ctx.size;
    let sf = s as f32;
    let mut scene = WasherScene {
        centre: (
            sf / 2.0 + sf * rng.random_range(-0.02..0.02),
            sf / 2.0 + sf * rng.random_range(-0.02..0.02),
        ),
        outer: sf * 0.34 * rng.random_range(0.98..1.02),
        inner: sf * 0.15,
        phi: rng.random_range(0.0..PI / 2.0),
        light: rng.random_range(-0.3..0.3) - PI / 2.0,
        metal: jitter3(rng, [0.8, 0.78, 0.74], 0.02),
        table: jitter3(rng, [0.16, 0.17, 0.2], 0.015),
        grain: Noise::new(rng),
        table_noise: Noise::new(rng),
        notch: None,
    };
    let base = scene.draw(s);
    let Some(defect) = defect else {
        return finish(base, None, None, rng, &LOOK);
    };
    let target = base.clone();
    let ang = rng.random_range(0.0..2.0 * PI);
    let (canvas, cov) = match defect {
        "notch" => {
            let r = sf * rng.random_range(0.045..0.07);
            let c = (
                scene.centre.0 + scene.outer * ang.cos(),
                scene.centre.1 + scene.outer * ang.sin(),
            );
            scene.notch = Some((c, r));
            let notched = scene.draw(s);
            let cov = diff_coverage(&base, &notched, 0.08);
            (notched, cov)
        }
        "scratch" => {
            let mut canvas = base.clone();
            let mut raw = Coverage::new(s, s);
            let rad = rng.random_range(scene.inner * 1.2..scene.outer * 0.9);
            let p = (
                scene.centre.0 + rad * ang.cos(),
                scene.centre.1 + rad * ang.sin(),
            );
            let dir = ang + PI / 2.0 + rng.random_range(-0.6..0.6);
            let len = sf * rng.random_range(0.12..0.2);
            let a = (p.0 - dir.cos() * len / 2.0, p.1 - dir.sin() * len / 2.0);
            let b = (p.0 + dir.cos() * len / 2.0, p.1 + dir.sin() * len / 2.0);
            let mut scratch = Canvas::new(s, s, 3, &[0.0; 3]);
            draw_polyline(
                &mut scratch,
                &mut raw,
                &[a, b],
                (sf * 0.005).max(1.2),
                [1.0; 3],
                1.0,
            );
            let mut cov = Coverage::new(s, s);
            for y in 0..s {
                for x in 0..s {
                    let on = raw.at(x, y) * scene.ring(x as f32 + 0.5, y as f32 + 0.5);
                    if on > 0.0 {
                        let p = canvas.get(x, y);
                        canvas.blend(x, y, scale3(p, 1.5), 0.85 * on);
                        cov.max_at(x, y, on);
                    }
                }
            }
            (canvas, cov)
        }
        _ => {
            // "stain": a brownish spot on the metal.
            let mut canvas = base.clone();
            let mut cov = Coverage::new(s, s);
            let rad = (scene.inner + scene.outer) / 2.0;
            let c = (
                scene.centre.0 + rad * ang.cos(),
                scene.centre.1 + rad * ang.sin(),
            );
            let r = sf * rng.random_range(0.03..0.05);
            let b = blob(s, s, c, r, Noise::new(rng), 0.35);
            for y in 0..s {
                for x in 0..s {
                    let on = b.at(x, y) * scene.ring(x as f32 + 0.5, y as f32 + 0.5);
                    if on > 0.0 {
                        let p = canvas.get(x, y);
                        let l = (p[0] + p[1] + p[2]) / 3.0;
                        canvas.blend(x, y, [l * 1.15, l * 0.78, l * 0.5], 0.7 * on);
                        cov.max_at(x, y, on);
                    }
                }
            }
            (canvas, cov)
        }
    };
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}
