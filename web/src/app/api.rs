//! `window.vitrine`: a small read-only view of the page for tests and the curious.
//!
//! - `state()`: "busy", "ready" or "error"
//! - `backend()`: "webgpu" or "cpu", the backend of the last result ("" before one)
//! - `predictions()`: the last result as JSON (`run`, `model`, `image`, `backend`, `ms`,
//!   `top` [{label, index, prob}], `probs`, `fits`: whether a class fits (see
//!   `vit::inference::verdict`), `crop`: [x, y, size] of a square the person chose, or null),
//!   or null
//! - `error()`: the last error message, or null
//! - `timings()`: the backend timings as JSON, with `webgpu_kernels` (the kernels WebGPU's
//!   timed pass launched) and `webgpu_tuning` (`tuned`, `recalled`, `tuning_ms`, `remembered`,
//!   `tuned_at`, `remembered_ms`: what autotune did, and what is kept for the adapter)
//! - `model()`: the current model's name
//! - `following()`: whether the model is still catching up with a moved square
//! - `explorer()`: the token explorer's map as JSON (`method`, `layer`, `heads`, `token`,
//!   `reverse`, `class`, `tokens`: one value per token as `trainer explain --json` prints them,
//!   `run`, `backend`, `selected`, `relevance_ms`, and where things are drawn: `grid`,
//!   `photo` and `input` [x, y, side], `strip` [y, pitch, columns]; `explaining`: the class
//!   whose bar is marked as the one explained, or null), or null
//! - `animation()`: the patch animation as JSON (`t` and `end` in seconds at 1×, `playing`,
//!   `done`: played to its end, every patch in its token slot), or null before an image
//! - `teach()`: the Teach panel as JSON: `state` ("idle" | "adding" | "extracting" |
//!   "training" | "done" | "stopped" | "error"; after a refusal it stays what it was, with the
//!   message in `error`), `classes` [{name, photos}], `step`, `steps`, `loss` and `train_acc`
//!   (the last step's batch, or null), `held_out` ({photos, accuracy, loss}, or null when no
//!   photo is held out), `ms` ({features, training, total}, or null until a run ends),
//!   `backend` ("cpu" | "webgpu" | null), `model` (the taught model's name, or null), `error`,
//!   `curve` [{step, loss, train_acc, held_acc}] (a reading every 10 steps and at the end),
//!   `adding` ({done, total} while photos are being added, else null)
//! - `hub()`: the hub as JSON: `endpoint`, `kept` (the select values of hub models kept for
//!   offline visits), `download` ({received, total, updates} of the last weights download, or
//!   null)
//! - `modelKey()`: the model select's value for the current model (`hf-hub:ORG/NAME` for a
//!   hub model)
//! - `taughtPair()`: the last taught pair as JSON, `{name, manifest, bpk}`: the exact text of
//!   NAME.json and the bytes of NAME.bpk in base64, as Download saves them; null before one
//! - `frames()`: the page's animation frames counted while the engine works (the main
//!   thread's own heartbeat, which goes on during a pass)
//! - `engine()`: the engine as JSON: `build` ("threads" | "single"), `threads`, `generation`
//!   (1, then one more for each engine started after one stopped), `stopped` (why the last
//!   one stopped, or null), `busy_since` (when the page began waiting for it, on the page's
//!   clock, or null), `sent` (requests so far)
//! - `engineFault(kind)`: a test hook: "panic" makes the engine panic, "kill" ends its worker
//!   as a browser would, "busy:MS" keeps it busy for MS milliseconds, "shader" hands WebGPU's
//!   device a shader it refuses

use js_sys::{Function, Object, Reflect};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::Closure;

use crate::app::state::{App, NextCrop, Shared};
use crate::platform::dom::window;

/// One read-only getter of `window.vitrine`.
type Getter = fn(&App) -> JsValue;

/// Installs `window.vitrine`; `fault` answers `engineFault(kind)` (the start layer passes the
/// action, which this layer sits below).
pub fn install(app: &Shared, fault: impl Fn(String) + 'static) {
    let api = Object::new();
    let getter = |f: Getter| -> Function {
        let app = app.clone();
        let closure = Closure::<dyn Fn() -> JsValue>::new(move || {
            // A call from JavaScript never lands while Rust holds the state (the page is
            // single-threaded and no borrow spans an await); still, answer rather than panic.
            app.try_borrow()
                .map_or(JsValue::from_str("busy"), |a| f(&a))
        });
        closure.into_js_value().into()
    };
    let entries: [(&str, Getter); 15] = [
        ("state", |a| a.state().into()),
        ("backend", |a| {
            a.shown.as_ref().map_or("", |s| s.backend.id()).into()
        }),
        ("predictions", |a| {
            a.predictions_json().map_or(JsValue::NULL, |s| s.into())
        }),
        ("error", |a| {
            a.error.clone().map_or(JsValue::NULL, |s| s.into())
        }),
        ("timings", |a| a.timings_json().into()),
        ("following", |a| {
            (a.crop_job || a.crop_next != NextCrop::None).into()
        }),
        ("explorer", |a| {
            a.explorer.json().map_or(JsValue::NULL, |s| s.into())
        }),
        ("animation", |a| {
            a.stage
                .try_borrow()
                .ok()
                .and_then(|s| s.json())
                .map_or(JsValue::NULL, |s| s.into())
        }),
        ("model", |a| {
            a.model
                .as_ref()
                .map_or(JsValue::NULL, |m| m.manifest.name.clone().into())
        }),
        ("teach", |a| a.teach.json().into()),
        ("hub", |a| a.hub.json().into()),
        ("modelKey", |a| a.model_key.clone().into()),
        ("taughtPair", |a| {
            a.teach.pair_json().map_or(JsValue::NULL, |s| s.into())
        }),
        ("frames", |a| (a.engine.heartbeat.frames() as f64).into()),
        ("engine", |a| {
            let e = &a.engine;
            serde_json::json!({
                "build": e.build().id(),
                "threads": a.ready.threads,
                "generation": e.generation(),
                "stopped": *e.stopped.borrow(),
                "busy_since": e.busy_since.get(),
                "sent": e.sent.get(),
            })
            .to_string()
            .into()
        }),
    ];
    for (name, f) in entries {
        let _ = Reflect::set(&api, &name.into(), &getter(f));
    }
    let fault = Closure::<dyn Fn(String)>::new(fault);
    let _ = Reflect::set(&api, &"engineFault".into(), &fault.into_js_value());
    let _ = Reflect::set(&window(), &"vitrine".into(), &api);
}
