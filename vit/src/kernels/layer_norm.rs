//! LayerNorm over the last dimension, forward and backward, one pass over each row.
//!
//! Why: burn's autodiff has no LayerNorm of its own, so under training it runs the generic
//! decomposition (mean, subtract, square, mean, add, square root, divide, scale, shift), nine
//! element-wise ops forward and more backward, each allocating a full activation. The model has
//! two per block and a final one. Here the forward keeps the normalised rows and each row's
//! `1 / sigma` for the backward, which needs nothing else:
//!
//! `dx = (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) / sigma`, with `dxhat = dy gamma`;
//! `dgamma = sum over rows of dy xhat`; `dbeta = sum over rows of dy`.

use std::mem::MaybeUninit;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::LayerNorm;
use burn::prelude::*;

use super::matmul::unzeroed;
use super::reduce::{dot, sum};
use super::switch::vectorised;
use super::{applies, contiguous, f32_slice, flex_f32};

/// LayerNorm as a burn backend extension, for Flex with and without autodiff.
#[backend_extension(Flex, Autodiff)]
pub trait VitNorm: Backend {
    /// `(x - mean) / sqrt(var + epsilon) * gamma + beta` over the last dimension of `x`;
    /// `gamma` and `beta` are `[D]`.
    fn vit_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

/// `norm`'s forward through these kernels where they apply (Flex, f32, a bias), else through
/// burn's. `epsilon` must be the one `norm` was built with (burn keeps it private).
pub fn layer_norm_or<const D: usize>(x: Tensor<D>, norm: &LayerNorm, epsilon: f64) -> Tensor<D> {
    let Some(beta) = norm.beta.as_ref().filter(|_| applies(&x)) else {
        return norm.forward(x);
    };
    Tensor::from_dispatch(<Dispatch as VitNorm>::vit_layer_norm(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        beta.val().into_dispatch(),
        epsilon,
    ))
}

impl VitNorm for Flex {
    fn vit_layer_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, eps: f64) -> FlexTensor {
        forward(x, &gamma, &beta, eps).0
    }
}

impl<C: CheckpointStrategy> VitNorm for Autodiff<Flex, C> {
    fn vit_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (gamma, gamma_node) = gamma.into_parts();
        let (beta, beta_node) = beta.into_parts();
        match LayerNormBackward
            .prepare::<C>([x_node, gamma_node, beta_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, normalised, inv_sigma) = forward(x, &gamma, &beta, epsilon);
                let state = NormState {
                    normalised,
                    inv_sigma,
                    gamma: contiguous(gamma),
                };
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x, &gamma, &beta, epsilon).0),
        }
    }
}

/// The output, the normalised rows `xhat` (same shape) and each row's `1 / sigma` (`[rows]`).
fn forward(
    x: FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, Vec<f32>) {
    let shape = x.shape().to_vec();
    let width = *shape.last().expect("layer_norm: x has no dimensions");
    let (gamma, beta) = (contiguous(gamma.clone()), contiguous(beta.clone()));
    let (gamma, beta) = (f32_slice(&gamma), f32_slice(&beta));
    assert!(
        gamma.len() == width && beta.len() == width,
        "layer_norm: gamma and beta must have the input's last dimension {width}"
    );
    let x = contiguous(x);
    let x = f32_slice(&x);
    let rows = x.len().checked_div(width).unwrap_or(0);
    let mut inv_sigma = vec![0f32; rows];
    let params = Params {
        gamma,
        beta,
        epsilon: epsilon as f32,
    };
    let mut normalised = None;
    // SAFETY: `forward_rows` writes every element of `y` and of `normalised`.
    let y = unsafe {
        unzeroed(x.len(), |y| {
            normalised = Some(unzeroed(x.len(), |normalised| {
                forward_rows(x, params, y, normalised, &mut inv_sigma)
            }))
        })
    };
    let normalised = normalised.expect("written with y");
    (
        flex_f32(y, shape.clone()),
        flex_f32(normalised, shape),
        inv_sigma,
    )
}

#[derive(Clone, Copy)]
pub(super) struct Params<'a> {
    gamma: &'a [f32],
    beta: &'a [f32],
    epsilon: f32,
}

vectorised! {
    /// Normalises each row of `x` into `normalised`, and scales and shifts it into `y`; every
    /// element of both is written.
    fn forward_rows(
        x: &[f32],
        params: Params<'_>,
        y: &mut [MaybeUninit<f32>],
        normalised: &mut [MaybeUninit<f32>],
        inv_sigma: &mut [f32]
    ) => forward_rows_body
}

#[inline(always)]
fn forward_rows_body(
    x: &[f32],
    params: Params<'_>,
    y: &mut [MaybeUninit<f32>],
    normalised: &mut [MaybeUninit<f32>],
    inv_sigma: &mut [f32],
) {
    let Params {
        gamma,
        beta,
        epsilon,
    } = params;
    let width = gamma.len();
    let rows = x
        .chunks_exact(width)
        .zip(y.chunks_exact_mut(width))
        .zip(normalised.chunks_exact_mut(width));
    for (((x, y), xhat), inv) in rows.zip(inv_sigma.iter_mut()) {
        let mean = sum(x) / width as f32;
        for (xhat, &x) in xhat.iter_mut().zip(x) {
            xhat.write(x - mean);
        }
        // SAFETY: the loop above wrote the whole row.
        let xhat = unsafe { xhat.assume_init_mut() };
        let var = dot(xhat, xhat) / width as f32;
        *inv = 1.0 / (var + epsilon).sqrt();
        for (((y, xhat), &g), &b) in y.iter_mut().zip(xhat.iter_mut()).zip(gamma).zip(beta) {
            *xhat *= *inv;
            y.write(*xhat * g + b);
        }
    }
}

/// The step in autodiff's graph; its state is what the backward reads.
#[derive(Debug)]
struct LayerNormBackward;

#[derive(Clone, Debug)]
struct NormState {
    /// `xhat`, the input's shape.
    normalised: FlexTensor,
    /// `1 / sigma` of each row.
    inv_sigma: Vec<f32>,
    /// `[D]`, contiguous.
    gamma: FlexTensor,
}

impl Backward<Flex, 3> for LayerNormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let state = ops.state;
        let shape = dy.shape().to_vec();
        let width = state.gamma.shape().num_elements();
        let mut dgamma = vec![0f32; width];
        let mut dbeta = vec![0f32; width];
        // SAFETY: `backward_rows` writes every element of `dx`.
        let dx = unsafe {
            unzeroed(dy.shape().num_elements(), |dx| {
                backward_rows(
                    f32_slice(&dy),
                    f32_slice(&state.normalised),
                    &state.inv_sigma,
                    f32_slice(&state.gamma),
                    dx,
                    (&mut dgamma, &mut dbeta),
                )
            })
        };
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, flex_f32(dx, shape));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex_f32(dgamma, vec![width]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_f32(dbeta, vec![width]));
        }
    }
}

vectorised! {
    /// The input's gradient into `dx` (every element written), and the sums over rows of
    /// `dy xhat` and `dy` into the parameters' gradients.
    fn backward_rows(
        dy: &[f32],
        normalised: &[f32],
        inv_sigma: &[f32],
        gamma: &[f32],
        dx: &mut [MaybeUninit<f32>],
        param_grads: (&mut [f32], &mut [f32])
    ) => backward_rows_body
}

#[inline(always)]
fn backward_rows_body(
    dy: &[f32],
    normalised: &[f32],
    inv_sigma: &[f32],
    gamma: &[f32],
    dx: &mut [MaybeUninit<f32>],
    (dgamma, dbeta): (&mut [f32], &mut [f32]),
) {
    let width = gamma.len();
    let rows = dy
        .chunks_exact(width)
        .zip(normalised.chunks_exact(width))
        .zip(dx.chunks_exact_mut(width));
    for (((dy, xhat), dx), &inv) in rows.zip(inv_sigma) {
        // dx holds dxhat = dy gamma until the last loop.
        for ((dx, &dy), &g) in dx.iter_mut().zip(dy).zip(gamma) {
            dx.write(dy * g);
        }
        // SAFETY: the loop above wrote the whole row.
        let dx = unsafe { dx.assume_init_mut() };
        let mean_dxhat = sum(dx) / width as f32;
        let mean_dxhat_xhat = dot(dx, xhat) / width as f32;
        for (dx, &xhat) in dx.iter_mut().zip(xhat) {
            *dx = (*dx - mean_dxhat - xhat * mean_dxhat_xhat) * inv;
        }
        for (((dg, db), &dy), &xhat) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(dy).zip(xhat) {
            *dg += dy * xhat;
            *db += dy;
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LayerNormConfig;

    use super::*;
    use crate::kernels::tests::{
        assert_close, assert_value_and_grads, autodiff_devices, levels, ramp, weights,
    };
    use crate::kernels::{with_kernels, with_simd};

    /// A norm whose gamma and beta are not the identity, so that their gradients and the
    /// input's all depend on them.
    fn norm(width: usize, epsilon: f64, device: &Device) -> LayerNorm {
        let mut norm = LayerNormConfig::new(width)
            .with_epsilon(epsilon)
            .init(device);
        let gamma: Vec<f32> = weights(width).iter().map(|w| 1.0 + 0.5 * w).collect();
        let beta: Vec<f32> = weights(width + 3)[3..].iter().map(|w| 0.2 * w).collect();
        norm.gamma = norm.gamma.map(|_| {
            Tensor::from_data(TensorData::new(gamma, [width]), device)
                .set_require_grad(device.is_autodiff())
        });
        norm.beta = norm.beta.map(|b| {
            b.map(|_| {
                Tensor::from_data(TensorData::new(beta, [width]), device)
                    .set_require_grad(device.is_autodiff())
            })
        });
        norm
    }

    /// The output, and the gradients of x, gamma and beta under a weighted sum of the output.
    fn run(device: &Device, x: &[f32], shape: [usize; 3], epsilon: f64) -> [Vec<f32>; 4] {
        let norm = norm(shape[2], epsilon, device);
        let x = Tensor::<3>::from_data(TensorData::new(x.to_vec(), shape), device).require_grad();
        let y = layer_norm_or(x.clone(), &norm, epsilon);
        let n = y.shape().num_elements();
        let w = Tensor::<3>::from_data(TensorData::new(weights(n), shape), device);
        let grads = (y.clone() * w).sum().backward();
        let grad = |t: Tensor<1>| {
            t.grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let beta = norm.beta.as_ref().unwrap().val();
        [
            y.inner().into_data().try_to_vec().unwrap(),
            x.grad(&grads).unwrap().into_data().try_to_vec().unwrap(),
            grad(norm.gamma.val()),
            grad(beta),
        ]
    }

    #[test]
    fn layer_norm_agrees_with_burn_in_values_and_gradients() {
        for device in autodiff_devices() {
            // Widths below, at and above a vector; offsets and scales rows can have.
            for (shape, epsilon) in [([1, 5, 7], 1e-6), ([2, 17, 96], 1e-6), ([3, 145, 40], 1e-5)] {
                let n = shape.iter().product();
                let x: Vec<f32> = ramp(n, 3.0).iter().map(|v| v + 0.7).collect();
                let want = with_kernels(false, || run(&device, &x, shape, epsilon));
                for level in levels() {
                    let ours = with_simd(level, || run(&device, &x, shape, epsilon));
                    let what = format!("layer norm {shape:?} at {level:?}");
                    assert_value_and_grads(&ours, &want, ["x", "gamma", "beta"], &what);
                }
            }
        }
    }

    #[test]
    fn layer_norm_without_autodiff_is_burns() {
        let device = Device::flex();
        let norm = norm(24, 1e-6, &device);
        let x = Tensor::<3>::from_data(TensorData::new(ramp(2 * 9 * 24, 5.0), [2, 9, 24]), &device);
        let want = norm
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let ours = layer_norm_or(x, &norm, 1e-6)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_close(&ours, &want, 1e-5, "layer norm without autodiff");
    }
}
