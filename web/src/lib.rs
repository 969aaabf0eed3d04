//! Vitrine's page: the `vit` crate's Vision Transformer and preprocessing, compiled to
//! WebAssembly, with the patch animation, predictions and attention maps drawn on canvas.
//!
//! - [`app`]: the page's state and actions (load a model, take an image, run, show)
//! - [`model`]: backends (WebGPU, Flex), loading, inference and timing
//! - [`animate`]: the photo-to-tokens animation
//! - [`bars`], [`heatmap`], [`draw`]: the pictures
//! - [`events`], [`ui`], [`dom`], [`net`]: the page around them
//! - [`api`]: `window.vitrine`, for tests

pub mod animate;
pub mod api;
pub mod app;
pub mod bars;
pub mod dom;
pub mod draw;
pub mod events;
pub mod heatmap;
pub mod model;
pub mod net;
pub mod ui;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// The linker's constructor list. cubecl (through pliron) registers thousands of start-up
    /// constructors; unless they run once here, the linker wraps every export so that they run
    /// again on every call from JavaScript (a 3-4x slower page, see
    /// shared/notes/burn-in-the-browser.md).
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
    app.borrow_mut().startup_ms = (wasm_ready, gpu_init);
    api::install(&app);
    {
        let a = app.borrow();
        events::describe_backends(&a);
        app::render_results(&a);
        a.stage.borrow().draw();
    }
    events::wire(&app);
    app::spawn_task(&app, "Loading", app::startup(app.clone()));
}
