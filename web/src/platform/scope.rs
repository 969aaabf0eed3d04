//! The global scope this code runs in: the page's window, or the engine's Web Worker. The
//! clock, timers, `fetch`, the Cache API and `crypto` exist in both, under different types;
//! these helpers pick the right one, so `net`, `keep`, `digest` and the timers serve both.

use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{CacheStorage, Crypto, Performance, RequestInit, Window, WorkerGlobalScope};

pub enum Scope {
    Window(Window),
    Worker(WorkerGlobalScope),
}

/// Where this code runs now.
pub fn scope() -> Scope {
    // wasm-bindgen's `instanceof` checks catch a missing `Window` (a worker has none).
    match js_sys::global().dyn_into::<Window>() {
        Ok(window) => Scope::Window(window),
        Err(global) => Scope::Worker(global.unchecked_into()),
    }
}

/// Whether this is the page (a window), not a worker.
pub fn in_window() -> bool {
    matches!(scope(), Scope::Window(_))
}

impl Scope {
    pub fn performance(&self) -> Option<Performance> {
        match self {
            Scope::Window(w) => w.performance(),
            Scope::Worker(w) => w.performance(),
        }
    }

    pub fn set_timeout(&self, f: &Function, ms: i32) -> Result<i32, JsValue> {
        match self {
            Scope::Window(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms),
            Scope::Worker(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(f, ms),
        }
    }

    pub fn fetch(&self, url: &str, init: &RequestInit) -> Promise {
        match self {
            Scope::Window(w) => w.fetch_with_str_and_init(url, init),
            Scope::Worker(w) => w.fetch_with_str_and_init(url, init),
        }
    }

    pub fn caches(&self) -> Result<CacheStorage, JsValue> {
        match self {
            Scope::Window(w) => w.caches(),
            Scope::Worker(w) => w.caches(),
        }
    }

    pub fn crypto(&self) -> Result<Crypto, JsValue> {
        match self {
            Scope::Window(w) => w.crypto(),
            Scope::Worker(w) => w.crypto(),
        }
    }

    /// `navigator.gpu` exists: the browser offers WebGPU here (Chromium offers it to
    /// dedicated workers too).
    pub fn has_webgpu(&self) -> bool {
        let global: &JsValue = match self {
            Scope::Window(w) => w.as_ref(),
            Scope::Worker(w) => w.as_ref(),
        };
        js_sys::Reflect::get(global, &"navigator".into())
            .and_then(|n| js_sys::Reflect::has(&n, &"gpu".into()))
            .unwrap_or(false)
    }
}
