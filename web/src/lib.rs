//! Vitrine's page: the `vit` crate's Vision Transformer and preprocessing, compiled to
//! WebAssembly, with the patch animation, predictions and attention maps drawn on canvas.
//!
//! The modules form layers, each using only those below it:
//! - [`events`]: what each control does (the top: it calls the actions below)
//! - the actions: [`startup`], [`loading`] (models), [`images`] (photos and the square the
//!   model sees), [`inference`], [`results`], [`explorer`] (the token explorer: its state,
//!   drawing and listeners; [`query`] is its pure question and geometry), [`teach`] (the Teach
//!   panel: photos, training, download, and its listeners)
//! - [`app`]: the page's state, its tasks and status line; [`teach_state`]: the Teach panel's;
//!   [`api`]: `window.vitrine`, for tests
//! - [`model`]: backends (WebGPU, Flex), loading, inference and timing; [`teaching`]: teaching
//!   new classes on those backends; everything burn
//! - [`animate`], [`bars`], [`heatmap`], [`curve`], [`draw`]: the pictures; [`crop`]: the
//!   square's geometry
//! - [`ui`], [`teach_ui`], [`dom`], [`net`], [`webcam`]: the page's elements, web-sys helpers,
//!   fetching, the camera

pub mod animate;
pub mod api;
pub mod app;
pub mod bars;
pub mod crop;
pub mod curve;
pub mod dom;
pub mod draw;
pub mod events;
pub mod explorer;
pub mod heatmap;
pub mod images;
pub mod inference;
pub mod loading;
pub mod model;
pub mod net;
pub mod query;
pub mod results;
pub mod startup;
pub mod teach;
pub mod teach_events;
pub mod teach_photos;
pub mod teach_state;
pub mod teach_ui;
pub mod teaching;
pub mod ui;
pub mod webcam;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// The linker's constructor list. cubecl (through pliron) registers thousands of start-up
    /// constructors; unless they run once here, the linker wraps every export so that they run
    /// again on every call from JavaScript (a 3-4x slower page: warm WebGPU inference went
    /// from about 400 to about 110 ms when this call was added). `web/README.md` has more.
    fn __wasm_call_ctors();
}

#[wasm_bindgen(start)]
pub fn start() {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: called once, first, before any other code of this module runs.
    unsafe {
        __wasm_call_ctors()
    };
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // A panic aborts the module; say so in the page rather than leave it frozen.
        if let Some(el) = dom::document().get_element_by_id("alert-text") {
            el.set_text_content(Some(&format!(
                "The page stopped because of an internal error; reload to start again. ({info})"
            )));
            if let Some(parent) = el.parent_element() {
                let _ = parent.remove_attribute("hidden");
            }
        }
        let _ = dom::document()
            .body()
            .map(|b| b.set_attribute("data-state", "error"));
    }));
    wasm_bindgen_futures::spawn_local(run());
}

async fn run() {
    // Milliseconds since navigation began: download, compile and instantiate of the wasm.
    let wasm_ready = dom::now();
    let ui = ui::Ui::find();
    dom::set_text(&ui.status, "Looking for WebGPU…");
    let backends = model::Backends::init().await;
    let gpu_init = dom::now() - wasm_ready;
    let app = Rc::new(RefCell::new(app::App::new(ui, backends)));
    app.borrow_mut().milestones.wasm_ready = wasm_ready;
    app.borrow_mut().milestones.webgpu_init = gpu_init;
    api::install(&app);
    {
        let a = app.borrow();
        a.ui.describe_backends(
            a.backends
                .gpu
                .is_none()
                .then(|| a.backends.gpu_problem.as_deref().unwrap_or("no adapter")),
        );
        results::render_results(&a);
        a.stage.borrow().draw();
    }
    events::wire(&app);
    let loading = app.clone();
    app::spawn_task(&app, "Loading", async move {
        let names = startup::sample_names().await;
        let buttons = loading.borrow().ui.add_sample_buttons(&names);
        events::wire_samples(&loading, &names, &buttons);
        startup::startup(loading, names.into_iter().next()).await
    });
}
