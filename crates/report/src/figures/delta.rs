//! The effect of attention as dot-and-interval plots: per dataset (a panel) and attention
//! variant (a row), the mean difference from the vanilla variant in percentage points with
//! its 95 % interval, a line at 0. Bars show levels; the conclusions rest on differences of
//! a point or less, which a bar's top cannot show and this can.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::{Comparison, MEAN_ROW, Metric, baseline_of, compare, display_name};

use super::print::*;
use super::*;

pub(super) struct Deltas<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) metric: Metric,
}

/// One panel: a dataset (its category, or the mean over its categories) and each row's
/// comparison.
struct Panel {
    title: String,
    rows: Vec<Option<Comparison>>,
}

const ROW_PT: f64 = 13.0;

impl Deltas<'_> {
    /// The variants compared (rows) with their baselines.
    fn pairs(&self) -> Vec<(String, String)> {
        self.exp
            .variants()
            .into_iter()
            .filter_map(|v| Some((baseline_of(self.exp, &v)?, v)))
            .collect()
    }

    fn panels(&self) -> Vec<Panel> {
        let pairs = self.pairs();
        let mut panels = Vec::new();
        for d in self.exp.datasets() {
            if !metrics_of(self.exp, &d).contains(&self.metric) {
                continue;
            }
            let categories = self.exp.categories(&d);
            let (category, title) = match categories.as_slice() {
                [one] => (one.clone(), d.clone()),
                _ => (MEAN_ROW.to_string(), format!("{d} (mean)")),
            };
            let rows: Vec<Option<Comparison>> = pairs
                .iter()
                .map(|(b, v)| compare(self.exp, &d, &category, v, b, self.metric))
                .collect();
            if rows.iter().any(Option::is_some) {
                panels.push(Panel { title, rows });
            }
        }
        panels
    }

    /// Whether the figure has anything to show.
    pub(super) fn has_data(&self) -> bool {
        !self.panels().is_empty()
    }

    fn label_width(&self, u: f64) -> u32 {
        let f = font(u, TICK_PT).into_font();
        let widest = self
            .pairs()
            .iter()
            .map(|(_, v)| text_width(&display_name(v), &f).unwrap_or(0))
            .max()
            .unwrap_or(0);
        (widest + px(u, 6.0)).min(px(u, TWO_COLUMNS * 0.3))
    }
}

impl Figure for Deltas<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        let rows = self.pairs().len() as f64;
        canvas(u, TWO_COLUMNS, 2.0 * 11.0 + rows * ROW_PT + 36.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        let pairs = self.pairs();
        let panels = self.panels();
        if panels.is_empty() {
            return Ok(());
        }
        let (width, height) = area.dim_in_pixel();
        let left = self.label_width(u);
        let f = font(u, TICK_PT).into_font();
        let panel_w = (width - left) / panels.len() as u32;
        // Panel titles wrapped to their panel: at most two lines.
        let titles: Vec<Vec<String>> = panels
            .iter()
            .map(|p| wrap(&p.title, &f, panel_w.saturating_sub(px(u, 6.0))))
            .collect::<Result<_>>()?;
        let line_h = px(u, TICK_PT * 1.3);
        let head = titles.iter().map(Vec::len).max().unwrap_or(1) as u32 * line_h + px(u, 3.0);
        // Below the panels: their tick labels, then one axis name.
        let ticks = px(u, 16.0);
        let axis_band = px(u, 14.0);
        let (_, body) = area.split_vertically(head);
        let (body, _) = body.split_vertically(height - head - axis_band);
        let body = body.margin(0, 0, left, 0);
        let cells = body.split_evenly((1, panels.len()));
        let nrows = pairs.len() as f64;
        let title_style = TextStyle::from(f.clone()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Top,
        ));
        let mut row_y: Vec<i32> = Vec::new();
        for (k, (panel, cell)) in panels.iter().zip(&cells).enumerate() {
            let (lo, hi) = panel
                .rows
                .iter()
                .flatten()
                .fold((0.0f64, 0.0f64), |(lo, hi), c| {
                    (lo.min(100.0 * c.ci.0), hi.max(100.0 * c.ci.1))
                });
            let pad = ((hi - lo) * 0.08).max(0.1);
            let mut chart = ChartBuilder::on(cell)
                .margin_left(px(u, 6.0))
                .margin_right(px(u, 6.0))
                .x_label_area_size(ticks)
                .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..nrows)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .disable_y_axis()
                .max_light_lines(0)
                .x_labels(4)
                .x_label_formatter(&|v| tick(*v, if hi - lo < 3.0 { 1 } else { 0 }))
                .label_style(font(u, TICK_PT))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (0.0, nrows)],
                    px(u, 3.0),
                    px(u, 2.0),
                    chance_style(u),
                ))
                .map_err(err)?;
            for (i, (c, (_, v))) in panel.rows.iter().zip(&pairs).enumerate() {
                let Some(c) = c else { continue };
                let y = nrows - i as f64 - 0.5;
                let colour = variant_colour(self.exp, v);
                let line = colour.stroke_width(px(u, 1.2).max(1));
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(100.0 * c.ci.0, y), (100.0 * c.ci.1, y)],
                        line,
                    )))
                    .map_err(err)?;
                let dot = match variant_fill(self.exp, v) {
                    Fill::Solid(c) => c.filled(),
                    Fill::Hollow(c) => c.stroke_width(px(u, 1.0).max(1)),
                };
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (100.0 * c.difference, y),
                        px(u, 2.4) as i32,
                        WHITE.filled(),
                    )))
                    .map_err(err)?;
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (100.0 * c.difference, y),
                        px(u, 2.4) as i32,
                        dot,
                    )))
                    .map_err(err)?;
            }
            if k == 0 {
                row_y = (0..pairs.len())
                    .map(|i| chart.backend_coord(&(0.0, nrows - i as f64 - 0.5)).1)
                    .collect();
            }
            // The panel's title, centred over it.
            let (cx, _) = cell.get_base_pixel();
            let (cw, _) = cell.dim_in_pixel();
            for (j, line) in titles[k].iter().enumerate() {
                area.draw(&Text::new(
                    line.clone(),
                    (
                        (cx + cw as i32 / 2),
                        px(u, 2.0) as i32 + (j as u32 * line_h) as i32,
                    ),
                    title_style.clone(),
                ))
                .map_err(err)?;
            }
        }
        // Row labels, right-aligned against the first panel.
        let label_style = TextStyle::from(f).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Right,
            plotters::style::text_anchor::VPos::Center,
        ));
        for ((_, v), y) in pairs.iter().zip(&row_y) {
            area.draw(&Text::new(
                display_name(v),
                (left as i32 - px(u, 3.0) as i32, *y),
                label_style.clone(),
            ))
            .map_err(err)?;
        }
        // One axis name under every panel.
        let axis = format!(
            "Δ {} vs {} (percentage points, 95 % interval)",
            match self.metric {
                Metric::Last | Metric::Best => "image AUROC",
                Metric::PixelAuroc => "pixel AUROC",
                Metric::Aupro => "AUPRO",
                Metric::PeakInMask => "peak in mask",
            },
            match self.exp.flows().is_empty() {
                true => pairs
                    .first()
                    .map_or("vanilla".to_string(), |(b, _)| display_name(b)),
                false => "the same flow without attention".to_string(),
            }
        );
        // Centred under the panels, moved left where it would run off the figure (a long
        // comparison, "the same flow without attention", is wider than narrow panels).
        let axis_font = font(u, LABEL_PT).into_font();
        let half = axis_font.box_size(&axis).map_or(0, |b| b.0) / 2 + px(u, 2.0);
        let centre = (left + (width - left) / 2)
            .min(width.saturating_sub(half))
            .max(half);
        area.draw(&Text::new(
            axis,
            (centre as i32, (height - axis_band + px(u, 2.0)) as i32),
            TextStyle::from(axis_font).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            )),
        ))
        .map_err(err)?;
        Ok(())
    }
}
