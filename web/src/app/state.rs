//! The page's state, its tasks and its status line.
//!
//! One `App` behind `Rc<RefCell<_>>`, shared by event handlers and async tasks. A borrow is
//! never held across an `.await`: tasks copy what they need out, await, then borrow again and
//! check that what they computed is still wanted (a newer image or model wins). What each
//! action does lives in `actions`: `startup`, `loading` (models), `images` (photos and the
//! square), `inference`; `view::results` draws the result. The models, the decoded photo and
//! the answers' maps live in the engine (`worker::client`); the page holds handles to them
//! and what it draws.

use js_sys::Uint8Array;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use vit::index::{IndexEntry, ModelIndex};
use vit::inference::{Ranked, Verdict};
use vit::preprocess::{Crop, CropBox};
use vit::rollout::{HeadFusion, Heatmap};
use vit::weights::Manifest;
use wasm_bindgen_futures::spawn_local;
use web_sys::{File, HtmlCanvasElement};

use crate::app::ui::Ui;
use crate::pictures::animate::Stage;
use crate::platform::dom::{human_ms, set_attr, set_text};
use crate::protocol::{AnswerId, Backend, ModelId, PictureId, Ready, Timings};
use crate::worker::client::Engine;

pub type Shared = Rc<RefCell<App>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Fixed(Backend),
}

/// Where a model the page has loaded came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in `models/index.json`.
    Published,
    /// A pair picked from disk.
    Disk,
    /// Taught in the Teach panel.
    Taught,
    /// Fetched from the Hugging Face hub (named `ORG/NAME[@REVISION]`).
    Hub,
}

impl Origin {
    /// The model select's value for a model of this origin named `name`: a published model's
    /// is its name, the others' are prefixed ("disk:NAME", "taught:NAME") so they never take
    /// a published model's place.
    pub fn key(self, name: &str) -> String {
        match self {
            Origin::Published => name.to_string(),
            Origin::Disk => format!("disk:{name}"),
            Origin::Taught => format!("taught:{name}"),
            Origin::Hub => format!("{}{name}", vit::hub::PREFIX),
        }
    }

    /// What the model select adds after the name; `None` for a published model, which the
    /// index lists with its own label.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Origin::Published => None,
            Origin::Disk => Some("from disk"),
            Origin::Taught => Some("taught here"),
            Origin::Hub => Some("from the hub"),
        }
    }
}

/// How a model came to the page, so that a new engine (after one died) can load it again.
#[derive(Clone)]
pub enum Source {
    Published(IndexEntry),
    Files(File, File),
    Hub(String),
    /// A taught pair: its manifest's text and weights. The weights stay a JavaScript array: a
    /// ViT-S/16's are 88 MB, which copying into the page's memory held the main thread for
    /// 80 ms at the end of a Teach run.
    Pair(String, Uint8Array),
}

/// A model the engine holds, as the page knows it.
pub struct Model {
    /// The engine's handle, valid in the engine of `generation` only.
    pub id: ModelId,
    pub generation: u32,
    pub manifest: Manifest,
    pub source: Source,
}

impl Model {
    pub fn image_size(&self) -> usize {
        self.manifest.config.image_size
    }
}

/// A model the page has loaded, kept so switching back is instant.
pub struct Cached {
    /// The model select's value ([`Origin::key`]).
    pub key: String,
    pub origin: Origin,
    pub model: Rc<Model>,
    pub timings: Timings,
}

/// The current image, prepared for the current model (by the engine, which keeps it decoded).
pub struct Picture {
    pub id: PictureId,
    pub bytes: Rc<Vec<u8>>,
    pub name: String,
    /// The original's size.
    pub original: (u32, u32),
    /// The photo for drawing (downscaled when huge), and its size over the original's.
    pub photo: HtmlCanvasElement,
    pub scale: f32,
    /// The square the model sees, in `photo`'s coordinates.
    pub crop: CropBox,
    /// The square the person chose, in the original's pixels (`None`: the centre square).
    pub chosen: Option<Crop>,
    pub view: HtmlCanvasElement,
    /// The model's view is one flat colour.
    pub blank: bool,
    /// Why the file looks cut off (`vit::damage::truncation`): it is shown, as browsers show
    /// such files, but the result must say it is of the part that could be read.
    pub damage: Option<String>,
    /// The model (and engine) it was prepared for.
    pub model: ModelId,
    pub generation: u32,
}

impl Picture {
    /// The square the model sees, in whole pixels of the original.
    pub fn square(&self) -> Crop {
        let (w, h) = self.original;
        self.chosen.unwrap_or_else(|| Crop::centre(w, h))
    }
}

/// The last good result, with the rollout and the last layer's maps as drawn; the attention
/// maps themselves stay in the engine (`answer`), which the heat-map controls and the
/// explorer ask.
pub struct Shown {
    pub answer: AnswerId,
    /// Its engine: an answer of an earlier one is gone.
    pub generation: u32,
    pub backend: Backend,
    pub ms: f64,
    pub probs: Vec<f32>,
    pub layers: usize,
    pub heads_count: usize,
    pub tokens: usize,
    pub top: Vec<Ranked>,
    pub verdict: Verdict,
    pub image: String,
    /// The image's damage, as its picture recorded it when this result was computed.
    pub damage: Option<String>,
    pub model: String,
    /// The square it was computed on, when the person chose one.
    pub crop: Option<Crop>,
    pub rollout: Heatmap,
    pub heads: Vec<Heatmap>,
    pub run: u64,
}

/// The square the model is to look at next, asked for while it is still running on the one
/// before (`actions::images::move_crop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextCrop {
    /// Nothing new asked for: the model has caught up.
    None,
    /// The centre square.
    Centre,
    /// A square the person chose, in the original's pixels.
    Chosen(Crop),
}

impl NextCrop {
    /// `Centre` for no chosen square.
    pub fn of(crop: Option<Crop>) -> Self {
        crop.map_or(NextCrop::Centre, NextCrop::Chosen)
    }

    /// What is asked for: `None` when nothing is new, else the chosen square (`None` inside:
    /// the centre).
    pub fn asked(self) -> Option<Option<Crop>> {
        match self {
            NextCrop::None => None,
            NextCrop::Centre => Some(None),
            NextCrop::Chosen(c) => Some(Some(c)),
        }
    }

    /// The square this leaves on screen for a photo of `size` pixels whose square the model
    /// last saw is `current`: the one asked for, else the current one.
    pub fn square(self, current: Crop, (w, h): (u32, u32)) -> Crop {
        match self.asked() {
            None => current,
            Some(chosen) => chosen.unwrap_or_else(|| Crop::centre(w, h)),
        }
    }
}

/// The Hugging Face hub as the page uses it.
#[derive(Debug, Clone, Default)]
pub struct Hub {
    /// The hub's base URL: `?hub=URL`, else `models/index.json`'s, else huggingface.co.
    pub endpoint: String,
    /// The hub models kept for offline visits, by select value (`hf-hub:ORG/NAME`).
    pub kept: Vec<String>,
    /// The last weights download: `(received, total, progress updates)`.
    pub download: Option<(u64, u64, u32)>,
    /// Where the last hub model's load spent its time, in ms (its steps, then the time from
    /// the pick to its first result).
    pub steps: Vec<(String, f64)>,
}

impl Hub {
    pub fn json(&self) -> String {
        serde_json::json!({
            "endpoint": self.endpoint,
            "kept": self.kept,
            "steps": self.steps.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
            "download": self.download.map(|(got, total, updates)| {
                serde_json::json!({"received": got, "total": total, "updates": updates})
            }),
        })
        .to_string()
    }
}

pub struct HeatSettings {
    pub opacity: f64,
    pub fusion: HeadFusion,
    pub discard: f32,
    /// The engine is computing a rollout for these settings (a slider's drag asks again only
    /// once it has answered).
    pub asking: bool,
}

/// When things happened, in ms after navigation start, for `window.vitrine.timings()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Milestones {
    /// The wasm was running.
    pub wasm_ready: f64,
    /// How long WebGPU took to initialise.
    pub webgpu_init: f64,
    /// The first result was on screen.
    pub first_result: Option<f64>,
    /// The background timing of both backends had finished.
    pub timed: Option<f64>,
}

pub struct App {
    pub ui: Ui,
    /// The engine, in its Web Worker.
    pub engine: Rc<Engine>,
    /// What the engine said when it started: WebGPU or why not, its threads.
    pub ready: Ready,
    pub stage: Rc<RefCell<Stage>>,
    pub index: ModelIndex,
    pub hub: Hub,
    pub model: Option<Rc<Model>>,
    /// What the engine is loading now.
    pub loading: Option<Source>,
    pub model_key: String,
    pub cache: Vec<Cached>,
    pub timings: Timings,
    /// Models whose backends are being timed in the background; WebGPU runs wait for them.
    pub timing: u32,
    pub choice: Choice,
    /// The image bytes given most recently, kept to give the photo to a new engine.
    pub source: Option<(Rc<Vec<u8>>, String)>,
    /// The photo the engine holds: its id, in which engine.
    pub engine_picture: Option<(PictureId, u32)>,
    pub next_picture: PictureId,
    pub picture: Option<Picture>,
    pub shown: Option<Shown>,
    pub heat: HeatSettings,
    /// Running tasks: an id, and the label the status line shows (steps may relabel it).
    busy: Vec<(u64, String)>,
    next_task: u64,
    pub error: Option<String>,
    /// What the page is doing meanwhile, after "Ready" (timing WebGPU, which backend won).
    pub note: Option<String>,
    pub runs: u64,
    pub milestones: Milestones,
    pub inference_request: u64,
    pub model_request: u64,
    /// The square asked for while the one before it is still being run
    /// (`actions::images::move_crop`).
    pub crop_next: NextCrop,
    pub crop_job: bool,
    /// The token explorer ("ask the model anything").
    pub explorer: crate::explorer::state::Explorer,
    /// The Teach panel: classes, photos, the run, the taught pair.
    pub teach: crate::teach::state::Teach,
    pub samples: Samples,
}

/// The sample images: CIFAR-10's for models of CIFAR's size, photos for the rest.
#[derive(Debug, Default)]
pub struct Samples {
    /// `samples/index.json`: one 32 px CIFAR-10 test image per class.
    pub cifar: Vec<String>,
    /// `samples/photos/index.json`, as `photos/NAME`: ordinary photos (LICENSES.md there).
    pub photos: Vec<String>,
}

/// From this input size on, a model is offered photos rather than CIFAR's 32 px images.
const PHOTO_INPUT: usize = 96;

impl Samples {
    /// The set that fits a model of `image_size` pixels: its name and its files.
    pub fn fitting(&self, image_size: usize) -> (&'static str, &[String]) {
        if image_size >= PHOTO_INPUT && !self.photos.is_empty() {
            ("photos", &self.photos)
        } else {
            ("cifar", &self.cifar)
        }
    }
}

impl App {
    pub fn new(ui: Ui, engine: Rc<Engine>, ready: Ready) -> Self {
        let stage = Rc::new(RefCell::new(Stage::new(ui.stage.clone(), ui.play.clone())));
        Self {
            ui,
            engine,
            ready,
            stage,
            index: ModelIndex::default(),
            hub: Hub::default(),
            model: None,
            loading: None,
            model_key: String::new(),
            cache: Vec::new(),
            timings: Timings::default(),
            timing: 0,
            choice: Choice::Auto,
            source: None,
            engine_picture: None,
            next_picture: 0,
            picture: None,
            shown: None,
            heat: HeatSettings {
                opacity: 0.65,
                fusion: HeadFusion::Mean,
                discard: 0.0,
                asking: false,
            },
            busy: Vec::new(),
            next_task: 0,
            error: None,
            note: None,
            runs: 0,
            milestones: Milestones::default(),
            inference_request: 0,
            model_request: 0,
            crop_next: NextCrop::None,
            crop_job: false,
            explorer: crate::explorer::state::Explorer::find(),
            teach: crate::teach::state::Teach::find(),
            samples: Samples::default(),
        }
    }

    pub fn state(&self) -> &'static str {
        if !self.busy.is_empty() {
            "busy"
        } else if self.error.is_some() {
            "error"
        } else {
            "ready"
        }
    }

    /// Status line and `<body data-*>` attributes (which tests also read).
    pub fn refresh_status(&self) {
        let state = self.state();
        set_attr(&self.ui.body, "data-state", state);
        set_attr(
            &self.ui.body,
            "data-backend",
            self.shown.as_ref().map_or("", |s| s.backend.id()),
        );
        let mut text = match (self.busy.last(), &self.error, &self.shown) {
            (Some((_, task)), _, _) => format!("{task}…"),
            (None, Some(_), _) => "Something went wrong: see the message below".into(),
            (None, None, Some(s)) => format!(
                "Ready · {} on {} · {}",
                s.model,
                s.backend.label(),
                human_ms(s.ms)
            ),
            (None, None, None) => "Ready".into(),
        };
        if let Some(note) = &self.note
            && self.error.is_none()
        {
            text += &format!(" · {note}");
        }
        set_text(&self.ui.status, &text);
    }

    /// Which backend the next run uses: until both are timed, the CPU, which answers its
    /// first run at once (WebGPU's first run compiles its kernels: seconds on some machines).
    pub fn backend(&self) -> Backend {
        match self.choice {
            Choice::Fixed(b) => b,
            Choice::Auto if !self.ready.webgpu => Backend::Cpu,
            Choice::Auto => self.timings.fastest(),
        }
    }

    /// Predictions as JSON for `window.vitrine` and tests.
    pub fn predictions_json(&self) -> Option<String> {
        let s = self.shown.as_ref()?;
        let value = serde_json::json!({
            "run": s.run,
            "model": s.model,
            "image": s.image,
            "backend": s.backend.id(),
            "ms": s.ms,
            "top": s.top,
            "probs": s.probs,
            "fits": s.verdict.fits,
            "crop": s.crop.map(|c| [c.x, c.y, c.size]),
        });
        Some(value.to_string())
    }

    pub fn timings_json(&self) -> String {
        let t = &self.timings;
        let m = &self.milestones;
        serde_json::json!({
            "cpu": t.cpu, "webgpu": t.gpu, "cpu_first": t.cpu_first, "webgpu_first": t.gpu_first,
            "webgpu_kernels": t.gpu_kernels,
            "webgpu_tuning": t.gpu_tuning,
            "webgpu_available": self.ready.webgpu,
            "wasm_ready_ms": m.wasm_ready,
            "webgpu_init_ms": m.webgpu_init,
            "first_result_ms": m.first_result,
            "timed_ms": m.timed,
            "timing": self.timing > 0,
            "webgpu_problem": self.ready.webgpu_problem,
            "threads": self.ready.threads,
        })
        .to_string()
    }
}

/// Runs `work` as a named task: the page is "busy" meanwhile, and a failure lands in the
/// alert region without disturbing the last good result.
pub fn spawn_task(
    app: &Shared,
    label: &str,
    work: impl Future<Output = Result<(), String>> + 'static,
) {
    let app = app.clone();
    let label = label.to_string();
    spawn_local(async move {
        let id = {
            let mut a = app.borrow_mut();
            a.next_task += 1;
            let id = a.next_task;
            a.busy.push((id, label));
            a.error = None;
            a.ui.hide_alert();
            a.refresh_status();
            id
        };
        let result = work.await;
        let mut a = app.borrow_mut();
        a.busy.retain(|(task, _)| *task != id);
        match result {
            // Its engine died: the page has said so in one line, and is starting a new one.
            Err(message) if message.contains(crate::worker::client::STOPPED) => {
                web_sys::console::warn_1(&message.into());
            }
            Err(message) => {
                web_sys::console::warn_1(&message.clone().into());
                a.ui.show_alert(&message);
                a.error = Some(message);
            }
            Ok(()) => {}
        }
        a.refresh_status();
    });
}

/// Changes the label of the newest task (the status line follows the steps of a load).
pub fn step(app: &Shared, label: &str) {
    let mut a = app.borrow_mut();
    if let Some((_, last)) = a.busy.last_mut() {
        *last = label.to_string();
    }
    a.refresh_status();
}

/// Sets (or clears) what the status line adds after "Ready".
pub fn note(app: &Shared, note: Option<String>) {
    let mut a = app.borrow_mut();
    a.note = note;
    a.refresh_status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_s_origin_names_its_select_value_and_label() {
        assert_eq!(Origin::Published.key("tiny"), "tiny");
        assert_eq!(Origin::Disk.key("tiny"), "disk:tiny");
        assert_eq!(Origin::Taught.key("my-classes"), "taught:my-classes");
        assert_eq!(Origin::Published.label(), None);
        assert_eq!(Origin::Disk.label(), Some("from disk"));
        assert_eq!(Origin::Taught.label(), Some("taught here"));
        assert_eq!(Origin::Hub.key("timm/deit"), "hf-hub:timm/deit");
        assert_eq!(Origin::Hub.label(), Some("from the hub"));
        assert_eq!(NextCrop::of(None), NextCrop::Centre);
        let c = Crop {
            x: 1,
            y: 2,
            size: 3,
        };
        assert_eq!(NextCrop::of(Some(c)), NextCrop::Chosen(c));
    }
}
