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
//!    photo is kept, and its left and right edges are cut. Or, when a person chose the square
//!    ([`Crop`]: `--crop x,y,size` in the CLI, the draggable square on the page), cut that
//!    square out first and resize it to the model's size;
//! 5. scale to [0, 1] and normalise each channel with the mean and std from the model manifest.

use std::io::Cursor;
use std::str::FromStr;

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

/// A square a person chose, in whole pixels of the upright original: its top-left corner and
/// its side. Whole pixels, so the page and `trainer predict --crop x,y,size` name exactly the
/// same square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

impl Crop {
    /// The centre square in whole pixels (where the draggable square starts).
    pub fn centre(width: u32, height: u32) -> Self {
        let size = width.min(height);
        Self {
            x: (width - size) / 2,
            y: (height - size) / 2,
            size,
        }
    }

    /// The crop itself when it lies inside a `width` x `height` image and is not empty.
    pub fn check(self, width: u32, height: u32) -> Result<Self> {
        let fail = |why: String| {
            Err(VitError::BadCrop(format!(
                "{self} on a {width}x{height} image: {why}"
            )))
        };
        if self.size == 0 {
            return fail("the square's size must be at least 1 pixel".into());
        }
        if self.x as u64 + self.size as u64 > width as u64 {
            return fail(format!(
                "it reaches x = {} but the image is {width} pixels wide",
                self.x as u64 + self.size as u64
            ));
        }
        if self.y as u64 + self.size as u64 > height as u64 {
            return fail(format!(
                "it reaches y = {} but the image is {height} pixels tall",
                self.y as u64 + self.size as u64
            ));
        }
        Ok(self)
    }

    /// The crop moved and shrunk as little as possible to lie inside the image (what the
    /// page does with a square dragged past the edge).
    pub fn clamped(self, width: u32, height: u32) -> Self {
        let size = self.size.clamp(1, width.min(height).max(1));
        Self {
            x: self.x.min(width.saturating_sub(size)),
            y: self.y.min(height.saturating_sub(size)),
            size,
        }
    }

    pub fn as_box(self) -> CropBox {
        CropBox {
            x: self.x as f32,
            y: self.y as f32,
            side: self.size as f32,
        }
    }
}

impl std::fmt::Display for Crop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{}", self.x, self.y, self.size)
    }
}

impl FromStr for Crop {
    type Err = VitError;

    /// `x,y,size`, whole pixels.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            VitError::BadCrop(format!(
                "'{s}' {why}; write it as x,y,size in whole pixels, e.g. 40,0,120"
            ))
        };
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        let [x, y, size] = parts.as_slice() else {
            return Err(bad("is not three numbers"));
        };
        let num = |v: &str| {
            v.parse::<u32>()
                .map_err(|_| bad(&format!("has '{v}', which is not a whole number of pixels")))
        };
        let crop = Self {
            x: num(x)?,
            y: num(y)?,
            size: num(size)?,
        };
        if crop.size == 0 {
            return Err(bad("has size 0"));
        }
        Ok(crop)
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

/// The `size` x `size` view of a chosen square: cut out first, then resized (only the square's
/// pixels are filtered, so dragging the square over a large photo stays cheap).
pub fn crop_square(img: &RgbImage, crop: Crop, size: u32) -> Result<RgbImage> {
    let c = crop.check(img.width(), img.height())?;
    let square = image::imageops::crop_imm(img, c.x, c.y, c.size, c.size).to_image();
    if c.size == size {
        return Ok(square);
    }
    Ok(image::imageops::resize(
        &square,
        size,
        size,
        FilterType::CatmullRom,
    ))
}

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
    prepare_cropped(bytes, image_size, norm, None)
}

/// As [`prepare`], with the model's view taken from `crop` (the centre square when `None`).
pub fn prepare_cropped(
    bytes: &[u8],
    image_size: u32,
    norm: &Normalization,
    crop: Option<Crop>,
) -> Result<Prepared> {
    let original = decode_image(bytes)?;
    let mut prepared = prepare_decoded(original, image_size, norm);
    if crop.is_some() {
        prepared.set_crop(crop, image_size, norm)?;
    }
    Ok(prepared)
}

/// As [`prepare`], from pixels that are already decoded (datasets stored as raw RGB).
pub fn prepare_decoded(original: RgbImage, image_size: u32, norm: &Normalization) -> Prepared {
    let crop = CropBox::centre_square(original.width(), original.height());
    let model_view = fit_square(&original, image_size);
    let chw = normalised(&model_view, norm);
    Prepared {
        original,
        crop,
        model_view,
        chw,
    }
}

fn normalised(view: &RgbImage, norm: &Normalization) -> Vec<f32> {
    let mut chw = Vec::with_capacity(3 * (view.width() * view.height()) as usize);
    norm.extend_chw(view, &mut chw);
    chw
}

impl Prepared {
    /// Takes the model's view from another square of the same original (`None`: the centre
    /// square, exactly as [`prepare`] takes it). A square outside the image is refused and
    /// leaves everything as it was.
    pub fn set_crop(
        &mut self,
        crop: Option<Crop>,
        image_size: u32,
        norm: &Normalization,
    ) -> Result<()> {
        let (w, h) = self.original.dimensions();
        let (region, view) = match crop {
            None => (
                CropBox::centre_square(w, h),
                fit_square(&self.original, image_size),
            ),
            Some(c) => (c.as_box(), crop_square(&self.original, c, image_size)?),
        };
        self.chw = normalised(&view, norm);
        self.crop = region;
        self.model_view = view;
        Ok(())
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
    fn a_chosen_square_is_what_the_model_sees() {
        // Left half red, right half blue; the chosen square is the right half's top.
        let img = RgbImage::from_fn(40, 20, |x, _| {
            image::Rgb(if x < 20 { [255, 0, 0] } else { [0, 0, 255] })
        });
        let mut p = prepare_decoded(img, 8, &Normalization::INCEPTION);
        let crop: Crop = "22, 0, 16".parse().unwrap();
        p.set_crop(Some(crop), 8, &Normalization::INCEPTION)
            .unwrap();
        assert_eq!(
            p.crop,
            CropBox {
                x: 22.0,
                y: 0.0,
                side: 16.0
            }
        );
        assert_eq!(p.model_view.dimensions(), (8, 8));
        assert!(p.model_view.pixels().all(|px| px.0 == [0, 0, 255]));
        assert!(
            p.chw[..64].iter().all(|&v| (v + 1.0).abs() < 1e-6),
            "red plane is 0"
        );
        // Back to the default: the same view as `prepare` takes.
        p.set_crop(None, 8, &Normalization::INCEPTION).unwrap();
        assert_eq!(p.crop, CropBox::centre_square(40, 20));
        assert_eq!(p.model_view, fit_square(&p.original, 8));
    }

    #[test]
    fn a_square_outside_the_image_or_empty_is_refused_clearly() {
        let img = RgbImage::new(40, 20);
        let mut p = prepare_decoded(img, 8, &Normalization::INCEPTION);
        let before = p.chw.clone();
        for (crop, says) in [
            (
                Crop {
                    x: 30,
                    y: 0,
                    size: 16,
                },
                "40 pixels wide",
            ),
            (
                Crop {
                    x: 0,
                    y: 10,
                    size: 16,
                },
                "20 pixels tall",
            ),
            (
                Crop {
                    x: 0,
                    y: 0,
                    size: 0,
                },
                "at least 1 pixel",
            ),
            (
                Crop {
                    x: u32::MAX,
                    y: 0,
                    size: 2,
                },
                "wide",
            ),
        ] {
            let e = p
                .set_crop(Some(crop), 8, &Normalization::INCEPTION)
                .unwrap_err();
            assert!(matches!(e, VitError::BadCrop(_)), "{e}");
            assert!(e.to_string().contains(says), "{crop}: {e}");
        }
        assert_eq!(p.chw, before, "a refused crop changes nothing");
        for text in ["1,2", "1,2,3,4", "a,0,4", "-1,0,4", "0,0,0", ""] {
            let e = text.parse::<Crop>().unwrap_err();
            assert!(e.to_string().contains("x,y,size"), "{text:?}: {e}");
        }
    }

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

    #[test]
    fn clamping_keeps_the_square_inside() {
        let c = Crop {
            x: 50,
            y: 7,
            size: 30,
        }
        .clamped(40, 20);
        assert_eq!(
            c,
            Crop {
                x: 20,
                y: 0,
                size: 20
            }
        );
        assert_eq!(c.check(40, 20).unwrap(), c);
        assert_eq!(
            Crop::centre(41, 20),
            Crop {
                x: 10,
                y: 0,
                size: 20
            }
        );
    }

    #[test]
    fn garbage_is_refused_clearly() {
        assert!(matches!(decode_image(&[]), Err(VitError::EmptyImage)));
        let e = decode_image(b"hello, I am not a picture").unwrap_err();
        assert!(matches!(e, VitError::UnsupportedImage(_)), "{e}");
    }
}
