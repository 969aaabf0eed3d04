//! Teaching a model new classes from a few photos each: the page's Teach panel, in the
//! manner of Teachable Machine, with a Vision Transformer.
//!
//! The frozen part of the model runs once per photo: [`Extractor`] computes, for a few fixed
//! views of each photo (the photo, its mirror image, shifted crops as the trainer's random crop
//! makes them), what the trained part reads. [`Teacher`] then runs a few hundred AdamW steps on
//! those features alone, through burn's autodiff, on whatever device the features are on
//! (WebGPU or Flex in the browser). [`Mode::Head`] trains a new head on the pooled token (a
//! linear probe); [`Mode::LastBlock`] also fine-tunes the last block and the final norm.
//! [`Teacher::finish`] gives back a whole [`VisionTransformer`](crate::VisionTransformer) for
//! the new classes, and [`taught_manifest`] the manifest of its model pair.
//!
//! Steps and evaluations return their figures as tensors still on the device: a browser must
//! read them asynchronously (`into_data_async`), and reading every step would stall WebGPU.
//!
//! One file a step, each using only those before it: `config.rs` (modes, settings, limits),
//! `classes.rs` (the classes checked, the held-out split), `features.rs` (views and the frozen
//! part), `teacher.rs` (the training), `record.rs` (the taught pair's manifest); `square.rs`
//! takes a stored square to another model's size.

mod classes;
mod config;
mod features;
mod record;
mod square;
mod teacher;
#[cfg(test)]
mod tests;

pub use classes::{Split, check_classes};
pub use config::{
    MAX_CLASSES, MAX_FEATURE_BYTES, MAX_PHOTOS_PER_CLASS, MIN_CLASSES, MIN_PHOTOS_FOR_HOLDOUT,
    Mode, TeachConfig,
};
pub use features::{Examples, Extractor, check_feature_memory, feature_bytes, features, views};
pub use record::{TeachRecord, taught_manifest};
pub use square::resize_square;
pub use teacher::Teacher;
