//! What teaching is given: which part of the model learns ([`Mode`]), how ([`TeachConfig`]),
//! the limits on classes, photos and feature memory, and the error that refuses a request.

use serde::{Deserialize, Serialize};

use crate::error::VitError;
use crate::transfer::Trainable;

/// Fewest classes: teaching learns to tell classes apart.
pub const MIN_CLASSES: usize = 2;
/// Most classes the panel takes.
pub const MAX_CLASSES: usize = 20;
/// Most photos one class takes; the page keeps each as the model's small square, not decoded.
pub const MAX_PHOTOS_PER_CLASS: usize = 1000;
/// Photos a class needs before a share of each class is held out to measure accuracy.
pub const MIN_PHOTOS_FOR_HOLDOUT: usize = 5;
/// [`Mode::LastBlock`] keeps every view's tokens in memory; past this many bytes it is refused.
pub const MAX_FEATURE_BYTES: usize = 256 << 20;

/// Which part of the model learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A new head on the frozen pooled token (a linear probe).
    Head,
    /// A new head, the last block and the final norm.
    LastBlock,
}

impl Mode {
    pub(super) fn trainable(self) -> Trainable {
        match self {
            Mode::Head => Trainable::Head,
            Mode::LastBlock => Trainable::LastBlocks(1),
        }
    }

    /// Blocks the frozen part runs before the features are taken.
    pub(super) fn frozen_blocks(self, depth: usize) -> usize {
        match self {
            Mode::Head => depth,
            Mode::LastBlock => depth.saturating_sub(1),
        }
    }
}

/// How a model is taught; [`TeachConfig::new`] gives each mode's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeachConfig {
    pub mode: Mode,
    /// AdamW steps, each on a batch of views drawn afresh.
    pub steps: usize,
    /// Peak learning rate; it falls to zero along a half cosine.
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub batch_size: usize,
    pub label_smoothing: f64,
    /// Views computed per training photo: the photo, its mirror image, then shifted crops
    /// (each mirrored or not at random).
    pub views: usize,
    /// The crops' padding in pixels at the model's size; `None`: a sixteenth of its side (3
    /// pixels at 48, as the trainer's `cifar10-cpu` recipe crops).
    pub crop_padding: Option<usize>,
    /// Share of each class held out to measure accuracy, when every class has at least
    /// [`MIN_PHOTOS_FOR_HOLDOUT`] photos.
    pub holdout: f64,
    pub seed: u64,
}

impl TeachConfig {
    pub fn new(mode: Mode) -> Self {
        // The last block's forward and backward pass cannot yield to a page midway: its
        // batches are smaller so that one step stays short.
        let (steps, learning_rate, views, batch_size) = match mode {
            Mode::Head => (300, 3e-3, 4, 64),
            Mode::LastBlock => (150, 1e-3, 2, 16),
        };
        Self {
            mode,
            steps,
            learning_rate,
            weight_decay: 1e-4,
            batch_size,
            label_smoothing: 0.1,
            views,
            crop_padding: None,
            holdout: 0.2,
            seed: 0,
        }
    }

    /// The learning rate at step `step`: a half cosine from the peak to zero.
    pub fn lr_at(&self, step: usize) -> f64 {
        let t = step as f64 / self.steps.max(1) as f64;
        0.5 * self.learning_rate * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }

    pub(super) fn padding(&self, side: usize) -> usize {
        self.crop_padding.unwrap_or(side / 16)
    }
}

pub(super) fn refuse(message: String) -> VitError {
    VitError::Teach(message)
}
