//! Training curves: loss and test AUROC per meta-epoch, mean ± sd over seeds as a band,
//! meta-epochs counted from 0 as in `runs.csv`, each variant's best mean AUROC marked.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Experiment;

use super::print::*;
use super::*;

/// One meta-epoch of a variant: (meta-epoch from 0, loss mean, loss sd, AUROC mean, sd).
type EpochPoint = (f64, f64, f64, f64, f64);

pub(super) struct Training<'a> {
    pub(super) exp: &'a Experiment,
    pub(super) dataset: String,
    pub(super) category: String,
}

impl Training<'_> {
    /// Variant → per meta-epoch statistics over its complete seeds (as far as all reach).
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
                        let losses: Vec<f64> = trajs.iter().map(|t| t[i].train_loss).collect();
                        let aucs: Vec<f64> = trajs.iter().map(|t| 100.0 * t[i].auroc).collect();
                        let (lm, ls) = mean_sd(&losses);
                        let (am, asd) = mean_sd(&aucs);
                        (trajs[0][i].meta_epoch as f64, lm, ls, am, asd)
                    })
                    .collect();
                Some((v, pts))
            })
            .collect()
    }
}

impl Figure for Training<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        canvas(u, TWO_COLUMNS, 190.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        // No title: the caption (the page, figures.tex) says what the figure shows.
        let area = area.clone();
        let curves = self.curves();
        let mut items = line_items(self.exp, curves.iter().map(|(v, _)| v));
        items.push(("best mean AUROC".to_string(), Swatch::Ring));
        let rest = with_legend(&area, &items, u)?;
        let last = curves
            .iter()
            .flat_map(|(_, p)| p.last().map(|p| p.0))
            .fold(1.0f64, f64::max);
        let cells = rest.split_evenly((1, 2));
        for (panel, sub) in cells.iter().enumerate() {
            let pick = |p: &EpochPoint| if panel == 0 { (p.1, p.2) } else { (p.3, p.4) };
            let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
            for (_, pts) in &curves {
                for p in pts {
                    let (m, s) = pick(p);
                    a = a.min(m - s);
                    b = b.max(m + s);
                }
            }
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            let pad = ((b - a) * 0.08).max(1e-3);
            let (a, b) = if panel == 1 {
                ((a - pad).max(0.0), (b + pad).min(100.0))
            } else {
                (a - pad, b + pad)
            };
            let mut chart = ChartBuilder::on(sub)
                .margin(px(u, 4.0))
                .x_label_area_size(px(u, 22.0))
                .y_label_area_size(px(u, 32.0))
                .build_cartesian_2d(-0.2..last + 0.2, a..b)
                .map_err(err)?;
            let whole = |x: &f64| {
                if (x - x.round()).abs() < 1e-6 && *x >= 0.0 {
                    format!("{x:.0}")
                } else {
                    String::new()
                }
            };
            let y_tick = |y: &f64| tick(*y, if panel == 0 { 1 } else { 0 });
            chart
                .configure_mesh()
                .max_light_lines(1)
                .x_labels((last as usize + 1).min(12))
                .x_label_formatter(&whole)
                .y_label_formatter(&y_tick)
                .y_labels(5)
                .x_desc("meta-epoch (from 0)")
                .y_desc(if panel == 0 {
                    "training loss (NLL / dim)"
                } else {
                    "test image AUROC (%)"
                })
                .label_style(font(u, TICK_PT))
                .axis_desc_style(font(u, LABEL_PT))
                .draw()
                .map_err(err)?;
            for (k, (v, pts)) in curves.iter().enumerate() {
                let col = variant_colour(self.exp, v);
                if pts.iter().any(|p| pick(p).1 > 0.0) {
                    let upper = pts.iter().map(|p| (p.0, pick(p).0 + pick(p).1));
                    let lower = pts.iter().rev().map(|p| (p.0, pick(p).0 - pick(p).1));
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            upper.chain(lower).collect::<Vec<_>>(),
                            col.mix(0.15).filled(),
                        )))
                        .map_err(err)?;
                }
                let points: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, pick(p).0)).collect();
                draw_line(&mut chart, &points, look(col, k), 1, u)?;
                if panel == 1
                    && let Some(best) = pts.iter().fold(None::<&EpochPoint>, |b, p| match b {
                        Some(b) if b.3 >= p.3 => Some(b),
                        _ => Some(p),
                    })
                {
                    // A ring around the point itself, not a glyph above it that reads
                    // as a value.
                    chart
                        .draw_series(std::iter::once(Circle::new(
                            (best.0, best.3),
                            px(u, 3.5) as i32,
                            col.stroke_width(px(u, 0.8).max(1)),
                        )))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    }
}
