//! Training-time augmentation of one 8-bit RGB image: random crop after zero padding,
//! horizontal flip, RandAugment (timm's, in `randaugment.rs`). Driven by an explicit [`Rng`],
//! so an image's augmentation depends only on the stream it is given. Batches and mixing are
//! `batch.rs`'s; the threads that build batches ahead are `loader.rs`'s.

use serde::{Deserialize, Serialize};

use vit::augment::{hflip, shift};

use crate::randaugment::RandAugment;
use vit::rng::Rng;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Random crop after zero padding by this many pixels on each side; 0 = off.
    pub crop_padding: u32,
    pub hflip: bool,
    /// RandAugment ops per image; 0 = off.
    pub randaugment_n: u32,
    /// RandAugment magnitude on timm's 0..10 scale (`rand-m9` is 9): an op reaches its full
    /// range at 10.
    pub randaugment_m: f32,
    /// Standard deviation of the magnitude, drawn afresh for each op (timm's `mstd`); 0 = fixed.
    #[serde(default)]
    pub randaugment_mstd: f32,
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
            randaugment_mstd: 0.0,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: 1.0,
            label_smoothing: 0.0,
        }
    }
}

impl AugmentConfig {
    /// The timm `rand_augment_transform` config string that this RandAugment is, such as
    /// `rand-m9-mstd0.5-inc1` (timm parses whole magnitudes only); `None` when it is off.
    pub fn timm_randaugment(&self) -> Option<String> {
        (self.randaugment_n > 0).then(|| {
            format!(
                "rand-m{}-n{}-mstd{}-inc1",
                self.randaugment_m, self.randaugment_n, self.randaugment_mstd
            )
        })
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
        let ra = RandAugment {
            n: cfg.randaugment_n,
            m: cfg.randaugment_m as f64,
            mstd: cfg.randaugment_mstd as f64,
        };
        ra.apply(img, side, fill, rng);
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
            randaugment_m: 9.0,
            randaugment_mstd: 0.5,
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
    fn the_timm_config_string_names_n_m_and_mstd() {
        let cfg = AugmentConfig {
            randaugment_n: 2,
            randaugment_m: 9.0,
            randaugment_mstd: 0.5,
            ..AugmentConfig::default()
        };
        assert_eq!(
            cfg.timm_randaugment().as_deref(),
            Some("rand-m9-n2-mstd0.5-inc1")
        );
        assert_eq!(AugmentConfig::default().timm_randaugment(), None);
    }

    #[test]
    fn recipes_saved_before_mstd_still_load() {
        let mut old = serde_json::to_value(full_aug()).unwrap();
        old.as_object_mut().unwrap().remove("randaugment_mstd");
        let cfg: AugmentConfig = serde_json::from_value(old).unwrap();
        let fixed = AugmentConfig {
            randaugment_mstd: 0.0,
            ..full_aug()
        };
        assert_eq!(cfg, fixed);
    }
}
