//! The token explorer's state: its elements, the question asked (`query`'s [`Ask`]), the token
//! under the pointer, the engine's last map and the question under way, and the map on
//! screen, which `window.vitrine.explorer()` reports.
//!
//! The explorer is drawn by `view::explorer`, asks the engine in `actions::explore`, and is
//! wired by `events::explorer`.

use web_sys::{HtmlCanvasElement, HtmlElement, HtmlInputElement, HtmlSelectElement};

use crate::platform::dom::by_id;
use crate::protocol::{AnswerId, Backend, Question};

use super::query::{Ask, Layout, Square, View};

/// The explorer's elements (index.html, section "Ask the model").
pub struct Controls {
    pub canvas: HtmlCanvasElement,
    pub layer: HtmlInputElement,
    pub layer_out: HtmlElement,
    pub heads: HtmlSelectElement,
    pub reverse: HtmlInputElement,
    pub what: HtmlElement,
}

/// The engine's map for one question about one answer.
pub struct Answered {
    pub answer: AnswerId,
    pub question: Question,
    pub values: Vec<f32>,
    pub backend: Backend,
}

/// The map on screen, as `window.vitrine.explorer()` reports it.
pub struct Drawn {
    pub run: u64,
    pub backend: Backend,
    pub ask: Ask,
    pub values: Vec<f32>,
    pub layout: Layout,
}

pub struct Explorer {
    pub controls: Controls,
    pub ask: Ask,
    /// The token under the pointer, asked about instead of the selected one while it is there.
    pub hover: Option<usize>,
    /// The engine's last map.
    pub answered: Option<Answered>,
    /// The question sent to the engine and not answered yet.
    pub asking: Option<(AnswerId, Question)>,
    /// The last class relevance's backward pass and read-back, in milliseconds.
    pub relevance_ms: Option<f64>,
    pub drawn: Option<Drawn>,
}

impl Explorer {
    pub fn find() -> Self {
        Self {
            controls: Controls {
                canvas: by_id("explore"),
                layer: by_id("explore-layer"),
                layer_out: by_id("explore-layer-out"),
                heads: by_id("explore-heads"),
                reverse: by_id("explore-reverse"),
                what: by_id("explore-what"),
            },
            ask: Ask::default(),
            hover: None,
            answered: None,
            asking: None,
            relevance_ms: None,
            drawn: None,
        }
    }

    /// The class whose relevance is asked for (drawn, or being computed), whose bar is marked.
    pub fn explaining(&self) -> Option<usize> {
        match self.ask.view {
            View::Relevance(c) => Some(c),
            _ => None,
        }
    }

    /// `window.vitrine.explorer()`: the map drawn and the question it answers, or null.
    pub fn json(&self) -> Option<String> {
        let d = self.drawn.as_ref()?;
        let q = d.ask.query();
        let square = |s: Square| [s.x, s.y, s.side];
        let class = match d.ask.view {
            View::Relevance(c) => Some(c),
            _ => None,
        };
        let value = serde_json::json!({
            "run": d.run,
            "backend": d.backend.id(),
            "method": q.method,
            "layer": q.layer,
            "heads": q.heads,
            "token": q.token,
            "selected": d.ask.selected(),
            "prefix": d.layout.prefix.kinds(),
            "reverse": q.reverse,
            "class": class,
            "relevance_ms": self.relevance_ms,
            "explaining": self.explaining(),
            "tokens": d.values,
            "grid": d.layout.grid,
            "photo": square(d.layout.photo),
            "input": square(d.layout.input),
            "strip": [d.layout.strip_y, d.layout.pitch, d.layout.cols as f64],
        });
        Some(value.to_string())
    }
}
