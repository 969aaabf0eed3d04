//! The one rule for "these numbers are the same answer", for every check that compares two
//! computations of one thing (GPU against CPU, the page against the CLI, ours against timm) and
//! for the trainer's GPU self-check: the same length, every value finite on both sides, and each
//! difference within a tolerance. A failure names the worst index, its two values and how many
//! values failed, so a NaN, an infinity or a short answer can never pass as "close".
//!
//! (`f64::max` skips NaN, so a worst difference taken with `fold(0.0, f64::max)` ignores a NaN
//! answer; `zip` stops at the shorter side, so it ignores a missing tail.)

use std::fmt;

/// How far apart two values may be. The bound for a value `want` is
/// `max(abs, rel * |want|)`: absolute near zero, relative beyond `abs / rel`.
/// With [`Tolerance::norm`] the rule applies to the whole vector's Euclidean norms instead of
/// to each value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The absolute bound.
    pub abs: f64,
    /// The bound relative to the expected value (or its norm).
    pub rel: f64,
    /// Compare `|want - got|` as a vector (its Euclidean norm) against `|want|`'s norm.
    pub norm: bool,
}

impl Tolerance {
    /// Each `|want - got| <= bound`.
    pub const fn abs(bound: f64) -> Self {
        Self {
            abs: bound,
            rel: 0.0,
            norm: false,
        }
    }

    /// Each `|want - got| <= bound * max(|want|, 1)`: relative, and absolute below 1.
    pub const fn rel(bound: f64) -> Self {
        Self {
            abs: bound,
            rel: bound,
            norm: false,
        }
    }

    /// `‖want - got‖₂ <= max(abs, rel * ‖want‖₂)` over the whole vector (a tensor's gradient,
    /// say), with the worst single value named on failure.
    pub const fn norm(abs: f64, rel: f64) -> Self {
        Self {
            abs,
            rel,
            norm: true,
        }
    }

    fn bound(&self, want: f64) -> f64 {
        self.abs.max(self.rel * want.abs())
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, w) = if self.norm {
            ("‖want - got‖", "‖want‖")
        } else {
            ("|want - got|", "|want|")
        };
        let (a, r) = (self.abs, self.rel);
        if r == 0.0 {
            write!(f, "{d} <= {a:e}")
        } else if a == r {
            write!(f, "{d} <= {r:e} x max({w}, 1)")
        } else {
            write!(f, "{d} <= max({a:e}, {r:e} x {w})")
        }
    }
}

/// Why two answers are not the same.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// The answers have different lengths.
    Length { want: usize, got: usize },
    /// Some value is NaN or infinite: the first such index, its two values, how many.
    NotFinite {
        index: usize,
        want: f64,
        got: f64,
        count: usize,
        len: usize,
    },
    /// Some difference is beyond the tolerance: the worst index (relative to its bound), its
    /// two values, how many values are beyond it (for a norm tolerance, how many differ at
    /// all), and the largest difference (for a norm tolerance, the difference's norm).
    Beyond {
        index: usize,
        want: f64,
        got: f64,
        count: usize,
        len: usize,
        difference: f64,
        tolerance: Tolerance,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Length { want, got } => {
                write!(f, "{got} values where {want} were expected")
            }
            Mismatch::NotFinite {
                index,
                want,
                got,
                count,
                len,
            } => write!(
                f,
                "{count} of {len} values are not finite; the first at index {index}: \
                 want {want}, got {got}"
            ),
            Mismatch::Beyond {
                index,
                want,
                got,
                count,
                len,
                difference,
                tolerance,
            } => {
                if tolerance.norm {
                    write!(
                        f,
                        "the difference is beyond {tolerance} (its norm is {difference:e}; \
                         {count} of {len} values differ); the worst at index {index}: \
                         want {want}, got {got}"
                    )
                } else {
                    write!(
                        f,
                        "{count} of {len} values differ beyond {tolerance} (the largest \
                         difference is {difference:e}); the worst at index {index}: \
                         want {want}, got {got}"
                    )
                }
            }
        }
    }
}

impl std::error::Error for Mismatch {}

/// Whether `got` is the same answer as `want` within `tolerance` (the module's rule). On
/// success, the largest difference (for a norm tolerance, the norm of the difference), for logs.
pub fn check<W, G>(want: &[W], got: &[G], tolerance: Tolerance) -> Result<f64, Mismatch>
where
    W: Copy + Into<f64>,
    G: Copy + Into<f64>,
{
    if want.len() != got.len() {
        return Err(Mismatch::Length {
            want: want.len(),
            got: got.len(),
        });
    }
    let len = want.len();
    let pairs = || {
        want.iter()
            .zip(got)
            .map(|(&w, &g)| (w.into(), g.into()))
            .enumerate()
    };
    let bad = pairs().filter(|(_, (w, g))| !(w.is_finite() && g.is_finite()));
    if let Some((index, (w, g))) = bad.clone().next() {
        return Err(Mismatch::NotFinite {
            index,
            want: w,
            got: g,
            count: bad.count(),
            len,
        });
    }
    // The worst value: the largest difference for its bound (for a norm, the largest alone).
    let ratio = |w: f64, g: f64| {
        let d = (w - g).abs();
        if tolerance.norm {
            d
        } else {
            d / tolerance.bound(w)
        }
    };
    let worst = pairs().fold(None, |best: Option<(usize, f64, f64, f64)>, (i, (w, g))| {
        let r = ratio(w, g);
        match best {
            Some(b) if b.3 >= r => Some(b),
            _ => Some((i, w, g, r)),
        }
    });
    let (difference, count, fails) = if tolerance.norm {
        let diff = pairs()
            .map(|(_, (w, g))| (w - g) * (w - g))
            .sum::<f64>()
            .sqrt();
        let size = pairs().map(|(_, (w, _))| w * w).sum::<f64>().sqrt();
        // Every value is finite here, so no comparison below meets a NaN.
        let fails = diff > tolerance.bound(size);
        let count = pairs().filter(|(_, (w, g))| w != g).count();
        (diff, count, fails)
    } else {
        let diff = pairs().map(|(_, (w, g))| (w - g).abs()).fold(0.0, f64::max);
        let count = pairs()
            .filter(|(_, (w, g))| (w - g).abs() > tolerance.bound(*w))
            .count();
        (diff, count, count > 0)
    };
    match worst {
        Some((index, want, got, _)) if fails => Err(Mismatch::Beyond {
            index,
            want,
            got,
            count,
            len,
            difference,
            tolerance,
        }),
        _ => Ok(difference),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: Tolerance = Tolerance::abs(1e-4);

    #[test]
    fn the_same_answer_passes_and_says_its_largest_difference() {
        let d = check(&[1.0f32, 2.0, -3.0], &[1.0f32, 2.00005, -3.0], TOL).unwrap();
        assert!(d > 4e-5 && d < 6e-5, "{d}");
        assert_eq!(check::<f64, f64>(&[], &[], TOL), Ok(0.0));
        // Mixed widths: the page's f64 against the model's f32.
        assert!(check(&[0.5f64], &[0.5f32], TOL).is_ok());
    }

    #[test]
    fn a_nan_answer_fails() {
        let e = check(&[1.0f32, 2.0, 3.0], &[1.0, f32::NAN, 3.0], TOL).unwrap_err();
        assert!(
            matches!(
                e,
                Mismatch::NotFinite {
                    index: 1,
                    count: 1,
                    len: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("got NaN"), "{e}");
        // All NaN, and a NaN in the expected side, fail as well.
        assert!(check(&[1.0f64; 4], &[f64::NAN; 4], TOL).is_err());
        assert!(check(&[f64::NAN], &[f64::NAN], TOL).is_err());
    }

    #[test]
    fn an_infinite_answer_fails() {
        for bad in [f64::INFINITY, f64::NEG_INFINITY] {
            let e = check(&[1.0, 2.0], &[bad, bad], Tolerance::rel(1e-3)).unwrap_err();
            assert!(
                matches!(
                    e,
                    Mismatch::NotFinite {
                        index: 0,
                        count: 2,
                        ..
                    }
                ),
                "{e:?}"
            );
        }
        // Even where both sides agree on the infinity.
        assert!(check(&[f64::INFINITY], &[f64::INFINITY], TOL).is_err());
    }

    #[test]
    fn a_short_or_long_answer_fails() {
        let want = [1.0f32, 2.0, 3.0];
        assert_eq!(
            check(&want, &want[..2], TOL),
            Err(Mismatch::Length { want: 3, got: 2 })
        );
        assert_eq!(
            check(&want, &[1.0f32, 2.0, 3.0, 4.0], TOL),
            Err(Mismatch::Length { want: 3, got: 4 })
        );
        assert!(check(&want, &[] as &[f32], TOL).is_err());
    }

    #[test]
    fn a_difference_beyond_the_bound_names_the_worst_index() {
        let e = check(&[0.0, 1.0, 2.0, 3.0], &[0.0, 1.1, 2.0, 3.5], TOL).unwrap_err();
        match e {
            Mismatch::Beyond {
                index,
                want,
                got,
                count,
                len,
                ..
            } => assert_eq!((index, want, got, count, len), (3, 3.0, 3.5, 2, 4)),
            e => panic!("{e:?}"),
        }
        let text = e_text(&[0.0, 1.0], &[0.0, 1.1], TOL);
        assert!(
            text.contains("index 1") && text.contains("1 of 2"),
            "{text}"
        );
    }

    #[test]
    fn relative_bounds_scale_with_the_value() {
        let t = Tolerance::rel(1e-3);
        // 0.05 off at 100 is within 1e-3 relative; 0.005 off at 0.5 is not (bound 1e-3).
        assert!(check(&[100.0], &[100.05], t).is_ok());
        assert!(check(&[0.5], &[0.505], t).is_err());
        // The worst index is the one furthest beyond its own bound, not the largest |Δ|.
        let e = check(&[1000.0, 0.5], &[1000.9, 0.51], t).unwrap_err();
        assert!(
            matches!(
                e,
                Mismatch::Beyond {
                    index: 1,
                    count: 1,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn a_norm_bound_takes_the_vector_whole() {
        let t = Tolerance::norm(0.0, 1e-2);
        // Norm of want 5; difference norm 0.03 <= 0.05 though one value is off by 0.03.
        assert!(check(&[3.0, 4.0], &[3.03, 4.0], t).is_ok());
        let e = check(&[3.0, 4.0], &[3.0, 4.1], t).unwrap_err();
        assert!(matches!(e, Mismatch::Beyond { index: 1, .. }), "{e:?}");
        assert!(check(&[3.0, 4.0], &[3.0, f64::NAN], t).is_err());
    }

    fn e_text(want: &[f64], got: &[f64], t: Tolerance) -> String {
        check(want, got, t).unwrap_err().to_string()
    }
}
