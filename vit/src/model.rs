//! The Vision Transformer of Dosovitskiy et al. (2020), laid out as timm's `VisionTransformer`
//! so that parameter paths (`blocks.3.attn.qkv.weight`, ...) match timm's state dict.
//!
//! Shapes use: B batch, C channels, H/W image side, G patch-grid side, N = G*G patches,
//! T = 1 + N tokens, D embed dim, h heads, d = D / h head dim.
//!
//! One job, the network from patch embedding to head, kept in one file as timm keeps
//! `vision_transformer.py`: its forward, its attention-maps forward and their config read top
//! to bottom.

use burn::module::{Module, Param};
use burn::nn::LinearConfig;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Gelu, Initializer, LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::config::{Pooling, VitConfig};
use crate::error::Result;
use crate::kernels;

/// timm initialises linear weights, `cls_token` and `pos_embed` from N(0, 0.02²).
const INIT_STD: f64 = 0.02;

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
}

impl Mlp {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = kernels::gelu_or(kernels::linear_or(x, &self.fc1), |x| {
            let device = x.device();
            if device.is_autodiff() && device.inner() != Device::flex() {
                exact_gelu(x)
            } else {
                self.act.forward(x)
            }
        });
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

/// A pre-norm transformer block: `x + attn(norm1(x))`, then `x + mlp(norm2(x))`.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    pub drop_path: DropPath,
    /// Both norms' epsilon, which burn's `LayerNorm` keeps private and the CPU kernel needs.
    #[module(skip)]
    pub norm_eps: f64,
}

impl Block {
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone()
            + self
                .drop_path
                .forward(self.attn.forward(self.norm(&self.norm1, x)));
        x.clone()
            + self
                .drop_path
                .forward(self.mlp.forward(self.norm(&self.norm2, x)))
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
        let x = x + self.drop_path.forward(a);
        let x = x.clone()
            + self
                .drop_path
                .forward(self.mlp.forward(self.norm(&self.norm2, x)));
        (x, probs)
    }
}

#[derive(Module, Debug)]
pub struct VisionTransformer {
    pub patch_embed: PatchEmbed,
    /// `[1, 1, D]`
    pub cls_token: Param<Tensor<3>>,
    /// `[1, T, D]`, learned, covering the class token and every patch.
    pub pos_embed: Param<Tensor<3>>,
    pub pos_drop: Dropout,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub head: Linear,
    #[module(skip)]
    pub pooling: Pooling,
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
                    attn: Attention {
                        qkv: linear(d, 3 * d, self.qkv_bias, device),
                        proj: linear(d, d, true, device),
                        attn_drop: dropout(self.attn_drop_rate),
                        proj_drop: dropout(self.drop_rate),
                        num_heads: self.num_heads,
                    },
                    norm2: norm(),
                    mlp: Mlp {
                        fc1: linear(d, self.mlp_hidden(), true, device),
                        act: Gelu::new(),
                        fc2: linear(self.mlp_hidden(), d, true, device),
                        drop: dropout(self.drop_rate),
                    },
                    drop_path: DropPath {
                        drop: dropout(rate),
                    },
                    norm_eps: self.layer_norm_eps,
                }
            })
            .collect();
        Ok(VisionTransformer {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([self.in_chans, d], [p, p])
                    .with_stride([p, p])
                    .init(device),
            },
            cls_token: normal([1, 1, d]),
            pos_embed: normal([1, self.num_tokens(), d]),
            pos_drop: dropout(self.drop_rate),
            blocks,
            norm: norm(),
            head: linear(d, self.num_classes, true, device),
            pooling: self.pooling,
            norm_eps: self.layer_norm_eps,
        })
    }
}

impl VisionTransformer {
    /// Re-initialises every attention layer "mimetically" (Trockman & Kolter, ICML 2023): as
    /// in trained ViTs, each head's `W_q W_k^T` starts close to `+I` (a token attends to tokens
    /// that look like it) and `W_v W_proj` close to `-I`. On small datasets this gives attention
    /// a prior from the first step. In our 10-epoch CIFAR-10 runs it led early, and the timm-init
    /// run caught up by epochs 3-5 (see docs/default-model.md).
    ///
    /// The paper factors `alpha Z + beta I` by SVD. Here each product comes straight from one
    /// Gaussian matrix with `N(0, 1/D)` entries, since `G G^T` is the identity plus noise of
    /// size `1/sqrt(D)`: head `h` gets `W_q = W_k = sqrt(beta_qk) G_h` (`G_h` its `d` columns
    /// of `G`, so its product is a rank-`d` share of `beta_qk I`), and `W_v = sqrt(beta_vo) H`,
    /// `W_proj = -sqrt(beta_vo) H^T`. Uses the device's RNG, so a seeded device repeats it.
    pub fn mimetic_attention(mut self) -> Self {
        /// The paper's betas for vision (its alphas are the noise that `G G^T` brings here).
        const BETA_QK: f64 = 0.7;
        const BETA_VO: f64 = 0.4;
        for block in &mut self.blocks {
            let attn = &mut block.attn;
            let w = attn.qkv.weight.val(); // [D, 3D]
            let device = w.device();
            let [d, _] = w.dims();
            let gaussian = || {
                Tensor::<2>::random(
                    [d, d],
                    burn::tensor::Distribution::Normal(0.0, (d as f64).powf(-0.5)),
                    &device,
                )
            };
            // A little independent noise so that queries and keys are not exactly tied.
            let jitter = || {
                Tensor::<2>::random(
                    [d, d],
                    burn::tensor::Distribution::Normal(0.0, INIT_STD),
                    &device,
                )
            };
            let g = gaussian() * BETA_QK.sqrt(); // columns h*d_h.. are head h's W_q = W_k
            let h = gaussian() * BETA_VO.sqrt();
            let qkv = Tensor::cat(vec![g.clone() + jitter(), g + jitter(), h.clone()], 1); // [D, 3D]
            attn.qkv.weight = Param::from_tensor(qkv);
            attn.proj.weight = Param::from_tensor(h.transpose().neg()); // [D, D]
        }
        self
    }

    /// Starts `pos_embed` at 2-D sine-cosine codes (as MAE and Beyer et al. 2022, "Better plain
    /// ViT baselines", fix them) instead of noise; it stays a learned parameter, so timm's layout
    /// is unchanged. A quarter of the width codes the column with sines, one with cosines, and
    /// the same for the row; the class token's position is zero. Nearby patches get similar
    /// codes, so with mimetic attention (`q·k ≈ x·x`) every head starts by looking around its
    /// patch, the way a convolution does, instead of having to learn where patches are.
    pub fn sincos_positions(mut self) -> Self {
        let [_, tokens, d] = self.pos_embed.dims();
        let quarter = d / 4;
        let Some(grid) = crate::patches::grid_side(tokens).filter(|_| quarter > 0) else {
            return self; // not a square grid: nothing sensible to code
        };
        let frequencies: Vec<f64> = (0..quarter)
            .map(|i| 10_000f64.powf(-(i as f64) / quarter as f64))
            .collect();
        let mut codes = vec![0f32; tokens * d]; // [T, D], token 0 (class) stays zero
        for row in 0..grid {
            for col in 0..grid {
                let token = 1 + row * grid + col;
                for (half, pos) in [(0, col), (1, row)] {
                    let base = token * d + half * 2 * quarter;
                    for (i, frequency) in frequencies.iter().enumerate() {
                        let angle = pos as f64 * frequency;
                        codes[base + i] = angle.sin() as f32;
                        codes[base + quarter + i] = angle.cos() as f32;
                    }
                }
            }
        }
        let old = self.pos_embed.val();
        let pos = Tensor::<3>::from_data(TensorData::new(codes, [1, tokens, d]), &old.device())
            .cast(old.dtype());
        self.pos_embed = Param::from_tensor(pos);
        self
    }

    /// `[B, C, H, W]` -> `[B, T, D]`: patch tokens with the class token in front, plus positions.
    fn embed(&self, images: Tensor<4>) -> Tensor<3> {
        let x = self.patch_embed.forward(images); // [B, N, D]
        let [b, _, d] = x.dims();
        let cls = self.cls_token.val().expand([b, 1, d]);
        let x = Tensor::cat(vec![cls, x], 1); // [B, T, D]
        self.pos_drop.forward(x + self.pos_embed.val())
    }

    /// Final norm and pooling: `[B, T, D]` -> `[B, D]`, the vector the head reads.
    ///
    /// As in timm: class-token pooling norms every token, then takes token 0; mean pooling
    /// averages the patch tokens first and norms the mean (timm calls that norm `fc_norm`).
    pub fn pool(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, t, d] = x.dims();
        let pooled = match self.pooling {
            Pooling::Token => x.narrow(1, 0, 1),
            Pooling::Mean => x.narrow(1, 1, t - 1).mean_dim(1),
        }; // [B, 1, D]
        kernels::layer_norm_or(pooled, &self.norm, self.norm_eps).reshape([b, d])
    }

    /// Final norm, pooling and classifier: `[B, T, D]` -> `[B, classes]`.
    fn classify(&self, x: Tensor<3>) -> Tensor<2> {
        kernels::linear_or(self.pool(x), &self.head)
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

    /// Logits `[B, classes]` through the fused attention kernel.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Mean of the diagonal and root mean square of the off-diagonal of a square matrix.
    fn diag_and_noise(m: Tensor<2>) -> (f32, f32) {
        let [n, _] = m.dims();
        let v = m.into_data().try_to_vec::<f32>().unwrap();
        let (mut diag, mut off) = (0.0, 0.0);
        for i in 0..n {
            for j in 0..n {
                let x = v[i * n + j];
                if i == j {
                    diag += x;
                } else {
                    off += x * x;
                }
            }
        }
        (diag / n as f32, (off / (n * n - n) as f32).sqrt())
    }

    #[test]
    fn sincos_positions_make_neighbours_alike() {
        let device = Device::flex();
        let model = VitConfig::new()
            .with_patch_size(4)
            .with_embed_dim(64)
            .with_num_heads(2)
            .with_depth(1)
            .init(&device)
            .unwrap()
            .sincos_positions();
        let [_, t, d] = model.pos_embed.dims();
        let p = model
            .pos_embed
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let dot = |a: usize, b: usize| -> f32 { (0..d).map(|k| p[a * d + k] * p[b * d + k]).sum() };
        assert_eq!(t, 65);
        assert!(
            p[..d].iter().all(|&v| v == 0.0),
            "the class token has no position"
        );
        // Token 1 + 8r + c sits at row r, column c of the 8x8 grid.
        let (centre, right, below, far) =
            (1 + 8 * 3 + 3, 1 + 8 * 3 + 4, 1 + 8 * 4 + 3, 1 + 8 * 7 + 7);
        assert!(dot(centre, right) > dot(centre, far) + 1.0);
        assert!(dot(centre, below) > dot(centre, far) + 1.0);
        assert!(
            (dot(right, right) - dot(far, far)).abs() < 1e-3,
            "every code has one norm"
        );
    }

    #[test]
    fn mimetic_attention_starts_with_identity_like_products() {
        let device = Device::flex();
        device.seed(7);
        let config = VitConfig::new()
            .with_embed_dim(192)
            .with_num_heads(3)
            .with_depth(2);
        let model = config.init(&device).unwrap().mimetic_attention();
        let (d, k) = (192, 64);
        for block in &model.blocks {
            let w = block.attn.qkv.weight.val(); // [D, 3D]
            for head in 0..3 {
                let wq = w.clone().narrow(1, head * k, k);
                let wk = w.clone().narrow(1, d + head * k, k);
                let (diag, noise) = diag_and_noise(wq.matmul(wk.transpose()));
                // A rank-k share of 0.7 I: 0.7 * k / D on the diagonal.
                assert!((diag - 0.7 * k as f32 / d as f32).abs() < 0.05, "{diag}");
                assert!(noise < diag / 4.0, "{noise} vs {diag}");
            }
            let wv = w.narrow(1, 2 * d, d);
            let (diag, noise) = diag_and_noise(wv.matmul(block.attn.proj.weight.val()));
            assert!((diag + 0.4).abs() < 0.05, "{diag}");
            assert!(noise < 0.1, "{noise}");
        }
    }
}
