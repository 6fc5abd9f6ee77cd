//! The qualitative figure as a paper prints it, from what `adn explain` wrote: one row per
//! defect type (plus a miss of the first run and a good image), columns input + each run's
//! DifferNet anomaly map laid over the input, the ground-truth mask outlined in red, the
//! image's score and decision at the run's F1-optimal threshold under each map, one colour
//! scale per row with its bar. PNG only (bitmaps).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;

use crate::gather::Experiment;

use super::gradcam::{Explanation, rgb, run_label};
use super::*;

/// Side of one image cell in pixels: inputs are resized to it, so small model inputs still
/// print at about 200 dpi in a two-column figure.
const CELL: u32 = 240;

/// The map at `map_file` (16-bit, `value / row max`) in `[0, 1]`, resized to `side`.
fn read_map(path: &Path, side: u32) -> Result<Vec<f32>> {
    let img = image::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .into_luma16();
    let img = image::imageops::resize(&img, side, side, image::imageops::FilterType::Triangle);
    Ok(img.pixels().map(|p| p[0] as f32 / 65535.0).collect())
}

/// The outline of a mask: mask pixels with a 4-neighbour outside it (or on the border).
pub(super) fn outline(mask: &[bool], side: usize) -> Vec<bool> {
    let at = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < side
            && (y as usize) < side
            && mask[y as usize * side + x as usize]
    };
    (0..side * side)
        .map(|i| {
            let (x, y) = ((i % side) as isize, (i / side) as isize);
            mask[i] && !(at(x - 1, y) && at(x + 1, y) && at(x, y - 1) && at(x, y + 1))
        })
        .collect()
}

fn resized_rgb(path: &Path, side: u32) -> Result<Vec<u8>> {
    let (w, h, buf) = rgb(path)?;
    let img = image::RgbImage::from_raw(w, h, buf)
        .with_context(|| format!("{}: bad image buffer", path.display()))?;
    Ok(image::imageops::resize(&img, side, side, image::imageops::FilterType::Triangle).into_raw())
}

/// Row `r` of an explanation as `CELL`-sized RGB tiles: the input, then every run's map over
/// it (viridis on the row's scale), the mask outlined in red on all of them.
fn row_tiles(explain_dir: &Path, e: &Explanation, r: usize) -> Result<Vec<Vec<u8>>> {
    let side = CELL as usize;
    let image = &e.images[r];
    let input = resized_rgb(&explain_dir.join(&e.inputs[r]), CELL)?;
    let edge = match &image.mask {
        Some(m) => {
            let gray = image::open(explain_dir.join(m))
                .with_context(|| format!("cannot read {m}"))?
                .into_luma8();
            let gray =
                image::imageops::resize(&gray, CELL, CELL, image::imageops::FilterType::Nearest);
            let mask: Vec<bool> = gray.pixels().map(|p| p[0] > 127).collect();
            outline(&mask, side)
        }
        None => vec![false; side * side],
    };
    let paint_edge = |tile: &mut Vec<u8>| {
        for (k, on) in edge.iter().enumerate() {
            if *on {
                tile[3 * k..3 * k + 3].copy_from_slice(&[230, 20, 20]);
            }
        }
    };
    let mut tiles = vec![input.clone()];
    paint_edge(&mut tiles[0]);
    for run in &e.runs {
        let map = read_map(&explain_dir.join(&run.maps[r]), CELL)?;
        let mut tile = input.clone();
        for (k, v) in map.iter().enumerate() {
            let c = ViridisRGB::get_color_normalized(*v, 0.0, 1.0);
            for (ch, value) in [c.0, c.1, c.2].into_iter().enumerate() {
                let p = &mut tile[3 * k + ch];
                *p = (0.35 * *p as f32 + 0.65 * value as f32).round() as u8;
            }
        }
        paint_edge(&mut tile);
        tiles.push(tile);
    }
    Ok(tiles)
}

fn read_explanation(explain_dir: &Path) -> Result<Explanation> {
    let text = fs::read_to_string(explain_dir.join("explain.json"))
        .with_context(|| format!("cannot read {}/explain.json", explain_dir.display()))?;
    let e: Explanation = serde_json::from_str(&text)
        .with_context(|| format!("{}/explain.json is not valid", explain_dir.display()))?;
    if e.runs.iter().any(|r| r.maps.len() != e.images.len()) {
        bail!(
            "{}/explain.json has no DifferNet map for every image (written by an older adn?)",
            explain_dir.display()
        );
    }
    Ok(e)
}

/// The paper's layout for a dataset of many categories: variants as rows (the input first),
/// one image per category as columns (the first defective test image each `adn explain`
/// folder shows), each column on its own colour scale. `categories` pairs each category
/// with its `adn explain` folder; all must explain the same variants in the same order.
pub fn write_category_maps(
    categories: &[(String, PathBuf)],
    exp: &Experiment,
    title: &str,
    stem: &Path,
) -> Result<PathBuf> {
    register_font();
    let explained: Vec<Explanation> = categories
        .iter()
        .map(|(_, d)| read_explanation(d))
        .collect::<Result<_>>()?;
    let Some(first) = explained.first() else {
        bail!("no category to draw");
    };
    let labels: Vec<String> = first
        .runs
        .iter()
        .map(|r| run_label(exp, &r.run_dir, &r.attention))
        .collect();
    for ((c, _), e) in categories.iter().zip(&explained) {
        let these: Vec<String> = e
            .runs
            .iter()
            .map(|r| run_label(exp, &r.run_dir, &r.attention))
            .collect();
        if these != labels {
            bail!("category {c} explains {these:?}, not the first one's {labels:?}");
        }
    }
    let (left, top, gap) = (200u32, 96u32, 10u32);
    let cols = categories.len() as u32;
    let rows = 1 + labels.len() as u32;
    let size = (left + cols * (CELL + gap), top + rows * (CELL + gap) + 40);
    let path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let style = |px| TextStyle::from((FONT_NAME, px).into_font());
        area.draw(&Text::new(
            format!("{title}: DifferNet's anomaly map, one colour scale per column"),
            (10, 10),
            style(26),
        ))
        .map_err(err)?;
        let mut row_labels = vec!["input".to_string()];
        row_labels.extend(labels.iter().cloned());
        for (r, l) in row_labels.iter().enumerate() {
            let y = (top + r as u32 * (CELL + gap)) as i32 + CELL as i32 / 2 - 12;
            area.draw(&Text::new(l.clone(), (8, y), style(22)))
                .map_err(err)?;
        }
        for (c, ((name, dir), e)) in categories.iter().zip(&explained).enumerate() {
            let x = (left + c as u32 * (CELL + gap)) as i32;
            let Some(r) = e.images.iter().position(|i| i.anomalous) else {
                continue;
            };
            area.draw(&Text::new(
                format!("{name}: {}", e.images[r].defect),
                (x, top as i32 - 32),
                style(20),
            ))
            .map_err(err)?;
            for (k, tile) in row_tiles(dir, e, r)?.into_iter().enumerate() {
                let y = (top + k as u32 * (CELL + gap)) as i32;
                let bitmap = BitMapElement::with_owned_buffer((x, y), (CELL, CELL), tile)
                    .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
            }
        }
        area.draw(&Text::new(
            "Masks outlined in red; each column scaled to its largest map value.",
            (10, size.1 as i32 - 30),
            style(18),
        ))
        .map_err(err)?;
        area.present().map_err(err)?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Draws `<stem>.png` from the `adn explain` folder `explain_dir`.
pub fn write_map_grid(
    explain_dir: &Path,
    exp: &Experiment,
    title: &str,
    stem: &Path,
) -> Result<PathBuf> {
    register_font();
    let e = read_explanation(explain_dir)?;
    let (left, top, gap, caption, bar) = (200u32, 96u32, 10u32, 34u32, 96u32);
    let cols = 1 + e.runs.len() as u32;
    let rows = e.images.len() as u32;
    let pitch_y = CELL + caption + gap;
    let size = (left + cols * (CELL + gap) + bar, top + rows * pitch_y + 100);
    let path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let style = |px| TextStyle::from((FONT_NAME, px).into_font());
        area.draw(&Text::new(
            format!("{title}: DifferNet's anomaly map, one colour scale per row"),
            (10, 10),
            style(26),
        ))
        .map_err(err)?;
        let mut headers = vec![if e.images.iter().any(|i| i.mask.is_some()) {
            "input (mask in red)".to_string()
        } else {
            "input".to_string()
        }];
        headers.extend(
            e.runs
                .iter()
                .map(|r| run_label(exp, &r.run_dir, &r.attention)),
        );
        for (c, h) in headers.iter().enumerate() {
            let x = (left + c as u32 * (CELL + gap)) as i32;
            area.draw(&Text::new(h.clone(), (x, top as i32 - 32), style(22)))
                .map_err(err)?;
        }
        for (r, image) in e.images.iter().enumerate() {
            let y = (top + r as u32 * pitch_y) as i32;
            area.draw(&Text::new(
                image.defect.clone(),
                (8, y + CELL as i32 / 2 - 24),
                style(22),
            ))
            .map_err(err)?;
            if image.why == "missed by the first run" {
                area.draw(&Text::new(
                    format!(
                        "(missed by {})",
                        headers.get(1).map_or("the first run", String::as_str)
                    ),
                    (8, y + CELL as i32 / 2 + 4),
                    style(18),
                ))
                .map_err(err)?;
            }
            let tiles = row_tiles(explain_dir, &e, r)?;
            for (c, tile) in tiles.into_iter().enumerate() {
                let x = (left + c as u32 * (CELL + gap)) as i32;
                let bitmap = BitMapElement::with_owned_buffer((x, y), (CELL, CELL), tile)
                    .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
                if c == 0 {
                    continue;
                }
                let run = &e.runs[c - 1];
                let score = run.scores[r];
                let flagged = score >= run.threshold;
                let verdict = match (flagged, image.anomalous) {
                    (true, true) | (false, false) => "correct",
                    (true, false) => "false alarm",
                    (false, true) => "missed",
                };
                area.draw(&Text::new(
                    format!(
                        "{score:.3} → {} ({verdict})",
                        if flagged { "defect" } else { "good" }
                    ),
                    (x, y + CELL as i32 + 6),
                    style(19),
                ))
                .map_err(err)?;
                if image.map_max == 0.0 {
                    area.draw(&Text::new(
                        "map all zero",
                        (x + 8, y + 8),
                        style(20).color(&WHITE),
                    ))
                    .map_err(err)?;
                }
            }
            // The row's colour bar: 0 at the foot, the row's largest map value at the top.
            let bx = (left + cols * (CELL + gap)) as i32;
            let steps = 64;
            for k in 0..steps {
                let v = 1.0 - (k as f32 + 0.5) / steps as f32;
                let y0 = y + (k * CELL as i32) / steps;
                let y1 = y + ((k + 1) * CELL as i32) / steps;
                area.draw(&Rectangle::new(
                    [(bx, y0), (bx + 16, y1)],
                    ViridisRGB::get_color_normalized(v, 0.0, 1.0).filled(),
                ))
                .map_err(err)?;
            }
            area.draw(&Text::new(
                scale_label(image.map_max),
                (bx + 20, y),
                style(17),
            ))
            .map_err(err)?;
            area.draw(&Text::new("0", (bx + 20, y + CELL as i32 - 16), style(17)))
                .map_err(err)?;
        }
        // The map's description on two lines: what it is, then how it was made.
        let (what, how) = e.map.split_once(": ").unwrap_or((e.map.as_str(), ""));
        let notes = [
            format!("{what}: {}.", how.split(", averaged").next().unwrap_or(how)),
            format!(
                "{}.",
                how.split_once(", averaged")
                    .map_or(String::new(), |(_, rest)| format!("Averaged{rest}"))
            ),
            "Under each map: the image's score → decision at the run's F1-optimal threshold."
                .to_string(),
        ];
        for (k, note) in notes.iter().enumerate() {
            area.draw(&Text::new(
                note.clone(),
                (10, size.1 as i32 - 84 + 26 * k as i32),
                style(18),
            ))
            .map_err(err)?;
        }
        area.present().map_err(err)?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A colour bar's top value: three significant digits, in scientific form only when small.
fn scale_label(v: f32) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 0.01 {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        format!("{v:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_labels_are_short() {
        assert_eq!(scale_label(3.171), "3.171");
        assert_eq!(scale_label(0.40), "0.4");
        assert_eq!(scale_label(0.000123), "1.23e-4");
        assert_eq!(scale_label(0.0), "0");
    }

    #[test]
    fn the_outline_is_the_mask_s_border() {
        // A 3 × 3 square inside 5 × 5: its 8 border pixels, not its centre.
        let side = 5;
        let mask: Vec<bool> = (0..25)
            .map(|i| (1..4).contains(&(i % side)) && (1..4).contains(&(i / side)))
            .collect();
        let edge = outline(&mask, side);
        assert_eq!(edge.iter().filter(|e| **e).count(), 8);
        assert!(!edge[12] && edge[6] && !edge[0]);
        // A mask touching the image border is outlined there too.
        assert!(outline(&[true; 4], 2).iter().all(|e| *e));
    }
}
