//! The token explorer's actions: drawing again after the question changed, and a class's
//! relevance (Chefer et al. 2021, one backward pass on the backend of the result), computed once
//! per result and class and asked again after each new result.

use crate::app::state::{Shared, spawn_task};
use crate::explorer::query::View;
use crate::explorer::state::Explained;
use crate::platform::dom::now;
use crate::view::explorer::render;

/// Draws again after the question changed (no model run).
pub fn redraw(app: &Shared) {
    if let Ok(mut a) = app.try_borrow_mut() {
        render(&mut a);
    }
}

/// A click on a class's bar: its relevance, computed once per result and class.
pub fn explain_class(app: &Shared, class: usize) {
    let fresh = {
        let mut a = app.borrow_mut();
        a.explorer.ask.view = View::Relevance(class);
        let run = a.shown.as_ref().map(|s| s.run);
        let known = a
            .explorer
            .explained
            .as_ref()
            .is_some_and(|e| Some(e.run) == run && e.class == class);
        render(&mut a);
        !known && a.explorer.pending != Some(class)
    };
    if fresh {
        app.borrow_mut().explorer.pending = Some(class);
        let task = relevance(app.clone(), class);
        spawn_task(app, "Explaining the class", task);
    }
}

/// After a new result: a relevance view asks again for the new image.
pub fn after_result(app: &Shared) {
    let class = match app.borrow().explorer.ask.view {
        View::Relevance(c) => Some(c),
        _ => None,
    };
    match class {
        Some(c) => explain_class(app, c),
        None => redraw(app),
    }
}

async fn relevance(app: Shared, class: usize) -> Result<(), String> {
    let job = {
        let a = app.borrow();
        match (&a.shown, &a.picture, &a.model) {
            (Some(s), Some(p), Some(m)) => Some((
                s.run,
                s.output.backend,
                p.prepared.chw.clone(),
                m.clone(),
                a.backends.clone(),
            )),
            _ => None,
        }
    };
    let Some((run, backend, chw, model, backends)) = job else {
        app.borrow_mut().explorer.pending = None;
        return Ok(());
    };
    crate::platform::dom::yield_now().await;
    let start = now();
    let result = crate::backends::relevance(&model, &backends, backend, &chw, class).await;
    let ms = now() - start;
    let mut a = app.borrow_mut();
    a.explorer.pending = None;
    let relevance = result.map_err(|e| format!("The relevance could not be computed: {e}"))?;
    if a.shown.as_ref().map(|s| s.run) != Some(run) {
        return Ok(()); // a newer result came meanwhile; `after_result` asks again
    }
    a.explorer.explained = Some(Explained {
        run,
        class,
        relevance,
        backend,
        ms,
    });
    render(&mut a);
    Ok(())
}
