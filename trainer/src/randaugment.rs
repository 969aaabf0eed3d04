//! RandAugment as timm's `rand_augment_transform` does it with `inc1`: the op set
//! `_RAND_INCREASING_TRANSFORMS`, its magnitude-to-argument functions, and PIL's arithmetic for
//! each op, so that `rand-m9-mstd0.5-inc1` here is the augmentation a timm recipe of that name
//! trains with (tested against timm and PIL on a fixture made by
//! `tests/fixtures/make_randaugment_reference.py`).
//!
//! Two choices timm leaves open are fixed here: the geometric ops resample bilinearly (timm
//! picks bilinear or bicubic at random unless told), and magnitudes are clipped to 0..10
//! (timm's default; its `mmax` is not offered).

use vit::rng::Rng;

/// timm's `_LEVEL_DENOM`: magnitudes run 0..10, an op reaching its full range at 10.
pub const MAX_MAGNITUDE: f64 = 10.0;

/// One op of `_RAND_INCREASING_TRANSFORMS`; "increasing": a larger magnitude is always a
/// stronger change. Magnitude 0 leaves the image alone, but for the three ops that take no
/// magnitude and Posterize, whose range runs from 4 bits kept down to none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    Solarize,
    SolarizeAdd,
    Color,
    Contrast,
    Brightness,
    Sharpness,
    ShearX,
    ShearY,
    TranslateX,
    TranslateY,
}

/// In timm's order; each image draws its ops uniformly from these, with replacement.
pub(crate) const OPS: [Op; 15] = [
    Op::AutoContrast,
    Op::Equalize,
    Op::Invert,
    Op::Rotate,
    Op::Posterize,
    Op::Solarize,
    Op::SolarizeAdd,
    Op::Color,
    Op::Contrast,
    Op::Brightness,
    Op::Sharpness,
    Op::ShearX,
    Op::ShearY,
    Op::TranslateX,
    Op::TranslateY,
];

/// How RandAugment runs: `n` ops per image, each applied with probability one half, at a
/// magnitude drawn from N(`m`, `mstd`) (`mstd` 0: always `m`; infinite: uniform in 0..`m`),
/// clipped to 0..10.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RandAugment {
    pub n: u32,
    pub m: f64,
    pub mstd: f64,
}

impl RandAugment {
    pub(crate) fn apply(&self, img: &mut [u8], side: usize, fill: [u8; 3], rng: &mut Rng) {
        for _ in 0..self.n {
            let op = OPS[rng.below(OPS.len())];
            if !rng.chance(0.5) {
                continue;
            }
            let magnitude = self.magnitude(rng);
            let negate = op.signed() && rng.chance(0.5);
            apply(img, side, op, op.arg(magnitude, negate), fill);
        }
    }

    /// One op's magnitude, drawn afresh for each op as timm's `AugmentOp` does.
    fn magnitude(&self, rng: &mut Rng) -> f64 {
        let m = if self.mstd.is_infinite() {
            self.m * rng.next_f64()
        } else if self.mstd > 0.0 {
            self.m + self.mstd * rng.normal() as f64
        } else {
            self.m
        };
        m.clamp(0.0, MAX_MAGNITUDE)
    }
}

impl Op {
    /// The ops whose argument timm negates half the time (`_randomly_negate`).
    fn signed(self) -> bool {
        !matches!(
            self,
            Op::AutoContrast
                | Op::Equalize
                | Op::Invert
                | Op::Posterize
                | Op::Solarize
                | Op::SolarizeAdd
        )
    }

    /// timm's level function (`LEVEL_TO_ARG`) for this op at `magnitude` in 0..10: degrees,
    /// bits kept, a threshold, an addend, an enhancement factor, a shear, or a translation as
    /// a fraction of the side; 0 for the ops that take no argument. Computed in f64 with
    /// Python's truncations, since the integer ones step where timm's do.
    pub(crate) fn arg(self, magnitude: f64, negate: bool) -> f64 {
        let level = magnitude / MAX_MAGNITUDE;
        let sign = |x: f64| if negate { -x } else { x };
        match self {
            Op::AutoContrast | Op::Equalize | Op::Invert => 0.0,
            Op::Rotate => sign(level * 30.0),
            Op::Posterize => 4.0 - (level * 4.0).trunc(),
            Op::Solarize => 256.0 - (level * 256.0).trunc().min(256.0),
            Op::SolarizeAdd => (level * 110.0).trunc().min(128.0),
            Op::Color | Op::Contrast | Op::Brightness | Op::Sharpness => {
                (1.0 + sign(level * 0.9)).max(0.1)
            }
            Op::ShearX | Op::ShearY => sign(level * 0.3),
            Op::TranslateX | Op::TranslateY => sign(level * 0.45),
        }
    }
}

/// Applies `op` with timm's argument `arg` (see [`Op::arg`]) as PIL does it; `fill` is what
/// the geometric ops show where the source lies outside the image (timm's `img_mean`).
pub(crate) fn apply(img: &mut [u8], side: usize, op: Op, arg: f64, fill: [u8; 3]) {
    match op {
        Op::AutoContrast => auto_contrast(img),
        Op::Equalize => equalize(img),
        Op::Invert => img.iter_mut().for_each(|v| *v = 255 - *v),
        Op::Rotate => rotate(img, side, arg, fill),
        Op::Posterize => {
            // ImageOps.posterize keeps the top `bits` bits; 0 bits (magnitude 10) leaves black,
            // as Pillow did up to version 12 (Pillow 13 refuses 0 bits, and timm raises there).
            let bits = arg as u32;
            if bits < 8 {
                let mask = !((1u32 << (8 - bits)) - 1) as u8;
                img.iter_mut().for_each(|v| *v &= mask);
            }
        }
        Op::Solarize => {
            let threshold = arg as u32;
            img.iter_mut()
                .filter(|v| **v as u32 >= threshold)
                .for_each(|v| *v = 255 - *v);
        }
        Op::SolarizeAdd => {
            let add = arg as u32;
            img.iter_mut()
                .filter(|v| **v < 128)
                .for_each(|v| *v = (*v as u32 + add).min(255) as u8);
        }
        Op::Color => {
            let grey: Vec<u8> = img.chunks_exact(3).flat_map(|p| [luma(p); 3]).collect();
            blend(img, &grey, arg);
        }
        Op::Contrast => {
            // ImageEnhance.Contrast: a flat image at the rounded mean of the "L" conversion.
            let n = (img.len() / 3).max(1) as f64;
            let sum: u64 = img.chunks_exact(3).map(|p| luma(p) as u64).sum();
            let mean = (sum as f64 / n + 0.5) as u8;
            blend(img, &vec![mean; img.len()], arg);
        }
        Op::Brightness => blend(img, &vec![0; img.len()], arg),
        Op::Sharpness => {
            let smooth = smoothed(img, side);
            blend(img, &smooth, arg);
        }
        Op::ShearX => affine(img, side, [1.0, arg, 0.0, 0.0, 1.0, 0.0], fill),
        Op::ShearY => affine(img, side, [1.0, 0.0, 0.0, arg, 1.0, 0.0], fill),
        Op::TranslateX => {
            let pixels = arg * side as f64;
            affine(img, side, [1.0, 0.0, pixels, 0.0, 1.0, 0.0], fill);
        }
        Op::TranslateY => {
            let pixels = arg * side as f64;
            affine(img, side, [1.0, 0.0, 0.0, 0.0, 1.0, pixels], fill);
        }
    }
}

/// PIL's RGB to "L": ITU-R 601-2 luma in 16-bit fixed point, rounded.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

/// PIL's `Image.blend(base, img, factor)`, which every ImageEnhance op is: in single
/// precision, truncated, and clipped only when extrapolating (factor outside 0..1).
fn blend(img: &mut [u8], base: &[u8], factor: f64) {
    let alpha = factor as f32;
    if alpha == 1.0 {
        return;
    }
    for (v, &b) in img.iter_mut().zip(base) {
        let x = b as f32 + alpha * (*v as i32 - b as i32) as f32;
        // `as u8` truncates and saturates, PIL's clip in both branches.
        *v = x as u8;
    }
}

/// ImageOps.autocontrast (no cutoff): per channel, a lookup table stretching min..max to
/// 0..255, truncated.
fn auto_contrast(img: &mut [u8]) {
    for c in 0..3 {
        let channel = img.iter().skip(c).step_by(3);
        let (lo, hi) = channel.fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi <= lo {
            continue;
        }
        let scale = 255.0 / (hi - lo) as f64;
        let offset = -(lo as f64) * scale;
        let lut: Vec<u8> = (0..256)
            .map(|ix| (ix as f64 * scale + offset).trunc().clamp(0.0, 255.0) as u8)
            .collect();
        for v in img.iter_mut().skip(c).step_by(3) {
            *v = lut[*v as usize];
        }
    }
}

/// ImageOps.equalize, per channel.
fn equalize(img: &mut [u8]) {
    for c in 0..3 {
        let mut hist = [0usize; 256];
        img.iter()
            .skip(c)
            .step_by(3)
            .for_each(|&v| hist[v as usize] += 1);
        let Some(last) = hist.iter().rposition(|&n| n > 0) else {
            continue;
        };
        let step = (hist.iter().sum::<usize>() - hist[last]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut n = step / 2;
        for (entry, &count) in lut.iter_mut().zip(&hist) {
            // PIL clips lookup-table entries to a byte.
            *entry = (n / step).min(255) as u8;
            n += count;
        }
        img.iter_mut()
            .skip(c)
            .step_by(3)
            .for_each(|v| *v = lut[*v as usize]);
    }
}

/// PIL's SMOOTH filter (3x3, centre weight 5 of 13) as its `ImagingFilter3x3` computes it, in
/// single precision from the bottom row up; the border keeps its pixels.
fn smoothed(img: &[u8], side: usize) -> Vec<u8> {
    let mut out = img.to_vec();
    if side < 3 {
        return out;
    }
    let (edge, centre) = (1.0f32 / 13.0, 5.0f32 / 13.0);
    let px = |x: usize, y: usize, c: usize| img[(y * side + x) * 3 + c] as f32;
    for y in 1..side - 1 {
        for x in 1..side - 1 {
            for c in 0..3 {
                let row = |y: usize, mid: f32| {
                    px(x - 1, y, c) * edge + px(x, y, c) * mid + px(x + 1, y, c) * edge
                };
                let mut sum = 0.5f32;
                sum += row(y + 1, edge);
                sum += row(y, centre);
                sum += row(y - 1, edge);
                out[(y * side + x) * 3 + c] = sum.clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// `Image.rotate(degrees, BILINEAR, fillcolor=fill)` about the centre, counter-clockwise for
/// positive degrees, with PIL's matrix (cosines rounded to 15 decimals, as it does).
fn rotate(img: &mut [u8], side: usize, degrees: f64, fill: [u8; 3]) {
    let degrees = degrees.rem_euclid(360.0);
    if degrees == 0.0 {
        return;
    }
    let round15 = |x: f64| format!("{x:.15}").parse::<f64>().unwrap_or(x);
    let angle = -degrees.to_radians();
    let (sin, cos) = angle.sin_cos();
    let (a, b, d, e) = (round15(cos), round15(sin), round15(-sin), round15(cos));
    let centre = side as f64 / 2.0;
    let c = a * -centre + b * -centre + 0.0 + centre;
    let f = d * -centre + e * -centre + 0.0 + centre;
    affine(img, side, [a, b, c, d, e, f], fill);
}

/// `Image.transform(size, AFFINE, m, BILINEAR, fillcolor=fill)`: output pixel (x, y) samples
/// the source at `(m0 x' + m1 y' + m2, m3 x' + m4 y' + m5)` with `x' = x + 0.5` (pixel
/// centres); a sample outside the source takes `fill`, one inside blends its 2x2 neighbours
/// with the edge repeated, and the result is truncated, as PIL's `bilinear_filter32RGB`.
fn affine(img: &mut [u8], side: usize, m: [f64; 6], fill: [u8; 3]) {
    let src = img.to_vec();
    let s = side as f64;
    let last = side as i64 - 1;
    let clip = |v: i64| v.clamp(0, last) as usize;
    for y in 0..side {
        for x in 0..side {
            let (u, v) = (x as f64 + 0.5, y as f64 + 0.5);
            let sx = m[0] * u + m[1] * v + m[2];
            let sy = m[3] * u + m[4] * v + m[5];
            let out = &mut img[(y * side + x) * 3..][..3];
            if !(0.0..s).contains(&sx) || !(0.0..s).contains(&sy) {
                out.copy_from_slice(&fill);
                continue;
            }
            let (sx, sy) = (sx - 0.5, sy - 0.5);
            let (x0, y0) = (sx.floor() as i64, sy.floor() as i64);
            let (dx, dy) = (sx - x0 as f64, sy - y0 as f64);
            let (xa, xb) = (clip(x0), clip(x0 + 1));
            let at = |x: usize, y: usize, c: usize| src[(y * side + x) * 3 + c] as i32;
            for (c, o) in out.iter_mut().enumerate() {
                let lerp = |row: usize| {
                    at(xa, row, c) as f64 + (at(xb, row, c) - at(xa, row, c)) as f64 * dx
                };
                let top = lerp(clip(y0));
                let bottom = if y0 < last {
                    lerp((y0 + 1) as usize)
                } else {
                    top
                };
                *o = (top + (bottom - top) * dy) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// timm's name for each op, as `tests/fixtures/make_randaugment_reference.py` records it.
    fn from_timm(name: &str) -> Op {
        match name {
            "AutoContrast" => Op::AutoContrast,
            "Equalize" => Op::Equalize,
            "Invert" => Op::Invert,
            "Rotate" => Op::Rotate,
            "PosterizeIncreasing" => Op::Posterize,
            "SolarizeIncreasing" => Op::Solarize,
            "SolarizeAdd" => Op::SolarizeAdd,
            "ColorIncreasing" => Op::Color,
            "ContrastIncreasing" => Op::Contrast,
            "BrightnessIncreasing" => Op::Brightness,
            "SharpnessIncreasing" => Op::Sharpness,
            "ShearX" => Op::ShearX,
            "ShearY" => Op::ShearY,
            "TranslateXRel" => Op::TranslateX,
            "TranslateYRel" => Op::TranslateY,
            other => panic!("the fixture names an op timm's inc1 set does not have: {other}"),
        }
    }

    /// Exact, byte for byte, the geometric ops included: bilinear resampling is reproduced in
    /// PIL's own double-precision arithmetic and truncation, and the enhancements in its single
    /// precision, so no tolerance is needed.
    #[test]
    fn every_op_matches_timm_and_pil_on_the_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/randaugment_reference.safetensors"
        );
        let bytes = std::fs::read(path).expect("the committed RandAugment fixture");
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let meta = header.metadata().as_ref().expect("fixture metadata");
        let cases: Vec<serde_json::Value> = serde_json::from_str(&meta["cases"]).unwrap();
        let fill: [u8; 3] = serde_json::from_str(&meta["fill"]).unwrap();
        let image = st.tensor("image").unwrap();
        let side = image.shape()[0];
        assert_eq!(image.shape(), [side, side, 3]);
        let mut seen = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let op = from_timm(case["op"].as_str().unwrap());
            let magnitude = case["magnitude"].as_f64().unwrap();
            let negate = case["negate"].as_bool().unwrap();
            let what = format!("case {i}: {op:?} at magnitude {magnitude}, negated {negate}");
            // timm's level function first: the argument PIL is given.
            let arg = op.arg(magnitude, negate);
            let timm_arg = case["args"]
                .as_array()
                .unwrap()
                .first()
                .map_or(0.0, |a| a.as_f64().unwrap());
            assert!(
                (arg - timm_arg).abs() < 1e-12,
                "{what}: {arg} vs timm's {timm_arg}"
            );
            let mut out = image.data().to_vec();
            apply(&mut out, side, op, arg, fill);
            let want = st.tensor(&format!("case{i}")).unwrap().data();
            let differ = out.iter().zip(want).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ,
                0,
                "{what}: {differ} of {} bytes differ from PIL's",
                want.len()
            );
            seen.push(op);
        }
        assert!(
            OPS.iter().all(|op| seen.contains(op)),
            "the fixture covers every op"
        );
    }

    #[test]
    fn magnitude_zero_leaves_the_image_alone_but_posterize_keeps_four_bits() {
        let img: Vec<u8> = (0..8 * 8 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let mut out = img.clone();
        apply(
            &mut out,
            8,
            Op::Posterize,
            Op::Posterize.arg(0.0, false),
            [128; 3],
        );
        let four_bits: Vec<u8> = img.iter().map(|v| v & 0xf0).collect();
        assert_eq!(out, four_bits);
        for op in OPS {
            if matches!(
                op,
                Op::AutoContrast | Op::Equalize | Op::Invert | Op::Posterize
            ) {
                continue;
            }
            for negate in [false, true] {
                let mut out = img.clone();
                apply(&mut out, 8, op, op.arg(0.0, negate), [128; 3]);
                assert_eq!(out, img, "{op:?} at magnitude 0");
            }
        }
    }

    #[test]
    fn ops_are_safe_on_tiny_images() {
        let mut rng = Rng::new(3);
        let ra = RandAugment {
            n: 8,
            m: 10.0,
            mstd: 0.5,
        };
        for side in [1, 2, 3] {
            let mut img: Vec<u8> = (0..side * side * 3).map(|i| (i * 91 % 256) as u8).collect();
            for _ in 0..50 {
                ra.apply(&mut img, side, [1, 2, 3], &mut rng);
            }
            for op in OPS {
                apply(&mut img, side, op, op.arg(10.0, true), [1, 2, 3]);
            }
        }
    }

    #[test]
    fn magnitude_noise_follows_mstd() {
        let draws = |m: f64, mstd: f64| -> Vec<f64> {
            let ra = RandAugment { n: 2, m, mstd };
            let mut rng = Rng::new(11);
            (0..4000).map(|_| ra.magnitude(&mut rng)).collect()
        };
        let stats = |v: &[f64]| {
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / v.len() as f64;
            (mean, var.sqrt())
        };
        let (mean, std) = stats(&draws(5.0, 0.5));
        assert!(
            (mean - 5.0).abs() < 0.05 && (std - 0.5).abs() < 0.03,
            "{mean} {std}"
        );
        assert!(draws(9.0, 0.0).iter().all(|&m| m == 9.0));
        // Clipped to timm's 0..10: at m 10 half the draws would lie above.
        let high = draws(10.0, 0.5);
        assert!(high.iter().all(|&m| m <= 10.0));
        assert!(high.iter().filter(|&&m| m == 10.0).count() > 1500);
        // mstd inf (timm: mstd above 100): uniform in 0..m.
        let (mean, _) = stats(&draws(8.0, f64::INFINITY));
        assert!((mean - 4.0).abs() < 0.15, "{mean}");
    }
}
