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
    pub(super) title: String,
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
        let mut lo: f64 = 100.0;
        let mut cells = Vec::new();
        for (gi, (d, c)) in self.groups.iter().enumerate() {
            for (vi, v) in variants.iter().enumerate() {
                if let Some(x) = cell(exp, d, c, v, self.metric) {
                    lo = lo.min(100.0 * (x.mean - x.sd));
                    cells.push((gi, vi, x));
                }
            }
        }
        // The axis starts at a round 10 below everything, and low enough to show chance.
        let lo = (((lo - 3.0) / 10.0).floor() * 10.0).clamp(0.0, 40.0);
        let area = titled(area, &self.title, u)?;
        let labels: Vec<String> = variants.iter().map(|v| display_name(v)).collect();
        let chance = self.metric != Metric::PeakInMask && lo < 50.0;
        let mut items: Vec<(String, Swatch)> = variants
            .iter()
            .zip(&labels)
            .map(|(v, l)| (l.clone(), Swatch::Box(variant_colour(exp, v))))
            .collect();
        if chance {
            items.push(("chance".to_string(), Swatch::Chance));
        }
        let plot = with_legend(&area, &items, u)?;
        let group_labels: Vec<String> = self
            .groups
            .iter()
            .map(|(d, c)| {
                if d == c || exp.categories(d).len() == 1 {
                    d.clone()
                } else {
                    format!("{d}: {c}")
                }
            })
            .collect();
        let mut chart = ChartBuilder::on(&plot)
            .margin(px(u, 3.0))
            .x_label_area_size(px(u, 14.0))
            .y_label_area_size(px(u, 24.0))
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
        // Group names centred under their bars.
        let label_style = TextStyle::from(font(u, TICK_PT).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        // backend_coord is in the whole canvas; `plot` starts below the title and legend.
        let (bx, by) = plot.get_base_pixel();
        for (i, label) in group_labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, lo));
            let (x, y) = (x - bx, y - by);
            plot.draw(&Text::new(
                label.clone(),
                (x, y + px(u, 2.0) as i32),
                label_style.clone(),
            ))
            .map_err(err)?;
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
            let col = variant_colour(exp, &variants[*vi]);
            let x0 = *gi as f64 + 0.08 + *vi as f64 * width;
            let (mean, sd) = (100.0 * x.mean, 100.0 * x.sd);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, lo), (x0 + width * 0.9, mean)],
                    col.filled(),
                )))
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
