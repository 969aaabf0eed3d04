//! Vectorised CPU kernels on burn's Flex backend: exact GELU, a block's attention computed
//! straight from its fused `qkv` projection, LayerNorm and linear layers; forward and backward.
//!
//! Why they exist: a profile of batch-64 inference (bench/README.md) put 20% of the time in
//! Flex's GELU, which calls the scalar `libm::erff` once per element, 28% in Flex's attention
//! kernel (a scalar softmax around two tiny gemms per head) and 9% in the copies that split
//! `qkv` into heads and merge them back; training spent its share in the same places, and in
//! their gradients. These kernels do the same arithmetic in loops the compiler vectorises (the
//! attention's products through the `gemm` crate), and read and write the heads in place.
//!
//! They run where that profile applies: a Flex tensor in f32, with or without autodiff (under
//! autodiff, through hand-written backward passes in [`grad`]). GPUs and other float types keep
//! burn's own ops, so the model computes the same function everywhere; the tests hold both paths
//! to each other. `VIT_KERNELS=off` (or [`with_kernels`]) turns them off, and `VIT_SIMD` (or
//! [`with_simd`]) caps the vector unit they use, so that both can be compared.
//!
//! - [`gelu`]: GELU, its derivative, and the `exp` both GELU and softmax use.
//! - [`attention`]: attention forward and backward on plain slices.
//! - [`grad`]: the kernels under burn's autodiff.
//! - [`layer_norm`] and [`linear`]: LayerNorm, and a linear layer with its bias, each forward
//!   and backward, with and without autodiff.
//! - [`matmul`]: strided matrix views and their products, which the attention and the linear
//!   layer share.
//! - [`parallel`]: the loop that spreads products, heads and GELU over the threads, whose
//!   helpers spin between a pass's jobs instead of sleeping.

mod attention;
mod gelu;
mod grad;
mod layer_norm;
mod linear;
mod matmul;
mod parallel;
mod reduce;
mod switch;
#[cfg(test)]
mod tests;

pub use layer_norm::layer_norm_or;
pub use linear::linear_or;
pub use switch::{Simd, enabled, simd, with_kernels, with_simd};

use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use matmul::unzeroed;

/// The kernels as a burn backend extension, implemented for Flex and for Flex under autodiff.
#[backend_extension(Flex, Autodiff)]
pub trait VitKernels: Backend {
    /// `0.5 x (1 + erf(x / sqrt 2))`, element-wise.
    fn vit_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[B, T, 3D]` (timm's `qkv` output: q, k, v, each `h` heads of `D / h`) -> `[B, T, D]`,
    /// the heads' outputs side by side, ready for `proj`.
    fn vit_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;
}

/// Kernels without a backward pass: Flex only, no autodiff.
#[backend_extension(Flex)]
pub trait VitInferenceKernels: Backend {
    /// As [`VitKernels::vit_attention`], plus the probabilities `[B, h, T, T]`. Under autodiff
    /// the probabilities would need a gradient of their own (attention dropout and relevance
    /// use them), which burn's ops provide.
    fn vit_attention_probs(
        qkv: FloatTensor<Self>,
        heads: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

impl VitKernels for Flex {
    fn vit_gelu(x: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().to_vec();
        let mut values = f32_values(x);
        parallel::for_pieces(&mut values, GELU_PIECE, gelu::gelu_in_place);
        flex_f32(values, shape)
    }

    fn vit_attention(qkv: FlexTensor, heads: usize) -> FlexTensor {
        let (out, _) = run_attention(&qkv, heads, false);
        out
    }
}

impl VitInferenceKernels for Flex {
    fn vit_attention_probs(qkv: FlexTensor, heads: usize) -> (FlexTensor, FlexTensor) {
        let (out, probs) = run_attention(&qkv, heads, true);
        (out, probs.expect("probabilities were asked for"))
    }
}

/// Elements of a piece of GELU given to one thread (about 0.1 ms of work in the page).
const GELU_PIECE: usize = 16 * 1024;

/// Whether `x` is where these kernels apply: on, Flex (with or without autodiff), f32.
pub fn applies<const D: usize>(x: &Tensor<D>) -> bool {
    enabled() && x.dtype() == DType::F32 && x.device().inner() == Device::flex()
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

/// As [`attention_or`], plus the probabilities `[B, h, T, T]`; the kernel only without
/// autodiff.
pub fn attention_with_probs_or(
    qkv: Tensor<3>,
    heads: usize,
    otherwise: impl FnOnce(Tensor<3>) -> (Tensor<3>, Tensor<4>),
) -> (Tensor<3>, Tensor<4>) {
    if !applies(&qkv) || qkv.device().is_autodiff() {
        return otherwise(qkv);
    }
    let (out, probs) =
        <Dispatch as VitInferenceKernels>::vit_attention_probs(qkv.into_dispatch(), heads);
    (Tensor::from_dispatch(out), Tensor::from_dispatch(probs))
}

/// The tensor's values in row-major order, without a copy when it is the only owner of a
/// contiguous buffer.
fn f32_values(x: FlexTensor) -> Vec<f32> {
    x.into_data()
        .try_into_vec::<f32>()
        .expect("the kernels are only called on f32 tensors")
}

/// `x` with its values contiguous in row-major order, so that [`f32_slice`] can borrow them;
/// a copy only if they are not.
fn contiguous(x: FlexTensor) -> FlexTensor {
    if x.as_slice::<f32>().is_some() {
        x
    } else {
        x.to_contiguous()
    }
}

/// The values of a tensor [`contiguous`] has been through.
fn f32_slice(x: &FlexTensor) -> &[f32] {
    x.as_slice::<f32>()
        .expect("the kernels read contiguous f32 tensors")
}

fn flex_f32(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `[B, T, 3D]` -> `[B, T, D]`, checked: the model's shapes make this hold, so a failure is a
/// bug in the caller.
fn attention_shape(qkv: &FlexTensor, heads: usize) -> [usize; 4] {
    let [b, t, three_d] = qkv.layout().shape().to_vec()[..] else {
        panic!("vit_attention: qkv must be [B, T, 3D]");
    };
    let dim = three_d / 3;
    assert!(
        three_d == 3 * dim && dim > 0 && heads > 0 && dim.is_multiple_of(heads),
        "vit_attention: qkv width {three_d} does not split into q, k, v of {heads} heads"
    );
    [b, t, dim, heads]
}

/// The attention's output `[B, T, D]` and, if asked for, its probabilities `[B, h, T, T]`.
fn run_attention(
    qkv: &FlexTensor,
    heads: usize,
    want_probs: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    let shape @ [b, t, dim, heads] = attention_shape(qkv, heads);
    let qkv = contiguous(qkv.clone());
    let qkv = f32_slice(&qkv);
    let mut probs = None;
    // SAFETY: the attention writes every element of its output and, when asked for, of its
    // probabilities.
    let out = unsafe {
        unzeroed(b * t * dim, |out| {
            if want_probs {
                probs = Some(unzeroed(b * heads * t * t, |p| {
                    attention::attention_qkv(qkv, shape, out, Some(p))
                }));
            } else {
                attention::attention_qkv(qkv, shape, out, None);
            }
        })
    };
    (
        flex_f32(out, vec![b, t, dim]),
        probs.map(|p| flex_f32(p, vec![b, heads, t, t])),
    )
}
