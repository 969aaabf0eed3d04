//! Other starting points for a fresh model than timm's random initialisation: mimetic
//! attention (Trockman & Kolter 2023) and 2-D sine-cosine positions, which the trainer's
//! recipes choose (`--attn-init`, `--pos-init`).

use burn::module::Param;
use burn::prelude::*;

use crate::model::{INIT_STD, VisionTransformer};

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
    /// the same for the row; the prefix tokens' positions (where `pos_embed` has them) are zero. Nearby patches get similar
    /// codes, so with mimetic attention (`q·k ≈ x·x`) every head starts by looking around its
    /// patch, the way a convolution does, instead of having to learn where patches are.
    pub fn sincos_positions(mut self) -> Self {
        let [_, rows, d] = self.pos_embed.dims();
        let quarter = d / 4;
        let first = self.prefix.with_positions(); // rows before the patches'
        let Some(grid) = rows
            .checked_sub(first)
            .and_then(crate::prefix::square_side)
            .filter(|_| quarter > 0)
        else {
            return self; // not a square grid: nothing sensible to code
        };
        let frequencies: Vec<f64> = (0..quarter)
            .map(|i| 10_000f64.powf(-(i as f64) / quarter as f64))
            .collect();
        let mut codes = vec![0f32; rows * d]; // [rows, D], the prefix tokens' rows stay zero
        for row in 0..grid {
            for col in 0..grid {
                let token = first + row * grid + col;
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
        let pos = Tensor::<3>::from_data(TensorData::new(codes, [1, rows, d]), &old.device())
            .cast(old.dtype());
        self.pos_embed = Param::from_tensor(pos);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VitConfig;

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
        // Without a position for the prefix tokens, the first row is the first patch's.
        let registers = VitConfig::new()
            .with_patch_size(4)
            .with_embed_dim(64)
            .with_num_heads(2)
            .with_depth(1)
            .with_reg_tokens(Some(2))
            .with_no_embed_class(Some(true))
            .init(&device)
            .unwrap()
            .sincos_positions();
        let q = registers
            .pos_embed
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(q.len(), 64 * d);
        assert_eq!(&q[..], &p[d..], "the same codes for the same patches");
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
