//! `washer`: a machined ring with four holes on a dark table; defects `scratch`, `notch`,
//! `stain`.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::paint::{
    Canvas, Coverage, Noise, blob, diff_coverage, draw_polyline, jitter3, lerp3, scale3,
    soft_inside,
};
use super::super::{Ctx, Rendered, finish};
use super::LOOK;

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

pub(super) fn washer(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
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
