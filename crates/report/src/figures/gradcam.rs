//! The Grad-CAM grid composed from what `adn explain` wrote, and which runs `adn explain`
//! is given.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use plotters::prelude::*;

use adn_record::Explanation;

use crate::gather::Experiment;
use crate::tables::display_name;

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

/// The paper's qualitative figure from an `adn explain` folder: test images (rows) ×
/// {input, each run's Grad-CAM overlay} (columns), as `<stem>.png` (bitmaps do not go into
/// the SVG backend without its image feature, so PNG only).
pub fn write_gradcam_grid(
    explain_dir: &Path,
    exp: &Experiment,
    title: &str,
    stem: &Path,
) -> Result<PathBuf> {
    register_font();
    let e = Explanation::read(explain_dir)?;
    let (cell, _, _) = rgb(&explain_dir.join(&e.inputs[0]))?;
    let (left, top, gap) = (110u32, 70u32, 6u32);
    let cols = 1 + e.runs.len() as u32;
    let rows = e.images.len() as u32;
    let size = (left + cols * (cell + gap), top + rows * (cell + gap));
    let path = stem.with_extension("png");
    let tmp = stem.with_extension(format!("tmp{}.png", std::process::id()));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let u = bitmap_unit(size.0);
        let style = |pt: f64| TextStyle::from(font(u, pt).into_font());
        area.draw(&Text::new(
            format!("{title}: Grad-CAM of the anomaly score at {}", e.layer),
            (10, 8),
            style(TITLE_PT),
        ))
        .map_err(err)?;
        let mut headers = vec!["input".to_string()];
        headers.extend(
            e.runs
                .iter()
                .map(|r| run_label(exp, &r.run_dir, &r.attention)),
        );
        for (c, h) in headers.iter().enumerate() {
            let x = (left + c as u32 * (cell + gap)) as i32;
            area.draw(&Text::new(h.clone(), (x, top as i32 - 24), style(LABEL_PT)))
                .map_err(err)?;
        }
        for (r, image) in e.images.iter().enumerate() {
            let y = (top + r as u32 * (cell + gap)) as i32;
            area.draw(&Text::new(
                image.defect.clone(),
                (8, y + cell as i32 / 2 - 8),
                style(LABEL_PT),
            ))
            .map_err(err)?;
            let mut files = vec![e.inputs[r].clone()];
            files.extend(e.runs.iter().map(|run| run.overlays[r].clone()));
            for (c, f) in files.iter().enumerate() {
                let (w, h, buf) = rgb(&explain_dir.join(f))?;
                let x = (left + c as u32 * (cell + gap)) as i32;
                let bitmap = BitMapElement::with_owned_buffer((x, y), (w, h), buf)
                    .context("image buffer of the wrong size")?;
                area.draw(&bitmap).map_err(err)?;
            }
        }
        area.present().map_err(err)?;
    }
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
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
