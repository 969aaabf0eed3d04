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
//! - [`squares`]: a stored square's thumbnail
//! - [`curve`]: the training curve (loss, batch and held-out accuracy)
//! - [`webcam`]: the camera, asked for only on a press
//!
//! The burn half of the panel (`vit::teach` on the page's backend) runs in the engine:
//! `engine::teach` and `engine::teaching`.

pub mod curve;
pub mod panel;
pub mod report;
pub mod squares;
pub mod state;
pub mod texts;
pub mod webcam;
