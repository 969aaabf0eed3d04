//! Training-time augmentation of one 8-bit RGB image: random crop after zero padding,
//! horizontal flip, RandAugment. Driven by an explicit [`Rng`], so an image's augmentation
//! depends only on the stream it is given. Batches and mixing are `batch.rs`'s; the threads
//! that build batches ahead are `loader.rs`'s.

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Random crop after zero padding by this many pixels on each side; 0 = off.
    pub crop_padding: u32,
    pub hflip: bool,
    /// RandAugment ops per image; 0 = off.
    pub randaugment_n: u32,
    /// RandAugment magnitude on a 0..30 scale: an op reaches its full range at 30.
    pub randaugment_m: f32,
    /// Mixup's Beta(alpha, alpha); 0 = off.
    pub mixup_alpha: f32,
    /// Cutmix's Beta(alpha, alpha); 0 = off.
    pub cutmix_alpha: f32,
    /// Chance that a batch is mixed at all, when mixup or cutmix is on.
    pub mix_prob: f32,
    pub label_smoothing: f32,
}

impl Default for AugmentConfig {
    /// Training order (shuffled, last partial batch dropped) with no augmentation at all.
    fn default() -> Self {
        Self {
            crop_padding: 0,
            hflip: false,
            randaugment_n: 0,
            randaugment_m: 0.0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

pub(crate) fn augment_image(
    img: &mut Vec<u8>,
    side: usize,
    cfg: &AugmentConfig,
    fill: [u8; 3],
    rng: &mut Rng,
) {
    if cfg.crop_padding > 0 {
        let pad = cfg.crop_padding as usize;
        let dx = rng.below(2 * pad + 1) as isize - pad as isize;
        let dy = rng.below(2 * pad + 1) as isize - pad as isize;
        *img = shift(img, side, dx, dy);
    }
    if cfg.hflip && rng.chance(0.5) {
        hflip(img, side);
    }
    if cfg.randaugment_n > 0 {
        let level = (cfg.randaugment_m / MAX_MAGNITUDE).clamp(0.0, 1.0);
        for _ in 0..cfg.randaugment_n {
            let op = OPS[rng.below(OPS.len())];
            // timm's RandAugment applies each chosen op with probability one half.
            if rng.chance(0.5) {
                apply_op(img, side, op, level, fill, rng);
            }
        }
    }
}

/// The crop of the zero-padded image whose top-left corner is `(pad + dx, pad + dy)`.
fn shift(img: &[u8], side: usize, dx: isize, dy: isize) -> Vec<u8> {
    let mut out = vec![0u8; img.len()];
    let s = side as isize;
    for y in 0..s {
        let sy = y + dy;
        if !(0..s).contains(&sy) {
            continue;
        }
        // The overlapping run of this row, copied in one go.
        let (x0, x1) = ((-dx).max(0), (s - dx).min(s));
        if x0 >= x1 {
            continue;
        }
        let dst = ((y * s + x0) * 3) as usize;
        let src = ((sy * s + x0 + dx) * 3) as usize;
        let n = ((x1 - x0) * 3) as usize;
        out[dst..dst + n].copy_from_slice(&img[src..src + n]);
    }
    out
}

fn hflip(img: &mut [u8], side: usize) {
    for row in img.chunks_exact_mut(side * 3) {
        for x in 0..side / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (side - 1 - x) * 3 + c);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RandAugment

/// Magnitude at which every op reaches the end of its range. timm divides by 10 instead
/// (`rand-m9` is 0.9 of the range), so timm's `m9` is `randaugment_m = 27` here.
pub const MAX_MAGNITUDE: f32 = 30.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Identity,
    AutoContrast,
    Equalize,
    Rotate,
    Solarize,
    Color,
    Posterize,
    Contrast,
    Brightness,
    Sharpness,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
}

const OPS: [Op; 14] = [
    Op::Identity,
    Op::AutoContrast,
    Op::Equalize,
    Op::Rotate,
    Op::Solarize,
    Op::Color,
    Op::Posterize,
    Op::Contrast,
    Op::Brightness,
    Op::Sharpness,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
];

/// Applies `op` at `level` in [0, 1]; the ranges are timm's "increasing" variants, so that
/// level 0 leaves the image alone and larger levels are always stronger.
fn apply_op(img: &mut [u8], side: usize, op: Op, level: f32, fill: [u8; 3], rng: &mut Rng) {
    let mut signed = |x: f32| if rng.chance(0.5) { -x } else { x };
    match op {
        Op::Identity => {}
        Op::AutoContrast => auto_contrast(img),
        Op::Equalize => equalize(img),
        Op::Rotate => {
            let (sin, cos) = signed(30.0 * level).to_radians().sin_cos();
            affine(img, side, [cos, sin, -sin, cos], [0.0, 0.0], fill);
        }
        // Pixels at or above the threshold are inverted; the threshold falls from 256 to 0.
        Op::Solarize => {
            let threshold = 256.0 - 256.0 * level;
            img.iter_mut()
                .filter(|v| **v as f32 >= threshold)
                .for_each(|v| *v = 255 - *v);
        }
        Op::Posterize => {
            let bits = 8 - (4.0 * level).round() as u32;
            let mask = (0xffu32 << (8 - bits)) as u8;
            img.iter_mut().for_each(|v| *v &= mask);
        }
        Op::Color => {
            let f = enhance_factor(signed(0.9 * level));
            let gray = img
                .chunks_exact(3)
                .flat_map(|p| [luma(p); 3])
                .collect::<Vec<_>>();
            blend_with(img, &gray, f);
        }
        Op::Contrast => {
            let f = enhance_factor(signed(0.9 * level));
            let n = (img.len() / 3).max(1) as f32;
            let mean = img.chunks_exact(3).map(|p| luma(p) as f32).sum::<f32>() / n;
            let base = vec![mean.round() as u8; img.len()];
            blend_with(img, &base, f);
        }
        Op::Brightness => {
            let f = enhance_factor(signed(0.9 * level));
            blend_with(img, &vec![0; img.len()], f);
        }
        Op::Sharpness => {
            let f = enhance_factor(signed(0.9 * level));
            let smooth = smoothed(img, side);
            blend_with(img, &smooth, f);
        }
        Op::ShearX => affine(
            img,
            side,
            [1.0, signed(0.3 * level), 0.0, 1.0],
            [0.0, 0.0],
            fill,
        ),
        Op::ShearY => affine(
            img,
            side,
            [1.0, 0.0, signed(0.3 * level), 1.0],
            [0.0, 0.0],
            fill,
        ),
        Op::TranslateX => {
            let t = signed(0.45 * level) * side as f32;
            affine(img, side, [1.0, 0.0, 0.0, 1.0], [t, 0.0], fill);
        }
        Op::TranslateY => {
            let t = signed(0.45 * level) * side as f32;
            affine(img, side, [1.0, 0.0, 0.0, 1.0], [0.0, t], fill);
        }
    }
}

/// timm keeps enhancement factors at or above 0.1: 0 would erase the image.
fn enhance_factor(delta: f32) -> f32 {
    (1.0 + delta).max(0.1)
}

/// ITU-R 601-2 luma, as PIL's "L" conversion.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 299 + p[1] as u32 * 587 + p[2] as u32 * 114 + 500) / 1000) as u8
}

/// PIL's `Image.blend(base, img, f)`: `base + f * (img - base)`, clipped.
fn blend_with(img: &mut [u8], base: &[u8], f: f32) {
    for (v, &b) in img.iter_mut().zip(base) {
        let x = b as f32 + f * (*v as f32 - b as f32);
        *v = x.round().clamp(0.0, 255.0) as u8;
    }
}

/// Stretches each channel to the full 0..255 range.
fn auto_contrast(img: &mut [u8]) {
    for c in 0..3 {
        let channel = img.iter().skip(c).step_by(3);
        let (lo, hi) = channel.fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi <= lo {
            continue;
        }
        let scale = 255.0 / (hi - lo) as f32;
        for v in img.iter_mut().skip(c).step_by(3) {
            *v = ((*v - lo) as f32 * scale).round().min(255.0) as u8;
        }
    }
}

/// PIL's `ImageOps.equalize`, per channel.
fn equalize(img: &mut [u8]) {
    for c in 0..3 {
        let mut hist = [0usize; 256];
        img.iter()
            .skip(c)
            .step_by(3)
            .for_each(|&v| hist[v as usize] += 1);
        let Some(last) = hist.iter().rposition(|&n| n > 0) else {
            continue;
        };
        let step = (hist.iter().sum::<usize>() - hist[last]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (entry, &count) in lut.iter_mut().zip(&hist) {
            *entry = (n / step).min(255) as u8;
            n += count;
        }
        img.iter_mut()
            .skip(c)
            .step_by(3)
            .for_each(|v| *v = lut[*v as usize]);
    }
}

/// PIL's SMOOTH filter (3x3, centre weight 5, total 13); the border keeps its pixels.
fn smoothed(img: &[u8], side: usize) -> Vec<u8> {
    let mut out = img.to_vec();
    for y in 1..side.saturating_sub(1) {
        for x in 1..side - 1 {
            for c in 0..3 {
                let mut sum = 0u32;
                for (dy, dx) in (0..3).flat_map(|dy| (0..3).map(move |dx| (dy, dx))) {
                    let v = img[((y + dy - 1) * side + x + dx - 1) * 3 + c] as u32;
                    sum += if (dy, dx) == (1, 1) { 5 * v } else { v };
                }
                out[(y * side + x) * 3 + c] = ((sum + 6) / 13) as u8;
            }
        }
    }
    out
}

/// Resamples the image through `source = m * (dest - centre) + centre + t` (bilinear), with
/// `fill` wherever the source lies outside.
fn affine(img: &mut [u8], side: usize, m: [f32; 4], t: [f32; 2], fill: [u8; 3]) {
    let src = img.to_vec();
    let centre = side as f32 / 2.0;
    let s = side as isize;
    let at = |x: isize, y: isize, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= s || y >= s {
            fill[c] as f32
        } else {
            src[(y as usize * side + x as usize) * 3 + c] as f32
        }
    };
    for y in 0..side {
        for x in 0..side {
            let (u, v) = (x as f32 + 0.5 - centre, y as f32 + 0.5 - centre);
            let sx = m[0] * u + m[1] * v + centre + t[0] - 0.5;
            let sy = m[2] * u + m[3] * v + centre + t[1] - 0.5;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            for c in 0..3 {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
                let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
                let value = top * (1.0 - fy) + bottom * fy;
                img[(y * side + x) * 3 + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::Samples;

    /// `n` images of side 8, every byte distinct within an image, with labels i % 3.
    pub(crate) fn samples(n: usize) -> Samples {
        let mut pixels = Vec::new();
        for i in 0..n {
            pixels.extend((0..192).map(|p| ((p + 7 * i) % 251) as u8 + 1));
        }
        Samples {
            size: 8,
            pixels,
            labels: (0..n).map(|i| (i % 3) as u16).collect(),
        }
    }

    pub(crate) fn full_aug() -> AugmentConfig {
        AugmentConfig {
            crop_padding: 2,
            hflip: true,
            randaugment_n: 2,
            randaugment_m: 15.0,
            mixup_alpha: 0.8,
            cutmix_alpha: 1.0,
            mix_prob: 1.0,
            label_smoothing: 0.1,
        }
    }

    fn sorted(v: &[u8]) -> Vec<u8> {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    }

    #[test]
    fn flip_and_crop_move_pixels_without_inventing_any() {
        let s = samples(1);
        let img = s.image(0);
        let mut flipped = img.to_vec();
        hflip(&mut flipped, 8);
        assert_eq!(sorted(&flipped), sorted(img));
        assert_eq!(&flipped[..3], &img[7 * 3..8 * 3]);
        assert_eq!(shift(img, 8, 0, 0), img);
        let cropped = shift(img, 8, 2, -1);
        assert_eq!(cropped.len(), img.len());
        assert_eq!(cropped[8 * 3..8 * 3 + 3], img[2 * 3..3 * 3]);
        let zeros = cropped.iter().filter(|&&v| v == 0).count();
        assert_eq!(
            zeros,
            3 * (8 + 2 * 7),
            "a row and two columns come from the padding"
        );
        assert!(cropped.iter().all(|v| *v == 0 || img.contains(v)));
    }

    #[test]
    fn randaugment_ops_are_safe_and_level_zero_is_identity() {
        let mut rng = Rng::new(3);
        for side in [1, 2, 8] {
            let img: Vec<u8> = (0..side * side * 3).map(|i| (i * 37 % 256) as u8).collect();
            for op in OPS {
                let mut out = img.clone();
                apply_op(&mut out, side, op, 0.0, [128; 3], &mut rng);
                if !matches!(op, Op::AutoContrast | Op::Equalize) {
                    assert_eq!(out, img, "{op:?} at level 0");
                }
                // At full strength every op but Identity changes a low-contrast picture with
                // detail in it (a full-range, flat-histogram one is already auto-contrasted and
                // equalised; and like PIL's, equalize leaves fewer than 256 pixels alone).
                if side == 8 && op != Op::Identity {
                    let dull: Vec<u8> =
                        (0..32 * 32 * 3).map(|i| 90 + (i * 37 % 61) as u8).collect();
                    let mut out = dull.clone();
                    apply_op(&mut out, 32, op, 1.0, [128; 3], &mut rng);
                    assert_ne!(out, dull, "{op:?} at level 1");
                }
            }
        }
        let mut img = vec![0, 100, 200];
        apply_op(&mut img, 1, Op::Solarize, 1.0, [0; 3], &mut rng);
        assert_eq!(img, [255, 155, 55]);
        let mut img = vec![0xff, 0x1f, 0x80];
        apply_op(&mut img, 1, Op::Posterize, 1.0, [0; 3], &mut rng);
        assert_eq!(img, [0xf0, 0x10, 0x80]);
        let mut img: Vec<u8> = (0..48).map(|i| 100 + i as u8).collect();
        auto_contrast(&mut img);
        assert_eq!((img.iter().min(), img.iter().max()), (Some(&0), Some(&255)));
    }

    #[test]
    fn rotation_by_a_quarter_turn_moves_corners() {
        let mut img = vec![0u8; 4 * 4 * 3];
        img[..3].copy_from_slice(&[255, 255, 255]);
        affine(&mut img, 4, [0.0, 1.0, -1.0, 0.0], [0.0, 0.0], [0; 3]);
        assert_eq!(img.iter().filter(|&&v| v == 255).count(), 3);
        assert_eq!(&img[..3], &[0, 0, 0]);
    }
}
