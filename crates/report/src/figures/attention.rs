//! Pictures of the attention itself, drawn from the `attention.json` that `adn explain`
//! writes: every run's channel gates per position as channels × images (good images left of
//! the defective ones), and CBAM's spatial gates laid over the input images. Both PNG only:
//! a panel is thousands of cells, which an SVG would carry as as many elements.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

use adn_record::AttentionPictures as Pictures;

use crate::gather::Experiment;

use super::gradcam::{rgb, run_label};
use super::print::*;
use super::*;

/// The colour scale's top: 1 for sigmoid gates, 2 once an identity-started gate (in (0, 2))
/// exceeds 1, so that every panel of a figure reads on the same scale.
fn scale_top<'a>(values: impl Iterator<Item = &'a f32>) -> f32 {
    if values.fold(0.0f32, |m, v| m.max(*v)) > 1.0 {
        2.0
    } else {
        1.0
    }
}

/// Draws a vertical colour bar from 0 to `top` into `area`, text at `u` pixels per point.
fn colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, top: f32, u: f64) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(px(u, 20.0))
        .margin_bottom(px(u, 20.0))
        .margin_right(px(u, 3.0))
        .y_label_area_size(px(u, 20.0))
        .build_cartesian_2d(0.0..1.0, 0.0..top as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(5)
        .label_style(font(u, TICK_PT))
        .draw()
        .map_err(err)?;
    let steps = 100;
    chart
        .draw_series((0..steps).map(|k| {
            let (a, b) = (k as f64 / steps as f64, (k + 1) as f64 / steps as f64);
            let v = ((a + b) / 2.0) as f32 * top;
            Rectangle::new(
                [(0.0, a * top as f64), (1.0, b * top as f64)],
                ViridisRGB::get_color_normalized(v, 0.0, top).filled(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

/// Channel gates: one panel per run (row) and position (column), each channels (y) ×
/// images (x), good | defective.
struct ChannelGates<'a> {
    title: String,
    pictures: &'a Pictures,
    labels: Vec<String>,
    top: f32,
}

const PANEL: (u32, u32) = (330, 240);
const BAR: u32 = 80;

impl Figure for ChannelGates<'_> {
    fn size(&self, _u: f64) -> (u32, u32) {
        let cols = self.columns() as u32;
        let rows = self.pictures.runs.len() as u32;
        (cols * PANEL.0 + BAR, 40 + rows * PANEL.1)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, _u: f64) -> Result<()> {
        // A bitmap of many cells: its text is sized for the width it prints at.
        let u = bitmap_unit(area.dim_in_pixel().0);
        let area = titled(area, &self.title, u)?;
        let (width, _) = area.dim_in_pixel();
        let (main, bar) = area.split_horizontally(width.saturating_sub(BAR));
        colour_bar(&bar, self.top, u)?;
        let images = &self.pictures.images;
        let good = images.iter().filter(|i| !i.anomalous).count();
        // A blank column between the good and the defective images.
        let column = |i: usize| if images[i].anomalous { i + 1 } else { i };
        let width = (images.len() + 1) as f64;
        let cells = main.split_evenly((self.pictures.runs.len(), self.columns()));
        for (r, run) in self.pictures.runs.iter().enumerate() {
            for (p, pos) in run.positions.iter().enumerate() {
                let Some(g) = pos.gates.iter().find(|g| g.gate == "channel") else {
                    continue;
                };
                let channels = g.shape[1];
                let mut chart = ChartBuilder::on(&cells[r * self.columns() + p])
                    .caption(
                        format!("{} · {}", self.labels[r], pos.position),
                        font(u, TICK_PT),
                    )
                    .margin(px(u, 3.0))
                    .x_label_area_size(px(u, 12.0))
                    .y_label_area_size(px(u, 30.0))
                    .build_cartesian_2d(0.0..width, 0.0..channels as f64)
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .disable_mesh()
                    .x_labels(0)
                    .x_desc(format!(
                        "{good} good | {} defective images",
                        images.len() - good
                    ))
                    .y_labels(5)
                    .y_label_formatter(&|y| format!("{y:.0}"))
                    .y_desc("channel")
                    .label_style(font(u, TICK_PT))
                    .axis_desc_style(font(u, TICK_PT))
                    .draw()
                    .map_err(err)?;
                chart
                    .draw_series((0..images.len()).flat_map(|i| {
                        let x = column(i) as f64;
                        g.of_image(i)
                            .iter()
                            .enumerate()
                            .map(move |(c, &v)| {
                                Rectangle::new(
                                    [(x, c as f64), (x + 1.0, c as f64 + 1.0)],
                                    ViridisRGB::get_color_normalized(v, 0.0, self.top).filled(),
                                )
                            })
                            .collect::<Vec<_>>()
                    }))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

impl ChannelGates<'_> {
    fn columns(&self) -> usize {
        self.pictures
            .runs
            .iter()
            .map(|r| r.positions.len())
            .max()
            .unwrap_or(1)
            .max(1)
    }
}

/// `map` (`h × w`) resized to `side × side` by bilinear interpolation at pixel centres.
fn upsample(map: &[f32], h: usize, w: usize, side: usize) -> Vec<f32> {
    let at = |y: usize, x: usize| map[y.min(h - 1) * w + x.min(w - 1)];
    let source = |d: usize, n: usize| {
        let s = ((d as f32 + 0.5) * n as f32 / side as f32 - 0.5).max(0.0);
        let i = (s.floor() as usize).min(n - 1);
        (i, s - i as f32)
    };
    let mut out = Vec::with_capacity(side * side);
    for dy in 0..side {
        let (y, fy) = source(dy, h);
        for dx in 0..side {
            let (x, fx) = source(dx, w);
            let top = at(y, x) * (1.0 - fx) + at(y, x + 1) * fx;
            let bottom = at(y + 1, x) * (1.0 - fx) + at(y + 1, x + 1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// CBAM's spatial gates over the input: rows are the first `per_kind` good and defective
/// images, columns the input, then each CBAM run at each position. PNG only.
fn write_spatial(
    explain_dir: &Path,
    pictures: &Pictures,
    labels: &[String],
    title: &str,
    stem: &Path,
) -> Result<Option<PathBuf>> {
    let per_kind = 2;
    let mut rows: Vec<usize> = Vec::new();
    for anomalous in [false, true] {
        rows.extend(
            (0..pictures.images.len())
                .filter(|&i| pictures.images[i].anomalous == anomalous)
                .take(per_kind),
        );
    }
    let mut columns: Vec<(usize, usize)> = Vec::new();
    for (r, run) in pictures.runs.iter().enumerate() {
        for (p, pos) in run.positions.iter().enumerate() {
            if pos.gates.iter().any(|g| g.gate == "spatial") {
                columns.push((r, p));
            }
        }
    }
    if columns.is_empty() || rows.is_empty() {
        return Ok(None);
    }
    let spatial = |(r, p): (usize, usize)| {
        pictures.runs[r].positions[p]
            .gates
            .iter()
            .find(|g| g.gate == "spatial")
            .expect("a spatial column")
    };
    let top = scale_top(columns.iter().flat_map(|&c| spatial(c).values.iter()));
    register_font();
    let (cell, _, _) = rgb(&explain_dir.join(&pictures.images[rows[0]].input))?;
    let (left, gap, pitch) = (100u32, 6u32, cell + 22);
    let width = left + (1 + columns.len() as u32) * pitch + BAR;
    let u = bitmap_unit(width);
    let line_h = px(u, TICK_PT * 1.35) as i32;
    let header_lines = columns
        .iter()
        .map(|&(r, _)| labels[r].split(" / ").count() + 1)
        .max()
        .unwrap_or(1) as u32;
    let head = px(u, TITLE_PT * 1.6) + header_lines * line_h as u32 + px(u, 4.0);
    let size = (width, head + rows.len() as u32 * (cell + gap) + 10);
    let path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let style = |pt: f64| TextStyle::from(font(u, pt).into_font());
        area.draw(&Text::new(
            title.to_string(),
            (10, px(u, 2.5) as i32),
            style(TITLE_PT),
        ))
        .map_err(err)?;
        let (_, bar) = area.split_horizontally(size.0 - BAR);
        colour_bar(&bar, top, u)?;
        let mut headers = vec![vec!["input".to_string()]];
        for &(r, p) in &columns {
            let mut lines: Vec<String> = labels[r].split(" / ").map(str::to_string).collect();
            lines.push(pictures.runs[r].positions[p].position.clone());
            headers.push(lines);
        }
        for (c, lines) in headers.iter().enumerate() {
            let x = (left + c as u32 * pitch) as i32;
            for (k, line) in lines.iter().enumerate() {
                let y = head as i32 - line_h * (lines.len() - k) as i32 - px(u, 2.0) as i32;
                area.draw(&Text::new(line.clone(), (x, y), style(TICK_PT)))
                    .map_err(err)?;
            }
        }
        for (row, &i) in rows.iter().enumerate() {
            let image = &pictures.images[i];
            let y = (head + row as u32 * (cell + gap)) as i32;
            area.draw(&Text::new(
                image.defect.clone(),
                (8, y + cell as i32 / 2 - line_h / 2),
                style(TICK_PT),
            ))
            .map_err(err)?;
            let (w, h, input) = rgb(&explain_dir.join(&image.input))?;
            if (w, h) != (cell, cell) {
                bail!("{}: {w} × {h}, not {cell} × {cell}", image.input);
            }
            let mut tiles = vec![input.clone()];
            for &col in &columns {
                let g = spatial(col);
                let map = upsample(g.of_image(i), g.shape[1], g.shape[2], cell as usize);
                let mut tile = input.clone();
                for (k, v) in map.iter().enumerate() {
                    let c = ViridisRGB::get_color_normalized(*v, 0.0, top);
                    for (ch, value) in [c.0, c.1, c.2].into_iter().enumerate() {
                        let p = &mut tile[3 * k + ch];
                        *p = (0.4 * *p as f32 + 0.6 * value as f32).round() as u8;
                    }
                }
                tiles.push(tile);
            }
            for (c, tile) in tiles.into_iter().enumerate() {
                let x = (left + c as u32 * pitch) as i32;
                let bitmap = BitMapElement::with_owned_buffer((x, y), (cell, cell), tile)
                    .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
            }
        }
        area.present().map_err(err)?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Some(path))
}

/// Draws the attention pictures of an `adn explain` folder that holds `attention.json`:
/// `<prefix>channels_<slug>.png` (SE and CBAM channel gates) and, with CBAM runs,
/// `<prefix>spatial_<slug>.png`. Nothing when the folder has no `attention.json` (no run
/// had attention).
pub fn write_attention_pictures(
    explain_dir: &Path,
    exp: &Experiment,
    title: &str,
    figures: &Path,
    slug: &str,
) -> Result<Vec<PathBuf>> {
    if !explain_dir.join("attention.json").is_file() {
        return Ok(Vec::new());
    }
    let pictures = Pictures::read(explain_dir)?;
    let labels: Vec<String> = pictures
        .runs
        .iter()
        .map(|r| run_label(exp, &r.run_dir, &r.attention))
        .collect();
    let mut sink = Sink::Files(Vec::new());
    let channel_values = pictures
        .runs
        .iter()
        .flat_map(|r| r.positions.iter())
        .flat_map(|p| p.gates.iter())
        .filter(|g| g.gate == "channel")
        .flat_map(|g| g.values.iter());
    let figure = ChannelGates {
        title: format!("{title}: channel gates per position (columns: test images)"),
        top: scale_top(channel_values),
        pictures: &pictures,
        labels: labels.clone(),
    };
    render_as(
        &figure,
        &figures.join(format!("attention_channels_{slug}")),
        &["png"],
        &mut sink,
    )?;
    let Sink::Files(mut written) = sink else {
        unreachable!("drawn to files")
    };
    if let Some(p) = write_spatial(
        explain_dir,
        &pictures,
        &labels,
        &format!("{title}: CBAM spatial gates over the input"),
        &figures.join(format!("attention_spatial_{slug}")),
    )? {
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_keeps_a_constant_and_interpolates_between_centres() {
        assert!(
            upsample(&[0.3; 4], 2, 2, 8)
                .iter()
                .all(|v| (v - 0.3).abs() < 1e-6)
        );
        // 2 × 2 → 4 × 4: output pixel centres fall at source x = 0 (edge), 0.25, 0.75, 1.
        let row = upsample(&[0.0, 1.0, 0.0, 1.0], 2, 2, 4);
        assert_eq!(&row[..4], &[0.0, 0.25, 0.75, 1.0]);
        assert_eq!(&row[..4], &row[12..]);
    }

    #[test]
    fn the_colour_scale_widens_only_for_gates_above_one() {
        assert_eq!(scale_top([0.2f32, 0.99].iter()), 1.0);
        assert_eq!(scale_top([0.2f32, 1.3].iter()), 2.0);
    }
}
