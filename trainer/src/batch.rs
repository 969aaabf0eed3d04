//! One batch: the images of some sample indices, augmented (training) or not (evaluation),
//! normalised to CHW floats, with soft targets; mixup or cutmix across the batch, as timm does.

use vit::Normalization;

use crate::augment::{AugmentConfig, augment_image};
use crate::data::Samples;
use vit::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `len x 3 x S x S`, normalised.
    pub images: Vec<f32>,
    /// `len x classes` soft targets; each row sums to 1.
    pub targets: Vec<f32>,
    /// The original hard labels, for accuracy.
    pub labels: Vec<u32>,
    pub len: usize,
}

/// Builds one batch of `indices`; `aug: None` is evaluation: no augmentation, one-hot targets.
pub fn make_batch(
    samples: &Samples,
    indices: &[usize],
    num_classes: usize,
    aug: Option<&AugmentConfig>,
    norm: &Normalization,
    rng: &mut Rng,
) -> Batch {
    let side = samples.size as usize;
    let lut = NormLut::new(norm);
    let fill = norm
        .mean
        .map(|m| (m * 255.0).round().clamp(0.0, 255.0) as u8);
    let mut images = Vec::with_capacity(indices.len() * 3 * side * side);
    let mut img = vec![0u8; samples.image_len()];
    for &i in indices {
        img.copy_from_slice(samples.image(i));
        if let Some(cfg) = aug {
            augment_image(&mut img, side, cfg, fill, rng);
        }
        lut.extend_chw(&img, &mut images);
    }
    let labels: Vec<u32> = indices.iter().map(|&i| samples.labels[i] as u32).collect();
    let smoothing = aug.map_or(0.0, |a| a.label_smoothing);
    let mut targets = smoothed_one_hot(&labels, num_classes, smoothing);
    if let Some(cfg) = aug {
        mix_batch(&mut images, &mut targets, side, num_classes, cfg, rng);
    }
    Batch {
        images,
        targets,
        labels,
        len: indices.len(),
    }
}

/// `(v / 255 - mean) / std` for every byte value, computed as `vit::preprocess` does.
struct NormLut([[f32; 256]; 3]);

impl NormLut {
    fn new(norm: &Normalization) -> Self {
        let mut lut = [[0.0; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - norm.mean[c]) / norm.std[c];
            }
        }
        Self(lut)
    }

    /// Appends an HWC image as normalised CHW.
    fn extend_chw(&self, hwc: &[u8], out: &mut Vec<f32>) {
        for c in 0..3 {
            out.extend(hwc.chunks_exact(3).map(|px| self.0[c][px[c] as usize]));
        }
    }
}

/// timm's smoothing: `smoothing / classes` everywhere, the rest on the true class.
fn smoothed_one_hot(labels: &[u32], classes: usize, smoothing: f32) -> Vec<f32> {
    let off = smoothing / classes as f32;
    let mut out = vec![off; labels.len() * classes];
    for (row, &label) in out.chunks_exact_mut(classes).zip(labels) {
        if let Some(t) = row.get_mut(label as usize) {
            *t = 1.0 - smoothing + off;
        }
    }
    out
}

/// Mixup or cutmix of each image with its mirror in the batch (image i with image len-1-i).
fn mix_batch(
    images: &mut [f32],
    targets: &mut [f32],
    side: usize,
    classes: usize,
    cfg: &AugmentConfig,
    rng: &mut Rng,
) {
    let (mixup, cutmix) = (cfg.mixup_alpha > 0.0, cfg.cutmix_alpha > 0.0);
    if !(mixup || cutmix) || !rng.chance(cfg.mix_prob) {
        return;
    }
    let use_cutmix = if mixup && cutmix {
        rng.chance(0.5)
    } else {
        cutmix
    };
    let image_len = 3 * side * side;
    let original = images.to_vec();
    let partner = |i: usize| {
        let j = original.len() / image_len - 1 - i;
        &original[j * image_len..(j + 1) * image_len]
    };
    let lam = if use_cutmix {
        let (y0, y1, x0, x1) = cut_box(side, rng.beta(cfg.cutmix_alpha, cfg.cutmix_alpha), rng);
        for (i, img) in images.chunks_exact_mut(image_len).enumerate() {
            let other = partner(i);
            for c in 0..3 {
                for y in y0..y1 {
                    let at = c * side * side + y * side;
                    img[at + x0..at + x1].copy_from_slice(&other[at + x0..at + x1]);
                }
            }
        }
        // The box was clipped at the borders, so lambda is the area really kept.
        1.0 - ((y1 - y0) * (x1 - x0)) as f32 / (side * side) as f32
    } else {
        let lam = rng.beta(cfg.mixup_alpha, cfg.mixup_alpha);
        for (i, img) in images.chunks_exact_mut(image_len).enumerate() {
            for (v, &o) in img.iter_mut().zip(partner(i)) {
                *v = lam * *v + (1.0 - lam) * o;
            }
        }
        lam
    };
    let original = targets.to_vec();
    let rows = original.len() / classes;
    for (i, row) in targets.chunks_exact_mut(classes).enumerate() {
        let other = &original[(rows - 1 - i) * classes..(rows - i) * classes];
        for (t, &o) in row.iter_mut().zip(other) {
            *t = lam * *t + (1.0 - lam) * o;
        }
    }
}

/// timm's `rand_bbox`: a box of side `sqrt(1 - lam)` of the image, centred anywhere, clipped.
fn cut_box(side: usize, lam: f32, rng: &mut Rng) -> (usize, usize, usize, usize) {
    let cut = (side as f32 * (1.0 - lam).max(0.0).sqrt()) as usize;
    let (cy, cx) = (rng.below(side), rng.below(side));
    let lo = |c: usize| c.saturating_sub(cut / 2);
    let hi = |c: usize| (c + cut / 2).min(side);
    (lo(cy), hi(cy), lo(cx), hi(cx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::augment::tests::{full_aug, samples};

    const NORM: Normalization = Normalization::INCEPTION;

    #[test]
    fn targets_are_distributions_and_follow_the_mix() {
        let s = samples(6);
        for (mixup, cutmix) in [(0.8, 0.0), (0.0, 1.0), (0.5, 0.5)] {
            let cfg = AugmentConfig {
                mixup_alpha: mixup,
                cutmix_alpha: cutmix,
                ..full_aug()
            };
            for seed in 0..20 {
                let b = make_batch(
                    &s,
                    &[0, 1, 2, 3, 4, 5],
                    3,
                    Some(&cfg),
                    &NORM,
                    &mut Rng::new(seed),
                );
                assert_eq!((b.images.len(), b.targets.len()), (6 * 192, 18));
                for row in b.targets.chunks(3) {
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
                    assert!(row.iter().all(|&t| t >= 0.1 / 3.0 - 1e-6));
                }
            }
        }
    }

    #[test]
    fn cutmix_lambda_is_the_pasted_area() {
        // Two flat images, black (class 0) and white (class 1): pixels say where each came from.
        let s = Samples {
            size: 16,
            pixels: [vec![0; 768], vec![255; 768]].concat(),
            labels: vec![0, 1],
        };
        let cfg = AugmentConfig {
            cutmix_alpha: 1.0,
            ..AugmentConfig::default()
        };
        for seed in 0..20 {
            let b = make_batch(&s, &[0, 1], 2, Some(&cfg), &NORM, &mut Rng::new(seed));
            let white = b.images[..256].iter().filter(|&&v| v > 0.0).count() as f32 / 256.0;
            assert!(
                (b.targets[1] - white).abs() < 1e-6,
                "{} vs {white}",
                b.targets[1]
            );
        }
        let cfg = AugmentConfig {
            mixup_alpha: 1.0,
            ..AugmentConfig::default()
        };
        let b = make_batch(&s, &[0, 1], 2, Some(&cfg), &NORM, &mut Rng::new(1));
        let lam = b.targets[0];
        assert!((b.images[0] - (-lam + (1.0 - lam))).abs() < 1e-5);
    }
}
