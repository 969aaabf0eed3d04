//! A Teach photo's thumbnail, from its stored square. Pure, tested natively.

use image::RgbImage;
use vit::teach::resize_square;

/// Largest side of a thumbnail's canvas: 500 photos of a 224 px model stay small.
pub const THUMB_SIDE: u32 = 64;

/// The thumbnail of a square: itself when small, else shrunk to [`THUMB_SIDE`].
pub fn thumbnail(rgb: &[u8], side: u32) -> RgbImage {
    let small = side.min(THUMB_SIDE);
    RgbImage::from_raw(small, small, resize_square(rgb, side, small))
        .unwrap_or_else(|| RgbImage::new(small, small))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_are_small_squares() {
        let t = thumbnail(&vec![9u8; 224 * 224 * 3], 224);
        assert_eq!(t.dimensions(), (THUMB_SIDE, THUMB_SIDE));
        let rgb: Vec<u8> = (0..4 * 4 * 3).map(|i| (i * 5) as u8).collect();
        assert_eq!(
            thumbnail(&rgb, 4).into_raw(),
            rgb,
            "a small square is its own thumbnail"
        );
    }
}
