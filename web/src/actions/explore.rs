//! The token explorer's actions: the map asked of the engine whenever the question changes
//! (one question under way at a time, always followed by the newest), and a class's relevance
//! (Chefer et al. 2021, one backward pass on the backend of the result), which the engine
//! computes once per result and class and asks again after each new result.

use crate::app::state::{Shared, spawn_task};
use crate::explorer::query::View;
use crate::explorer::state::Answered;
use crate::protocol::{Reply, Request};
use crate::view::explorer::{question, render};
use crate::worker::envelope::Attachments;

/// Draws again after the question changed: at once when the engine already answered it,
/// else once it has.
pub fn redraw(app: &Shared) {
    let Ok(mut a) = app.try_borrow_mut() else {
        return;
    };
    render(&mut a);
    let Some((answer, words)) = question(&mut a) else {
        return;
    };
    let known = a
        .explorer
        .answered
        .as_ref()
        .is_some_and(|m| m.answer == answer && m.question == words);
    if known || a.explorer.asking.is_some() {
        return; // drawn, or asked after the question under way is answered
    }
    if a.shown.as_ref().map(|s| s.generation) != Some(a.engine.generation()) {
        return; // an answer of an engine that stopped: the page runs the photo again
    }
    a.explorer.asking = Some((answer, words.clone()));
    let relevance = words.method == "relevance";
    let engine = a.engine.clone();
    drop(a);
    let shared = app.clone();
    let task = async move {
        let app = shared;
        let ask = Request::Explain {
            answer,
            question: words.clone(),
        };
        let result = engine.call(ask, Attachments::default()).await;
        let failed = {
            let mut a = app.borrow_mut();
            a.explorer.asking = None;
            match result {
                Ok((Reply::Map(map), _)) => {
                    if map.relevance_ms.is_some() {
                        a.explorer.relevance_ms = map.relevance_ms;
                    }
                    a.explorer.answered = Some(Answered {
                        answer,
                        question: words,
                        values: map.values,
                        backend: map.backend,
                    });
                    None
                }
                Ok((other, _)) => Some(format!("the engine answered {other:?} to a map")),
                Err(e) => Some(e),
            }
        };
        redraw(&app);
        match failed {
            Some(e) if relevance => Err(format!("The relevance could not be computed: {e}")),
            Some(e) => {
                // A map that could not be drawn says why in its caption.
                let a = app.borrow();
                crate::platform::dom::set_text(&a.explorer.controls.what, &e);
                Ok(())
            }
            None => Ok(()),
        }
    };
    if relevance {
        spawn_task(app, "Explaining the class", task);
    } else {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = task.await;
        });
    }
}

/// A click on a class's bar: its relevance.
pub fn explain_class(app: &Shared, class: usize) {
    app.borrow_mut().explorer.ask.view = View::Relevance(class);
    redraw(app);
}

/// After a new result: the explorer asks its question of the new answer.
pub fn after_result(app: &Shared) {
    redraw(app);
}
