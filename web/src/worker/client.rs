//! An engine's dedicated Web Worker, from the side that asks: starts it (for the page, the
//! threaded build when the page is cross-origin isolated, else this module itself on one
//! thread; for the threaded engine, this module again, as its WebGPU lane), sends it requests,
//! routes its replies and events back to whoever asked, and starts a new engine when one dies
//! (a panic, or a worker killed), telling its owner once so it can load its model again.
//!
//! The worker's first script is `web/js/engine-worker.js` (copied beside index.html, so that
//! relative URLs resolve in the worker as in the page): it imports the module's JavaScript,
//! starts the thread pool, and hands over to `engine::start`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::platform::dom::{Heartbeat, js_message, window};
use crate::protocol::{Event, FromEngine, Ready, Reply, Request, ToEngine};
use crate::worker::envelope::{Attachments, Received};

/// The page's engine, in its messages.
pub const PAGE_ENGINE: &str = "the page's engine";
/// How the failure of a request whose page engine died begins: the page has said so already
/// (one line, [`Engine::on_restart`]), so such failures are not shown again.
pub const STOPPED: &str = "the page's engine stopped";

/// The worker's first script, beside index.html.
const BOOT_SCRIPT: &str = "engine-worker.js";
/// The threaded build's JavaScript, built by scripts/build-page.
const THREADED_GLUE: &str = "engine-mt/web.js";

#[wasm_bindgen]
extern "C" {
    /// This module's own JavaScript (wasm-bindgen's `import.meta.url` of it): the single-thread
    /// engine is this very module, started in the worker.
    #[wasm_bindgen(thread_local_v2, js_namespace = ["import", "meta"], js_name = url)]
    static GLUE_URL: js_sys::JsString;
}

/// What a worker is to run: a module's JavaScript (`glue`), the module compiled already (or
/// null: the glue fetches its own), the pool's threads, and for the threaded build the module
/// its WebGPU lane runs (`gpu`, an object like this one, or null).
#[derive(Clone)]
pub struct Boot {
    pub glue: String,
    pub module: JsValue,
    pub build: Build,
    pub gpu: JsValue,
}

impl Boot {
    /// This very module, on one thread.
    pub fn single() -> Self {
        Self {
            glue: GLUE_URL.with(|u| String::from(u)),
            module: wasm_bindgen::module(),
            build: Build::Single,
            gpu: JsValue::NULL,
        }
    }

    /// The page's engine for `build`: the threaded build (beside the page), with this module
    /// as its WebGPU lane; or this module.
    pub fn for_page(build: Build) -> Self {
        match build {
            Build::Single => Self::single(),
            Build::Threads(_) => {
                let base = crate::platform::dom::document()
                    .base_uri()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let glue = web_sys::Url::new_with_base(THREADED_GLUE, &base)
                    .map(|u| u.href())
                    .unwrap_or_else(|_| THREADED_GLUE.to_string());
                let single = Self::single();
                let gpu = js_sys::Object::new();
                let _ = Reflect::set(&gpu, &"glue".into(), &single.glue.into());
                let _ = Reflect::set(&gpu, &"module".into(), &single.module);
                Self {
                    glue,
                    module: JsValue::NULL,
                    build,
                    gpu: gpu.into(),
                }
            }
        }
    }

    /// The lane's boot from the object [`Self::for_page`] put in `gpu`.
    pub fn from_object(gpu: &JsValue) -> Option<Self> {
        let glue = Reflect::get(gpu, &"glue".into()).ok()?.as_string()?;
        let module = Reflect::get(gpu, &"module".into()).ok()?;
        Some(Self {
            glue,
            module,
            build: Build::Single,
            gpu: JsValue::NULL,
        })
    }
}

/// Which build runs the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// The threaded build on a pool of this many workers (the page is cross-origin isolated).
    Threads(usize),
    /// This module, on one thread.
    Single,
}

impl Build {
    pub fn threads(self) -> usize {
        match self {
            Build::Threads(n) => n,
            Build::Single => 1,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Build::Threads(_) => "threads",
            Build::Single => "single",
        }
    }
}

/// The build this page can run: the threaded one when it is cross-origin isolated (shared
/// memory needs it), unless `?engine=single` asks otherwise; `?threads=N` sets the pool
/// (default: every core the browser reports).
pub fn choose_build(search: &str) -> Build {
    let isolated = Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let cores = window().navigator().hardware_concurrency() as usize;
    build_for(isolated, cores, search)
}

/// [`choose_build`]'s rule, pure.
pub fn build_for(isolated: bool, cores: usize, search: &str) -> Build {
    let param = |key: &str| {
        search
            .trim_start_matches('?')
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    };
    if !isolated || param("engine").as_deref() == Some("single") {
        return Build::Single;
    }
    let threads = param("threads")
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|&t| t >= 1)
        .unwrap_or(cores);
    Build::Threads(threads.clamp(1, 64))
}

/// A reply as a request's caller gets it, or why there is none.
type Answer = Result<(Reply, Received), String>;
/// Where a reply waits for its caller to wake.
type Slot = Rc<RefCell<Option<Answer>>>;
/// Told, with a line for the page, when a new engine replaced one that died.
type OnRestart = Rc<dyn Fn(String)>;

/// A request waiting for its reply.
struct Pending {
    resolve: Function,
    slot: Slot,
    events: Option<Rc<dyn Fn(Event)>>,
}

/// An engine, as the side that started it sees it.
pub struct Engine {
    /// What it is called in messages ([`PAGE_ENGINE`], or the WebGPU lane's name).
    name: &'static str,
    boot: RefCell<Boot>,
    /// Why the engine could not start, when it could not.
    failed: RefCell<Option<String>>,
    worker: RefCell<Option<Worker>>,
    listeners: RefCell<Vec<JsValue>>,
    next: Cell<u64>,
    pending: RefCell<HashMap<u64, Pending>>,
    ready: RefCell<Option<Ready>>,
    waiting: RefCell<Vec<Function>>,
    /// Engines started, the first included: models and answers of an earlier one are gone.
    generation: Cell<u32>,
    /// Why the last engine stopped, if one did.
    pub stopped: RefCell<Option<String>>,
    /// Told when an engine died and a new one is up: the page loads its model again.
    on_restart: RefCell<Option<OnRestart>>,
    /// Requests sent, and replies received, for `window.vitrine.engine()`.
    pub sent: Cell<u64>,
    pub busy_since: Cell<Option<f64>>,
    /// The main thread's frames, counted while a request is out.
    pub heartbeat: Heartbeat,
}

pub type Shared = Rc<Engine>;

impl Engine {
    /// Starts the engine's worker; requests wait for it to be ready.
    pub fn start(name: &'static str, boot: Boot) -> Shared {
        let engine = Rc::new(Self {
            name,
            boot: RefCell::new(boot),
            failed: RefCell::new(None),
            worker: RefCell::new(None),
            listeners: RefCell::new(Vec::new()),
            next: Cell::new(1),
            pending: RefCell::new(HashMap::new()),
            ready: RefCell::new(None),
            waiting: RefCell::new(Vec::new()),
            generation: Cell::new(0),
            stopped: RefCell::new(None),
            on_restart: RefCell::new(None),
            sent: Cell::new(0),
            busy_since: Cell::new(None),
            heartbeat: Heartbeat::default(),
        });
        engine.spawn();
        engine
    }

    pub fn build(&self) -> Build {
        self.boot.borrow().build
    }

    pub fn generation(&self) -> u32 {
        self.generation.get()
    }

    /// What the engine said when it started (`None` until then).
    pub fn ready_info(&self) -> Option<Ready> {
        self.ready.borrow().clone()
    }

    pub fn on_restart(&self, f: impl Fn(String) + 'static) {
        *self.on_restart.borrow_mut() = Some(Rc::new(f));
    }

    fn spawn(self: &Rc<Self>) {
        self.generation.set(self.generation.get() + 1);
        *self.ready.borrow_mut() = None;
        *self.failed.borrow_mut() = None;
        let options = WorkerOptions::new();
        options.set_type(WorkerType::Module);
        options.set_name("vitrine-engine");
        let worker = match Worker::new_with_options(BOOT_SCRIPT, &options) {
            Ok(w) => w,
            Err(e) => {
                let why = format!("the engine could not start ({})", js_message(&e));
                *self.failed.borrow_mut() = Some(why.clone());
                self.fail_all(&why);
                return;
            }
        };
        let weak = Rc::downgrade(self);
        let generation = self.generation.get();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            if let Some(engine) = weak.upgrade()
                && engine.generation.get() == generation
            {
                engine.receive(e.data());
            }
        });
        let weak = Rc::downgrade(self);
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |e: ErrorEvent| {
            e.prevent_default();
            if let Some(engine) = weak.upgrade()
                && engine.generation.get() == generation
            {
                engine.died(format!("it stopped with an error: {}", e.message()));
            }
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        *self.listeners.borrow_mut() = vec![on_message.into_js_value(), on_error.into_js_value()];
        let init = js_sys::Object::new();
        let boot = self.boot.borrow().clone();
        let _ = Reflect::set(&init, &"glue".into(), &boot.glue.into());
        let _ = Reflect::set(&init, &"module".into(), &boot.module);
        let _ = Reflect::set(
            &init,
            &"threads".into(),
            &(boot.build.threads() as u32).into(),
        );
        let _ = Reflect::set(&init, &"gpu".into(), &boot.gpu);
        let message = js_sys::Object::new();
        let _ = Reflect::set(&message, &"init".into(), &init);
        if let Err(e) = worker.post_message(&message) {
            let why = format!("the engine could not start ({})", js_message(&e));
            *self.failed.borrow_mut() = Some(why.clone());
            self.fail_all(&why);
            return;
        }
        *self.worker.borrow_mut() = Some(worker);
    }

    fn receive(self: &Rc<Self>, data: JsValue) {
        if let Some(panic) = Reflect::get(&data, &"panic".into())
            .ok()
            .and_then(|p| p.as_string())
        {
            self.died(format!("it failed: {panic}"));
            return;
        }
        if let Some(why) = Reflect::get(&data, &"bootError".into())
            .ok()
            .and_then(|p| p.as_string())
        {
            if let Build::Threads(_) = self.build() {
                // The threaded build could not start here (no build, or no shared memory):
                // this module runs the engine on one thread instead.
                web_sys::console::warn_1(
                    &format!("the threaded engine could not start ({why}): using one thread")
                        .into(),
                );
                *self.boot.borrow_mut() = Boot::single();
                self.terminate();
                self.spawn();
            } else {
                let why = format!("the engine could not start: {why}");
                *self.failed.borrow_mut() = Some(why.clone());
                self.fail_all(&why);
                for resolve in self.waiting.borrow_mut().drain(..) {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
            return;
        }
        let (message, received) = match Received::open::<FromEngine>(&data) {
            Ok(m) => m,
            Err(e) => {
                web_sys::console::error_1(&e.into());
                return;
            }
        };
        match message {
            FromEngine::Event {
                event: Event::Ready(ready),
                ..
            } => {
                *self.ready.borrow_mut() = Some(ready);
                for resolve in self.waiting.borrow_mut().drain(..) {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
            FromEngine::Event { id, event } => {
                let events = self
                    .pending
                    .borrow()
                    .get(&id)
                    .and_then(|p| p.events.clone());
                if let Some(f) = events {
                    f(event);
                }
            }
            FromEngine::Reply { id, reply } => {
                let pending = self.pending.borrow_mut().remove(&id);
                if self.pending.borrow().is_empty() {
                    self.idle();
                }
                if let Some(p) = pending {
                    let result = match reply {
                        Reply::Failed(message) => Err(message),
                        reply => Ok((reply, received)),
                    };
                    *p.slot.borrow_mut() = Some(result);
                    let _ = p.resolve.call0(&JsValue::NULL);
                }
            }
        }
    }

    /// No request is out any more.
    fn idle(&self) {
        self.busy_since.set(None);
        self.heartbeat.stop();
    }

    fn terminate(&self) {
        if let Some(w) = self.worker.borrow_mut().take() {
            w.set_onmessage(None);
            w.set_onerror(None);
            w.terminate();
        }
    }

    /// Every waiting request fails with `why`.
    fn fail_all(&self, why: &str) {
        let pending: Vec<Pending> = self.pending.borrow_mut().drain().map(|(_, p)| p).collect();
        self.idle();
        for p in pending {
            *p.slot.borrow_mut() = Some(Err(why.to_string()));
            let _ = p.resolve.call0(&JsValue::NULL);
        }
    }

    /// The engine died: what it was doing fails, a new one starts, and the page is told.
    pub fn died(self: &Rc<Self>, why: String) {
        let line = sentence(&format!(
            "{} stopped ({why}); a new one has started",
            self.name
        ));
        web_sys::console::error_1(&line.clone().into());
        *self.stopped.borrow_mut() = Some(why.clone());
        self.terminate();
        self.fail_all(&format!("{} stopped ({why})", self.name));
        self.spawn();
        if let Some(f) = self.on_restart.borrow().clone() {
            f(line);
        }
    }

    /// Resolves once the engine has said it is ready, or could not start.
    pub async fn ready(&self) -> Result<Ready, String> {
        loop {
            if let Some(r) = self.ready.borrow().clone() {
                return Ok(r);
            }
            if let Some(why) = self.failed.borrow().clone() {
                return Err(why);
            }
            let promise = Promise::new(&mut |resolve, _| self.waiting.borrow_mut().push(resolve));
            let _ = JsFuture::from(promise).await;
        }
    }

    /// Sends `request` (with `attachments`) and waits for its reply; `Reply::Failed` comes back
    /// as its message.
    pub async fn call(
        &self,
        request: Request,
        attachments: Attachments,
    ) -> Result<(Reply, Received), String> {
        self.call_with(request, attachments, None).await
    }

    /// As [`Self::call`], with `events` hearing the request's events meanwhile.
    pub async fn call_with(
        &self,
        request: Request,
        attachments: Attachments,
        events: Option<Rc<dyn Fn(Event)>>,
    ) -> Result<(Reply, Received), String> {
        self.ready().await?;
        let id = self.next.get();
        self.next.set(id + 1);
        let (message, transfer) = attachments.seal(&ToEngine { id, request })?;
        let slot = Rc::new(RefCell::new(None));
        let mut resolver = None;
        let promise = Promise::new(&mut |resolve, _| resolver = Some(resolve));
        let resolve = resolver.ok_or("a promise gave no resolver")?;
        self.pending.borrow_mut().insert(
            id,
            Pending {
                resolve,
                slot: slot.clone(),
                events,
            },
        );
        if self.busy_since.get().is_none() {
            self.busy_since.set(Some(crate::platform::dom::now()));
            self.heartbeat.start();
        }
        self.sent.set(self.sent.get() + 1);
        let posted = match self.worker.borrow().as_ref() {
            Some(w) => w
                .post_message_with_transfer(&message, &transfer)
                .map_err(|e| js_message(&e)),
            None => Err(format!("{} is not running", self.name)),
        };
        if let Err(e) = posted {
            self.pending.borrow_mut().remove(&id);
            return Err(e);
        }
        let _ = JsFuture::from(promise).await;
        let result = slot.borrow_mut().take();
        result.unwrap_or_else(|| Err(format!("{} gave no answer", self.name)))
    }
}

/// `s` with a capital first.
fn sentence(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isolated_pages_get_threads_and_others_one() {
        assert_eq!(build_for(false, 8, ""), Build::Single);
        assert_eq!(build_for(true, 8, ""), Build::Threads(8));
        assert_eq!(build_for(true, 8, "?threads=2"), Build::Threads(2));
        assert_eq!(build_for(true, 8, "?hub=x&engine=single"), Build::Single);
        assert_eq!(
            build_for(false, 8, "?threads=4"),
            Build::Single,
            "no shared memory"
        );
        assert_eq!(
            build_for(true, 4, "?threads=0"),
            Build::Threads(4),
            "nonsense is ignored"
        );
        assert_eq!(build_for(true, 4, "?threads=x"), Build::Threads(4));
        assert_eq!(
            build_for(true, 0, ""),
            Build::Threads(1),
            "a browser that says 0 cores"
        );
        assert_eq!(Build::Threads(3).threads(), 3);
        assert_eq!(Build::Single.threads(), 1);
    }
}
