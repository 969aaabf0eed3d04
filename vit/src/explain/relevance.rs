//! Chefer et al.'s relevance: the gradient of a class's logit with respect to every layer's
//! attention probabilities, weighed by them ([`gradient_weighted_attention`], through burn's
//! autodiff on any device), and the rollout of those weights ([`Relevance`]).

use burn::prelude::*;

use super::bad;
use crate::error::Result;
use crate::model::VisionTransformer;
use crate::rollout::{identity, mat_vec, matmul, vec_mat};

/// Per layer, `Ā = mean over heads of (∇A ⊙ A)⁺` for one image: `[layers, tokens, tokens]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relevance {
    pub layers: usize,
    pub tokens: usize,
    pub cams: Vec<f32>,
}

impl Relevance {
    /// `R = I`, then `R ← R + Ā_l·R` for layers `0..through`.
    pub fn matrix(&self, through: usize) -> Vec<f32> {
        let t = self.tokens;
        let mut r = identity(t);
        for cam in self.cams.chunks_exact(t * t).take(through) {
            let add = matmul(cam, &r, t);
            r.iter_mut().zip(add).for_each(|(r, a)| *r += a);
        }
        r
    }

    /// `wᵀ·R` for `R` through layers `0..through` (`w` weighs the rows: one token, or a mean),
    /// without forming `R`: `v ← v + vᵀ·Ā_l` from the last of those layers down.
    pub fn row(&self, w: &[f32], through: usize) -> Vec<f32> {
        let t = self.tokens;
        let cams: Vec<&[f32]> = self.cams.chunks_exact(t * t).take(through).collect();
        cams.iter().rev().fold(w.to_vec(), |v, cam| {
            let add = vec_mat(&v, cam, t);
            v.iter().zip(add).map(|(v, a)| v + a).collect()
        })
    }

    /// `R·w` (`w` weighs the columns): `u ← u + Ā_l·u` from the first layer up.
    pub fn column(&self, w: &[f32], through: usize) -> Vec<f32> {
        let t = self.tokens;
        self.cams
            .chunks_exact(t * t)
            .take(through)
            .fold(w.to_vec(), |u, cam| {
                let add = mat_vec(cam, &u, t);
                u.iter().zip(add).map(|(u, a)| u + a).collect()
            })
    }
}

/// Chefer et al.'s per-layer weights for class `class` of one image `[1, C, H, W]`:
/// `[layers, tokens, tokens]` on the image's device, without autodiff.
///
/// The model needs no autodiff of its own: each layer's probabilities get a zero probe that
/// does ([`VisionTransformer::forward_probed`]), so only the graph from the first probe on is
/// recorded and no parameter gradient is kept. Works on any device burn's autodiff runs on,
/// WebGPU in the browser included.
pub fn gradient_weighted_attention(
    model: &VisionTransformer,
    image: Tensor<4>,
    class: usize,
) -> Result<Tensor<3>> {
    let [batch, ..] = image.dims();
    if batch != 1 {
        return Err(bad(format!(
            "relevance is for one image at a time, not {batch}"
        )));
    }
    let classes = model.num_classes();
    if classes == 0 {
        return Err(bad(
            "the model has no classifier (a feature model): relevance is for a class",
        ));
    }
    if class >= classes {
        return Err(bad(format!(
            "there is no class {class}: the model has classes 0 to {}",
            classes - 1
        )));
    }
    let tokens = model.num_tokens();
    let device = image.device().autodiff();
    let probes: Vec<Tensor<4>> = model
        .blocks
        .iter()
        .map(|b| Tensor::zeros([1, b.attn.num_heads, tokens, tokens], &device).require_grad())
        .collect();
    let (logits, probs) = model.forward_probed(image, probes.clone());
    let score = logits.narrow(1, class, 1).sum(); // class c's logit, as Chefer's one-hot · output
    let grads = score.backward();
    let cams: Vec<Tensor<2>> = probs
        .into_iter()
        .zip(&probes)
        .map(|(a, probe)| {
            let a = a.inner(); // [1, h, T, T]
            let grad = probe.grad(&grads).unwrap_or_else(|| a.zeros_like());
            (grad * a)
                .clamp_min(0.0)
                .mean_dim(1)
                .reshape([tokens, tokens])
        })
        .collect();
    Ok(Tensor::stack(cams, 0)) // [L, T, T]
}
