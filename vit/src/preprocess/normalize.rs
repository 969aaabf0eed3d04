//! Step 5 of the preprocessing: pixels scaled to [0, 1] and normalised per channel with the
//! mean and std a model manifest records ([`Normalization`]), channel first.

use image::RgbImage;

/// Per-channel normalisation constants, as stored in the model manifest.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Normalization {
    /// CIFAR-10 training-set statistics.
    pub const CIFAR10: Self = Self {
        mean: [0.4914, 0.4822, 0.4465],
        std: [0.2470, 0.2435, 0.2616],
    };
    /// timm's default when a model's config names none (`IMAGENET_DEFAULT_MEAN/STD`).
    pub const IMAGENET: Self = Self {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };
    /// timm's default for ViTs trained on ImageNet-21k (`IMAGENET_INCEPTION_MEAN/STD`).
    pub const INCEPTION: Self = Self {
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
    };

    /// Appends the image's normalised `[C, H, W]` values to `out`.
    pub fn extend_chw(&self, img: &RgbImage, out: &mut Vec<f32>) {
        let (w, h) = img.dimensions();
        let plane = (w * h) as usize;
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        let dst = &mut out[start..];
        for (i, px) in img.pixels().enumerate() {
            for c in 0..3 {
                dst[c * plane + i] = (px.0[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_is_channel_first() {
        let img = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 51]));
        let mut out = Vec::new();
        Normalization::INCEPTION.extend_chw(&img, &mut out);
        assert_eq!(out.len(), 12);
        assert!(out[..4].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(out[4..8].iter().all(|&v| (v + 1.0).abs() < 1e-6));
        assert!(out[8..].iter().all(|&v| (v + 0.6).abs() < 1e-6));
    }
}
