//! What every picture is drawn with: the embedded font, the colours, and a white canvas that
//! comes back as PNG bytes.
//!
//! Plotters draws into an in-memory RGB buffer with an embedded font (DejaVu Sans), so the
//! pictures look the same on every machine and need no system fonts; the `image` crate
//! encodes the PNG and `vit::weights::write_atomic` puts it in place, so a reader never
//! sees a half-written file while a run is still training.

use std::io::Cursor;
use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();

pub(super) const INK: RGBColor = RGBColor(33, 37, 41);
pub(super) const MUTED: RGBColor = RGBColor(100, 106, 112);
pub(super) const GRID_BOLD: RGBColor = RGBColor(218, 220, 224);
pub(super) const GRID_LIGHT: RGBColor = RGBColor(246, 247, 248);
pub(super) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Plotters' ab_glyph backend knows no fonts until one is registered; it keeps them in a
/// process-wide table, so once is enough.
fn ensure_font() {
    FONT_ONCE.call_once(|| {
        // The bytes are compiled in and known good; a failure here is a broken build.
        if register_font(FONT, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the embedded DejaVuSans.ttf is not a usable font");
        }
    });
}

pub(super) fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

/// Draws on a white `width` x `height` canvas and returns it encoded as PNG.
pub(super) fn render(
    width: u32,
    height: u32,
    draw: impl FnOnce(&Area) -> Result<()>,
) -> Result<Vec<u8>> {
    ensure_font();
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    let img = image::RgbImage::from_raw(width, height, buf)
        .context("plot buffer does not match its size")?;
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .context("encoding PNG")?;
    Ok(png)
}

pub(super) fn save_png(png: &[u8], out: &Path) -> Result<()> {
    vit::weights::write_atomic(out, png).with_context(|| format!("writing {}", out.display()))
}

pub(super) fn text_width(area: &Area, s: &str, size: f64) -> Result<i32> {
    Ok(area.estimate_text_size(s, &font(size))?.0 as i32)
}

/// Checks for the pictures' tests.
#[cfg(test)]
pub(super) mod checks {
    use std::collections::HashSet;
    use std::path::Path;

    use plotters::prelude::RGBColor;

    /// Decodes a PNG and checks its size and that it has real content: a blank or
    /// text-less picture has only a handful of colours, anti-aliased plots have hundreds.
    pub fn check_png(path: &Path, size: (u32, u32)) {
        let img = image::open(path).expect("PNG decodes").to_rgb8();
        assert_eq!(img.dimensions(), size, "{}", path.display());
        let colours: HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(
            colours.len() > 100,
            "{} has only {} colours",
            path.display(),
            colours.len()
        );
        assert_eq!(
            std::fs::read(path).unwrap()[..8],
            [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]
        );
    }

    /// Pixels exactly of colour `c`, as (x, y).
    pub fn pixels_of(img: &image::RgbImage, c: RGBColor) -> Vec<(u32, u32)> {
        img.enumerate_pixels()
            .filter(|(_, _, p)| p.0 == [c.0, c.1, c.2])
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    pub fn median(mut v: Vec<u32>) -> u32 {
        v.sort_unstable();
        v[v.len() / 2]
    }
}
