//! Figures of test images (rows) × {the input, then each run} (columns) from an `adn
//! explain` folder: the anomaly-map figure and the Grad-CAM grid. Both are laid out the
//! same way: 240 px cells, pages exactly two paper columns (7 in) wide with as many runs
//! as fit, headers and row labels wrapped, a note below; and written as PNG, or only laid
//! out and checked against the print rules. What goes into the cells is each figure's own.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use adn_record::Explanation;

use crate::gather::Experiment;

use super::gradcam::{self, run_label};
use super::maps::{self, CELL, GAP, draw_lines, line_height, text_width, unit};
use super::print::*;
use super::*;

/// What sets one grid figure's pages apart from another's.
pub(super) struct GridSpec {
    /// Each row's label, as pieces wrapped one after the other.
    pub(super) rows: Vec<Vec<String>>,
    /// The texts whose widths set the label column's (a fifth of the width at most, never
    /// less than the longest word).
    pub(super) measure: Vec<String>,
    pub(super) input: String,
    pub(super) note: String,
    /// Room right of the last cell (a colour bar) and below each cell (its caption).
    pub(super) right: u32,
    pub(super) below: u32,
}

/// One page: the runs it shows after the input, and where everything goes.
pub(super) struct GridPage {
    pub(super) runs: Range<usize>,
    pub(super) width: u32,
    pub(super) height: u32,
    left: u32,
    top: u32,
    pitch_y: u32,
    headers: Vec<Vec<String>>,
    labels: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl GridPage {
    /// The left edge of column `c` (0: the input).
    pub(super) fn cell_x(&self, c: usize) -> i32 {
        (self.left + c as u32 * (CELL + GAP)) as i32
    }

    /// The top edge of row `r`.
    pub(super) fn row_y(&self, r: usize) -> i32 {
        (self.top + r as u32 * self.pitch_y) as i32
    }

    /// Columns on the page: the input and its runs.
    pub(super) fn columns(&self) -> usize {
        self.headers.len()
    }
}

fn grid_pages(e: &Explanation, exp: &Experiment, spec: &GridSpec) -> Result<Vec<GridPage>> {
    let u = unit();
    let pad = px(u, 4.0);
    let width = px(u, TWO_COLUMNS);
    let label_font = font(u, LABEL_PT).into_font();
    let widest = spec
        .measure
        .iter()
        .map(|t| text_width(LABEL_PT, t))
        .max()
        .unwrap_or(0);
    let widest_word = spec
        .measure
        .iter()
        .flat_map(|t| t.split([' ', '-']))
        .map(|w| text_width(LABEL_PT, w))
        .max()
        .unwrap_or(0);
    let left = (widest + 2 * pad).min(width / 5).max(widest_word + 2 * pad);
    let per_page = ((width - left - spec.right) / (CELL + GAP))
        .saturating_sub(1)
        .max(1) as usize;
    let mut labels = Vec::new();
    for pieces in &spec.rows {
        let mut lines = Vec::new();
        for piece in pieces {
            lines.extend(wrap(piece, &label_font, left - 2 * pad)?);
        }
        labels.push(lines);
    }
    let notes = wrap(&spec.note, &font(u, TICK_PT).into_font(), width - 2 * pad)?;
    let notes_h = notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
    let pitch_y = CELL + spec.below + GAP;
    let mut pages = Vec::new();
    let mut start = 0;
    while start < e.runs.len().max(1) {
        let runs = start..(start + per_page).min(e.runs.len());
        let mut headers = vec![wrap(&spec.input, &label_font, CELL)?];
        for r in &e.runs[runs.clone()] {
            headers.push(wrap(
                &run_label(exp, &r.run_dir, &r.attention),
                &label_font,
                CELL,
            )?);
        }
        let header_rows = headers.iter().map(Vec::len).max().unwrap_or(1) as u32;
        let top = header_rows * line_height(LABEL_PT) + 2 * pad;
        start = runs.end.max(start + 1);
        pages.push(GridPage {
            runs,
            width,
            height: top + e.images.len() as u32 * pitch_y + notes_h,
            left,
            top,
            pitch_y,
            headers,
            labels: labels.clone(),
            notes: notes.clone(),
        });
    }
    Ok(pages)
}

/// The headers, the row labels (centred on their cells) and the note of `page`.
fn draw_frame<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, page: &GridPage) -> Result<()> {
    let pad = px(unit(), 4.0);
    for (c, lines) in page.headers.iter().enumerate() {
        let y = (page.top - pad - lines.len() as u32 * line_height(LABEL_PT)) as i32;
        draw_lines(area, lines, (page.cell_x(c), y), LABEL_PT)?;
    }
    for (r, lines) in page.labels.iter().enumerate() {
        let mid = page.row_y(r) + CELL as i32 / 2
            - (lines.len() as u32 * line_height(LABEL_PT) / 2) as i32;
        draw_lines(area, lines, (pad as i32, mid), LABEL_PT)?;
    }
    let notes_h = page.notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
    let y = (page.height - notes_h + pad) as i32;
    draw_lines(area, &page.notes, (pad as i32, y), TICK_PT)
}

/// Which grid figure.
#[derive(Debug, Clone, Copy)]
pub(super) enum Grid {
    Maps,
    GradCam,
}

/// A grid figure of one `adn explain` folder, laid out in pages.
struct GridFigure<'a> {
    grid: Grid,
    dir: &'a Path,
    e: Explanation,
    pages: Vec<GridPage>,
}

impl<'a> GridFigure<'a> {
    fn read(grid: Grid, dir: &'a Path, exp: &Experiment) -> Result<GridFigure<'a>> {
        register_font();
        let e = Explanation::read(dir)?;
        let spec = match grid {
            Grid::Maps => maps::map_spec(&e, exp),
            Grid::GradCam => gradcam::cam_spec(&e),
        };
        let pages = grid_pages(&e, exp, &spec)?;
        Ok(GridFigure {
            grid,
            dir,
            e,
            pages,
        })
    }

    fn draw_page<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, k: usize) -> Result<()> {
        let page = &self.pages[k];
        draw_frame(area, page)?;
        match self.grid {
            Grid::Maps => maps::draw_map_cells(area, self.dir, &self.e, page),
            Grid::GradCam => gradcam::draw_cam_cells(area, self.dir, &self.e, page),
        }
    }
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

/// Draws the `grid` figure of the `adn explain` folder `explain_dir`: `<stem>.png`, or
/// `<stem>_1.png`, … when its runs do not fit across two columns; each page under a
/// temporary name first. Then, and only then, the files of an earlier drawing that this
/// one did not replace (pages of a drawing with more runs) are removed.
pub(super) fn write_grid(
    grid: Grid,
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    let fig = GridFigure::read(grid, explain_dir, exp)?;
    let mut written = Vec::new();
    for (k, page) in fig.pages.iter().enumerate() {
        let stem = page_stem(stem, k, fig.pages.len());
        let path = stem.with_extension("png");
        let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
        {
            let area = BitMapBackend::new(&tmp, (page.width, page.height)).into_drawing_area();
            area.fill(&WHITE).map_err(err)?;
            fig.draw_page(&area, k)?;
            area.present().map_err(err)?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    for old in stale_pages(stem) {
        if !written.contains(&old) {
            fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
        }
    }
    Ok(written)
}

/// The `grid` figure's pages laid out, not written: each page's file name with its
/// breaches of the print rules (a page prints two columns wide: `bitmap_unit` pixels per
/// point).
pub(super) fn check_grid(
    grid: Grid,
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    let fig = GridFigure::read(grid, explain_dir, exp)?;
    let mut out = Vec::new();
    for (k, page) in fig.pages.iter().enumerate() {
        let (w, h) = (page.width, page.height);
        let u = bitmap_unit(w);
        let (recorder, texts) = layout::Recorder::new((w, h), u);
        fig.draw_page(&recorder.into_drawing_area(), k)?;
        let name = page_stem(stem, k, fig.pages.len());
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
