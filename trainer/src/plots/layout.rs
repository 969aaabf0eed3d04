//! The few pieces of the pictures that plotters' chart API does not place as they should
//! be: a heading with a subtitle, text placed by its cap height, and labels turned to read
//! bottom to top with their end at a point (plotters centres turned tick labels on their
//! tick, which would run them into a confusion matrix), and an axis with ticks exactly where
//! asked.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::{Area, MUTED, font};

/// How far below the point it is given plotters' ab_glyph backend draws the top of the
/// capitals of text anchored at VPos::Top: it puts the baseline half a font size low and
/// lays text out as if it were 0.8 em tall, so its own vertical anchors land a few pixels
/// high. Measured on the embedded DejaVu Sans.
const CAP_TOP: f64 = -0.23;
/// The cap height of DejaVu Sans, in font sizes.
const CAP_HEIGHT: f64 = 0.73;
/// The height the backend lays a line of text out with, in font sizes.
const LINE_BOX: f64 = 0.8;

/// Where the capitals' top must be, relative to the point, for them to sit on `v` there:
/// centred on it, or with their top or bottom there.
fn cap_top(size: f64, v: VPos) -> f64 {
    match v {
        VPos::Top => 0.0,
        VPos::Center => -CAP_HEIGHT / 2.0 * size,
        VPos::Bottom => -CAP_HEIGHT * size,
    }
}

/// The vertical shift that puts the capitals of text anchored at VPos::Top on `v` at the
/// point it is drawn at.
pub(super) fn cap_shift(size: f64, v: VPos) -> i32 {
    (cap_top(size, v) - CAP_TOP * size).round() as i32
}

/// The shift that moves a tick label, which plotters' mesh centres on its tick by that
/// line box, to where `text` would centre its capitals (hand to `y_label_offset`).
pub(super) fn tick_label_shift(size: f64) -> i32 {
    let plotters = -LINE_BOX / 2.0 * size + CAP_TOP * size;
    (cap_top(size, VPos::Center) - plotters).round() as i32
}

/// `s` with its capitals placed by (`h`, `v`) at `(x, y)`.
pub(super) fn text(
    area: &Area,
    s: &str,
    (x, y): (i32, i32),
    style: TextStyle,
    h: HPos,
    v: VPos,
) -> anyhow::Result<()> {
    let dy = cap_shift(style.font.get_size(), v);
    let style = style.pos(Pos::new(h, VPos::Top));
    area.draw(&Text::new(s.to_string(), (x, y + dy), style))?;
    Ok(())
}

/// Like `text`, but turned to read bottom to top; `h` and `v` refer to the turned text
/// (HPos::Right puts its end at `(x, y)`, VPos::Center centres it across x).
pub(super) fn text_up(
    area: &Area,
    s: &str,
    (x, y): (i32, i32),
    style: TextStyle,
    h: HPos,
    v: VPos,
) -> anyhow::Result<()> {
    // Turned a quarter, the glyphs' vertical offsets become horizontal ones, and the
    // backend's own offset turns with them.
    let size = style.font.get_size();
    let dx = (cap_top(size, v) + CAP_TOP * size).round() as i32;
    let style = style
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(h, VPos::Top));
    area.draw(&Text::new(s.to_string(), (x + dx, y), style))?;
    Ok(())
}

/// Title and subtitle centred on top; returns the y below them.
pub(super) fn heading(area: &Area, title: &str, subtitle: &str) -> anyhow::Result<i32> {
    let (w, _) = area.dim_in_pixel();
    let centre = w as i32 / 2;
    let mut y = 16;
    text(
        area,
        title,
        (centre, y),
        font(20.0),
        HPos::Center,
        VPos::Top,
    )?;
    y += 28;
    if !subtitle.is_empty() {
        let style = font(14.0).color(&MUTED);
        text(area, subtitle, (centre, y), style, HPos::Center, VPos::Top)?;
        y += 22;
    }
    Ok(y + 6)
}

/// An f64 axis whose ticks are exactly `at`. Plotters' own `with_key_points` does this too,
/// but its axes take no label formatter, and these labels are class names and percentages.
pub(super) struct TicksAt {
    inner: RangedCoordf64,
    at: Vec<f64>,
}

impl TicksAt {
    pub(super) fn new(range: std::ops::Range<f64>, at: Vec<f64>) -> Self {
        Self {
            inner: range.into(),
            at,
        }
    }
}

impl Ranged for TicksAt {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _: Hint) -> Vec<f64> {
        self.at.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}
