//! Multi-head attention straight from timm's fused `qkv` projection, forward and backward,
//! reading and writing each head in place in the fused layouts, so that neither the head split
//! nor the merge copies anything.
//!
//! The products go to the `gemm` crate (burn-flex's own matrix product), which reads every
//! operand through its strides, transposed ones included, and picks its own vector unit at run
//! time; the softmax and its backward around them are ours. At the default training shape (a
//! replica's batch of 64, 145 tokens, 3 heads of 32) gemm ran the forward in 12 ms against
//! 16.5 for hand-tiled loops (four query rows against a vector of keys at a time), and the
//! backward in 16 ms against 25.

use std::mem::MaybeUninit;

use super::gelu::exp;
use super::matmul::{Matrix, product, product_raw, product_uninit};
use super::parallel::{self, Shared};
use super::reduce::{LANES, dot};
use super::switch::vectorised;

vectorised! {
    /// Multi-head attention of `B` sequences of `T` tokens, from timm's fused projection.
    ///
    /// `qkv` is `[B, T, 3, h, d]` (row-major, `D = h d`), `out` receives `[B, T, D]`, and
    /// `probs`, when given, `[B, h, T, T]`; every element of both is written, so neither needs
    /// initialising.
    fn attention_qkv(
        qkv: &[f32],
        shape: [usize; 4],
        out: &mut [MaybeUninit<f32>],
        probs: Option<&mut [MaybeUninit<f32>]>
    ) => attention_body
}

/// Per head: `P = softmax(Q K^T / sqrt d)` (into `probs` when given, else a scratch block),
/// then `O = P V` straight into the head's columns of `out`. The heads, cut into blocks of
/// query rows when there are fewer heads than threads to share them, run in parallel.
#[inline(always)]
fn attention_body(
    qkv: &[f32],
    shape: [usize; 4],
    out: &mut [MaybeUninit<f32>],
    probs: Option<&mut [MaybeUninit<f32>]>,
) {
    let [b, t, dim, heads] = shape;
    if b == 0 || t == 0 || dim == 0 {
        return;
    }
    assert!(
        qkv.len() >= b * t * 3 * dim && out.len() >= b * t * dim,
        "attention: buffers smaller than {shape:?}"
    );
    let d = dim / heads;
    let scale = (d as f32).powf(-0.5);
    let row = 3 * dim;
    let threads = parallel::threads();
    let blocks = if threads > 1 {
        (2 * threads).div_ceil(b * heads).clamp(1, t)
    } else {
        1
    };
    let block_rows = t.div_ceil(blocks);
    let (out_len, out) = (out.len(), Shared::new(out.as_mut_ptr().cast::<f32>()));
    let probs = probs.map(|p| {
        assert!(
            p.len() >= b * heads * t * t,
            "attention: probabilities too small"
        );
        Shared::new(p.as_mut_ptr())
    });
    parallel::for_each(b * heads * blocks, |chunk| {
        let (n, h, block) = (
            chunk / (heads * blocks),
            chunk / blocks % heads,
            chunk % blocks,
        );
        let rows = block * block_rows..((block + 1) * block_rows).min(t);
        if rows.is_empty() {
            return;
        }
        let seq = &qkv[n * t * row..][..t * row];
        let q = Matrix::rows(&seq[rows.start * row + h * d..], row, [rows.len(), d]);
        let k = Matrix::rows(&seq[dim + h * d..], row, [t, d]);
        let v = Matrix::rows(&seq[2 * dim + h * d..], row, [t, d]);
        let mut scratch = Vec::new();
        let p = match probs {
            // SAFETY: each chunk's rows of its own head's `[T, T]` are its own, inside `probs`
            // (asserted above), which stays borrowed for the whole loop.
            Some(probs) => unsafe {
                std::slice::from_raw_parts_mut(
                    probs.get().add(((n * heads + h) * t + rows.start) * t),
                    rows.len() * t,
                )
            },
            None => {
                scratch.resize(rows.len() * t, MaybeUninit::new(0f32));
                &mut scratch[..]
            }
        };
        product_uninit(p, t, q, k.t(), scale);
        // SAFETY: the product above wrote all of the block's scores.
        let p = unsafe { p.assume_init_mut() };
        for p in p.chunks_exact_mut(t) {
            softmax_in_place(p);
        }
        let at = (n * t + rows.start) * dim + h * d;
        // SAFETY: the block's rows of the head's columns, inside `out` (asserted above), are
        // written by this chunk alone; gemm writes them without reading them.
        unsafe {
            product_raw(
                out.get().add(at),
                out_len - at,
                dim,
                Matrix::rows(p, t, [rows.len(), t]),
                v,
            )
        };
    });
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

vectorised! {
    /// The gradient of [`attention_qkv`]'s input from the gradient of its output.
    ///
    /// `qkv` `[B, T, 3D]` is the forward's input and `probs` `[B, h, T, T]` its probabilities,
    /// `d_out` `[B, T, D]` the gradient of its output; `d_qkv` `[B, T, 3D]` receives the
    /// gradient of `qkv`, every element of it, so it need not be initialised.
    fn attention_backward_qkv(
        qkv: &[f32],
        probs: &[f32],
        d_out: &[f32],
        shape: [usize; 4],
        d_qkv: &mut [MaybeUninit<f32>]
    ) => attention_backward_body
}

/// Per head, with `P` its probabilities and `dO` the gradient of its output:
/// `dV = P^T dO`, `dP = dO V^T`, `dS = P (dP - rowsum(P dP))` (softmax's backward;
/// `rowsum(P dP)` equals `rowsum(dO O)`, so the output need not be kept), `dQ = dS K / sqrt d`
/// and `dK = dS^T Q / sqrt d`.
#[inline(always)]
fn attention_backward_body(
    qkv: &[f32],
    probs: &[f32],
    d_out: &[f32],
    shape: [usize; 4],
    d_qkv: &mut [MaybeUninit<f32>],
) {
    let [b, t, dim, heads] = shape;
    if t == 0 || dim == 0 {
        return;
    }
    let d = dim / heads;
    let scale = (d as f32).powf(-0.5);
    let row = 3 * dim;
    assert!(
        qkv.len() == b * t * row
            && d_qkv.len() == b * t * row
            && d_out.len() == b * t * dim
            && probs.len() == b * heads * t * t,
        "attention backward: buffers do not match the shape {shape:?}"
    );
    let mut ds = vec![0f32; t * t]; // dP, then dS
    let sequences = qkv
        .chunks_exact(t * row)
        .zip(d_qkv.chunks_exact_mut(t * row))
        .zip(d_out.chunks_exact(t * dim))
        .zip(probs.chunks_exact(heads * t * t));
    for (((seq, d_seq), d_out), probs) in sequences {
        for (h, p) in probs.chunks_exact(t * t).enumerate() {
            let (q_at, k_at, v_at) = (h * d, dim + h * d, 2 * dim + h * d);
            // Each head's q, k, v and dO: `[t, d]` at a row stride of 3D (or D).
            let q = Matrix::rows(&seq[q_at..], row, [t, d]);
            let k = Matrix::rows(&seq[k_at..], row, [t, d]);
            let v = Matrix::rows(&seq[v_at..], row, [t, d]);
            let d_o = Matrix::rows(&d_out[h * d..], dim, [t, d]);
            let p = Matrix::rows(p, t, [t, t]);
            product(&mut ds, t, d_o, v.t(), 1.0);
            for (ds, p) in ds.chunks_exact_mut(t).zip(p.data.chunks_exact(t)) {
                softmax_backward_in_place(p, ds);
            }
            let ds = Matrix::rows(&ds, t, [t, t]);
            product_uninit(&mut d_seq[q_at..], row, ds, k, scale);
            product_uninit(&mut d_seq[k_at..], row, ds.t(), q, scale);
            product_uninit(&mut d_seq[v_at..], row, p.t(), d_o, 1.0);
        }
    }
}

/// Softmax's backward on one row: `g = p (g - sum(p g))`, `g` the gradient of the
/// probabilities `p` in, of the scores out.
#[inline(always)]
fn softmax_backward_in_place(p: &[f32], g: &mut [f32]) {
    let sum = dot(p, g);
    for (g, &p) in g.iter_mut().zip(p) {
        *g = p * (*g - sum);
    }
}
