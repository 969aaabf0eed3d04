//! The pictures of a run: the learning curves (`curves.rs`, `RUN/curves.png`) and the
//! confusion matrix (`confusion.rs`, `RUN/confusion.png` and `eval --confusion`), with its
//! colour bar (`colour_bar.rs`). `canvas.rs` holds what every picture is drawn with, and
//! `layout.rs` the text and axis placement that plotters' chart API gets wrong.

mod canvas;
mod colour_bar;
mod confusion;
mod curves;
mod layout;

pub use confusion::confusion_png;
pub use curves::curves_png;
