//! The browser, at the bottom of the layers: web-sys helpers and fetching.
//!
//! - [`net`]: fetch with progress
//! - [`dom`]: elements, listeners, files, downloads, time, formatting

pub mod dom;
pub mod net;
