//! Matrix products for the kernels, on the `gemm` crate (burn-flex's own matrix product), which
//! reads every operand through its strides, transposed ones included, and picks its own vector
//! unit at run time. The attention reads its heads in place through these strided views, and
//! the linear layer its transposed operands in the backward pass, so neither copies anything.
//! Products above a size are split by columns among the threads ([`super::parallel`]).

use std::mem::MaybeUninit;

use super::parallel::{self, Shared};

/// A strided view of a matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    pub(super) data: &'a [f32],
    rs: usize,
    cs: usize,
    shape: [usize; 2],
}

impl<'a> Matrix<'a> {
    /// Rows of `shape[1]` contiguous elements, `rs` apart.
    pub(super) fn rows(data: &'a [f32], rs: usize, shape: [usize; 2]) -> Self {
        let view = Matrix {
            data,
            rs,
            cs: 1,
            shape,
        };
        assert!(
            view.last().is_none_or(|last| last < data.len()),
            "a {shape:?} matrix view at row stride {rs} overruns its buffer of {}",
            data.len()
        );
        view
    }

    /// The transpose, without a copy.
    pub(super) fn t(self) -> Self {
        Matrix {
            rs: self.cs,
            cs: self.rs,
            shape: [self.shape[1], self.shape[0]],
            ..self
        }
    }

    /// The offset of the last element, or `None` for an empty view.
    fn last(&self) -> Option<usize> {
        let [rows, cols] = self.shape;
        (rows > 0 && cols > 0).then(|| (rows - 1) * self.rs + (cols - 1) * self.cs)
    }
}

/// `out = scale A B`, `out` row-major at row stride `out_rs`; its old values are not read.
pub(super) fn product(out: &mut [f32], out_rs: usize, a: Matrix, b: Matrix, scale: f32) {
    // SAFETY: `out` is a live slice of `out.len()` elements.
    unsafe { gemm_into(out.as_mut_ptr(), out.len(), out_rs, a, b, scale, false) }
}

/// [`product`] into memory that may not be initialised yet; it is, in the `[m, n]` at row
/// stride `out_rs` that the product covers, when this returns.
pub(super) fn product_uninit(
    out: &mut [MaybeUninit<f32>],
    out_rs: usize,
    a: Matrix,
    b: Matrix,
    scale: f32,
) {
    // SAFETY: `out` is a live slice of `out.len()` elements, which `MaybeUninit` lets gemm
    // write without their having been initialised; it reads none of them.
    unsafe {
        gemm_into(
            out.as_mut_ptr().cast(),
            out.len(),
            out_rs,
            a,
            b,
            scale,
            false,
        )
    }
}

/// `out = A B` through a pointer, for pieces of one buffer that chunks on several threads
/// write at once.
///
/// # Safety
/// `out` must be valid for writes of `out_len` floats, which no one else reads or writes
/// meanwhile in the `[m, n]` at row stride `out_rs` that the product covers.
pub(super) unsafe fn product_raw(
    out: *mut f32,
    out_len: usize,
    out_rs: usize,
    a: Matrix,
    b: Matrix,
) {
    // SAFETY: passed on from the caller.
    unsafe { gemm_into(out, out_len, out_rs, a, b, 1.0, false) }
}

/// A new buffer of `len` floats, handed to `fill` without being zeroed first: the products
/// into it then write every element once instead of twice. Zeroing the attention's buffers
/// (its probabilities are 16 MB a block at batch 64) took 2–3% of a training step.
///
/// # Safety
/// `fill` must initialise every element.
pub(super) unsafe fn unzeroed(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the caller vouches that `fill` initialised all `len` elements.
    unsafe { out.set_len(len) };
    out
}

/// `out += A B`, `out` row-major at row stride `out_rs`.
pub(super) fn product_add(out: &mut [f32], out_rs: usize, a: Matrix, b: Matrix) {
    // SAFETY: `out` is a live, initialised slice of `out.len()` elements.
    unsafe { gemm_into(out.as_mut_ptr(), out.len(), out_rs, a, b, 1.0, true) }
}

/// `A B` as a new row-major `[m, n]` matrix.
///
/// The output is not zeroed first: gemm writes every element without reading it, and zeroing
/// (a `memset` over recycled memory) cost 1.4% of a training step in the linear backward.
pub(super) fn product_new(a: Matrix, b: Matrix) -> Vec<f32> {
    let ([m, _], [_, n]) = (a.shape, b.shape);
    // SAFETY: at row stride `n` the product covers all `m n` elements, and writes them all
    // (zeros when the inner dimension is empty).
    unsafe { unzeroed(m * n, |out| product_uninit(out, n, a, b, 1.0)) }
}

/// `out = scale A B`, or `out += scale A B` with `accumulate`, `out` row-major `[m, n]` at row
/// stride `out_rs` inside `out_len` elements.
///
/// # Safety
/// `out` must be valid for writes of `out_len` floats, and initialised if `accumulate`.
unsafe fn gemm_into(
    out: *mut f32,
    out_len: usize,
    out_rs: usize,
    a: Matrix,
    b: Matrix,
    scale: f32,
    accumulate: bool,
) {
    let ([m, k], [k2, n]) = (a.shape, b.shape);
    assert!(
        k == k2 && (m == 0 || n == 0 || (m - 1) * out_rs + n <= out_len),
        "product of {:?} and {:?} into {out_len} elements at row stride {out_rs}",
        a.shape,
        b.shape,
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: gemm's result is unspecified there, the product's is zero.
        if !accumulate {
            for i in 0..m {
                // SAFETY: the assertion above keeps row i's n elements inside `out_len`.
                unsafe { std::ptr::write_bytes(out.add(i * out_rs), 0, n) };
            }
        }
        return;
    }
    // Columns split among the threads: each packs its own columns of `b` (a weight, mostly the
    // larger operand) and writes its own columns of `out`.
    let threads = parallel::threads();
    let pieces = if threads > 1 && m * n * k >= PARALLEL_ABOVE {
        (PIECES_PER_THREAD * threads).min(n.div_ceil(COLUMNS))
    } else {
        1
    };
    let width = n.div_ceil(pieces).next_multiple_of(COLUMNS);
    let out = Shared::new(out);
    parallel::for_each(pieces, |piece| {
        let from = (piece * width).min(n);
        let to = ((piece + 1) * width).min(n);
        if from == to {
            return;
        }
        let columns = Matrix {
            data: &b.data[from * b.cs..],
            shape: [k, to - from],
            ..b
        };
        // SAFETY: as for the whole product (the piece's columns of `b` and of `out` lie inside
        // theirs); the pieces write disjoint columns.
        unsafe { gemm_serial(out.get().add(from), a, columns, scale, out_rs, accumulate) }
    });
}

/// Products at least this big (multiply-adds) are split among the threads: below it, handing
/// out the pieces costs more than it saves.
const PARALLEL_ABOVE: usize = 64 * 64 * 64;

/// Pieces a split product is cut into, per thread: more than one, so that a thread the
/// browser holds up for a while leaves its share to the others.
const PIECES_PER_THREAD: usize = 2;

/// Columns a piece of a split product holds a multiple of: gemm's widest register tile.
const COLUMNS: usize = 16;

/// gemm on this thread, into `out` at row stride `out_rs`.
///
/// # Safety
/// As [`gemm_into`]'s, for the `[m, n]` that `a` and `b` give.
unsafe fn gemm_serial(
    out: *mut f32,
    a: Matrix,
    b: Matrix,
    scale: f32,
    out_rs: usize,
    accumulate: bool,
) {
    let ([m, k], [_, n]) = (a.shape, b.shape);
    // SAFETY: `Matrix::rows` checked that every element of `a` and `b` lies in its slice
    // (transposing swaps strides and shape together, so that still holds; a piece's columns
    // are inside the whole), the caller does the same for `out`; with `accumulate` false,
    // `out`'s old values are not read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            out_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}
