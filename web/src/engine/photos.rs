//! Photos in the engine: the page's photo decoded once and kept (a person moves its square, or
//! picks another model, many times per photo), prepared for a model on a square with `vit`'s
//! one preprocessing; and the Teach panel's photos cut to a model's square, only that kept.
//!
//! Decoding a phone photo takes a good fraction of a second in wasm: here it never holds up
//! the page.

use image::RgbImage;
use vit::preprocess::{Crop, Prepared, Preprocess, decode_image, prepare, prepare_decoded};

use crate::protocol::PictureId;

/// The photo is sent to the page at most this large, for drawing; the model's view is separate.
pub const DISPLAY_SIDE: u32 = 1280;

/// The page's current photo.
pub struct Photo {
    pub id: PictureId,
    pub name: String,
    /// Why the file looks cut off (`vit::damage::truncation`).
    pub damage: Option<String>,
    /// The decoded photo: on its own until a model asks, then inside `prepared`.
    original: Option<RgbImage>,
    /// Prepared for the last model asked, on the last square asked.
    pub prepared: Option<Prepared>,
}

impl Photo {
    /// Decodes `bytes` under `vit`'s size limits.
    pub fn decode(id: PictureId, name: &str, bytes: &[u8]) -> Result<Self, String> {
        let original = decode_image(bytes).map_err(|e| image_error(name, &e))?;
        Ok(Self {
            id,
            name: name.to_string(),
            damage: vit::damage::truncation(bytes),
            original: Some(original),
            prepared: None,
        })
    }

    /// Prepares the photo for `pre`, on `crop` (`None`: the centre square). A square outside
    /// the photo is refused.
    pub fn prepare(&mut self, pre: &Preprocess, crop: Option<Crop>) -> Result<&Prepared, String> {
        let original = match (self.original.take(), self.prepared.take()) {
            (Some(o), _) => o,
            (None, Some(p)) => p.original,
            (None, None) => return Err(format!("{} is no longer kept", self.name)),
        };
        let mut fresh = prepare_decoded(original, pre);
        let refused = match crop {
            Some(_) => fresh.set_crop(crop, pre).err(),
            None => None,
        };
        let prepared = self.prepared.insert(fresh);
        match refused {
            Some(e) => Err(image_error(&self.name, &e)),
            None => Ok(prepared),
        }
    }

    /// The photo for drawing: itself, or shrunk to [`DISPLAY_SIDE`].
    pub fn display(&self) -> Option<RgbImage> {
        let original = self
            .original
            .as_ref()
            .or(self.prepared.as_ref().map(|p| &p.original))?;
        let (w, h) = original.dimensions();
        if w.max(h) <= DISPLAY_SIDE {
            return Some(original.clone());
        }
        let scale = DISPLAY_SIDE as f32 / w.max(h) as f32;
        let (tw, th) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        Some(image::imageops::thumbnail(original, tw, th))
    }
}

/// A Teach photo's file cut to the model's square, the rest dropped at once.
pub fn square_of_file(bytes: &[u8], name: &str, pre: &Preprocess) -> Result<Vec<u8>, String> {
    let prepared = prepare(bytes, pre)
        .map_err(|e| format!("{name} was left out: it is not an image the page can read ({e})."))?;
    Ok(prepared.model_view.into_raw())
}

/// A webcam frame (RGB, `side` x `side`) cut to the model's square.
pub fn square_of_frame(rgb: Vec<u8>, side: u32, pre: &Preprocess) -> Result<Vec<u8>, String> {
    let frame =
        RgbImage::from_raw(side, side, rgb).ok_or("the webcam's frame is incomplete: try again")?;
    Ok(prepare_decoded(frame, pre).model_view.into_raw())
}

fn image_error(name: &str, e: &vit::VitError) -> String {
    format!("{name} could not be used: {e}")
}
