//! Turning logits and attention tensors into what people read: probabilities, top-k classes,
//! and per-image attention maps for the rollout.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::prefix::PrefixTokens;
use crate::rollout::AttentionMaps;

/// One class of a top-k answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    pub label: String,
    pub index: usize,
    pub prob: f32,
}

impl Ranked {
    /// Class `index` of `probs` (`index` must be in range), named by `labels` where they
    /// name it.
    pub fn of(index: usize, probs: &[f32], labels: &[String]) -> Self {
        Ranked {
            label: labels
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("class {index}")),
            index,
            prob: probs[index],
        }
    }
}

/// Numerically stable softmax of one logit row.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// The `k` most probable classes, most probable first (ties keep class order).
pub fn top_k(probs: &[f32], labels: &[String], k: usize) -> Vec<Ranked> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|index| Ranked::of(index, probs, labels))
        .collect()
}

/// Below this top-1 probability no class is said to fit (see [`verdict`]). On the CIFAR-10
/// test set the default model's right answers have top-1 >= 0.40 in 95 cases of 100, and
/// 27 of 100 of its wrong answers fall below: the usual operating point of confidence-based
/// out-of-distribution detection (95% of the known kept).
pub const MIN_TOP1: f32 = 0.4;

/// Why no class fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoFit {
    /// The most probable class has less than [`MIN_TOP1`].
    Unsure,
    /// The square is one flat colour ([`crate::preprocess::is_blank`]): there is nothing in
    /// it to recognise, however the probabilities fall.
    Blank,
}

/// Whether the image looks like one of the model's classes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Some class is probable enough to name.
    pub fits: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not: Option<NoFit>,
    pub top1: f32,
}

/// The rule the page and `trainer predict` share: no class fits when the square the model saw
/// is blank, or when the most probable class has less than [`MIN_TOP1`]. A classifier must
/// spread all of the probability over the classes it knows, so on a photo of something else it
/// still "picks" one; a low top-1 is what gives that away. Not always: softmax confidence is a
/// weak detector, and this model takes some noise images for a deer or a frog at 60-77%.
pub fn verdict(probs: &[f32], blank: bool) -> Verdict {
    let top1 = probs.iter().copied().fold(0.0f32, f32::max);
    let why_not = if blank {
        Some(NoFit::Blank)
    } else if top1 < MIN_TOP1 {
        Some(NoFit::Unsure)
    } else {
        None
    };
    Verdict {
        fits: why_not.is_none(),
        why_not,
        top1,
    }
}

/// Splits logits `[B, classes]` read back as a flat vector into rows.
pub fn rows(flat: &[f32], width: usize) -> Vec<Vec<f32>> {
    flat.chunks(width).map(<[f32]>::to_vec).collect()
}

/// Stacks per-layer `[B, h, T, T]` attention into one `[L, B, h, T, T]` tensor, so it can be
/// read back in one (asynchronous, in the browser) transfer.
pub fn stack_attention(layers: Vec<Tensor<4>>) -> Tensor<5> {
    Tensor::stack(layers, 0)
}

/// Splits a read-back `[L, B, h, T, T]` attention stack of a model whose one prefix token is
/// a class token (the original ViT's) into one [`AttentionMaps`] per image; any other model:
/// [`split_attention_for`].
pub fn split_attention(flat: &[f32], dims: [usize; 5]) -> Vec<AttentionMaps> {
    split_attention_for(flat, dims, PrefixTokens::CLASS)
}

/// Splits a read-back `[L, B, h, T, T]` attention stack of a model with `prefix` (its
/// [`crate::VisionTransformer::prefix`]) into one [`AttentionMaps`] per image.
pub fn split_attention_for(
    flat: &[f32],
    dims: [usize; 5],
    prefix: PrefixTokens,
) -> Vec<AttentionMaps> {
    let [layers, batch, heads, tokens, _] = dims;
    let per_head_layer = heads * tokens * tokens;
    (0..batch)
        .map(|b| {
            let mut data = Vec::with_capacity(layers * per_head_layer);
            for l in 0..layers {
                let start = (l * batch + b) * per_head_layer;
                data.extend_from_slice(&flat[start..start + per_head_layer]);
            }
            AttentionMaps {
                layers,
                heads,
                tokens,
                prefix,
                data,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_probability() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let probs = softmax(&[1.0, 3.0, 2.0]);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let top = top_k(&probs, &labels, 2);
        assert_eq!(top[0].label, "b");
        assert_eq!(top[1].index, 2);
    }

    #[test]
    fn a_class_fits_when_probable_and_the_square_shows_something() {
        let sure = [0.05, 0.9, 0.05];
        assert!(verdict(&sure, false).fits);
        let v = verdict(&sure, true);
        assert_eq!((v.fits, v.why_not), (false, Some(NoFit::Blank)));
        let spread = [0.39, 0.31, 0.30];
        assert_eq!(verdict(&spread, false).why_not, Some(NoFit::Unsure));
        assert!(
            verdict(&[0.4, 0.3, 0.3], false).fits,
            "the threshold itself fits"
        );
        assert_eq!(
            serde_json::to_string(&verdict(&spread, false)).unwrap(),
            r#"{"fits":false,"why_not":"unsure","top1":0.39}"#
        );
    }

    #[test]
    fn attention_split_picks_each_image() {
        // L=2, B=2, h=1, T=1: values are 10*l + b.
        let flat = vec![0.0, 1.0, 10.0, 11.0];
        let maps = split_attention(&flat, [2, 2, 1, 1, 1]);
        assert_eq!(maps[1].data, vec![1.0, 11.0]);
    }
}
