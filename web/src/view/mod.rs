//! The page's state drawn into the page: the results (bars or "no class fits", the heat maps),
//! what the page says about its models, and the token explorer. Views read the state (`app`)
//! and draw with `pictures`; they start nothing.
//!
//! - [`explorer`]: the token explorer's map, controls and caption (it marks the explained bar
//!   through `results`)
//! - [`results`]: the top-5 bars, or why no class fits; the attention maps
//! - [`model_info`]: the model select, the model's description, classes and timings

pub mod explorer;
pub mod model_info;
pub mod results;
