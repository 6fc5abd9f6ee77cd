//! What collapse looks like: per meta-epoch, the training features' norm against its value
//! before training, the `−log|det J|` part of the loss and the mean attention gate, each
//! mean ± sd over seeds (the band), one line per variant.

use adn_record::Diagnostics;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::display_name;

use super::*;

/// One panel's quantity from a run's diagnostics at one point, if it has it.
type Pick = fn(&Diagnostics, &Diagnostics) -> Option<f64>;

const PANELS: [(&str, Pick); 3] = [
    ("training features' norm ÷ before training", |d, start| {
        (start.norm_train > 0.0).then(|| d.norm_train / start.norm_train)
    }),
    // The 0.5·‖z‖² part settles near 0.5 for every variant; a collapse shows in this one.
    ("loss part −log|det J| per dimension", |d, _| {
        d.loss.map(|l| l.neg_log_det)
    }),
    ("mean attention gate (training rows)", |d, _| {
        (!d.gates.is_empty())
            .then(|| d.gates.iter().map(|g| g.mean).sum::<f64>() / d.gates.len() as f64)
    }),
];

/// (x: 0 before training, `m + 1` after meta-epoch `m`; mean; sd) over seeds.
type Band = Vec<(f64, f64, f64)>;

pub(super) struct DiagnosticsFigure<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) title: String,
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
    fn size(&self, _u: f64) -> (u32, u32) {
        (1500, 460)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, _u: f64) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let bands = self.bands();
        let epochs = bands
            .iter()
            .flat_map(|(_, b)| b.iter().flat_map(|p| p.iter().map(|q| q.0)))
            .fold(1.0f64, f64::max);
        for (panel, sub) in area.split_evenly((1, 3)).iter().enumerate() {
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
            let mut chart = ChartBuilder::on(sub)
                .caption(PANELS[panel].0, (FONT_NAME, 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..epochs, (lo - pad)..(hi + pad))
                .map_err(err)?;
            let whole = |x: &f64| format!("{x:.0}");
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_labels(epochs as usize + 1)
                .x_label_formatter(&whole)
                .x_desc("meta-epochs trained")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            if panel == 0 {
                for level in [0.5, 1.0] {
                    chart
                        .draw_series(DashedLineSeries::new(
                            [(0.0, level), (epochs, level)],
                            4,
                            4,
                            BLACK.mix(0.5).stroke_width(1),
                        ))
                        .map_err(err)?;
                }
            }
            for (v, b) in &bands {
                let pts = &b[panel];
                if pts.is_empty() {
                    continue;
                }
                let (col, dashed) = line_style(self.exp, v);
                let mut outline: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1 + p.2)).collect();
                outline.extend(pts.iter().rev().map(|p| (p.0, p.1 - p.2)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        col.mix(0.15).filled(),
                    )))
                    .map_err(err)?;
                let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
                let style = col.stroke_width(2);
                let drawn = if dashed {
                    chart.draw_series(DashedLineSeries::new(line, 8, 5, style))
                } else {
                    chart.draw_series(LineSeries::new(line, style))
                };
                drawn
                    .map_err(err)?
                    .label(display_name(v))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                    });
            }
            legend(&mut chart, SeriesLabelPosition::LowerLeft, 11)?;
        }
        Ok(())
    }
}
