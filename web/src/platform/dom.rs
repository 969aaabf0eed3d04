//! Thin helpers over web-sys: finding elements, listening, timers and reading files. The
//! timers and the clock also serve the engine's worker (`scope`); the rest is the page's.

use js_sys::{Promise, Uint8Array};
use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Document, Element, EventTarget, File, Window};

use crate::platform::scope::scope;

pub fn window() -> Window {
    web_sys::window().expect("the page runs in a browser window")
}

pub fn document() -> Document {
    window().document().expect("the window has a document")
}

/// The element with `id`, as `T`. The ids live in index.html; a missing one is a bug in this
/// crate or the page, so it fails loudly.
pub fn by_id<T: JsCast>(id: &str) -> T {
    document()
        .get_element_by_id(id)
        .unwrap_or_else(|| panic!("index.html has no element #{id}"))
        .dyn_into::<T>()
        .unwrap_or_else(|_| panic!("#{id} is not the expected kind of element"))
}

pub fn create<T: JsCast>(tag: &str) -> T {
    document()
        .create_element(tag)
        .expect("creating an element")
        .dyn_into::<T>()
        .expect("created element has the expected type")
}

/// Adds an event listener for the page's lifetime (the page never removes its controls).
pub fn on<E: JsCast + 'static>(target: &EventTarget, event: &str, f: impl FnMut(E) + 'static) {
    let mut f = f;
    let closure = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        f(e.unchecked_into::<E>())
    });
    target
        .add_event_listener_with_callback(event, closure.as_ref().unchecked_ref())
        .expect("adding an event listener");
    closure.forget();
}

pub fn set_text(el: &Element, text: &str) {
    el.set_text_content(Some(text));
}

/// Fills a progress bar (`progress`, role=progressbar, around `bar`) to `percent` and says
/// `text` on it (`text_el`) and to screen readers.
pub fn fill_progress(
    progress: &Element,
    bar: &web_sys::HtmlElement,
    text_el: &Element,
    percent: f64,
    text: &str,
) {
    let percent = if percent.is_finite() {
        percent.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let _ = bar.style().set_property("width", &format!("{percent:.1}%"));
    set_attr(progress, "aria-valuenow", &format!("{percent:.0}"));
    set_attr(progress, "aria-valuetext", text);
    set_text(text_el, text);
}

pub fn set_attr(el: &Element, name: &str, value: &str) {
    let _ = el.set_attribute(name, value);
}

/// Milliseconds from `performance.now()` (the page's or the engine's clock: each counts from
/// its own start).
pub fn now() -> f64 {
    scope().performance().map_or(0.0, |p| p.now())
}

/// Resolves after `ms` milliseconds on the event loop, so the browser can paint and run
/// animation frames between steps of long work.
pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Gives the event loop one turn.
pub async fn yield_now() {
    sleep(0).await
}

/// A readable message from a JavaScript exception or rejection value.
pub fn js_message(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

pub async fn read_file(file: &File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("could not read {}: {}", file.name(), js_message(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

pub fn prefers_reduced_motion() -> bool {
    window()
        .match_media("(prefers-reduced-motion: reduce)")
        .ok()
        .flatten()
        .is_some_and(|m| m.matches())
}

pub fn device_pixel_ratio() -> f64 {
    window().device_pixel_ratio().clamp(1.0, 3.0)
}

/// "1.2 MB", "340 kB": sizes as people read them.
pub fn human_bytes(bytes: f64) -> String {
    if bytes >= 1e6 {
        format!("{:.1} MB", bytes / 1e6)
    } else if bytes >= 1e3 {
        format!("{:.0} kB", bytes / 1e3)
    } else {
        format!("{bytes:.0} B")
    }
}

/// "12.3 ms", "4.5 s".
pub fn human_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Saves `bytes` as a download named `name`: a Blob URL clicked through a hidden
/// `<a download>`, revoked a while later (revoking at once can cancel the download).
pub fn download(name: &str, bytes: &Uint8Array, mime: &str) -> Result<(), String> {
    let parts = js_sys::Array::of1(bytes);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|e| js_message(&e))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| js_message(&e))?;
    let link: web_sys::HtmlAnchorElement = create("a");
    link.set_href(&url);
    link.set_download(name);
    link.set_hidden(true);
    let body = document().body().ok_or("the page has no body")?;
    let _ = body.append_child(&link);
    link.click();
    link.remove();
    wasm_bindgen_futures::spawn_local(async move {
        sleep(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// The event target of the whole window, for page-wide listeners (resize, paste, drop).
pub fn window_target() -> EventTarget {
    window().unchecked_into()
}

/// The page's animation frames, counted while the engine works: the main thread's heartbeat,
/// which goes on during a pass (`window.vitrine.frames()`). It asks for frames only then: a
/// loop of animation frames that never ends kept Chromium drawing 60 frames a second on an idle
/// page, about a tenth of a core.
#[derive(Clone, Default)]
pub struct Heartbeat {
    frames: Rc<Cell<u64>>,
    wanted: Rc<Cell<bool>>,
    running: Rc<Cell<bool>>,
}

impl Heartbeat {
    /// Frames counted so far.
    pub fn frames(&self) -> u64 {
        self.frames.get()
    }

    /// Counts every frame from the next one until [`Self::stop`].
    pub fn start(&self) {
        self.wanted.set(true);
        if !self.running.replace(true) {
            self.next_frame();
        }
    }

    pub fn stop(&self) {
        self.wanted.set(false);
    }

    fn next_frame(&self) {
        // The engine's own client of its WebGPU lane (a worker) has no window and no frames.
        let Some(window) = web_sys::window() else {
            self.running.set(false);
            return;
        };
        let beat = self.clone();
        let callback = Closure::once_into_js(move |_: f64| {
            if beat.wanted.get() {
                beat.frames.set(beat.frames.get() + 1);
                beat.next_frame();
            } else {
                beat.running.set(false);
            }
        });
        let _ = window.request_animation_frame(callback.unchecked_ref());
    }
}
