//! Hugging Face hub models for the CLI: `--model hf-hub:ORG/NAME[@REVISION]`.
//!
//! Files come over the hub's own protocol into huggingface_hub's cache, so a model that
//! Python's timm already downloaded is found here, and one fetched here is found there:
//! - `HEAD {endpoint}/{org}/{name}/resolve/{revision}/{file}`, through the hub's own redirects
//!   (a small file's relative 307 to `/api/resolve-cache/...`, a mirror's 308 to the hub),
//!   names the commit (`X-Repo-Commit`), the content (`X-Linked-Etag`, the SHA-256 of a large
//!   file, or `ETag`), its size (`X-Linked-Size` or a direct answer's `Content-Length`), and
//!   for a large file a 302 to the CDN;
//! - the body streams into `models--{org}--{name}/blobs/{etag}.{random}.incomplete`, is
//!   checked (size, SHA-256, and what it says: config.json must describe a ViT Vitrine
//!   builds, the weights must fit it), and only then is renamed to `blobs/{etag}`, with
//!   `snapshots/{commit}/{file}` linking to it and `refs/{revision}` naming the commit.
//!
//! So a cut connection, a wrong checksum, an unsupported model or Ctrl-C leaves no file in the
//! cache. Settings are huggingface_hub's variables (docs/hub.md lists them all); proxies and
//! trusted certificates come from the environment (`crate::http`). When the hub cannot be
//! used, a copy already in the cache serves, as in huggingface_hub; refusals are explained in
//! one line by `vit::hub::answer`, as the page explains them.
//!
//! Written on ureq rather than the `hf-hub` crate: its blocking client (0.4) checks no SHA-256,
//! keeps half-downloaded `.part` files in the cache, and has no offline mode; 1.0 is async only
//! and brings tokio, reqwest and hf-xet into a build that has a working HTTP client already.
//!
//! In layers, each using only those before it: `env.rs` (the variables and the cache's place),
//! `cache.rs` (the cache's files, and keeping a download), `client.rs` (HEAD, GET, redirects,
//! tokens, the hub's refusals, and cache or download); this file loads a model from them.

use anyhow::{Result, anyhow};
use burn::prelude::Device;
use vit::VisionTransformer;
use vit::hub::{HubName, WEIGHTS_FILE};
use vit::timm::{import_timm, safetensors_shapes};
use vit::weights::Manifest;

use crate::interrupt;

mod cache;
mod client;
mod env;

use crate::http::one_line;
use client::Client;
use env::HubEnv;

/// The largest weights file fetched: timm's ViT-L/16 in f32 is 1.2 GB.
pub const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// A hub model, read and checked, ready to run or to write as a model pair.
pub struct Loaded {
    /// Its `source` names the repo and the commit its files came from.
    pub manifest: Manifest,
    pub model: VisionTransformer,
}

/// Fetches (or finds in the cache) a hub model's config.json and weights, refusing anything
/// Vitrine cannot run exactly before the weights are fetched, and builds it on `device`.
pub fn load(name: &HubName, device: &Device) -> Result<Loaded> {
    // Ctrl-C removes what was fetched and stops, until it is all kept.
    let _stop = interrupt::during_download();
    let env = HubEnv::from_env();
    let client = Client::new(&env);
    let (mut config, hub) = client.config(name)?;
    let mut weights = client.fetch(name, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)?;
    let origin = format!("{name}: {WEIGHTS_FILE}");
    let shapes = safetensors_shapes(weights.path())
        .map_err(|e| anyhow!("{origin} is not a readable safetensors file: {e}"))?;
    vit::hub::check_checkpoint(&hub, &shapes, &origin)?;
    let model = import_timm(weights.path(), &hub.config, device)
        .map_err(|e| anyhow!("{origin}: {}", one_line(&e.to_string())))?;
    // Everything checked: only now does anything enter the cache.
    let commit = weights.commit.clone();
    config.keep()?;
    weights.keep()?;
    Ok(Loaded {
        manifest: hub.manifest(name, &commit),
        model,
    })
}

/// A hub model's manifest from its config.json alone (what `trainer patches` needs).
pub fn manifest(name: &HubName) -> Result<Manifest> {
    let _stop = interrupt::during_download();
    let env = HubEnv::from_env();
    let (mut config, hub) = Client::new(&env).config(name)?;
    let commit = config.commit.clone();
    config.keep()?;
    Ok(hub.manifest(name, &commit))
}
