//! The category × variant AUROC heat map of a dataset with many categories: one cell per
//! category and variant (mean over seeds, in %), the value written in it, the mean row
//! last, one colour scale for the whole map.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::{MEAN_ROW, Metric, cell, display_name};

use super::print::*;
use super::*;

pub(super) struct Heatmap<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) title: String,
    pub(super) dataset: String,
    pub(super) metric: Metric,
}

/// Height of one category's row, in points.
const ROW_PT: f64 = 13.0;

impl Heatmap<'_> {
    fn rows(&self) -> Vec<String> {
        let mut rows = self.exp.categories(&self.dataset);
        rows.push(MEAN_ROW.into());
        rows
    }
}

impl Figure for Heatmap<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        let w = if self.exp.variants().len() <= 4 {
            ONE_COLUMN
        } else {
            TWO_COLUMNS
        };
        canvas(u, w, self.rows().len() as f64 * ROW_PT + 58.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        let area = titled(area, &self.title, u)?;
        let variants = self.exp.variants();
        let rows = self.rows();
        let values: Vec<Vec<Option<f64>>> = rows
            .iter()
            .map(|c| {
                variants
                    .iter()
                    .map(|v| {
                        cell(self.exp, &self.dataset, c, v, self.metric).map(|x| 100.0 * x.mean)
                    })
                    .collect()
            })
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
        let (w, h) = area.dim_in_pixel();
        let left = px(u, 62.0) as i32;
        let head = px(u, 14.0) as i32;
        let cols = variants.len().max(1) as i32;
        let cell_w = (w as i32 - left) / cols;
        let cell_h = ((h as i32 - head) / rows.len() as i32).max(1);
        let text = TextStyle::from(font(u, TICK_PT).into_font());
        fn centred(t: TextStyle<'_>) -> TextStyle<'_> {
            t.pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ))
        }
        for (j, v) in variants.iter().enumerate() {
            let x = left + j as i32 * cell_w + cell_w / 2;
            area.draw(&Text::new(
                display_name(v),
                (x, head / 2),
                centred(text.clone()),
            ))
            .map_err(err)?;
        }
        for (i, (c, row)) in rows.iter().zip(&values).enumerate() {
            let y = head + i as i32 * cell_h;
            let left_text = text.clone().pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ));
            area.draw(&Text::new(c.clone(), (0, y + cell_h / 2), left_text))
                .map_err(err)?;
            if c == MEAN_ROW {
                area.draw(&PathElement::new(
                    vec![(left, y), (w as i32, y)],
                    BLACK.stroke_width(px(u, 0.8).max(1)),
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
                    [(x + 1, y + 1), (x + cell_w - 1, y + cell_h - 1)],
                    fill.filled(),
                ))
                .map_err(err)?;
                // Dark text on the light end of the scale, white on the dark end.
                let light = v.is_some_and(|v| (v - lo) / (hi - lo) > 0.6) || v.is_none();
                let colour = if light { BLACK } else { WHITE };
                area.draw(&Text::new(
                    label,
                    (x + cell_w / 2, y + cell_h / 2),
                    centred(text.clone().color(&colour)),
                ))
                .map_err(err)?;
            }
        }
        Ok(())
    }
}
