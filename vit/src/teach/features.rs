//! The frozen part of the model, run once per photo: a few fixed [`views`] of each photo, and
//! what the trained part reads of them ([`features`]), a batch at a time ([`Extractor`]) into
//! [`Examples`], within a memory budget ([`check_feature_memory`]).

use burn::prelude::*;

use super::config::{MAX_FEATURE_BYTES, Mode, TeachConfig, refuse};
use crate::augment::{hflip, shift};
use crate::error::Result;
use crate::model::VisionTransformer;
use crate::preprocess::Normalization;
use crate::rng::Rng;

/// `count` views of one `side`-square RGB photo: the photo itself, then its mirror image, then
/// crops of the photo padded by `pad` black pixels, shifted and mirrored at random.
pub fn views(square: &[u8], side: usize, count: usize, pad: usize, rng: &mut Rng) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut view = square.to_vec();
            match i {
                0 => {}
                1 => hflip(&mut view, side),
                _ => {
                    let mut offset = || rng.below(2 * pad + 1) as isize - pad as isize;
                    let (dx, dy) = (offset(), offset());
                    view = shift(&view, side, dx, dy);
                    if rng.chance(0.5) {
                        hflip(&mut view, side);
                    }
                }
            }
            view
        })
        .collect()
}

/// What the trained part of `mode` reads, from the frozen part: `[B, K, D]`, what the heads
/// read (the pooled token; a distilled model's class and distillation tokens), for
/// [`Mode::Head`]; `[B, T, D]`, the tokens entering the last block (prefix tokens and
/// patches), for [`Mode::LastBlock`].
pub fn features(model: &VisionTransformer, mode: Mode, images: Tensor<4>) -> Tensor<3> {
    let tokens = model.tokens(images, mode.frozen_blocks(model.blocks.len()));
    match mode {
        Mode::Head => model.pooled(tokens),
        Mode::LastBlock => tokens,
    }
}

/// Bytes of features `views` views take in `mode` (f32 on the device).
pub fn feature_bytes(model: &VisionTransformer, mode: Mode, views: usize) -> usize {
    let dim = model.pos_embed.dims()[2];
    let per_view = match mode {
        Mode::Head => model.num_pooled() * dim,
        Mode::LastBlock => model.num_tokens() * dim,
    };
    views * per_view * 4
}

/// Refuses features that would take more than [`MAX_FEATURE_BYTES`] (only
/// [`Mode::LastBlock`] comes near: it keeps every view's tokens), saying what to do instead.
pub fn check_feature_memory(model: &VisionTransformer, mode: Mode, views: usize) -> Result<()> {
    let bytes = feature_bytes(model, mode, views);
    if bytes <= MAX_FEATURE_BYTES {
        return Ok(());
    }
    Err(refuse(format!(
        "teaching the last block keeps every photo's tokens: {views} views would take {} MB, \
         more than the {} MB allowed; teach the new head only, or use fewer photos",
        bytes >> 20,
        MAX_FEATURE_BYTES >> 20
    )))
}

/// Features of photos computed a batch at a time, so a page can yield between batches.
pub struct Extractor {
    mode: Mode,
    views: usize,
    pad: usize,
    norm: Normalization,
    side: usize,
    seed: u64,
    parts: Vec<Tensor<3>>,
    labels: Vec<usize>,
}

/// Photos' features with their classes: rows `photo * views .. (photo + 1) * views` are one
/// photo's views.
pub struct Examples {
    pub features: Tensor<3>,
    pub labels: Vec<usize>,
    pub views: usize,
}

impl Examples {
    pub fn photos(&self) -> usize {
        self.labels.len()
    }
}

impl Extractor {
    /// For photos of `side` pixels square, `views` views each (1 for held-out photos).
    pub fn new(config: &TeachConfig, side: usize, views: usize, norm: Normalization) -> Self {
        Self {
            mode: config.mode,
            views: views.max(1),
            pad: config.padding(side),
            norm,
            side,
            seed: config.seed,
            parts: Vec::new(),
            labels: Vec::new(),
        }
    }

    /// Adds one batch of photos: `(class, photo id, RGB square)`. The id picks the photo's
    /// crops, so a photo gets the same views whatever batch it lands in.
    pub fn add(
        &mut self,
        model: &VisionTransformer,
        photos: &[(usize, u64, &[u8])],
        device: &Device,
    ) {
        if photos.is_empty() {
            return;
        }
        let plane = self.side * self.side;
        let mut data = Vec::with_capacity(photos.len() * self.views * 3 * plane);
        for &(class, id, square) in photos {
            let mut rng = Rng::derive(self.seed, &[id]);
            for view in views(square, self.side, self.views, self.pad, &mut rng) {
                let start = data.len();
                data.resize(start + 3 * plane, 0.0);
                for (i, px) in view.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        data[start + c * plane + i] =
                            (px[c] as f32 / 255.0 - self.norm.mean[c]) / self.norm.std[c];
                    }
                }
            }
            self.labels.push(class);
        }
        let b = photos.len() * self.views;
        let images =
            Tensor::<4>::from_data(TensorData::new(data, [b, 3, self.side, self.side]), device);
        self.parts.push(features(model, self.mode, images));
    }

    /// Every photo added; `None` when there was none.
    pub fn finish(self) -> Option<Examples> {
        (!self.parts.is_empty()).then(|| Examples {
            features: Tensor::cat(self.parts, 0),
            labels: self.labels,
            views: self.views,
        })
    }
}
