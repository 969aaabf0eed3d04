//! A small seedable PRNG, so runs are reproducible without the `rand` crate.
//!
//! xoroshiro128++ (Blackman and Vigna): two words of state, 64 bits per step, fast, and good
//! enough for shuffling and augmentation. Seeds are spread with SplitMix64 so that nearby
//! seeds (0, 1, 2, ...) give unrelated streams. Checkpoints store no generator state: every
//! stream is derived from (seed, epoch, batch, ...) with [`Rng::derive`], so a resumed run
//! recreates the streams it needs from its position alone.

/// A reproducible random number generator; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 2],
}

/// One SplitMix64 step: a bijective mixer that turns any counter into well-spread bits.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let s = [splitmix64(&mut sm), splitmix64(&mut sm)];
        // The all-zero state is xoroshiro's one fixed point; SplitMix64 never yields two zeros
        // in a row, but a guard costs nothing.
        if s == [0, 0] {
            return Self { s: [1, 0] };
        }
        Self { s }
    }

    /// An independent stream for `seed` and a path such as `[epoch, batch]`.
    ///
    /// Work split across threads takes its randomness from its own stream, so the result does
    /// not depend on which thread ran it, or on whether a run was resumed part-way.
    pub fn derive(seed: u64, stream: &[u64]) -> Self {
        let mut h = seed;
        let mut acc = splitmix64(&mut h);
        for &part in stream {
            // Hashing the running value with each part makes [1, 2] and [2, 1] differ, and the
            // length is folded in so that [] and [0] differ too.
            let mut x = acc ^ part.wrapping_mul(0xd6e8_feb8_6659_fd93);
            acc = splitmix64(&mut x);
        }
        let mut len = acc ^ stream.len() as u64;
        Self::new(splitmix64(&mut len))
    }

    pub fn next_u64(&mut self) -> u64 {
        let [s0, mut s1] = self.s;
        let result = s0.wrapping_add(s1).rotate_left(17).wrapping_add(s0);
        s1 ^= s0;
        self.s = [s0.rotate_left(49) ^ s1 ^ (s1 << 21), s1.rotate_left(28)];
        result
    }

    /// Uniform in [0, 1), with the 24 bits an `f32` can hold.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [0, 1), with 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..n`, without modulo bias (Lemire's multiply-and-reject).
    ///
    /// # Panics
    /// When `n` is zero: there is nothing to choose from, which is a caller's bug.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0, "Rng::below(0): empty range");
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.next_f32() < p
    }

    /// Standard normal (Box-Muller); the second value is dropped to keep the state two words.
    pub fn normal(&mut self) -> f32 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 use the boost
    /// Gamma(a) = Gamma(a + 1) * U^(1/a).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape.is_nan() || shape <= 0.0 {
            return 0.0;
        }
        if shape < 1.0 {
            let u = 1.0 - self.next_f64();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal() as f64;
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = 1.0 - self.next_f64();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); in [0, 1].
    pub fn beta(&mut self, a: f32, b: f32) -> f32 {
        let x = self.gamma(a as f64);
        let y = self.gamma(b as f64);
        if x + y > 0.0 {
            (x / (x + y)) as f32
        } else {
            // Tiny shapes can underflow both draws; Beta(a, a) then sits at 0 or 1 anyway.
            if self.chance(0.5) { 0.0 } else { 1.0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert!((0..100).all(|_| a.next_u64() == b.next_u64()));
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn derived_streams_differ_by_path() {
        let first = |seed, path: &[u64]| Rng::derive(seed, path).next_u64();
        let values = [
            first(1, &[]),
            first(1, &[0]),
            first(1, &[1, 2]),
            first(1, &[2, 1]),
            first(1, &[1, 2, 0]),
            first(2, &[1, 2]),
        ];
        for i in 0..values.len() {
            for j in i + 1..values.len() {
                assert_ne!(values[i], values[j], "paths {i} and {j} collide");
            }
        }
        assert_eq!(first(3, &[4, 5]), first(3, &[4, 5]));
    }

    #[test]
    fn uniform_values_are_in_range_and_unbiased() {
        let mut rng = Rng::new(1);
        let mut counts = [0usize; 6];
        for _ in 0..60_000 {
            let f = rng.next_f32();
            assert!((0.0..1.0).contains(&f));
            counts[rng.below(6)] += 1;
        }
        // Each bucket expects 10000 with a standard deviation near 91.
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn normal_has_unit_moments() {
        let mut rng = Rng::new(2);
        let xs: Vec<f64> = (0..50_000).map(|_| rng.normal() as f64).collect();
        let (mean, var) = mean_var(&xs);
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut rng = Rng::new(3);
        let mut v: Vec<u32> = (0..100).collect();
        rng.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
        rng.shuffle::<u8>(&mut []);
    }

    #[test]
    fn beta_matches_its_moments() {
        let mut rng = Rng::new(4);
        // Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)).
        for a in [0.2f32, 1.0, 0.8, 5.0] {
            let xs: Vec<f64> = (0..40_000).map(|_| rng.beta(a, a) as f64).collect();
            assert!(xs.iter().all(|x| (0.0..=1.0).contains(x)));
            let (mean, var) = mean_var(&xs);
            let want = 1.0 / (4.0 * (2.0 * a as f64 + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "a={a}: mean {mean}");
            assert!(
                (var - want).abs() < 0.1 * want,
                "a={a}: var {var}, want {want}"
            );
        }
    }

    #[test]
    fn gamma_has_mean_equal_to_shape() {
        let mut rng = Rng::new(5);
        for shape in [0.3, 1.0, 4.5] {
            let xs: Vec<f64> = (0..40_000).map(|_| rng.gamma(shape)).collect();
            let (mean, _) = mean_var(&xs);
            assert!(
                (mean - shape).abs() < 0.03 * shape.max(1.0),
                "{shape}: {mean}"
            );
        }
    }
}
