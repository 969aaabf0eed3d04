//! The browser, at the bottom of the layers: web-sys helpers and fetching.
//!
//! - [`digest`]: SHA-256 by the browser
//! - [`keep`]: files kept for offline visits (the Cache API)
//! - [`net`]: fetch with progress
//! - [`dom`]: elements, listeners, files, downloads, time, formatting

pub mod digest;
pub mod dom;
pub mod keep;
pub mod net;
