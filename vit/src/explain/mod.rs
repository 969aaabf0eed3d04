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
//! Rollout and relevance start from the class token, or from the mean of the patches in a
//! model without one ([`Token::start`]). Layers and heads are numbered from 1 as the page and
//! the CLI show them; the tokens are the model's prefix tokens (class, distillation, registers:
//! [`crate::prefix`], which the maps carry) and then the patches, row-major as
//! [`crate::patches`]. Only the asked row (or column) is carried through the layers, a vector
//! at a time, so large token counts cost `layers x tokens²`, not `tokens³`.
//!
//! Everything but [`gradient_weighted_attention`] works on plain `f32` slices of one image, so
//! the page computes every map from one asynchronous read. One file a part: `query.rs` (the
//! question), `caption.rs` (the question in words, [`Query::caption`], for the CLI and the
//! page), this file (the answer from the maps), `relevance.rs` (the gradients).

mod caption;
mod query;
mod relevance;

pub use caption::ModelTokens;
pub use query::{Heads, Method, Query, Token};
pub use relevance::{Relevance, gradient_weighted_attention};

use crate::config::Pooling;
use crate::error::{Result, VitError};
use crate::prefix::{PrefixKind, PrefixTokens};
use crate::rollout::{
    AttentionMaps, HeadFusion, Heatmap, column_through, mat_vec, row_through, vec_mat,
};

/// One value per token, the prefix tokens first.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenMap {
    pub values: Vec<f32>,
    /// The model's prefix tokens: the first `prefix.count()` values are theirs.
    pub prefix: PrefixTokens,
}

impl TokenMap {
    /// The class token's value, where the model has one.
    pub fn class_token(&self) -> Option<f32> {
        self.prefix
            .class
            .then(|| self.values.first().copied())
            .flatten()
    }

    /// The prefix tokens' values, in token order (name them with [`PrefixTokens::describe`]).
    pub fn prefix_values(&self) -> &[f32] {
        &self.values[..self.prefix.count().min(self.values.len())]
    }

    /// The patches' values on their grid.
    pub fn patches(&self) -> Heatmap {
        let values = self
            .values
            .get(self.prefix.count()..)
            .unwrap_or_default()
            .to_vec();
        Heatmap {
            grid: (values.len() as f64).sqrt().round() as usize,
            values,
        }
    }
}

/// The map `query` asks for. `relevance` is needed only for [`Method::Relevance`]; `pooling`
/// says which tokens [`Token::Output`] means.
pub fn explain(
    maps: &AttentionMaps,
    relevance: Option<&Relevance>,
    pooling: Pooling,
    query: &Query,
) -> Result<TokenMap> {
    let layer = check(maps, query)?;
    let t = maps.tokens;
    let w = weights(maps, query.token, pooling)?;
    let values = match (query.method, query.reverse) {
        (Method::Attention, false) => vec_mat(&w, &layer_matrix(maps, layer - 1, query.heads), t),
        (Method::Attention, true) => mat_vec(&layer_matrix(maps, layer - 1, query.heads), &w, t),
        (Method::Rollout, reverse) => {
            let factors = maps.rollout_factors(layer, 0.0, |l| layer_matrix(maps, l, query.heads));
            if reverse {
                column_through(&w, &factors, t)
            } else {
                row_through(&w, &factors, t)
            }
        }
        (Method::Relevance, reverse) => {
            let r = relevance.ok_or_else(|| {
                bad("relevance needs the attention gradients for a class; none were computed")
            })?;
            if r.tokens != t || r.layers != maps.layers {
                return Err(bad(format!(
                    "the relevance is for {} layers and {} tokens, the attention for {} and {t}",
                    r.layers, r.tokens, maps.layers
                )));
            }
            let through = if reverse {
                r.column(&w, layer)
            } else {
                r.row(&w, layer)
            };
            through.iter().zip(&w).map(|(r, i)| r - i).collect() // (R - I) w
        }
    };
    Ok(TokenMap {
        values,
        prefix: maps.prefix,
    })
}

/// Checks the query against the model's shape; returns the layer, from 1.
fn check(maps: &AttentionMaps, query: &Query) -> Result<usize> {
    let (layers, heads) = (maps.layers, maps.heads);
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
    Ok(layer)
}

/// The tokens `token` stands for, as weights over the sequence: one token, or a mean.
fn weights(maps: &AttentionMaps, token: Token, pooling: Pooling) -> Result<Vec<f32>> {
    let (t, prefix) = (maps.tokens, maps.prefix);
    let first_patch = prefix.count().min(t);
    let patches = t - first_patch;
    let mean_of = |tokens: std::ops::Range<usize>| {
        let mut w = vec![0.0; t];
        let n = tokens.len().max(1) as f32;
        w[tokens].iter_mut().for_each(|v| *v = 1.0 / n);
        w
    };
    let one = |i: usize| mean_of(i..i + 1);
    match token {
        Token::Patches => Ok(mean_of(first_patch..t)),
        Token::Output => Ok(match pooling {
            Pooling::Mean => mean_of(first_patch..t),
            // The heads read the class token (and a distilled model's distillation token).
            Pooling::Token => mean_of(0..(prefix.class as usize + prefix.distillation as usize)),
        }),
        named => named.index(prefix, patches).map(one).ok_or_else(|| {
            bad(format!(
                "there is no token {named}: the model has tokens {}",
                sequence(prefix, patches)
            ))
        }),
    }
}

/// The model's tokens in words, with their numbers: "0 (the class token), 1 to 4 (registers 1
/// to 4), 5 to 20 (patches 1 to 16)".
fn sequence(prefix: PrefixTokens, patches: usize) -> String {
    let mut parts = Vec::new();
    let mut first = 0;
    for kind in PrefixKind::ALL {
        let n = prefix.of(kind);
        let what = match (kind, n) {
            (_, 0) => continue,
            (PrefixKind::Class, _) => "the class token".to_string(),
            (PrefixKind::Distillation, _) => "the distillation token".into(),
            (PrefixKind::Register, 1) => "register 1".into(),
            (PrefixKind::Register, n) => format!("registers 1 to {n}"),
        };
        parts.push(format!("{} ({what})", span(first, n)));
        first += n;
    }
    parts.push(format!("{} (patches 1 to {patches})", span(first, patches)));
    parts.join(", ")
}

/// `first` or `first to last` of `n` numbers.
fn span(first: usize, n: usize) -> String {
    match n {
        1 => first.to_string(),
        _ => format!("{first} to {}", first + n.saturating_sub(1)),
    }
}

pub(crate) fn bad(message: impl Into<String>) -> VitError {
    VitError::BadQuery(message.into())
}

/// Layer `layer`'s (from 0) `tokens x tokens` matrix for one head or fused heads.
fn layer_matrix(maps: &AttentionMaps, layer: usize, heads: Heads) -> Vec<f32> {
    match heads {
        Heads::One(h) => maps.matrix(layer, h - 1).to_vec(),
        Heads::Fused(fusion) => maps.fuse(layer, fusion),
    }
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
            prefix: PrefixTokens::CLASS,
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
        assert_eq!(col.class_token(), Some(m.data[19]));
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

    /// A class token, a distillation token and two patches: what the classifier reads is the
    /// mean of the two prefix tokens' rows under class-token pooling, the patches' mean under
    /// mean pooling; the map of the patches leaves both prefix tokens out.
    #[test]
    fn output_and_patches_follow_the_prefix_tokens() {
        let data: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
        let maps = AttentionMaps {
            layers: 1,
            heads: 1,
            tokens: 4,
            prefix: PrefixTokens {
                distillation: true,
                ..PrefixTokens::CLASS
            },
            data: data.clone(),
        };
        let q = Query {
            token: Token::Output,
            ..query(Method::Attention)
        };
        let out = explain(&maps, None, Pooling::Token, &q).unwrap();
        let want: Vec<f32> = (0..4).map(|j| (data[j] + data[4 + j]) / 2.0).collect();
        assert_eq!(out.values, want);
        assert_eq!(out.prefix_values().len(), 2);
        assert_eq!(out.patches().values, want[2..].to_vec());
        let dist = Query {
            token: Token::Distillation,
            ..q
        };
        let dist = explain(&maps, None, Pooling::Token, &dist).unwrap();
        assert_eq!(dist.values, data[4..8].to_vec());
        let mean = explain(&maps, None, Pooling::Mean, &q).unwrap();
        let patches = Query {
            token: Token::Patches,
            ..q
        };
        assert_eq!(
            mean,
            explain(&maps, None, Pooling::Token, &patches).unwrap()
        );
        let want: Vec<f32> = (0..4).map(|j| (data[8 + j] + data[12 + j]) / 2.0).collect();
        assert_eq!(mean.values, want);
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
        // A row and a column of R, carried through the layers as vectors.
        let row = two.row(&[0.0, 1.0], 2);
        let column = two.column(&[1.0, 0.0], 2);
        for (g, w) in row
            .iter()
            .chain(&column)
            .zip([want[2], want[3], want[0], want[2]])
        {
            assert!((g - w).abs() < 1e-6, "{row:?} {column:?}");
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
        assert_eq!(
            e,
            "there is no token 3: the model has tokens 0 (the class token), 1 to 2 (patches 1 \
             to 2)"
        );
        let e = err(Query {
            token: Token::Register(1),
            ..query(Method::Attention)
        });
        assert!(e.contains("no token reg1"), "{e}");
        let dino = PrefixTokens {
            registers: 4,
            embedded: false,
            ..PrefixTokens::CLASS
        };
        assert_eq!(
            sequence(dino, 16),
            "0 (the class token), 1 to 4 (registers 1 to 4), 5 to 20 (patches 1 to 16)"
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
}
