//! The token explorer, "ask the model anything": hover or click a patch on the photo or on the
//! model's input, or a slot of the token strip, and the map shows where that token attends at
//! the chosen layer and head (or fused heads), or which tokens attend to it; the layer slider's
//! last step is rollout; a click on a class's bar shows that class's relevance (Chefer et al.
//! 2021, one backward pass on the backend of the result). The maps are `vit::explain`'s, the
//! same numbers `trainer explain --json` prints.
//!
//! This folder is the explorer's state, below `app`, which holds it: [`state`] (its elements,
//! the relevance computed, the map drawn) and [`query`] (the question and the geometry, pure,
//! tested natively). It is drawn by `view::explorer`, computes relevance in
//! `actions::explore`, and is wired by `events::explorer`.

pub mod query;
pub mod state;
