//! Vectorised CPU kernels for inference on burn's Flex backend: exact GELU, and a block's
//! attention computed straight from its fused `qkv` projection.
//!
//! Why they exist: a profile of batch-64 inference (bench/README.md) put 20% of the time in
//! Flex's GELU, which calls the scalar `libm::erff` once per element, 28% in Flex's attention
//! kernel (a scalar softmax around two tiny gemms per head) and 9% in the copies that split
//! `qkv` into heads and merge them back. These kernels do the same arithmetic in loops the
//! compiler vectorises, and read and write the heads in place.
//!
//! They run only where that profile applies: a Flex tensor in f32 with no autodiff. Training
//! (which needs burn's gradients), GPUs and other float types keep burn's own ops, so the model
//! computes the same function everywhere; the tests below hold both paths to each other.

use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;

/// The kernels as a burn backend extension, implemented for Flex only.
#[backend_extension(Flex)]
pub trait VitKernels: Backend {
    /// `0.5 x (1 + erf(x / sqrt 2))`, element-wise.
    fn vit_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[B, T, 3D]` (timm's `qkv` output: q, k, v, each `h` heads of `D / h`) -> `[B, T, D]`,
    /// the heads' outputs side by side, ready for `proj`.
    fn vit_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;
    /// As [`VitKernels::vit_attention`], plus the probabilities `[B, h, T, T]`.
    fn vit_attention_probs(
        qkv: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl VitKernels for Flex {
    fn vit_gelu(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let mut values = f32_values(x);
        gelu_in_place(&mut values);
        flex_f32(values, shape)
    }

    fn vit_attention(qkv: FlexTensor, heads: usize) -> FlexTensor {
        run_attention(qkv, heads, false).0
    }

    fn vit_attention_probs(qkv: FlexTensor, heads: usize) -> (FlexTensor, FlexTensor) {
        let (out, probs) = run_attention(qkv, heads, true);
        (out, probs.expect("probabilities were asked for"))
    }
}

/// Whether `x` is where these kernels apply: Flex, f32, no autodiff.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    let device = x.device();
    x.dtype() == DType::F32 && !device.is_autodiff() && device == Device::flex()
}

/// GELU (exact, erf-based, as timm's `nn.GELU`) through the vectorised kernel where it applies,
/// else through `otherwise` (burn's own).
pub fn gelu_or<const D: usize>(
    x: Tensor<D>,
    otherwise: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    if !applies(&x) {
        return otherwise(x);
    }
    Tensor::from_dispatch(<Dispatch as VitKernels>::vit_gelu(x.into_dispatch()))
}

/// Attention from `qkv` `[B, T, 3D]` to `[B, T, D]` through the kernel where it applies, else
/// through `otherwise`.
pub fn attention_or(
    qkv: Tensor<3>,
    heads: usize,
    otherwise: impl FnOnce(Tensor<3>) -> Tensor<3>,
) -> Tensor<3> {
    if !applies(&qkv) {
        return otherwise(qkv);
    }
    let out = <Dispatch as VitKernels>::vit_attention(qkv.into_dispatch(), heads);
    Tensor::from_dispatch(out)
}

/// As [`attention_or`], plus the probabilities `[B, h, T, T]`.
pub fn attention_with_probs_or(
    qkv: Tensor<3>,
    heads: usize,
    otherwise: impl FnOnce(Tensor<3>) -> (Tensor<3>, Tensor<4>),
) -> (Tensor<3>, Tensor<4>) {
    if !applies(&qkv) {
        return otherwise(qkv);
    }
    let (out, probs) = <Dispatch as VitKernels>::vit_attention_probs(qkv.into_dispatch(), heads);
    (Tensor::from_dispatch(out), Tensor::from_dispatch(probs))
}

/// The tensor's values in row-major order, without a copy when it is the only owner of a
/// contiguous buffer.
fn f32_values(x: FlexTensor) -> Vec<f32> {
    x.into_data()
        .try_into_vec::<f32>()
        .expect("the kernels are only called on f32 tensors")
}

fn flex_f32(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn run_attention(
    qkv: FlexTensor,
    heads: usize,
    want_probs: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    let [b, t, three_d] = qkv.layout().shape().to_vec()[..] else {
        panic!("vit_attention: qkv must be [B, T, 3D]");
    };
    let dim = three_d / 3;
    assert!(
        three_d == 3 * dim && heads > 0 && dim.is_multiple_of(heads),
        "vit_attention: qkv width {three_d} does not split into q, k, v of {heads} heads"
    );
    let values = f32_values(qkv);
    let mut out = vec![0f32; b * t * dim];
    let mut probs = want_probs.then(|| vec![0f32; b * heads * t * t]);
    attention_qkv(&values, [b, t, dim, heads], &mut out, probs.as_deref_mut());
    (
        flex_f32(out, vec![b, t, dim]),
        probs.map(|p| flex_f32(p, vec![b, heads, t, t])),
    )
}

// ---------------------------------------------------------------------------------------------
// The kernels, on plain slices.
//
// Each body is written once, `#[inline(always)]`, and compiled again inside functions that
// enable AVX-512 or AVX2, chosen at run time: the crate itself is built for baseline
// x86-64 (SSE2), where the same loops get only 4 lanes. In wasm, `simd128` is on for the whole
// module (.cargo/config.toml), so the plain body is already vectorised.
// ---------------------------------------------------------------------------------------------

/// Lanes the loops are blocked by: one AVX-512 register of f32.
const LANES: usize = 16;

/// Defines `pub fn $name` that runs `$body` compiled for the best vector unit this CPU has.
macro_rules! vectorised {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) => $body:ident) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has just been checked for the features `avx512` enables.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above, for `avx2`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

vectorised! {
    /// GELU of every element, in place.
    fn gelu_in_place(x: &mut [f32]) => gelu_body
}

vectorised! {
    /// Multi-head attention of `B` sequences of `T` tokens, from timm's fused projection.
    ///
    /// `qkv` is `[B, T, 3, h, d]` (row-major, `D = h d`), `out` receives `[B, T, D]`, and
    /// `probs`, when given, `[B, h, T, T]`.
    fn attention_qkv(qkv: &[f32], shape: [usize; 4], out: &mut [f32], probs: Option<&mut [f32]>)
        => attention_body
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    for v in x {
        *v = gelu_scalar(*v);
    }
}

/// `e^x`, to a few ulp, in arithmetic the compiler can vectorise (`f32::exp` is a
/// libm call per element). Range reduction `x = n ln 2 + r`, `|r| <= ln 2 / 2`, with `ln 2` split
/// in two for exactness (Cody and Waite); `e^r` by its Taylor series to `r^7`, whose remainder
/// is below 1e-8 relative there; `2^n` built in the exponent bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // exactly representable, so n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Keeps 2^n a normal float; e^-87 is already below f32's smallest normal.
    let x = x.clamp(-87.0, 88.0);
    // Adding 1.5 * 2^23 rounds to the nearest integer n and leaves n in the low bits, so
    // neither a rounding instruction nor a float-to-int conversion (which does not vectorise:
    // `as` saturates) is needed.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// `0.5 x (1 + erf(x / sqrt 2))`. `1 + erf(z)` is computed as `2 - erfc(z)` for `z >= 0` and
/// as `erfc(-z)` below, so the negative tail keeps its relative precision; `erfc` is
/// Abramowitz and Stegun's 7.1.26 (absolute error below 1.5e-7, 4e-7 once evaluated in f32,
/// against libm's one ulp: less than the rounding of the matmuls on either side).
#[inline(always)]
fn gelu_scalar(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_72,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let z = x * std::f32::consts::FRAC_1_SQRT_2;
    let a = z.abs();
    let t = 1.0 / (1.0 + P * a);
    let mut poly = A[4];
    for c in [A[3], A[2], A[1], A[0]] {
        poly = poly * t + c;
    }
    let erfc = t * poly * exp(-a * a);
    let one_plus_erf = if z >= 0.0 { 2.0 - erfc } else { erfc };
    0.5 * x * one_plus_erf
}

/// Query rows one tile of the attention kernel covers: their independent sums keep the vector
/// adders busy instead of each waiting for the previous add.
const ROWS: usize = 4;

#[inline(always)]
fn attention_body(qkv: &[f32], shape: [usize; 4], out: &mut [f32], mut probs: Option<&mut [f32]>) {
    let [b, t, dim, heads] = shape;
    if t == 0 || dim == 0 {
        return;
    }
    let d = dim / heads;
    let scale = (d as f32).powf(-0.5);
    let row = 3 * dim; // one token's q, k and v
    // Keys padded to whole vectors; the padding's scores are computed and then ignored.
    let t_pad = t.div_ceil(LANES) * LANES;
    let mut keys_t = vec![0f32; d * t_pad]; // one head's K^T, [d, t_pad]
    let mut scores = vec![0f32; ROWS * t_pad]; // one tile's rows of scores, then probabilities
    let mut outputs = vec![0f32; ROWS * d]; // one tile's rows of output
    let sequences = qkv.chunks_exact(t * row).zip(out.chunks_exact_mut(t * dim));
    for (n, (seq, out)) in sequences.take(b).enumerate() {
        for h in 0..heads {
            let k_at = dim + h * d;
            for (j, token) in seq.chunks_exact(row).enumerate() {
                for (c, &k) in token[k_at..k_at + d].iter().enumerate() {
                    keys_t[c * t_pad + j] = k;
                }
            }
            let head = Head {
                seq,
                keys_t: &keys_t,
                row,
                d,
                t,
                t_pad,
                q_at: h * d,
                v_at: 2 * dim + h * d,
                scale,
            };
            for i0 in (0..t).step_by(ROWS) {
                // The last tile repeats its last row where the sequence runs out.
                let rows: [usize; ROWS] = std::array::from_fn(|r| (i0 + r).min(t - 1));
                head.tile(rows, &mut scores, &mut outputs);
                for (r, i) in (i0..t.min(i0 + ROWS)).enumerate() {
                    out[i * dim + h * d..][..d].copy_from_slice(&outputs[r * d..][..d]);
                    if let Some(probs) = probs.as_deref_mut() {
                        let at = ((n * heads + h) * t + i) * t;
                        probs[at..at + t].copy_from_slice(&scores[r * t_pad..r * t_pad + t]);
                    }
                }
            }
        }
    }
}

/// One head of one sequence, as the attention kernel reads it.
struct Head<'a> {
    /// The sequence's `qkv` rows, `[T, 3D]`.
    seq: &'a [f32],
    /// The head's keys transposed and padded, `[d, t_pad]`.
    keys_t: &'a [f32],
    row: usize,
    d: usize,
    t: usize,
    t_pad: usize,
    /// Where the head's query and value sit in a `qkv` row.
    q_at: usize,
    v_at: usize,
    /// `1 / sqrt d`.
    scale: f32,
}

/// `acc += a x`, a whole vector.
#[inline(always)]
fn axpy(acc: &mut [f32; LANES], a: f32, x: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] += a * x[l];
    }
}

/// The vector of `LANES` values at `at`.
#[inline(always)]
fn vector(values: &[f32], at: usize) -> &[f32; LANES] {
    values[at..at + LANES].try_into().expect("a whole vector")
}

impl Head<'_> {
    /// Query rows `rows`: their probabilities, left in `scores` (`ROWS` rows of `t_pad`), and
    /// their outputs, in `out` (`ROWS` rows of `d`).
    #[inline(always)]
    fn tile(&self, rows: [usize; ROWS], scores: &mut [f32], out: &mut [f32]) {
        let (d, t, t_pad, scale) = (self.d, self.t, self.t_pad, self.scale);
        let q: [&[f32]; ROWS] = rows.map(|i| &self.seq[i * self.row + self.q_at..][..d]);
        // scores = q K^T / sqrt d, one vector of keys at a time. Four named sums, not an array
        // indexed by row: the compiler keeps those in registers.
        for kb in (0..t_pad).step_by(LANES) {
            let [mut s0, mut s1, mut s2, mut s3] = [[0f32; LANES]; ROWS];
            let qs = q[0].iter().zip(q[1]).zip(q[2]).zip(q[3]);
            for (k, (((&a, &b), &c), &e)) in self.keys_t.chunks_exact(t_pad).zip(qs) {
                let k = vector(k, kb);
                axpy(&mut s0, a, k);
                axpy(&mut s1, b, k);
                axpy(&mut s2, c, k);
                axpy(&mut s3, e, k);
            }
            for (r, sums) in [s0, s1, s2, s3].iter().enumerate() {
                let s = &mut scores[r * t_pad + kb..][..LANES];
                for l in 0..LANES {
                    s[l] = sums[l] * scale;
                }
            }
        }
        for r in 0..ROWS {
            softmax_in_place(&mut scores[r * t_pad..r * t_pad + t]);
        }
        // out = P V, one vector of channels at a time; channels past the last whole vector
        // (heads narrower than a vector, as in small test models) one by one.
        let p: [&[f32]; ROWS] = std::array::from_fn(|r| &scores[r * t_pad..r * t_pad + t]);
        let tokens = || {
            self.seq
                .chunks_exact(self.row)
                .zip(p[0].iter().zip(p[1]).zip(p[2]).zip(p[3]))
        };
        for cb in (0..d / LANES * LANES).step_by(LANES) {
            let [mut o0, mut o1, mut o2, mut o3] = [[0f32; LANES]; ROWS];
            for (token, (((&a, &b), &c), &e)) in tokens() {
                let v = vector(token, self.v_at + cb);
                axpy(&mut o0, a, v);
                axpy(&mut o1, b, v);
                axpy(&mut o2, c, v);
                axpy(&mut o3, e, v);
            }
            for (r, o) in [o0, o1, o2, o3].iter().enumerate() {
                out[r * d + cb..][..LANES].copy_from_slice(o);
            }
        }
        for c in d / LANES * LANES..d {
            (0..ROWS).for_each(|r| out[r * d + c] = 0.0);
            for (token, (((&a, &b), &c2), &e)) in tokens() {
                let v = token[self.v_at + c];
                for (r, p) in [a, b, c2, e].into_iter().enumerate() {
                    out[r * d + c] += p * v;
                }
            }
        }
    }
}

/// Numerically stable softmax of one row; max and sum are kept per lane so that they vectorise
/// (a plain float fold is sequential, since float addition is not associative).
#[inline(always)]
fn softmax_in_place(p: &mut [f32]) {
    let mut max = [f32::NEG_INFINITY; LANES];
    let (blocks, tail) = p.as_chunks::<LANES>();
    for block in blocks {
        for l in 0..LANES {
            max[l] = max[l].max(block[l]);
        }
    }
    let max = tail
        .iter()
        .chain(&max)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = [0f32; LANES];
    let (blocks, tail) = p.as_chunks_mut::<LANES>();
    for block in blocks {
        for l in 0..LANES {
            block[l] = exp(block[l] - max);
            sum[l] += block[l];
        }
    }
    let mut total: f32 = sum.iter().sum();
    for v in tail {
        *v = exp(*v - max);
        total += *v;
    }
    let inv = 1.0 / total;
    for v in p {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Attention;
    use burn::tensor::activation;

    /// Deterministic values spread over the range activations take.
    fn ramp(n: usize, spread: f32) -> Vec<f32> {
        (0..n)
            .map(|i| spread * ((i as f32 * 0.618_034).fract() * 2.0 - 1.0))
            .collect()
    }

    #[test]
    fn exp_matches_libm() {
        for i in 0..=20_000 {
            let x = -87.0 + i as f32 * (87.0 + 20.0) / 20_000.0;
            let (ours, want) = (exp(x), x.exp());
            assert!(
                ((ours - want) / want).abs() < 4.0 * f32::EPSILON,
                "exp({x}) = {ours}, libm {want}"
            );
        }
        assert!(exp(-200.0) < 1e-37 && exp(-200.0) >= 0.0);
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        for i in 0..=40_000 {
            let x = -10.0 + i as f32 * 20.0 / 40_000.0;
            let want = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            let ours = gelu_scalar(x) as f64;
            // A&S's 1.5e-7 on erf plus f32 rounding inside it (4e-7 in all), scaled by x / 2,
            // plus f32 rounding of the result.
            let bound = 4e-7 * 0.5 * (x as f64).abs() + 2.0 * f32::EPSILON as f64 * want.abs();
            assert!(
                (ours - want).abs() <= bound,
                "gelu({x}) = {ours}, want {want}"
            );
        }
    }

    /// erf in f64, from its Taylor series (|x| <= 3) or continued fraction (beyond), as a
    /// reference independent of the kernel's approximation.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let y = if a <= 3.0 {
            let (mut term, mut sum, mut k) = (a, a, 0.0);
            while term.abs() > 1e-17 * sum.abs() {
                k += 1.0;
                term *= -a * a / k;
                sum += term / (2.0 * k + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc(a) = exp(-a²)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
        };
        y.copysign(x)
    }

    #[test]
    fn gelu_kernel_agrees_with_burn() {
        let device = Device::flex();
        let values = ramp(3 * 65 * 37, 6.0);
        let x = Tensor::<3>::from_data(TensorData::new(values, [3, 65, 37]), &device);
        assert!(applies(&x));
        let ours = gelu_or(x.clone(), |_| unreachable!("the kernel applies"));
        let theirs = activation::gelu(x);
        ours.into_data()
            .assert_approx_eq::<f32>(&theirs.into_data(), burn::tensor::Tolerance::absolute(1e-6));
    }

    /// burn's attention on the same `qkv`, split into heads and merged back by
    /// `model::Attention` itself.
    fn reference(qkv: Tensor<3>, heads: usize) -> (Tensor<3>, Tensor<4>) {
        let (q, k, v) = Attention::split_heads(qkv, heads);
        let scale = (q.dims()[3] as f64).powf(-0.5);
        let probs = activation::softmax(q.matmul(k.swap_dims(2, 3)) * scale, 3);
        (Attention::merge_heads(probs.clone().matmul(v)), probs)
    }

    #[test]
    fn attention_kernel_agrees_with_burn() {
        let device = Device::flex();
        // Head widths below, at and above a vector (8, 16, 32), and token counts that are not
        // whole vectors (5, 17, 65).
        for (b, t, dim, heads) in [
            (2, 17, 24, 3),
            (1, 5, 32, 2),
            (3, 65, 96, 3),
            (2, 65, 64, 4),
        ] {
            let values = ramp(b * t * 3 * dim, 2.0);
            let qkv = Tensor::<3>::from_data(TensorData::new(values, [b, t, 3 * dim]), &device);
            assert!(applies(&qkv));
            let (out, probs) =
                attention_with_probs_or(qkv.clone(), heads, |_| unreachable!("the kernel applies"));
            let (want_out, want_probs) = reference(qkv.clone(), heads);
            let tol = burn::tensor::Tolerance::absolute(1e-5);
            out.into_data()
                .assert_approx_eq::<f32>(&want_out.clone().into_data(), tol);
            probs
                .into_data()
                .assert_approx_eq::<f32>(&want_probs.into_data(), tol);
            let fast = attention_or(qkv, heads, |_| unreachable!("the kernel applies"));
            fast.into_data()
                .assert_approx_eq::<f32>(&want_out.into_data(), tol);
        }
    }

    #[test]
    fn kernels_step_aside_under_autodiff() {
        let device = Device::flex().autodiff();
        let x = Tensor::<3>::zeros([1, 2, 6], &device);
        assert!(!applies(&x));
        let fallbacks = std::cell::Cell::new(0);
        let fallback = |x| {
            fallbacks.set(fallbacks.get() + 1);
            x
        };
        let _ = gelu_or(x.clone(), fallback);
        let _ = attention_or(x.clone(), 2, fallback);
        let _ = attention_with_probs_or(x.clone(), 2, |x| {
            fallbacks.set(fallbacks.get() + 1);
            (x, Tensor::zeros([1, 2, 2, 2], &device))
        });
        assert_eq!(fallbacks.get(), 3, "every op went to burn's own");
    }
}
