//! The Vision Transformer of Dosovitskiy et al. (2020), laid out as timm's `VisionTransformer`
//! so that parameter paths (`blocks.3.attn.qkv.weight`, ...) match timm's state dict.
//!
//! Shapes use: B batch, C channels, H/W image side, G patch-grid side, N = G*G patches,
//! P prefix tokens ([`crate::prefix`]: class, distillation, registers), T = P + N tokens,
//! D embed dim, h heads, d = D / h head dim, K the tokens the heads read (1, or 2 for a
//! distilled model).
//!
//! One job, the network from patch embedding to head, kept in one file as timm keeps
//! `vision_transformer.py` (and `deit.py`'s distilled head): its forward, its attention-maps
//! forward and their config read top to bottom. [`crate::init`] has other starting points.

use burn::module::{Module, Param};
use burn::nn::LinearConfig;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Gelu, Initializer, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::config::{Activation, Pooling, VitConfig};
use crate::error::Result;
use crate::kernels;
use crate::prefix::{PrefixKind, PrefixTokens};

/// timm initialises linear weights and `pos_embed` from N(0, 0.02²); the prefix tokens start
/// there too.
pub(crate) const INIT_STD: f64 = 0.02;

fn linear(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out)
        .with_bias(bias)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: INIT_STD,
        })
        .init(device);
    // timm starts biases at zero; burn's initializer would draw them from the same normal.
    // A fresh trainable parameter: `Param::map` would keep the new tensor's "no gradient" flag,
    // and the biases would silently stay frozen at zero.
    layer.bias = layer.bias.map(|b| Param::from_tensor(b.val().zeros_like()));
    layer
}

/// Cuts the image into non-overlapping patches and projects each to a token:
/// a convolution whose kernel and stride are the patch size.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
}

impl PatchEmbed {
    /// `[B, C, H, W]` -> `[B, N, D]`, patches in row-major (token) order.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<3> {
        let x = self.proj.forward(images); // [B, D, G, G]
        let [b, d, gh, gw] = x.dims();
        x.reshape([b, d, gh * gw]).swap_dims(1, 2) // [B, N, D]
    }
}

/// Multi-head self-attention with a fused `qkv` projection, as in timm.
#[derive(Module, Debug)]
pub struct Attention {
    pub qkv: Linear,
    pub proj: Linear,
    pub attn_drop: Dropout,
    pub proj_drop: Dropout,
    #[module(skip)]
    pub num_heads: usize,
}

impl Attention {
    /// `[B, T, 3D]`, the `qkv` projection, -> three `[B, h, T, d]` tensors.
    pub(crate) fn split_heads(qkv: Tensor<3>, h: usize) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
        let [b, t, three_d] = qkv.dims();
        let d = three_d / 3 / h;
        let qkv = qkv.reshape([b, t, 3, h, d]).permute([2, 0, 3, 1, 4]); // [3, B, h, T, d]
        let mut parts = qkv.chunk(3, 0).into_iter().map(|p| p.reshape([b, h, t, d]));
        let (q, k, v) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        (q, k, v)
    }

    /// `[B, h, T, d]` -> `[B, T, D]`.
    pub(crate) fn merge_heads(x: Tensor<4>) -> Tensor<3> {
        let [b, h, t, d] = x.dims();
        x.swap_dims(1, 2).reshape([b, t, h * d])
    }

    /// The heads' outputs `[B, T, D]` -> the block's attention output.
    fn project(&self, heads: Tensor<3>) -> Tensor<3> {
        self.proj_drop
            .forward(kernels::linear_or(heads, &self.proj))
    }

    /// Attention dropout exists only in the explicit path: the fused kernel has none.
    fn attn_dropout_active(&self, x: &Tensor<3>) -> bool {
        self.attn_drop.prob > 0.0
            && self.attn_drop.training.is_enabled()
            && x.device().is_autodiff()
    }

    /// The fast path: a fused attention kernel, no probabilities kept. On the CPU in f32 that
    /// is ours ([`crate::kernels`]), in training too, elsewhere burn's.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if self.attn_dropout_active(&x) {
            return self.forward_with_attention(x).0;
        }
        let heads =
            kernels::attention_or(kernels::linear_or(x, &self.qkv), self.num_heads, |qkv| {
                let (q, k, v) = Self::split_heads(qkv, self.num_heads);
                Self::merge_heads(attention(
                    q,
                    k,
                    v,
                    None,
                    None,
                    AttentionModuleOptions::default(),
                ))
            });
        self.project(heads)
    }

    /// The explicit path: also returns the attention probabilities `[B, h, T, T]`; through our
    /// kernel only at inference, since under autodiff the probabilities need a gradient.
    pub fn forward_with_attention(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        let qkv = kernels::linear_or(x, &self.qkv);
        let (heads, probs) =
            kernels::attention_with_probs_or(qkv, self.num_heads, |qkv| self.explicit(qkv, None));
        (self.project(heads), probs)
    }

    /// As [`Self::forward_with_attention`], with `probe` `[B, h, T, T]` added to the
    /// probabilities before they weigh the values. burn keeps gradients only for leaves, so a
    /// zero leaf that requires its gradient gets exactly the gradient with respect to the
    /// probabilities (Chefer et al.'s relevance needs it). The attention is always burn's own
    /// ops; the projections may be the CPU kernel.
    pub fn forward_probed(&self, x: Tensor<3>, probe: Tensor<4>) -> (Tensor<3>, Tensor<4>) {
        let (heads, probs) = self.explicit(kernels::linear_or(x, &self.qkv), Some(probe));
        (self.project(heads), probs)
    }

    /// `[B, T, 3D]` -> the heads' outputs `[B, T, D]` and the probabilities `[B, h, T, T]`.
    fn explicit(&self, qkv: Tensor<3>, probe: Option<Tensor<4>>) -> (Tensor<3>, Tensor<4>) {
        let (q, k, v) = Self::split_heads(qkv, self.num_heads);
        let scale = (q.dims()[3] as f64).powf(-0.5);
        let scores = q.matmul(k.swap_dims(2, 3)) * scale; // [B, h, T, T]
        let mut probs = softmax(scores, 3);
        if let Some(probe) = probe {
            probs = probs + probe;
        }
        let out = self.attn_drop.forward(probs.clone()).matmul(v); // [B, h, T, d]
        (Self::merge_heads(out), probs)
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub act: Gelu,
    pub fc2: Linear,
    pub drop: Dropout,
    /// Which activation `act` stands for (timm's `act_layer`).
    #[module(skip)]
    pub activation: Activation,
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = kernels::linear_or(x, &self.fc1);
        let x = match self.activation {
            Activation::Gelu => kernels::gelu_or(x, |x| {
                let device = x.device();
                if device.is_autodiff() && device.inner() != Device::flex() {
                    exact_gelu(x)
                } else {
                    self.act.forward(x)
                }
            }),
            Activation::QuickGelu => quick_gelu(x),
        };
        self.drop
            .forward(kernels::linear_or(self.drop.forward(x), &self.fc2))
    }
}

/// GELU spelt out as `x Φ(x)` through `erf`, for autodiff on the GPU backends. burn 0.22.1's
/// default `gelu_backward`, which they inherit (Flex overrides it), is the derivative of GELU's
/// tanh approximation, not of the erf GELU their forward computes: GPU gradients came out up to
/// 1.3e-3 (relative) off Flex's. `erf`'s own backward is exact.
fn exact_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = (x.clone() * std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        .mul_scalar(0.5);
    x * cdf
}

/// OpenAI CLIP's activation, `x * sigmoid(1.702 x)` (timm's `QuickGELU`).
fn quick_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clone() * sigmoid(x.mul_scalar(1.702))
}

/// Layer scale (Touvron et al., "Going deeper with Image Transformers", 2021): a learned
/// factor per channel on a residual branch, timm's `LayerScale`.
#[derive(Module, Debug)]
pub struct LayerScale {
    /// `[D]`
    pub gamma: Param<Tensor<1>>,
}

impl LayerScale {
    /// `[B, T, D]` scaled channel by channel.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [d] = self.gamma.dims();
        x * self.gamma.val().reshape([1, 1, d])
    }
}

/// `x` through `ls`, where the block has layer scale.
fn scale(ls: &Option<LayerScale>, x: Tensor<3>) -> Tensor<3> {
    match ls {
        Some(ls) => ls.forward(x),
        None => x,
    }
}

/// Stochastic depth: during training, drops a whole residual branch per sample.
///
/// It reuses `Dropout` on a `[B, 1, 1]` tensor of ones, so it follows the same train/valid
/// switch as every other dropout in the model.
#[derive(Module, Debug)]
pub struct DropPath {
    pub drop: Dropout,
}

impl DropPath {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if self.drop.prob == 0.0 {
            return x;
        }
        let [b, _, _] = x.dims();
        let keep = self.drop.forward(Tensor::ones([b, 1, 1], &x.device()));
        x * keep
    }
}

/// A pre-norm transformer block: `x + ls1(attn(norm1(x)))`, then `x + ls2(mlp(norm2(x)))`,
/// the layer scales only where the model has them.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub ls1: Option<LayerScale>,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    pub ls2: Option<LayerScale>,
    pub drop_path: DropPath,
    /// Both norms' epsilon, which burn's `LayerNorm` keeps private and the CPU kernel needs.
    #[module(skip)]
    pub norm_eps: f64,
}

impl Block {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let a = self.attn.forward(self.norm(&self.norm1, x.clone()));
        self.mlp_residual(x + self.drop_path.forward(scale(&self.ls1, a)))
    }

    /// `x + ls2(mlp(norm2(x)))`, the block's second half.
    fn mlp_residual(&self, x: Tensor<3>) -> Tensor<3> {
        let m = self.mlp.forward(self.norm(&self.norm2, x.clone()));
        x + self.drop_path.forward(scale(&self.ls2, m))
    }

    /// `norm1` or `norm2`, through the CPU kernel where it applies.
    fn norm(&self, norm: &LayerNorm, x: Tensor<3>) -> Tensor<3> {
        kernels::layer_norm_or(x, norm, self.norm_eps)
    }

    pub fn forward_with_attention(&self, x: Tensor<3>) -> (Tensor<3>, Tensor<4>) {
        self.forward_attending(x, |attn, x| attn.forward_with_attention(x))
    }

    /// As [`Self::forward_with_attention`], through [`Attention::forward_probed`].
    pub fn forward_probed(&self, x: Tensor<3>, probe: Tensor<4>) -> (Tensor<3>, Tensor<4>) {
        self.forward_attending(x, |attn, x| attn.forward_probed(x, probe))
    }

    fn forward_attending(
        &self,
        x: Tensor<3>,
        attend: impl FnOnce(&Attention, Tensor<3>) -> (Tensor<3>, Tensor<4>),
    ) -> (Tensor<3>, Tensor<4>) {
        let (a, probs) = attend(&self.attn, self.norm(&self.norm1, x.clone()));
        let x = x + self.drop_path.forward(scale(&self.ls1, a));
        (self.mlp_residual(x), probs)
    }
}

#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub patch_embed: PatchEmbed,
    /// `[1, 1, D]`, where the model has a class token.
    pub cls_token: Option<Param<Tensor<3>>>,
    /// `[1, 1, D]`: a distilled DeiT's distillation token.
    pub dist_token: Option<Param<Tensor<3>>>,
    /// `[1, R, D]`: the register tokens.
    pub reg_token: Option<Param<Tensor<3>>>,
    /// `[1, P + N, D]`, learned: a row for every prefix token and every patch; `[1, N, D]`
    /// where the prefix tokens have no position (`no_embed_class`).
    pub pos_embed: Param<Tensor<3>>,
    pub pos_drop: Dropout,
    /// A LayerNorm before the blocks (CLIP's `pre_norm`).
    pub norm_pre: Option<LayerNorm>,
    pub blocks: Vec<Block>,
    /// The final norm, before pooling or after it (timm's `norm` or `fc_norm`, see
    /// [`Self::fc_norm`]); timm has one or the other, never both.
    pub norm: LayerNorm,
    /// The classifier; none in a feature model (timm's `num_classes=0`).
    pub head: Option<Linear>,
    /// A distilled model's second classifier, on the distillation token.
    pub head_dist: Option<Linear>,
    #[module(skip)]
    pub pooling: Pooling,
    /// Whether `norm` comes after pooling (timm's `fc_norm`).
    #[module(skip)]
    pub fc_norm: bool,
    /// The tokens in front of the patches, and whether `pos_embed` covers them.
    #[module(skip)]
    pub prefix: PrefixTokens,
    /// The final norm's epsilon (see [`Block::norm_eps`]).
    #[module(skip)]
    pub norm_eps: f64,
}

impl VitConfig {
    /// Builds a freshly initialised model; fails if the config does not validate.
    pub fn init(&self, device: &Device) -> Result<VisionTransformer> {
        self.validate()?;
        let d = self.embed_dim;
        let p = self.patch_size;
        let norm = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let dropout = |prob: f64| DropoutConfig::new(prob).init();
        let normal = |shape: [usize; 3]| {
            Param::from_tensor(Tensor::random(
                shape,
                burn::tensor::Distribution::Normal(0.0, INIT_STD),
                device,
            ))
        };
        let layer_scale = || {
            self.init_values.map(|v| LayerScale {
                gamma: Param::from_tensor(Tensor::full([d], v, device)),
            })
        };
        let blocks = (0..self.depth)
            .map(|i| {
                // Linear ramp of drop-path rates from 0 (first block) to drop_path_rate (last).
                let rate = if self.depth > 1 {
                    self.drop_path_rate * i as f64 / (self.depth - 1) as f64
                } else {
                    self.drop_path_rate
                };
                Block {
                    norm1: norm(),
                    ls1: layer_scale(),
                    attn: Attention {
                        qkv: linear(d, 3 * d, self.qkv_bias, device),
                        proj: linear(d, d, true, device),
                        attn_drop: dropout(self.attn_drop_rate),
                        proj_drop: dropout(self.drop_rate),
                        num_heads: self.num_heads,
                    },
                    norm2: norm(),
                    ls2: layer_scale(),
                    mlp: Mlp {
                        fc1: linear(d, self.mlp_hidden(), true, device),
                        act: Gelu::new(),
                        fc2: linear(self.mlp_hidden(), d, true, device),
                        drop: dropout(self.drop_rate),
                        activation: self.activation(),
                    },
                    drop_path: DropPath {
                        drop: dropout(rate),
                    },
                    norm_eps: self.layer_norm_eps,
                }
            })
            .collect();
        let prefix = self.prefix_tokens();
        let tokens =
            |kind: PrefixKind| (prefix.of(kind) > 0).then(|| normal([1, prefix.of(kind), d]));
        let classes = self.num_classes;
        Ok(VisionTransformer {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([self.in_chans, d], [p, p])
                    .with_stride([p, p])
                    .with_bias(!self.has_norm_pre())
                    .init(device),
            },
            cls_token: tokens(PrefixKind::Class),
            dist_token: tokens(PrefixKind::Distillation),
            reg_token: tokens(PrefixKind::Register),
            pos_embed: normal([1, self.pos_embed_len(), d]),
            pos_drop: dropout(self.drop_rate),
            norm_pre: self.has_norm_pre().then(norm),
            blocks,
            norm: norm(),
            head: (classes > 0).then(|| linear(d, classes, true, device)),
            head_dist: (classes > 0 && prefix.distillation)
                .then(|| linear(d, classes, true, device)),
            pooling: self.pooling,
            fc_norm: self.uses_fc_norm(),
            prefix,
            norm_eps: self.layer_norm_eps,
        })
    }
}

impl VisionTransformer {
    /// The parameter holding the prefix tokens of `kind`, `[1, n, D]`, if the model has them.
    pub fn prefix_param(&self, kind: PrefixKind) -> Option<&Param<Tensor<3>>> {
        match kind {
            PrefixKind::Class => self.cls_token.as_ref(),
            PrefixKind::Distillation => self.dist_token.as_ref(),
            PrefixKind::Register => self.reg_token.as_ref(),
        }
        .filter(|t| t.dims()[1] > 0)
    }

    /// The field that holds the prefix tokens of `kind`, to change them (freeze, replace).
    pub fn prefix_param_mut(&mut self, kind: PrefixKind) -> &mut Option<Param<Tensor<3>>> {
        match kind {
            PrefixKind::Class => &mut self.cls_token,
            PrefixKind::Distillation => &mut self.dist_token,
            PrefixKind::Register => &mut self.reg_token,
        }
    }

    /// Tokens `T` of the model's own input: its prefix tokens and patches.
    pub fn num_tokens(&self) -> usize {
        let patches = self.pos_embed.dims()[1] - self.prefix.with_positions();
        self.prefix.count() + patches
    }

    /// Tokens the heads read (`K`): the class token, with a distilled model's distillation
    /// token; or the patches' mean.
    pub fn num_pooled(&self) -> usize {
        match self.pooling {
            Pooling::Token => 1 + self.prefix.distillation as usize,
            Pooling::Mean => 1,
        }
    }

    /// Classes the heads tell apart; 0 for a feature model.
    pub fn num_classes(&self) -> usize {
        self.head.as_ref().map_or(0, |h| h.weight.dims()[1])
    }

    /// `[B, C, H, W]` -> `[B, T, D]`: the prefix tokens in front of the patch tokens, the
    /// positions added to all of them or (`no_embed_class`) to the patches alone, then
    /// `norm_pre` where there is one.
    fn embed(&self, images: Tensor<4>) -> Tensor<3> {
        let x = self.patch_embed.forward(images); // [B, N, D]
        let [b, _, d] = x.dims();
        let mut tokens: Vec<Tensor<3>> = PrefixKind::ALL
            .iter()
            .filter_map(|&kind| self.prefix_param(kind))
            .map(|t| t.val().expand([b, t.dims()[1], d])) // [B, n, D] each
            .collect();
        let pos = self.pos_embed.val();
        let x = if self.prefix.embedded {
            tokens.push(x);
            Tensor::cat(tokens, 1) + pos // [B, T, D]
        } else {
            tokens.push(x + pos);
            Tensor::cat(tokens, 1) // [B, T, D]
        };
        let x = self.pos_drop.forward(x);
        match &self.norm_pre {
            Some(norm) => kernels::layer_norm_or(x, norm, self.norm_eps),
            None => x,
        }
    }

    /// `[B, T, D]` through the final norm.
    fn final_norm(&self, x: Tensor<3>) -> Tensor<3> {
        kernels::layer_norm_or(x, &self.norm, self.norm_eps)
    }

    /// Final norm and pooling: `[B, T, D]` -> `[B, K, D]`, what the heads read.
    ///
    /// As in timm: class-token pooling takes token 0 (and a distilled model's token 1 for
    /// `head_dist`), normed; mean pooling averages the patch tokens (never the prefix tokens),
    /// then norms the mean (`fc_norm`), or norms every token before (`fc_norm=False`).
    pub fn pooled(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, t, _] = x.dims();
        let p = self.prefix.count();
        match self.pooling {
            // A LayerNorm works token by token: norming the tokens read is norming them all.
            Pooling::Token => self.final_norm(x.narrow(1, 0, self.num_pooled())),
            Pooling::Mean if self.fc_norm => self.final_norm(x.narrow(1, p, t - p).mean_dim(1)),
            Pooling::Mean => self.final_norm(x.narrow(1, p, t - p)).mean_dim(1),
        }
    }

    /// Final norm and pooling: `[B, T, D]` -> `[B, D]`, timm's `pre_logits` (for a distilled
    /// model the mean of its two tokens).
    pub fn pool(&self, x: Tensor<3>) -> Tensor<2> {
        let pooled = self.pooled(x);
        let [b, _, d] = pooled.dims();
        pooled.mean_dim(1).reshape([b, d])
    }

    /// The heads on what they read, `[B, K, D]` -> logits `[B, classes]`: a distilled model's
    /// two heads averaged, as timm does in eval. A model without a classifier answers its
    /// features `[B, D]` (timm's identity head).
    pub fn heads(&self, pooled: Tensor<3>) -> Tensor<2> {
        let [b, k, d] = pooled.dims();
        let Some(head) = &self.head else {
            return pooled.mean_dim(1).reshape([b, d]);
        };
        let token = |i: usize| pooled.clone().narrow(1, i, 1).reshape([b, d]);
        let logits = kernels::linear_or(token(0), head);
        match &self.head_dist {
            Some(head_dist) if k == 2 => {
                (logits + kernels::linear_or(token(1), head_dist)).div_scalar(2.0)
            }
            _ => logits,
        }
    }

    /// Final norm, pooling and classifier: `[B, T, D]` -> `[B, classes]`.
    fn classify(&self, x: Tensor<3>) -> Tensor<2> {
        self.heads(self.pooled(x))
    }

    /// The tokens `[B, T, D]` after the embedding and the first `blocks` blocks (fused
    /// attention): what [`Self::forward_from`] continues from.
    pub fn tokens(&self, images: Tensor<4>, blocks: usize) -> Tensor<3> {
        self.blocks
            .iter()
            .take(blocks)
            .fold(self.embed(images), |x, block| block.forward(x))
    }

    /// Logits `[B, classes]` from tokens `[B, T, D]` that have been through the first `first`
    /// blocks: the remaining blocks, then the final norm, pooling and head.
    pub fn forward_from(&self, x: Tensor<3>, first: usize) -> Tensor<2> {
        let x = self
            .blocks
            .iter()
            .skip(first)
            .fold(x, |x, block| block.forward(x));
        self.classify(x)
    }

    /// Logits `[B, classes]` through the fused attention kernel (features `[B, D]` for a model
    /// without a classifier).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.classify(self.tokens(images, self.blocks.len()))
    }

    /// Logits `[B, classes]` and every block's attention probabilities, each `[B, h, T, T]`.
    pub fn forward_with_attention(&self, images: Tensor<4>) -> (Tensor<2>, Vec<Tensor<4>>) {
        let mut x = self.embed(images);
        let mut maps = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (next, probs) = block.forward_with_attention(x);
            x = next;
            maps.push(probs);
        }
        (self.classify(x), maps)
    }

    /// As [`Self::forward_with_attention`], with `probes[l]` added to block `l`'s probabilities
    /// (see [`Attention::forward_probed`]): one probe per block.
    pub fn forward_probed(
        &self,
        images: Tensor<4>,
        probes: Vec<Tensor<4>>,
    ) -> (Tensor<2>, Vec<Tensor<4>>) {
        let mut x = self.embed(images);
        let mut maps = Vec::with_capacity(self.blocks.len());
        for (block, probe) in self.blocks.iter().zip(probes) {
            let (next, probs) = block.forward_probed(x, probe);
            x = next;
            maps.push(probs);
        }
        (self.classify(x), maps)
    }
}
