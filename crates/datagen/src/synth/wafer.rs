//! `synthetic-wafer`: 1-channel optical images of a wafer around a crossing of dicing
//! streets. Every die of a category has the same circuit design (as on a real wafer); images
//! differ by a small global shift, rotation and illumination change. Defects are small:
//! `chipping` along a street edge, `crack`, `particle`, `scratch`. Masks are written.
//!
//! - `die-logic`: irregular logic blocks, routing and vias (the harder one).
//! - `die-memory`: a regular memory array with periphery (defects stand out more).

use std::f32::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::paint::{Canvas, Coverage, Noise, blob, draw_polyline, random_walk};
use super::{Category, Ctx, Look, Rendered, finish};

const DEFECTS: &[&str] = &["chipping", "crack", "particle", "scratch"];

pub(super) const CATEGORIES: &[Category] = &[
    Category {
        name: "die-logic",
        channels: 1,
        defects: DEFECTS,
        jpeg: false,
        render: die_logic,
    },
    Category {
        name: "die-memory",
        channels: 1,
        defects: DEFECTS,
        jpeg: false,
        render: die_memory,
    },
];

const LOOK: Look = Look {
    contrast: 0.05,
    offset: 0.03,
    tint: 0.0,
    noise: 0.012,
    blur: 1,
};

/// Texture side of a die design (die-local coordinates `[0, 1]²`).
const T: usize = 160;

/// A die's circuit as a gray raster, plus how dies tile the wafer.
struct Design {
    tex: Vec<f32>,
    /// Die pitch as a fraction of the image side.
    pitch: f32,
    /// Street width as a fraction of the pitch.
    street: f32,
}

impl Design {
    fn rect(&mut self, x0: f32, y0: f32, w: f32, h: f32, v: f32) {
        let (a, b) = ((x0 * T as f32) as usize, (y0 * T as f32) as usize);
        let (c, d) = (
            (((x0 + w) * T as f32).ceil() as usize).min(T),
            (((y0 + h) * T as f32).ceil() as usize).min(T),
        );
        for y in b.min(T)..d {
            for x in a.min(T)..c {
                self.tex[y * T + x] = v;
            }
        }
    }

    fn pads(&mut self, rng: &mut ChaCha8Rng) {
        let n = rng.random_range(6..10);
        for k in 0..n {
            let t = 0.1 + 0.8 * k as f32 / (n - 1) as f32;
            for (x, y) in [(t, 0.03), (t, 0.91), (0.03, t), (0.91, t)] {
                self.rect(x - 0.025, y, 0.055, 0.055, 0.86);
                self.rect(x - 0.005, y + 0.02, 0.015, 0.015, 0.2);
            }
        }
    }

    /// Bilinear sample at die coordinates.
    fn at(&self, u: f32, v: f32) -> f32 {
        let (x, y) = (u * T as f32 - 0.5, v * T as f32 - 0.5);
        let (x0, y0) = (
            x.floor().clamp(0.0, (T - 1) as f32),
            y.floor().clamp(0.0, (T - 1) as f32),
        );
        let (tx, ty) = ((x - x0).clamp(0.0, 1.0), (y - y0).clamp(0.0, 1.0));
        let (i, j) = (x0 as usize, y0 as usize);
        let (i1, j1) = ((i + 1).min(T - 1), (j + 1).min(T - 1));
        let p = |a: usize, b: usize| self.tex[b * T + a];
        let top = p(i, j) + (p(i1, j) - p(i, j)) * tx;
        let bottom = p(i, j1) + (p(i1, j1) - p(i, j1)) * tx;
        top + (bottom - top) * ty
    }
}

fn logic_design(seed: u64) -> Design {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut d = Design {
        tex: vec![0.5; T * T],
        pitch: 0.62,
        street: 0.09,
    };
    let levels = [0.3, 0.4, 0.6, 0.7];
    for _ in 0..70 {
        let (w, h) = (rng.random_range(0.03..0.22), rng.random_range(0.03..0.22));
        let (x, y) = (
            rng.random_range(0.08..0.92 - w),
            rng.random_range(0.08..0.92 - h),
        );
        d.rect(x, y, w, h, levels[rng.random_range(0..levels.len())]);
    }
    for _ in 0..160 {
        let horizontal = rng.random_bool(0.5);
        let len: f32 = rng.random_range(0.05..0.5);
        let (x, y): (f32, f32) = (rng.random_range(0.08..0.9), rng.random_range(0.08..0.9));
        if horizontal {
            d.rect(x, y, len.min(0.92 - x), 0.007, 0.8);
        } else {
            d.rect(x, y, 0.007, len.min(0.92 - y), 0.8);
        }
    }
    for _ in 0..220 {
        let (x, y) = (rng.random_range(0.08..0.91), rng.random_range(0.08..0.91));
        d.rect(x, y, 0.009, 0.009, 0.15);
    }
    d.pads(&mut rng);
    d
}

fn memory_design(seed: u64) -> Design {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut d = Design {
        tex: vec![0.45; T * T],
        pitch: 0.46,
        street: 0.11,
    };
    let cells = 26;
    let (x0, y0, span) = (0.16, 0.16, 0.6);
    for j in 0..cells {
        for i in 0..cells {
            let (x, y) = (
                x0 + span * i as f32 / cells as f32,
                y0 + span * j as f32 / cells as f32,
            );
            let c = span / cells as f32;
            d.rect(x, y, c * 0.62, c * 0.62, 0.72);
            d.rect(x + c * 0.22, y + c * 0.22, c * 0.2, c * 0.2, 0.15);
        }
    }
    for _ in 0..14 {
        let (w, h) = (rng.random_range(0.03..0.08), rng.random_range(0.03..0.1));
        let side = rng.random_range(0..4);
        let t = rng.random_range(0.1..0.85);
        let (x, y) = match side {
            0 => (t, 0.09),
            1 => (t, 0.8),
            2 => (0.09, t),
            _ => (0.8, t),
        };
        d.rect(x, y, w, h, [0.32, 0.6][rng.random_range(0..2)]);
    }
    d.pads(&mut rng);
    d
}

/// Where the streets cross in an image, and how the image sits on the wafer.
struct View {
    cross: (f32, f32),
    rot: f32,
    pitch_px: f32,
    street_px: f32,
}

impl View {
    /// Wafer coordinates relative to the crossing (street centre lines at multiples of the
    /// pitch).
    fn wafer(&self, px: f32, py: f32) -> (f32, f32) {
        let (dx, dy) = (px - self.cross.0, py - self.cross.1);
        let (s, c) = self.rot.sin_cos();
        (c * dx + s * dy, -s * dx + c * dy)
    }

    /// Image coordinates of a wafer point.
    fn image(&self, wx: f32, wy: f32) -> (f32, f32) {
        let (s, c) = self.rot.sin_cos();
        (
            c * wx - s * wy + self.cross.0,
            s * wx + c * wy + self.cross.1,
        )
    }

    /// Die coordinate in `[0, 1]` or `None` inside a street.
    fn die(&self, w: f32) -> Option<f32> {
        let half = self.street_px / 2.0;
        let t = (w - half).rem_euclid(self.pitch_px);
        let inner = self.pitch_px - self.street_px;
        (t <= inner).then(|| t / inner)
    }
}

fn draw(design: &Design, view: &View, s: usize, saw: &Noise) -> Canvas {
    let mut canvas = Canvas::new(s, s, 1, &[0.0]);
    canvas.fill_with(|x, y| {
        let (wx, wy) = view.wafer(x as f32 + 0.5, y as f32 + 0.5);
        let v = match (view.die(wx), view.die(wy)) {
            (Some(u), Some(v)) => {
                let ring = [u, 1.0 - u, v, 1.0 - v].into_iter().fold(1.0f32, f32::min);
                if ring < 0.012 { 0.84 } else { design.at(u, v) }
            }
            (None, Some(_)) => 0.3 + 0.05 * (saw.fbm(wx / 2.0, wy / 40.0, 2) - 0.5),
            (Some(_), None) => 0.3 + 0.05 * (saw.fbm(wy / 2.0, wx / 40.0, 2) - 0.5),
            (None, None) => 0.3 + 0.03 * (saw.fbm(wx / 5.0, wy / 5.0, 2) - 0.5),
        };
        [v, v, v]
    });
    canvas
}

fn render(design: &Design, ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    let s = ctx.size;
    let sf = s as f32;
    let view = View {
        cross: (
            sf / 2.0 + sf * rng.random_range(-0.03..0.03),
            sf / 2.0 + sf * rng.random_range(-0.03..0.03),
        ),
        rot: rng.random_range(-0.006..0.006),
        pitch_px: design.pitch * sf,
        street_px: design.street * design.pitch * sf,
    };
    let saw = Noise::new(rng);
    let mut canvas = draw(design, &view, s, &saw);
    let Some(defect) = defect else {
        return finish(canvas, None, None, rng, &LOOK);
    };
    let target = canvas.clone();
    let mut cov = Coverage::new(s, s);
    // A point on a street edge: which street, which side, how far from the crossing.
    let vertical = rng.random_bool(0.5);
    let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let along = side
        * rng.random_range(0.15..0.4)
        * view.pitch_px
        * if rng.random_bool(0.5) { 1.0 } else { -1.0 };
    let edge = side * view.street_px / 2.0;
    let (ex, ey) = if vertical {
        (edge, along)
    } else {
        (along, edge)
    };
    let edge_pt = view.image(ex, ey);
    let into_die = if vertical {
        if side > 0.0 { 0.0 } else { PI }
    } else if side > 0.0 {
        PI / 2.0
    } else {
        -PI / 2.0
    } + view.rot;
    match defect {
        "chipping" => {
            let r = sf * rng.random_range(0.015..0.03);
            let b = blob(s, s, edge_pt, r, Noise::new(rng), 0.6);
            for y in 0..s {
                for x in 0..s {
                    let a = b.at(x, y);
                    if a > 0.0 {
                        canvas.blend(x, y, [0.16; 3], a);
                        cov.max_at(x, y, a);
                    }
                }
            }
        }
        "crack" => {
            let angle = into_die + rng.random_range(-0.6..0.6);
            let pts = random_walk(rng, edge_pt, angle, 22, sf * 0.007, 0.35);
            draw_polyline(
                &mut canvas,
                &mut cov,
                &pts,
                (sf * 0.004).max(1.0),
                [0.15; 3],
                0.9,
            );
        }
        "particle" => {
            let c = (
                rng.random_range(0.1..0.9) * sf,
                rng.random_range(0.1..0.9) * sf,
            );
            let r = sf * rng.random_range(0.009..0.018);
            let tone = if rng.random_bool(0.5) { 0.86 } else { 0.16 };
            let b = blob(s, s, c, r, Noise::new(rng), 0.3);
            for y in 0..s {
                for x in 0..s {
                    let a = b.at(x, y);
                    if a > 0.0 {
                        canvas.blend(x, y, [tone; 3], a);
                        cov.max_at(x, y, a);
                    }
                }
            }
        }
        _ => {
            // "scratch": a long, faint, nearly straight line.
            let start = (
                rng.random_range(0.15..0.85) * sf,
                rng.random_range(0.15..0.85) * sf,
            );
            let angle = rng.random_range(0.0..2.0 * PI);
            let pts = random_walk(rng, start, angle, 24, sf * 0.014, 0.03);
            draw_polyline(
                &mut canvas,
                &mut cov,
                &pts,
                (sf * 0.004).max(1.0),
                [0.84; 3],
                0.55,
            );
        }
    }
    finish(canvas, Some(target), Some(cov), rng, &LOOK)
}

fn die_logic(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    render(&logic_design(ctx.category_seed), ctx, rng, defect)
}

fn die_memory(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
    render(&memory_design(ctx.category_seed), ctx, rng, defect)
}
