//! Attention rollout (Abnar & Zuidema, 2020): where the class token's information came from,
//! traced through every layer; in a model without a class token, the patches' mean's.
//!
//! Per layer: fuse the heads, optionally zero the weakest weights, add the identity for the
//! residual path, and re-normalise each *row* (each query's attention sums to one). jacobgil's
//! vit-explain divides by `a.sum(dim=-1)` without `keepdim`, which broadcasts over columns; that
//! bug is not repeated here. The layers are multiplied through, and the starting token's row
//! over the patches, reshaped to the patch grid, is the map. The maps know the model's prefix
//! tokens ([`AttentionMaps::prefix`]), so the class token, the registers and the patches are
//! where [`crate::prefix`] says.
//!
//! It runs on plain `f32` slices for one image: the page already has them after its asynchronous
//! read. Only the starting row is carried through the layers (a vector times each layer's
//! matrix), so a DINOv2 at 518 px (1374 tokens) costs milliseconds per layer, not seconds.

use serde::{Deserialize, Serialize};

use crate::prefix::PrefixTokens;

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
    /// The model's prefix tokens: the first `prefix.count()` rows and columns are theirs.
    pub prefix: PrefixTokens,
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

    /// The patch grid's side.
    pub(crate) fn grid(&self) -> usize {
        let patches = self.tokens.saturating_sub(self.prefix.count());
        (patches as f64).sqrt().round() as usize
    }

    /// Weights over the tokens of where rollout starts: the class token, or the patches'
    /// mean in a model without one ([`crate::explain::Token::start`]).
    pub fn start(&self) -> Vec<f32> {
        let mut w = vec![0.0; self.tokens];
        if self.prefix.class {
            w[0] = 1.0;
        } else {
            let first = self.prefix.count().min(self.tokens);
            let n = (self.tokens - first).max(1) as f32;
            w[first..].iter_mut().for_each(|v| *v = 1.0 / n);
        }
        w
    }

    /// The values of the patches, of a vector over every token, on their grid.
    pub(crate) fn patch_map(&self, values: &[f32]) -> Heatmap {
        Heatmap {
            grid: self.grid(),
            values: values
                .get(self.prefix.count()..)
                .unwrap_or_default()
                .to_vec(),
        }
    }

    /// The attention rollout from the class token (the patches' mean without one) over the
    /// patches.
    ///
    /// `discard_ratio` in [0, 1) zeroes that fraction of each fused layer's smallest weights
    /// (never the class token's attention to itself) before the identity is added.
    pub fn rollout(&self, fusion: HeadFusion, discard_ratio: f32) -> Heatmap {
        let factors = self.rollout_factors(self.layers, discard_ratio, |l| self.fuse(l, fusion));
        self.patch_map(&row_through(&self.start(), &factors, self.tokens))
    }

    /// Rollout's factor for each of layers `1..=through`: the layer's matrix (`matrix(layer)`,
    /// layers from 0), its `discard_ratio` weakest weights zeroed (never the class token's
    /// attention to itself), the identity added, each row re-normalised. The one loop behind
    /// [`AttentionMaps::rollout`] and `crate::explain`'s rollout from any token, either way.
    pub(crate) fn rollout_factors(
        &self,
        through: usize,
        discard_ratio: f32,
        matrix: impl Fn(usize) -> Vec<f32>,
    ) -> Vec<Vec<f32>> {
        let spare = self.prefix.class.then_some(0); // the class token's row and column
        (0..through)
            .map(|layer| {
                let mut m = matrix(layer);
                discard_weakest(&mut m, discard_ratio, spare);
                renormalised(m, self.tokens)
            })
            .collect()
    }

    /// The last layer's attention from the class token (the patches' mean without one) over
    /// the patches, one map per head.
    pub fn last_layer_cls_maps(&self) -> Vec<Heatmap> {
        let start = self.start();
        (0..self.heads)
            .map(|h| {
                let row = vec_mat(&start, self.matrix(self.layers - 1, h), self.tokens);
                self.patch_map(&row)
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

/// `a + I` with each row divided by its sum: one layer's rollout factor.
fn renormalised(mut a: Vec<f32>, t: usize) -> Vec<f32> {
    for i in 0..t {
        a[i * t + i] += 1.0;
    }
    for row in a.chunks_mut(t) {
        let sum: f32 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    a
}

/// `wᵀ·F_n·…·F_1` for the factors `[F_1, …, F_n]`: the rows `w` weighs, of the product that
/// rollout forms (`R ← F·R` layer by layer), without forming it.
pub(crate) fn row_through(w: &[f32], factors: &[Vec<f32>], t: usize) -> Vec<f32> {
    factors
        .iter()
        .rev()
        .fold(w.to_vec(), |v, f| vec_mat(&v, f, t))
}

/// `F_n·…·F_1·w`: the columns `w` weighs, of the same product.
pub(crate) fn column_through(w: &[f32], factors: &[Vec<f32>], t: usize) -> Vec<f32> {
    factors.iter().fold(w.to_vec(), |u, f| mat_vec(f, &u, t))
}

/// Zeroes the `ratio` smallest entries of the flattened matrix, sparing the diagonal entry of
/// token `spare` (the class token's attention to itself, vit-explain's flat index 0).
fn discard_weakest(m: &mut [f32], ratio: f32, spare: Option<usize>) {
    let count = (m.len() as f32 * ratio) as usize;
    if count == 0 {
        return;
    }
    let t = (m.len() as f64).sqrt().round() as usize;
    let spared = spare.map(|i| i * t + i);
    let mut order: Vec<usize> = (0..m.len()).collect();
    order.sort_by(|&a, &b| m[a].total_cmp(&m[b]).then(a.cmp(&b)));
    for &i in order.iter().take(count) {
        if Some(i) != spared {
            m[i] = 0.0;
        }
    }
}

/// `vᵀ·m` for a `t x t` row-major `m`.
pub(crate) fn vec_mat(v: &[f32], m: &[f32], t: usize) -> Vec<f32> {
    let mut out = vec![0.0; t];
    for (k, &vk) in v.iter().enumerate() {
        if vk == 0.0 {
            continue;
        }
        out.iter_mut()
            .zip(&m[k * t..(k + 1) * t])
            .for_each(|(o, &x)| *o += vk * x);
    }
    out
}

/// `m·v` for a `t x t` row-major `m`.
pub(crate) fn mat_vec(m: &[f32], v: &[f32], t: usize) -> Vec<f32> {
    m.chunks_exact(t)
        .map(|row| row.iter().zip(v).map(|(a, b)| a * b).sum())
        .collect()
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

    impl AttentionMaps {
        /// The whole `tokens x tokens` product of the layers' factors, for the tests to read
        /// rows of.
        fn rollout_matrix(&self, fusion: HeadFusion, discard_ratio: f32) -> Vec<f32> {
            let t = self.tokens;
            (0..self.layers).fold(identity(t), |result, layer| {
                let mut fused = self.fuse(layer, fusion);
                discard_weakest(&mut fused, discard_ratio, Some(0));
                matmul(&renormalised(fused, t), &result, t)
            })
        }
    }

    /// 1 layer, 1 head, 5 tokens, every query attending only to patch 2 (token 3).
    fn focused() -> AttentionMaps {
        let t = 5;
        let mut data = vec![0.0; t * t];
        (0..t).for_each(|q| data[q * t + 3] = 1.0);
        AttentionMaps {
            layers: 1,
            heads: 1,
            tokens: t,
            prefix: PrefixTokens::CLASS,
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
            prefix: PrefixTokens::CLASS,
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
        assert_close(
            &two_heads().rollout(HeadFusion::Max, 0.0).values,
            &right[1..],
        );
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
            prefix: PrefixTokens::CLASS,
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
        discard_weakest(&mut m, 0.75, Some(0));
        assert_eq!(m, vec![0.0, 0.0, 0.0, 0.6]);
        let mut m = vec![0.0, 0.3, 0.1, 0.6];
        discard_weakest(&mut m, 0.75, None);
        assert_eq!(m, vec![0.0, 0.0, 0.0, 0.6], "zero stays zero");
        let mut m = vec![0.2, 0.3, 0.1, 0.6];
        discard_weakest(&mut m, 0.5, Some(1));
        assert_eq!(m, vec![0.0, 0.3, 0.0, 0.6], "token 1's own weight spared");
    }

    /// A register in front of the patches and no class token: rollout starts from the mean of
    /// the patches' rows, and the map leaves the register out.
    #[test]
    fn without_a_class_token_rollout_starts_from_the_patches() {
        // 1 register + 4 patches; patch rows attend to the register or to patch 3 (token 3).
        let t = 5;
        let mut data = vec![0.0; t * t];
        data[0] = 1.0; // the register attends to itself
        for q in 1..t {
            data[q * t + if q % 2 == 0 { 0 } else { 3 }] = 1.0;
        }
        let maps = AttentionMaps {
            layers: 1,
            heads: 1,
            tokens: t,
            prefix: PrefixTokens {
                class: false,
                registers: 1,
                embedded: false,
                distillation: false,
            },
            data,
        };
        let start = maps.start();
        assert_eq!(start, vec![0.0, 0.25, 0.25, 0.25, 0.25]);
        let map = maps.rollout(HeadFusion::Mean, 0.0);
        assert_eq!(map.grid, 2);
        // Each patch row of (A + I) / 2: 0.5 on itself, 0.5 on the register or on token 3;
        // their mean over the patches (the register's column left out of the map).
        assert_eq!(map.values, vec![0.125, 0.125, 0.125 + 0.25, 0.125]);
        let full = maps.rollout_matrix(HeadFusion::Mean, 0.0);
        let mean: Vec<f32> = (1..t)
            .map(|j| (1..t).map(|i| full[i * t + j]).sum::<f32>() / 4.0)
            .collect();
        assert_close(&map.values, &mean);
        assert_eq!(
            maps.last_layer_cls_maps()[0].values,
            vec![0.0, 0.0, 0.5, 0.0]
        );
    }
}
