//! The top layer: every listener. Each says what a control does by calling the actions below
//! (`actions`, and the views and state under them); nothing below calls back up here.
//!
//! - [`page`]: files, drop, paste, selects, sliders, the movable square, the sample buttons; it
//!   wires the others
//! - [`hub`]: the hub name field and "forget downloaded models"
//! - [`explorer`]: the token explorer's pointer, keys, slider, select, box and the class bars
//! - [`teach`]: the Teach panel's listeners, delegated to the panel

pub mod explorer;
pub mod hub;
pub mod page;
pub mod teach;
