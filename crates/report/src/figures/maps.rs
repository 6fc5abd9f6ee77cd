//! The qualitative figure as a paper prints it, from what `adn explain` wrote: one row per
//! defect type (plus a miss of the first run and a good image), columns input + each run's
//! own anomaly map laid over the input, the ground-truth mask outlined in red, the image's
//! score and decision at the run's F1-optimal threshold under each map, one colour scale
//! per row with its bar (per row and flow where the runs' flows differ, each map's top
//! under it). PNG only (bitmaps).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::prelude::*;

use crate::gather::Experiment;

use adn_record::Explanation;

use super::gradcam::{rgb, run_label};
use super::grid::{Cells, GridPage, GridSpec, check_grid, write_grid};
use super::print::*;
use super::*;

/// Side of one image cell in pixels: inputs are resized to it, so small model inputs still
/// print at about 200 dpi in a two-column figure.
pub(super) const CELL: u32 = 240;

/// A `CELL`-pixel image prints `CELL_PT` points (0.9 in) wide: the text of these figures is
/// sized in points against it, so it prints at 8 pt or more wherever the images print at
/// that size (four image columns and their labels fit across two paper columns).
const CELL_PT: f64 = 65.0;

pub(super) fn unit() -> f64 {
    CELL as f64 / CELL_PT
}

pub(super) fn text_style(pt: f64) -> TextStyle<'static> {
    TextStyle::from(font(unit(), pt).into_font())
}

/// The width of `text` at `pt` points, in pixels.
pub(super) fn text_width(pt: f64, text: &str) -> u32 {
    text_style(pt).font.box_size(text).map_or(0, |b| b.0)
}

/// A line of `pt`-point text, in pixels.
pub(super) fn line_height(pt: f64) -> u32 {
    px(unit(), pt * 1.35)
}

/// Draws `lines` from `(x, y)` down, one `line_height(pt)` apart.
pub(super) fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    lines: &[String],
    (x, y): (i32, i32),
    pt: f64,
) -> Result<()> {
    for (k, line) in lines.iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (x, y + (k as u32 * line_height(pt)) as i32),
            text_style(pt),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// The map at `path` (16-bit, `value / its scale`) in `[0, 1]`, resized to `side`.
pub(super) fn read_map(path: &Path, side: u32) -> Result<Vec<f32>> {
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

pub(super) fn resized_rgb(path: &Path, side: u32) -> Result<Vec<u8>> {
    let (w, h, buf) = rgb(path)?;
    let img = image::RgbImage::from_raw(w, h, buf)
        .with_context(|| format!("{}: bad image buffer", path.display()))?;
    Ok(image::imageops::resize(&img, side, side, image::imageops::FilterType::Triangle).into_raw())
}

/// Row `r` of an explanation as `CELL`-sized RGB tiles: the input, then the map of each run
/// of `runs` over it (viridis on the row's scale), the mask outlined in red on all of them.
fn row_tiles(
    explain_dir: &Path,
    e: &Explanation,
    r: usize,
    runs: std::ops::Range<usize>,
) -> Result<Vec<Vec<u8>>> {
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
    for run in &e.runs[runs] {
        let map = read_map(&explain_dir.join(&run.maps[r]), CELL)?;
        let mut tile = blend_viridis(&input, &map, 0.65);
        paint_edge(&mut tile);
        tiles.push(tile);
    }
    Ok(tiles)
}

/// The paper's layout for a dataset of many categories: the input and then the variants as
/// rows, one image per category as columns (the first defective test image each `adn
/// explain` folder shows), each column on its own colour scale.
struct CategoryCells<'a> {
    categories: Vec<(String, Explained<'a>)>,
    /// The row of each category's image in its explanation.
    images: Vec<usize>,
    labels: Vec<String>,
}

impl<'a> CategoryCells<'a> {
    /// `categories` pairs each category with its `adn explain` folder; all must explain the
    /// same variants in the same order.
    fn read(categories: &'a [(String, PathBuf)], exp: &'a Experiment) -> Result<Self> {
        let mut explained = Vec::new();
        let mut images = Vec::new();
        let mut labels: Option<Vec<String>> = None;
        // The first category's flow, which every other must share.
        let mut flow: Option<(String, String)> = None;
        for (c, dir) in categories {
            let x = Explained::read(dir, exp)?;
            let these = x.run_labels();
            match &labels {
                Some(first) if *first != these => {
                    bail!("category {c} explains {these:?}, not the first one's {first:?}")
                }
                Some(_) => {}
                None => labels = Some(these),
            }
            if x.e.maps.len() > 1 {
                bail!(
                    "category {c}'s maps come from {} flows; the categories figure compares \
                     the variants of one flow, on one scale per category",
                    x.e.maps.len()
                );
            }
            let this_flow = x.e.maps.first().map(|m| m.flow.clone());
            match &flow {
                Some((first, f)) if this_flow.as_ref() != Some(f) => bail!(
                    "category {c}'s maps are {}'s, category {first}'s are {f}'s: the \
                     categories figure compares the variants of one flow",
                    this_flow.as_deref().unwrap_or("no flow")
                ),
                Some(_) => {}
                None => flow = this_flow.map(|f| (c.clone(), f)),
            }
            // A category without a defective image shown is left out.
            if let Some(r) = x.e.images.iter().position(|i| i.anomalous) {
                images.push(r);
                explained.push((c.clone(), x));
            }
        }
        if explained.is_empty() {
            bail!("no category with a defective image to draw");
        }
        Ok(CategoryCells {
            categories: explained,
            images,
            labels: labels.unwrap_or_default(),
        })
    }
}

impl Cells for CategoryCells<'_> {
    fn spec(&self) -> Result<GridSpec> {
        let mut rows = vec![vec!["input (mask in red)".to_string()]];
        rows.extend(self.labels.iter().map(|l| vec![l.clone()]));
        let columns = self
            .categories
            .iter()
            .zip(&self.images)
            .map(|((c, x), &r)| {
                let image = &x.e.images[r];
                format!(
                    "{c}: {}, max {}",
                    image.defect,
                    scale_label(row_scale(&x.e, r))
                )
            })
            .collect();
        Ok(GridSpec {
            measure: rows.iter().flatten().cloned().collect(),
            rows,
            input: None,
            columns,
            note: format!(
                "{} of each variant (rows) laid over one defective test image per category \
                 (columns). Each column on its own colour scale, 0 to the largest value in its \
                 header.",
                self.categories
                    .first()
                    .and_then(|(_, x)| x.e.maps.first())
                    .map_or("The anomaly map".to_string(), |m| format!(
                        "{}'s anomaly map",
                        m.flow
                    ))
            ),
            right: colour_bar_width(),
            below: 0,
        })
    }

    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        page: &GridPage,
    ) -> Result<()> {
        for (c, k) in page.runs.clone().enumerate() {
            let (_, x) = &self.categories[k];
            let tiles = row_tiles(x.dir, &x.e, self.images[k], 0..x.e.runs.len())?;
            for (r, tile) in tiles.into_iter().enumerate() {
                if !page.rows.contains(&r) {
                    continue;
                }
                let bitmap = BitMapElement::with_owned_buffer(
                    (page.cell_x(c), page.row_y(r)),
                    (CELL, CELL),
                    tile,
                )
                .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
            }
        }
        colour_bar(
            area,
            (page.cell_x(page.columns()), page.row_y(page.rows.start)),
            page.cells_height(),
            1.0,
        )
    }
}

/// The paper's layout for a dataset of many categories (see `CategoryCells`) as
/// `<stem>.png`, or in pages where the categories do not fit across 7 in. `categories`
/// pairs each category with its `adn explain` folder; all must explain the same variants in
/// the same order.
pub fn write_category_maps(
    categories: &[(String, PathBuf)],
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    write_grid(&CategoryCells::read(categories, exp)?, stem)
}

/// The category maps' pages laid out, not written: each page's file name with its breaches
/// of the print rules.
pub fn check_category_maps(
    categories: &[(String, PathBuf)],
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    check_grid(&CategoryCells::read(categories, exp)?, stem)
}

/// The gap between cells, in pixels.
pub(super) const GAP: u32 = 10;

/// The map figure's rows, header and note (see [`grid`]): each row labelled with its defect
/// type (and the run that missed it), a colour bar right of the cells, a score and decision
/// below each map.
/// The explanation of an `adn explain` folder, read once, with the experiment that names
/// its runs: the cells of the map figure and of the Grad-CAM grid.
pub(super) struct Explained<'a> {
    pub(super) dir: &'a Path,
    pub(super) e: Explanation,
    pub(super) exp: &'a Experiment,
}

impl<'a> Explained<'a> {
    pub(super) fn read(dir: &'a Path, exp: &'a Experiment) -> Result<Self> {
        Ok(Explained {
            dir,
            e: Explanation::read(dir)?,
            exp,
        })
    }

    /// Each run's column header.
    pub(super) fn run_labels(&self) -> Vec<String> {
        self.e
            .runs
            .iter()
            .map(|r| run_label(self.exp, &r.run_dir, &r.attention))
            .collect()
    }
}

/// A run folder's last component: how a figure's columns name their runs.
pub fn run_folder_name(run_dir: &str) -> String {
    Path::new(run_dir)
        .file_name()
        .map_or(run_dir.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The map figure's cells.
struct MapCells<'a>(Explained<'a>);

impl Cells for MapCells<'_> {
    fn spec(&self) -> Result<GridSpec> {
        Ok(map_spec(&self.0))
    }

    fn column_keys(&self) -> Option<Vec<String>> {
        Some(
            self.0
                .e
                .runs
                .iter()
                .map(|r| run_folder_name(&r.run_dir))
                .collect(),
        )
    }

    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        page: &GridPage,
    ) -> Result<()> {
        draw_map_cells(area, self.0.dir, &self.0.e, page)
    }
}

fn map_spec(x: &Explained) -> GridSpec {
    let (e, exp) = (&x.e, x.exp);
    let pad = px(unit(), 4.0);
    let first = e.runs.first().map_or("the first run".to_string(), |r| {
        run_label(exp, &r.run_dir, &r.attention)
    });
    let missed = format!("(missed by {first})");
    let rows = e
        .images
        .iter()
        .map(|i| {
            let mut pieces = vec![i.defect.clone()];
            if i.why == "missed by the first run" {
                pieces.push(missed.clone());
            }
            pieces
        })
        .collect();
    let mut measure: Vec<String> = e.images.iter().map(|i| i.defect.clone()).collect();
    measure.push(missed);
    let input = if e.images.iter().any(|i| i.mask.is_some()) {
        "input (mask in red)"
    } else {
        "input"
    };
    // The maps' descriptions, what the numbers under each map are.
    let (maps, scale) = match e.maps.as_slice() {
        [one] => (format!("{}.", one.how), "One colour scale per row."),
        several => (
            several
                .iter()
                .map(|m| format!("{}.", m.how))
                .collect::<Vec<_>>()
                .join(" "),
            "One colour scale per row and flow (maps of different flows are in different \
             units), 0 to the top under each map.",
        ),
    };
    GridSpec {
        rows,
        measure,
        input: Some(input.to_string()),
        columns: x.run_labels(),
        note: format!(
            "{maps} Under each map: the image's score → the decision at the run's \
             F1-optimal threshold. {scale}"
        ),
        right: colour_bar_width(),
        below: caption_line_count(e) as u32 * line_height(TICK_PT) + pad,
    }
}

/// The cells of one page of the map figure: per row the input and the page's runs' maps,
/// each map's score and decision below it, the row's colour bar at the right.
fn draw_map_cells<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    explain_dir: &Path,
    e: &Explanation,
    page: &GridPage,
) -> Result<()> {
    let pad = px(unit(), 4.0);
    for r in page.rows.clone() {
        let image = &e.images[r];
        let y = page.row_y(r);
        let tiles = row_tiles(explain_dir, e, r, page.runs.clone())?;
        let runs = std::iter::once(None).chain(page.runs.clone().map(Some));
        for (c, (tile, run)) in tiles.into_iter().zip(runs).enumerate() {
            let x = page.cell_x(c);
            let bitmap = BitMapElement::with_owned_buffer((x, y), (CELL, CELL), tile)
                .context("image buffer of the wrong size")?;
            area.draw(&bitmap).map_err(err)?;
            let Some(run) = run.map(|k| &e.runs[k]) else {
                continue;
            };
            let score = run.scores[r];
            let flagged = score >= run.threshold;
            let verdict = match (flagged, image.anomalous) {
                (true, true) | (false, false) => "correct",
                (true, false) => "false alarm",
                (false, true) => "missed",
            };
            let mut caption_lines = vec![
                format!("{score:.2} → {}", if flagged { "defect" } else { "good" }),
                format!("({verdict})"),
            ];
            if caption_lines.len() < caption_line_count(e) {
                caption_lines.push(format!("top {}", scale_label(run.map_max[r])));
            }
            draw_lines(
                area,
                &caption_lines,
                (x, y + CELL as i32 + pad as i32 / 2),
                TICK_PT,
            )?;
            if run.map_max[r] == 0.0 {
                area.draw(&Text::new(
                    "map all zero",
                    (x + pad as i32, y + pad as i32),
                    text_style(TICK_PT).color(&WHITE),
                ))
                .map_err(err)?;
            }
        }
        // The row's colour bar: 0 at the foot, the row's largest map value at the top (each
        // map's own, under it, where the flows differ).
        let top = match e.maps.len() {
            1 => scale_label(row_scale(e, r)),
            _ => "top".to_string(),
        };
        colour_bar_labelled(area, (page.cell_x(page.columns()), y), CELL, &top)?;
    }
    Ok(())
}

/// The width a [`colour_bar`] takes right of the cells: the bar, a gap and its labels.
pub(super) fn colour_bar_width() -> u32 {
    BAR_PX + 2 * px(unit(), 4.0) + text_width(TICK_PT, "1.23e-4")
}

const BAR_PX: u32 = 16;

/// Lines of text under each map: the score and decision, the verdict, and where the
/// flows differ each map's own top.
fn caption_line_count(e: &Explanation) -> usize {
    match e.maps.len() {
        1 => 2,
        _ => 3,
    }
}

/// The colour scale of row `r` where the explanation has one flow: every run's (the same).
fn row_scale(e: &Explanation, r: usize) -> f32 {
    e.runs.first().map_or(0.0, |run| run.map_max[r])
}

/// A vertical viridis bar `height` pixels tall from `(x, y)` down: `top` (labelled) at the
/// head, 0 at the foot.
pub(super) fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    (x, y): (i32, i32),
    height: u32,
    top: f32,
) -> Result<()> {
    colour_bar_labelled(area, (x, y), height, &scale_label(top))
}

/// A [`colour_bar`] whose head is labelled `top`.
fn colour_bar_labelled<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    (x, y): (i32, i32),
    height: u32,
    top: &str,
) -> Result<()> {
    let steps = 64;
    for k in 0..steps {
        let v = 1.0 - (k as f32 + 0.5) / steps as f32;
        let y0 = y + (k * height as i32) / steps;
        let y1 = y + ((k + 1) * height as i32) / steps;
        area.draw(&Rectangle::new(
            [(x, y0), (x + BAR_PX as i32, y1)],
            ViridisRGB::get_color_normalized(v, 0.0, 1.0).filled(),
        ))
        .map_err(err)?;
    }
    let tx = x + (BAR_PX + px(unit(), 4.0)) as i32;
    draw_lines(area, &[top.to_string()], (tx, y), TICK_PT)?;
    let foot = y + height as i32 - line_height(TICK_PT) as i32;
    draw_lines(area, &["0".to_string()], (tx, foot), TICK_PT)
}

/// `input` with `values` (in `[0, 1]`, one per pixel) laid over it in viridis, `weight` of
/// the colour against the picture.
pub(super) fn blend_viridis(input: &[u8], values: &[f32], weight: f32) -> Vec<u8> {
    let mut tile = input.to_vec();
    for (k, v) in values.iter().enumerate() {
        let c = ViridisRGB::get_color_normalized(*v, 0.0, 1.0);
        for (ch, value) in [c.0, c.1, c.2].into_iter().enumerate() {
            let p = &mut tile[3 * k + ch];
            *p = ((1.0 - weight) * *p as f32 + weight * value as f32).round() as u8;
        }
    }
    tile
}

/// Draws the qualitative figure from the `adn explain` folder `explain_dir`: `<stem>.png`,
/// or one page per few runs (`<stem>_1.png`, …) where they do not fit across two columns.
pub fn write_map_grid(explain_dir: &Path, exp: &Experiment, stem: &Path) -> Result<Vec<PathBuf>> {
    write_grid(&MapCells(Explained::read(explain_dir, exp)?), stem)
}

/// The qualitative figure's pages laid out, not written: each page's file name with its
/// breaches of the print rules.
pub fn check_map_grid(
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    check_grid(&MapCells(Explained::read(explain_dir, exp)?), stem)
}

/// A colour bar's top value: three significant digits, in scientific form only when small
/// or large (CS-Flow's maps reach 10⁵).
fn scale_label(v: f32) -> String {
    if v == 0.0 {
        "0".into()
    } else if (0.01..1000.0).contains(&v.abs()) {
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
        assert_eq!(scale_label(142703.27), "1.43e5");
        assert_eq!(scale_label(999.0), "999");
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
