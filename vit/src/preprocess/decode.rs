//! Step 1 to 3 of the preprocessing: image bytes decoded under size limits (a decompression
//! bomb is refused before its pixels are allocated), turned upright by their EXIF orientation,
//! and flattened to 8-bit RGB with any transparency composited onto white.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage, RgbaImage};

use crate::error::{Result, VitError};

/// Larger sides are refused: no photo a person drops on a page is this big, a bomb is.
pub const MAX_SIDE: u32 = 16_384;
/// Decoders may allocate at most this much (a 16384 x 8192 RGBA image).
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// Decodes image bytes into upright 8-bit RGB, refusing anything unsafe or unreadable.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.is_empty() {
        return Err(VitError::EmptyImage);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| VitError::CorruptImage(e.to_string()))?;
    if reader.format().is_none() {
        let head: String = bytes
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ");
        return Err(VitError::UnsupportedImage(format!(
            "unrecognised content starting with bytes {head}"
        )));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);

    let mut decoder = reader.into_decoder().map_err(classify)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(VitError::CorruptImage(format!("image has size {w}x{h}")));
    }
    // A broken EXIF block should not cost the user their photo: keep it as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(classify)?;
    img.apply_orientation(orientation);
    Ok(flatten_to_rgb(img))
}

fn classify(e: ImageError) -> VitError {
    match e {
        ImageError::Limits(l) => VitError::ImageTooLarge(format!(
            "{l} (at most {MAX_SIDE}x{MAX_SIDE} pixels and {} MiB are decoded)",
            MAX_ALLOC >> 20
        )),
        ImageError::Unsupported(u) => VitError::UnsupportedImage(u.to_string()),
        other => VitError::CorruptImage(other.to_string()),
    }
}

/// 8-bit RGB, with any transparency composited onto white.
fn flatten_to_rgb(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.to_rgb8();
    }
    let rgba: RgbaImage = img.to_rgba8();
    let (w, h) = rgba.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as u32;
        let over_white = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over_white(p[0]), over_white(p[1]), over_white(p[2])])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn transparent_pixels_become_white() {
        let img = RgbaImage::from_fn(4, 4, |x, _| {
            if x < 2 {
                image::Rgba([0, 0, 0, 0])
            } else {
                image::Rgba([10, 20, 30, 255])
            }
        });
        let bytes = encode(DynamicImage::ImageRgba8(img), image::ImageFormat::Png);
        let rgb = decode_image(&bytes).unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(3, 0).0, [10, 20, 30]);
    }

    #[test]
    fn sixteen_bit_gray_becomes_rgb8() {
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(3, 2, image::Luma([65535]));
        let bytes = encode(DynamicImage::ImageLuma16(img), image::ImageFormat::Png);
        let rgb = decode_image(&bytes).unwrap();
        assert_eq!(rgb.dimensions(), (3, 2));
        assert_eq!(rgb.get_pixel(1, 1).0, [255, 255, 255]);
    }

    #[test]
    fn exif_orientation_turns_the_photo_upright() {
        use image::ImageEncoder;
        // Stored 2x1 (red, blue) with EXIF orientation 6: "rotate 90 degrees clockwise to view".
        let stored = RgbImage::from_fn(2, 1, |x, _| {
            image::Rgb(if x == 0 { [255, 0, 0] } else { [0, 0, 255] })
        });
        // A big-endian TIFF block with one IFD entry: tag 0x0112 (Orientation), SHORT, 1, 6.
        let exif = [
            b"MM\0\x2a\0\0\0\x08".as_slice(),
            &[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        let mut bytes = Vec::new();
        let mut encoder = image::codecs::png::PngEncoder::new(&mut bytes);
        encoder.set_exif_metadata(exif).unwrap();
        encoder
            .write_image(stored.as_raw(), 2, 1, image::ExtendedColorType::Rgb8)
            .unwrap();
        let upright = decode_image(&bytes).unwrap();
        assert_eq!(upright.dimensions(), (1, 2));
        assert_eq!(upright.get_pixel(0, 0).0, [255, 0, 0]);
        assert_eq!(upright.get_pixel(0, 1).0, [0, 0, 255]);
    }

    #[test]
    fn garbage_is_refused_clearly() {
        assert!(matches!(decode_image(&[]), Err(VitError::EmptyImage)));
        let e = decode_image(b"hello, I am not a picture").unwrap_err();
        assert!(matches!(e, VitError::UnsupportedImage(_)), "{e}");
    }
}
