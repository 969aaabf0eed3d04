//! Pictures the CLI writes: the patch sheet (`trainer patches`). Geometry comes from
//! `vit::patches`, so the grid drawn here is the one the model uses.

use image::{Rgb, RgbImage, imageops};
use vit::VitConfig;
use vit::patches::{model_region, patch_pixels, patch_rects};
use vit::preprocess::Prepared;

const PANEL: u32 = 256;
const MARGIN: u32 = 16;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([40, 40, 40]);
const ACCENT: Rgb<u8> = Rgb([230, 90, 30]);

/// Original (crop outlined) | model view with its patch grid | patches in token order, numbered.
pub fn patch_sheet(prepared: &Prepared, config: &VitConfig) -> RgbImage {
    let g = config.grid_size() as u32;
    let (gap, cell) = token_layout(g, config.patch_size as u32);
    let tokens_side = g * cell + (g - 1) * gap;
    let width = MARGIN * 4 + PANEL * 2 + tokens_side;
    let height = MARGIN * 2 + PANEL.max(tokens_side);
    let mut sheet = RgbImage::from_pixel(width, height, WHITE);

    // 1. The original, fitted into a PANEL square, with the region the model sees outlined.
    let (ow, oh) = prepared.original.dimensions();
    let scale = PANEL as f32 / ow.max(oh) as f32;
    let (sw, sh) = (
        ((ow as f32 * scale) as u32).max(1),
        ((oh as f32 * scale) as u32).max(1),
    );
    let filter = if scale >= 1.0 {
        imageops::FilterType::Nearest
    } else {
        imageops::FilterType::Triangle
    };
    let shown = imageops::resize(&prepared.original, sw, sh, filter);
    imageops::overlay(&mut sheet, &shown, MARGIN as i64, MARGIN as i64);
    let c = prepared.crop;
    outline(
        &mut sheet,
        MARGIN + (c.x * scale) as u32,
        MARGIN + (c.y * scale) as u32,
        (c.side * scale) as u32,
        (c.side * scale) as u32,
        ACCENT,
    );

    // 2. The model's view, enlarged, with the patch grid.
    let x0 = MARGIN * 2 + PANEL;
    let view = imageops::resize(
        &prepared.model_view,
        PANEL,
        PANEL,
        imageops::FilterType::Nearest,
    );
    imageops::overlay(&mut sheet, &view, x0 as i64, MARGIN as i64);
    let k = PANEL as f32 / config.image_size as f32;
    for r in patch_rects(config, model_region(config)) {
        outline(
            &mut sheet,
            x0 + (r.x * k) as u32,
            MARGIN + (r.y * k) as u32,
            (r.w * k) as u32,
            (r.h * k) as u32,
            WHITE,
        );
    }

    // 3. The patches, apart, in token order (row-major), each with its position number.
    let x1 = MARGIN * 3 + PANEL * 2;
    for (i, patch) in patch_pixels(&prepared.model_view, config)
        .iter()
        .enumerate()
    {
        let (row, col) = (i as u32 / g, i as u32 % g);
        let (px, py) = (x1 + col * (cell + gap), MARGIN + row * (cell + gap));
        let big = imageops::resize(patch, cell, cell, imageops::FilterType::Nearest);
        imageops::overlay(&mut sheet, &big, px as i64, py as i64);
        if cell >= 12 {
            label(&mut sheet, px + 1, py + 1, i + 1);
        }
    }
    sheet
}

/// The gap between patch tiles and the tiles' side, for a `g` x `g` grid of `patch` pixel
/// patches: tiles fill about a PANEL, never shrink below one screen pixel per model pixel,
/// and the gaps narrow (to none) as the grid grows, so any grid fits.
fn token_layout(g: u32, patch: u32) -> (u32, u32) {
    let gaps = g.saturating_sub(1);
    let gap = [4, 2, 1, 0]
        .into_iter()
        .find(|gap| gap * gaps <= PANEL / 2)
        .unwrap_or(0);
    let cell = ((PANEL - gap * gaps) / g.max(1)).max(patch).max(1);
    (gap, cell)
}

/// A one-pixel frame of `w` x `h` with its corner at (x, y), clipped to the image.
pub fn outline(img: &mut RgbImage, x: u32, y: u32, w: u32, h: u32, color: Rgb<u8>) {
    let (iw, ih) = img.dimensions();
    let mut put = |px: u32, py: u32| {
        if px < iw && py < ih {
            img.put_pixel(px, py, color);
        }
    };
    for i in 0..=w {
        put(x + i, y);
        put(x + i, y + h);
    }
    for j in 0..=h {
        put(x, y + j);
        put(x + w, y + j);
    }
}

/// 3x5 pixel digits, one row per u8 (3 low bits), enough to number patches without a font file.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 1, 1, 1],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// A number in white on a dark box, readable over any patch.
fn label(img: &mut RgbImage, x: u32, y: u32, n: usize) {
    let text = n.to_string();
    let w = text.len() as u32 * 4 + 1;
    for dy in 0..7 {
        for dx in 0..w {
            if x + dx < img.width() && y + dy < img.height() {
                img.put_pixel(x + dx, y + dy, INK);
            }
        }
    }
    for (i, ch) in text.bytes().enumerate() {
        let glyph = DIGITS[(ch - b'0') as usize];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    let (px, py) = (x + 1 + i as u32 * 4 + col, y + 1 + row as u32);
                    if px < img.width() && py < img.height() {
                        img.put_pixel(px, py, WHITE);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::preprocess::{Normalization, Preprocess, prepare_decoded};

    fn sheet_for(image_size: usize, patch_size: usize) -> RgbImage {
        let config = VitConfig::new()
            .with_image_size(image_size)
            .with_patch_size(patch_size);
        let photo = RgbImage::from_fn(300, 200, |x, y| Rgb([x as u8, y as u8, 7]));
        let prepared = prepare_decoded(
            photo,
            &Preprocess::new(image_size as u32, Normalization::CIFAR10),
        );
        patch_sheet(&prepared, &config)
    }

    #[test]
    fn tiles_and_gaps_fit_every_grid() {
        assert_eq!(token_layout(4, 8), (4, 61));
        assert_eq!(token_layout(1, 32).1, 256);
        for g in [1, 2, 16, 33, 65, 66, 128, 129, 256, 257, 1024] {
            let (gap, cell) = token_layout(g, 1);
            assert!(cell >= 1, "{g}");
            // The token panel stays about a PANEL wide until one pixel per tile overflows it.
            let side = g * cell + (g - 1) * gap;
            assert!(side <= PANEL.max(g) + PANEL / 2, "grid {g}: {side}");
        }
    }

    #[test]
    fn each_tile_shows_its_patch_of_the_model_input() {
        let (size, p) = (32usize, 8usize);
        let config = VitConfig::new().with_image_size(size).with_patch_size(p);
        // Every model pixel of its own colour, so a tile showing the wrong patch cannot pass.
        let photo = RgbImage::from_fn(size as u32, size as u32, |x, y| {
            Rgb([(x * 8) as u8, (y * 8) as u8, ((x * 3 + y * 5) * 2) as u8])
        });
        let prepared =
            prepare_decoded(photo, &Preprocess::new(size as u32, Normalization::CIFAR10));
        let sheet = patch_sheet(&prepared, &config);
        let g = config.grid_size() as u32;
        let (gap, cell) = token_layout(g, p as u32);
        let x1 = MARGIN * 3 + PANEL * 2;
        let view = &prepared.model_view;
        let label_w = 4 * 2 + 1; // two digits at most: 16 tokens
        for token in 0..g * g {
            let (row, col) = (token / g, token % g);
            let (tx, ty) = (x1 + col * (cell + gap), MARGIN + row * (cell + gap));
            for (dy, dx) in (0..p as u32).flat_map(|a| (0..p as u32).map(move |b| (a, b))) {
                // The centre of the tile's copy of model pixel (dx, dy).
                let sx = tx + ((dx as f32 + 0.5) * cell as f32 / p as f32) as u32;
                let sy = ty + ((dy as f32 + 0.5) * cell as f32 / p as f32) as u32;
                if sx < tx + 1 + label_w && sy < ty + 8 {
                    continue; // under the token's number
                }
                let want = view.get_pixel(col * p as u32 + dx, row * p as u32 + dy);
                assert_eq!(
                    sheet.get_pixel(sx, sy),
                    want,
                    "token {token} pixel ({dx}, {dy})"
                );
            }
        }
    }

    #[test]
    fn large_grids_draw() {
        // A 264 px, patch-4 model: 66 patches a side, which used to underflow.
        let sheet = sheet_for(264, 4);
        assert!(sheet.height() >= 264, "{:?}", sheet.dimensions());
        let sheet = sheet_for(300, 1);
        assert!(sheet.width() >= 300 + 2 * PANEL, "{:?}", sheet.dimensions());
    }
}
