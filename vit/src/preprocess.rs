//! The one preprocessing, shared by the trainer, `trainer predict` and the page (compiled to wasm).
//!
//! Any image a person may give becomes the square RGB view the model sees:
//! 1. decode (JPEG, PNG, WebP, GIF, BMP) under size limits, so a decompression bomb is refused
//!    before its pixels are allocated;
//! 2. apply the EXIF orientation, so a phone photo is upright;
//! 3. flatten to 8-bit RGB: alpha is composited onto white (transparent logos look as they do on
//!    a page), grayscale, palette and 16-bit images are converted;
//! 4. resize and crop as timm's eval transform does ([`Resize`]: `resolve_data_config` +
//!    `create_transform`): the *shorter* side to `image_size / crop_pct` with the model's
//!    filter, exactly as Pillow resizes ([`crate::resample`]), then the centre square of
//!    `image_size`. With `crop_pct` 1 (Vitrine's own models) the whole height of a landscape
//!    photo is kept and its left and right edges are cut. Or, when a person chose the square
//!    ([`Crop`]: `--crop x,y,size` in the CLI, the draggable square on the page), that square
//!    is the region read: it is cut out and resized to the model's size;
//! 5. scale to [0, 1] and normalise each channel with the mean and std from the model manifest.
//!
//! [`Preprocess`] holds all of it for one model (`Manifest::preprocess`).

use std::io::Cursor;
use std::str::FromStr;

use burn::prelude::*;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage, RgbaImage};

use crate::error::{Result, VitError};
use crate::resample::{Interpolation, resize, resize_window};

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

/// How timm's eval transform fits an image into the model's square (`pretrained_cfg.crop_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CropMode {
    /// Shorter side to `size / crop_pct`, keeping the aspect ratio, then the centre square.
    #[default]
    Center,
    /// Both sides to `size / crop_pct`, squashing the aspect ratio, then the centre square.
    Squash,
}

impl CropMode {
    /// timm's name for it, or `None` for a mode Vitrine does not do (`border`).
    pub fn from_timm(name: &str) -> Option<Self> {
        match name {
            "center" => Some(Self::Center),
            "squash" => Some(Self::Squash),
            _ => None,
        }
    }
}

/// timm's eval resize and crop (`transforms_imagenet_eval`), as a model manifest records it.
/// The default, crop 1 with Pillow's bicubic filter, is what Vitrine's own models use.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Resize {
    /// The share of the resized image the crop keeps: the shorter side becomes
    /// `floor(image_size / crop_pct)` (timm's `crop_pct`).
    pub crop_pct: f64,
    pub crop_mode: CropMode,
    pub interpolation: Interpolation,
}

impl Default for Resize {
    fn default() -> Self {
        Self {
            crop_pct: 1.0,
            crop_mode: CropMode::Center,
            interpolation: Interpolation::Bicubic,
        }
    }
}

impl Resize {
    /// Checks the numbers, naming what is wrong.
    pub fn validate(&self) -> Result<()> {
        if !(self.crop_pct.is_finite() && self.crop_pct > 0.0 && self.crop_pct <= 1.0) {
            return Err(VitError::InvalidConfig(format!(
                "crop_pct {} must be in (0, 1]",
                self.crop_pct
            )));
        }
        Ok(())
    }

    /// The side timm resizes to before cropping `size`: `math.floor(size / crop_pct)`.
    pub fn scale_size(&self, size: u32) -> u32 {
        ((size as f64 / self.crop_pct).floor() as u32).max(size)
    }

    /// The `size` x `size` view the model sees, and the square of `img` it shows.
    pub fn view(&self, img: &RgbImage, size: u32) -> (RgbImage, CropBox) {
        let (w, h) = img.dimensions();
        let scale = self.scale_size(size);
        // torchvision's Resize(int): the shorter side to `scale`, the longer one truncated.
        let (nw, nh) = match self.crop_mode {
            CropMode::Squash => (scale, scale),
            CropMode::Center if w <= h => (scale, (scale as u64 * h as u64 / w as u64) as u32),
            CropMode::Center => ((scale as u64 * w as u64 / h as u64) as u32, scale),
        };
        // torchvision's CenterCrop rounds half to even (Python's round).
        let offset = |from: u32| ((from - size) as f64 / 2.0).round_ties_even() as u32;
        let (left, top) = (offset(nw), offset(nh));
        // Only the crop is computed: the same bytes, in memory bounded by the model's size.
        let view = resize_window(img, nw, nh, (left, top, size, size), self.interpolation);
        let region = match self.crop_mode {
            CropMode::Center => {
                let to_original = w.min(h) as f32 / scale as f32;
                CropBox {
                    x: left as f32 * w as f32 / nw as f32,
                    y: top as f32 * h as f32 / nh as f32,
                    side: size as f32 * to_original,
                }
            }
            // The model sees the whole (shrunk) image squashed: drawn as its centre square.
            CropMode::Squash => CropBox::centre_square(w, h),
        };
        (view, region)
    }
}

/// The `size` x `size` view Vitrine's own models see: shorter side resized to `size`, centre
/// cropped.
pub fn fit_square(img: &RgbImage, size: u32) -> RgbImage {
    Resize::default().view(img, size).0
}

/// The `size` x `size` view of a chosen square: cut out first, then resized (only the square's
/// pixels are filtered, so dragging the square over a large photo stays cheap).
pub fn crop_square(
    img: &RgbImage,
    crop: Crop,
    size: u32,
    interpolation: Interpolation,
) -> Result<RgbImage> {
    let c = crop.check(img.width(), img.height())?;
    let square = image::imageops::crop_imm(img, c.x, c.y, c.size, c.size).to_image();
    Ok(resize(&square, size, size, interpolation))
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
    /// timm's default when a model's config names none (`IMAGENET_DEFAULT_MEAN/STD`).
    pub const IMAGENET: Self = Self {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
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

/// Everything that turns a photo into one model's input, from its manifest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    pub image_size: u32,
    pub resize: Resize,
    pub norm: Normalization,
}

impl Preprocess {
    /// Vitrine's own models' preprocessing ([`Resize::default`]) at `image_size`.
    pub fn new(image_size: u32, norm: Normalization) -> Self {
        Self {
            image_size,
            resize: Resize::default(),
            norm,
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

/// Decodes, orients, flattens, fits and normalises an image for a model.
pub fn prepare(bytes: &[u8], pre: &Preprocess) -> Result<Prepared> {
    prepare_cropped(bytes, pre, None)
}

/// As [`prepare`], with the model's view taken from `crop` (timm's centre crop when `None`).
pub fn prepare_cropped(bytes: &[u8], pre: &Preprocess, crop: Option<Crop>) -> Result<Prepared> {
    let original = decode_image(bytes)?;
    let mut prepared = prepare_decoded(original, pre);
    if crop.is_some() {
        prepared.set_crop(crop, pre)?;
    }
    Ok(prepared)
}

/// As [`prepare`], from pixels that are already decoded (datasets stored as raw RGB).
pub fn prepare_decoded(original: RgbImage, pre: &Preprocess) -> Prepared {
    let (model_view, crop) = pre.resize.view(&original, pre.image_size);
    let chw = normalised(&model_view, &pre.norm);
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
    /// Takes the model's view from another square of the same original (`None`: timm's centre
    /// crop, exactly as [`prepare`] takes it). A square outside the image is refused and
    /// leaves everything as it was.
    pub fn set_crop(&mut self, crop: Option<Crop>, pre: &Preprocess) -> Result<()> {
        let (view, region) = match crop {
            None => pre.resize.view(&self.original, pre.image_size),
            Some(c) => (
                crop_square(&self.original, c, pre.image_size, pre.resize.interpolation)?,
                c.as_box(),
            ),
        };
        self.chw = normalised(&view, &pre.norm);
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
    fn timm_crop_reads_the_centre_of_the_resized_photo() {
        // 300 x 200 at 32 px with crop_pct 0.875: shorter side to floor(32 / 0.875) = 36,
        // so 54 x 36, then the centre 32 x 32 from (11, 2) (Python rounds 11.0 and 2.0).
        let img = RgbImage::from_fn(300, 200, |x, y| image::Rgb([x as u8, y as u8, 0]));
        let resize = Resize {
            crop_pct: 0.875,
            ..Resize::default()
        };
        assert_eq!(resize.scale_size(32), 36);
        let (view, region) = resize.view(&img, 32);
        assert_eq!(view.dimensions(), (32, 32));
        let whole = resize_window(&img, 54, 36, (0, 0, 54, 36), Interpolation::Bicubic);
        assert_eq!(
            view,
            image::imageops::crop_imm(&whole, 11, 2, 32, 32).to_image()
        );
        // The region in the photo's pixels: 11 of 54 columns in, 32 / 36 of the height.
        assert!((region.x - 11.0 * 300.0 / 54.0).abs() < 1e-3, "{region:?}");
        assert!(
            (region.side - 32.0 * 200.0 / 36.0).abs() < 1e-3,
            "{region:?}"
        );
        // Half-pixel offsets round to even, as Python's round does: 39 - 32 = 7 -> 3.5 -> 4.
        let odd = RgbImage::new(39 * 10, 32 * 10);
        let (_, r) = Resize::default().view(&odd, 32);
        assert!((r.x - 4.0 * 10.0).abs() < 1e-3, "{r:?}");
    }

    #[test]
    fn a_very_long_photo_costs_only_the_crop() {
        // 1 x 16384 upscaled to 256 x 4,194,304 would be 3 GB; only the crop is computed.
        let img = RgbImage::from_fn(1, 16_384, |_, y| image::Rgb([(y % 256) as u8, 0, 0]));
        let resize = Resize {
            crop_pct: 0.875,
            ..Resize::default()
        };
        let (view, _) = resize.view(&img, 224);
        assert_eq!(view.dimensions(), (224, 224));
    }

    #[test]
    fn squash_ignores_the_aspect_ratio() {
        // Left half black, right half white, 400 x 100: squashed, the halves stay halves.
        let img = RgbImage::from_fn(400, 100, |x, _| {
            image::Rgb([if x < 200 { 0 } else { 255 }; 3])
        });
        let resize = Resize {
            crop_mode: CropMode::Squash,
            ..Resize::default()
        };
        let (view, _) = resize.view(&img, 16);
        assert_eq!(view.get_pixel(2, 8).0, [0; 3]);
        assert_eq!(view.get_pixel(13, 8).0, [255; 3]);
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
        let pre = Preprocess::new(8, Normalization::INCEPTION);
        let mut p = prepare_decoded(img, &pre);
        let crop: Crop = "22, 0, 16".parse().unwrap();
        p.set_crop(Some(crop), &pre).unwrap();
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
        p.set_crop(None, &pre).unwrap();
        assert_eq!(p.crop, CropBox::centre_square(40, 20));
        assert_eq!(p.model_view, fit_square(&p.original, 8));
    }

    #[test]
    fn a_square_outside_the_image_or_empty_is_refused_clearly() {
        let img = RgbImage::new(40, 20);
        let pre = Preprocess::new(8, Normalization::INCEPTION);
        let mut p = prepare_decoded(img, &pre);
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
            let e = p.set_crop(Some(crop), &pre).unwrap_err();
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
