//! Grouped AUROC bars with error bars, one group per category.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::{Metric, baseline_of, cell, display_name};

use super::*;

/// Grouped bars: one group per (dataset, category), one bar per variant, mean ± sd over
/// seeds, the value above each bar and the difference from vanilla under it.
pub(super) struct Bars<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) title: String,
    pub(super) groups: Vec<(String, String)>,
    pub(super) metric: Metric,
}

impl Figure for Bars<'_> {
    fn size(&self) -> (u32, u32) {
        ((200 * self.groups.len() as u32 + 160).clamp(900, 2600), 560)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let exp = self.exp;
        let variants = exp.variants();
        let nv = variants.len() as f64;
        let mut lo: f64 = 1.0;
        let mut cells = Vec::new();
        for (gi, (d, c)) in self.groups.iter().enumerate() {
            for (vi, v) in variants.iter().enumerate() {
                if let Some(x) = cell(exp, d, c, v, self.metric) {
                    lo = lo.min(x.mean - x.sd);
                    cells.push((gi, vi, v, x));
                }
            }
        }
        let lo = ((lo - 0.04) * 20.0).floor() / 20.0;
        let lo = lo.clamp(0.0, 0.9);
        let labels: Vec<String> = self
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
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FONT_NAME, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            // An empty strip on the right holds the legend, clear of the bars.
            .build_cartesian_2d(0.0..self.groups.len() as f64 + 0.55, lo..1.0)
            .map_err(err)?;
        let no_label = |_: &f64| String::new();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(2)
            .x_label_formatter(&no_label)
            .y_desc(format!("image AUROC ({})", self.metric.key()))
            .y_label_style((FONT_NAME, 14))
            .axis_desc_style((FONT_NAME, 15))
            .draw()
            .map_err(err)?;
        // Group names centred under their bars, in pixels (the axis ticks fall elsewhere).
        let label_style = TextStyle::from((FONT_NAME, 15).into_font()).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ),
        );
        for (i, label) in labels.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(i as f64 + 0.5, lo));
            area.draw(&Text::new(label.clone(), (px, py + 8), label_style.clone()))
                .map_err(err)?;
        }
        let width = 0.8 / nv;
        for (vi, v) in variants.iter().enumerate() {
            let col = colour(exp, v);
            let mine: Vec<_> = cells.iter().filter(|c| c.1 == vi).collect();
            chart
                .draw_series(mine.iter().map(|(gi, _, _, x)| {
                    let x0 = *gi as f64 + 0.1 + vi as f64 * width;
                    Rectangle::new([(x0, lo), (x0 + width * 0.92, x.mean)], col.filled())
                }))
                .map_err(err)?
                .label(display_name(v))
                .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], col.filled()));
            for (gi, _, _, x) in &mine {
                let xm = *gi as f64 + 0.1 + (vi as f64 + 0.46) * width;
                if x.n > 1 {
                    let (a, b) = (x.mean - x.sd, (x.mean + x.sd).min(1.0));
                    let w = width * 0.15;
                    chart
                        .draw_series([
                            PathElement::new(vec![(xm, a), (xm, b)], BLACK.stroke_width(2)),
                            PathElement::new(vec![(xm - w, a), (xm + w, a)], BLACK),
                            PathElement::new(vec![(xm - w, b), (xm + w, b)], BLACK),
                        ])
                        .map_err(err)?;
                }
                let top = (x.mean + x.sd).min(1.0);
                let text = format!("{:.1}", 100.0 * x.mean);
                let style = TextStyle::from((FONT_NAME, 13).into_font()).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Bottom,
                    ),
                );
                chart
                    .draw_series(std::iter::once(Text::new(text, (xm, top), style)))
                    .map_err(err)?;
                // The difference from vanilla, inside the bar's foot.
                let (d, c) = &self.groups[*gi];
                if let Some(base) = baseline_of(exp, v)
                    && let Some(b) = cell(exp, d, c, &base, self.metric)
                {
                    let diff = 100.0 * (x.mean - b.mean);
                    let style = TextStyle::from((FONT_NAME, 12).into_font())
                        .color(&WHITE)
                        .pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Bottom,
                        ));
                    let y = lo + (1.0 - lo) * 0.02;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("{diff:+.1}"),
                            (xm, y),
                            style,
                        )))
                        .map_err(err)?;
                }
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight, 14)?;
        Ok(())
    }
}
