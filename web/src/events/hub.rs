//! The hub's controls: a model named in the field (`ORG/NAME`) is fetched on Enter or "Fetch";
//! "Forget downloaded models" drops what was kept for offline visits.

use web_sys::Event;

use crate::actions::hub;
use crate::app::state::{Shared, spawn_task};
use crate::platform::dom::on;

pub fn wire(app: &Shared) {
    let (form, field, forget) = {
        let a = app.borrow();
        (
            a.ui.hub_form.clone(),
            a.ui.hub_name.clone(),
            a.ui.hub_forget.clone(),
        )
    };
    {
        let app = app.clone();
        on(&form, "submit", move |e: Event| {
            e.prevent_default(); // the page stays; the model comes by fetch
            let text = field.value().trim().to_string();
            if text.is_empty() {
                return;
            }
            let label = format!("Loading {text}");
            spawn_task(&app, &label, hub::load_hub(app.clone(), text));
        });
    }
    let app = app.clone();
    on(&forget, "click", move |_: Event| {
        spawn_task(
            &app,
            "Forgetting the downloaded models",
            hub::forget(app.clone()),
        );
    });
}
