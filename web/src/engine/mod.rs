//! The engine: everything that touches the model, in a dedicated Web Worker, so that the page
//! never waits for it. It answers the page's `protocol::Request`s (`serve`) with the devices
//! and models (`devices`), the photo decoded and prepared (`photos`), the last answers' maps
//! (`answers`), hub downloads (`hub`) and teaching (`teach`, `teaching`).
//!
//! In a cross-origin isolated page it is the threaded build of this crate (feature `threads`):
//! the model's kernels then run on rayon's pool of Web Workers (`wasm-bindgen-rayon`, through
//! vit's `kernels/parallel.rs`), and
//! WebGPU is lent by the page's own build in a worker of its own (`gpu`); elsewhere it is the
//! page's own build, on one thread, with WebGPU.
//!
//! WebGPU's device (`webgpu`), with autotune's choices kept per adapter (`tuning`) and its
//! kernels counted (`launches`), exists in the default build only.
//!
//! Modules, each using only those before it: `launches`, `tuning`, `webgpu`, `devices`,
//! `photos`, `answers`, `teach`, `teaching`, `hub`, `gpu`, `serve`.

mod answers;
mod devices;
mod gpu;
mod hub;
mod launches;
mod photos;
mod serve;
mod teach;
mod teaching;
#[cfg(feature = "webgpu")]
mod tuning;
#[cfg(feature = "webgpu")]
mod webgpu;

pub use serve::start;
