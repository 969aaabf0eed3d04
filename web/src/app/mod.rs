//! The page's state and its elements, in the middle of the layers: actions and views above
//! change and draw it; it holds the token explorer's and the Teach panel's state (`explorer`,
//! `teach`), the backends and the animation's stage, all below.
//!
//! - [`api`]: `window.vitrine`, for tests, reading the state
//! - [`state`]: the page's state, its tasks and its status line
//! - [`ui`]: the page's elements and their small updates

pub mod api;
pub mod state;
pub mod ui;
