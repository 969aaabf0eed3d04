//! Attention rollout (Abnar & Zuidema, 2020): where the class token's information came from,
//! traced through every layer.
//!
//! Per layer: fuse the heads, optionally zero the weakest weights, add the identity for the
//! residual path, and re-normalise each *row* (each query's attention sums to one). jacobgil's
//! vit-explain divides by `a.sum(dim=-1)` without `keepdim`, which broadcasts over columns; that
//! bug is not repeated here. The layers are multiplied through, and the class token's row over
//! the patches, reshaped to the patch grid, is the map.
//!
//! It runs on plain `f32` slices for one image: the page already has them after its asynchronous
//! read, and a 65 x 65 product per layer costs microseconds.

use serde::{Deserialize, Serialize};

/// How one layer's heads become one matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadFusion {
    #[default]
    Mean,
    Max,
    Min,
}

impl std::str::FromStr for HeadFusion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mean" => Ok(Self::Mean),
            "max" => Ok(Self::Max),
            "min" => Ok(Self::Min),
            _ => Err(format!("unknown head fusion '{s}' (mean, max or min)")),
        }
    }
}

/// One image's attention probabilities for every layer: `[layers, heads, tokens, tokens]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionMaps {
    pub layers: usize,
    pub heads: usize,
    pub tokens: usize,
    pub data: Vec<f32>,
}

/// A map over the patch grid, row-major like the tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub grid: usize,
    pub values: Vec<f32>,
}

impl Heatmap {
    /// The patch (row-major index) with the highest value; `None` for an empty map.
    pub fn peak(&self) -> Option<usize> {
        self.values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
    }

    /// Values scaled to [0, 1] by the maximum, for display.
    pub fn normalized(&self) -> Vec<f32> {
        let max = self.values.iter().copied().fold(0.0f32, f32::max);
        if max <= 0.0 {
            return vec![0.0; self.values.len()];
        }
        self.values.iter().map(|v| v / max).collect()
    }
}

impl AttentionMaps {
    pub(crate) fn matrix(&self, layer: usize, head: usize) -> &[f32] {
        let t2 = self.tokens * self.tokens;
        let start = (layer * self.heads + head) * t2;
        &self.data[start..start + t2]
    }

    pub(crate) fn grid(&self) -> usize {
        ((self.tokens - 1) as f64).sqrt().round() as usize
    }

    /// The attention rollout of the class token over the patches.
    ///
    /// `discard_ratio` in [0, 1) zeroes that fraction of each fused layer's smallest weights
    /// (never the class token's attention to itself) before the identity is added.
    pub fn rollout(&self, fusion: HeadFusion, discard_ratio: f32) -> Heatmap {
        let t = self.tokens;
        let result = self.rollout_matrix(fusion, discard_ratio);
        Heatmap {
            grid: self.grid(),
            values: result[1..t].to_vec(),
        }
    }

    /// The whole `tokens x tokens` product of the layers' re-normalised matrices.
    fn rollout_matrix(&self, fusion: HeadFusion, discard_ratio: f32) -> Vec<f32> {
        let t = self.tokens;
        let mut result = identity(t);
        for layer in 0..self.layers {
            let mut fused = self.fuse(layer, fusion);
            discard_weakest(&mut fused, discard_ratio);
            for i in 0..t {
                fused[i * t + i] += 1.0;
            }
            for row in fused.chunks_mut(t) {
                let sum: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= sum);
            }
            result = matmul(&fused, &result, t);
        }
        result
    }

    /// The last layer's class-token attention over the patches, one map per head.
    pub fn last_layer_cls_maps(&self) -> Vec<Heatmap> {
        (0..self.heads)
            .map(|h| Heatmap {
                grid: self.grid(),
                values: self.matrix(self.layers - 1, h)[1..self.tokens].to_vec(),
            })
            .collect()
    }

    pub(crate) fn fuse(&self, layer: usize, fusion: HeadFusion) -> Vec<f32> {
        let mut fused = self.matrix(layer, 0).to_vec();
        for h in 1..self.heads {
            for (f, &v) in fused.iter_mut().zip(self.matrix(layer, h)) {
                *f = match fusion {
                    HeadFusion::Mean => *f + v,
                    HeadFusion::Max => f.max(v),
                    HeadFusion::Min => f.min(v),
                };
            }
        }
        if fusion == HeadFusion::Mean {
            fused.iter_mut().for_each(|f| *f /= self.heads as f32);
        }
        fused
    }
}

pub(crate) fn identity(t: usize) -> Vec<f32> {
    let mut m = vec![0.0; t * t];
    (0..t).for_each(|i| m[i * t + i] = 1.0);
    m
}

/// Zeroes the `ratio` smallest entries of the flattened matrix, sparing entry 0 (cls -> cls).
fn discard_weakest(m: &mut [f32], ratio: f32) {
    let count = (m.len() as f32 * ratio) as usize;
    if count == 0 {
        return;
    }
    let mut order: Vec<usize> = (0..m.len()).collect();
    order.sort_by(|&a, &b| m[a].total_cmp(&m[b]).then(a.cmp(&b)));
    for &i in order.iter().take(count) {
        if i != 0 {
            m[i] = 0.0;
        }
    }
}

/// `a · b` for `t x t` row-major matrices.
pub(crate) fn matmul(a: &[f32], b: &[f32], t: usize) -> Vec<f32> {
    let mut out = vec![0.0; t * t];
    for i in 0..t {
        for k in 0..t {
            let aik = a[i * t + k];
            if aik == 0.0 {
                continue;
            }
            let (row, brow) = (&mut out[i * t..(i + 1) * t], &b[k * t..(k + 1) * t]);
            row.iter_mut().zip(brow).for_each(|(o, &bv)| *o += aik * bv);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 layer, 1 head, 5 tokens, every query attending only to patch 2 (token 3).
    fn focused() -> AttentionMaps {
        let t = 5;
        let mut data = vec![0.0; t * t];
        (0..t).for_each(|q| data[q * t + 3] = 1.0);
        AttentionMaps {
            layers: 1,
            heads: 1,
            tokens: t,
            data,
        }
    }

    #[test]
    fn rollout_points_at_the_attended_patch() {
        let map = focused().rollout(HeadFusion::Mean, 0.0);
        assert_eq!(map.grid, 2);
        // (A + I) / 2 for the class row: 0.5 on itself, 0.5 on token 3.
        assert_eq!(map.values, vec![0.0, 0.0, 0.5, 0.0]);
        assert_eq!(map.normalized(), vec![0.0, 0.0, 1.0, 0.0]);
    }

    /// Two heads whose max-fused matrix plus the identity has rows summing to 2.35, 2.5 and
    /// 2.7: dividing each row by its own sum (right) and each column by the row sum of the same
    /// index (vit-explain's broadcast) give different class rows. With mean fusion and no
    /// discard every row would sum to 2 and the two could not be told apart.
    fn two_heads() -> AttentionMaps {
        #[rustfmt::skip]
        let data = vec![
            0.5, 0.25, 0.25,   0.1, 0.8, 0.1,   0.2, 0.2, 0.6,
            0.2, 0.6, 0.2,     0.3, 0.3, 0.4,   0.9, 0.05, 0.05,
        ];
        AttentionMaps {
            layers: 1,
            heads: 2,
            tokens: 3,
            data,
        }
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn rows_are_renormalised_not_columns() {
        // max(heads) + I = [[1.5, 0.6, 0.25], [0.3, 1.8, 0.4], [0.9, 0.2, 1.6]].
        let m = two_heads().rollout_matrix(HeadFusion::Max, 0.0);
        let right = [1.5 / 2.35, 0.6 / 2.35, 0.25 / 2.35];
        let vit_explain = [1.5 / 2.35, 0.6 / 2.5, 0.25 / 2.7];
        assert_close(&m[..3], &right);
        assert!(
            (m[2] - vit_explain[2]).abs() > 0.01,
            "the two must differ here"
        );
        assert_close(&m[3..6], &[0.3 / 2.5, 1.8 / 2.5, 0.4 / 2.5]);
        assert_close(&m[6..], &[0.9 / 2.7, 0.2 / 2.7, 1.6 / 2.7]);
    }

    #[test]
    fn two_layers_multiply_through() {
        let one = two_heads();
        let a = one.rollout_matrix(HeadFusion::Max, 0.0);
        let two = AttentionMaps {
            layers: 2,
            data: [one.data.clone(), one.data].concat(),
            ..one
        };
        let m = two.rollout_matrix(HeadFusion::Max, 0.0);
        // Class row of A . A, written out.
        let row: Vec<f32> = (0..3)
            .map(|j| a[0] * a[j] + a[1] * a[3 + j] + a[2] * a[6 + j])
            .collect();
        assert_close(&m[..3], &row);
        assert_close(&two.rollout(HeadFusion::Max, 0.0).values, &row[1..]);
    }

    #[test]
    fn head_fusions_and_per_head_maps() {
        let t = 2;
        let maps = AttentionMaps {
            layers: 1,
            heads: 2,
            tokens: t,
            data: vec![0.2, 0.8, 0.5, 0.5, 0.6, 0.4, 0.5, 0.5],
        };
        assert_eq!(maps.fuse(0, HeadFusion::Max)[..2], [0.6, 0.8]);
        assert_eq!(maps.fuse(0, HeadFusion::Min)[..2], [0.2, 0.4]);
        let heads = maps.last_layer_cls_maps();
        assert_eq!(heads.len(), 2);
        assert_eq!(heads[1].values, vec![0.4]);
    }

    #[test]
    fn discard_spares_the_class_token() {
        let mut m = vec![0.0, 0.3, 0.1, 0.6];
        discard_weakest(&mut m, 0.75);
        assert_eq!(m, vec![0.0, 0.0, 0.0, 0.6]);
    }
}
