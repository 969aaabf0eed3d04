//! Vitrine's Vision Transformer core: one model definition and one preprocessing, shared by the
//! native trainer and the WebAssembly page.
//!
//! - [`config`]: the serialisable [`VitConfig`] and its validation.
//! - [`prefix`]: the tokens in front of the patches (class, distillation, registers), the one
//!   place every part of the code asks about them.
//! - [`model`]: the [`VisionTransformer`] (timm's layout and names), with a fused-attention
//!   forward and one that also returns every layer's attention probabilities; [`init`]: other
//!   starting points for a fresh one.
//! - [`preprocess`]: any image bytes -> the normalised square the model sees, cut as timm's
//!   eval transform cuts it; [`resample`]: resizing exactly as Pillow does.
//! - [`damage`]: whether image bytes were cut off (decoders show what they could read).
//! - [`patches`]: where each patch is, for drawing.
//! - [`rollout`]: attention rollout and per-head class-token maps.
//! - [`colormap`]: the heat maps' colours (page and CLI).
//! - [`explain`]: any token's map at any layer and head, both ways, and class relevance.
//! - [`inference`]: probabilities, top-k, attention read-back helpers.
//! - [`kernels`]: vectorised CPU kernels (GELU, attention) that inference on Flex runs.
//! - [`weights`]: model pairs (`NAME.json` manifest + `NAME.bpk` burnpack) and timm exchange.
//! - [`hub`]: timm models on the Hugging Face hub: names, URLs, what a repo's config.json says.
//! - [`pos_embed`]: position embeddings resampled to another patch grid, as timm does.
//! - [`transfer`]: fine-tuning: a new head, another image size, freezing, layer-wise decay.
//! - [`teach`]: new classes from a few photos each (the page's Teach panel): features once,
//!   then a new head (and perhaps the last block) trained on them.
//! - [`augment`]: shifted crops and mirror images of RGB squares; [`rng`]: a seedable PRNG.
//! - [`close`]: the one rule for "these numbers are the same answer" (NaN-proof), for the
//!   tests and the trainer's GPU self-check.

pub mod augment;
pub mod close;
pub mod colormap;
pub mod config;
pub mod damage;
pub mod error;
pub mod explain;
#[cfg(feature = "cubecl")]
pub mod gpu_settings;
pub mod hub;
pub mod index;
pub mod inference;
pub mod init;
pub mod kernels;
pub mod model;
pub mod patches;
pub mod pos_embed;
pub mod prefix;
pub mod preprocess;
pub mod resample;
pub mod rng;
pub mod rollout;
pub mod teach;
pub mod timm;
pub mod transfer;
pub mod weights;

pub use config::{Activation, Pooling, VitConfig};
pub use error::{Result, VitError};
pub use model::VisionTransformer;
pub use prefix::{PrefixKind, PrefixTokens};
pub use preprocess::Normalization;
