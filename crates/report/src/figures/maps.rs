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

use adn_record::Explanation;

use super::gradcam::{rgb, run_label};
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

pub(super) fn resized_rgb(path: &Path, side: u32) -> Result<Vec<u8>> {
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
        .map(|(_, d)| Ok(Explanation::read(d)?))
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
    let gap = 10u32;
    let pad = px(unit(), 4.0);
    let title_lines = vec![
        format!("{title}:"),
        "DifferNet's anomaly map, one colour scale per column".to_string(),
    ];
    let mut row_labels = vec!["input".to_string()];
    row_labels.extend(labels.iter().cloned());
    let left = row_labels
        .iter()
        .map(|l| text_width(LABEL_PT, l))
        .max()
        .unwrap_or(0)
        + 2 * pad;
    let head = 2 * line_height(TITLE_PT) + 2 * line_height(TICK_PT) + 2 * pad;
    let note = "Masks outlined in red; each column scaled to its largest map value.";
    let cols = categories.len() as u32;
    let rows = row_labels.len() as u32;
    let size = (
        (left + cols * (CELL + gap)).max(text_width(TICK_PT, note) + 2 * pad),
        head + rows * (CELL + gap) + line_height(TICK_PT) + 2 * pad,
    );
    let path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        draw_lines(&area, &title_lines, (pad as i32, pad as i32), TITLE_PT)?;
        for (r, l) in row_labels.iter().enumerate() {
            let y = (head + r as u32 * (CELL + gap) + CELL / 2) as i32;
            draw_lines(&area, std::slice::from_ref(l), (pad as i32, y), LABEL_PT)?;
        }
        for (c, ((name, dir), e)) in categories.iter().zip(&explained).enumerate() {
            let x = (left + c as u32 * (CELL + gap)) as i32;
            let Some(r) = e.images.iter().position(|i| i.anomalous) else {
                continue;
            };
            let y = (head - 2 * line_height(TICK_PT) - pad / 2) as i32;
            draw_lines(
                &area,
                &[name.clone(), e.images[r].defect.clone()],
                (x, y),
                TICK_PT,
            )?;
            for (k, tile) in row_tiles(dir, e, r)?.into_iter().enumerate() {
                let y = (head + k as u32 * (CELL + gap)) as i32;
                let bitmap = BitMapElement::with_owned_buffer((x, y), (CELL, CELL), tile)
                    .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
            }
        }
        let y = (size.1 - line_height(TICK_PT) - pad) as i32;
        draw_lines(&area, &[note.to_string()], (pad as i32, y), TICK_PT)?;
        area.present().map_err(err)?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One page of the qualitative figure: where its parts go, in pixels.
struct MapPage {
    /// The runs (indices into the explanation's) this page shows after the input.
    runs: std::ops::Range<usize>,
    width: u32,
    height: u32,
    left: u32,
    top: u32,
    headers: Vec<Vec<String>>,
    labels: Vec<Vec<String>>,
    notes: Vec<String>,
}

pub(super) const GAP: u32 = 10;

/// The pages of the qualitative figure of `e`: each exactly two paper columns (7 in) wide
/// with its text at print size, the input column and as many runs as fit; more runs go on
/// further pages.
fn map_pages(e: &Explanation, exp: &Experiment) -> Result<Vec<MapPage>> {
    let u = unit();
    let pad = px(u, 4.0);
    let width = px(u, TWO_COLUMNS);
    let label_font = font(u, LABEL_PT).into_font();
    let tick_font = font(u, TICK_PT).into_font();
    let bar = 16 + 2 * pad + text_width(TICK_PT, "0.000");
    let first = e.runs.first().map_or("the first run".to_string(), |r| {
        run_label(exp, &r.run_dir, &r.attention)
    });
    let missed = format!("(missed by {first})");
    // Row labels take what they need, at most a fifth of the width (longer ones wrap),
    // and never less than their longest word.
    let texts = || {
        e.images
            .iter()
            .map(|i| i.defect.as_str())
            .chain([missed.as_str()])
    };
    let widest = texts().map(|t| text_width(LABEL_PT, t)).max().unwrap_or(0);
    let widest_word = texts()
        .flat_map(|t| t.split([' ', '-']))
        .map(|w| text_width(LABEL_PT, w))
        .max()
        .unwrap_or(0);
    let left = (widest + 2 * pad).min(width / 5).max(widest_word + 2 * pad);
    let per_page = ((width - left - bar) / (CELL + GAP))
        .saturating_sub(1)
        .max(1) as usize;
    let mut labels = Vec::new();
    for image in &e.images {
        let mut l = wrap(&image.defect, &label_font, left - 2 * pad)?;
        if image.why == "missed by the first run" {
            l.extend(wrap(&missed, &label_font, left - 2 * pad)?);
        }
        labels.push(l);
    }
    let input = if e.images.iter().any(|i| i.mask.is_some()) {
        "input (mask in red)"
    } else {
        "input"
    };
    // The map's description, what the numbers under each map are.
    let (what, how) = e.map.split_once(": ").unwrap_or((e.map.as_str(), ""));
    let note = format!(
        "{what}: {how}. Under each map: the image's score → the decision at the run's \
         F1-optimal threshold. One colour scale per row."
    );
    let notes = wrap(&note, &tick_font, width - 2 * pad)?;
    let mut pages = Vec::new();
    let mut start = 0;
    while start < e.runs.len().max(1) {
        let runs = start..(start + per_page).min(e.runs.len());
        let mut headers = vec![wrap(input, &label_font, CELL)?];
        for r in &e.runs[runs.clone()] {
            headers.push(wrap(
                &run_label(exp, &r.run_dir, &r.attention),
                &label_font,
                CELL,
            )?);
        }
        let header_rows = headers.iter().map(Vec::len).max().unwrap_or(1) as u32;
        let top = header_rows * line_height(LABEL_PT) + 2 * pad;
        let caption = 2 * line_height(TICK_PT) + pad;
        let notes_h = notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
        let height = top + e.images.len() as u32 * (CELL + caption + GAP) + notes_h;
        start = runs.end.max(start + 1);
        pages.push(MapPage {
            runs,
            width,
            height,
            left,
            top,
            headers,
            labels: labels.clone(),
            notes: notes.clone(),
        });
    }
    Ok(pages)
}

/// Draws one page of the qualitative figure on `area`.
fn draw_map_page<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    explain_dir: &Path,
    e: &Explanation,
    page: &MapPage,
) -> Result<()> {
    let pad = px(unit(), 4.0);
    let caption = 2 * line_height(TICK_PT) + pad;
    let pitch_y = CELL + caption + GAP;
    let cols = page.headers.len() as u32;
    for (c, lines) in page.headers.iter().enumerate() {
        let x = (page.left + c as u32 * (CELL + GAP)) as i32;
        let y = (page.top - pad - lines.len() as u32 * line_height(LABEL_PT)) as i32;
        draw_lines(area, lines, (x, y), LABEL_PT)?;
    }
    for (r, image) in e.images.iter().enumerate() {
        let y = (page.top + r as u32 * pitch_y) as i32;
        let lines = &page.labels[r];
        let mid = y + CELL as i32 / 2 - (lines.len() as u32 * line_height(LABEL_PT) / 2) as i32;
        draw_lines(area, lines, (pad as i32, mid), LABEL_PT)?;
        let tiles = row_tiles(explain_dir, e, r)?;
        let shown = std::iter::once(0).chain(page.runs.clone().map(|k| k + 1));
        for (c, t) in shown.enumerate() {
            let x = (page.left + c as u32 * (CELL + GAP)) as i32;
            let bitmap = BitMapElement::with_owned_buffer((x, y), (CELL, CELL), tiles[t].clone())
                .context("image buffer of the wrong size")?;
            area.draw(&bitmap).map_err(err)?;
            if t == 0 {
                continue;
            }
            let run = &e.runs[t - 1];
            let score = run.scores[r];
            let flagged = score >= run.threshold;
            let verdict = match (flagged, image.anomalous) {
                (true, true) | (false, false) => "correct",
                (true, false) => "false alarm",
                (false, true) => "missed",
            };
            let caption_lines = [
                format!("{score:.2} → {}", if flagged { "defect" } else { "good" }),
                format!("({verdict})"),
            ];
            draw_lines(
                area,
                &caption_lines,
                (x, y + CELL as i32 + pad as i32 / 2),
                TICK_PT,
            )?;
            if image.map_max == 0.0 {
                area.draw(&Text::new(
                    "map all zero",
                    (x + pad as i32, y + pad as i32),
                    text_style(TICK_PT).color(&WHITE),
                ))
                .map_err(err)?;
            }
        }
        // The row's colour bar: 0 at the foot, the row's largest map value at the top.
        let bx = (page.left + cols * (CELL + GAP)) as i32;
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
        let tx = bx + 16 + pad as i32;
        draw_lines(area, &[scale_label(image.map_max)], (tx, y), TICK_PT)?;
        let foot = y + CELL as i32 - line_height(TICK_PT) as i32;
        draw_lines(area, &["0".to_string()], (tx, foot), TICK_PT)?;
    }
    let notes_h = page.notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
    let y = (page.height - notes_h + pad) as i32;
    draw_lines(area, &page.notes, (pad as i32, y), TICK_PT)
}

/// `<stem>.png`, or `<stem>_<k>.png` for pages 1, 2, … when the runs need more than one.
fn page_stem(stem: &Path, k: usize, pages: usize) -> PathBuf {
    if pages == 1 {
        stem.to_path_buf()
    } else {
        let name = stem.file_name().unwrap_or_default().to_string_lossy();
        stem.with_file_name(format!("{name}_{}", k + 1))
    }
}

/// The files of an earlier drawing of `stem` (the single page and numbered pages) of a
/// figure drawn in pages, for the caller to remove before drawing it again.
pub fn stale_pages(stem: &Path) -> Vec<PathBuf> {
    let name = stem
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let Some(dir) = stem.parent().and_then(|d| fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            file == format!("{name}.png")
                || file
                    .strip_prefix(&format!("{name}_"))
                    .and_then(|rest| rest.strip_suffix(".png"))
                    .is_some_and(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_digit()))
        })
        .collect()
}

/// A figure drawn as bitmap pages (the map and Grad-CAM figures): each page's size, and
/// how to draw it on any backend.
pub(super) trait Paged {
    fn pages(&self) -> usize;
    fn page_size(&self, k: usize) -> (u32, u32);
    fn draw_page<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        k: usize,
    ) -> Result<()>;
}

/// Writes every page of `fig`: `<stem>.png`, or `<stem>_1.png`, … when there are several,
/// each under a temporary name first.
pub(super) fn write_pages(fig: &impl Paged, stem: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for k in 0..fig.pages() {
        let stem = page_stem(stem, k, fig.pages());
        let path = stem.with_extension("png");
        let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
        {
            let area = BitMapBackend::new(&tmp, fig.page_size(k)).into_drawing_area();
            area.fill(&WHITE).map_err(err)?;
            fig.draw_page(&area, k)?;
            area.present().map_err(err)?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Lays out every page of `fig` without writing it: each page's file name with its
/// breaches of the print rules (a page prints two columns wide: `bitmap_unit` pixels per
/// point).
pub(super) fn check_pages(fig: &impl Paged, stem: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for k in 0..fig.pages() {
        let (w, h) = fig.page_size(k);
        let u = bitmap_unit(w);
        let (recorder, texts) = layout::Recorder::new((w, h), u);
        fig.draw_page(&recorder.into_drawing_area(), k)?;
        let name = page_stem(stem, k, fig.pages());
        out.push((
            format!(
                "{}.png",
                name.file_name().unwrap_or_default().to_string_lossy()
            ),
            layout::Layout::of(w, h, u, texts.take()).violations(),
        ));
    }
    Ok(out)
}

/// The map figure of one `adn explain` folder, laid out in pages.
struct MapFigure<'a> {
    dir: &'a Path,
    e: Explanation,
    pages: Vec<MapPage>,
}

impl<'a> MapFigure<'a> {
    fn read(dir: &'a Path, exp: &Experiment) -> Result<MapFigure<'a>> {
        register_font();
        let e = Explanation::read(dir)?;
        let pages = map_pages(&e, exp)?;
        Ok(MapFigure { dir, e, pages })
    }
}

impl Paged for MapFigure<'_> {
    fn pages(&self) -> usize {
        self.pages.len()
    }
    fn page_size(&self, k: usize) -> (u32, u32) {
        (self.pages[k].width, self.pages[k].height)
    }
    fn draw_page<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        k: usize,
    ) -> Result<()> {
        draw_map_page(area, self.dir, &self.e, &self.pages[k])
    }
}

/// Draws the qualitative figure from the `adn explain` folder `explain_dir`: `<stem>.png`,
/// or one page per few runs (`<stem>_1.png`, …) where they do not fit across two columns.
pub fn write_map_grid(explain_dir: &Path, exp: &Experiment, stem: &Path) -> Result<Vec<PathBuf>> {
    write_pages(&MapFigure::read(explain_dir, exp)?, stem)
}

/// The qualitative figure's pages laid out, not written: each page's file name with its
/// breaches of the print rules.
pub fn check_map_grid(
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    check_pages(&MapFigure::read(explain_dir, exp)?, stem)
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
