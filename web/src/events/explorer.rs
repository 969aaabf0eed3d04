//! The token explorer's listeners: hover or click a patch on the photo or on the model's
//! input, or a slot of the token strip; arrows move the selected token; the layer slider, the
//! heads select and the reverse box change the question; a click on a class's bar asks for its
//! relevance. `events::page::wire` calls [`wire`].

use vit::explain::{Heads, Token};
use vit::prefix::PrefixTokens;
use vit::rollout::HeadFusion;
use wasm_bindgen::JsCast;
use web_sys::{Event, KeyboardEvent, MouseEvent, PointerEvent};

use crate::actions::explore::{explain_class, redraw};
use crate::app::state::Shared;
use crate::explorer::query::View;
use crate::platform::dom::on;

/// The explorer's listeners: pointer and keys on its canvas, its slider, select and checkbox,
/// and the class bars' buttons.
pub fn wire(app: &Shared) {
    let (canvas, layer, heads, reverse, buttons) = {
        let a = app.borrow();
        let c = &a.explorer.controls;
        (
            c.canvas.clone(),
            c.layer.clone(),
            c.heads.clone(),
            c.reverse.clone(),
            a.ui.pred_list.clone(),
        )
    };
    let token_at = |app: &Shared, x: f64, y: f64| -> Option<usize> {
        let a = app.borrow();
        a.explorer.drawn.as_ref()?.layout.token_at(x, y)
    };
    {
        let app = app.clone();
        on(&canvas, "pointermove", move |e: PointerEvent| {
            let hover = token_at(&app, e.offset_x() as f64, e.offset_y() as f64);
            let changed = {
                let mut a = app.borrow_mut();
                let changed = a.explorer.hover != hover;
                a.explorer.hover = hover;
                changed && !matches!(a.explorer.ask.view, View::Relevance(_))
            };
            if changed {
                redraw(&app);
            }
        });
    }
    {
        let app = app.clone();
        on(&canvas, "pointerleave", move |_: PointerEvent| {
            app.borrow_mut().explorer.hover = None;
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        on(&canvas, "click", move |e: MouseEvent| {
            if let Some(t) = token_at(&app, e.offset_x() as f64, e.offset_y() as f64) {
                let mut a = app.borrow_mut();
                a.explorer.ask.token = Token::Index(t);
                if matches!(a.explorer.ask.view, View::Relevance(_)) {
                    a.explorer.ask.view = View::Rollout;
                }
            }
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        on(&canvas, "keydown", move |e: KeyboardEvent| {
            let used = {
                let mut a = app.borrow_mut();
                let (grid, prefix) = a
                    .explorer
                    .drawn
                    .as_ref()
                    .map_or((0, PrefixTokens::CLASS), |d| {
                        (d.layout.grid, d.layout.prefix)
                    });
                a.explorer.hover = None;
                a.explorer.ask.key(&e.key(), grid, prefix)
            };
            if used {
                e.prevent_default();
                redraw(&app);
            }
        });
    }
    {
        let app = app.clone();
        let input = layer.clone();
        on(&layer, "input", move |_: Event| {
            {
                let mut a = app.borrow_mut();
                let depth = a.shown.as_ref().map_or(1, |s| s.layers);
                let v = input.value().parse().unwrap_or(depth + 1);
                a.explorer.ask.set_slider(v, depth);
            }
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        let select = heads.clone();
        on(&heads, "change", move |_: Event| {
            app.borrow_mut().explorer.ask.heads = select
                .value()
                .parse()
                .unwrap_or(Heads::Fused(HeadFusion::Mean));
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        let input = reverse.clone();
        on(&reverse, "change", move |_: Event| {
            app.borrow_mut().explorer.ask.reverse = input.checked();
            redraw(&app);
        });
    }
    {
        let app = app.clone();
        on(
            &crate::platform::dom::window_target(),
            "resize",
            move |_: Event| redraw(&app),
        );
    }
    redraw(app); // the placeholder, until the first result
    let app = app.clone();
    // The bars' buttons (results::render_results lays one over each bar).
    on(&buttons, "click", move |e: MouseEvent| {
        let class = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .and_then(|t| t.closest("button[data-class]").ok().flatten())
            .and_then(|b| b.get_attribute("data-class"))
            .and_then(|c| c.parse().ok());
        if let Some(class) = class {
            explain_class(&app, class);
        }
    });
}
