//! Models on the Hugging Face hub, named as timm names them: `hf-hub:ORG/NAME[@REVISION]`.
//!
//! - [`name`]: the name, its files' URLs and the model pair name it becomes.
//! - [`architecture`]: timm's architecture names as the models they build, or why not.
//! - [`config`]: what a timm repo's `config.json` says, as Vitrine's model, timm's eval
//!   preprocessing and class names; or a one-line refusal naming what is supported, before any
//!   weights are fetched.
//! - [`revision`]: what the hub's API says of a revision (its commit, the weights' SHA-256 and
//!   size), which the page checks its download against.
//! - [`checkpoint`]: the weights' shapes against that config, then the weights read (their
//!   position embeddings resampled when the model runs at another size).
//! - [`model`]: the model all of that makes, and its manifest.
//! - [`answer`]: what a refusal by the hub means (a typo'd name, a gated repo, an outage),
//!   and the one line of advice the trainer and the page both give for it.
//!
//! No I/O here: the trainer downloads natively, the page with fetch; both read the same answer.

pub mod answer;
pub mod architecture;
pub mod checkpoint;
pub mod config;
pub mod model;
pub mod name;
pub mod revision;

pub use answer::{Answer, Client, Refusal};
pub use architecture::{REFUSED, SUPPORTED};
pub use checkpoint::check_checkpoint;
pub use config::{imagenet_1k, read_config};
pub use model::{CONFIG_FILE, HubModel, LabelSource, MAX_CONFIG_BYTES, WEIGHTS_FILE};
pub use name::{DEFAULT_ENDPOINT, DEFAULT_REVISION, HubName, PREFIX};
pub use revision::{Revision, read_revision};
