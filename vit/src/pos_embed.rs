//! Position embeddings for another patch grid, as timm's `resample_abs_pos_embed`.
//!
//! A model trained at one image size keeps its learned `pos_embed` at another by resampling
//! the patch positions as an image: the `[G, G, D]` grid of codes goes through PyTorch's
//! `F.interpolate(mode='bicubic', align_corners=False)` to the new grid, and the class token's
//! code (the prefix tokens) is kept as it is. PyTorch has two bicubic kernels and timm passes
//! `antialias=True` by default, so both are here:
//!
//! - [`Resample::Bicubic`]: PyTorch's plain kernel (`antialias=False`), Keys' cubic with
//!   `a = -0.75` on the four nearest samples, edges clamped;
//! - [`Resample::BicubicAntialias`]: PyTorch's antialiased kernel (`antialias=True`, what timm
//!   uses when it loads a checkpoint at another size), Keys' cubic with `a = -0.5` (as PIL),
//!   widened by the scale when shrinking and normalised to sum to one over the samples inside
//!   the grid.
//!
//! Both are separable; as in PyTorch every weight and sum is in f32, so the results agree with
//! torch's to rounding (tests/fixtures/make_pos_embed_reference.py makes the reference).

use burn::prelude::*;

use crate::error::{Result, VitError};

/// Which of PyTorch's bicubic kernels to resample with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Resample {
    /// `F.interpolate(mode='bicubic', antialias=False, align_corners=False)`.
    Bicubic,
    /// `F.interpolate(mode='bicubic', antialias=True, align_corners=False)`: timm's default.
    #[default]
    BicubicAntialias,
}

/// `pos` `[1, prefix + old_h * old_w, D]` -> `[1, prefix + new_h * new_w, D]`: the first `prefix`
/// tokens (the class token) kept, the patch grid resampled, rows then columns in token order.
///
/// Reads the tensor back synchronously, which every native device and Flex allow (not WebGPU
/// in a browser); the result is on `pos`'s device, in its float type.
pub fn resample_abs_pos_embed(
    pos: Tensor<3>,
    old_grid: [usize; 2],
    new_grid: [usize; 2],
    prefix: usize,
    mode: Resample,
) -> Result<Tensor<3>> {
    let [batch, tokens, dim] = pos.dims();
    if batch != 1 || tokens != prefix + old_grid[0] * old_grid[1] {
        return Err(VitError::InvalidConfig(format!(
            "pos_embed {:?} is not {prefix} prefix token(s) + a {}x{} grid",
            [batch, tokens, dim],
            old_grid[0],
            old_grid[1]
        )));
    }
    if new_grid.contains(&0) {
        return Err(VitError::InvalidConfig(format!(
            "cannot resample pos_embed to an empty {}x{} grid",
            new_grid[0], new_grid[1]
        )));
    }
    if old_grid == new_grid {
        return Ok(pos);
    }
    let (device, dtype) = (pos.device(), pos.dtype());
    let values = pos
        .into_data()
        .try_into_vec_as::<f32>()
        .map_err(|e| VitError::Weights(format!("reading pos_embed: {e:?}")))?;
    let (head, grid) = values.split_at(prefix * dim);
    let resampled = resample_grid(grid, dim, old_grid, new_grid, mode);
    let mut out = Vec::with_capacity(head.len() + resampled.len());
    out.extend_from_slice(head);
    out.extend(resampled);
    let n = prefix + new_grid[0] * new_grid[1];
    Ok(Tensor::<3>::from_data(TensorData::new(out, [1, n, dim]), &device).cast(dtype))
}

/// A `[h, w, dim]` grid (row-major, channels last, as tokens are) resampled to `new`.
pub fn resample_grid(
    grid: &[f32],
    dim: usize,
    old: [usize; 2],
    new: [usize; 2],
    mode: Resample,
) -> Vec<f32> {
    let [(oh, ow), (nh, nw)] = [(old[0], old[1]), (new[0], new[1])];
    assert_eq!(
        grid.len(),
        oh * ow * dim,
        "grid holds old_h * old_w * dim values"
    );
    // Columns first, then rows, as PyTorch's separable kernels go.
    let across = taps(ow, nw, mode);
    let mut wide = vec![0f32; oh * nw * dim]; // [oh, nw, dim]
    for y in 0..oh {
        for (x, (start, weights)) in across.iter().enumerate() {
            let out = &mut wide[(y * nw + x) * dim..][..dim];
            for (k, &w) in weights.iter().enumerate() {
                let src = &grid[(y * ow + start + k) * dim..][..dim];
                accumulate(out, src, w, k == 0);
            }
        }
    }
    let down = taps(oh, nh, mode);
    let mut out = vec![0f32; nh * nw * dim]; // [nh, nw, dim]
    for (y, (start, weights)) in down.iter().enumerate() {
        let row = &mut out[y * nw * dim..][..nw * dim];
        for (k, &w) in weights.iter().enumerate() {
            let src = &wide[(start + k) * nw * dim..][..nw * dim];
            accumulate(row, src, w, k == 0);
        }
    }
    out
}

/// `out = src * w` for the first tap, `out += src * w` after: PyTorch's order of sums.
fn accumulate(out: &mut [f32], src: &[f32], w: f32, first: bool) {
    for (o, s) in out.iter_mut().zip(src) {
        *o = if first { s * w } else { *o + s * w };
    }
}

/// For every output index along one axis, the first input index and the weights of the
/// consecutive inputs from there. The plain kernel's four taps may repeat an edge index
/// (PyTorch clamps them), so its taps are expanded to one weight per index in range.
fn taps(input: usize, output: usize, mode: Resample) -> Vec<(usize, Vec<f32>)> {
    // PyTorch's `area_pixel_compute_scale` without align_corners: input / output, in f32.
    let scale = input as f32 / output as f32;
    (0..output)
        .map(|i| match mode {
            Resample::Bicubic => plain_taps(i, input, scale),
            Resample::BicubicAntialias => antialias_taps(i, input, scale),
        })
        .collect()
}

/// Keys' cubic convolution kernel for |x| <= 1 (PyTorch's `cubic_convolution1`).
fn cubic1(x: f32, a: f32) -> f32 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

/// Keys' kernel for 1 < |x| < 2 (PyTorch's `cubic_convolution2`).
fn cubic2(x: f32, a: f32) -> f32 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// `upsample_bicubic2d`: the source position `(i + 0.5) * scale - 0.5` (not clamped at 0 for
/// cubic), its four neighbours with Keys' a = -0.75, indices clamped to the grid.
fn plain_taps(i: usize, input: usize, scale: f32) -> (usize, Vec<f32>) {
    const A: f32 = -0.75;
    let real = scale * (i as f32 + 0.5) - 0.5;
    let floor = real.floor();
    let t = real - floor;
    let w = [
        cubic2(t + 1.0, A),
        cubic1(t, A),
        cubic1(1.0 - t, A),
        cubic2(2.0 - t, A),
    ];
    let last = input as i64 - 1;
    let index = |k: i64| (floor as i64 - 1 + k).clamp(0, last) as usize;
    let (start, end) = (index(0), index(3));
    let mut weights = vec![0f32; end - start + 1];
    // Clamped taps land on the same edge sample; PyTorch adds them there in this order.
    let mut seen = vec![false; weights.len()];
    for (k, &wk) in w.iter().enumerate() {
        let j = index(k as i64) - start;
        weights[j] = if seen[j] { weights[j] + wk } else { wk };
        seen[j] = true;
    }
    (start, weights)
}

/// `_upsample_bicubic2d_aa`: PIL's resampling. The kernel (Keys' a = -0.5) is stretched by
/// the scale when shrinking, covers the samples within its support of the centre
/// `(i + 0.5) * scale`, and is normalised over them.
fn antialias_taps(i: usize, input: usize, scale: f32) -> (usize, Vec<f32>) {
    const A: f32 = -0.5;
    let filter = |x: f32| {
        let x = x.abs();
        if x < 1.0 {
            cubic1(x, A)
        } else if x < 2.0 {
            cubic2(x, A)
        } else {
            0.0
        }
    };
    let support = if scale >= 1.0 { 2.0 * scale } else { 2.0 };
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let center = scale * (i as f32 + 0.5);
    // C++ casts truncate toward zero; both bounds are clamped to the grid.
    let xmin = ((center - support + 0.5) as i64).max(0) as usize;
    let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
    let mut weights: Vec<f32> = (xmin..xmax)
        .map(|j| filter((j as f32 - center + 0.5) * invscale))
        .collect();
    let total: f32 = weights.iter().sum();
    if total != 0.0 {
        weights.iter_mut().for_each(|w| *w /= total);
    }
    (xmin, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_grid_is_unchanged_and_constant_grids_stay_constant() {
        let grid = vec![0.25f32; 3 * 3 * 2];
        for mode in [Resample::Bicubic, Resample::BicubicAntialias] {
            assert_eq!(resample_grid(&grid, 2, [3, 3], [3, 3], mode), grid);
            // Both kernels' weights sum to one: a constant field stays constant.
            for new in [[5, 5], [2, 2], [4, 7]] {
                let out = resample_grid(&grid, 2, [3, 3], new, mode);
                assert_eq!(out.len(), new[0] * new[1] * 2);
                assert!(out.iter().all(|v| (v - 0.25).abs() < 1e-6), "{out:?}");
            }
        }
    }

    #[test]
    fn the_class_token_is_kept_and_bad_shapes_are_refused() {
        let device = Device::flex();
        let values: Vec<f32> = (0..(1 + 4) * 3).map(|v| v as f32).collect();
        let pos = Tensor::<3>::from_data(TensorData::new(values.clone(), [1, 5, 3]), &device);
        let out =
            resample_abs_pos_embed(pos.clone(), [2, 2], [3, 3], 1, Resample::Bicubic).unwrap();
        assert_eq!(out.dims(), [1, 10, 3]);
        let out = out.into_data().try_into_vec_as::<f32>().unwrap();
        assert_eq!(&out[..3], &values[..3]);
        let e = resample_abs_pos_embed(pos, [3, 3], [4, 4], 1, Resample::Bicubic).unwrap_err();
        assert!(
            e.to_string().contains("not 1 prefix token(s) + a 3x3 grid"),
            "{e}"
        );
    }
}
