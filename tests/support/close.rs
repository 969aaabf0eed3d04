//! The tests' one comparison of numbers: [`vit::close`]'s rule (the same length, every value
//! finite on both sides, each difference within the tolerance), as assertions that name what
//! was compared, the worst index, its two values and how many values failed. Every numeric
//! check between two answers (GPU and CPU, page and CLI, ours and timm's) goes through here.
//! Include it with `#[path = "support/close.rs"] mod close;` (from `vit/tests/`:
//! `#[path = "../../tests/support/close.rs"]`).

#![allow(dead_code)] // each test binary uses its own part

pub use vit::close::Tolerance;

/// Asserts that `got` is `want`'s answer within `tolerance`; returns the largest difference
/// (for a norm tolerance, the difference's norm), for the test's log.
#[track_caller]
pub fn assert_close<W, G>(what: &str, want: &[W], got: &[G], tolerance: Tolerance) -> f64
where
    W: Copy + Into<f64>,
    G: Copy + Into<f64>,
{
    match vit::close::check(want, got, tolerance) {
        Ok(worst) => worst,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Asserts that `got` is a whole, finite answer that differs from `want` beyond `tolerance`
/// (a NaN or a short answer does not count as "different": it fails as well).
#[track_caller]
pub fn assert_differ<W, G>(what: &str, want: &[W], got: &[G], tolerance: Tolerance)
where
    W: Copy + Into<f64>,
    G: Copy + Into<f64>,
{
    match vit::close::check(want, got, tolerance) {
        Err(vit::close::Mismatch::Beyond { .. }) => {}
        Ok(worst) => panic!("{what}: the answers are the same (largest difference {worst:e})"),
        Err(e) => panic!("{what}: {e}"),
    }
}
