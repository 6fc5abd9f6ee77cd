//! Figures laid out as a grid of 240 px picture cells: rows (test images, or runs) ×
//! columns (an optional input column, then runs or positions). The anomaly-map figure, the
//! Grad-CAM grid and the attention pictures are all laid out this way: pages exactly two
//! paper columns (7 in) wide and at most 9 in tall, with as many columns and rows as fit,
//! headers and row labels wrapped, a note below; written as PNG, or only laid out and
//! checked against the print rules. What goes into the cells is each figure's own.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::maps::{CELL, GAP, draw_lines, line_height, text_width, unit};
use super::print::*;
use super::*;

/// The tallest page, in points (a paper's text height is about 9 in).
const PAGE_HEIGHT_PT: f64 = 9.0 * 72.0;

/// What sets one grid figure's pages apart from another's.
pub(super) struct GridSpec {
    /// Each row's label, as pieces wrapped one after the other.
    pub(super) rows: Vec<Vec<String>>,
    /// The texts whose widths set the label column's (a fifth of the width at most, never
    /// less than the longest word).
    pub(super) measure: Vec<String>,
    /// The first column's header on every page (the input), if the figure has one.
    pub(super) input: Option<String>,
    /// The headers of the other columns, split across pages as they fit.
    pub(super) columns: Vec<String>,
    pub(super) note: String,
    /// Room right of the last cell (a colour bar) and below each cell (its caption).
    pub(super) right: u32,
    pub(super) below: u32,
}

/// One page: the rows and columns it shows, and where everything goes.
pub(super) struct GridPage {
    /// The rows on the page.
    pub(super) rows: Range<usize>,
    /// The columns on the page after the input.
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
    /// The left edge of the page's column `c` (0: the input, where the figure has one).
    pub(super) fn cell_x(&self, c: usize) -> i32 {
        (self.left + c as u32 * (CELL + GAP)) as i32
    }

    /// The top edge of row `r` (a row of the figure, on this page).
    pub(super) fn row_y(&self, r: usize) -> i32 {
        (self.top + (r - self.rows.start) as u32 * self.pitch_y) as i32
    }

    /// Columns on the page: the input, if any, and its runs.
    pub(super) fn columns(&self) -> usize {
        self.headers.len()
    }

    /// The height of the page's rows of cells, from the first row's top to the last's
    /// foot.
    pub(super) fn cells_height(&self) -> u32 {
        self.rows.len().saturating_sub(1) as u32 * self.pitch_y + CELL
    }
}

pub(super) fn grid_pages(spec: &GridSpec) -> Result<Vec<GridPage>> {
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
    let input = u32::from(spec.input.is_some());
    let per_page = ((width - left - spec.right) / (CELL + GAP))
        .saturating_sub(input)
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
    let mut column_pages = Vec::new();
    let mut start = 0;
    while start < spec.columns.len().max(1) {
        let runs = start..(start + per_page).min(spec.columns.len());
        let mut headers = Vec::new();
        if let Some(input) = &spec.input {
            headers.push(wrap(input, &label_font, CELL)?);
        }
        for h in &spec.columns[runs.clone()] {
            headers.push(wrap(h, &label_font, CELL)?);
        }
        start = runs.end.max(start + 1);
        column_pages.push((runs, headers));
    }
    let header_rows = column_pages
        .iter()
        .flat_map(|(_, h)| h.iter().map(Vec::len))
        .max()
        .unwrap_or(1) as u32;
    let top = header_rows * line_height(LABEL_PT) + 2 * pad;
    let room = px(u, PAGE_HEIGHT_PT).saturating_sub(top + notes_h) + GAP;
    let rows_per_page = ((room / pitch_y) as usize).max(1);
    let mut pages = Vec::new();
    let mut first = 0;
    while first < spec.rows.len().max(1) {
        let rows = first..(first + rows_per_page).min(spec.rows.len());
        for (runs, headers) in &column_pages {
            pages.push(GridPage {
                rows: rows.clone(),
                runs: runs.clone(),
                width,
                height: top + rows.len() as u32 * pitch_y + notes_h,
                left,
                top,
                pitch_y,
                headers: headers.clone(),
                labels: labels[rows.clone()].to_vec(),
                notes: notes.clone(),
            });
        }
        first = rows.end.max(first + 1);
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
    for (lines, r) in page.labels.iter().zip(page.rows.clone()) {
        let mid = page.row_y(r) + CELL as i32 / 2
            - (lines.len() as u32 * line_height(LABEL_PT) / 2) as i32;
        draw_lines(area, lines, (pad as i32, mid), LABEL_PT)?;
    }
    let notes_h = page.notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
    let y = (page.height - notes_h + pad) as i32;
    draw_lines(area, &page.notes, (pad as i32, y), TICK_PT)
}

/// What fills the cells of a grid figure's pages.
pub(super) trait Cells {
    fn spec(&self) -> Result<GridSpec>;
    /// A key per column after the input (a run's folder name), for figures whose columns a
    /// page shows one by one: the figure then records where each column is drawn
    /// ([`ColumnPlaces`]).
    fn column_keys(&self) -> Option<Vec<String>> {
        None
    }
    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        page: &GridPage,
    ) -> Result<()>;
}

/// A grid figure laid out in pages.
struct GridFigure<'a, C: Cells> {
    cells: &'a C,
    pages: Vec<GridPage>,
}

impl<'a, C: Cells> GridFigure<'a, C> {
    fn new(cells: &'a C) -> Result<Self> {
        register_font();
        let pages = grid_pages(&cells.spec()?)?;
        Ok(GridFigure { cells, pages })
    }

    fn draw_page<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, k: usize) -> Result<()> {
        let page = &self.pages[k];
        draw_frame(area, page)?;
        self.cells.draw_cells(area, page)
    }
}

/// Where a grid figure drew each column, page by page: `<stem>.json` beside its PNGs, so
/// that the HTML page can show one run's column (and the input beside it) cut from the
/// figure without a second picture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnPlaces {
    pub pages: Vec<PagePlaces>,
}

/// One page's columns in pixels of its PNG: the band from `top` to `bottom` holds its rows
/// (cells and what is under them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PagePlaces {
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub top: i32,
    pub bottom: i32,
    pub cell: u32,
    /// The input column's left edge, when the figure has one.
    pub input_x: Option<i32>,
    /// Each column's key and left edge.
    pub columns: Vec<(String, i32)>,
}

impl ColumnPlaces {
    /// `<stem>.json` of a figure drawn with column keys, if there is one.
    pub fn read(stem: &Path) -> Option<ColumnPlaces> {
        let text = fs::read_to_string(stem.with_extension("json")).ok()?;
        serde_json::from_str(&text).ok()
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

/// Draws the grid figure `cells` as `<stem>.png`, or `<stem>_1.png`, … when it does not
/// fit one page; each page under a temporary name first. Then, and only then, the files of
/// an earlier drawing that this one did not replace (pages of a drawing with more runs) are
/// removed.
pub(super) fn write_grid(cells: &impl Cells, stem: &Path) -> Result<Vec<PathBuf>> {
    let fig = GridFigure::new(cells)?;
    let mut written = Vec::new();
    for (k, page) in fig.pages.iter().enumerate() {
        let stem = page_stem(stem, k, fig.pages.len());
        let path = stem.with_extension("png");
        let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
        {
            let area = super::glyphs::Glyphs(BitMapBackend::new(&tmp, (page.width, page.height)))
                .into_drawing_area();
            area.fill(&WHITE).map_err(err)?;
            fig.draw_page(&area, k)?;
            area.present().map_err(err)?;
        }
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    let places = stem.with_extension("json");
    match cells.column_keys() {
        Some(keys) => {
            let pages = fig
                .pages
                .iter()
                .zip(&written)
                .map(|(page, path)| {
                    let input = u32::from(page.columns() > page.runs.len()) as usize;
                    PagePlaces {
                        file: path
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned(),
                        width: page.width,
                        height: page.height,
                        top: page.row_y(page.rows.start),
                        bottom: page.row_y(page.rows.start)
                            + page.rows.len() as i32 * page.pitch_y as i32,
                        cell: CELL,
                        input_x: (input == 1).then(|| page.cell_x(0)),
                        columns: page
                            .runs
                            .clone()
                            .enumerate()
                            .map(|(c, k)| (keys[k].clone(), page.cell_x(c + input)))
                            .collect(),
                    }
                })
                .collect();
            let json = serde_json::to_string_pretty(&ColumnPlaces { pages })?;
            let tmp = stem.with_extension(format!("tmp{}.json", std::process::id()));
            fs::write(&tmp, json).with_context(|| format!("cannot write {}", tmp.display()))?;
            fs::rename(&tmp, &places)
                .with_context(|| format!("cannot write {}", places.display()))?;
        }
        None => {
            if places.is_file() {
                fs::remove_file(&places)
                    .with_context(|| format!("cannot remove {}", places.display()))?;
            }
        }
    }
    for old in stale_pages(stem) {
        if !written.contains(&old) {
            fs::remove_file(&old).with_context(|| format!("cannot remove {}", old.display()))?;
        }
    }
    Ok(written)
}

/// The grid figure `cells` laid out in pages, not written: each page's file name with its
/// breaches of the print rules (a page prints two columns wide: `bitmap_unit` pixels per
/// point).
pub(super) fn check_grid(cells: &impl Cells, stem: &Path) -> Result<Vec<(String, Vec<String>)>> {
    let fig = GridFigure::new(cells)?;
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

/// Where grid figures go: drawn to files, or laid out and checked (like [`Sink`] for the
/// charts).
pub(super) enum GridSink {
    Files(Vec<PathBuf>),
    Check(Vec<(String, Vec<String>)>),
}

impl GridSink {
    pub(super) fn put(&mut self, cells: &impl Cells, stem: &Path) -> Result<()> {
        match self {
            GridSink::Files(written) => written.extend(write_grid(cells, stem)?),
            GridSink::Check(checked) => checked.extend(check_grid(cells, stem)?),
        }
        Ok(())
    }

    pub(super) fn into_files(self) -> Vec<PathBuf> {
        match self {
            GridSink::Files(written) => written,
            GridSink::Check(_) => Vec::new(),
        }
    }

    pub(super) fn into_checked(self) -> Vec<(String, Vec<String>)> {
        match self {
            GridSink::Check(checked) => checked,
            GridSink::Files(_) => Vec::new(),
        }
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
