//! Exact (erf) GELU and its derivative, in arithmetic the compiler vectorises; and `exp`, which
//! GELU and the attention's softmax share.

use std::mem::MaybeUninit;

use super::switch::vectorised;

vectorised! {
    /// GELU of every element, in place.
    fn gelu_in_place(x: &mut [f32]) => gelu_in_place_body
}

vectorised! {
    /// GELU of every element in place, and `derivative = GELU'(x)` beside it (every element
    /// written), sharing one exponential.
    fn gelu_and_derivative(x: &mut [f32], derivative: &mut [MaybeUninit<f32>]) => gelu_and_derivative_body
}

vectorised! {
    /// `dy *= derivative`, element-wise: the backward pass from a kept `GELU'(x)`.
    fn scale_in_place(dy: &mut [f32], derivative: &[f32]) => scale_in_place_body
}

#[inline(always)]
fn gelu_in_place_body(x: &mut [f32]) {
    for v in x {
        *v = gelu_scalar(*v);
    }
}

#[inline(always)]
fn gelu_and_derivative_body(x: &mut [f32], derivative: &mut [MaybeUninit<f32>]) {
    assert_eq!(
        x.len(),
        derivative.len(),
        "gelu: input and derivative differ in length"
    );
    for (x, d) in x.iter_mut().zip(derivative) {
        let (one_plus_erf, gauss) = normal_parts(*x);
        d.write(derivative_from_parts(*x, one_plus_erf, gauss));
        *x *= 0.5 * one_plus_erf;
    }
}

#[inline(always)]
fn scale_in_place_body(dy: &mut [f32], derivative: &[f32]) {
    assert_eq!(
        dy.len(),
        derivative.len(),
        "gelu backward: gradient and derivative differ in length"
    );
    for (g, &d) in dy.iter_mut().zip(derivative) {
        *g *= d;
    }
}

/// `e^x`, to a few ulp, in arithmetic the compiler can vectorise (`f32::exp` is a
/// libm call per element). Range reduction `x = n ln 2 + r`, `|r| <= ln 2 / 2`, with `ln 2` split
/// in two for exactness (Cody and Waite); `e^r` by its Taylor series to `r^7`, whose remainder
/// is below 1e-8 relative there; `2^n` built in the exponent bits.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
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

/// `(1 + erf(x / sqrt 2), e^(-x^2 / 2))`: `2 Phi(x)` and `sqrt(2 pi) phi(x)`, which share their
/// exponential. `1 + erf(z)` is computed as `2 - erfc(z)` for `z >= 0` and as `erfc(-z)` below,
/// so the negative tail keeps its relative precision; `erfc` is Abramowitz and Stegun's 7.1.26
/// (absolute error below 1.5e-7, 4e-7 once evaluated in f32, against libm's one ulp: less than
/// the rounding of the matmuls on either side).
#[inline(always)]
fn normal_parts(x: f32) -> (f32, f32) {
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
    let gauss = exp(-a * a);
    let erfc = t * poly * gauss;
    let one_plus_erf = if z >= 0.0 { 2.0 - erfc } else { erfc };
    (one_plus_erf, gauss)
}

/// `0.5 x (1 + erf(x / sqrt 2))`.
#[inline(always)]
pub(super) fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * normal_parts(x).0
}

/// `GELU'(x) = Phi(x) + x phi(x)`, with `phi(x) = e^(-x^2 / 2) / sqrt(2 pi)`: what
/// [`gelu_and_derivative`] computes, one element at a time, for the tests.
#[cfg(test)]
pub(super) fn gelu_derivative(x: f32) -> f32 {
    // 1 / sqrt(2 pi)
    let (one_plus_erf, gauss) = normal_parts(x);
    derivative_from_parts(x, one_plus_erf, gauss)
}

/// `GELU'(x)` from [`normal_parts`]'s `2 Phi(x)` and `sqrt(2 pi) phi(x)`.
#[inline(always)]
fn derivative_from_parts(x: f32, one_plus_erf: f32, gauss: f32) -> f32 {
    // 1 / sqrt(2 pi)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    0.5 * one_plus_erf + x * gauss * INV_SQRT_2PI
}
