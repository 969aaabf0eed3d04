//! Image resizing exactly as Pillow does it, so a photo reaches the model as it reaches timm's.
//!
//! timm's eval transform resizes with `torchvision.transforms.Resize` on a PIL image, which is
//! `PIL.Image.resize`: a separable convolution whose filter widens by the scale factor when
//! shrinking (antialiasing), with coefficients rounded to 22-bit fixed point and each of the two
//! passes rounded and clipped to 8 bits (Pillow's `Resample.c`). Matching that arithmetic step
//! for step, pass order included (Pillow 13's: rows first when the height shrinks by more than
//! twice as many pixels as the width; Pillow 12 and older went columns first but for very tall
//! images, so they differ from 13 in the last bit of a few pixels), gives the same bytes, not
//! just close ones: timm's probabilities are reproduced to float rounding instead of to a
//! resampling difference.

use std::borrow::Cow;
use std::ops::Range;

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Pillow's resampling filters, by the names timm's `pretrained_cfg.interpolation` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Nearest,
    Box,
    Bilinear,
    Hamming,
    #[default]
    Bicubic,
    Lanczos,
}

impl Interpolation {
    /// timm's name for it (`str_to_interp_mode`), or `None` for one Pillow does not have.
    pub fn from_timm(name: &str) -> Option<Self> {
        Some(match name {
            "nearest" => Self::Nearest,
            "box" => Self::Box,
            "bilinear" => Self::Bilinear,
            "hamming" => Self::Hamming,
            "bicubic" => Self::Bicubic,
            "lanczos" => Self::Lanczos,
            _ => return None,
        })
    }

    /// Half the filter's width at scale 1, in input pixels.
    fn support(self) -> f64 {
        match self {
            Self::Nearest | Self::Box => 0.5,
            Self::Bilinear | Self::Hamming => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        use std::f64::consts::PI;
        let sinc = |x: f64| {
            if x == 0.0 {
                1.0
            } else {
                (x * PI).sin() / (x * PI)
            }
        };
        match self {
            Self::Nearest | Self::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Bilinear => (1.0 - x.abs()).max(0.0),
            Self::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    // Pillow writes these constants as C floats.
                    let t = x * PI;
                    t.sin() / t * (0.54f32 as f64 + 0.46f32 as f64 * t.cos())
                }
            }
            Self::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
            Self::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// Fixed-point precision of Pillow's 8-bit coefficients.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output position: the first input index and the integer weights from there on.
struct Taps {
    first: Vec<usize>,
    weights: Vec<Vec<i32>>,
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for `input` -> `output` samples,
/// for the output positions in `range` only.
fn taps(input: usize, output: usize, range: Range<usize>, filter: Interpolation) -> Taps {
    let scale = input as f64 / output as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    // Pillow multiplies by the reciprocal; dividing would differ in the last bit.
    let inverse = 1.0 / filter_scale;
    let mut first = Vec::with_capacity(range.len());
    let mut weights = Vec::with_capacity(range.len());
    for o in range {
        let center = (o as f64 + 0.5) * scale;
        // C's (int) cast truncates toward zero; negative starts are clamped to 0 anyway.
        let lo = ((center - support + 0.5) as i64).max(0) as usize;
        let hi = ((center + support + 0.5) as i64)
            .min(input as i64)
            .max(lo as i64) as usize;
        let raw: Vec<f64> = (lo..hi)
            .map(|i| filter.weight((i as f64 - center + 0.5) * inverse))
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * (1u32 << PRECISION_BITS) as f64;
                (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
            })
            .collect();
        first.push(lo);
        weights.push(fixed);
    }
    Taps { first, weights }
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// A rectangle of an image, in its pixels: left, top, width, height.
pub type Window = (u32, u32, u32, u32);

/// `PIL.Image.resize((width, height), filter)` on an RGB image.
pub fn resize(img: &RgbImage, width: u32, height: u32, filter: Interpolation) -> RgbImage {
    resize_window(img, width, height, (0, 0, width, height), filter)
}

/// The `window` of `PIL.Image.resize((width, height), filter)`, computed alone: each output
/// pixel depends only on its own coefficients, so the bytes are those of the whole resize,
/// and memory stays bounded by the window when an extreme aspect ratio makes the whole huge.
pub fn resize_window(
    img: &RgbImage,
    width: u32,
    height: u32,
    window: Window,
    filter: Interpolation,
) -> RgbImage {
    let (w, h) = img.dimensions();
    let (x0, y0, ow, oh) = window;
    debug_assert!(x0 + ow <= width && y0 + oh <= height);
    if (w, h) == (width, height) {
        return image::imageops::crop_imm(img, x0, y0, ow, oh).to_image();
    }
    if filter == Interpolation::Nearest {
        return nearest(img, width, height, window);
    }
    let (x0, y0, ow, oh) = (x0 as usize, y0 as usize, ow as usize, oh as usize);
    let vertical = (h != height).then(|| taps(h as usize, height as usize, y0..y0 + oh, filter));
    let horizontal = (w != width).then(|| taps(w as usize, width as usize, x0..x0 + ow, filter));
    // The input rows and columns the window reads.
    let span = |t: &Option<Taps>, fallback: std::ops::Range<usize>| match t {
        Some(t) => t.first[0]..t.first[t.first.len() - 1] + t.weights[t.weights.len() - 1].len(),
        None => fallback,
    };
    let rows = span(&vertical, y0..y0 + oh);
    let cols = span(&horizontal, x0..x0 + ow);
    let src = Plane {
        width: w as usize,
        data: Cow::Borrowed(img.as_raw()),
    };
    // Pillow 13 filters rows first when the height shrinks by more than twice as many pixels
    // as the width does (`ImagingResampleInner`), else columns first; each pass rounds to 8
    // bits, so the order shows in the last bit.
    let (dh, dw) = (h as i64 - height as i64, w as i64 - width as i64);
    let out = if dh > 0 && dh > 2 * dw {
        let mid = match &vertical {
            Some(t) => v_pass(&src, 0, cols.clone(), t),
            None => src.crop(rows, cols.clone()),
        };
        match &horizontal {
            Some(t) => h_pass(&mid, 0..oh, cols.start, t),
            None => mid,
        }
    } else {
        let mid = match &horizontal {
            Some(t) => h_pass(&src, rows.clone(), 0, t),
            None => src.crop(rows.clone(), cols),
        };
        match &vertical {
            Some(t) => v_pass(&mid, rows.start, 0..ow, t),
            None => mid,
        }
    };
    RgbImage::from_raw(ow as u32, oh as u32, out.data.into_owned()).expect("sizes agree")
}

/// 8-bit RGB rows: the photo itself, or a pass's output.
struct Plane<'a> {
    width: usize,
    data: Cow<'a, [u8]>,
}

impl Plane<'_> {
    fn crop(&self, rows: Range<usize>, cols: Range<usize>) -> Plane<'static> {
        let stride = 3 * self.width;
        Plane {
            width: cols.len(),
            data: rows
                .flat_map(|y| &self.data[y * stride + 3 * cols.start..y * stride + 3 * cols.end])
                .copied()
                .collect(),
        }
    }
}

/// Pillow's horizontal 8-bit pass over `rows` of `src`, whose column 0 is input column
/// `col_offset`.
fn h_pass(src: &Plane, rows: Range<usize>, col_offset: usize, taps: &Taps) -> Plane<'static> {
    let stride = 3 * src.width;
    let width = taps.first.len();
    let mut out = vec![0u8; rows.len() * 3 * width];
    for (r, y) in rows.enumerate() {
        let line = &src.data[y * stride..(y + 1) * stride];
        let dst = &mut out[r * 3 * width..(r + 1) * 3 * width];
        for (o, (&lo, k)) in taps.first.iter().zip(&taps.weights).enumerate() {
            let mut acc = [1i32 << (PRECISION_BITS - 1); 3];
            for (i, &kw) in k.iter().enumerate() {
                let at = 3 * (lo - col_offset + i);
                for c in 0..3 {
                    acc[c] += line[at + c] as i32 * kw;
                }
            }
            for c in 0..3 {
                dst[3 * o + c] = clip8(acc[c]);
            }
        }
    }
    Plane {
        width,
        data: Cow::Owned(out),
    }
}

/// Pillow's vertical 8-bit pass over columns `cols` of `src`, whose row 0 is input row
/// `row_offset`.
fn v_pass(src: &Plane, row_offset: usize, cols: Range<usize>, taps: &Taps) -> Plane<'static> {
    let stride = 3 * src.width;
    let row_len = 3 * cols.len();
    let mut out = vec![0u8; taps.first.len() * row_len];
    for (o, (&lo, k)) in taps.first.iter().zip(&taps.weights).enumerate() {
        let dst = &mut out[o * row_len..(o + 1) * row_len];
        for (x, d) in dst.iter_mut().enumerate() {
            let mut acc = 1i32 << (PRECISION_BITS - 1);
            for (i, &kw) in k.iter().enumerate() {
                acc += src.data[(lo - row_offset + i) * stride + 3 * cols.start + x] as i32 * kw;
            }
            *d = clip8(acc);
        }
    }
    Plane {
        width: cols.len(),
        data: Cow::Owned(out),
    }
}

/// Pillow's nearest neighbour: the input pixel under each output pixel's centre.
fn nearest(img: &RgbImage, width: u32, height: u32, window: Window) -> RgbImage {
    let (w, h) = img.dimensions();
    let (sx, sy) = (w as f64 / width as f64, h as f64 / height as f64);
    let (x0, y0, ow, oh) = window;
    RgbImage::from_fn(ow, oh, |x, y| {
        let ix = (((x0 + x) as f64 + 0.5) * sx) as u32;
        let iy = (((y0 + y) as f64 + 0.5) * sy) as u32;
        let (ix, iy) = (ix.min(w - 1), iy.min(h - 1));
        *img.get_pixel(ix, iy)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_colour_stays_flat_at_any_size() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 17, 90]));
        for filter in [
            Interpolation::Bicubic,
            Interpolation::Bilinear,
            Interpolation::Lanczos,
            Interpolation::Box,
            Interpolation::Hamming,
            Interpolation::Nearest,
        ] {
            for (w, h) in [(10, 7), (80, 50), (37, 5), (3, 23)] {
                let out = resize(&img, w, h, filter);
                assert_eq!(out.dimensions(), (w, h));
                assert!(
                    out.pixels().all(|p| p.0 == [200, 17, 90]),
                    "{filter:?} {w}x{h}"
                );
            }
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(100, 7), (7, 100), (256, 224), (3, 3)] {
            let t = taps(i, o, 0..o, Interpolation::Bicubic);
            for k in &t.weights {
                let sum: i64 = k.iter().map(|&w| w as i64).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{i}->{o}"
                );
            }
        }
    }

    #[test]
    fn a_window_is_the_same_bytes_as_the_whole() {
        let img = RgbImage::from_fn(53, 31, |x, y| {
            image::Rgb([(x * 7 + y * 3) as u8, (x * y) as u8, (255 - x * 4) as u8])
        });
        for filter in [Interpolation::Bicubic, Interpolation::Nearest] {
            for (w, h) in [(20, 12), (80, 31), (53, 70)] {
                let whole = resize(&img, w, h, filter);
                let part = resize_window(&img, w, h, (3, 2, w - 5, h - 4), filter);
                let cut = image::imageops::crop_imm(&whole, 3, 2, w - 5, h - 4).to_image();
                assert_eq!(part, cut, "{filter:?} {w}x{h}");
            }
        }
    }

    #[test]
    fn halving_averages_neighbours() {
        // Box filter at scale 2 is the mean of each pair of pixels.
        let img = RgbImage::from_fn(4, 1, |x, _| image::Rgb([[0, 100, 200, 250][x as usize]; 3]));
        let out = resize(&img, 2, 1, Interpolation::Box);
        assert_eq!(out.get_pixel(0, 0).0, [50; 3]);
        assert_eq!(out.get_pixel(1, 0).0, [225; 3]);
    }
}
