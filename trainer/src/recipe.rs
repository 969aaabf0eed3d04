//! Every hyperparameter of a training run, in one place, with the named presets.
//!
//! A run writes its resolved recipe to `RUN/recipe.json`; `--resume` reads it back, so a resumed
//! run cannot silently change its own recipe halfway.

use serde::{Deserialize, Serialize};
use vit::{Normalization, Pooling, VitConfig};

use crate::augment::AugmentConfig;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// A few minutes on a laptop CPU: a tiny ViT on a subset, to see the whole pipeline work.
    Quick,
    /// The reference TensorFlow demo's budget (10 epochs on CIFAR-10), sized for a CPU.
    #[value(name = "cifar10-10ep")]
    Cifar10TenEpochs,
    /// The long GPU run: patch-4 ViT, 200 epochs, RandAugment, mixup/cutmix, label smoothing.
    #[value(name = "cifar10-best")]
    Cifar10Best,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    pub preset: Preset,
    pub model: VitConfig,
    pub normalization: Normalization,
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate, reached after warm-up.
    pub lr: f64,
    /// Final learning rate at the end of the cosine decay.
    pub min_lr: f64,
    pub warmup_epochs: f64,
    pub weight_decay: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Clip the global gradient norm to this value (0 = off).
    pub grad_clip: f64,
    pub augment: AugmentConfig,
    pub seed: u64,
    /// Train on at most this many images (class-balanced); `None` = all.
    pub limit: Option<usize>,
}

impl Preset {
    pub fn recipe(self, num_classes: usize) -> Recipe {
        let base_model = VitConfig::new().with_num_classes(num_classes);
        let base = Recipe {
            preset: self,
            model: base_model.clone(),
            normalization: Normalization::CIFAR10,
            epochs: 10,
            batch_size: 128,
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_epochs: 1.0,
            weight_decay: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            grad_clip: 1.0,
            augment: AugmentConfig {
                crop_padding: 4,
                hflip: true,
                randaugment_n: 0,
                randaugment_m: 0.0,
                mixup_alpha: 0.0,
                cutmix_alpha: 0.0,
                mix_prob: 0.0,
                label_smoothing: 0.1,
            },
            seed: 42,
            limit: None,
        };
        match self {
            Preset::Quick => Recipe {
                model: base_model
                    .with_patch_size(8)
                    .with_embed_dim(64)
                    .with_depth(3)
                    .with_num_heads(2)
                    .with_mlp_ratio(2.0),
                epochs: 3,
                batch_size: 64,
                lr: 2e-3,
                warmup_epochs: 0.5,
                limit: Some(4000),
                ..base
            },
            // Sized so ten epochs of 50,000 images fit a CPU: 64 tokens (patch 4), narrow and
            // shallow. Short schedules favour light augmentation; heavy mixing pays off only
            // over many epochs.
            Preset::Cifar10TenEpochs => Recipe {
                model: base_model
                    .with_patch_size(4)
                    .with_embed_dim(128)
                    .with_depth(6)
                    .with_num_heads(4)
                    .with_mlp_ratio(2.0)
                    .with_pooling(Pooling::Mean),
                epochs: 10,
                batch_size: 128,
                lr: 2e-3,
                warmup_epochs: 1.0,
                ..base
            },
            Preset::Cifar10Best => Recipe {
                model: base_model
                    .with_patch_size(4)
                    .with_embed_dim(384)
                    .with_depth(9)
                    .with_num_heads(12)
                    .with_mlp_ratio(4.0)
                    .with_drop_path_rate(0.1),
                epochs: 200,
                batch_size: 256,
                lr: 1e-3,
                warmup_epochs: 5.0,
                augment: AugmentConfig {
                    randaugment_n: 2,
                    randaugment_m: 9.0,
                    mixup_alpha: 0.8,
                    cutmix_alpha: 1.0,
                    mix_prob: 0.5,
                    ..base.augment.clone()
                },
                ..base
            },
        }
    }
}

impl Recipe {
    /// Learning rate at optimizer step `step` of `total`: linear warm-up from near zero, then
    /// cosine decay to `min_lr`. A pure function of the step, so a resumed run needs no
    /// scheduler state.
    pub fn lr_at(&self, step: usize, steps_per_epoch: usize) -> f64 {
        let total = (self.epochs * steps_per_epoch).max(1);
        let warmup = ((self.warmup_epochs * steps_per_epoch as f64) as usize).min(total);
        if step < warmup {
            return self.lr * (step + 1) as f64 / warmup as f64;
        }
        let t = (step - warmup) as f64 / (total - warmup).max(1) as f64;
        self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_valid_models() {
        for p in [Preset::Quick, Preset::Cifar10TenEpochs, Preset::Cifar10Best] {
            p.recipe(10).model.validate().unwrap();
        }
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let r = Preset::Cifar10TenEpochs.recipe(10);
        let spe = 100;
        assert!(r.lr_at(0, spe) < r.lr / 50.0);
        assert!((r.lr_at(spe - 1, spe) - r.lr).abs() < 1e-12);
        assert!(r.lr_at(5 * spe, spe) < r.lr);
        assert!((r.lr_at(10 * spe - 1, spe) - r.min_lr).abs() < 1e-5);
    }
}
