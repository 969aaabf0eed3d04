//! The one preprocessing, shared by the trainer, `trainer predict` and the page (compiled to wasm).
//!
//! Any image a person may give becomes the square RGB view the model sees:
//! 1. decode (JPEG, PNG, WebP, GIF, BMP) under size limits, so a decompression bomb is refused
//!    before its pixels are allocated;
//! 2. apply the EXIF orientation, so a phone photo is upright;
//! 3. flatten to 8-bit RGB: alpha is composited onto white (transparent logos look as they do on
//!    a page), grayscale, palette and 16-bit images are converted;
//! 4. resize so the *shorter* side equals the model's image size (Catmull-Rom, which low-pass
//!    filters when shrinking), then crop the centre square: the whole height of a landscape
//!    photo is kept, and its left and right edges are cut;
//! 5. scale to [0, 1] and normalise each channel with the mean and std from the model manifest.

use std::io::Cursor;

use burn::prelude::*;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage, RgbaImage};

use crate::error::{Result, VitError};

/// Larger sides are refused: no photo a person drops on a page is this big, a bomb is.
pub const MAX_SIDE: u32 = 16_384;
/// Decoders may allocate at most this much (a 16384 x 8192 RGBA image).
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;

/// A square region of the original (oriented) image, in its pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropBox {
    pub x: f32,
    pub y: f32,
    pub side: f32,
}

impl CropBox {
    /// The centre square that survives "shorter side, then centre crop".
    pub fn centre_square(width: u32, height: u32) -> Self {
        let side = width.min(height) as f32;
        Self {
            x: (width as f32 - side) / 2.0,
            y: (height as f32 - side) / 2.0,
            side,
        }
    }
}

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

/// The `size` x `size` view the model sees: shorter side resized to `size`, centre cropped.
pub fn fit_square(img: &RgbImage, size: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w == size && h == size {
        return img.clone();
    }
    let (nw, nh) = if w <= h {
        (
            size,
            ((h as u64 * size as u64 + w as u64 / 2) / w as u64).max(size as u64) as u32,
        )
    } else {
        (
            ((w as u64 * size as u64 + h as u64 / 2) / h as u64).max(size as u64) as u32,
            size,
        )
    };
    let resized = image::imageops::resize(img, nw, nh, FilterType::CatmullRom);
    image::imageops::crop_imm(&resized, (nw - size) / 2, (nh - size) / 2, size, size).to_image()
}

/// Per-channel normalisation constants, as stored in the model manifest.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// CIFAR-10 training-set statistics.
    pub const CIFAR10: Self = Self {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616],
    };
    /// timm's default for ViTs trained on ImageNet-21k (`IMAGENET_INCEPTION_MEAN/STD`).
    pub const INCEPTION: Self = Self {
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
    };

    /// Appends the image's normalised `[C, H, W]` values to `out`.
    pub fn extend_chw(&self, img: &RgbImage, out: &mut Vec<f32>) {
        let (w, h) = img.dimensions();
        let plane = (w * h) as usize;
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        let dst = &mut out[start..];
        for (i, px) in img.pixels().enumerate() {
            for c in 0..3 {
                dst[c * plane + i] = (px.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
    }
}

/// A user's image, ready for the model and for drawing.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The upright original.
    pub original: RgbImage,
    /// The region of `original` the model sees.
    pub crop: CropBox,
    /// What the model sees, `image_size` square, before normalisation.
    pub model_view: RgbImage,
    /// Normalised `[3, image_size, image_size]` values.
    pub chw: Vec<f32>,
}

/// Decodes, orients, flattens, fits and normalises an image for a model of `image_size`.
pub fn prepare(bytes: &[u8], image_size: u32, norm: &Normalization) -> Result<Prepared> {
    let original = decode_image(bytes)?;
    Ok(prepare_decoded(original, image_size, norm))
}

/// As [`prepare`], from pixels that are already decoded (datasets stored as raw RGB).
pub fn prepare_decoded(original: RgbImage, image_size: u32, norm: &Normalization) -> Prepared {
    let crop = CropBox::centre_square(original.width(), original.height());
    let model_view = fit_square(&original, image_size);
    let mut chw = Vec::with_capacity(3 * (image_size * image_size) as usize);
    norm.extend_chw(&model_view, &mut chw);
    Prepared {
        original,
        crop,
        model_view,
        chw,
    }
}

/// Stacks prepared `[3, S, S]` images into a `[B, 3, S, S]` tensor.
pub fn batch_tensor(images: &[&[f32]], image_size: usize, device: &Device) -> Tensor<4> {
    let data: Vec<f32> = images.iter().flat_map(|x| x.iter().copied()).collect();
    Tensor::from_data(
        TensorData::new(data, [images.len(), 3, image_size, image_size]),
        device,
    )
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
    fn landscape_keeps_full_height_and_crops_centre() {
        // Left third red, middle green, right third blue.
        let img = RgbImage::from_fn(96, 32, |x, _| match x / 32 {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        let fit = fit_square(&img, 32);
        assert_eq!(fit.dimensions(), (32, 32));
        assert_eq!(fit.get_pixel(16, 16).0, [0, 255, 0]);
        let crop = CropBox::centre_square(96, 32);
        assert_eq!((crop.x, crop.y, crop.side), (32.0, 0.0, 32.0));
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
    fn normalisation_is_channel_first() {
        let img = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 51]));
        let mut out = Vec::new();
        Normalization::INCEPTION.extend_chw(&img, &mut out);
        assert_eq!(out.len(), 12);
        assert!(out[..4].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(out[4..8].iter().all(|&v| (v + 1.0).abs() < 1e-6));
        assert!(out[8..].iter().all(|&v| (v + 0.6).abs() < 1e-6));
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
