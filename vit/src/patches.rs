//! Where every patch is, for drawing. The trainer's PNGs and the page's animation both draw from
//! here, so the picture always matches the token order the model uses (row-major, as the
//! patch-embedding convolution flattens its output, after the prefix tokens of
//! [`crate::prefix`]).

use image::RgbImage;

use crate::config::VitConfig;
use crate::prefix::PrefixTokens;
use crate::preprocess::CropBox;

/// The side of the square patch grid behind a sequence of `tokens` of a model whose one prefix
/// token is a class token (the original ViT's layout), or `None` when the patches do not form
/// a square. Any other model: [`PrefixTokens::grid_side`].
pub fn grid_side(tokens: usize) -> Option<usize> {
    PrefixTokens::CLASS.grid_side(tokens)
}

/// One patch: its token position and rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchRect {
    /// Position in the patch sequence, from 0: its token is
    /// [`PrefixTokens::token_of_patch`] of it.
    pub index: usize,
    pub row: usize,
    pub col: usize,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// Rectangles of every patch in token order, inside `region` (for example the crop box of the
/// original photo, or the model's own `image_size` square at 0,0).
pub fn patch_rects(config: &VitConfig, region: CropBox) -> Vec<PatchRect> {
    let g = config.grid_size();
    let step = region.side / g as f32;
    (0..g * g)
        .map(|index| {
            let (row, col) = (index / g, index % g);
            PatchRect {
                index,
                row,
                col,
                x: region.x + col as f32 * step,
                y: region.y + row as f32 * step,
                w: step,
                h: step,
            }
        })
        .collect()
}

/// The model's own square, for drawing on its `image_size` view.
pub fn model_region(config: &VitConfig) -> CropBox {
    CropBox {
        x: 0.0,
        y: 0.0,
        side: config.image_size as f32,
    }
}

/// The pixels of each patch of the model's view, in token order.
pub fn patch_pixels(model_view: &RgbImage, config: &VitConfig) -> Vec<RgbImage> {
    let p = config.patch_size as u32;
    patch_rects(config, model_region(config))
        .iter()
        .map(|r| image::imageops::crop_imm(model_view, r.x as u32, r.y as u32, p, p).to_image())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rects_are_row_major_and_tile_the_region() {
        let c = VitConfig::new().with_image_size(32).with_patch_size(8);
        let rects = patch_rects(
            &c,
            CropBox {
                x: 10.0,
                y: 0.0,
                side: 64.0,
            },
        );
        assert_eq!(rects.len(), 16);
        assert_eq!((rects[1].row, rects[1].col), (0, 1));
        assert_eq!((rects[4].row, rects[4].col), (1, 0));
        assert_eq!((rects[5].x, rects[5].y, rects[5].w), (26.0, 16.0, 16.0));
        let area: f32 = rects.iter().map(|r| r.w * r.h).sum();
        assert_eq!(area, 64.0 * 64.0);
    }

    #[test]
    fn grid_side_needs_a_class_token_and_a_square() {
        let c = VitConfig::new().with_image_size(32).with_patch_size(4);
        assert_eq!(grid_side(c.num_tokens()), Some(c.grid_size()));
        assert_eq!(grid_side(64), None, "no class token in front of 8x8");
        assert_eq!(grid_side(0), None);
        assert_eq!(grid_side(1), Some(0));
    }

    #[test]
    fn patch_pixels_follow_token_order() {
        let c = VitConfig::new().with_image_size(8).with_patch_size(4);
        let img = RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x / 4) as u8, (y / 4) as u8, 0]));
        let patches = patch_pixels(&img, &c);
        assert_eq!(patches.len(), 4);
        assert_eq!(patches[1].get_pixel(0, 0).0, [1, 0, 0]);
        assert_eq!(patches[2].get_pixel(3, 3).0, [0, 1, 0]);
    }
}
