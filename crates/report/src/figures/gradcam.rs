//! The Grad-CAM grid composed from what `adn explain` wrote, and which runs `adn explain`
//! is given.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use adn_record::Explanation;

use crate::gather::Experiment;
use crate::tables::display_name;

use super::maps::{
    self, CELL, GAP, Paged, check_pages, draw_lines, line_height, resized_rgb, unit, write_pages,
};
use super::print::*;
use super::*;

/// A run's column header: its variant in display form (`SE / joint`), found by its folder,
/// or its attention when the folder is not one of the experiment's.
pub(super) fn run_label(exp: &Experiment, run_dir: &str, attention: &str) -> String {
    let dir = Path::new(run_dir);
    match exp.runs.iter().find(|r| r.dir == dir) {
        Some(r) => display_name(&r.variant),
        None => display_name(attention),
    }
}

pub(super) fn rgb(path: &Path) -> Result<(u32, u32, Vec<u8>)> {
    let img = image::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .to_rgb8();
    Ok((img.width(), img.height(), img.into_raw()))
}

/// One page of the Grad-CAM grid: the runs it shows after the input, and where things go.
struct CamPage {
    runs: std::ops::Range<usize>,
    width: u32,
    height: u32,
    left: u32,
    top: u32,
    headers: Vec<Vec<String>>,
    labels: Vec<Vec<String>>,
    notes: Vec<String>,
}

/// The pages of the Grad-CAM grid of `e`, each exactly 7 in wide at print size, the input
/// column and as many runs as fit (the cells as the map figure's).
fn cam_pages(e: &Explanation, exp: &Experiment) -> Result<Vec<CamPage>> {
    let u = unit();
    let pad = px(u, 4.0);
    let width = px(u, TWO_COLUMNS);
    let label_font = font(u, LABEL_PT).into_font();
    let widest = e
        .images
        .iter()
        .map(|i| maps::text_width(LABEL_PT, &i.defect))
        .max()
        .unwrap_or(0);
    let widest_word = e
        .images
        .iter()
        .flat_map(|i| i.defect.split([' ', '-']))
        .map(|w| maps::text_width(LABEL_PT, w))
        .max()
        .unwrap_or(0);
    let left = (widest + 2 * pad).min(width / 5).max(widest_word + 2 * pad);
    let per_page = ((width - left) / (CELL + GAP)).saturating_sub(1).max(1) as usize;
    let labels = e
        .images
        .iter()
        .map(|i| wrap(&i.defect, &label_font, left - 2 * pad))
        .collect::<Result<Vec<_>>>()?;
    let note = format!(
        "Grad-CAM of the anomaly score at {}, laid over the input: blue low, red high, each \
         image on its own scale.",
        e.layer
    );
    let notes = wrap(&note, &font(u, TICK_PT).into_font(), width - 2 * pad)?;
    let mut pages = Vec::new();
    let mut start = 0;
    while start < e.runs.len().max(1) {
        let runs = start..(start + per_page).min(e.runs.len());
        let mut headers = vec![wrap("input", &label_font, CELL)?];
        for r in &e.runs[runs.clone()] {
            headers.push(wrap(
                &run_label(exp, &r.run_dir, &r.attention),
                &label_font,
                CELL,
            )?);
        }
        let top = headers.iter().map(Vec::len).max().unwrap_or(1) as u32 * line_height(LABEL_PT)
            + 2 * pad;
        let notes_h = notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
        let height = top + e.images.len() as u32 * (CELL + GAP) + notes_h;
        start = runs.end.max(start + 1);
        pages.push(CamPage {
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

fn draw_cam_page<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    explain_dir: &Path,
    e: &Explanation,
    page: &CamPage,
) -> Result<()> {
    let pad = px(unit(), 4.0);
    for (c, lines) in page.headers.iter().enumerate() {
        let x = (page.left + c as u32 * (CELL + GAP)) as i32;
        let y = (page.top - pad - lines.len() as u32 * line_height(LABEL_PT)) as i32;
        draw_lines(area, lines, (x, y), LABEL_PT)?;
    }
    for (r, lines) in page.labels.iter().enumerate() {
        let y = (page.top + r as u32 * (CELL + GAP)) as i32;
        let mid = y + CELL as i32 / 2 - (lines.len() as u32 * line_height(LABEL_PT) / 2) as i32;
        draw_lines(area, lines, (pad as i32, mid), LABEL_PT)?;
        let mut files = vec![e.inputs[r].clone()];
        files.extend(
            e.runs[page.runs.clone()]
                .iter()
                .map(|run| run.overlays[r].clone()),
        );
        for (c, f) in files.iter().enumerate() {
            let tile = resized_rgb(&explain_dir.join(f), CELL)?;
            let x = (page.left + c as u32 * (CELL + GAP)) as i32;
            let bitmap = BitMapElement::with_owned_buffer((x, y), (CELL, CELL), tile)
                .context("image buffer of the wrong size")?;
            area.draw(&bitmap).map_err(err)?;
        }
    }
    let notes_h = page.notes.len() as u32 * line_height(TICK_PT) + 2 * pad;
    let y = (page.height - notes_h + pad) as i32;
    draw_lines(area, &page.notes, (pad as i32, y), TICK_PT)
}

/// The Grad-CAM grid of one `adn explain` folder, laid out in pages.
struct CamFigure<'a> {
    dir: &'a Path,
    e: Explanation,
    pages: Vec<CamPage>,
}

impl<'a> CamFigure<'a> {
    fn read(dir: &'a Path, exp: &Experiment) -> Result<CamFigure<'a>> {
        register_font();
        let e = Explanation::read(dir)?;
        let pages = cam_pages(&e, exp)?;
        Ok(CamFigure { dir, e, pages })
    }
}

impl Paged for CamFigure<'_> {
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
        draw_cam_page(area, self.dir, &self.e, &self.pages[k])
    }
}

/// The paper's qualitative figure from an `adn explain` folder: test images (rows) ×
/// {input, each run's Grad-CAM overlay} (columns), as `<stem>.png`, or in pages
/// (`<stem>_1.png`, …) where the runs do not fit across 7 in. PNG only (bitmaps do not go
/// into the SVG backend without its image feature).
pub fn write_gradcam_grid(
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<PathBuf>> {
    write_pages(&CamFigure::read(explain_dir, exp)?, stem)
}

/// The Grad-CAM grid's pages laid out, not written: each page's file name with its
/// breaches of the print rules.
pub fn check_gradcam_grid(
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    check_pages(&CamFigure::read(explain_dir, exp)?, stem)
}

/// One `adn explain` call of the report: a dataset × category, the run folders of the first
/// complete seed of every variant (each still holding its model), and the file names'
/// common part.
pub struct ExplainGroup {
    pub dataset: String,
    pub category: String,
    pub title: String,
    /// `<dataset>_<category>`, slugged: the figures are `gradcam_<slug>.png`,
    /// `attention_channels_<slug>.png` and so on.
    pub slug: String,
    pub runs: Vec<PathBuf>,
}

/// The `adn explain` calls the report makes, one per dataset × category whose runs still
/// hold their models.
pub fn explain_groups(exp: &Experiment) -> Vec<ExplainGroup> {
    let mut out = Vec::new();
    for d in exp.datasets() {
        for c in exp.categories(&d) {
            let runs: Vec<PathBuf> = first_runs(exp, &d, &c)
                .into_iter()
                .map(|(_, r)| r.dir.clone())
                .collect();
            if !runs.is_empty() && runs.iter().all(|r| r.join("model.safetensors").is_file()) {
                out.push(ExplainGroup {
                    dataset: d.clone(),
                    category: c.clone(),
                    title: format!("{d} / {c}"),
                    slug: format!("{}_{}", slug(&d), slug(&c)),
                    runs,
                });
            }
        }
    }
    out
}
