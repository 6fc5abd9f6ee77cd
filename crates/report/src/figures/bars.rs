//! Grouped bars of one metric in %, one group per category, one bar per variant, mean ± sd
//! over seeds, sized for print (one column for up to 8 bars, else two).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::{Metric, cell, display_name};

use super::print::*;
use super::*;

pub(super) struct Bars<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) groups: Vec<(String, String)>,
    pub(super) metric: Metric,
}

impl Bars<'_> {
    fn width_pt(&self) -> f64 {
        if self.groups.len() * self.exp.variants().len() <= 8 {
            ONE_COLUMN
        } else {
            TWO_COLUMNS
        }
    }
}

impl Figure for Bars<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        canvas(u, self.width_pt(), 190.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        let exp = self.exp;
        let variants = exp.variants();
        let nv = variants.len().max(1) as f64;
        let mut cells = Vec::new();
        for (gi, (d, c)) in self.groups.iter().enumerate() {
            for (vi, v) in variants.iter().enumerate() {
                if let Some(x) = cell(exp, d, c, v, self.metric) {
                    cells.push((gi, vi, x));
                }
            }
        }
        // Bars start at 0: a bar's length is its value. (Small differences are read from
        // the tables' intervals, not from bar tops.)
        let lo = 0.0;
        // No title: the caption (the page, figures.tex) says what the figure shows.
        let area = area.clone();
        let labels: Vec<String> = variants.iter().map(|v| display_name(v)).collect();
        let chance = self.metric != Metric::PeakInMask && lo < 50.0;
        let mut items: Vec<(String, Swatch)> = variants
            .iter()
            .zip(&labels)
            .map(|(v, l)| (l.clone(), Swatch::Filled(variant_fill(exp, v))))
            .collect();
        if chance {
            items.push(("chance".to_string(), Swatch::Chance));
        }
        let plot = with_legend(&area, &items, u)?;
        // Group names wrapped to their group's width: the dataset, then the category.
        let label_style = TextStyle::from(font(u, TICK_PT).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        let y_area = px(u, 28.0);
        let group_w = (plot
            .dim_in_pixel()
            .0
            .saturating_sub(y_area + 2 * px(u, 3.0)))
            / self.groups.len().max(1) as u32;
        let group_w = group_w.saturating_sub(px(u, 3.0));
        let mut group_labels: Vec<Vec<String>> = Vec::new();
        for (d, c) in &self.groups {
            let f = font(u, TICK_PT).into_font();
            let mut lines = wrap(d, &f, group_w)?;
            if d != c && exp.categories(d).len() > 1 {
                lines.extend(wrap(c, &f, group_w)?);
            }
            group_labels.push(lines);
        }
        let line_h = px(u, TICK_PT * 1.3) as i32;
        let label_lines = group_labels.iter().map(Vec::len).max().unwrap_or(1) as u32;
        let mut chart = ChartBuilder::on(&plot)
            .margin(px(u, 3.0))
            .x_label_area_size(px(u, 4.0) + label_lines * line_h as u32)
            .y_label_area_size(y_area)
            // Headroom above 100 for the values over the highest caps.
            .build_cartesian_2d(
                0.0..self.groups.len() as f64,
                lo..100.0 + (100.0 - lo) * 0.12,
            )
            .map_err(err)?;
        let no_label = |_: &f64| String::new();
        let whole = |y: &f64| {
            if *y <= 100.0 + 1e-9 {
                format!("{y:.0}")
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(1)
            .x_labels(0)
            .x_label_formatter(&no_label)
            .y_label_formatter(&whole)
            .y_desc(format!(
                "{} (%)",
                match self.metric {
                    Metric::Last | Metric::Best => "image AUROC",
                    Metric::PixelAuroc => "pixel AUROC",
                    Metric::Aupro => "AUPRO",
                    Metric::PeakInMask => "peak in mask",
                }
            ))
            .label_style(font(u, TICK_PT))
            .axis_desc_style(font(u, LABEL_PT))
            .draw()
            .map_err(err)?;
        // Group names centred under their bars. backend_coord is in the whole canvas;
        // `plot` starts below the legend.
        let (bx, by) = plot.get_base_pixel();
        for (i, lines) in group_labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
            let (x, y) = (x - bx, y - by);
            for (k, line) in lines.iter().enumerate() {
                plot.draw(&Text::new(
                    line.clone(),
                    (x, y + px(u, 2.0) as i32 + k as i32 * line_h),
                    label_style.clone(),
                ))
                .map_err(err)?;
            }
        }
        if chance {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 50.0), (self.groups.len() as f64, 50.0)],
                    px(u, 3.0),
                    px(u, 2.0),
                    chance_style(u),
                ))
                .map_err(err)?;
        }
        let width = 0.84 / nv;
        // Values only where a bar is wide enough for its label (about 16 pt); the tables
        // hold every number.
        let bar_pt = (self.width_pt() - 30.0) / self.groups.len().max(1) as f64 * width;
        let show_values = bar_pt >= 16.0;
        let value_style = TextStyle::from(font(u, TICK_PT).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Bottom,
            ),
        );
        let gap_above = (100.0 - lo) * 0.015;
        for (gi, vi, x) in &cells {
            let fill = variant_fill(exp, &variants[*vi]);
            let x0 = *gi as f64 + 0.08 + *vi as f64 * width;
            let (mean, sd) = (100.0 * x.mean, 100.0 * x.sd);
            chart
                .draw_series(fill.rectangles((x0, lo), (x0 + width * 0.9, mean), u))
                .map_err(err)?;
            let xm = x0 + width * 0.45;
            let cap = (mean + sd).min(100.0);
            if x.n > 1 {
                let w = width * 0.18;
                let line = BLACK.stroke_width(px(u, 0.7).max(1));
                chart
                    .draw_series([
                        PathElement::new(vec![(xm, mean - sd), (xm, cap)], line),
                        PathElement::new(vec![(xm - w, mean - sd), (xm + w, mean - sd)], line),
                        PathElement::new(vec![(xm - w, cap), (xm + w, cap)], line),
                    ])
                    .map_err(err)?;
            }
            if !show_values {
                continue;
            }
            // The value above the error cap, clear of it.
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{mean:.1}"),
                    (xm, cap + gap_above),
                    value_style.clone(),
                )))
                .map_err(err)?;
        }
        Ok(())
    }
}
