//! The browser, at the bottom of the layers: web-sys helpers and fetching.
//!
//! - [`digest`]: SHA-256 by the browser
//! - [`keep`]: files kept for offline visits (the Cache API)
//! - [`log`]: the `log` crate's warnings and errors on the console
//! - [`net`]: fetch with progress
//! - [`dom`]: elements, listeners, files, downloads, time, formatting
//! - [`scope`]: the window or the engine's worker, whichever this code runs in

pub mod digest;
pub mod dom;
pub mod keep;
pub mod log;
pub mod net;
pub mod scope;
