//! Vitrine's page: the `vit` crate's Vision Transformer and preprocessing, compiled to
//! WebAssembly, with the patch animation, predictions and attention maps drawn on canvas.
//!
//! The folders form layers, each using only those below it (`vit/tests/module_cycles.rs`
//! checks that no module imports one above it, in `src/` and in each folder):
//! - [`events`]: what each control does (the top: it calls the actions below)
//! - [`actions`]: startup, loading models, photos and the square, inference, the explorer's
//!   relevance, the Teach panel's training and photos
//! - [`view`]: the state drawn: results, the model's description, the token explorer
//! - [`app`]: the page's state, its tasks and status line, its elements; `window.vitrine`
//! - [`explorer`], [`teach`]: the token explorer's and the Teach panel's state (and the
//!   panel's texts, report, curve, webcam and its burn half)
//! - [`pictures`]: the animation, bars, heat maps, drawing helpers; the square's geometry
//! - [`backends`]: WebGPU and Flex, loading, inference, relevance and timing; everything burn
//!   but teaching
//! - [`platform`]: web-sys helpers, fetching

pub mod actions;
pub mod app;
pub mod backends;
pub mod events;
pub mod explorer;
pub mod pictures;
pub mod platform;
pub mod teach;
pub mod view;

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
    platform::log::init();
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        // A panic aborts the module; say so in the page rather than leave it frozen.
        if let Some(el) = platform::dom::document().get_element_by_id("alert-text") {
            el.set_text_content(Some(&format!(
                "The page stopped because of an internal error; reload to start again. ({info})"
            )));
            if let Some(parent) = el.parent_element() {
                let _ = parent.remove_attribute("hidden");
            }
        }
        let _ = platform::dom::document()
            .body()
            .map(|b| b.set_attribute("data-state", "error"));
    }));
    wasm_bindgen_futures::spawn_local(run());
}

async fn run() {
    // Milliseconds since navigation began: download, compile and instantiate of the wasm.
    let wasm_ready = platform::dom::now();
    let ui = app::ui::Ui::find();
    platform::dom::set_text(&ui.status, "Looking for WebGPU…");
    let backends = backends::Backends::init().await;
    let gpu_init = platform::dom::now() - wasm_ready;
    let app = Rc::new(RefCell::new(app::state::App::new(ui, backends)));
    app.borrow_mut().milestones.wasm_ready = wasm_ready;
    app.borrow_mut().milestones.webgpu_init = gpu_init;
    app::api::install(&app);
    {
        let a = app.borrow();
        a.ui.describe_backends(
            a.backends
                .gpu
                .is_none()
                .then(|| a.backends.gpu_problem.as_deref().unwrap_or("no adapter")),
        );
        view::results::render_results(&a);
        a.stage.borrow().draw();
    }
    events::page::wire(&app);
    let loading = app.clone();
    app::state::spawn_task(&app, "Loading", async move {
        let names = actions::startup::sample_names().await;
        let buttons = loading.borrow().ui.add_sample_buttons(&names);
        events::page::wire_samples(&loading, &names, &buttons);
        actions::startup::startup(loading, names.into_iter().next()).await
    });
}
