//! The one place a ViT's shape and regularisation are described.
//!
//! Field names follow timm's `VisionTransformer` arguments so a config reads the same on both
//! sides of a weight exchange.

use std::num::Saturating;

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::error::{Result, VitError};
use crate::prefix::PrefixTokens;

/// How the token sequence is reduced to one vector for the classifier head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Use the class token, as in the paper (timm's `global_pool='token'`).
    #[default]
    Token,
    /// Average the patch tokens (timm's `global_pool='avg'`), never the prefix tokens.
    Mean,
}

/// The MLP's activation (timm's `act_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// The exact, erf-based GELU (`nn.GELU`).
    #[default]
    Gelu,
    /// OpenAI CLIP's `x * sigmoid(1.702 x)` (timm's `quick_gelu`).
    QuickGelu,
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
    /// LayerNorm epsilon. timm uses 1e-6 (burn's default is 1e-5); its CLIP models 1e-5.
    #[config(default = 1e-6)]
    pub layer_norm_eps: f64,
    // The fields below came with timm's other ViTs. Each is optional so that a manifest written
    // before them still reads, and `None` means the model Vitrine built then: one class token
    // covered by the position embeddings, no layer scale, no norm before the blocks, GELU.
    // [`VitConfig::prefix_tokens`] is what the rest of the code asks about the prefix tokens.
    /// Whether there is a class token (timm's `class_token`); `None`: there is.
    pub class_token: Option<bool>,
    /// A distillation token after the class token, read by a second head `head_dist` (timm's
    /// distilled DeiT); `None`: none.
    pub distilled: Option<bool>,
    /// Register tokens after the class (and distillation) token (timm's `reg_tokens`).
    pub reg_tokens: Option<usize>,
    /// The position embeddings cover the patches only (timm's `no_embed_class`).
    pub no_embed_class: Option<bool>,
    /// Layer scale: each block's two branches scaled by learned vectors `ls1` and `ls2` that
    /// start at this value (timm's `init_values`); `None`: no layer scale.
    pub init_values: Option<f64>,
    /// A LayerNorm between the embeddings and the blocks, `norm_pre` (timm's `pre_norm`, as in
    /// CLIP); the patch embedding then has no bias, as timm builds it.
    pub pre_norm: Option<bool>,
    /// Whether the final norm comes after pooling (timm's `fc_norm`); `None`: timm's rule,
    /// after for mean pooling and before for the class token.
    pub fc_norm: Option<bool>,
    /// The MLP's activation (timm's `act_layer`); `None`: GELU.
    pub act_layer: Option<Activation>,
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
        if self.depth == 0 {
            return bad("depth must be positive".into());
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
        let prefix = self.prefix_tokens();
        if self.pooling == Pooling::Token && !prefix.class {
            return bad("class-token pooling needs a class token (class_token is false)".into());
        }
        if prefix.distillation && (!prefix.class || self.pooling != Pooling::Token) {
            return bad(
                "a distilled model's two heads read its class and distillation tokens: it needs \
                 a class token and class-token pooling"
                    .into(),
            );
        }
        if let Some(v) = self.init_values
            && !v.is_finite()
        {
            return bad(format!("init_values {v} must be a finite number"));
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

    /// The tokens in front of the patches: the one place that says which there are.
    pub fn prefix_tokens(&self) -> PrefixTokens {
        PrefixTokens {
            class: self.class_token.unwrap_or(true),
            distillation: self.distilled.unwrap_or(false),
            registers: self.reg_tokens.unwrap_or(0),
            embedded: !self.no_embed_class.unwrap_or(false),
        }
    }

    /// Sequence length: the prefix tokens followed by every patch.
    pub fn num_tokens(&self) -> usize {
        self.prefix_tokens()
            .count()
            .saturating_add(self.num_patches())
    }

    /// Rows of `pos_embed`: the patches', after the prefix tokens' where it covers them.
    pub fn pos_embed_len(&self) -> usize {
        self.prefix_tokens()
            .with_positions()
            .saturating_add(self.num_patches())
    }

    /// Whether the final norm comes after pooling (timm's `fc_norm`, see [`Self::fc_norm`]).
    pub fn uses_fc_norm(&self) -> bool {
        self.fc_norm.unwrap_or(self.pooling == Pooling::Mean)
    }

    /// The MLP's activation.
    pub fn activation(&self) -> Activation {
        self.act_layer.unwrap_or_default()
    }

    /// Whether there is a `norm_pre` (and so no patch-embedding bias).
    pub fn has_norm_pre(&self) -> bool {
        self.pre_norm.unwrap_or(false)
    }

    /// Classifier heads: none without classes (a feature model, timm's `num_classes=0`), two
    /// for a distilled model (`head` and `head_dist`), else one.
    pub fn num_heads_out(&self) -> usize {
        if self.num_classes == 0 {
            0
        } else {
            1 + self.prefix_tokens().distillation as usize
        }
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
        let prefix = self.prefix_tokens();
        let positions = n(self.grid_size()) * n(self.grid_size()) + n(prefix.with_positions());
        let bias = if self.has_norm_pre() { n(0) } else { d };
        let patch = n(self.in_chans) * n(self.patch_size) * n(self.patch_size) * d + bias;
        let tokens = n(prefix.count()) * d + positions * d;
        let norm_pre = if self.has_norm_pre() { n(2) * d } else { n(0) };
        let qkv_bias = if self.qkv_bias { n(3) * d } else { n(0) };
        let layer_scale = if self.init_values.is_some() {
            n(2) * d
        } else {
            n(0)
        };
        let block = n(4) * d
            + (d * n(3) * d + qkv_bias)
            + (d * d + d)
            + (d * h + h)
            + (h * d + d)
            + layer_scale;
        let classes = n(self.num_classes);
        let heads = n(self.num_heads_out()) * (d * classes + classes);
        (patch + tokens + norm_pre + n(self.depth) * block + n(2) * d + heads).0
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
        let head = 2.0 * d * self.num_classes as f64 * self.num_heads_out() as f64;
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
            // Every prefix token, layer scale, norm_pre (no patch bias), two heads.
            VitConfig::new()
                .with_image_size(8)
                .with_depth(2)
                .with_distilled(Some(true))
                .with_reg_tokens(Some(3))
                .with_no_embed_class(Some(true))
                .with_init_values(Some(1e-5))
                .with_pre_norm(Some(true)),
            // No class token, no classifier.
            VitConfig::new()
                .with_image_size(8)
                .with_depth(1)
                .with_class_token(Some(false))
                .with_pooling(Pooling::Mean)
                .with_fc_norm(Some(false))
                .with_num_classes(0),
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
        // A manifest's absurd number of registers is refused, not overflowed.
        let registers = VitConfig::new().with_reg_tokens(Some(usize::MAX));
        assert_eq!(registers.num_tokens(), usize::MAX);
        assert!(
            registers
                .validate()
                .unwrap_err()
                .to_string()
                .contains("more parameters")
        );
    }

    #[test]
    fn prefix_tokens_and_pooling_must_agree() {
        let no_class = VitConfig::new().with_class_token(Some(false));
        let e = no_class.validate().unwrap_err().to_string();
        assert!(e.contains("class-token pooling needs a class token"), "{e}");
        no_class.with_pooling(Pooling::Mean).validate().unwrap();
        let e = VitConfig::new()
            .with_distilled(Some(true))
            .with_pooling(Pooling::Mean)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("distilled"), "{e}");
        let c = VitConfig::new()
            .with_reg_tokens(Some(4))
            .with_no_embed_class(Some(true));
        assert_eq!((c.num_tokens(), c.pos_embed_len()), (69, 64));
        assert_eq!(VitConfig::new().with_num_classes(0).num_heads_out(), 0);
    }

    /// A manifest's config written before the prefix-token fields existed reads as the model
    /// it described: one class token with a position, GELU, no layer scale.
    #[test]
    fn configs_without_the_new_fields_mean_todays_model() {
        let old = r#"{"image_size":32,"patch_size":4,"in_chans":3,"num_classes":10,
            "embed_dim":192,"depth":6,"num_heads":3,"mlp_ratio":2.0,"qkv_bias":true,
            "pooling":"mean","drop_rate":0.0,"attn_drop_rate":0.0,"drop_path_rate":0.1,
            "layer_norm_eps":1e-6}"#;
        let c: VitConfig = serde_json::from_str(old).unwrap();
        assert_eq!(c.prefix_tokens(), PrefixTokens::CLASS);
        assert_eq!(c.num_tokens(), 65);
        assert!(c.uses_fc_norm());
        assert_eq!(c.activation(), Activation::Gelu);
        assert_eq!(
            c,
            VitConfig::new()
                .with_pooling(Pooling::Mean)
                .with_depth(6)
                .with_drop_path_rate(0.1)
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
