//! Transfer learning: a trained model taken to new classes and another image size.
//!
//! - [`transfer_config`]: the base config with the new class count and image size.
//! - [`VisionTransformer::with_new_head`]: a fresh classifier for the new classes (two for a
//!   distilled model); the prefix tokens stay what they were.
//! - [`VisionTransformer::resized`]: `pos_embed` resampled for the new patch grid
//!   ([`crate::pos_embed`]), the prefix tokens' rows kept.
//! - [`VisionTransformer::train_only`]: which parameters learn ([`Trainable`]); the others stop
//!   requiring gradients, so autodiff does not even record the frozen part's backward.
//! - [`layer_id`] and [`layer_decay`]: BEiT's layer-wise learning-rate decay, as timm's
//!   `param_groups_layer_decay` applies it to a ViT.

use burn::module::{Module, Param};
use burn::nn::{Initializer, LinearConfig};
use serde::{Deserialize, Serialize};

use crate::config::VitConfig;
use crate::error::Result;
use crate::model::VisionTransformer;
use crate::pos_embed::{Resample, resample_abs_pos_embed};
use crate::prefix::PrefixKind;

/// Which parameters learn during fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trainable {
    /// The new head alone (a linear probe on the frozen features).
    Head,
    /// The last N blocks, the final norm and the head.
    LastBlocks(usize),
    /// Every parameter.
    All,
}

/// The base config for `num_classes` classes at `image_size` pixels; refused (with the reason)
/// when the size does not fit the patch size.
pub fn transfer_config(
    base: &VitConfig,
    num_classes: usize,
    image_size: usize,
) -> Result<VitConfig> {
    let config = base
        .clone()
        .with_num_classes(num_classes)
        .with_image_size(image_size);
    config.validate()?;
    Ok(config)
}

impl VisionTransformer {
    /// The model with a new head for `num_classes` classes, started as timm starts one:
    /// N(0, 0.02²) weights and zero biases; a distilled model gets a new `head_dist` too (as
    /// timm's `reset_classifier`), and keeps averaging the two.
    pub fn with_new_head(mut self, num_classes: usize) -> Self {
        let weight = self.pos_embed.val(); // [1, rows, D]
        let (device, dim) = (weight.device(), weight.dims()[2]);
        let head = || {
            let mut head = LinearConfig::new(dim, num_classes)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: 0.02,
                })
                .init(&device);
            // A fresh trainable parameter, not `Param::map` (which would keep "no gradient").
            head.bias = head.bias.map(|b| Param::from_tensor(b.val().zeros_like()));
            head
        };
        let some = num_classes > 0;
        self.head = some.then(head);
        self.head_dist = (some && self.prefix.distillation).then(head);
        self
    }

    /// The model for images of `config.image_size` (whose patch size it must share): the patch
    /// embedding applies to any grid, so only `pos_embed` changes, resampled as timm does, its
    /// prefix tokens' rows (where it has them) kept.
    pub fn resized(mut self, from: &VitConfig, to: &VitConfig, mode: Resample) -> Result<Self> {
        let (old, new) = (from.grid_size(), to.grid_size());
        if old != new {
            let prefix = self.prefix.with_positions();
            let pos =
                resample_abs_pos_embed(self.pos_embed.val(), [old, old], [new, new], prefix, mode)?;
            self.pos_embed = Param::from_tensor(pos);
        }
        Ok(self)
    }

    /// Freezes every parameter that `which` leaves out. The embeddings (patch embedding, prefix
    /// tokens, positions, `norm_pre`) learn only with [`Trainable::All`]; the final norm learns
    /// unless only the heads do.
    pub fn train_only(mut self, which: Trainable) -> Self {
        let depth = self.blocks.len();
        let learning_blocks = match which {
            Trainable::Head => 0,
            Trainable::LastBlocks(n) => n.min(depth),
            Trainable::All => depth,
        };
        if which != Trainable::All {
            self.patch_embed = self.patch_embed.no_grad();
            for kind in PrefixKind::ALL {
                let tokens = self.prefix_param_mut(kind);
                *tokens = tokens.take().map(|t| t.set_require_grad(false));
            }
            self.pos_embed = self.pos_embed.set_require_grad(false);
            self.norm_pre = self.norm_pre.map(Module::no_grad);
        }
        self.blocks = self
            .blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| {
                if i + learning_blocks < depth {
                    b.no_grad()
                } else {
                    b
                }
            })
            .collect();
        if which == Trainable::Head {
            self.norm = self.norm.no_grad();
        }
        self
    }
}

/// The parameters before the first block (timm's `stem` group): the patch embedding, every
/// kind of prefix token, the positions and `norm_pre`.
pub fn stem_params() -> Vec<&'static str> {
    let mut stem = vec!["patch_embed"];
    stem.extend(PrefixKind::ALL.map(PrefixKind::param));
    stem.extend(["pos_embed", "norm_pre"]);
    stem
}

/// BEiT's layer of a parameter, by its path (`blocks.3.attn.qkv.weight`): 0 for the stem
/// ([`stem_params`]), `i + 1` for block `i`, `depth + 1` for the rest (the final norm and the
/// heads), as timm's `param_groups_layer_decay` groups a ViT.
pub fn layer_id(path: &str, depth: usize) -> usize {
    let first = path.split('.').next().unwrap_or(path);
    if stem_params().contains(&first) {
        return 0;
    }
    match first {
        "blocks" => path
            .split('.')
            .nth(1)
            .and_then(|i| i.parse::<usize>().ok())
            .map_or(depth + 1, |i| i + 1),
        _ => depth + 1,
    }
}

/// The learning-rate multiplier of layer `layer`: `decay^(depth + 1 - layer)`, so the head
/// learns at the full rate and each layer below at `decay` times the one above.
pub fn layer_decay(layer: usize, depth: usize, decay: f64) -> f64 {
    decay.powi((depth + 1).saturating_sub(layer) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    #[test]
    fn layers_are_numbered_as_beit_numbers_them() {
        let depth = 6;
        for (path, id) in [
            ("patch_embed.proj.weight", 0),
            ("cls_token", 0),
            ("reg_token", 0),
            ("dist_token", 0),
            ("norm_pre.gamma", 0),
            ("pos_embed", 0),
            ("blocks.0.norm1.gamma", 1),
            ("blocks.5.mlp.fc2.bias", 6),
            ("norm.gamma", 7),
            ("head.weight", 7),
            ("head_dist.bias", 7),
        ] {
            assert_eq!(layer_id(path, depth), id, "{path}");
        }
        assert_eq!(layer_decay(7, depth, 0.5), 1.0);
        assert_eq!(layer_decay(6, depth, 0.5), 0.5);
        assert_eq!(layer_decay(0, depth, 0.5), 0.5f64.powi(7));
    }

    #[test]
    fn sizes_that_do_not_fit_the_patches_are_refused() {
        let base = VitConfig::new().with_image_size(48).with_patch_size(4);
        let c = transfer_config(&base, 3, 64).unwrap();
        assert_eq!((c.num_classes, c.grid_size()), (3, 16));
        let e = transfer_config(&base, 3, 50).unwrap_err();
        assert!(
            e.to_string().contains("not divisible by patch_size 4"),
            "{e}"
        );
    }

    /// Which parameters still require a gradient, by path.
    fn learning(model: &VisionTransformer) -> Vec<String> {
        struct Collect(Vec<String>, Vec<String>);
        impl burn::module::ModuleVisitor for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.1.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.1.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if param.val().is_require_grad() {
                    self.0.push(self.1.join("."));
                }
            }
        }
        let mut c = Collect(Vec::new(), Vec::new());
        model.visit(&mut c);
        c.0
    }

    #[test]
    fn freezing_leaves_the_chosen_parameters_learning() {
        let device = Device::flex().autodiff();
        let config = VitConfig::new()
            .with_image_size(8)
            .with_embed_dim(8)
            .with_num_heads(2)
            .with_depth(3);
        let model = || config.init(&device).unwrap().with_new_head(4);
        let all = learning(&model().train_only(Trainable::All));
        assert!(all.contains(&"pos_embed".to_string()), "{all:?}");
        assert_eq!(
            learning(&model().train_only(Trainable::Head)),
            ["head.weight", "head.bias"]
        );
        let last = learning(&model().train_only(Trainable::LastBlocks(1)));
        assert!(
            last.iter().all(|p| p.starts_with("blocks.2.")
                || p.starts_with("norm.")
                || p.starts_with("head.")),
            "{last:?}"
        );
        assert!(
            last.contains(&"blocks.2.attn.qkv.weight".to_string()),
            "{last:?}"
        );
        assert_eq!(model().num_classes(), 4);
    }

    /// Fine-tuning keeps the base's prefix tokens: registers and a distillation token stay,
    /// frozen with the embeddings; a distilled model gets both heads anew; `pos_embed` keeps
    /// no row for the prefix tokens when it had none, and the patches' rows are resampled.
    #[test]
    fn the_prefix_tokens_outlive_a_new_head_and_size() {
        let device = Device::flex().autodiff();
        let base = VitConfig::new()
            .with_image_size(8)
            .with_embed_dim(8)
            .with_num_heads(2)
            .with_depth(2)
            .with_distilled(Some(true))
            .with_reg_tokens(Some(2))
            .with_no_embed_class(Some(true));
        let model = base.init(&device).unwrap();
        let values = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
        let registers = values(model.reg_token.as_ref().unwrap().val());
        let to = transfer_config(&base, 3, 12).unwrap();
        let tuned = model
            .with_new_head(3)
            .resized(&base, &to, Resample::BicubicAntialias)
            .unwrap();
        assert_eq!(tuned.prefix, to.prefix_tokens());
        assert_eq!(
            tuned.pos_embed.dims(),
            [1, 9, 8],
            "3x3 patches, no prefix rows"
        );
        assert_eq!(tuned.num_tokens(), 4 + 9);
        assert_eq!(values(tuned.reg_token.as_ref().unwrap().val()), registers);
        assert_eq!(tuned.head_dist.as_ref().unwrap().weight.dims(), [8, 3]);
        let x = Tensor::<4>::zeros([1, 3, 12, 12], &device);
        assert_eq!(tuned.forward(x).dims(), [1, 3]);
        let last = learning(&tuned.train_only(Trainable::LastBlocks(1)));
        assert!(
            !last.iter().any(|p| p.contains("token")),
            "the prefix tokens are frozen with the embeddings: {last:?}"
        );
        assert!(last.contains(&"head_dist.weight".to_string()), "{last:?}");
    }
}
