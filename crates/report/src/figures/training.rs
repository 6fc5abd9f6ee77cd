//! Training curves: loss and AUROC per meta-epoch.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;
use crate::tables::display_name;

use super::*;

/// (meta-epoch counted from 1, mean training loss, mean test AUROC).
type EpochPoint = (f64, f64, f64);

/// Training loss and test AUROC per meta-epoch, mean over seeds, one line per variant.
pub(super) struct Training<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) title: String,
    pub(super) dataset: String,
    pub(super) category: String,
}

impl Training<'_> {
    /// Variant → per meta-epoch (loss, auroc), averaged over the complete seeds.
    fn curves(&self) -> Vec<(String, Vec<EpochPoint>)> {
        self.exp
            .variants()
            .into_iter()
            .filter_map(|v| {
                let runs = self.exp.complete(&self.dataset, &self.category, &v);
                let trajs: Vec<_> = runs
                    .iter()
                    .filter_map(|r| r.metrics.as_ref().map(|m| &m.trajectory))
                    .collect();
                let len = trajs.iter().map(|t| t.len()).min()?;
                let pts = (0..len)
                    .map(|i| {
                        let n = trajs.len() as f64;
                        let loss = trajs.iter().map(|t| t[i].train_loss).sum::<f64>() / n;
                        let auc = trajs.iter().map(|t| t[i].auroc).sum::<f64>() / n;
                        ((i + 1) as f64, loss, auc)
                    })
                    .collect();
                Some((v, pts))
            })
            .collect()
    }
}

impl Figure for Training<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 420)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let curves = self.curves();
        let epochs = curves
            .iter()
            .map(|(_, p)| p.len())
            .max()
            .unwrap_or(1)
            .max(2) as f64;
        let cells = area.split_evenly((1, 2));
        for (panel, sub) in cells.iter().enumerate() {
            let pick = |p: &(f64, f64, f64)| if panel == 0 { p.1 } else { p.2 };
            let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
            for (_, pts) in &curves {
                for p in pts {
                    a = a.min(pick(p));
                    b = b.max(pick(p));
                }
            }
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            let pad = ((b - a) * 0.08).max(1e-3);
            let (a, b) = if panel == 1 {
                ((a - pad).max(0.0), (b + pad).min(1.0))
            } else {
                (a - pad, b + pad)
            };
            let mut chart = ChartBuilder::on(sub)
                .caption(
                    if panel == 0 {
                        "training loss (NLL per dimension)"
                    } else {
                        "test image AUROC"
                    },
                    (FONT_NAME, 16),
                )
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(55)
                .build_cartesian_2d(1.0..epochs, a..b)
                .map_err(err)?;
            let whole = |x: &f64| format!("{x:.0}");
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_labels(epochs as usize)
                .x_label_formatter(&whole)
                .x_desc("meta-epoch")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            for (v, pts) in &curves {
                let col = colour(self.exp, v);
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p.0, pick(p))),
                        col.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(display_name(v))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                    });
            }
            legend(
                &mut chart,
                if panel == 0 {
                    SeriesLabelPosition::UpperRight
                } else {
                    SeriesLabelPosition::LowerRight
                },
                12,
            )?;
        }
        Ok(())
    }
}
