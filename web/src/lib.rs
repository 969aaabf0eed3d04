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
//!   panel's texts, report, curve and webcam)
//! - [`pictures`]: the animation, bars, heat maps, drawing helpers; the square's geometry
//! - [`worker`]: the engine's Web Worker from the page's side, and the messages' envelope
//! - [`engine`]: everything burn (devices, models, photos decoded and prepared, inference,
//!   maps, relevance, timing, hub downloads, teaching), run in that worker; it uses only the
//!   layers below it
//! - [`protocol`]: the messages between the page and the engine
//! - [`platform`]: web-sys helpers, fetching
//!
//! One module serves both sides: in the page's window [`start`] starts the page, and in the
//! engine's worker `web/js/engine-worker.js` calls [`start_engine`].

pub mod actions;
pub mod app;
pub mod engine;
pub mod events;
pub mod explorer;
pub mod pictures;
pub mod platform;
pub mod protocol;
pub mod teach;
pub mod view;
pub mod worker;

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;
/// `initThreadPool(n)` for `web/js/engine-worker.js`: rayon's pool on `n` Web Workers sharing
/// this module's memory (the threaded build only).
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

#[cfg(target_arch = "wasm32")]
unsafe extern "C" {
    /// The linker's constructor list. cubecl (through pliron) registers thousands of start-up
    /// constructors; unless they run once here, the linker wraps every export so that they run
    /// again on every call from JavaScript (a 3-4x slower page: warm WebGPU inference went
    /// from about 400 to about 110 ms when this call was added). `web/README.md` has more.
    fn __wasm_call_ctors();
}

/// Runs the linker's constructors once in this module's memory: in the threaded build every
/// thread of the pool instantiates the module again on the same memory, and must not run
/// them twice (they register into lists that live in that memory).
fn constructors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(target_arch = "wasm32")]
        // SAFETY: called once per memory, first, before any other code of this module runs.
        unsafe {
            __wasm_call_ctors()
        };
    });
}

#[wasm_bindgen(start)]
pub fn start() {
    constructors();
    if !platform::scope::in_window() {
        return; // the engine's worker, or a thread of its pool: `start_engine` is for them
    }
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

/// The engine's entry, called by `web/js/engine-worker.js` in its dedicated worker once the
/// module (and, in the threaded build, rayon's pool of `threads`) is up; `gpu` names the
/// module the threaded build's WebGPU lane runs (null otherwise).
#[wasm_bindgen]
pub fn start_engine(threads: usize, gpu: JsValue) {
    constructors();
    platform::log::init();
    engine::start(threads, worker::client::Boot::from_object(&gpu));
}

async fn run() {
    // Milliseconds since navigation began: download, compile and instantiate of the wasm.
    let wasm_ready = platform::dom::now();
    let ui = app::ui::Ui::find();
    platform::dom::set_text(&ui.status, "Starting the engine and looking for WebGPU…");
    let search = platform::dom::window()
        .location()
        .search()
        .unwrap_or_default();
    let build = worker::client::choose_build(&search);
    let engine = worker::client::Engine::start(
        worker::client::PAGE_ENGINE,
        worker::client::Boot::for_page(build),
    );
    let ready = match engine.ready().await {
        Ok(ready) => ready,
        Err(why) => {
            let message =
                format!("The page could not start its engine: {why}. Reload to try again.");
            platform::dom::set_text(&ui.status, &message);
            ui.show_alert(&message);
            let _ = platform::dom::document()
                .body()
                .map(|b| b.set_attribute("data-state", "error"));
            return;
        }
    };
    let gpu_init = ready.webgpu_init_ms;
    let app = Rc::new(RefCell::new(app::state::App::new(
        ui,
        engine.clone(),
        ready,
    )));
    app.borrow_mut().milestones.wasm_ready = wasm_ready;
    app.borrow_mut().milestones.webgpu_init = gpu_init;
    {
        let app = app.clone();
        app::api::install(&app.clone(), move |kind| {
            actions::loading::engine_fault(&app, &kind)
        });
    }
    {
        let app = app.clone();
        engine.on_restart(move |line| actions::loading::after_restart(&app, line));
    }
    {
        let a = app.borrow();
        a.ui.describe_backends(
            (!a.ready.webgpu).then(|| a.ready.webgpu_problem.as_deref().unwrap_or("no adapter")),
        );
        a.ui.describe_threads(engine.build().id(), a.ready.threads);
        view::results::render_results(&a);
        a.stage.borrow().draw();
    }
    events::page::wire(&app);
    let loading = app.clone();
    app::state::spawn_task(&app, "Loading", async move {
        let samples = actions::startup::samples().await;
        let first = samples.cifar.first().cloned();
        {
            let mut a = loading.borrow_mut();
            a.ui.show_samples("cifar", &samples.cifar, None);
            a.samples = samples;
        }
        events::page::wire_samples(&loading);
        actions::startup::startup(loading, first).await
    });
}
