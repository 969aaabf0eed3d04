//! The command-line flags that override a preset's recipe: [`TuningFlags`] (shared by `train`
//! and `finetune`), [`RecipeFlags`] (`train`) and [`ModelFlags`] (the model's shape, shared by
//! `train` and `bench`).

use vit::{Pooling, VitConfig};

use super::{AttnInit, PosInit, Precision, Recipe};

/// Recipe flags that keep the model's shape: `train` and `finetune` both take them.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct TuningFlags {
    #[arg(long, help_heading = "Recipe")]
    pub epochs: Option<usize>,
    /// Train on at most N images (a class-balanced subset).
    #[arg(long, help_heading = "Recipe")]
    pub limit: Option<usize>,
    #[arg(long, help_heading = "Recipe")]
    pub batch_size: Option<usize>,
    /// Peak learning rate (after warm-up); `finetune` gives it to the head, and less to each
    /// layer below it (--layer-decay).
    #[arg(long, help_heading = "Recipe")]
    pub lr: Option<f64>,
    #[arg(long, help_heading = "Recipe")]
    pub min_lr: Option<f64>,
    #[arg(long, help_heading = "Recipe")]
    pub warmup_epochs: Option<f64>,
    #[arg(long, help_heading = "Recipe")]
    pub weight_decay: Option<f64>,
    #[arg(long, help_heading = "Recipe")]
    pub label_smoothing: Option<f32>,
    /// Zero padding before the random crop (0 = no crop; `finetune`'s default is a sixteenth
    /// of the image size).
    #[arg(long, help_heading = "Recipe")]
    pub crop_padding: Option<u32>,
    /// Horizontal flips on or off.
    #[arg(long, help_heading = "Recipe")]
    pub hflip: Option<bool>,
    #[arg(long, help_heading = "Recipe")]
    pub seed: Option<u64>,
    /// Compute in this float type: bf16 or f16 halve memory and speed up GPUs with half-precision
    /// units (burn has no automatic mixed precision; see trainer/src/recipe/mod.rs).
    #[arg(long, value_enum, help_heading = "Recipe")]
    pub precision: Option<Precision>,
}

/// Command-line overrides of a preset's recipe; each is optional and the preset fills the rest.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct RecipeFlags {
    #[command(flatten)]
    pub tuning: TuningFlags,
    /// Clip the global gradient norm (0 = off).
    #[arg(long, help_heading = "Recipe")]
    pub grad_clip: Option<f64>,
    /// RandAugment: operations per image (0 = off).
    #[arg(long, help_heading = "Recipe")]
    pub randaugment: Option<u32>,
    /// RandAugment magnitude on timm's 0..10 scale (rand-m9 is 9).
    #[arg(long, help_heading = "Recipe")]
    pub randaugment_m: Option<f32>,
    /// RandAugment magnitude noise, timm's mstd (0 = fixed magnitude).
    #[arg(long, help_heading = "Recipe")]
    pub randaugment_mstd: Option<f32>,
    /// Mixup alpha (0 = off).
    #[arg(long, help_heading = "Recipe")]
    pub mixup: Option<f32>,
    /// CutMix alpha (0 = off).
    #[arg(long, help_heading = "Recipe")]
    pub cutmix: Option<f32>,
    /// Probability that a batch is mixed at all.
    #[arg(long, help_heading = "Recipe")]
    pub mix_prob: Option<f32>,
    /// Stochastic depth rate of the last block.
    #[arg(long, help_heading = "Recipe")]
    pub drop_path: Option<f64>,
    #[arg(long, help_heading = "Recipe")]
    pub dropout: Option<f64>,
    /// How attention weights start: timm's random init, or mimetic (identity-like products).
    #[arg(long, value_enum, help_heading = "Recipe")]
    pub attn_init: Option<AttnInit>,
    /// How `pos_embed` starts: timm's random init, or 2-D sine-cosine codes.
    #[arg(long, value_enum, help_heading = "Recipe")]
    pub pos_init: Option<PosInit>,
    #[command(flatten)]
    pub model: ModelFlags,
}

/// Command-line overrides of a preset's model shape (shared by `train` and `bench`).
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct ModelFlags {
    #[arg(long, help_heading = "Model")]
    pub patch_size: Option<usize>,
    #[arg(long, help_heading = "Model")]
    pub embed_dim: Option<usize>,
    #[arg(long, help_heading = "Model")]
    pub depth: Option<usize>,
    #[arg(long, help_heading = "Model")]
    pub heads: Option<usize>,
    #[arg(long, help_heading = "Model")]
    pub mlp_ratio: Option<f64>,
    #[arg(long, help_heading = "Model", value_parser = ["token", "mean"])]
    pub pooling: Option<String>,
    #[arg(long, help_heading = "Model")]
    pub image_size: Option<usize>,
}

fn set<T: Clone>(target: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *target = v.clone();
    }
}

impl ModelFlags {
    pub fn apply(&self, m: &mut VitConfig) {
        set(&mut m.patch_size, &self.patch_size);
        set(&mut m.embed_dim, &self.embed_dim);
        set(&mut m.depth, &self.depth);
        set(&mut m.num_heads, &self.heads);
        set(&mut m.mlp_ratio, &self.mlp_ratio);
        set(&mut m.image_size, &self.image_size);
        if let Some(p) = &self.pooling {
            m.pooling = if p == "mean" {
                Pooling::Mean
            } else {
                Pooling::Token
            };
        }
    }
}

impl TuningFlags {
    pub fn apply(&self, r: &mut Recipe) {
        set(&mut r.epochs, &self.epochs);
        if self.limit.is_some() {
            r.limit = self.limit;
        }
        set(&mut r.batch_size, &self.batch_size);
        set(&mut r.lr, &self.lr);
        set(&mut r.min_lr, &self.min_lr);
        set(&mut r.warmup_epochs, &self.warmup_epochs);
        set(&mut r.weight_decay, &self.weight_decay);
        set(&mut r.seed, &self.seed);
        set(&mut r.precision, &self.precision);
        let a = &mut r.augment;
        set(&mut a.label_smoothing, &self.label_smoothing);
        set(&mut a.crop_padding, &self.crop_padding);
        set(&mut a.hflip, &self.hflip);
    }
}

impl RecipeFlags {
    pub fn apply(&self, r: &mut Recipe) {
        self.tuning.apply(r);
        set(&mut r.grad_clip, &self.grad_clip);
        set(&mut r.attn_init, &self.attn_init);
        set(&mut r.pos_init, &self.pos_init);
        let a = &mut r.augment;
        set(&mut a.randaugment_n, &self.randaugment);
        set(&mut a.randaugment_m, &self.randaugment_m);
        set(&mut a.randaugment_mstd, &self.randaugment_mstd);
        set(&mut a.mixup_alpha, &self.mixup);
        set(&mut a.cutmix_alpha, &self.cutmix);
        set(&mut a.mix_prob, &self.mix_prob);
        let m = &mut r.model;
        set(&mut m.drop_path_rate, &self.drop_path);
        set(&mut m.drop_rate, &self.dropout);
        self.model.apply(m);
    }
}

#[cfg(test)]
mod tests {
    use burn::prelude::Device;
    use vit::VisionTransformer;

    use super::*;
    use crate::recipe::Preset;

    #[test]
    fn flags_override_the_preset() {
        let mut r = Preset::Quick.recipe(10);
        let flags = RecipeFlags {
            tuning: TuningFlags {
                epochs: Some(7),
                ..TuningFlags::default()
            },
            mixup: Some(0.2),
            model: ModelFlags {
                depth: Some(2),
                pooling: Some("mean".into()),
                ..ModelFlags::default()
            },
            ..RecipeFlags::default()
        };
        flags.apply(&mut r);
        assert_eq!(
            (r.epochs, r.augment.mixup_alpha, r.model.depth),
            (7, 0.2, 2)
        );
        assert_eq!(r.model.pooling, Pooling::Mean);
        assert_eq!(r.lr, Preset::Quick.recipe(10).lr);
    }

    /// Mean diagonal of the first block's `W_v W_proj`: about -0.4 after mimetic init, about 0
    /// after timm's.
    fn value_proj_diagonal(model: &VisionTransformer) -> f32 {
        let attn = &model.blocks[0].attn;
        let w = attn.qkv.weight.val(); // [D, 3D]
        let [d, _] = w.dims();
        let product = w.narrow(1, 2 * d, d).matmul(attn.proj.weight.val());
        let v = product.into_data().try_to_vec::<f32>().unwrap();
        (0..d).map(|i| v[i * d + i]).sum::<f32>() / d as f32
    }

    #[test]
    fn attn_init_flag_reaches_the_model() {
        let device = Device::flex();
        let mut r = Preset::Quick.recipe(10);
        assert_eq!(r.attn_init, AttnInit::Timm);
        let timm = value_proj_diagonal(&r.init_model(&device).unwrap());
        RecipeFlags {
            attn_init: Some(AttnInit::Mimetic),
            ..RecipeFlags::default()
        }
        .apply(&mut r);
        let mimetic = value_proj_diagonal(&r.init_model(&device).unwrap());
        assert!(timm.abs() < 0.05, "{timm}");
        assert!(mimetic < -0.3, "{mimetic}");
    }

    #[test]
    fn pos_init_flag_reaches_the_model() {
        let device = Device::flex();
        let mut r = Preset::Quick.recipe(10);
        assert_eq!(r.pos_init, PosInit::Timm);
        // Sine-cosine codes have entries of size up to 1; timm's noise has a 0.02 spread.
        let largest = |r: &Recipe| {
            let pos = r.init_model(&device).unwrap().pos_embed.val();
            pos.abs().max().into_scalar::<f32>()
        };
        assert!(largest(&r) < 0.2);
        RecipeFlags {
            pos_init: Some(PosInit::Sincos),
            ..RecipeFlags::default()
        }
        .apply(&mut r);
        assert!(largest(&r) > 0.9);
    }
}
