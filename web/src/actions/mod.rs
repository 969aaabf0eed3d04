//! What the page does: each action changes the state (`app`) and has it drawn (`view`). Within
//! the folder, each module uses only those listed after it.
//!
//! - [`startup`]: the sample list, the model list, the default model and the first sample
//! - [`teach_training`]: the Teach panel's Train and Stop, the taught pair installed (through
//!   `loading`) and downloaded; the burn half is `teach::backend`
//! - [`teach_photos`]: the Teach panel's classes and photos in (files, drops, pastes, webcam)
//!   and out
//! - [`hub`]: hub models by name: fetched with their checksum checked, kept for offline
//!   visits, forgotten; installed through `loading`
//! - [`loading`]: models, published, from disk, cached or taught; backend timing in the
//!   background
//! - [`images`]: photos taken; the square the model sees, moved live, one run at a time
//! - [`inference`]: one run of the current model on the current picture
//! - [`picture`]: the photo the engine holds, prepared for the current model and drawn
//! - [`explore`]: the token explorer redrawn, and a class's relevance

pub mod explore;
pub mod hub;
pub mod images;
pub mod inference;
pub mod loading;
pub mod picture;
pub mod startup;
pub mod teach_photos;
pub mod teach_training;
