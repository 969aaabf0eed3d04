//! The kernels under burn's autodiff: [`VitKernels`] for `Autodiff<Flex, C>`.
//!
//! burn 0.22.1's backend extensions route an autodiff tensor to the extension trait implemented
//! for `Autodiff<B, C>` (listing `Autodiff` in `#[backend_extension]`), and leave the backward
//! pass to that implementation. Each op here runs the Flex kernel forward and registers a step in
//! burn-autodiff's graph (`Backward::prepare`, then `OpsKind::Tracked(..).finish(state, output)`),
//! whose `backward` turns the output's gradient into the input's with the kernels' own backward
//! loops. Both ops are marked compute-bound: what the backward needs (GELU's derivative,
//! attention's input and probabilities) is kept as state rather than recomputed.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, TensorMetadata};

use super::matmul::unzeroed;
use super::{
    VitKernels, attention, attention_shape, contiguous, f32_slice, f32_values, flex_f32, gelu,
    run_attention,
};

impl<C: CheckpointStrategy> VitKernels for Autodiff<Flex, C> {
    fn vit_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node) = x.into_parts();
        match GeluBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                // The derivative shares the forward's exponential, so it is kept instead of the
                // input: the backward is then one multiply (recomputing it was 4% of a step).
                // The input is needed no more, so the output takes its place (no copy when it
                // is the only owner, as `fc1`'s output is).
                let shape = x.shape().to_vec();
                let mut y = f32_values(x);
                // SAFETY: `gelu_and_derivative` writes every element of the derivative.
                let derivative =
                    unsafe { unzeroed(y.len(), |d| gelu::gelu_and_derivative(&mut y, d)) };
                let derivative = flex_f32(derivative, shape.clone());
                prep.finish(derivative, flex_f32(y, shape))
            }
            OpsKind::UnTracked(prep) => prep.finish(<Flex as VitKernels>::vit_gelu(x)),
        }
    }

    fn vit_attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
        let (qkv, node) = qkv.into_parts();
        match AttentionBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let qkv = contiguous(qkv);
                let (out, probs) = run_attention(&qkv, heads, true);
                let probs = probs.expect("probabilities were asked for");
                prep.finish(AttentionState { qkv, probs, heads }, out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(<Flex as VitKernels>::vit_attention(qkv, heads))
            }
        }
    }
}

/// GELU's step; its state is `GELU'(x)`, contiguous.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<FlexTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let Ops {
            parents,
            node,
            state: derivative,
        } = ops;
        unary::<Flex, _>(parents, node, grads, |dy| {
            let shape = dy.shape().to_vec();
            // The output's gradient is usually this step's alone, so it becomes the input's in
            // place.
            let mut dx = f32_values(dy);
            gelu::scale_in_place(&mut dx, f32_slice(&derivative));
            flex_f32(dx, shape)
        });
    }
}

/// Attention's step.
#[derive(Debug)]
struct AttentionBackward;

#[derive(Clone, Debug)]
struct AttentionState {
    /// The input `[B, T, 3D]`, contiguous.
    qkv: FlexTensor,
    /// The probabilities `[B, h, T, T]`.
    probs: FlexTensor,
    heads: usize,
}

impl Backward<Flex, 1> for AttentionBackward {
    type State = AttentionState;

    fn backward(self, ops: Ops<AttentionState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let Ops {
            parents,
            node,
            state,
        } = ops;
        unary::<Flex, _>(parents, node, grads, |d_out| {
            let shape @ [b, t, dim, _] = attention_shape(&state.qkv, state.heads);
            let d_out = contiguous(d_out);
            // SAFETY: the backward writes every element of `d(qkv)`.
            let d_qkv = unsafe {
                unzeroed(b * t * 3 * dim, |d_qkv| {
                    attention::attention_backward_qkv(
                        f32_slice(&state.qkv),
                        f32_slice(&state.probs),
                        f32_slice(&d_out),
                        shape,
                        d_qkv,
                    )
                })
            };
            flex_f32(d_qkv, vec![b, t, 3 * dim])
        });
    }
}
