//! The heat maps' colours, shared by the page and the CLI's pictures so both read alike.

/// Magma-like stops, dark to light; www/styles/main.css's legend uses the same ones.
const STOPS: [[f64; 3]; 6] = [
    [0.0, 0.0, 4.0],
    [59.0, 15.0, 112.0],
    [140.0, 41.0, 129.0],
    [222.0, 73.0, 104.0],
    [254.0, 159.0, 109.0],
    [252.0, 253.0, 191.0],
];

/// `v` in [0, 1] (clamped) to a colour, dark for 0, light for 1.
pub fn magma(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0) as f64 * (STOPS.len() - 1) as f64;
    let i = (v.floor() as usize).min(STOPS.len() - 2);
    let f = v - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [0, 1, 2].map(|c| (a[c] + (b[c] - a[c]) * f).round() as u8)
}

/// How opaque a value's colour is drawn over a photo: weak values are more transparent, so the
/// photo stays readable where the map is low.
pub fn alpha(v: f32) -> f32 {
    0.35 + 0.65 * v.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_to_light_and_clamped() {
        assert_eq!(magma(0.0), [0, 0, 4]);
        assert_eq!(magma(1.0), [252, 253, 191]);
        assert_eq!(magma(-3.0), magma(0.0));
        assert_eq!(magma(7.0), magma(1.0));
        // Halfway between the 3rd and 4th stops.
        assert_eq!(magma(0.5), [181, 57, 117]);
        let brightness = |v: f32| magma(v).iter().map(|&c| c as u32).sum::<u32>();
        assert!((0..10).all(|i| brightness(i as f32 / 10.0) < brightness((i + 1) as f32 / 10.0)));
        assert!(alpha(0.0) < alpha(1.0) && alpha(1.0) == 1.0);
    }
}
