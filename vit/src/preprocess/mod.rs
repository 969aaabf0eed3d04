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
//!
//! The steps are one file each: `decode.rs` (1 to 3), `crop.rs` (the squares), `resize.rs` (4),
//! `normalize.rs` (5), and `blank.rs` (whether a view is one flat colour); this file joins them.

use burn::prelude::*;
use image::RgbImage;

use crate::error::Result;

mod blank;
mod crop;
mod decode;
mod normalize;
mod resize;

pub use blank::{BLANK_STD, is_blank};
pub use crop::{Crop, CropBox};
pub use decode::{MAX_ALLOC, MAX_SIDE, decode_image};
pub use normalize::Normalization;
pub use resize::{CropMode, Resize, crop_square, fit_square};

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
    use crate::error::VitError;

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
}
