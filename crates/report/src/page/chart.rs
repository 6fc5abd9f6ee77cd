//! Small inline SVG line charts for a run's detail view: a page of 200 runs carries 400 of
//! them, so each is a handful of elements (axes, four ticks a side, one path per series)
//! sized in CSS pixels, with text at 11 px or more.

use std::fmt::Write;

/// One line of a chart.
pub(super) struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    /// A CSS colour; the second series is also dashed, so the two stay apart in grey.
    pub colour: &'a str,
}

/// A chart's axes: labels and ranges (the y range fixed for AUROC-like values so that
/// charts of different runs compare at a glance).
pub(super) struct Axes<'a> {
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x: (f64, f64),
    pub y: (f64, f64),
}

const W: f64 = 260.0;
const H: f64 = 180.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 36.0;

/// Round ticks covering `(lo, hi)`: a step of 1, 2, 2.5 or 5 × 10^k giving 3 to 6 ticks.
fn ticks(lo: f64, hi: f64) -> (Vec<f64>, usize) {
    let raw = (hi - lo) / 4.0;
    let k = raw.log10().floor();
    let base = 10f64.powf(k);
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * base)
        .find(|s| (hi - lo) / s <= 5.0 + 1e-9)
        .unwrap_or(10.0 * base);
    let first = (lo / step - 1e-9).ceil();
    let ticks: Vec<f64> = (0..)
        .map(|i| (first + i as f64) * step)
        .take_while(|t| *t <= hi + step * 1e-9)
        .collect();
    // Decimals enough to tell the ticks apart (2.5 × 10^k needs one more).
    let mut digits = (-step.log10().floor()).max(0.0) as usize;
    if ((step / 10f64.powi(-(digits as i32))) - (step / 10f64.powi(-(digits as i32))).round()).abs()
        > 1e-6
    {
        digits += 1;
    }
    (ticks, digits)
}

fn tick_text(v: f64, digits: usize) -> String {
    let t = format!("{v:.digits$}");
    // No "−0.0".
    let t = if t
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        t.trim_start_matches('-').to_string()
    } else {
        t
    };
    t.replace('-', "−")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG of `series` on `axes`, with a one-line legend above the plot. Points outside the
/// ranges are clamped to the frame (the ranges are chosen to hold them).
pub(super) fn line_chart(title: &str, axes: &Axes, series: &[Series]) -> String {
    let (x0, x1) = widen(axes.x);
    let (y0, y1) = widen(axes.y);
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x.clamp(x0, x1) - x0) / (x1 - x0) * pw;
    let sy = |y: f64| TOP + ph - (y.clamp(y0, y1) - y0) / (y1 - y0) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>"##
    );
    let (xt, xd) = ticks(x0, x1);
    for xv in xt {
        let px = sx(xv);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{b:.1}" x2="{px:.1}" y2="{b2:.1}" stroke="#888"/><text x="{px:.1}" y="{ty:.1}" text-anchor="middle">{}</text>"##,
            tick_text(xv, xd),
            b = TOP + ph,
            b2 = TOP + ph + 4.0,
            ty = TOP + ph + 16.0,
        );
    }
    let (yt, yd) = ticks(y0, y1);
    for yv in yt {
        let py = sy(yv);
        let _ = write!(
            s,
            r##"<line x1="{l:.1}" y1="{py:.1}" x2="{LEFT}" y2="{py:.1}" stroke="#888"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="end">{}</text>"##,
            tick_text(yv, yd),
            l = LEFT - 4.0,
            tx = LEFT - 6.0,
            ty = py + 4.0,
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        H - 4.0,
        escape(axes.x_label)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(12 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        TOP + ph / 2.0,
        escape(axes.y_label)
    );
    let mut legend_x = LEFT;
    for (k, line) in series.iter().enumerate() {
        let dash = if k % 2 == 1 {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        if line.points.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (i, &(x, y)) in line.points.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.0} {:.0}",
                if i == 0 { "M" } else { "L" },
                sx(x),
                sy(y)
            );
        }
        let _ = write!(
            s,
            r#"<path d="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
            c = line.colour
        );
        if line.points.len() == 1 {
            let (x, y) = line.points[0];
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                sx(x),
                sy(y),
                line.colour
            );
        }
        if series.len() > 1 {
            let _ = write!(
                s,
                r#"<line x1="{legend_x:.1}" y1="10" x2="{:.1}" y2="10" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="14">{}</text>"#,
                legend_x + 16.0,
                line.colour,
                legend_x + 20.0,
                escape(line.name)
            );
            legend_x += 28.0 + 6.5 * line.name.chars().count() as f64;
        }
    }
    s.push_str("</svg>");
    s
}

/// `range` widened where it is empty (one meta-epoch, a constant loss).
fn widen((a, b): (f64, f64)) -> (f64, f64) {
    if (b - a).abs() > 1e-12 && a.is_finite() && b.is_finite() {
        (a, b)
    } else if a.is_finite() {
        (a - 0.5, a + 0.5)
    } else {
        (0.0, 1.0)
    }
}

/// The smallest and largest of `values` (finite ones only).
pub(super) fn range_of(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
}

/// At most `n` points of `points`, evenly spaced by index, first and last kept: a ROC of
/// thousands of steps drawn 260 px wide needs no more.
pub(super) fn thin(points: Vec<(f64, f64)>, n: usize) -> Vec<(f64, f64)> {
    if points.len() <= n || n < 2 {
        return points;
    }
    (0..n)
        .map(|i| points[i * (points.len() - 1) / (n - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_one_svg_with_its_ticks_labels_and_a_path_per_series() {
        let axes = Axes {
            x_label: "meta-epoch",
            y_label: "AUROC (%)",
            x: (0.0, 3.0),
            y: (0.0, 100.0),
        };
        let s = line_chart(
            "t <1>",
            &axes,
            &[
                Series {
                    name: "a",
                    points: vec![(0.0, 50.0), (3.0, 90.0)],
                    colour: "#0072b2",
                },
                Series {
                    name: "b",
                    points: vec![(1.0, 120.0)],
                    colour: "#d55e00",
                },
            ],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert_eq!(s.matches("<path").count(), 2);
        assert!(s.contains("aria-label=\"t &lt;1&gt;\""));
        assert!(s.contains(">meta-epoch</text>") && s.contains(">AUROC (%)</text>"));
        // Out-of-range points are clamped to the frame's top edge.
        assert!(s.contains(&format!(
            "M{:.0} {:.0}",
            LEFT + (W - LEFT - RIGHT) / 3.0,
            TOP
        )));
        assert_eq!(
            ticks(0.0, 100.0),
            (vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0], 0)
        );
        assert_eq!(ticks(0.0, 1.0).1, 1);
        assert_eq!(ticks(0.0, 12.0), (vec![0.0, 2.5, 5.0, 7.5, 10.0], 1));
        assert_eq!(ticks(0.0, 3.0).0, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(ticks(-0.1, 2.5), (vec![0.0, 1.0, 2.0], 0));
        assert_eq!(tick_text(-0.0001, 2), "0.00");
        assert_eq!(tick_text(-1.5, 1), "−1.5");
        assert_eq!(thin((0..10).map(|i| (i as f64, 0.0)).collect(), 4).len(), 4);
        assert_eq!(thin(vec![(0.0, 0.0), (1.0, 1.0)], 4).len(), 2);
    }
}
