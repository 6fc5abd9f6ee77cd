//! ROC curves, overall and per defect type.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::{Experiment, Scores};
use crate::tables::display_name;

use super::*;

/// ROC curves of each variant (first seed): all anomalies, then each defect type alone.
pub(super) struct Rocs<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) title: String,
    pub(super) curves: &'a [(String, Scores)],
}

impl Rocs<'_> {
    fn panels(&self) -> Vec<String> {
        let mut defects: Vec<String> = Vec::new();
        if let Some((_, s)) = self.curves.first() {
            for (d, &l) in s.defects.iter().zip(&s.labels) {
                if l && !defects.contains(d) {
                    defects.push(d.clone());
                }
            }
        }
        let mut panels = vec!["all defects".to_string()];
        if defects.len() > 1 {
            panels.extend(defects.into_iter().take(5));
        }
        panels
    }
}

impl Figure for Rocs<'_> {
    fn size(&self) -> (u32, u32) {
        ((380 * self.panels().len() as u32 + 20).max(760), 440)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let panels = self.panels();
        let cells = area.split_evenly((1, panels.len()));
        for (panel, sub) in panels.iter().zip(cells.iter()) {
            let mut chart = ChartBuilder::on(sub)
                .caption(panel, (FONT_NAME, 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(0.0..1.0, 0.0..1.0)
                .map_err(err)?;
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_desc("false positive rate")
                .y_desc("true positive rate")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, 0.0), (1.0, 1.0)],
                    BLACK.mix(0.3),
                )))
                .map_err(err)?;
            for (v, s) in self.curves {
                let keep: Vec<usize> = (0..s.labels.len())
                    .filter(|&i| !s.labels[i] || panel == "all defects" || &s.defects[i] == panel)
                    .collect();
                let labels: Vec<bool> = keep.iter().map(|&i| s.labels[i]).collect();
                let scores: Vec<f64> = keep.iter().map(|&i| s.scores[i]).collect();
                let Ok(curve) = adn_metrics::roc_curve(&labels, &scores, false) else {
                    continue;
                };
                let auc = adn_metrics::auroc(&labels, &scores).unwrap_or(f64::NAN);
                let col = colour(self.exp, v);
                chart
                    .draw_series(LineSeries::new(
                        curve.fpr.iter().copied().zip(curve.tpr.iter().copied()),
                        col.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(format!("{} ({:.3})", display_name(v), auc))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], col.stroke_width(2))
                    });
            }
            legend(&mut chart, SeriesLabelPosition::LowerRight, 12)?;
        }
        Ok(())
    }
}
