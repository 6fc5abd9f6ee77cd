//! Score histograms, good vs anomalous.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::gather::Scores;
use crate::tables::display_name;

use super::*;

/// Histograms of log10 scores, good vs anomalous, one panel per variant (first seed).
pub(super) struct Histograms<'a> {
    pub(super) title: String,
    pub(super) curves: &'a [(String, Scores)],
}

impl Figure for Histograms<'_> {
    fn size(&self) -> (u32, u32) {
        ((360 * self.curves.len().max(1) as u32 + 20).max(760), 400)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let area = area.titled(&self.title, (FONT_NAME, 20)).map_err(err)?;
        let logs: Vec<Vec<f64>> = self
            .curves
            .iter()
            .map(|(_, s)| s.scores.iter().map(|x| x.max(1e-12).log10()).collect())
            .collect();
        let cells = area.split_evenly((1, self.curves.len().max(1)));
        let good_col = RGBColor(76, 114, 176);
        let bad_col = RGBColor(196, 78, 82);
        for (((v, s), log), sub) in self.curves.iter().zip(&logs).zip(cells.iter()) {
            let (mut a, mut b) = (f64::INFINITY, f64::NEG_INFINITY);
            for x in log {
                a = a.min(*x);
                b = b.max(*x);
            }
            if !(a.is_finite() && b.is_finite()) {
                continue;
            }
            if b - a < 1e-9 {
                b = a + 1.0;
            }
            let bins = 24;
            let w = (b - a) / bins as f64;
            let hist = |want: bool| {
                let mut h = vec![0usize; bins];
                for (x, &l) in log.iter().zip(&s.labels) {
                    if l == want {
                        h[(((x - a) / w) as usize).min(bins - 1)] += 1;
                    }
                }
                let n = h.iter().sum::<usize>().max(1) as f64;
                h.into_iter().map(|c| c as f64 / n).collect::<Vec<f64>>()
            };
            let (hg, ha) = (hist(false), hist(true));
            let top = hg.iter().chain(&ha).fold(0.0f64, |m, &x| m.max(x)) * 1.1;
            let mut chart = ChartBuilder::on(sub)
                .caption(display_name(v), (FONT_NAME, 16))
                .margin(10)
                .x_label_area_size(35)
                .y_label_area_size(45)
                .build_cartesian_2d(a..b, 0.0..top.max(1e-3))
                .map_err(err)?;
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_desc("log10 anomaly score")
                .y_desc("fraction of images")
                .label_style((FONT_NAME, 12))
                .axis_desc_style((FONT_NAME, 13))
                .draw()
                .map_err(err)?;
            for (h, col, name) in [(&hg, good_col, "good"), (&ha, bad_col, "anomalous")] {
                chart
                    .draw_series(h.iter().enumerate().map(|(i, &f)| {
                        let x0 = a + i as f64 * w;
                        Rectangle::new([(x0, 0.0), (x0 + w, f)], col.mix(0.5).filled())
                    }))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 12, y + 5)], col.mix(0.5).filled())
                    });
            }
            legend(&mut chart, SeriesLabelPosition::UpperRight, 12)?;
        }
        Ok(())
    }
}
