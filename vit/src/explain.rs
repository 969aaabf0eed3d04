//! Ask the model anything: the map of any token at any layer and head, both ways, attention
//! rollout from any token, and Chefer et al.'s class-specific relevance.
//!
//! - **Attention**: layer `l`'s probabilities for one head or fused heads ([`HeadFusion`]).
//!   Forward, token `t`'s row: where `t` attends. Reverse, its column: which tokens attend to
//!   `t`.
//! - **Rollout** (Abnar & Zuidema, 2020) through layers `1..=l`, as [`crate::rollout`] does it
//!   (identity added, rows re-normalised, layers multiplied), for any token and either way.
//! - **Relevance**, the gradient-weighted rollout of Chefer et al., "Generic Attention-model
//!   Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021),
//!   the rule their ViT notebook uses: per layer `Ā = mean over heads of (∇A ⊙ A)⁺`, where
//!   `∇A` is the gradient of class `c`'s logit with respect to the layer's probabilities `A`;
//!   then `R = I` and `R ← R + Ā·R` layer by layer. The map is a row of `R − I`, what
//!   attention added to the residual stream's identity: by default the row the classifier
//!   reads ([`Token::Output`]). For class-token pooling its patches are Chefer's `R[0, 1:]`
//!   exactly; for mean pooling, the mean of the patch rows of `R` would carry `1/N` of
//!   identity on every patch, a flat floor larger than what the gradients add.
//!
//! Layers and heads are numbered from 1 as the page and the CLI show them; token 0 is the
//! class token and token `k` is patch `k` (row-major, as [`crate::patches`]).
//!
//! Everything but [`gradient_weighted_attention`] works on plain `f32` slices of one image, so
//! the page computes every map from one asynchronous read.

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;
use serde::Serialize;

use crate::config::Pooling;
use crate::error::{Result, VitError};
use crate::model::VisionTransformer;
use crate::rollout::{AttentionMaps, HeadFusion, Heatmap, identity, matmul};

/// Which map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// One layer's attention probabilities.
    #[default]
    Attention,
    /// Attention rollout through the layers.
    Rollout,
    /// Class-specific relevance (Chefer et al. 2021).
    Relevance,
}

impl FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "attention" => Ok(Self::Attention),
            "rollout" => Ok(Self::Rollout),
            "relevance" => Ok(Self::Relevance),
            _ => Err(format!(
                "unknown method '{s}' (attention, rollout or relevance)"
            )),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attention => "attention",
            Self::Rollout => "rollout",
            Self::Relevance => "relevance",
        })
    }
}

/// One head (numbered from 1), or every head fused into one matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heads {
    One(usize),
    Fused(HeadFusion),
}

impl Default for Heads {
    fn default() -> Self {
        Self::Fused(HeadFusion::Mean)
    }
}

impl FromStr for Heads {
    type Err = String;
    /// `mean`, `max`, `min`, or a head's number from 1.
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(fusion) = s.parse::<HeadFusion>() {
            return Ok(Self::Fused(fusion));
        }
        match s.parse::<usize>() {
            Ok(h) if h >= 1 => Ok(Self::One(h)),
            _ => Err(format!(
                "unknown head '{s}': a head's number from 1, or mean, max or min"
            )),
        }
    }
}

impl fmt::Display for Heads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::One(h) => write!(f, "{h}"),
            Self::Fused(HeadFusion::Mean) => f.write_str("mean"),
            Self::Fused(HeadFusion::Max) => f.write_str("max"),
            Self::Fused(HeadFusion::Min) => f.write_str("min"),
        }
    }
}

impl Serialize for Heads {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(h) => s.serialize_u64(*h as u64),
            fused => s.serialize_str(&fused.to_string()),
        }
    }
}

/// Whose row (or column) a map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token {
    /// Token `i`: 0 is the class token, `k` is patch `k`.
    Index(usize),
    /// What the classifier reads: the class token for class-token pooling, the mean of the
    /// patch tokens' rows (or columns) for mean pooling.
    Output,
}

impl FromStr for Token {
    type Err = String;
    /// `cls` (token 0), `output`, or a token's number.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cls" => Ok(Self::Index(0)),
            "output" => Ok(Self::Output),
            _ => s.parse::<usize>().map(Self::Index).map_err(|_| {
                format!("unknown token '{s}': a number (0 is the class token), cls or output")
            }),
        }
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Index(i) => write!(f, "{i}"),
            Self::Output => f.write_str("output"),
        }
    }
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Index(i) => s.serialize_u64(*i as u64),
            Self::Output => s.serialize_str("output"),
        }
    }
}

/// One question to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Query {
    pub method: Method,
    /// Attention: the layer shown. Rollout and relevance: through layers `1..=layer`.
    /// `None`: the last layer (all of them).
    pub layer: Option<usize>,
    /// Attention and rollout; relevance always averages the heads (Chefer et al.'s rule).
    pub heads: Heads,
    pub token: Token,
    /// The column instead of the row: which tokens attend to (draw from) `token`.
    pub reverse: bool,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            method: Method::Attention,
            layer: None,
            heads: Heads::default(),
            token: Token::Index(0),
            reverse: false,
        }
    }
}

/// One value per token, the class token first.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenMap {
    pub values: Vec<f32>,
}

impl TokenMap {
    pub fn class_token(&self) -> f32 {
        self.values.first().copied().unwrap_or(0.0)
    }

    /// The patches' values on their grid.
    pub fn patches(&self) -> Heatmap {
        let values = self.values.get(1..).unwrap_or_default().to_vec();
        Heatmap {
            grid: (values.len() as f64).sqrt().round() as usize,
            values,
        }
    }
}

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
}

/// The map `query` asks for. `relevance` is needed only for [`Method::Relevance`]; `pooling`
/// says which row [`Token::Output`] means.
pub fn explain(
    maps: &AttentionMaps,
    relevance: Option<&Relevance>,
    pooling: Pooling,
    query: &Query,
) -> Result<TokenMap> {
    let layer = check(maps, query)?;
    let t = maps.tokens;
    let matrix = match query.method {
        Method::Attention => layer_matrix(maps, layer - 1, query.heads),
        Method::Rollout => rollout_through(maps, layer, query.heads),
        Method::Relevance => {
            let r = relevance.ok_or_else(|| {
                bad("relevance needs the attention gradients for a class; none were computed")
            })?;
            if r.tokens != t || r.layers != maps.layers {
                return Err(bad(format!(
                    "the relevance is for {} layers and {} tokens, the attention for {} and {t}",
                    r.layers, r.tokens, maps.layers
                )));
            }
            let mut m = r.matrix(layer);
            (0..t).for_each(|i| m[i * t + i] -= 1.0); // R - I
            m
        }
    };
    Ok(TokenMap {
        values: pick(&matrix, t, query.token, pooling, query.reverse),
    })
}

/// Checks the query against the model's shape; returns the layer, from 1.
fn check(maps: &AttentionMaps, query: &Query) -> Result<usize> {
    let (layers, heads, tokens) = (maps.layers, maps.heads, maps.tokens);
    let layer = query.layer.unwrap_or(layers);
    if layer == 0 || layer > layers {
        return Err(bad(format!(
            "there is no layer {layer}: the model has layers 1 to {layers}"
        )));
    }
    if let Heads::One(h) = query.heads
        && (h == 0 || h > heads)
    {
        return Err(bad(format!(
            "there is no head {h}: the model has heads 1 to {heads} (or mean, max, min)"
        )));
    }
    if query.method == Method::Relevance && query.heads != Heads::Fused(HeadFusion::Mean) {
        return Err(bad(format!(
            "relevance averages the heads (Chefer et al.'s rule); head {} does not apply",
            query.heads
        )));
    }
    if let Token::Index(i) = query.token
        && i >= tokens
    {
        return Err(bad(format!(
            "there is no token {i}: the model has tokens 0 (the class token) to {}",
            tokens - 1
        )));
    }
    Ok(layer)
}

fn bad(message: impl Into<String>) -> VitError {
    VitError::BadQuery(message.into())
}

/// Layer `layer`'s (from 0) `tokens x tokens` matrix for one head or fused heads.
fn layer_matrix(maps: &AttentionMaps, layer: usize, heads: Heads) -> Vec<f32> {
    match heads {
        Heads::One(h) => maps.matrix(layer, h - 1).to_vec(),
        Heads::Fused(fusion) => maps.fuse(layer, fusion),
    }
}

/// Rollout through the first `through` layers, as [`AttentionMaps::rollout`] with no discard.
fn rollout_through(maps: &AttentionMaps, through: usize, heads: Heads) -> Vec<f32> {
    let t = maps.tokens;
    let mut result = identity(t);
    for layer in 0..through {
        let mut a = layer_matrix(maps, layer, heads);
        for i in 0..t {
            a[i * t + i] += 1.0;
        }
        for row in a.chunks_mut(t) {
            let sum: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
        }
        result = matmul(&a, &result, t);
    }
    result
}

/// Token `token`'s row of the `t x t` matrix `m` (its column when `reverse`).
fn pick(m: &[f32], t: usize, token: Token, pooling: Pooling, reverse: bool) -> Vec<f32> {
    let line = |i: usize| -> Vec<f32> {
        if reverse {
            (0..t).map(|q| m[q * t + i]).collect()
        } else {
            m[i * t..(i + 1) * t].to_vec()
        }
    };
    match (token, pooling) {
        (Token::Index(i), _) => line(i),
        (Token::Output, Pooling::Token) => line(0),
        (Token::Output, Pooling::Mean) => {
            let mut mean = vec![0.0; t];
            for i in 1..t {
                mean.iter_mut().zip(line(i)).for_each(|(m, v)| *m += v);
            }
            let n = (t - 1).max(1) as f32;
            mean.iter_mut().for_each(|m| *m /= n);
            mean
        }
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
    let classes = model.head.weight.dims()[1];
    if class >= classes {
        return Err(bad(format!(
            "there is no class {class}: the model has classes 0 to {}",
            classes - 1
        )));
    }
    let tokens = model.pos_embed.dims()[1];
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 2 layers, 2 heads, 3 tokens: every entry of its own value.
    fn maps() -> AttentionMaps {
        let data: Vec<f32> = (0..2 * 2 * 9).map(|i| (i % 7 + 1) as f32 / 10.0).collect();
        AttentionMaps {
            layers: 2,
            heads: 2,
            tokens: 3,
            data,
        }
    }

    fn query(method: Method) -> Query {
        Query {
            method,
            ..Query::default()
        }
    }

    #[test]
    fn attention_rows_and_columns() {
        let m = maps();
        // Layer 2, head 1: entries 18..27.
        let q = Query {
            layer: Some(2),
            heads: Heads::One(1),
            token: Token::Index(1),
            ..query(Method::Attention)
        };
        let row = explain(&m, None, Pooling::Token, &q).unwrap();
        assert_eq!(row.values, m.data[18 + 3..18 + 6].to_vec());
        let col = explain(&m, None, Pooling::Token, &Query { reverse: true, ..q }).unwrap();
        assert_eq!(col.values, vec![m.data[19], m.data[22], m.data[25]]);
        assert_eq!(col.class_token(), m.data[19]);
        assert_eq!(col.patches().values, vec![m.data[22], m.data[25]]);
    }

    #[test]
    fn rollout_from_the_class_token_is_the_rollout() {
        let m = maps();
        for fusion in [HeadFusion::Mean, HeadFusion::Max, HeadFusion::Min] {
            let q = Query {
                heads: Heads::Fused(fusion),
                ..query(Method::Rollout)
            };
            let ours = explain(&m, None, Pooling::Token, &q).unwrap();
            assert_eq!(ours.patches().values, m.rollout(fusion, 0.0).values);
        }
    }

    #[test]
    fn output_means_the_pooled_rows() {
        let m = maps();
        let q = Query {
            token: Token::Output,
            layer: Some(1),
            ..query(Method::Attention)
        };
        let cls = explain(&m, None, Pooling::Token, &q).unwrap();
        let zero = explain(
            &m,
            None,
            Pooling::Token,
            &Query {
                token: Token::Index(0),
                ..q
            },
        );
        assert_eq!(cls, zero.unwrap());
        let mean = explain(&m, None, Pooling::Mean, &q).unwrap();
        let (one, two) = (
            explain(
                &m,
                None,
                Pooling::Mean,
                &Query {
                    token: Token::Index(1),
                    ..q
                },
            )
            .unwrap(),
            explain(
                &m,
                None,
                Pooling::Mean,
                &Query {
                    token: Token::Index(2),
                    ..q
                },
            )
            .unwrap(),
        );
        for j in 0..3 {
            assert!((mean.values[j] - (one.values[j] + two.values[j]) / 2.0).abs() < 1e-6);
        }
    }

    #[test]
    fn relevance_accumulates_from_the_identity() {
        // One layer: R = I + Ā.
        let cams = vec![0.1, 0.2, 0.0, 0.3];
        let r = Relevance {
            layers: 1,
            tokens: 2,
            cams: cams.clone(),
        };
        assert_eq!(r.matrix(1), vec![1.1, 0.2, 0.0, 1.3]);
        // Two layers: R2 = R1 + Ā·R1.
        let two = Relevance {
            layers: 2,
            tokens: 2,
            cams: [cams.clone(), cams].concat(),
        };
        let r1 = [1.1f32, 0.2, 0.0, 1.3];
        let want = [
            r1[0] + 0.1 * r1[0] + 0.2 * r1[2],
            r1[1] + 0.1 * r1[1] + 0.2 * r1[3],
            r1[2] + 0.3 * r1[2],
            r1[3] + 0.3 * r1[3],
        ];
        for (g, w) in two.matrix(2).iter().zip(want) {
            assert!((g - w).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_queries_say_what_exists() {
        let m = maps();
        let err = |q: Query| {
            explain(&m, None, Pooling::Token, &q)
                .unwrap_err()
                .to_string()
        };
        let e = err(Query {
            layer: Some(3),
            ..query(Method::Attention)
        });
        assert!(e.contains("no layer 3") && e.contains("1 to 2"), "{e}");
        assert!(
            err(Query {
                layer: Some(0),
                ..query(Method::Rollout)
            })
            .contains("no layer 0")
        );
        let e = err(Query {
            heads: Heads::One(3),
            ..query(Method::Attention)
        });
        assert!(e.contains("no head 3") && e.contains("1 to 2"), "{e}");
        let e = err(Query {
            token: Token::Index(3),
            ..query(Method::Attention)
        });
        assert!(
            e.contains("no token 3") && e.contains("0 (the class token) to 2"),
            "{e}"
        );
        assert!(err(query(Method::Relevance)).contains("gradients"));
        let r = Relevance {
            layers: 2,
            tokens: 3,
            cams: vec![0.0; 18],
        };
        let e = explain(
            &m,
            Some(&r),
            Pooling::Token,
            &Query {
                heads: Heads::One(1),
                ..query(Method::Relevance)
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("averages the heads"), "{e}");
    }

    #[test]
    fn arguments_parse() {
        assert_eq!("max".parse::<Heads>(), Ok(Heads::Fused(HeadFusion::Max)));
        assert_eq!("2".parse::<Heads>(), Ok(Heads::One(2)));
        assert!("0".parse::<Heads>().is_err());
        assert!(
            "x".parse::<Heads>()
                .unwrap_err()
                .contains("mean, max or min")
        );
        assert_eq!("cls".parse::<Token>(), Ok(Token::Index(0)));
        assert_eq!("output".parse::<Token>(), Ok(Token::Output));
        assert_eq!("17".parse::<Token>(), Ok(Token::Index(17)));
        assert!("-1".parse::<Token>().is_err());
        assert_eq!("relevance".parse::<Method>(), Ok(Method::Relevance));
        assert!("gradcam".parse::<Method>().is_err());
        let json = serde_json::to_string(&Query::default()).unwrap();
        assert_eq!(
            json,
            r#"{"method":"attention","layer":null,"heads":"mean","token":0,"reverse":false}"#
        );
    }
}
