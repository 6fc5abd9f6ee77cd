//! Pictures of the attention itself, drawn from the `attention.json` that `adn explain`
//! writes: every run's channel gates per position (each cell channels × images, good images
//! left of the defective ones), and CBAM's spatial gates laid over the input images. Both
//! are grid figures (see [`grid`]): pages 7 in wide, one colour scale with its bar. PNG
//! only: a cell is thousands of values.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

use adn_record::{AttentionPictures as Pictures, GateValues};

use crate::gather::Experiment;

use super::gradcam::run_label;
use super::grid::{Cells, GridPage, GridSink, GridSpec};
use super::maps::{CELL, blend_viridis, colour_bar, colour_bar_width, resized_rgb};

/// The colour scale's top: 1 for sigmoid gates, 2 once an identity-started gate (in (0, 2))
/// exceeds 1, so that every cell of a figure reads on the same scale.
fn scale_top<'a>(values: impl Iterator<Item = &'a f32>) -> f32 {
    if values.fold(0.0f32, |m, v| m.max(*v)) > 1.0 {
        2.0
    } else {
        1.0
    }
}

/// Draws `tiles` (CELL-sized RGB) at `(page column, figure row)` and the figure's colour bar
/// beside the page's rows.
fn draw_tiles<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    page: &GridPage,
    tiles: Vec<(usize, usize, Vec<u8>)>,
    top: f32,
) -> Result<()> {
    for (c, r, tile) in tiles {
        let bitmap =
            BitMapElement::with_owned_buffer((page.cell_x(c), page.row_y(r)), (CELL, CELL), tile)
                .context("image buffer of the wrong size")?;
        area.draw(&bitmap).map_err(super::err)?;
    }
    colour_bar(
        area,
        (page.cell_x(page.columns()), page.row_y(page.rows.start)),
        page.cells_height(),
        top,
    )
}

/// Channel gates: one cell per run with a channel gate (row) and position (column), each
/// channels (down) × images (across), good | defective.
struct ChannelCells<'a> {
    pictures: &'a Pictures,
    labels: Vec<String>,
    /// The runs shown (those with a channel gate somewhere) and the positions, in order.
    runs: Vec<usize>,
    positions: Vec<String>,
    top: f32,
}

impl<'a> ChannelCells<'a> {
    fn new(pictures: &'a Pictures, labels: &[String]) -> Self {
        let channel = |g: &&GateValues| g.gate == "channel";
        let runs: Vec<usize> = (0..pictures.runs.len())
            .filter(|&r| {
                pictures.runs[r]
                    .positions
                    .iter()
                    .any(|p| p.gates.iter().any(|g| channel(&g)))
            })
            .collect();
        let mut positions: Vec<String> = Vec::new();
        for &r in &runs {
            for p in &pictures.runs[r].positions {
                if p.gates.iter().any(|g| channel(&g)) && !positions.contains(&p.position) {
                    positions.push(p.position.clone());
                }
            }
        }
        let top = scale_top(
            pictures
                .runs
                .iter()
                .flat_map(|r| r.positions.iter())
                .flat_map(|p| p.gates.iter())
                .filter(channel)
                .flat_map(|g| g.values.iter()),
        );
        ChannelCells {
            pictures,
            labels: runs.iter().map(|&r| labels[r].clone()).collect(),
            runs,
            positions,
            top,
        }
    }

    fn gate(&self, row: usize, position: &str) -> Option<&GateValues> {
        self.pictures.runs[self.runs[row]]
            .positions
            .iter()
            .find(|p| p.position == position)?
            .gates
            .iter()
            .find(|g| g.gate == "channel")
    }
}

/// One cell of the channel figure: each image a band of columns, the good images left of
/// a thin white gap and the defective ones right of it; down, the channels, averaged into
/// the cell's rows when there are more than it has pixels.
fn channel_tile(g: &GateValues, images: &[adn_record::PictureImage], top: f32) -> Vec<u8> {
    let side = CELL as usize;
    let n = images.len().max(1);
    let good = images.iter().filter(|i| !i.anomalous).count();
    let gap = if good == 0 || good == n { 0 } else { 4 };
    let room = side - gap;
    let good_w = room * good / n;
    let channels = g.shape[1];
    let mut tile = vec![255u8; 3 * side * side];
    for x in 0..side {
        let i = if x < good_w {
            x * good / good_w.max(1)
        } else if x < good_w + gap {
            continue;
        } else {
            good + (x - good_w - gap) * (n - good) / (room - good_w).max(1)
        };
        let values = g.of_image(i.min(n - 1));
        for y in 0..side {
            let c0 = y * channels / side;
            let c1 = ((y + 1) * channels / side).max(c0 + 1);
            let v = values[c0..c1].iter().sum::<f32>() / (c1 - c0) as f32;
            let c = ViridisRGB::get_color_normalized(v, 0.0, top);
            tile[3 * (y * side + x)..3 * (y * side + x) + 3].copy_from_slice(&[c.0, c.1, c.2]);
        }
    }
    tile
}

impl Cells for ChannelCells<'_> {
    fn spec(&self) -> Result<GridSpec> {
        let images = &self.pictures.images;
        let good = images.iter().filter(|i| !i.anomalous).count();
        let channels: Vec<String> = self
            .positions
            .iter()
            .map(|p| {
                let c = (0..self.runs.len())
                    .find_map(|r| self.gate(r, p))
                    .map_or(0, |g| g.shape[1]);
                format!("{p} ({c} channels)")
            })
            .collect();
        Ok(GridSpec {
            rows: self.labels.iter().map(|l| vec![l.clone()]).collect(),
            measure: self.labels.clone(),
            input: None,
            columns: channels,
            note: format!(
                "Channel gates of each run (rows) at each position (columns). In a cell: every \
                 channel's gate (down, the first at the top) on {good} good | {} defective \
                 test images (across, a thin white gap between). One colour scale, 0 to {}.",
                images.len() - good,
                self.top
            ),
            right: colour_bar_width(),
            below: 0,
        })
    }

    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        page: &GridPage,
    ) -> Result<()> {
        let mut tiles = Vec::new();
        for r in page.rows.clone() {
            for (c, p) in self.positions[page.runs.clone()].iter().enumerate() {
                if let Some(g) = self.gate(r, p) {
                    tiles.push((c, r, channel_tile(g, &self.pictures.images, self.top)));
                }
            }
        }
        draw_tiles(area, page, tiles, self.top)
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

/// CBAM's spatial gates over the input: rows are the first `PER_KIND` good and defective
/// images, columns the input, then each CBAM run at each position.
struct SpatialCells<'a> {
    dir: &'a Path,
    pictures: &'a Pictures,
    headers: Vec<String>,
    images: Vec<usize>,
    /// (run, position) of every spatial gate.
    columns: Vec<(usize, usize)>,
    top: f32,
}

const PER_KIND: usize = 2;

impl<'a> SpatialCells<'a> {
    /// `None` when no run has a spatial gate.
    fn new(dir: &'a Path, pictures: &'a Pictures, labels: &[String]) -> Option<Self> {
        let mut images: Vec<usize> = Vec::new();
        for anomalous in [false, true] {
            images.extend(
                (0..pictures.images.len())
                    .filter(|&i| pictures.images[i].anomalous == anomalous)
                    .take(PER_KIND),
            );
        }
        let mut columns = Vec::new();
        let mut headers = Vec::new();
        for (r, run) in pictures.runs.iter().enumerate() {
            for (p, pos) in run.positions.iter().enumerate() {
                if pos.gates.iter().any(|g| g.gate == "spatial") {
                    columns.push((r, p));
                    headers.push(format!("{} at {}", labels[r], pos.position));
                }
            }
        }
        if columns.is_empty() || images.is_empty() {
            return None;
        }
        let mut cells = SpatialCells {
            dir,
            pictures,
            headers,
            images,
            columns,
            top: 1.0,
        };
        cells.top = scale_top((0..cells.columns.len()).flat_map(|c| cells.gate(c).values.iter()));
        Some(cells)
    }

    fn gate(&self, column: usize) -> &GateValues {
        let (r, p) = self.columns[column];
        self.pictures.runs[r].positions[p]
            .gates
            .iter()
            .find(|g| g.gate == "spatial")
            .expect("a spatial column")
    }
}

impl Cells for SpatialCells<'_> {
    fn spec(&self) -> Result<GridSpec> {
        let labels: Vec<String> = self
            .images
            .iter()
            .map(|&i| self.pictures.images[i].defect.clone())
            .collect();
        Ok(GridSpec {
            rows: labels.iter().map(|l| vec![l.clone()]).collect(),
            measure: labels,
            input: Some("input".into()),
            columns: self.headers.clone(),
            note: format!(
                "CBAM's spatial gate of each run at each position (columns), upsampled to the \
                 input and laid over it, on good and defective test images (rows). One \
                 colour scale, 0 to {}.",
                self.top
            ),
            right: colour_bar_width(),
            below: 0,
        })
    }

    fn draw_cells<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        page: &GridPage,
    ) -> Result<()> {
        let mut tiles = Vec::new();
        for r in page.rows.clone() {
            let i = self.images[r];
            let input = resized_rgb(&self.dir.join(&self.pictures.images[i].input), CELL)?;
            for (c, column) in page.runs.clone().enumerate() {
                let g = self.gate(column);
                let (h, w) = (g.shape[1], g.shape[2]);
                if h == 0 || w == 0 {
                    bail!("{}: an empty spatial gate", self.dir.display());
                }
                let map: Vec<f32> = upsample(g.of_image(i), h, w, CELL as usize)
                    .into_iter()
                    .map(|v| v / self.top)
                    .collect();
                tiles.push((c + 1, r, blend_viridis(&input, &map, 0.6)));
            }
            tiles.push((0, r, input));
        }
        draw_tiles(area, page, tiles, self.top)
    }
}

/// The attention pictures of an `adn explain` folder: each figure's file stem with its
/// cells, nothing when the folder has no `attention.json` (no run had attention).
fn attention_figures<'a>(
    explain_dir: &'a Path,
    pictures: &'a Pictures,
    exp: &Experiment,
    figures: &Path,
    slug: &str,
) -> (
    ChannelCells<'a>,
    PathBuf,
    Option<(SpatialCells<'a>, PathBuf)>,
) {
    let labels: Vec<String> = pictures
        .runs
        .iter()
        .map(|r| run_label(exp, &r.run_dir, &r.attention))
        .collect();
    let channels = ChannelCells::new(pictures, &labels);
    let spatial = SpatialCells::new(explain_dir, pictures, &labels)
        .map(|s| (s, figures.join(format!("attention_spatial_{slug}"))));
    (
        channels,
        figures.join(format!("attention_channels_{slug}")),
        spatial,
    )
}

/// Draws the attention pictures of an `adn explain` folder into `sink`; nothing when the
/// folder has no `attention.json` (no run had attention).
fn draw_attention(
    explain_dir: &Path,
    exp: &Experiment,
    figures: &Path,
    slug: &str,
    sink: &mut GridSink,
) -> Result<()> {
    if !explain_dir
        .join(adn_record::files::ATTENTION_GATES)
        .is_file()
    {
        return Ok(());
    }
    let pictures = Pictures::read(explain_dir)?;
    let (channels, stem, spatial) = attention_figures(explain_dir, &pictures, exp, figures, slug);
    if !channels.runs.is_empty() {
        sink.put(&channels, &stem)?;
    }
    if let Some((cells, stem)) = spatial {
        sink.put(&cells, &stem)?;
    }
    Ok(())
}

/// Draws the attention pictures of an `adn explain` folder that holds `attention.json`:
/// `attention_channels_<slug>.png` (SE and CBAM channel gates) and, with CBAM runs,
/// `attention_spatial_<slug>.png`, each in pages (`_1`, `_2`, …) where it does not fit one.
/// Nothing when the folder has no `attention.json` (no run had attention).
pub fn write_attention_pictures(
    explain_dir: &Path,
    exp: &Experiment,
    figures: &Path,
    slug: &str,
) -> Result<Vec<PathBuf>> {
    let mut sink = GridSink::Files(Vec::new());
    draw_attention(explain_dir, exp, figures, slug, &mut sink)?;
    Ok(sink.into_files())
}

/// The attention pictures' pages laid out, not written: each page's file name with its
/// breaches of the print rules.
pub fn check_attention_pictures(
    explain_dir: &Path,
    exp: &Experiment,
    figures: &Path,
    slug: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    let mut sink = GridSink::Check(Vec::new());
    draw_attention(explain_dir, exp, figures, slug, &mut sink)?;
    Ok(sink.into_checked())
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
    fn a_channel_cell_puts_good_images_left_of_a_gap_and_defective_ones_right() {
        let image = |anomalous| adn_record::PictureImage {
            path: String::new(),
            defect: String::new(),
            anomalous,
            input: String::new(),
        };
        let images = [image(false), image(false), image(true), image(true)];
        // Image k's gates are all k / 4: one colour per image band.
        let g = GateValues {
            gate: "channel".into(),
            shape: vec![4, 3],
            values: (0..12).map(|v| (v / 3) as f32 / 4.0).collect(),
        };
        let tile = channel_tile(&g, &images, 1.0);
        let side = CELL as usize;
        let at = |x: usize| &tile[3 * (side * side / 2 + x)..3 * (side * side / 2 + x) + 3];
        let colour = |v: f32| {
            let c = ViridisRGB::get_color_normalized(v, 0.0, 1.0);
            vec![c.0, c.1, c.2]
        };
        let half = (side - 4) / 2;
        assert_eq!(at(0), colour(0.0).as_slice());
        assert_eq!(at(half - 1), colour(0.25).as_slice());
        assert_eq!(at(half + 1), &[255, 255, 255]);
        assert_eq!(at(half + 4), colour(0.5).as_slice());
        assert_eq!(at(side - 1), colour(0.75).as_slice());
    }

    #[test]
    fn the_colour_scale_widens_only_for_gates_above_one() {
        assert_eq!(scale_top([0.2f32, 0.99].iter()), 1.0);
        assert_eq!(scale_top([0.2f32, 1.3].iter()), 2.0);
    }
}
