//! Text in the PNGs with each glyph where the font puts it. plotters 0.3.7 rasterises a
//! glyph from its pen position without the glyph's left side bearing, so letters with a
//! wide bearing sit too far left and words come out unevenly spaced ("CB AM", "MV Tec").
//! [`Glyphs`] wraps a bitmap backend and draws text itself, the same glyphs at the same
//! size and baseline, each shifted by its bearing; everything else passes through.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, ScaleFont};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontFamily, FontStyle, FontTransform, text_anchor,
};

use super::FONT;

fn font() -> &'static FontRef<'static> {
    static PARSED: OnceLock<FontRef<'static>> = OnceLock::new();
    PARSED.get_or_init(|| FontRef::try_from_slice(FONT).expect("the embedded font is a valid TTF"))
}

/// A drawing backend whose text is drawn with correct glyph bearings.
pub(super) struct Glyphs<B>(pub(super) B);

/// A text style whose glyphs are drawn by [`draw_glyphs`]; all else is the wrapped style's.
struct Bearings<'a, T>(&'a T);

/// Draws `text` at `size` (plotters' font size) from `pos` as plotters does (the same
/// scale, advances, kerning and vertical placement), but with each glyph at its pen position
/// plus its left side bearing.
fn draw_glyphs<E, F: FnMut(i32, i32, f32) -> Result<(), E>>(
    text: &str,
    size: f64,
    (x0, y0): BackendCoord,
    mut draw: F,
) -> Result<(), E> {
    let font = font().as_scaled(size as f32);
    let mut pen = 0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += font.kern(p, id);
        }
        prev = Some(id);
        if let Some(outline) = font.outline_glyph(font.scaled_glyph(c)) {
            let bounds = outline.px_bounds();
            let dx = (pen + bounds.min.x).round() as i32;
            let dy = (size as f32 / 2.0 + bounds.min.y) as i32;
            let mut coverage = Vec::new();
            outline.draw(|x, y, a| coverage.push((x as i32, y as i32, a)));
            for (x, y, a) in coverage {
                draw(x0 + dx + x, y0 + dy + y, a)?;
            }
        }
        pen += font.h_advance(id);
    }
    Ok(())
}

impl<T: BackendTextStyle> BackendTextStyle for Bearings<'_, T> {
    type FontError = T::FontError;

    fn color(&self) -> BackendColor {
        self.0.color()
    }

    fn size(&self) -> f64 {
        self.0.size()
    }

    fn transform(&self) -> FontTransform {
        self.0.transform()
    }

    fn style(&self) -> FontStyle {
        self.0.style()
    }

    fn anchor(&self) -> text_anchor::Pos {
        self.0.anchor()
    }

    fn family(&self) -> FontFamily<'_> {
        self.0.family()
    }

    fn layout_box(&self, text: &str) -> Result<((i32, i32), (i32, i32)), Self::FontError> {
        self.0.layout_box(text)
    }

    fn draw<E, DrawFunc: FnMut(i32, i32, BackendColor) -> Result<(), E>>(
        &self,
        text: &str,
        pos: BackendCoord,
        mut draw: DrawFunc,
    ) -> Result<Result<(), E>, Self::FontError> {
        let color = self.0.color();
        Ok(draw_glyphs(text, self.0.size(), pos, |x, y, a| {
            draw(
                x,
                y,
                BackendColor {
                    alpha: color.alpha * a as f64,
                    rgb: color.rgb,
                },
            )
        }))
    }
}

impl<B: DrawingBackend> DrawingBackend for Glyphs<B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_text(text, &Bearings(style), pos)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        self.0.estimate_text_size(text, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        (iw, ih): (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.blit_bitmap(pos, (iw, ih), src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leftmost inked column of each glyph of `text`, drawn by `draw_glyphs` at 40 px.
    fn ink_starts(text: &str) -> Vec<i32> {
        let mut starts = Vec::new();
        for (k, _) in text.char_indices() {
            let mut left = i32::MAX;
            let prefix = &text[..k];
            let glyph = &text[k..k + 1];
            let whole = format!("{prefix}{glyph}");
            // Ink of the prefix plus this glyph, minus the prefix's.
            let mut prefix_ink = std::collections::HashSet::new();
            draw_glyphs::<(), _>(prefix, 40.0, (0, 0), |x, y, a| {
                if a > 0.5 {
                    prefix_ink.insert((x, y));
                }
                Ok(())
            })
            .unwrap();
            draw_glyphs::<(), _>(&whole, 40.0, (0, 0), |x, y, a| {
                if a > 0.5 && !prefix_ink.contains(&(x, y)) {
                    left = left.min(x);
                }
                Ok(())
            })
            .unwrap();
            starts.push(left);
        }
        starts
    }

    #[test]
    fn glyphs_keep_their_bearings() {
        // "B" has a wide left bearing, "A" almost none: the gap between B's ink and A's
        // must be about the gap between C's and B's, not twice it as plotters draws it.
        let font = font().as_scaled(40.0);
        let b = font.glyph_id('B');
        let bearing = font.h_side_bearing(b);
        assert!(bearing > 2.0, "B's bearing {bearing}");
        let starts = ink_starts("CBA");
        let advance_c = font.h_advance(font.glyph_id('C'));
        // B's ink starts at C's advance plus B's bearing (to a pixel).
        let expected = (advance_c + font.kern(font.glyph_id('C'), b) + bearing).round() as i32;
        assert!(
            (starts[1] - expected).abs() <= 1,
            "B's ink at {}, expected {expected}",
            starts[1]
        );
    }
}
