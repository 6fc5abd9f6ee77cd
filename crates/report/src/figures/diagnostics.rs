//! What collapse looks like: per meta-epoch, the training features' norm against its value
//! before training, the `−log|det J|` part of the loss and the mean attention gate, each
//! mean ± sd over seeds (the band), one line per variant.

use adn_record::Diagnostics;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;

use super::print::*;
use super::*;

/// One panel's quantity from a run's diagnostics at one point, if it has it.
type Pick = fn(&Diagnostics, &Diagnostics) -> Option<f64>;

const PANELS: [(&str, Pick); 3] = [
    ("feature norm ÷ before training", |d, start| {
        (start.norm_train > 0.0).then(|| d.norm_train / start.norm_train)
    }),
    // The 0.5·‖z‖² part settles near 0.5 for every variant; a collapse shows in this one.
    ("−log |det J | per dimension", |d, _| {
        d.loss.map(|l| l.neg_log_det)
    }),
    ("mean attention gate", |d, _| {
        (!d.gates.is_empty())
            .then(|| d.gates.iter().map(|g| g.mean).sum::<f64>() / d.gates.len() as f64)
    }),
];

/// (x: 0 before training, `m + 1` after meta-epoch `m`; mean; sd) over seeds.
type Band = Vec<(f64, f64, f64)>;

pub(super) struct DiagnosticsFigure<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) dataset: String,
    pub(super) category: String,
}

impl DiagnosticsFigure<'_> {
    /// Variant → its band in each panel.
    fn bands(&self) -> Vec<(String, [Band; 3])> {
        self.exp
            .variants()
            .into_iter()
            .filter_map(|v| {
                let runs = self.exp.complete(&self.dataset, &self.category, &v);
                let diags: Vec<&Vec<Diagnostics>> = runs
                    .iter()
                    .filter_map(|r| r.metrics.as_ref().map(|m| &m.diagnostics))
                    .filter(|d| !d.is_empty())
                    .collect();
                let len = diags.iter().map(|d| d.len()).min()?;
                let bands = PANELS.map(|(_, pick)| {
                    (0..len)
                        .filter_map(|i| {
                            let values: Vec<f64> =
                                diags.iter().filter_map(|d| pick(&d[i], &d[0])).collect();
                            if values.len() != diags.len() {
                                return None;
                            }
                            let x = diags[0][i].meta_epoch.map_or(0.0, |m| m as f64 + 1.0);
                            let (mean, sd) = adn_metrics::stats::mean_sd(&values);
                            Some((x, mean, if sd.is_finite() { sd } else { 0.0 }))
                        })
                        .collect()
                });
                Some((v, bands))
            })
            .collect()
    }

    /// Whether any run of this cell recorded diagnostics.
    pub(super) fn has_data(&self) -> bool {
        !self.bands().is_empty()
    }
}

impl Figure for DiagnosticsFigure<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        canvas(u, TWO_COLUMNS, 190.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        // No title: the caption (the page, figures.tex) says what the figure shows.
        let area = area.clone();
        let bands = self.bands();
        let items = line_items(self.exp, bands.iter().map(|(v, _)| v));
        let rest = with_legend(&area, &items, u)?;
        let epochs = bands
            .iter()
            .flat_map(|(_, b)| b.iter().flat_map(|p| p.iter().map(|q| q.0)))
            .fold(1.0f64, f64::max);
        // Only the panels some variant has values for (no gates without attention).
        let present: Vec<usize> = (0..PANELS.len())
            .filter(|&p| bands.iter().any(|(_, b)| !b[p].is_empty()))
            .collect();
        let cells = rest.split_evenly((1, present.len().max(1)));
        for (&panel, sub) in present.iter().zip(cells.iter()) {
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for (_, b) in &bands {
                for &(_, m, s) in &b[panel] {
                    lo = lo.min(m - s);
                    hi = hi.max(m + s);
                }
            }
            if panel == 0 {
                // The target band of the attention study: within [0.5, 2] × the start.
                lo = lo.min(0.5);
                hi = hi.max(1.05);
            }
            if !(lo.is_finite() && hi.is_finite()) {
                continue;
            }
            let pad = ((hi - lo) * 0.08).max(1e-3);
            // The panel's name in its own band, clear of the top tick label.
            let (head, body) = sub.split_vertically(px(u, LABEL_PT * 1.6));
            let (head_w, head_h) = head.dim_in_pixel();
            head.draw(&Text::new(
                PANELS[panel].0,
                ((head_w / 2) as i32, (head_h / 2) as i32),
                TextStyle::from(font(u, LABEL_PT).into_font()).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                ),
            ))
            .map_err(err)?;
            let mut chart = ChartBuilder::on(&body)
                .margin(px(u, 3.0))
                .margin_top(px(u, 6.0))
                .margin_right(px(u, 6.0))
                .x_label_area_size(px(u, 22.0))
                .y_label_area_size(px(u, 30.0))
                .build_cartesian_2d(0.0..epochs, (lo - pad)..(hi + pad))
                .map_err(err)?;
            let whole = |x: &f64| format!("{x:.0}");
            let y_tick = |y: &f64| tick(*y, 2);
            chart
                .configure_mesh()
                .max_light_lines(1)
                .x_labels(epochs as usize + 1)
                .y_labels(5)
                .x_label_formatter(&whole)
                .y_label_formatter(&y_tick)
                .x_desc("meta-epochs trained")
                .label_style(font(u, TICK_PT))
                .axis_desc_style(font(u, LABEL_PT))
                .draw()
                .map_err(err)?;
            if panel == 0 {
                for level in [0.5, 1.0] {
                    chart
                        .draw_series(DashedLineSeries::new(
                            [(0.0, level), (epochs, level)],
                            px(u, 3.0),
                            px(u, 2.0),
                            chance_style(u),
                        ))
                        .map_err(err)?;
                }
            }
            for (k, (v, b)) in bands.iter().enumerate() {
                let pts = &b[panel];
                if pts.is_empty() {
                    continue;
                }
                let col = variant_colour(self.exp, v);
                let mut outline: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1 + p.2)).collect();
                outline.extend(pts.iter().rev().map(|p| (p.0, p.1 - p.2)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        col.mix(0.15).filled(),
                    )))
                    .map_err(err)?;
                let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
                draw_line(&mut chart, &line, look(col, k), 1, u)?;
            }
        }
        Ok(())
    }
}
