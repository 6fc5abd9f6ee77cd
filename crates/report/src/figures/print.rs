//! Figures sized for a two-column paper: every length is given in points at print size
//! and drawn at `u` pixels per point (SVG 2, PNG 3: 216 dpi), so that a figure placed one
//! column (3.3 in) or two columns (7 in) wide prints its text at the sizes named here,
//! never below 8 pt. Also the pieces every such figure shares: a legend above the plot
//! (never over the data) and line styles that differ in more than colour.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::{FONT_NAME, err};

/// One column of a two-column paper, in points (3.3 in).
pub(super) const ONE_COLUMN: f64 = 3.3 * 72.0;
/// Both columns (7 in).
pub(super) const TWO_COLUMNS: f64 = 7.0 * 72.0;

/// Text sizes at print size, in points.
pub(super) const TICK_PT: f64 = 8.0;
pub(super) const LABEL_PT: f64 = 8.5;

/// Pixels per point of the SVG and of the PNG.
pub(super) const SVG_UNIT: f64 = 2.0;
pub(super) const PNG_UNIT: f64 = 3.0;

/// Pixels per point of a bitmap figure `width_px` wide, printed one column wide when it is
/// narrow (up to 640 px) and two columns otherwise.
pub(super) fn bitmap_unit(width_px: u32) -> f64 {
    let print = if width_px <= 640 {
        ONE_COLUMN
    } else {
        TWO_COLUMNS
    };
    width_px as f64 / print
}

/// `pt` points in pixels at `u` pixels per point.
pub(super) fn px(u: f64, pt: f64) -> u32 {
    (u * pt).round() as u32
}

/// plotters' font size over the em size it draws: its SVG backend writes `size / 1.24` as
/// the font-size, and its glyph rasteriser scales the same way.
pub(super) const PLOTTERS_EM: f64 = 1.24;

/// A font whose em is `pt` points at `u` pixels per point.
pub(super) fn font(u: f64, pt: f64) -> (&'static str, f64) {
    (FONT_NAME, u * pt * PLOTTERS_EM)
}

/// The canvas of a `width_pt` × `height_pt` figure in pixels.
pub(super) fn canvas(u: f64, width_pt: f64, height_pt: f64) -> (u32, u32) {
    (px(u, width_pt), px(u, height_pt))
}

/// How one variant's lines look: its colour, a dash pattern (in points; `None` solid) and
/// a marker, so that curves stay apart in grey print and where they overlap.
#[derive(Debug, Clone, Copy)]
pub(super) struct LineLook {
    pub(super) colour: RGBColor,
    pub(super) dash: Option<(f64, f64)>,
    pub(super) marker: Marker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// The `k`-th look: solid circles, dashed triangles, dotted squares, dash-dot crosses, …
pub(super) fn look(colour: RGBColor, k: usize) -> LineLook {
    let dashes = [None, Some((4.0, 2.0)), Some((1.2, 1.5)), Some((6.0, 1.5))];
    let markers = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Cross,
    ];
    LineLook {
        colour,
        dash: dashes[k % dashes.len()],
        marker: markers[(k / dashes.len() + k) % markers.len()],
    }
}

/// Draws `points` in `look` on `chart`, with a marker every `every` points (0: none).
pub(super) fn draw_line<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    points: &[(f64, f64)],
    look: LineLook,
    every: usize,
    u: f64,
) -> Result<()> {
    let stroke = look.colour.stroke_width(px(u, 1.0).max(1));
    match look.dash {
        None => {
            chart
                .draw_series(LineSeries::new(points.iter().copied(), stroke))
                .map_err(err)?;
        }
        Some((on, off)) => {
            chart
                .draw_series(DashedLineSeries::new(
                    points.iter().copied(),
                    px(u, on).max(1),
                    px(u, off).max(1),
                    stroke,
                ))
                .map_err(err)?;
        }
    }
    if every > 0 {
        let size = px(u, 2.2).max(2) as i32;
        for &p in points.iter().step_by(every) {
            draw_marker(chart, p, look, size)?;
        }
    }
    Ok(())
}

fn draw_marker<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    p: (f64, f64),
    look: LineLook,
    size: i32,
) -> Result<()> {
    let c = look.colour;
    match look.marker {
        Marker::Circle => chart
            .draw_series(std::iter::once(Circle::new(p, size, c.filled())))
            .map(|_| ()),
        Marker::Triangle => chart
            .draw_series(std::iter::once(TriangleMarker::new(
                p,
                size + 1,
                c.filled(),
            )))
            .map(|_| ()),
        Marker::Square => chart
            .draw_series(std::iter::once(
                EmptyElement::at(p) + Rectangle::new([(-size, -size), (size, size)], c.filled()),
            ))
            .map(|_| ()),
        Marker::Cross => chart
            .draw_series(std::iter::once(Cross::new(p, size + 1, c.stroke_width(2))))
            .map(|_| ()),
    }
    .map_err(err)
}

/// How a bar (or a legend box) is filled.
#[derive(Debug, Clone, Copy)]
pub(super) enum Fill {
    Solid(RGBColor),
    /// White inside a thick outline of the colour.
    Hollow(RGBColor),
}

impl Fill {
    /// The rectangles that draw a box of this fill from `a` to `b` (either corner order),
    /// the outline `u` pixels per point wide.
    pub(super) fn rectangles<C: Copy>(self, a: C, b: C, u: f64) -> Vec<Rectangle<C>> {
        match self {
            Fill::Solid(c) => vec![Rectangle::new([a, b], c.filled())],
            Fill::Hollow(c) => vec![
                Rectangle::new([a, b], WHITE.filled()),
                Rectangle::new([a, b], c.stroke_width(px(u, 1.3).max(2))),
            ],
        }
    }
}

/// One legend entry: a label and how its sample is drawn.
pub(super) enum Swatch {
    Line(LineLook),
    Box(RGBColor),
    Filled(Fill),
    /// The dashed grey line of chance.
    Chance,
    /// A hollow ring: a marked point (e.g. the best epoch).
    Ring,
}

/// How the chance line is drawn (dashed, see its callers).
pub(super) fn chance_style(u: f64) -> ShapeStyle {
    BLACK.mix(0.6).stroke_width(px(u, 0.7).max(1))
}

/// Draws a legend across the top of `area` (a band kept free of data), wrapping onto
/// further lines; returns the height it took in pixels.
pub(super) fn top_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, Swatch)],
    u: f64,
) -> Result<u32> {
    let style = TextStyle::from(font(u, TICK_PT).into_font());
    let line_h = px(u, TICK_PT * 1.5) as i32;
    let sample = px(u, 14.0) as i32;
    let labels: Vec<&str> = items.iter().map(|(l, _)| l.as_str()).collect();
    let mut y = line_h / 2;
    for ((label, swatch), (x, line)) in items.iter().zip(legend_layout(area, &labels, u)?) {
        y = line_h / 2 + line * line_h;
        match swatch {
            Swatch::Line(look) => {
                let stroke = look.colour.stroke_width(px(u, 1.0).max(1));
                let (a, b) = ((x, y), (x + sample, y));
                match look.dash {
                    None => area.draw(&PathElement::new(vec![a, b], stroke)),
                    Some((on, off)) => area.draw(&DashedPathElement::new(
                        vec![a, b],
                        px(u, on).max(1),
                        px(u, off).max(1),
                        stroke,
                    )),
                }
                .map_err(err)?;
                let size = px(u, 2.2).max(2) as i32;
                let c = (x + sample / 2, y);
                let colour = look.colour;
                match look.marker {
                    Marker::Circle => area.draw(&Circle::new(c, size, colour.filled())),
                    Marker::Triangle => {
                        area.draw(&TriangleMarker::new(c, size + 1, colour.filled()))
                    }
                    Marker::Square => area.draw(&Rectangle::new(
                        [(c.0 - size, c.1 - size), (c.0 + size, c.1 + size)],
                        colour.filled(),
                    )),
                    Marker::Cross => area.draw(&Cross::new(c, size + 1, colour.stroke_width(2))),
                }
                .map_err(err)?;
            }
            Swatch::Chance => {
                area.draw(&DashedPathElement::new(
                    vec![(x, y), (x + sample, y)],
                    px(u, 3.0),
                    px(u, 2.0),
                    chance_style(u),
                ))
                .map_err(err)?;
            }
            Swatch::Ring => {
                area.draw(&Circle::new(
                    (x + sample / 2, y),
                    px(u, 3.5) as i32,
                    BLACK.stroke_width(px(u, 0.8).max(1)),
                ))
                .map_err(err)?;
            }
            Swatch::Box(colour) => {
                let h = px(u, 3.0) as i32;
                area.draw(&Rectangle::new(
                    [(x, y - h), (x + sample, y + h)],
                    colour.filled(),
                ))
                .map_err(err)?;
            }
            Swatch::Filled(fill) => {
                let h = px(u, 3.0) as i32;
                for r in fill.rectangles((x, y - h), (x + sample, y + h), u) {
                    area.draw(&r).map_err(err)?;
                }
            }
        }
        let text_style = style.pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ));
        area.draw(&Text::new(
            label.clone(),
            (x + sample + px(u, 3.0) as i32, y),
            text_style,
        ))
        .map_err(err)?;
    }
    Ok((y + line_h / 2) as u32)
}

/// The width of `text` in pixels in `font` (the bitmap and SVG backends measure the same).
pub(super) fn text_width(text: &str, font: &FontDesc) -> Result<u32> {
    Ok(font.box_size(text).map_err(err)?.0)
}

/// `text` broken at spaces into lines no wider than `width` pixels in `font`; a word wider
/// than that is broken after its hyphens, when it has them, and between letters (with a
/// hyphen) when that is not enough.
pub(super) fn wrap(text: &str, font: &FontDesc, width: u32) -> Result<Vec<String>> {
    let fits = |t: &str| -> Result<bool> { Ok(text_width(t, font)? <= width) };
    // Pieces, each marked with whether a space or nothing (after a hyphen) joins it to the
    // one before.
    let mut pieces: Vec<(bool, String)> = Vec::new();
    for word in text.split(' ') {
        if fits(word)? || !word.contains('-') {
            pieces.push((true, word.to_string()));
            continue;
        }
        let mut piece = String::new();
        let mut first = true;
        for p in word.split_inclusive('-') {
            if !piece.is_empty() && !fits(&format!("{piece}{p}"))? {
                pieces.push((first, std::mem::take(&mut piece)));
                first = false;
            }
            piece.push_str(p);
        }
        pieces.push((first, piece));
    }
    // A piece still too wide is broken between letters, each break marked with a hyphen.
    let mut fitted: Vec<(bool, String)> = Vec::new();
    for (spaced, piece) in pieces {
        if fits(&piece)? {
            fitted.push((spaced, piece));
            continue;
        }
        let mut part = String::new();
        let mut first = spaced;
        for c in piece.chars() {
            if !part.is_empty() && !fits(&format!("{part}{c}-"))? {
                fitted.push((first, format!("{part}-")));
                first = false;
                part.clear();
            }
            part.push(c);
        }
        fitted.push((first, part));
    }
    let pieces = fitted;
    let mut lines: Vec<String> = Vec::new();
    for (spaced, piece) in pieces {
        match lines.last_mut() {
            Some(line) => {
                let candidate = if spaced {
                    format!("{line} {piece}")
                } else {
                    format!("{line}{piece}")
                };
                if fits(&candidate)? {
                    *line = candidate;
                } else {
                    lines.push(piece);
                }
            }
            None => lines.push(piece),
        }
    }
    Ok(lines)
}

/// Draws the legend of `items` in a band across the top of `area` and returns the area
/// below it, where the plot goes.
pub(super) fn with_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(String, Swatch)],
    u: f64,
) -> Result<DrawingArea<DB, Shift>> {
    let labels: Vec<String> = items.iter().map(|(l, _)| l.clone()).collect();
    let band = legend_height(area, &labels, u)?;
    let (top, rest) = area.split_vertically(band + px(u, 2.0));
    top_legend(&top, items, u)?;
    Ok(rest)
}

/// Where a [`top_legend`] puts each of `labels` in an area `width` pixels wide: the x of
/// each entry and its line (from 0), entries wrapping onto further lines.
fn legend_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[&str],
    u: f64,
) -> Result<Vec<(i32, i32)>> {
    let style = TextStyle::from(font(u, TICK_PT).into_font());
    let (width, _) = area.dim_in_pixel();
    let sample = px(u, 14.0) as i32;
    let gap = px(u, 8.0) as i32;
    let (mut x, mut line) = (0i32, 0i32);
    let mut out = Vec::new();
    for label in labels {
        let (tw, _) = area.estimate_text_size(label, &style).map_err(err)?;
        let w = sample + px(u, 3.0) as i32 + tw as i32;
        if x > 0 && x + w > width as i32 {
            x = 0;
            line += 1;
        }
        out.push((x, line));
        x += w + gap;
    }
    Ok(out)
}

/// The height a [`top_legend`] of `labels` takes, so that its band can be reserved before
/// drawing.
pub(super) fn legend_height<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[String],
    u: f64,
) -> Result<u32> {
    let refs: Vec<&str> = labels.iter().map(String::as_str).collect();
    let lines = legend_layout(area, &refs, u)?
        .last()
        .map_or(1, |&(_, line)| line + 1);
    Ok((lines * px(u, TICK_PT * 1.5) as i32) as u32)
}

/// Mean and sample standard deviation (0 for a single value) of `values`.
pub(super) fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// `c` drawn at opacity `alpha` over white, as an opaque colour (for legend samples of
/// translucent fills).
pub(super) fn lighten(c: RGBColor, alpha: f64) -> RGBColor {
    let m = |v: u8| (alpha * v as f64 + (1.0 - alpha) * 255.0).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}

/// A tick label without the sign of a negative zero (`-0.0` → `0.0`).
pub(super) fn tick(v: f64, decimals: usize) -> String {
    let t = format!("{v:.decimals$}");
    if t.trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        t.trim_start_matches('-').to_string()
    } else {
        t.replace('-', "−")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_then_after_hyphens() {
        super::super::register_font();
        let f = font(2.0, TICK_PT).into_font();
        let w = text_width("polymer-insulator", &f).unwrap();
        assert_eq!(
            wrap("polymer-insulator upper-shackle", &f, w).unwrap(),
            vec!["polymer-insulator", "upper-shackle"]
        );
        let long = "polymer-insulator-upper-shackle";
        let lines = wrap(long, &f, w).unwrap();
        assert!(lines.len() >= 2 && lines.concat() == long, "{lines:?}");
        assert!(lines.iter().all(|l| text_width(l, &f).unwrap() <= w));
        assert_eq!(wrap("a b", &f, 1000).unwrap(), vec!["a b"]);
        // A word wider than the line even after its hyphens: broken between letters.
        let narrow = text_width("contami", &f).unwrap();
        let lines = wrap("x contamination-and", &f, narrow).unwrap();
        assert!(lines.iter().all(|l| text_width(l, &f).unwrap() <= narrow));
        assert!(lines.len() >= 3, "{lines:?}");
        assert_eq!(
            lines.concat().replace(['-', ' '], ""),
            "xcontaminationand",
            "{lines:?}"
        );
    }

    #[test]
    fn ticks_have_no_negative_zero_and_a_real_minus() {
        assert_eq!(tick(-0.01, 1), "0.0");
        assert_eq!(tick(-1.25, 1), "−1.2");
        assert_eq!(tick(2.0, 0), "2");
    }

    #[test]
    fn looks_differ_in_more_than_colour() {
        let c = RGBColor(0, 0, 0);
        let looks: Vec<_> = (0..4).map(|k| look(c, k)).collect();
        for i in 0..4 {
            for j in i + 1..4 {
                assert!(
                    looks[i].dash != looks[j].dash || looks[i].marker != looks[j].marker,
                    "{i} and {j}"
                );
            }
        }
    }

    #[test]
    fn print_sizes_keep_text_at_8_pt_or_more() {
        // At u pixels per point a TICK_PT font has an em of u × 8 px on a canvas u ×
        // width_pt wide: printed at width_pt it is 8 pt, whatever u.
        for u in [SVG_UNIT, PNG_UNIT] {
            let (w, _) = canvas(u, ONE_COLUMN, 150.0);
            let printed = font(u, TICK_PT).1 / PLOTTERS_EM * ONE_COLUMN / w as f64;
            assert!(printed >= 7.99, "{printed}");
        }
    }
}
