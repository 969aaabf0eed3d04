//! The Teach panel, "teach it your own classes", below `app`, which holds its state. Its
//! actions (Train and Stop, photos in and out) are `actions::teach_training` and
//! `actions::teach_photos`, its listeners `events::teach`. Within the folder, each module uses
//! only those listed after it.
//!
//! - [`report`]: `window.vitrine.teach()` and `taughtPair()`
//! - [`texts`]: the panel's texts (steps, durations, progress, summary, refusals)
//! - [`state`]: classes and their photos (only each model-size square and a thumbnail), the
//!   run, the taught pair
//! - [`panel`]: the panel's elements, fixed and made per class and photo
//! - [`squares`]: a stored square resized, and its thumbnail
//! - [`curve`]: the training curve (loss, batch and held-out accuracy)
//! - [`backend`]: `vit::teach` on the page's burn backend (the burn half of the panel)
//! - [`webcam`]: the camera, asked for only on a press

pub mod backend;
pub mod curve;
pub mod panel;
pub mod report;
pub mod squares;
pub mod state;
pub mod texts;
pub mod webcam;
