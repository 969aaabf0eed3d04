//! Whether a model's view has anything in it to recognise: a flat colour is blank.

use image::RgbImage;

/// Largest per-channel standard deviation (0-255 scale) of a square called blank: a flat
/// colour, or one with JPEG's faint ripples, but no real edge or texture.
pub const BLANK_STD: f32 = 2.0;

/// Whether the model's view is one flat colour, with nothing in it to recognise.
pub fn is_blank(view: &RgbImage) -> bool {
    let n = (view.width() * view.height()).max(1) as f64;
    (0..3).all(|c| {
        let mean = view.pixels().map(|p| p.0[c] as f64).sum::<f64>() / n;
        let var = view
            .pixels()
            .map(|p| (p.0[c] as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        var.sqrt() < BLANK_STD as f64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_colour_is_blank_and_an_edge_is_not() {
        assert!(is_blank(&RgbImage::from_pixel(
            8,
            8,
            image::Rgb([128, 40, 200])
        )));
        let ripples =
            RgbImage::from_fn(8, 8, |x, y| image::Rgb([100 + ((x + y) % 3) as u8, 50, 50]));
        assert!(is_blank(&ripples));
        let edge = RgbImage::from_fn(8, 8, |x, _| {
            image::Rgb(if x < 4 { [0; 3] } else { [255; 3] })
        });
        assert!(!is_blank(&edge));
    }
}
