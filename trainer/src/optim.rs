//! The optimizer every run uses: AdamW with timm's parameter groups (no weight decay for
//! biases, norms, layer scales, the prefix tokens and the position embeddings), and gradient
//! clipping by the global norm, as PyTorch's `clip_grad_norm_` does.

use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use vit::{PrefixKind, VisionTransformer};

use crate::recipe::Recipe;

/// AdamW with weight decay off, as in timm, for the one-dimensional parameters (biases, norms'
/// and layer scales' `gamma` and `beta`) and its `no_weight_decay()` set: `pos_embed` and
/// every kind of prefix token.
pub(crate) fn optimizer(recipe: &Recipe) -> Result<ModuleOptimizer> {
    let adamw = AdamWConfig::new()
        .with_beta_1(recipe.beta1 as f32)
        .with_beta_2(recipe.beta2 as f32)
        .with_epsilon(recipe.eps as f32)
        .with_weight_decay(recipe.weight_decay as f32);
    let mut embeddings = vec!["pos_embed"];
    embeddings.extend(PrefixKind::ALL.map(PrefixKind::param));
    let pattern = format!(r"(\.bias$|\.gamma$|\.beta$|^({})$)", embeddings.join("|"));
    let no_decay = ParamGroup::from_regex(&pattern).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(adamw
        .init()
        .with_group(no_decay, adamw.clone().with_weight_decay(0.0).build(), None))
}

/// Scales all gradients together so their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`); burn's own clipping works per tensor.
pub(crate) fn clip_global_norm(
    model: &VisionTransformer,
    grads: &mut GradientsParams,
    max_norm: f64,
) {
    struct SumSquares<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
    }
    impl ModuleVisitor for SumSquares<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g * self.factor);
            }
        }
    }
    let mut sum = SumSquares { grads, total: None };
    model.visit(&mut sum);
    let Some(total) = sum.total else { return };
    let norm = (total.into_scalar::<f32>() as f64).sqrt();
    if norm > max_norm {
        model.visit(&mut Scale {
            grads,
            factor: max_norm / (norm + 1e-6),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vit::VitConfig;

    /// 4-wide embeddings, 4 patches, one block of one head.
    fn tiny() -> VitConfig {
        VitConfig::new()
            .with_image_size(8)
            .with_patch_size(4)
            .with_embed_dim(4)
            .with_depth(1)
            .with_num_heads(1)
    }

    /// A model with 4-wide embeddings, 4 patches and 6 classes, and gradients for three of its
    /// parameters whose squares sum to 36 by hand: the class token [1, 2, 2, 4] (1 + 4 + 4 + 16
    /// = 25), the position embedding's 5 x 4 entries at 0.5 (20 x 0.25 = 5) and the head's 6
    /// biases at 1 (6). The global norm is 6; the other parameters have no gradient.
    fn model_and_grads() -> (VisionTransformer, GradientsParams) {
        let device = Device::flex();
        let model = tiny().with_num_classes(6).init(&device).unwrap();
        let mut grads = GradientsParams::new();
        grads.register(
            model.cls_token.as_ref().expect("a class token").id,
            Tensor::<1>::from_floats([1.0, 2.0, 2.0, 4.0], &device).reshape([1, 1, 4]),
        );
        grads.register(
            model.pos_embed.id,
            Tensor::<3>::full([1, 5, 4], 0.5, &device),
        );
        let head = model.head.as_ref().expect("a classifier");
        let bias = head.bias.as_ref().expect("the head has a bias");
        grads.register(bias.id, Tensor::<1>::ones([6], &device));
        (model, grads)
    }

    fn values(model: &VisionTransformer, grads: &GradientsParams) -> Vec<Vec<f32>> {
        let bias = model.head.as_ref().unwrap().bias.as_ref().unwrap();
        let read = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
        vec![
            read(
                grads
                    .get::<3>(model.cls_token.as_ref().unwrap().id)
                    .unwrap()
                    .flatten(0, 2),
            ),
            read(grads.get::<3>(model.pos_embed.id).unwrap().flatten(0, 2)),
            read(grads.get::<1>(bias.id).unwrap()),
        ]
    }

    #[test]
    fn clip_global_norm_scales_all_gradients_together_by_the_hand_computed_norm() {
        let (model, grads) = model_and_grads();
        let before = values(&model, &grads);
        // At or above the norm: nothing changes, not even by rounding.
        for max_norm in [6.0, 10.0] {
            let (model, mut grads) = model_and_grads();
            clip_global_norm(&model, &mut grads, max_norm);
            assert_eq!(values(&model, &grads), before, "max_norm {max_norm}");
        }
        // Below it: every gradient is scaled by 3 / 6, so the new global norm is 3.
        let (model, mut grads) = model_and_grads();
        clip_global_norm(&model, &mut grads, 3.0);
        let after = values(&model, &grads);
        for (a, b) in after.iter().flatten().zip(before.iter().flatten()) {
            assert!((a - b * 0.5).abs() < 1e-6, "{a} vs {b} / 2");
        }
        let norm = after.iter().flatten().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 3.0).abs() < 1e-5, "{norm}");
    }

    /// With zero gradients a step moves a parameter by weight decay alone: the prefix tokens,
    /// `pos_embed` and the layer scales stay where they are (timm's `no_weight_decay` and its
    /// one-dimensional parameters), the weights of a linear layer shrink.
    #[test]
    fn neither_the_prefix_tokens_nor_the_positions_decay() {
        let device = Device::flex().autodiff();
        let model = tiny()
            .with_num_classes(3)
            .with_distilled(Some(true))
            .with_reg_tokens(Some(2))
            .with_init_values(Some(0.5))
            .init(&device)
            .unwrap();
        let mut recipe = crate::recipe::Preset::Finetune.recipe(3);
        recipe.weight_decay = 0.5;
        let x = Tensor::<4>::ones([1, 3, 8, 8], &device);
        let loss = model.forward(x).sum() * 0.0;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let read = |m: &VisionTransformer| -> Vec<(&'static str, Vec<f32>)> {
            let v = |t: Tensor<3>| t.into_data().try_into_vec_as::<f32>().unwrap();
            let b = &m.blocks[0];
            vec![
                ("cls_token", v(m.cls_token.as_ref().unwrap().val())),
                ("dist_token", v(m.dist_token.as_ref().unwrap().val())),
                ("reg_token", v(m.reg_token.as_ref().unwrap().val())),
                ("pos_embed", v(m.pos_embed.val())),
                ("ls1", v(b.ls1.as_ref().unwrap().gamma.val().unsqueeze())),
                ("qkv", v(b.attn.qkv.weight.val().unsqueeze())),
            ]
        };
        let before = read(&model);
        let after = read(&optimizer(&recipe).unwrap().step(0.1, model, grads));
        for ((name, a), (_, b)) in before.iter().zip(&after) {
            let decayed = name == &"qkv";
            for (a, b) in a.iter().zip(b) {
                assert!(b.is_finite(), "{name}");
                if decayed {
                    assert!(
                        (b - a * (1.0 - 0.1 * 0.5)).abs() < 1e-6,
                        "{name}: {a} -> {b}"
                    );
                } else {
                    assert_eq!(a, b, "{name}");
                }
            }
        }
    }
}
