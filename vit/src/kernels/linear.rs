//! A linear layer `y = x W + b`, forward and backward, straight on the `gemm` crate.
//!
//! Why: burn's linear on Flex is a matmul and then a separate broadcast add of the bias, and
//! every Flex op's output is allocated zeroed and then copied once more to realign it
//! (`FlexTensor::empty` in burn-flex 0.22.1: see bench/HISTORY.md). For a block's `qkv` at batch
//! 64 that is three extra passes over a 10 MB output around a 5 ms product. Here the output is
//! allocated once, starts as the bias rows, and the product is accumulated onto it by gemm's own
//! write-back. The backward pass calls gemm on the transposed operands through their strides
//! (no copies), and sums the bias gradient in one vectorised pass.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::nn::Linear;
use burn::prelude::*;

use super::matmul::{Matrix, product_add, product_new};
use super::switch::vectorised;
use super::{applies, contiguous, f32_slice, flex_f32};

/// The linear layer as a burn backend extension, for Flex with and without autodiff.
#[backend_extension(Flex, Autodiff)]
pub trait VitLinear: Backend {
    /// `x [.., in] W [in, out] + b [out]` -> `[.., out]`.
    fn vit_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `layer`'s forward through this kernel where it applies (Flex, f32, a bias), else burn's.
pub fn linear_or<const D: usize>(x: Tensor<D>, layer: &Linear) -> Tensor<D> {
    let Some(bias) = layer.bias.as_ref().filter(|_| applies(&x)) else {
        return layer.forward(x);
    };
    Tensor::from_dispatch(<Dispatch as VitLinear>::vit_linear(
        x.into_dispatch(),
        layer.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    ))
}

impl VitLinear for Flex {
    fn vit_linear(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        forward(&contiguous(x), &contiguous(weight), &bias)
    }
}

impl<C: CheckpointStrategy> VitLinear for Autodiff<Flex, C> {
    fn vit_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (x, x_node) = x.into_parts();
        let (weight, weight_node) = weight.into_parts();
        let (bias, bias_node) = bias.into_parts();
        let (x, weight) = (contiguous(x), contiguous(weight));
        match LinearBackward
            .prepare::<C>([x_node, weight_node, bias_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&x, &weight, &bias);
                prep.finish(LinearState { x, weight }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &weight, &bias)),
        }
    }
}

/// `[rows, in]` and `[in, out]` from the operands' shapes, checked.
fn dims(x: &FlexTensor, weight: &FlexTensor) -> (usize, usize, usize) {
    let [d_in, d_out] = weight.shape().to_vec()[..] else {
        panic!("vit_linear: the weight must be [in, out]");
    };
    let x_shape = x.shape().to_vec();
    assert!(
        d_in > 0 && d_out > 0 && x_shape.last() == Some(&d_in),
        "vit_linear: x {x_shape:?} does not end in the weight's input width {d_in}"
    );
    (x_shape.iter().product::<usize>() / d_in, d_in, d_out)
}

/// The weight `[in, out]`, contiguous, as a matrix.
fn weight_matrix(weight: &FlexTensor, d_in: usize, d_out: usize) -> Matrix<'_> {
    Matrix::rows(f32_slice(weight), d_out, [d_in, d_out])
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let (rows, d_in, d_out) = dims(x, weight);
    let bias = contiguous(bias.clone());
    let bias = f32_slice(&bias);
    assert_eq!(bias.len(), d_out, "vit_linear: the bias must be [out]");
    let mut y = Vec::with_capacity(rows * d_out);
    for _ in 0..rows {
        y.extend_from_slice(bias);
    }
    // y += x W
    let x_rows = Matrix::rows(f32_slice(x), d_in, [rows, d_in]);
    product_add(&mut y, d_out, x_rows, weight_matrix(weight, d_in, d_out));
    let mut shape = x.shape().to_vec();
    *shape.last_mut().expect("x has a last dimension") = d_out;
    flex_f32(y, shape)
}

#[derive(Debug)]
struct LinearBackward;

#[derive(Clone, Debug)]
struct LinearState {
    /// The input, contiguous.
    x: FlexTensor,
    /// `[in, out]`, contiguous.
    weight: FlexTensor,
}

impl Backward<Flex, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let LinearState { x, weight } = ops.state;
        let (rows, d_in, d_out) = dims(&x, &weight);
        let dy_values = f32_slice(&dy);
        let dy_rows = Matrix::rows(dy_values, d_out, [rows, d_out]);
        if let Some(node) = x_node {
            // dx = dy Wᵀ: Wᵀ is W read with its strides swapped.
            let dx = product_new(dy_rows, weight_matrix(&weight, d_in, d_out).t());
            grads.register::<Flex>(node.id, flex_f32(dx, x.shape().to_vec()));
        }
        if let Some(node) = weight_node {
            // dW = xᵀ dy, which also sums over the rows.
            let x_rows = Matrix::rows(f32_slice(&x), d_in, [rows, d_in]);
            let dw = product_new(x_rows.t(), dy_rows);
            grads.register::<Flex>(node.id, flex_f32(dw, vec![d_in, d_out]));
        }
        if let Some(node) = bias_node {
            let mut db = vec![0f32; d_out];
            column_sums(dy_values, &mut db);
            grads.register::<Flex>(node.id, flex_f32(db, vec![d_out]));
        }
    }
}

vectorised! {
    /// `sums[j] += x[r, j]` over every row `r` of the row-major `x`, `sums.len()` wide.
    fn column_sums(x: &[f32], sums: &mut [f32]) => column_sums_body
}

#[inline(always)]
fn column_sums_body(x: &[f32], sums: &mut [f32]) {
    for row in x.chunks_exact(sums.len()) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;

    use super::*;
    use crate::kernels::tests::{
        assert_close, assert_value_and_grads, autodiff_devices, levels, ramp, weights,
    };
    use crate::kernels::{with_kernels, with_simd};

    fn layer(d_in: usize, d_out: usize, device: &Device) -> Linear {
        let mut layer = LinearConfig::new(d_in, d_out).init(device);
        let w = TensorData::new(weights(d_in * d_out), [d_in, d_out]);
        let b: Vec<f32> = weights(d_out + 5)[5..].to_vec();
        layer.weight = layer
            .weight
            .map(|_| Tensor::from_data(w, device).set_require_grad(device.is_autodiff()));
        layer.bias = layer.bias.map(|p| {
            p.map(|_| {
                Tensor::from_data(TensorData::new(b, [d_out]), device)
                    .set_require_grad(device.is_autodiff())
            })
        });
        layer
    }

    /// The output, and the gradients of x, the weight and the bias under a weighted sum.
    fn run(device: &Device, shape: [usize; 3], d_out: usize) -> [Vec<f32>; 4] {
        let layer = layer(shape[2], d_out, device);
        let n = shape.iter().product();
        let x = Tensor::<3>::from_data(TensorData::new(ramp(n, 2.0), shape), device);
        let x = x.require_grad();
        let y = linear_or(x.clone(), &layer);
        let w = Tensor::<3>::from_data(
            TensorData::new(weights(y.shape().num_elements()), y.shape()),
            device,
        );
        let grads = (y.clone() * w).sum().backward();
        let bias = layer.bias.as_ref().unwrap().val();
        [
            y.inner().into_data().try_to_vec().unwrap(),
            x.grad(&grads).unwrap().into_data().try_to_vec().unwrap(),
            layer
                .weight
                .val()
                .grad(&grads)
                .unwrap()
                .into_data()
                .try_to_vec()
                .unwrap(),
            bias.grad(&grads).unwrap().into_data().try_to_vec().unwrap(),
        ]
    }

    #[test]
    fn linear_agrees_with_burn_in_values_and_gradients() {
        for device in autodiff_devices() {
            // The model's shapes (qkv, fc2 at batch 2), and odd ones.
            for (shape, d_out) in [([1, 5, 7], 3), ([2, 145, 96], 288), ([3, 17, 192], 96)] {
                let want = with_kernels(false, || run(&device, shape, d_out));
                for level in levels() {
                    let ours = with_simd(level, || run(&device, shape, d_out));
                    let what = format!("linear {shape:?} -> {d_out} at {level:?}");
                    assert_value_and_grads(&ours, &want, ["x", "weight", "bias"], &what);
                }
            }
        }
    }

    #[test]
    fn linear_without_autodiff_is_burns() {
        let device = Device::flex();
        let layer = layer(24, 10, &device);
        let x = Tensor::<2>::from_data(TensorData::new(ramp(9 * 24, 3.0), [9, 24]), &device);
        let want = layer
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let ours = linear_or(x, &layer)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_close(&ours, &want, 1e-5, "linear without autodiff");
    }
}
