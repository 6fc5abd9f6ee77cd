//! The print rules, checked on what a figure draws: a backend that draws nothing and records
//! every text it is given, with the box the font's metrics give it (the same layout the
//! bitmap backend rasterises), so that sizes, clipping and collisions are measured, not
//! looked for in pixels.

use std::cell::RefCell;
use std::rc::Rc;

use plotters::prelude::*;
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
    text_anchor::{HPos, VPos},
};

use super::print::{ONE_COLUMN, PLOTTERS_EM, TWO_COLUMNS};

/// The smallest text allowed at print size, in points.
pub const MIN_TEXT_PT: f64 = 7.0;

/// One text as drawn: its size at print size and its box in pixels.
#[derive(Debug, Clone)]
pub struct TextBox {
    pub text: String,
    pub pt: f64,
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
}

/// What a figure drew, at `u` pixels per point.
#[derive(Debug, Clone)]
pub struct Layout {
    pub width: u32,
    pub height: u32,
    pub u: f64,
    pub texts: Vec<TextBox>,
    /// The boxes of the images (bitmaps) drawn, `(x0, y0, x1, y1)`.
    pub images: Vec<(i32, i32, i32, i32)>,
}

/// What the recorder keeps: texts and image boxes.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    pub(super) texts: Vec<TextBox>,
    pub(super) images: Vec<(i32, i32, i32, i32)>,
}

impl Layout {
    pub(super) fn of(width: u32, height: u32, u: f64, recorded: Recorded) -> Layout {
        Layout {
            width,
            height,
            u,
            texts: recorded.texts,
            images: recorded.images,
        }
    }
}

/// A backend that records texts and draws nothing.
pub(super) struct Recorder {
    size: (u32, u32),
    u: f64,
    texts: Rc<RefCell<Recorded>>,
}

impl Recorder {
    pub(super) fn new(size: (u32, u32), u: f64) -> (Recorder, Rc<RefCell<Recorded>>) {
        let texts = Rc::new(RefCell::new(Recorded::default()));
        (
            Recorder {
                size,
                u,
                texts: texts.clone(),
            },
            texts,
        )
    }
}

type Drawn = Result<(), DrawingErrorKind<std::io::Error>>;

impl DrawingBackend for Recorder {
    type ErrorType = std::io::Error;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }
    fn ensure_prepared(&mut self) -> Drawn {
        Ok(())
    }
    fn present(&mut self) -> Drawn {
        Ok(())
    }
    fn draw_pixel(&mut self, _: BackendCoord, _: BackendColor) -> Drawn {
        Ok(())
    }
    fn draw_line<S: BackendStyle>(&mut self, _: BackendCoord, _: BackendCoord, _: &S) -> Drawn {
        Ok(())
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        _: BackendCoord,
        _: BackendCoord,
        _: &S,
        _: bool,
    ) -> Drawn {
        Ok(())
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        _: I,
        _: &S,
    ) -> Drawn {
        Ok(())
    }
    fn draw_circle<S: BackendStyle>(&mut self, _: BackendCoord, _: u32, _: &S, _: bool) -> Drawn {
        Ok(())
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        _: I,
        _: &S,
    ) -> Drawn {
        Ok(())
    }
    fn blit_bitmap(&mut self, pos: BackendCoord, (w, h): (u32, u32), _: &[u8]) -> Drawn {
        self.texts
            .borrow_mut()
            .images
            .push((pos.0, pos.1, pos.0 + w as i32, pos.1 + h as i32));
        Ok(())
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Drawn {
        if text.trim().is_empty() || style.color().alpha == 0.0 {
            return Ok(());
        }
        let ((min_x, min_y), (max_x, max_y)) = style
            .layout_box(text)
            .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        let (w, h) = (max_x - min_x, max_y - min_y);
        // Placed as plotters' own rasteriser places it: anchor, then rotation about `pos`.
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Right => -w,
            HPos::Center => -w / 2,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -h / 2,
            VPos::Bottom => -h,
        };
        let t = style.transform();
        let (ax, ay) = t.transform(dx, dy);
        let (bx, by) = t.transform(dx + w, dy + h);
        self.texts.borrow_mut().texts.push(TextBox {
            text: text.to_string(),
            pt: style.size() / (self.u * PLOTTERS_EM),
            x0: pos.0 + ax.min(bx),
            y0: pos.1 + ay.min(by),
            x1: pos.0 + ax.max(bx),
            y1: pos.1 + ay.max(by),
        });
        Ok(())
    }
}

impl Layout {
    /// Every way this layout breaks the print rules, in words.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        let width_pt = self.width as f64 / self.u;
        if (width_pt - ONE_COLUMN).abs() > 1.0 && (width_pt - TWO_COLUMNS).abs() > 1.0 {
            out.push(format!(
                "{:.2} in wide: a figure is 3.3 in (one column) or 7 in (two)",
                width_pt / 72.0
            ));
        }
        // Half a point of slack: glyph boxes include the font's line gap.
        let slack = (0.5 * self.u).round() as i32;
        for t in &self.texts {
            if t.pt < MIN_TEXT_PT - 1e-6 {
                out.push(format!(
                    "“{}” is {:.1} pt, below {MIN_TEXT_PT} pt",
                    t.text, t.pt
                ));
            }
            if t.x0 < -slack
                || t.y0 < -slack
                || t.x1 > self.width as i32 + slack
                || t.y1 > self.height as i32 + slack
            {
                out.push(format!(
                    "“{}” is clipped: its box ({}, {})–({}, {}) leaves the {}×{} canvas",
                    t.text, t.x0, t.y0, t.x1, t.y1, self.width, self.height
                ));
            }
        }
        // A text over an image is a label on it when it lies inside; one that crosses the
        // image's edge collides with it.
        for t in &self.texts {
            for &(x0, y0, x1, y1) in &self.images {
                let w = t.x1.min(x1) - t.x0.max(x0);
                let h = t.y1.min(y1) - t.y0.max(y0);
                let inside = t.x0 >= x0 && t.y0 >= y0 && t.x1 <= x1 && t.y1 <= y1;
                if w > slack && h > slack && !inside {
                    out.push(format!("“{}” runs into an image", t.text));
                }
            }
        }
        for (i, a) in self.texts.iter().enumerate() {
            for b in &self.texts[i + 1..] {
                let w = a.x1.min(b.x1) - a.x0.max(b.x0);
                let h = a.y1.min(b.y1) - a.y0.max(b.y0);
                if w > slack && h > slack {
                    out.push(format!("“{}” and “{}” overlap", a.text, b.text));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::print::{TICK_PT, font};

    fn layout_of(
        draw: impl Fn(&DrawingArea<Recorder, plotters::coord::Shift>),
        width_pt: f64,
    ) -> Layout {
        crate::figures::register_font();
        let u = 2.0;
        let size = ((width_pt * u) as u32, 200);
        let (rec, texts) = Recorder::new(size, u);
        let area = rec.into_drawing_area();
        draw(&area);
        Layout::of(size.0, size.1, u, texts.take())
    }

    #[test]
    fn small_clipped_and_colliding_text_and_odd_widths_are_found() {
        let ok = layout_of(
            |a| {
                a.draw(&Text::new("fine", (10, 10), font(2.0, TICK_PT)))
                    .unwrap();
                a.draw(&Text::new("apart", (10, 60), font(2.0, TICK_PT)))
                    .unwrap();
            },
            ONE_COLUMN,
        );
        assert_eq!(ok.violations(), Vec::<String>::new());
        assert_eq!(ok.texts.len(), 2);
        // An 8 pt em at 2 px per point: about 19 px tall with ascent and descent.
        let t = &ok.texts[0];
        assert!(
            (t.pt - TICK_PT).abs() < 1e-9 && (10..30).contains(&(t.y1 - t.y0)),
            "{t:?}"
        );
        let bad = layout_of(
            |a| {
                a.draw(&Text::new("tiny", (10, 10), font(2.0, 5.0)))
                    .unwrap();
                a.draw(&Text::new("one", (100, 100), font(2.0, TICK_PT)))
                    .unwrap();
                a.draw(&Text::new("two", (104, 102), font(2.0, TICK_PT)))
                    .unwrap();
                a.draw(
                    &BitMapElement::with_owned_buffer((300, 100), (20, 20), vec![0; 1200]).unwrap(),
                )
                .unwrap();
                a.draw(&Text::new("into it", (290, 105), font(2.0, TICK_PT)))
                    .unwrap();
                a.draw(&Text::new(
                    "off the edge",
                    (5 * 72 * 2 - 20, 50),
                    font(2.0, TICK_PT),
                ))
                .unwrap();
            },
            5.0 * 72.0,
        );
        let v = bad.violations().join("\n");
        assert!(v.contains("5.00 in wide"), "{v}");
        assert!(v.contains("“tiny” is 5.0 pt"), "{v}");
        assert!(v.contains("“one” and “two” overlap"), "{v}");
        assert!(v.contains("“off the edge” is clipped"), "{v}");
        assert!(v.contains("“into it” runs into an image"), "{v}");
    }
}
