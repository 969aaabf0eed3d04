//! Step 4 of the preprocessing: the model's square view of an upright RGB image, resized and
//! cropped as timm's eval transform does ([`Resize`], [`fit_square`]), or cut from a square a
//! person chose ([`crop_square`]).

use image::RgbImage;

use super::crop::{Crop, CropBox};
use crate::error::{Result, VitError};
use crate::resample::{Interpolation, resize, resize_window};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
