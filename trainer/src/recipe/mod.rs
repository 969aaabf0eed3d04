//! Every hyperparameter of a training run, in one place, with the named presets.
//!
//! A run writes its resolved recipe to `RUN/recipe.json`; `--resume` reads it back, so a resumed
//! run cannot silently change its own recipe halfway.
//!
//! What a recipe holds is here; `presets.rs` fills it for each named preset, `flags.rs` holds
//! the command-line flags that override it.

use burn::prelude::Device;
use serde::{Deserialize, Serialize};
use vit::pos_embed::Resample;
use vit::transfer::Trainable;
use vit::{Normalization, VisionTransformer, VitConfig};

use crate::augment::AugmentConfig;

mod flags;
mod presets;

pub use flags::{ModelFlags, RecipeFlags, TuningFlags};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// A few minutes on a laptop CPU: a tiny ViT on a subset, to see the whole pipeline work.
    Quick,
    /// The reference TensorFlow demo's budget (10 epochs on CIFAR-10) with a wider model (dim 128).
    #[value(name = "cifar10-10ep")]
    #[serde(rename = "cifar10-10ep", alias = "cifar10-ten-epochs")]
    Cifar10TenEpochs,
    /// Ten epochs of CIFAR-10 in under an hour on two CPU cores: a narrow patch-4 ViT (dim 96,
    /// depth 6) on images resized to 48px.
    #[value(name = "cifar10-cpu")]
    Cifar10Cpu,
    /// `cifar10-cpu` for twenty epochs: twice its compute, about an hour on two cores with our
    /// kernels.
    #[value(name = "cifar10-cpu-20ep")]
    #[serde(rename = "cifar10-cpu-20ep")]
    Cifar10Cpu20Epochs,
    /// The same compute as `cifar10-cpu-20ep`, spent on 52 epochs at 32px (8x8 patches) with
    /// 4-pixel crops. The shipped default model comes from this preset.
    #[value(name = "cifar10-cpu-52ep")]
    #[serde(rename = "cifar10-cpu-52ep")]
    Cifar10Cpu52Epochs,
    /// The long GPU run: patch-4 ViT, 200 epochs, RandAugment, mixup/cutmix, label smoothing.
    #[value(name = "cifar10-best")]
    Cifar10Best,
    /// `trainer finetune`'s hyperparameters; its model is the base model's. Not a `train`
    /// preset: a fine-tuning run starts from a model, not from scratch.
    #[value(skip)]
    Finetune,
}

/// The float type training computes in.
///
/// burn 0.22 has no automatic mixed precision (f32 master weights, loss scaling): a device runs
/// in one default float type, which this picks. Weights, activations, gradients and optimizer
/// state are then all in it; LayerNorm still accumulates in f32. Checkpoints and published
/// models are stored in f32 either way.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16: f32's range, so no loss scaling is needed; for GPUs with bf16 units.
    Bf16,
    /// float16: without loss scaling, small gradients may underflow; prefer bf16.
    F16,
}

/// How the attention layers start (every other parameter starts as in timm).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttnInit {
    /// timm's: N(0, 0.02²) weights, zero biases.
    #[default]
    Timm,
    /// `W_q W_k^T ≈ +I`, `W_v W_proj ≈ -I`, as trained ViTs have (see `vit::model`).
    Mimetic,
}

/// How `pos_embed` starts.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PosInit {
    /// timm's: N(0, 0.02²).
    #[default]
    Timm,
    /// 2-D sine-cosine codes, still learned (see `vit::model`).
    Sincos,
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
    /// Runs recorded before this field existed trained in f32.
    #[serde(default)]
    pub precision: Precision,
    /// Runs recorded before this field existed started from timm's initialisation.
    #[serde(default)]
    pub attn_init: AttnInit,
    /// Runs recorded before this field existed started `pos_embed` as timm does.
    #[serde(default)]
    pub pos_init: PosInit,
    /// A fine-tuning run's base model and what of it learns (`trainer finetune`); `None` for a
    /// run from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<FinetuneRecipe>,
}

/// What a fine-tuning run starts from, and how it learns from there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneRecipe {
    /// The base model's name, and the SHA-256 of its weights (checked again on resume).
    pub base: String,
    pub base_sha256: String,
    /// The base model's image size; `pos_embed` is resampled when the run's differs.
    pub base_image_size: usize,
    pub resample: Resample,
    pub trainable: Trainable,
    /// Layer-wise learning-rate decay (BEiT, timm): layer `l` of `depth + 1` learns at
    /// `lr * layer_decay^(depth + 1 - l)`. 1 turns it off.
    pub layer_decay: f64,
}

impl Recipe {
    /// A freshly initialised model for this recipe.
    pub fn init_model(&self, device: &Device) -> vit::Result<VisionTransformer> {
        let model = self.model.init(device)?;
        let model = match self.attn_init {
            AttnInit::Timm => model,
            AttnInit::Mimetic => model.mimetic_attention(),
        };
        Ok(match self.pos_init {
            PosInit::Timm => model,
            PosInit::Sincos => model.sincos_positions(),
        })
    }

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
        self.min_lr
            + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
