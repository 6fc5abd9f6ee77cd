//! The Grad-CAM grid composed from what `adn explain` wrote, and which runs `adn explain`
//! is given.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use adn_record::Explanation;

use crate::gather::Experiment;
use crate::tables::display_name;

use super::grid::{Cells, GridPage, GridSpec, check_grid, write_grid};
use super::maps::{
    CELL, Explained, blend_viridis, colour_bar, colour_bar_width, read_map, resized_rgb,
};
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

/// The Grad-CAM grid's rows, header and note (see [`grid`]): rows labelled with their
/// defect type, one colour bar right of the cells for the whole figure.
struct CamCells<'a>(Explained<'a>);

impl<'a> CamCells<'a> {
    /// The explanation in `dir`, refused where a run has no Grad-CAM (a flow on feature
    /// maps: Grad-CAM is of DifferNet's score).
    fn read(dir: &'a Path, exp: &'a Experiment) -> Result<Self> {
        let x = Explained::read(dir, exp)?;
        if let Some(run) = x.e.runs.iter().find(|r| r.cams.is_empty()) {
            anyhow::bail!(
                "{}: run {} ({}) has no Grad-CAM; the Grad-CAM grid is DifferNet's",
                dir.display(),
                run.run_dir,
                run.flow
            );
        }
        Ok(CamCells(x))
    }
}

impl Cells for CamCells<'_> {
    fn spec(&self) -> Result<GridSpec> {
        Ok(cam_spec(&self.0))
    }

    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        page: &GridPage,
    ) -> Result<()> {
        draw_cam_cells(area, self.0.dir, &self.0.e, page)
    }
}

fn cam_spec(x: &Explained) -> GridSpec {
    let e = &x.e;
    GridSpec {
        rows: e.images.iter().map(|i| vec![i.defect.clone()]).collect(),
        measure: e.images.iter().map(|i| i.defect.clone()).collect(),
        input: Some("input".into()),
        columns: x.run_labels(),
        note: format!(
            "Grad-CAM of the anomaly score at {}, laid over the input: which positions raise \
             the score. One colour scale for every image and run, 0 to the largest value \
             (score units per position).",
            e.layer
        ),
        right: colour_bar_width(),
        below: 0,
    }
}

/// The cells of one page of the Grad-CAM grid: per row the input and the page's runs'
/// Grad-CAM in viridis over it, and the figure's colour bar beside the rows.
fn draw_cam_cells<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    explain_dir: &Path,
    e: &Explanation,
    page: &GridPage,
) -> Result<()> {
    for r in page.rows.clone() {
        let input = resized_rgb(&explain_dir.join(&e.inputs[r]), CELL)?;
        let mut tiles = vec![input.clone()];
        for run in &e.runs[page.runs.clone()] {
            let cam = read_map(&explain_dir.join(&run.cams[r]), CELL)?;
            tiles.push(blend_viridis(&input, &cam, 0.6));
        }
        for (c, tile) in tiles.into_iter().enumerate() {
            let bitmap = BitMapElement::with_owned_buffer(
                (page.cell_x(c), page.row_y(r)),
                (CELL, CELL),
                tile,
            )
            .context("image buffer of the wrong size")?;
            area.draw(&bitmap).map_err(err)?;
        }
    }
    if !page.rows.is_empty() {
        colour_bar(
            area,
            (page.cell_x(page.columns()), page.row_y(page.rows.start)),
            page.cells_height(),
            e.cam_max,
        )?;
    }
    Ok(())
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
    write_grid(&CamCells::read(explain_dir, exp)?, stem)
}

/// The Grad-CAM grid's pages laid out, not written: each page's file name with its
/// breaches of the print rules.
pub fn check_gradcam_grid(
    explain_dir: &Path,
    exp: &Experiment,
    stem: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    check_grid(&CamCells::read(explain_dir, exp)?, stem)
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
/// hold their models. An experiment that crosses flows explains each flow without
/// attention (the families side by side); its attention variants are compared in its
/// tables.
pub fn explain_groups(exp: &Experiment) -> Vec<ExplainGroup> {
    let crosses_flows = !exp.flows().is_empty();
    let mut out = Vec::new();
    for d in exp.datasets() {
        for c in exp.categories(&d) {
            let runs: Vec<PathBuf> = first_runs(exp, &d, &c)
                .into_iter()
                .filter(|(_, r)| !crosses_flows || r.attention == "none")
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
