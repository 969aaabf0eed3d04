//! [`VitError`], everything the library reports as a failure, each with the context that says
//! what to fix, and the limit one of its messages states ([`MAX_NAME_LEN`]). It uses no other
//! module of the crate, so every module can use it.

use std::path::PathBuf;

/// Longest model name accepted: it becomes two file names and a label in the page's list.
/// Here, beside the error that states it, so that this module uses no other of the crate's
/// (`weights` re-exports it as `vit::weights::MAX_NAME_LEN`).
pub const MAX_NAME_LEN: usize = 100;

/// Everything that can go wrong with user-supplied images, configs and weights.
///
/// Each variant carries enough context (a file, a tensor name, the expected and found values)
/// that the message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum VitError {
    #[error("invalid model config: {0}")]
    InvalidConfig(String),

    #[error("not a supported image ({0}); supported formats: JPEG, PNG, WebP, GIF, BMP")]
    UnsupportedImage(String),

    #[error("the image could not be decoded, it may be truncated or corrupt: {0}")]
    CorruptImage(String),

    #[error("the image is too large to decode safely: {0}")]
    ImageTooLarge(String),

    #[error("invalid crop {0}")]
    BadCrop(String),

    #[error("{0}")]
    BadQuery(String),

    #[error("the image is empty (0 bytes)")]
    EmptyImage,

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid manifest {path}: {message}")]
    Manifest { path: String, message: String },

    #[error(
        "invalid model name '{0}': a name is 1 to {max} letters, digits, '-', '_' or '.', starts with a letter or digit, and is not 'index'",
        max = MAX_NAME_LEN
    )]
    InvalidName(String),

    #[error(
        "checksum mismatch for weights {file}: the manifest says sha256 {expected}, the file has {found}"
    )]
    Checksum {
        file: String,
        expected: String,
        found: String,
    },

    #[error("the weights do not fit the model config:\n{0}")]
    WeightsMismatch(String),

    #[error("weights file error: {0}")]
    Weights(String),

    /// A model on the Hugging Face hub (`crate::hub`): its name, or what its config.json says.
    #[error("{0}")]
    Hub(String),

    /// Teaching new classes (`crate::teach`): what to change, in the person's words.
    #[error("{0}")]
    Teach(String),
}

impl VitError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = VitError> = std::result::Result<T, E>;
