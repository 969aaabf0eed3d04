//! A photo's stored square for teaching, taken to another model's size. The page keeps only
//! each photo's square at the model's size (the original is dropped at once), so when the
//! model changes size the square itself is resized.

use image::RgbImage;
use image::imageops::FilterType;

/// A stored `from`-pixel RGB square resized to `to` pixels (bilinear). A square of the wrong
/// length (never stored) comes back black rather than panicking.
pub fn resize_square(rgb: &[u8], from: u32, to: u32) -> Vec<u8> {
    let black = || vec![0u8; (to * to * 3) as usize];
    let Some(img) = RgbImage::from_raw(from, from, rgb.to_vec()) else {
        return black();
    };
    if from == to {
        return img.into_raw();
    }
    image::imageops::resize(&img, to, to, FilterType::Triangle).into_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_squares_resize_to_the_new_model() {
        let side = 4u32;
        let rgb: Vec<u8> = (0..side * side * 3).map(|i| (i * 5) as u8).collect();
        let same = resize_square(&rgb, side, side);
        assert_eq!(same, rgb);
        let big = resize_square(&rgb, side, 8);
        assert_eq!(big.len(), 8 * 8 * 3);
        let small = resize_square(&rgb, side, 2);
        assert_eq!(small.len(), 2 * 2 * 3);
        // A flat colour stays that colour.
        let flat = vec![200u8; 48 * 48 * 3];
        assert!(resize_square(&flat, 48, 224).iter().all(|&v| v == 200));
        // A broken square gives black, not a panic.
        assert_eq!(resize_square(&[1, 2, 3], 4, 2), vec![0; 12]);
    }
}
