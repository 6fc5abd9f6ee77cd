//! Score histograms, good vs anomalous, one panel per variant on shared axes, the scores of
//! every complete seed pooled.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Scores;
use crate::tables::display_name;

use super::print::*;
use super::*;

const BINS: usize = 24;

pub(super) struct Histograms<'a> {
    /// Per variant, the scores of every complete seed.
    pub(super) seeds: &'a [(String, Vec<Scores>)],
}

/// Fractions of `values` (those with `labels == want`) in `BINS` bins over `[a, b]`.
pub(super) fn histogram(values: &[(f64, bool)], want: bool, a: f64, b: f64) -> Vec<f64> {
    let w = (b - a) / BINS as f64;
    let mut h = vec![0usize; BINS];
    for &(x, l) in values {
        if l == want {
            h[(((x - a) / w).max(0.0) as usize).min(BINS - 1)] += 1;
        }
    }
    let n = h.iter().sum::<usize>().max(1) as f64;
    h.into_iter().map(|c| c as f64 / n).collect()
}

impl Histograms<'_> {
    fn grid(&self) -> (usize, usize) {
        let n = self.seeds.len().max(1);
        let cols = n.min(3);
        (n.div_ceil(cols), cols)
    }
}

impl Figure for Histograms<'_> {
    fn size(&self, u: f64) -> (u32, u32) {
        let (rows, cols) = self.grid();
        let w = if cols == 1 { ONE_COLUMN } else { TWO_COLUMNS };
        canvas(u, w, rows as f64 * 120.0 + 40.0)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, u: f64) -> Result<()> {
        // No title: the caption (the page, figures.tex) says what the figure shows.
        let area = area.clone();
        let good_col = RGBColor(76, 114, 176);
        let bad_col = RGBColor(196, 78, 82);
        let items = vec![
            ("good".to_string(), Swatch::Box(lighten(good_col, 0.55))),
            ("anomalous".to_string(), Swatch::Box(lighten(bad_col, 0.55))),
        ];
        let rest = with_legend(&area, &items, u)?;
        // log10 scores of all seeds, with their labels, per variant.
        let logs: Vec<Vec<(f64, bool)>> = self
            .seeds
            .iter()
            .map(|(_, seeds)| {
                seeds
                    .iter()
                    .flat_map(|s| {
                        s.scores
                            .iter()
                            .zip(&s.labels)
                            .map(|(x, &l)| (x.max(1e-12).log10(), l))
                    })
                    .collect()
            })
            .collect();
        // One x range and one y range for every panel.
        let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
        for (x, _) in logs.iter().flatten() {
            a = a.min(*x);
            b = b.max(*x);
        }
        if !(a.is_finite() && b.is_finite()) {
            return Ok(());
        }
        if b - a < 1e-9 {
            b = a + 1.0;
        }
        let hists: Vec<(Vec<f64>, Vec<f64>)> = logs
            .iter()
            .map(|l| (histogram(l, false, a, b), histogram(l, true, a, b)))
            .collect();
        let ymax = hists
            .iter()
            .flat_map(|(g, h)| g.iter().chain(h))
            .fold(0.0f64, |m, &x| m.max(x))
            * 1.08;
        let (rows, cols) = self.grid();
        let cells = rest.split_evenly((rows, cols));
        let w = (b - a) / BINS as f64;
        for (((v, _), (hg, ha)), sub) in self.seeds.iter().zip(&hists).zip(cells.iter()) {
            let mut chart = ChartBuilder::on(sub)
                .caption(display_name(v), font(u, LABEL_PT))
                .margin(px(u, 3.0))
                .margin_right(px(u, 8.0))
                .x_label_area_size(px(u, 22.0))
                .y_label_area_size(px(u, 24.0))
                .build_cartesian_2d(a..b, 0.0..ymax.max(1e-3))
                .map_err(err)?;
            let x_tick = |x: &f64| tick(*x, 1);
            let y_tick = |y: &f64| format!("{:.0}", 100.0 * y);
            chart
                .configure_mesh()
                .max_light_lines(1)
                .x_labels(5)
                .y_labels(4)
                .x_label_formatter(&x_tick)
                .y_label_formatter(&y_tick)
                .x_desc("log10 anomaly score")
                .y_desc("images (%)")
                .label_style(font(u, TICK_PT))
                .axis_desc_style(font(u, LABEL_PT))
                .draw()
                .map_err(err)?;
            for (h, col) in [(hg, good_col), (ha, bad_col)] {
                chart
                    .draw_series(h.iter().enumerate().map(|(i, &f)| {
                        let x0 = a + i as f64 * w;
                        Rectangle::new([(x0, 0.0), (x0 + w, f)], col.mix(0.55).filled())
                    }))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_fractions_of_their_class() {
        let v = [(0.0, false), (0.9, false), (1.0, true), (0.45, false)];
        let g = histogram(&v, false, 0.0, 1.0);
        assert_eq!(g.len(), BINS);
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((g[0] - 1.0 / 3.0).abs() < 1e-12);
        // The maximum falls in the last bin.
        assert_eq!(histogram(&v, true, 0.0, 1.0)[BINS - 1], 1.0);
    }
}
