//! Sums that vectorise, for the kernels' per-row reductions.

/// Lanes of partial sums, so that reductions vectorise: a float sum in order cannot be
/// reordered by the compiler. One AVX-512 register of f32.
pub(super) const LANES: usize = 16;

/// The sum of `x`.
#[inline(always)]
pub(super) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The dot product of `x` and `y`, which have one length.
#[inline(always)]
pub(super) fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (xs, ys) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let tail: f32 = xs
        .remainder()
        .iter()
        .zip(ys.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (xc, yc) in xs.zip(ys) {
        for ((a, &u), &v) in acc.iter_mut().zip(xc).zip(yc) {
            *a += u * v;
        }
    }
    acc.iter().sum::<f32>() + tail
}
