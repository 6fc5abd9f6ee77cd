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
    Canvas, Coverage, Noise, blob, diff_coverage, draw_polyline, jitter3, random_walk, scale3,
};
use super::{Category, Ctx, Look, Rendered, finish};

mod tile;
mod washer;

use tile::tile;
use washer::washer;

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
