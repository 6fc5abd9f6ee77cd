//! The category × variant AUROC heat map of a dataset with many categories: one cell per
//! category and variant (mean over seeds, in %), the value written in it, the mean last,
//! one colour scale for the whole map. Labels are measured and wrapped; variants run down
//! the rows when they outnumber the categories.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::{MEAN_ROW, Metric, cell, display_name};

use super::print::*;
use super::*;

pub(super) struct Heatmap<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) dataset: String,
    pub(super) metric: Metric,
}

/// Height of one line of a row's label, in points.
const LINE_PT: f64 = 11.0;

/// Where everything goes, in pixels at `u` pixels per point.
struct Grid {
    width: u32,
    /// Row labels' column, then `cols` cells.
    left: u32,
    cell_w: u32,
    /// Each column header's lines, and each row label's lines.
    heads: Vec<Vec<String>>,
    labels: Vec<Vec<String>>,
    line_h: u32,
    head_h: u32,
    /// The top of each row and its height.
    rows: Vec<(u32, u32)>,
    height: u32,
}

impl Heatmap<'_> {
    /// Categories (the mean last) and variants; variants run down the rows when there are
    /// more of them than categories, so that a study of many variants stays legible.
    fn axes(&self) -> (Vec<String>, Vec<String>, bool) {
        let mut categories = self.exp.categories(&self.dataset);
        categories.push(MEAN_ROW.into());
        let variants = self.exp.variants();
        if variants.len() > categories.len() {
            (variants, categories, true)
        } else {
            (categories, variants, false)
        }
    }

    fn name(&self, key: &str, transposed: bool, row: bool) -> String {
        if row == transposed {
            display_name(key)
        } else {
            key.to_string()
        }
    }

    fn grid(&self, u: f64) -> Result<Grid> {
        let (rows, cols, transposed) = self.axes();
        let width_pt = if cols.len() <= 4 {
            ONE_COLUMN
        } else {
            TWO_COLUMNS
        };
        let width = px(u, width_pt);
        let f = font(u, TICK_PT).into_font();
        let pad = px(u, 4.0);
        let widest = rows
            .iter()
            .map(|r| text_width(&self.name(r, transposed, true), &f))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .max()
            .unwrap_or(0);
        // Row labels take what they need, at most 40 % of the width (longer ones wrap).
        let left = (widest + pad).min(width * 2 / 5);
        let cell_w = (width - left) / cols.len().max(1) as u32;
        let heads = cols
            .iter()
            .map(|c| {
                wrap(
                    &self.name(c, transposed, false),
                    &f,
                    cell_w.saturating_sub(pad),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let labels = rows
            .iter()
            .map(|r| {
                wrap(
                    &self.name(r, transposed, true),
                    &f,
                    left.saturating_sub(pad),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let line_h = px(u, LINE_PT);
        let head_h = heads.iter().map(Vec::len).max().unwrap_or(1) as u32 * line_h + pad;
        let mut y = head_h;
        let mut row_tops = Vec::new();
        for l in &labels {
            let h = (l.len() as u32 * line_h).max(px(u, 13.0));
            row_tops.push((y, h));
            y += h;
        }
        Ok(Grid {
            width,
            left,
            cell_w,
            heads,
            labels,
            line_h,
            head_h,
            rows: row_tops,
            height: y + px(u, 2.0),
        })
    }
}

impl Figure for Heatmap<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        match self.grid(u) {
            Ok(g) => (g.width, g.height),
            Err(_) => canvas(u, ONE_COLUMN, 100.0),
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        // No title: the caption (the page, figures.tex) says what the figure shows.
        let (rows, cols, transposed) = self.axes();
        let g = self.grid(u)?;
        let value = |r: &str, c: &str| {
            let (category, variant) = if transposed { (c, r) } else { (r, c) };
            cell(self.exp, &self.dataset, category, variant, self.metric).map(|x| 100.0 * x.mean)
        };
        let values: Vec<Vec<Option<f64>>> = rows
            .iter()
            .map(|r| cols.iter().map(|c| value(r, c)).collect())
            .collect();
        let (lo, hi) = values
            .iter()
            .flatten()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if !lo.is_finite() {
            return Ok(());
        }
        let hi = if hi - lo < 1e-9 { lo + 1.0 } else { hi };
        let text = TextStyle::from(font(u, TICK_PT).into_font());
        let anchored = |h, v| {
            text.clone()
                .pos(plotters::style::text_anchor::Pos::new(h, v))
        };
        use plotters::style::text_anchor::{HPos, VPos};
        let (left, cell_w, line_h) = (g.left as i32, g.cell_w as i32, g.line_h as i32);
        for (j, lines) in g.heads.iter().enumerate() {
            let x = left + j as i32 * cell_w + cell_w / 2;
            let top = g.head_h as i32 - lines.len() as i32 * line_h - px(u, 2.0) as i32;
            for (k, line) in lines.iter().enumerate() {
                area.draw(&Text::new(
                    line.clone(),
                    (x, top + k as i32 * line_h + line_h / 2),
                    anchored(HPos::Center, VPos::Center),
                ))
                .map_err(err)?;
            }
        }
        let line = BLACK.stroke_width(px(u, 0.8).max(1));
        for (i, ((r, row), (&(y, h), lines))) in rows
            .iter()
            .zip(&values)
            .zip(g.rows.iter().zip(&g.labels))
            .enumerate()
        {
            let (y, h) = (y as i32, h as i32);
            let first = y + h / 2 - (lines.len() as i32 - 1) * line_h / 2;
            for (k, l) in lines.iter().enumerate() {
                area.draw(&Text::new(
                    l.clone(),
                    (0, first + k as i32 * line_h),
                    anchored(HPos::Left, VPos::Center),
                ))
                .map_err(err)?;
            }
            if r == MEAN_ROW && i > 0 {
                area.draw(&PathElement::new(
                    vec![(left, y), (g.width as i32, y)],
                    line,
                ))
                .map_err(err)?;
            }
            for (j, v) in row.iter().enumerate() {
                let x = left + j as i32 * cell_w;
                let (fill, label) = match v {
                    Some(v) => {
                        let t = ((v - lo) / (hi - lo)) as f32;
                        (
                            ViridisRGB::get_color_normalized(t, 0.0, 1.0),
                            format!("{v:.1}"),
                        )
                    }
                    None => (RGBColor(235, 235, 235), "–".to_string()),
                };
                area.draw(&Rectangle::new(
                    [(x + 1, y + 1), (x + cell_w - 1, y + h - 1)],
                    fill.filled(),
                ))
                .map_err(err)?;
                // Dark text on the light end of the scale, white on the dark end.
                let light = v.is_some_and(|v| (v - lo) / (hi - lo) > 0.6) || v.is_none();
                let colour = if light { BLACK } else { WHITE };
                area.draw(&Text::new(
                    label,
                    (x + cell_w / 2, y + h / 2),
                    anchored(HPos::Center, VPos::Center).color(&colour),
                ))
                .map_err(err)?;
            }
        }
        // The mean as the last column: a rule before it.
        if transposed {
            let x = left + (cols.len() as i32 - 1) * cell_w;
            let top = g.head_h as i32;
            let bottom = g.rows.last().map_or(top, |&(y, h)| (y + h) as i32);
            area.draw(&PathElement::new(vec![(x, top), (x, bottom)], line))
                .map_err(err)?;
        }
        Ok(())
    }
}
