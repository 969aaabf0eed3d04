//! Pictures drawn on canvas from plain values, knowing nothing of the page's state: the patch
//! animation, the top-5 bars, the attention maps, and the movable square's geometry.
//!
//! - [`animate`]: photo → crop → model view → patches → token sequence
//! - [`bars`], [`heatmap`]: the top-5 bars; attention maps and their descriptions
//! - [`crop`]: the movable square's geometry (pointer and keys), pure
//! - [`draw`]: canvas sizing for high-DPI screens, bitmaps, shapes, colours

pub mod animate;
pub mod bars;
pub mod crop;
pub mod draw;
pub mod heatmap;
