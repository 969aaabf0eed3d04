//! The page's state and what each action does to it.
//!
//! One `App` behind `Rc<RefCell<_>>`, shared by event handlers and async tasks. A borrow is
//! never held across an `.await`: tasks copy what they need out, await, then borrow again and
//! check that what they computed is still wanted (a newer image or model wins).

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use image::RgbImage;
use vit::inference::{Ranked, top_k};
use vit::preprocess::{CropBox, MAX_SIDE, Prepared, decode_image, prepare};
use vit::rollout::{HeadFusion, Heatmap};
use vit::weights::{IndexEntry, Manifest, ModelIndex};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlCanvasElement;

use crate::animate::{self, Scene, Stage};
use crate::dom::{human_bytes, human_ms, prefers_reduced_motion, set_attr, set_text, yield_now};
use crate::model::{self, Backend, Backends, Loaded, Output, Timings};
use crate::ui::Ui;
use crate::{bars, draw, heatmap, net};

pub type Shared = Rc<RefCell<App>>;

/// Files larger than this are refused before reading: no photo needs it, and reading it
/// would only make the tab struggle.
pub const MAX_IMAGE_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
/// The photo is kept at most this large for drawing; the model's own view is separate.
const DISPLAY_SIDE: u32 = 1280;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Fixed(Backend),
}

/// A model the page has loaded, kept so switching back is instant.
struct Cached {
    key: String,
    loaded: Rc<Loaded>,
    timings: Timings,
}

/// The current image, prepared for the current model.
pub struct Picture {
    pub bytes: Rc<Vec<u8>>,
    pub name: String,
    pub prepared: Prepared,
    /// The photo for drawing (downscaled when huge) and the crop in its coordinates.
    pub photo: HtmlCanvasElement,
    pub crop: CropBox,
    pub view: HtmlCanvasElement,
}

/// The last good result, with the attention maps kept so the heat-map controls never
/// re-run the model.
pub struct Shown {
    pub output: Output,
    pub top: Vec<Ranked>,
    pub image: String,
    pub model: String,
    pub rollout: Heatmap,
    pub heads: Vec<Heatmap>,
    pub run: u64,
}

pub struct HeatSettings {
    pub opacity: f64,
    pub fusion: HeadFusion,
    pub discard: f32,
}

pub struct App {
    pub ui: Ui,
    pub backends: Rc<Backends>,
    pub stage: Rc<RefCell<Stage>>,
    pub index: ModelIndex,
    pub model: Option<Rc<Loaded>>,
    pub model_key: String,
    cache: Vec<Cached>,
    pub timings: Timings,
    pub choice: Choice,
    /// The image bytes given most recently, kept to re-prepare for another model.
    source: Option<(Rc<Vec<u8>>, String)>,
    pub picture: Option<Picture>,
    pub shown: Option<Shown>,
    pub heat: HeatSettings,
    /// Running tasks: an id, and the label the status line shows (steps may relabel it).
    busy: Vec<(u64, String)>,
    next_task: u64,
    pub error: Option<String>,
    runs: u64,
    /// When the wasm was running (ms after navigation start) and how long WebGPU took to
    /// initialise, for `window.vitrine.timings()`.
    pub startup_ms: (f64, f64),
    inference_request: u64,
    model_request: u64,
}

impl App {
    pub fn new(ui: Ui, backends: Backends) -> Self {
        let stage = Rc::new(RefCell::new(Stage::new(ui.stage.clone(), ui.play.clone())));
        Self {
            ui,
            backends: Rc::new(backends),
            stage,
            index: ModelIndex::default(),
            model: None,
            model_key: String::new(),
            cache: Vec::new(),
            timings: Timings::default(),
            choice: Choice::Auto,
            source: None,
            picture: None,
            shown: None,
            heat: HeatSettings {
                opacity: 0.65,
                fusion: HeadFusion::Mean,
                discard: 0.0,
            },
            busy: Vec::new(),
            next_task: 0,
            error: None,
            runs: 0,
            startup_ms: (0.0, 0.0),
            inference_request: 0,
            model_request: 0,
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
    fn refresh_status(&self) {
        let state = self.state();
        set_attr(&self.ui.body, "data-state", state);
        set_attr(
            &self.ui.body,
            "data-backend",
            self.shown.as_ref().map_or("", |s| s.output.backend.id()),
        );
        let text = match (self.busy.last(), &self.error, &self.shown) {
            (Some((_, task)), _, _) => format!("{task}…"),
            (None, Some(_), _) => "Something went wrong: see the message below".into(),
            (None, None, Some(s)) => format!(
                "Ready · {} on {} · {}",
                s.model,
                s.output.backend.label(),
                human_ms(s.output.ms)
            ),
            (None, None, None) => "Ready".into(),
        };
        set_text(&self.ui.status, &text);
    }

    /// Which backend the next run uses.
    fn backend(&self) -> Backend {
        match self.choice {
            Choice::Fixed(b) => b,
            Choice::Auto if self.backends.gpu.is_none() => Backend::Cpu,
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
            "backend": s.output.backend.id(),
            "ms": s.output.ms,
            "top": s.top,
            "probs": s.output.probs,
        });
        Some(value.to_string())
    }

    pub fn timings_json(&self) -> String {
        let t = &self.timings;
        serde_json::json!({
            "cpu": t.cpu, "webgpu": t.gpu, "cpu_first": t.cpu_first, "webgpu_first": t.gpu_first,
            "webgpu_available": self.backends.gpu.is_some(),
            "wasm_ready_ms": self.startup_ms.0,
            "webgpu_init_ms": self.startup_ms.1,
            "webgpu_problem": self.backends.gpu_problem,
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
        if let Err(message) = result {
            web_sys::console::warn_1(&message.clone().into());
            a.ui.show_alert(&message);
            a.error = Some(message);
        }
        a.refresh_status();
    });
}

/// Changes the label of the newest task (the status line follows the steps of a load).
fn step(app: &Shared, label: &str) {
    let mut a = app.borrow_mut();
    if let Some((_, last)) = a.busy.last_mut() {
        *last = label.to_string();
    }
    a.refresh_status();
}

// ---------------------------------------------------------------- start-up

pub async fn startup(app: Shared) -> Result<(), String> {
    let samples = load_sample_list(&app).await;
    let text = net::text("models/index.json")
        .await
        .map_err(|e| format!("The list of models could not be loaded: {e}"))?;
    let index = ModelIndex::from_json(&text, "models/index.json").map_err(|e| e.to_string())?;
    let entry = index
        .default_entry()
        .cloned()
        .ok_or("models/index.json lists no models: publish one with `trainer publish`")?;
    app.borrow_mut().index = index;
    fill_model_select(&app.borrow());
    app.borrow().ui.model_select.set_value(&entry.name);
    load_published(app.clone(), entry).await?;
    let has_image = app.borrow().source.is_some();
    if let (false, Some(first)) = (has_image, samples.first()) {
        load_sample(app.clone(), first.clone()).await?;
    }
    Ok(())
}

async fn load_sample_list(app: &Shared) -> Vec<String> {
    let names: Vec<String> = match net::text("samples/index.json").await {
        Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
        Err(e) => {
            web_sys::console::warn_1(&format!("no samples: {e}").into());
            Vec::new()
        }
    };
    crate::events::add_sample_buttons(app, &names);
    names
}

pub async fn load_sample(app: Shared, name: String) -> Result<(), String> {
    let bytes = net::bytes(&format!("samples/{name}"))
        .await
        .map_err(|e| format!("The sample could not be loaded: {e}"))?;
    set_image(app, bytes, name).await
}

fn fill_model_select(a: &App) {
    let mut options: Vec<(String, String)> = a
        .index
        .models
        .iter()
        .map(|e| (e.name.clone(), entry_label(e)))
        .collect();
    for c in &a.cache {
        if c.key.starts_with("disk:") {
            options.push((
                c.key.clone(),
                format!("{} (from disk)", c.loaded.manifest.name),
            ));
        }
    }
    a.ui.set_model_options(&options, &a.model_key);
}

fn entry_label(e: &IndexEntry) -> String {
    let mut label = format!("{} · {} params", e.name, compact(e.params));
    if let Some(top1) = e.top1 {
        label += &format!(" · {:.1}% top-1", 100.0 * top1);
    }
    label
}

fn compact(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.0}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

// ---------------------------------------------------------------- models

/// Downloads a published model (manifest, then weights with progress) and switches to it.
pub async fn load_published(app: Shared, entry: IndexEntry) -> Result<(), String> {
    let request = begin_model_request(&app);
    if switch_to_cached(&app, &entry.name).await? {
        return Ok(());
    }
    step(&app, &format!("Loading model {}", entry.name));
    let url = format!("models/{}", entry.manifest);
    let result = async {
        let text = net::text(&url).await?;
        let manifest = Manifest::from_json(&text, &url).map_err(|e| e.to_string())?;
        let weights_url = format!("models/{}", manifest.weights.file);
        let progress_app = app.clone();
        let bytes =
            net::bytes_with_progress(&weights_url, manifest.weights.bytes, move |got, total| {
                progress_app.borrow().ui.set_progress(Some((got, total)));
            })
            .await?;
        app.borrow().ui.set_progress(None);
        yield_now().await;
        let backends = app.borrow().backends.clone();
        Loaded::new(manifest, &bytes, url.clone(), &backends)
    }
    .await;
    app.borrow().ui.set_progress(None);
    match result {
        Ok(loaded) => install(app, entry.name.clone(), loaded, request).await,
        Err(e) => {
            restore_model_select(&app);
            Err(format!("Model {} could not be loaded: {e}", entry.name))
        }
    }
}

/// Loads a model pair picked from disk: a manifest (.json) and its weights (.bpk).
pub async fn load_files(app: Shared, files: Vec<web_sys::File>) -> Result<(), String> {
    let request = begin_model_request(&app);
    let names: Vec<String> = files.iter().map(|f| f.name()).collect();
    let pick = |ext: &str| {
        files
            .iter()
            .find(|f| f.name().to_ascii_lowercase().ends_with(ext))
            .cloned()
    };
    let (Some(json), Some(bpk)) = (pick(".json"), pick(".bpk")) else {
        return Err(format!(
            "Pick a model's two files together: its manifest (NAME.json) and its weights (NAME.bpk). You picked: {}.",
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        ));
    };
    step(&app, &format!("Reading {}", json.name()));
    let text = String::from_utf8(crate::dom::read_file(&json).await?).map_err(|_| {
        format!(
            "{} is not a text file, so not a model manifest",
            json.name()
        )
    })?;
    let manifest = Manifest::from_json(&text, &json.name()).map_err(|e| e.to_string())?;
    let bytes = crate::dom::read_file(&bpk).await?;
    yield_now().await;
    let backends = app.borrow().backends.clone();
    let origin = format!("{} + {}", json.name(), bpk.name());
    let key = format!("disk:{}", manifest.name);
    let loaded = Loaded::new(manifest, &bytes, origin, &backends).map_err(|e| {
        format!(
            "{} and {} do not make a working model: {e}",
            json.name(),
            bpk.name()
        )
    })?;
    install(app, key, loaded, request).await
}

fn begin_model_request(app: &Shared) -> u64 {
    let mut a = app.borrow_mut();
    a.model_request += 1;
    a.model_request
}

fn restore_model_select(app: &Shared) {
    let a = app.borrow();
    a.ui.model_select.set_value(&a.model_key);
}

/// Switches to a model loaded earlier in this visit (models picked from disk live only here).
pub async fn select_cached(app: Shared, key: String) -> Result<(), String> {
    begin_model_request(&app);
    if switch_to_cached(&app, &key).await? {
        return Ok(());
    }
    restore_model_select(&app);
    Err(format!("{key} is no longer loaded; pick its files again"))
}

/// Switches to a model loaded before, if there is one under `key`.
async fn switch_to_cached(app: &Shared, key: &str) -> Result<bool, String> {
    let found = {
        let a = app.borrow();
        a.cache
            .iter()
            .find(|c| c.key == key)
            .map(|c| (c.loaded.clone(), c.timings))
    };
    let Some((loaded, timings)) = found else {
        return Ok(false);
    };
    {
        let mut a = app.borrow_mut();
        a.model = Some(loaded);
        a.model_key = key.to_string();
        a.timings = timings;
        show_model(&a);
    }
    reprepare(app)?;
    run_inference(app.clone()).await?;
    Ok(true)
}

/// Makes `loaded` the current model, times both backends on it, and re-runs the image.
async fn install(app: Shared, key: String, loaded: Loaded, request: u64) -> Result<(), String> {
    if app.borrow().model_request != request {
        return Ok(()); // a newer model was asked for meanwhile
    }
    let loaded = Rc::new(loaded);
    {
        let mut a = app.borrow_mut();
        a.model = Some(loaded.clone());
        a.model_key = key.clone();
        a.timings = Timings::default();
        // Cached (and listed) at once; its timings follow when measured.
        a.cache.retain(|c| c.key != key);
        a.cache.push(Cached {
            key: key.clone(),
            loaded: loaded.clone(),
            timings: Timings::default(),
        });
        fill_model_select(&a);
        show_model(&a);
    }
    reprepare(&app)?;
    step(&app, "Timing WebGPU and CPU");
    let backends = app.borrow().backends.clone();
    let timings = model::measure(&loaded, &backends).await;
    {
        let mut a = app.borrow_mut();
        if let Some(c) = a.cache.iter_mut().find(|c| Rc::ptr_eq(&c.loaded, &loaded)) {
            c.timings = timings;
        }
        if !a.model.as_ref().is_some_and(|m| Rc::ptr_eq(m, &loaded)) {
            return Ok(());
        }
        a.timings = timings;
        show_model(&a);
    }
    run_inference(app).await
}

/// Model description and the backend timings.
fn show_model(a: &App) {
    let Some(m) = &a.model else { return };
    let c = &m.manifest.config;
    let mut info = if m.manifest.description.is_empty() {
        m.manifest.name.clone()
    } else {
        m.manifest.description.clone()
    };
    info += &format!(
        " · {} px input, {} patches, {} classes · {}",
        c.image_size,
        c.num_patches(),
        c.num_classes,
        human_bytes(m.manifest.weights.bytes as f64)
    );
    set_text(&a.ui.model_info, &info);

    let t = &a.timings;
    let show =
        |el: &web_sys::HtmlElement, warm: Option<f64>, first: Option<f64>, available: bool| {
            let text = match (warm, available) {
                (Some(ms), _) => match first {
                    Some(f) => format!("{} (first {})", human_ms(ms), human_ms(f)),
                    None => human_ms(ms),
                },
                (None, false) => "unavailable".to_string(),
                (None, true) => "—".to_string(),
            };
            set_text(el, &text);
        };
    show(&a.ui.time_gpu, t.gpu, t.gpu_first, a.backends.gpu.is_some());
    show(&a.ui.time_cpu, t.cpu, t.cpu_first, true);
    let active = a.backend();
    for (el, b) in [
        (&a.ui.time_gpu, Backend::WebGpu),
        (&a.ui.time_cpu, Backend::Cpu),
    ] {
        if let Some(parent) = el.parent_element() {
            let _ = parent.class_list().toggle_with_force("active", b == active);
        }
    }
}

// ---------------------------------------------------------------- images

/// Takes new image bytes: prepares them for the current model, restarts the animation and
/// runs the model. A bad image leaves the last good one (and its result) in place.
pub async fn set_image(app: Shared, bytes: Vec<u8>, name: String) -> Result<(), String> {
    step(&app, &format!("Reading {name}"));
    yield_now().await;
    let bytes = Rc::new(bytes);
    let model = app.borrow().model.clone();
    let Some(model) = model else {
        // The model is still loading: check the image now, prepare it when the model lands.
        decode_image(&bytes).map_err(|e| image_error(&name, &e))?;
        app.borrow_mut().source = Some((bytes, name));
        return Ok(());
    };
    let picture = make_picture(&model, bytes.clone(), &name)?;
    {
        let mut a = app.borrow_mut();
        a.source = Some((bytes, name.clone()));
        show_picture(&mut a, picture);
        crate::events::mark_sample(&a.ui, &name);
    }
    run_inference(app).await
}

fn image_error(name: &str, e: &vit::VitError) -> String {
    format!("{name} could not be used: {e}")
}

fn make_picture(model: &Loaded, bytes: Rc<Vec<u8>>, name: &str) -> Result<Picture, String> {
    let m = &model.manifest;
    let prepared = prepare(&bytes, m.config.image_size as u32, &m.normalization)
        .map_err(|e| image_error(name, &e))?;
    let (w, h) = prepared.original.dimensions();
    let (photo, scale) = if w.max(h) > DISPLAY_SIDE {
        let scale = DISPLAY_SIDE as f32 / w.max(h) as f32;
        let (tw, th) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        let small: RgbImage = image::imageops::thumbnail(&prepared.original, tw, th);
        (draw::bitmap(&small), tw as f32 / w as f32)
    } else {
        (draw::bitmap(&prepared.original), 1.0)
    };
    let c = prepared.crop;
    let crop = CropBox {
        x: c.x * scale,
        y: c.y * scale,
        side: c.side * scale,
    };
    let view = draw::bitmap(&prepared.model_view);
    Ok(Picture {
        bytes,
        name: name.to_string(),
        prepared,
        photo,
        crop,
        view,
    })
}

fn show_picture(a: &mut App, picture: Picture) {
    let model = a.model.clone().expect("pictures are made for a model");
    let scene = Scene {
        photo: picture.photo.clone(),
        crop: picture.crop,
        original: picture.prepared.original.dimensions(),
        view: picture.view.clone(),
        config: model.manifest.config.clone(),
    };
    a.stage.borrow_mut().show(scene, prefers_reduced_motion());
    animate::kick(&a.stage);
    let (w, h) = picture.prepared.original.dimensions();
    a.ui.current.set_inner_html("");
    let _ = a.ui.current.append_with_str_1("Now showing ");
    let name: web_sys::HtmlElement = crate::dom::create("strong");
    set_text(&name, &picture.name);
    let _ = a.ui.current.append_child(&name);
    let _ = a.ui.current.append_with_str_1(&format!(
        " · {w}×{h} px, {}",
        human_bytes(picture.bytes.len() as f64)
    ));
    a.picture = Some(picture);
}

/// After a model change: the same image, prepared for the new model's size and statistics.
fn reprepare(app: &Shared) -> Result<(), String> {
    let (model, source) = {
        let a = app.borrow();
        (a.model.clone(), a.source.clone())
    };
    let (Some(model), Some((bytes, name))) = (model, source) else {
        return Ok(());
    };
    let picture = make_picture(&model, bytes, &name)?;
    show_picture(&mut app.borrow_mut(), picture);
    Ok(())
}

// ---------------------------------------------------------------- inference

/// Runs the current model on the current picture with the chosen backend, then shows the
/// result, unless a newer request superseded it meanwhile.
pub async fn run_inference(app: Shared) -> Result<(), String> {
    let job = {
        let mut a = app.borrow_mut();
        let (Some(model), Some(picture)) = (a.model.clone(), a.picture.as_ref()) else {
            return Ok(());
        };
        let chw = picture.prepared.chw.clone();
        let name = picture.name.clone();
        a.inference_request += 1;
        (
            model,
            chw,
            name,
            a.backend(),
            a.inference_request,
            a.backends.clone(),
        )
    };
    let (model, chw, image, backend, request, backends) = job;
    if backends.device(backend).is_none() {
        return Err(format!(
            "WebGPU is not available here ({}); the CPU backend still works.",
            backends.gpu_problem.as_deref().unwrap_or("no adapter")
        ));
    }
    step(&app, &format!("Running on {}", backend.label()));
    // Let the animation draw a frame before the (synchronous, on the CPU) forward pass.
    yield_now().await;
    let output = model::infer(&model, &backends, backend, &chw)
        .await
        .map_err(|e| format!("The model failed on {}: {e}", backend.label()))?;
    let mut a = app.borrow_mut();
    let current = a.model.as_ref().is_some_and(|m| Rc::ptr_eq(m, &model));
    if request != a.inference_request || !current {
        return Ok(());
    }
    a.runs += 1;
    let top = top_k(&output.probs, &model.manifest.labels, 5);
    let rollout = output.attention.rollout(a.heat.fusion, a.heat.discard);
    let heads = output.attention.last_layer_cls_maps();
    a.shown = Some(Shown {
        top,
        image,
        model: model.manifest.name.clone(),
        rollout,
        heads,
        run: a.runs,
        output,
    });
    show_model(&a);
    render_results(&a);
    Ok(())
}

// ---------------------------------------------------------------- drawing results

pub fn render_results(a: &App) {
    let Some(s) = &a.shown else {
        heatmap::draw_empty(&a.ui.bars, 120.0, "Predictions appear here");
        heatmap::draw_empty(&a.ui.heat, 240.0, "The attention map appears here");
        heatmap::draw_empty(&a.ui.heads, 90.0, "One map per attention head");
        return;
    };
    bars::draw(&a.ui.bars, &s.top);
    set_attr(&a.ui.bars, "aria-label", &bars::describe(&s.top));
    a.ui.pred_list.set_inner_html("");
    for r in &s.top {
        let li: web_sys::HtmlElement = crate::dom::create("li");
        set_text(&li, &format!("{}: {:.1}%", r.label, 100.0 * r.prob));
        let _ = a.ui.pred_list.append_child(&li);
    }
    set_text(
        &a.ui.pred_meta,
        &format!(
            "{} on {} · {} · {}",
            human_ms(s.output.ms),
            s.output.backend.label(),
            s.model,
            s.image
        ),
    );
    render_heat(a);
}

/// The heat maps from the stored attention (no model run).
pub fn render_heat(a: &App) {
    let (Some(s), Some(p)) = (&a.shown, &a.picture) else {
        return;
    };
    let crop = (p.crop.x as f64, p.crop.y as f64, p.crop.side as f64);
    heatmap::draw_rollout(&a.ui.heat, &p.photo, crop, &s.rollout, a.heat.opacity);
    set_attr(
        &a.ui.heat,
        "aria-label",
        &format!(
            "Attention rollout over the photo: {}.",
            heatmap::describe_peak(&s.rollout)
        ),
    );
    heatmap::draw_heads(&a.ui.heads, &p.view, &s.heads);
    let heads: Vec<String> = s
        .heads
        .iter()
        .enumerate()
        .map(|(h, m)| format!("head {}: {}", h + 1, heatmap::describe_peak(m)))
        .collect();
    set_attr(
        &a.ui.heads,
        "aria-label",
        &format!(
            "Last layer's class-token attention per head. {}.",
            heads.join("; ")
        ),
    );
}

/// Recomputes the rollout with the current fusion and discard ratio from stored maps.
pub fn rerollout(a: &mut App) {
    let (fusion, discard) = (a.heat.fusion, a.heat.discard);
    if let Some(s) = &mut a.shown {
        s.rollout = s.output.attention.rollout(fusion, discard);
    }
    render_heat(a);
}

/// Checks a dropped or picked file's size before reading it.
pub fn check_size(name: &str, bytes: f64) -> Result<(), String> {
    if bytes > MAX_IMAGE_BYTES {
        return Err(format!(
            "{name} is {}: the page takes images up to {} (and at most {MAX_SIDE}×{MAX_SIDE} pixels).",
            human_bytes(bytes),
            human_bytes(MAX_IMAGE_BYTES)
        ));
    }
    Ok(())
}
