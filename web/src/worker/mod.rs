//! The engine's Web Worker, from the page's side ([`client`]: start, requests, replies,
//! restarts), and the envelope both sides put their messages in ([`envelope`]).

pub mod client;
pub mod envelope;
