//! The one place a ViT's shape and regularisation are described.
//!
//! Field names follow timm's `VisionTransformer` arguments so a config reads the same on both
//! sides of a weight exchange.

use std::num::Saturating;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VitError};

/// How the token sequence is reduced to one vector for the classifier head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Use the class token, as in the paper (timm's `global_pool='token'`).
    #[default]
    Token,
    /// Average the patch tokens (timm's `global_pool='avg'`); the class token is still present.
    Mean,
}

#[derive(Config, Debug, PartialEq)]
pub struct VitConfig {
    /// Side of the square input image, in pixels.
    #[config(default = 32)]
    pub image_size: usize,
    /// Side of a square patch, in pixels; `image_size` must be a multiple of it.
    #[config(default = 4)]
    pub patch_size: usize,
    #[config(default = 3)]
    pub in_chans: usize,
    #[config(default = 10)]
    pub num_classes: usize,
    /// Token width (the paper's D).
    #[config(default = 192)]
    pub embed_dim: usize,
    /// Number of transformer blocks.
    #[config(default = 6)]
    pub depth: usize,
    #[config(default = 3)]
    pub num_heads: usize,
    /// Hidden width of each MLP as a multiple of `embed_dim`.
    #[config(default = 2.0)]
    pub mlp_ratio: f64,
    #[config(default = true)]
    pub qkv_bias: bool,
    #[config(default = "Pooling::Token")]
    pub pooling: Pooling,
    /// Dropout after the patch embedding + position embedding, and inside MLPs and projections.
    #[config(default = 0.0)]
    pub drop_rate: f64,
    /// Dropout on the attention probabilities.
    #[config(default = 0.0)]
    pub attn_drop_rate: f64,
    /// Stochastic depth: the drop probability of the last block; earlier blocks get a linear ramp.
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// LayerNorm epsilon. timm uses 1e-6 (burn's default is 1e-5).
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
}

impl VitConfig {
    /// Checks that the numbers describe a buildable model, naming the first thing that does not.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(VitError::InvalidConfig(msg));
        if self.image_size == 0 || self.patch_size == 0 {
            return bad(format!(
                "image_size ({}) and patch_size ({}) must be positive",
                self.image_size, self.patch_size
            ));
        }
        if self.image_size > crate::preprocess::MAX_SIDE as usize {
            return bad(format!(
                "image_size {} is larger than the largest image Vitrine decodes ({})",
                self.image_size,
                crate::preprocess::MAX_SIDE
            ));
        }
        if !self.image_size.is_multiple_of(self.patch_size) {
            return bad(format!(
                "image_size {} is not divisible by patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        // Preprocessing makes every image 8-bit RGB (grayscale is converted, alpha composited),
        // so a model of any other channel count could be loaded but never run.
        if self.in_chans != 3 {
            return bad(format!(
                "in_chans is {}, but Vitrine feeds every model 3-channel RGB images; only in_chans = 3 is supported",
                self.in_chans
            ));
        }
        if self.num_classes == 0 || self.depth == 0 {
            return bad(format!(
                "num_classes ({}) and depth ({}) must be positive",
                self.num_classes, self.depth
            ));
        }
        if self.num_heads == 0 || self.embed_dim == 0 {
            return bad("embed_dim and num_heads must be positive".into());
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!(
                "embed_dim {} is not divisible by num_heads {}",
                self.embed_dim, self.num_heads
            ));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) || self.mlp_hidden() == 0 {
            return bad(format!("mlp_ratio {} must be positive", self.mlp_ratio));
        }
        for (name, p) in [
            ("drop_rate", self.drop_rate),
            ("attn_drop_rate", self.attn_drop_rate),
            ("drop_path_rate", self.drop_path_rate),
        ] {
            if !(0.0..1.0).contains(&p) {
                return bad(format!("{name} {p} must be in [0, 1)"));
            }
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps > 0.0) {
            return bad(format!(
                "layer_norm_eps {} must be positive",
                self.layer_norm_eps
            ));
        }
        if self.num_params() == usize::MAX {
            return bad("the config describes more parameters than this machine can count".into());
        }
        Ok(())
    }

    /// Patches along one side.
    pub fn grid_size(&self) -> usize {
        self.image_size / self.patch_size
    }

    pub fn num_patches(&self) -> usize {
        self.grid_size() * self.grid_size()
    }

    /// Sequence length: the class token followed by every patch.
    pub fn num_tokens(&self) -> usize {
        1 + self.num_patches()
    }

    pub fn head_dim(&self) -> usize {
        self.embed_dim / self.num_heads
    }

    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio).round() as usize
    }

    /// Parameters of the model this config builds, computed without building it. Saturates at
    /// `usize::MAX` rather than overflowing, since a manifest's config may be absurd.
    pub fn num_params(&self) -> usize {
        let n = |v: usize| Saturating(v);
        let d = n(self.embed_dim);
        let h = n(self.mlp_hidden());
        let tokens_count = n(self.grid_size()) * n(self.grid_size()) + n(1);
        let patch = n(self.in_chans) * n(self.patch_size) * n(self.patch_size) * d + d;
        let tokens = d + tokens_count * d;
        let qkv_bias = if self.qkv_bias { n(3) * d } else { n(0) };
        let block = n(4) * d + (d * n(3) * d + qkv_bias) + (d * d + d) + (d * h + h) + (h * d + d);
        let classes = n(self.num_classes);
        (patch + tokens + n(self.depth) * block + n(2) * d + d * classes + classes).0
    }

    /// Floating-point operations of one image's forward pass, counting a multiply-add as two and
    /// only the matrix products (the linear layers and attention's two products per head); the
    /// element-wise work (LayerNorm, GELU, softmax, residual adds) adds under 2% at these sizes.
    /// A training step costs about three times this per image: the backward pass computes two
    /// products for every one of the forward (Kaplan et al. 2020's `6N` per token).
    pub fn forward_flops(&self) -> f64 {
        let (d, h) = (self.embed_dim as f64, self.mlp_hidden() as f64);
        let (t, p) = (self.num_tokens() as f64, self.num_patches() as f64);
        let patch_in = (self.in_chans * self.patch_size * self.patch_size) as f64;
        let patch_embed = 2.0 * p * patch_in * d;
        // qkv, proj, fc1, fc2; then q·kᵀ and probabilities·v over all heads together.
        let linear = 2.0 * t * (3.0 * d * d + d * d + 2.0 * d * h);
        let attention = 2.0 * 2.0 * t * t * d;
        let head = 2.0 * d * self.num_classes as f64;
        patch_embed + self.depth as f64 * (linear + attention) + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        let c = VitConfig::new();
        c.validate().unwrap();
        assert_eq!(c.num_tokens(), 65);
        assert_eq!(c.head_dim(), 64);
    }

    #[test]
    fn invalid_configs_say_what_is_wrong() {
        let e = VitConfig::new().with_patch_size(5).validate().unwrap_err();
        assert!(
            e.to_string().contains("not divisible by patch_size 5"),
            "{e}"
        );
        let e = VitConfig::new().with_num_heads(5).validate().unwrap_err();
        assert!(e.to_string().contains("num_heads 5"), "{e}");
        let e = VitConfig::new()
            .with_drop_path_rate(1.0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("drop_path_rate"), "{e}");
    }

    #[test]
    fn num_params_is_burns_own_count() {
        use burn::module::Module;
        use burn::prelude::Device;
        for c in [
            VitConfig::new().with_image_size(8).with_depth(2),
            VitConfig::new()
                .with_image_size(12)
                .with_patch_size(3)
                .with_embed_dim(12)
                .with_num_heads(4)
                .with_depth(1)
                .with_mlp_ratio(3.0)
                .with_qkv_bias(false)
                .with_pooling(Pooling::Mean)
                .with_num_classes(7),
        ] {
            let model = c.init(&Device::flex()).unwrap();
            assert_eq!(c.num_params(), model.num_params(), "{c:?}");
        }
    }

    #[test]
    fn forward_flops_count_every_product_once() {
        // One block of 2 tokens (a class token and one 2x2 patch), dim 4, MLP 8, 3 classes:
        // patch 2*1*12*4, qkv 2*2*4*12, proj 2*2*4*4, fc1 and fc2 2*2*4*8 each, q·kᵀ and p·v
        // 2*2*2*4 each, head 2*4*3.
        let c = VitConfig::new()
            .with_image_size(2)
            .with_patch_size(2)
            .with_embed_dim(4)
            .with_num_heads(2)
            .with_depth(1)
            .with_num_classes(3);
        let expected = 96 + 192 + 64 + 2 * 128 + 2 * 32 + 24;
        assert_eq!(c.forward_flops(), expected as f64);
        let deeper = c.clone().with_depth(3);
        assert_eq!(
            deeper.forward_flops() - c.forward_flops(),
            2.0 * (192 + 64 + 256 + 64) as f64
        );
    }

    #[test]
    fn absurd_sizes_are_refused_not_overflowed() {
        let e = VitConfig::new()
            .with_image_size(1 << 20)
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid model config: image_size 1048576 is larger than the largest image Vitrine decodes (16384)"
        );
        let huge = VitConfig::new()
            .with_embed_dim(1 << 40)
            .with_num_heads(1)
            .with_depth(1 << 30);
        assert_eq!(huge.num_params(), usize::MAX);
        assert!(
            huge.validate()
                .unwrap_err()
                .to_string()
                .contains("more parameters")
        );
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = VitConfig::new().with_pooling(Pooling::Mean).with_depth(2);
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"pooling\":\"mean\""), "{json}");
        let back: VitConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
