use super::gelu::{exp, gelu_derivative, gelu_scalar};
use super::*;
use crate::VitConfig;
use crate::model::Attention;
use burn::module::{ModuleVisitor, Param};
use burn::tensor::{Tolerance, activation};
use std::mem::MaybeUninit;

/// Deterministic values spread over the range activations take.
pub(super) fn ramp(n: usize, spread: f32) -> Vec<f32> {
    (0..n)
        .map(|i| spread * ((i as f32 * 0.618_034).fract() * 2.0 - 1.0))
        .collect()
}

/// A different deterministic spread, for weights that must not line up with [`ramp`].
pub(super) fn weights(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 * 0.754_877_7 + 0.3).fract() * 2.0 - 1.0)
        .collect()
}

/// An output buffer for a kernel that writes every element, filled with NaN so that an element
/// it missed shows.
fn nans(n: usize) -> Vec<MaybeUninit<f32>> {
    vec![MaybeUninit::new(f32::NAN); n]
}

/// The values of a [`nans`] buffer.
fn read(values: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    // SAFETY: `nans` initialised every element, and kernels only write floats.
    values
        .into_iter()
        .map(|v| unsafe { v.assume_init() })
        .collect()
}

/// The levels this CPU can run, best first: both vector paths where it has them.
pub(super) fn levels() -> Vec<Simd> {
    Simd::ALL.into_iter().filter(|l| l.available()).collect()
}

/// `max |ours - want| <= rel * max |want|`: relative to the tensor's scale, since single
/// elements of a gradient may sit at zero, where an element-wise relative bound means nothing.
pub(super) fn assert_close(ours: &[f32], want: &[f32], rel: f32, what: &str) {
    // A kernel's error scales with its values: the bound is relative to the largest one.
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let bound = crate::close::Tolerance::abs((rel * scale) as f64);
    if let Err(e) = crate::close::check(want, ours, bound) {
        panic!("{what} (largest value {scale}): {e}");
    }
}

/// An op's output and three gradients, `[values, d first, d second, d third]`, against burn's:
/// the values within 1e-5 and each gradient within 1e-4 of its scale.
pub(super) fn assert_value_and_grads(
    ours: &[Vec<f32>; 4],
    want: &[Vec<f32>; 4],
    grads: [&str; 3],
    what: &str,
) {
    assert_close(&ours[0], &want[0], 1e-5, &format!("{what}: values"));
    for (i, name) in grads.iter().enumerate() {
        let what = format!("{what}: gradient of {name}");
        assert_close(&ours[i + 1], &want[i + 1], 1e-4, &what);
    }
}

pub(super) fn values<const D: usize>(x: Tensor<D>) -> Vec<f32> {
    x.into_data().try_to_vec::<f32>().unwrap()
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
        let want = 0.5 * x as f64 * (1.0 + erf(x as f64 / std::f64::consts::SQRT_2));
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

#[test]
fn gelu_derivative_matches_its_definition() {
    for i in 0..=40_000 {
        let x = -10.0 + i as f32 * 20.0 / 40_000.0;
        let x64 = x as f64;
        let phi = (-0.5 * x64 * x64).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let want = 0.5 * (1.0 + erf(x64 / std::f64::consts::SQRT_2)) + x64 * phi;
        let ours = gelu_derivative(x) as f64;
        // Phi carries half of erf's 4e-7; x phi the exponential's few ulp.
        let bound = 2e-7 + 4.0 * f32::EPSILON as f64 * (1.0 + (x64 * phi).abs());
        assert!(
            (ours - want).abs() <= bound,
            "gelu'({x}) = {ours}, want {want}"
        );
    }
}

/// erf in f64, from its Taylor series (|x| <= 3) or continued fraction (beyond), as a
/// reference independent of the kernel's approximation.
fn erf(x: f64) -> f64 {
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

/// Every slice kernel at every level this CPU has gives the baseline's results: the vector
/// paths are the same loops compiled differently, so they may differ only in rounding.
#[test]
fn simd_levels_agree() {
    let x = ramp(1000 + 7, 6.0);
    let dy = weights(x.len());
    let (b, t, dim, heads) = (2, 17, 48, 3);
    let qkv = ramp(b * t * 3 * dim, 2.0);
    let d_out = weights(b * t * dim);
    let run = |level| {
        with_simd(level, || {
            assert_eq!(simd(), level, "with_simd sets the level");
            let mut y = x.clone();
            gelu::gelu_in_place(&mut y);
            let (mut y2, mut derivative) = (x.clone(), nans(x.len()));
            gelu::gelu_and_derivative(&mut y2, &mut derivative);
            let derivative = read(derivative);
            assert_eq!(y, y2, "in place and with the derivative agree");
            for (&x, &d) in x.iter().zip(&derivative) {
                assert_eq!(d, gelu_derivative(x), "the derivative at {x}");
            }
            let mut dx = dy.clone();
            gelu::scale_in_place(&mut dx, &derivative);
            let (mut out, mut probs) = (nans(b * t * dim), nans(b * heads * t * t));
            let shape = [b, t, dim, heads];
            attention::attention_qkv(&qkv, shape, &mut out, Some(&mut probs));
            let probs = read(probs);
            let mut d_qkv = nans(qkv.len());
            attention::attention_backward_qkv(&qkv, &probs, &d_out, shape, &mut d_qkv);
            [y, dx, read(out), probs, read(d_qkv)]
        })
    };
    let want = run(Simd::Baseline);
    for (name, values) in ["attention", "probs", "d(qkv)"].iter().zip(&want[2..]) {
        assert!(
            values.iter().all(|v| v.is_finite()),
            "every {name} is written"
        );
    }
    for level in levels() {
        for (name, (ours, want)) in ["gelu", "gelu'", "attention", "probs", "d(qkv)"]
            .iter()
            .zip(run(level).iter().zip(&want))
        {
            assert_close(ours, want, 1e-6, &format!("{name} at {level:?}"));
        }
    }
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
        .assert_approx_eq::<f32>(&theirs.into_data(), Tolerance::absolute(1e-6));
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
        let tol = Tolerance::absolute(1e-5);
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

/// Runs `op` on a leaf made of `values` under autodiff, and weighs its output by fixed weights
/// (so the output's gradient is not uniform); returns the output and the leaf's gradient.
pub(super) fn value_and_grad<const D: usize, const E: usize>(
    device: &Device,
    leaf: &[f32],
    shape: [usize; D],
    op: impl FnOnce(Tensor<D>) -> Tensor<E>,
) -> (Vec<f32>, Vec<f32>) {
    let x = Tensor::<D>::from_data(TensorData::new(leaf.to_vec(), shape), device).require_grad();
    let y = op(x.clone());
    let w = Tensor::<E>::from_data(
        TensorData::new(weights(y.shape().num_elements()), y.shape()),
        device,
    );
    let grads = (y.clone() * w).sum().backward();
    let grad = x.grad(&grads).expect("the leaf has a gradient");
    (values_of(y), values(grad))
}

pub(super) fn values_of<const D: usize>(y: Tensor<D>) -> Vec<f32> {
    values(y.inner())
}

/// The devices the gradient tests run on: plain autodiff, and with burn's gradient
/// checkpointing, which routes the ops to the other `Autodiff<Flex, C>`.
pub(super) fn autodiff_devices() -> [Device; 2] {
    let device = Device::flex().autodiff();
    [device.clone(), device.gradient_checkpointing()]
}

#[test]
fn gelu_gradient_agrees_with_burn() {
    for device in autodiff_devices() {
        for shape in [[1, 5, 7], [2, 17, 40], [3, 145, 24]] {
            let n = shape.iter().product();
            let x = ramp(n, 6.0);
            let (want_y, want_dx) = with_kernels(false, || {
                value_and_grad(&device, &x, shape, |x| gelu_or(x, activation::gelu))
            });
            for level in levels() {
                let (y, dx) = with_simd(level, || {
                    value_and_grad(&device, &x, shape, |x| {
                        assert!(applies(&x), "the kernel applies under autodiff");
                        gelu_or(x, |_| unreachable!("the kernel applies"))
                    })
                });
                let what = format!("gelu {shape:?} at {level:?}");
                assert_close(&y, &want_y, 1e-5, &format!("{what}: values"));
                assert_close(&dx, &want_dx, 1e-4, &format!("{what}: gradient"));
            }
        }
    }
}

#[test]
fn attention_gradient_agrees_with_burn() {
    // Odd token counts (5, 17, 145), one to four heads, batches of one to three, heads below,
    // at and above a vector (8, 16, 24, 32).
    let shapes = [
        (1, 5, 8, 1),
        (2, 17, 24, 3),
        (3, 5, 32, 2),
        (2, 17, 64, 4),
        (1, 145, 96, 3),
        (3, 145, 32, 2),
    ];
    for device in autodiff_devices() {
        for (b, t, dim, heads) in shapes {
            let shape = [b, t, 3 * dim];
            let qkv = ramp(b * t * 3 * dim, 2.0);
            let (want_out, want_d) = with_kernels(false, || {
                value_and_grad(&device, &qkv, shape, |qkv| reference(qkv, heads).0)
            });
            for level in levels() {
                let (out, d) = with_simd(level, || {
                    value_and_grad(&device, &qkv, shape, |qkv| {
                        assert!(applies(&qkv), "the kernel applies under autodiff");
                        attention_or(qkv, heads, |_| unreachable!("the kernel applies"))
                    })
                });
                let what = format!("attention {:?} at {level:?}", (b, t, dim, heads));
                if let Err(e) =
                    crate::close::check(&want_out, &out, crate::close::Tolerance::abs(1e-5))
                {
                    panic!("{what}: values: {e}");
                }
                assert_close(&d, &want_d, 1e-4, &format!("{what}: gradient"));
            }
        }
    }
}

/// Every float parameter's gradient, in visiting order.
struct Grads<'a> {
    grads: &'a burn::tensor::Gradients,
    found: Vec<(String, Vec<f32>)>,
}

impl ModuleVisitor for Grads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = param
            .val()
            .grad(self.grads)
            .expect("every parameter has a gradient");
        let name = format!("parameter {} {:?}", self.found.len(), param.shape());
        self.found.push((name, values(grad)));
    }
}

/// One training step of a whole model, the kernels against burn's ops: the loss and every
/// parameter's gradient.
#[test]
fn training_step_agrees_with_burn() {
    let device = Device::flex().autodiff();
    device.seed(11);
    // 17 tokens; heads of 16; a hidden layer of 96.
    let model = VitConfig::new()
        .with_image_size(16)
        .with_patch_size(4)
        .with_embed_dim(48)
        .with_depth(2)
        .with_num_heads(3)
        .init(&device)
        .unwrap();
    let images = Tensor::<4>::from_data(
        TensorData::new(ramp(3 * 3 * 16 * 16, 1.5), [3, 3, 16, 16]),
        &device,
    );
    let targets = Tensor::<2>::from_data(
        TensorData::new(weights(3 * 10).iter().map(|w| w.abs()).collect(), [3, 10]),
        &device,
    );
    let step = || {
        let logits = model.forward(images.clone());
        let loss = (activation::log_softmax(logits, 1) * targets.clone())
            .sum()
            .neg();
        let grads = loss.backward();
        let mut visitor = Grads {
            grads: &grads,
            found: Vec::new(),
        };
        model.visit(&mut visitor);
        (values_of(loss), visitor.found)
    };
    let (want_loss, want) = with_kernels(false, step);
    let (loss, ours) = step();
    assert_close(&loss, &want_loss, 1e-4, "loss");
    assert_eq!(ours.len(), want.len());
    assert!(ours.len() > 20, "every parameter was visited");
    for ((name, ours), (_, want)) in ours.iter().zip(&want) {
        assert_close(ours, want, 1e-4, name);
    }
}

#[test]
fn kernels_step_aside_where_they_do_not_apply() {
    let device = Device::flex().autodiff();
    let x = Tensor::<3>::zeros([1, 2, 6], &device);
    assert!(applies(&x));
    let fallbacks = std::cell::Cell::new(0);
    let fallback = |x| {
        fallbacks.set(fallbacks.get() + 1);
        x
    };
    // The probabilities have no backward pass of ours.
    let _ = attention_with_probs_or(x.clone(), 2, |x| {
        fallbacks.set(fallbacks.get() + 1);
        (x, Tensor::zeros([1, 2, 2, 2], &device))
    });
    assert_eq!(fallbacks.get(), 1);
    // Switched off.
    with_kernels(false, || {
        assert!(!applies(&x));
        let _ = gelu_or(x.clone(), fallback);
        let _ = attention_or(x.clone(), 2, fallback);
    });
    assert_eq!(fallbacks.get(), 3, "every op went to burn's own");
    // Another float type.
    let half = Tensor::<3>::zeros([1, 2, 6], &Device::flex()).cast(DType::F16);
    assert!(!applies(&half));
}
