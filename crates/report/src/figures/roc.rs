//! ROC curves, overall and per defect type: every seed's curve sampled on one FPR grid,
//! the mean drawn with a ± sd band, square panels, at most three per row.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::{Experiment, Scores};
use crate::tables::display_name;

use super::print::*;
use super::*;

/// Points of the FPR grid the seeds' curves are averaged on.
const GRID: usize = 101;

/// ROC curves of each variant over all its seeds: all anomalies, then each defect type.
pub(super) struct Rocs<'a> {
    pub(super) exp: &'a Experiment,
    /// Per variant, the scores of every complete seed.
    pub(super) seeds: &'a [(String, Vec<Scores>)],
}

/// The TPR of a ROC curve at `fpr` (the highest TPR reached at or below it: a step curve).
fn tpr_at(curve: &adn_metrics::RocCurve, fpr: f64) -> f64 {
    curve
        .fpr
        .iter()
        .zip(&curve.tpr)
        .filter(|(f, _)| **f <= fpr + 1e-12)
        .map(|(_, t)| *t)
        .fold(0.0, f64::max)
}

/// Mean and sd over `curves` of the TPR on the grid.
pub(super) fn mean_curve(curves: &[adn_metrics::RocCurve]) -> Vec<(f64, f64, f64)> {
    (0..GRID)
        .map(|i| {
            let f = i as f64 / (GRID - 1) as f64;
            let t: Vec<f64> = curves.iter().map(|c| tpr_at(c, f)).collect();
            let (mean, sd) = mean_sd(&t);
            (f, mean, sd)
        })
        .collect()
}

impl Rocs<'_> {
    fn panels(&self) -> Vec<String> {
        let mut defects: Vec<String> = Vec::new();
        if let Some(s) = self.seeds.first().and_then(|(_, s)| s.first()) {
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

    fn grid(&self) -> (usize, usize) {
        let n = self.panels().len();
        let cols = n.min(3);
        (n.div_ceil(cols), cols)
    }

    fn width_pt(&self) -> f64 {
        if self.grid().1 == 1 {
            ONE_COLUMN
        } else {
            TWO_COLUMNS
        }
    }
}

impl Figure for Rocs<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        let (rows, cols) = self.grid();
        let w = self.width_pt();
        // Square plot areas plus room for the axis labels, the title and the legend.
        let panel = w / cols as f64;
        canvas(u, w, rows as f64 * (panel + 4.0) + 44.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        // No title: the caption (the page, figures.tex) says what the figure shows.
        let area = area.clone();
        let panels = self.panels();
        // The legend: each variant's mean AUROC ± sd over seeds.
        let items: Vec<(String, Swatch)> = self
            .seeds
            .iter()
            .enumerate()
            .map(|(k, (v, seeds))| {
                let aucs: Vec<f64> = seeds
                    .iter()
                    .filter_map(|s| adn_metrics::auroc(&s.labels, &s.scores).ok())
                    .collect();
                let (mean, sd) = mean_sd(&aucs);
                let label = if aucs.len() > 1 {
                    format!(
                        "{} {:.1} ± {:.1}",
                        display_name(v),
                        100.0 * mean,
                        100.0 * sd
                    )
                } else {
                    format!("{} {:.1}", display_name(v), 100.0 * mean)
                };
                (label, Swatch::Line(look(variant_colour(self.exp, v), k)))
            })
            .collect();
        let mut items = items;
        items.push(("chance".to_string(), Swatch::Chance));
        let rest = with_legend(&area, &items, u)?;
        let (rows, cols) = self.grid();
        let cells = rest.split_evenly((rows, cols));
        for (panel, sub) in panels.iter().zip(cells.iter()) {
            let mut chart = ChartBuilder::on(sub)
                .caption(panel, font(u, LABEL_PT))
                .margin(px(u, 3.0))
                .margin_right(px(u, 8.0))
                .x_label_area_size(px(u, 22.0))
                .y_label_area_size(px(u, 26.0))
                .build_cartesian_2d(0.0..100.0, 0.0..100.0)
                .map_err(err)?;
            let whole = |v: &f64| format!("{v:.0}");
            chart
                .configure_mesh()
                .max_light_lines(1)
                .x_labels(5)
                .y_labels(5)
                .x_label_formatter(&whole)
                .y_label_formatter(&whole)
                .x_desc("FPR (%)")
                .y_desc("TPR (%)")
                .label_style(font(u, TICK_PT))
                .axis_desc_style(font(u, LABEL_PT))
                .draw()
                .map_err(err)?;
            // Chance.
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (100.0, 100.0)],
                    px(u, 3.0),
                    px(u, 2.0),
                    chance_style(u),
                ))
                .map_err(err)?;
            for (k, (v, seeds)) in self.seeds.iter().enumerate() {
                let curves: Vec<adn_metrics::RocCurve> = seeds
                    .iter()
                    .filter_map(|s| {
                        let keep: Vec<usize> = (0..s.labels.len())
                            .filter(|&i| {
                                !s.labels[i] || panel == "all defects" || &s.defects[i] == panel
                            })
                            .collect();
                        let labels: Vec<bool> = keep.iter().map(|&i| s.labels[i]).collect();
                        let scores: Vec<f64> = keep.iter().map(|&i| s.scores[i]).collect();
                        adn_metrics::roc_curve(&labels, &scores, false).ok()
                    })
                    .collect();
                if curves.is_empty() {
                    continue;
                }
                let m = mean_curve(&curves);
                let col = variant_colour(self.exp, v);
                if curves.len() > 1 {
                    let upper = m
                        .iter()
                        .map(|&(f, t, s)| (100.0 * f, 100.0 * (t + s).min(1.0)));
                    let lower = m
                        .iter()
                        .rev()
                        .map(|&(f, t, s)| (100.0 * f, 100.0 * (t - s).max(0.0)));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            upper.chain(lower).collect::<Vec<_>>(),
                            col.mix(0.15).filled(),
                        )))
                        .map_err(err)?;
                }
                let points: Vec<(f64, f64)> =
                    m.iter().map(|&(f, t, _)| (100.0 * f, 100.0 * t)).collect();
                draw_line(&mut chart, &points, look(col, k), 20, u)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_curve_averages_step_curves_on_the_grid() {
        let a = adn_metrics::roc_curve(&[false, true], &[0.0, 1.0], false).unwrap();
        let b = adn_metrics::roc_curve(&[false, true], &[1.0, 0.0], false).unwrap();
        let m = mean_curve(&[a, b]);
        assert_eq!(m.len(), GRID);
        // Perfect: TPR 1 from FPR 0; reversed: TPR 0 until FPR 1.
        assert_eq!(m[0].1, 0.5);
        assert_eq!(m[50].1, 0.5);
        assert_eq!(m[GRID - 1].1, 1.0);
        assert!((m[0].2 - 0.5f64.sqrt()).abs() < 1e-12);
    }
}
