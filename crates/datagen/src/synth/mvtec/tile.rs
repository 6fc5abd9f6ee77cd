//! `tile`: terrazzo with random chips; defects `crack`, `cut_paste`, `oil`.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::super::paint::{
    Canvas, Coverage, Noise, blob, draw_polyline, jitter3, random_walk, scale3, soft_inside,
};
use super::super::{Ctx, Rendered, finish};
use super::{LOOK, rand_point};

fn draw_chip(
    canvas: &mut Canvas,
    centre: (f32, f32),
    radii: (f32, f32),
    angle: f32,
    colour: [f32; 3],
) {
    let (sa, ca) = angle.sin_cos();
    let r = radii.0.max(radii.1);
    let (x0, y0, x1, y1) = super::super::paint::bbox(centre.0, centre.1, r, canvas.w, canvas.h);
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

pub(super) fn tile(ctx: &Ctx, rng: &mut ChaCha8Rng, defect: Option<&str>) -> Rendered {
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
