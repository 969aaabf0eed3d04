//! The engine's side of the messages: its state (devices, models, the photo, the last
//! answers, the teaching under way) and one handler per `protocol::Request`.
//!
//! Each request runs as its own task on the worker's event loop, so a long one (a download, a
//! teaching run) leaves room for others between its awaits; none holds a borrow of the state
//! across an await. A failure is the request's `Reply::Failed`, one line for the page; a panic
//! is said to the page before the module stops (`panic_hook`), and the page starts a new
//! engine.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use vit::hub::HubName;
use vit::inference::verdict;
use vit::preprocess::is_blank;
use vit::weights::Manifest;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::engine::answers::{Answers, Kept};
use crate::engine::devices::{self, Devices, Model, Output};
use crate::engine::gpu::GpuLane;
use crate::engine::photos::{Photo, square_of_file, square_of_frame};
use crate::engine::teaching::{self, Run};
use crate::engine::{hub, teach};
use crate::platform::dom::{human_bytes, now, read_file};
use crate::platform::keep;
use crate::protocol::{
    Answer, Backend, Event, Fault, FromEngine, Loaded, ModelId, Prepared, Question, Ready, Reply,
    Request, SquareSource, Taught, TeachPlan, ToEngine, TokenValues,
};
use crate::worker::client::Boot;
use crate::worker::envelope::{Attachments, Received};

/// Everything the engine holds.
struct Engine {
    devices: Devices,
    /// The threaded build's WebGPU, lent by the default build in a worker of its own.
    lane: Option<GpuLane>,
    /// A teaching run is under way on the lane.
    lane_teaching: Cell<bool>,
    models: RefCell<Vec<(ModelId, Rc<Model>)>>,
    next_model: Cell<ModelId>,
    photo: RefCell<Option<Photo>>,
    answers: RefCell<Answers>,
    /// The Stop flag of the teaching under way.
    teaching: RefCell<Option<Rc<Cell<bool>>>>,
}

/// Starts the engine in this worker: the devices (and, for the threaded build, its WebGPU
/// lane on `gpu`, where the browser offers WebGPU to workers), then the message loop; says
/// `Ready`.
pub fn start(threads: usize, gpu: Option<Boot>) {
    std::panic::set_hook(Box::new(panic_hook));
    wasm_bindgen_futures::spawn_local(async move {
        let begun = now();
        let offered = crate::platform::scope::scope().has_webgpu();
        let lane = gpu.clone().filter(|_| offered).map(GpuLane::start);
        let devices = Devices::init().await;
        let mut ready = Ready {
            webgpu: devices.gpu.is_some(),
            webgpu_problem: devices.gpu_problem.clone(),
            webgpu_init_ms: now() - begun,
            threads,
        };
        let lane = match lane {
            Some(lane) => match lane.ready().await {
                Ok(r) => {
                    ready.webgpu = r.webgpu;
                    ready.webgpu_problem = r.webgpu_problem;
                    ready.webgpu_init_ms = now() - begun;
                    r.webgpu.then_some(lane)
                }
                Err(why) => {
                    ready.webgpu_problem = Some(why);
                    None
                }
            },
            None => {
                if gpu.is_some() {
                    ready.webgpu_problem = Some("this browser offers no WebGPU to workers".into());
                }
                None
            }
        };
        let engine = Rc::new(Engine {
            devices,
            lane,
            lane_teaching: Cell::new(false),
            models: RefCell::new(Vec::new()),
            next_model: Cell::new(0),
            photo: RefCell::new(None),
            answers: RefCell::new(Answers::default()),
            teaching: RefCell::new(None),
        });
        let listener = Closure::<dyn FnMut(MessageEvent)>::new(move |e: MessageEvent| {
            let engine = engine.clone();
            wasm_bindgen_futures::spawn_local(receive(engine, e.data()));
        });
        scope().set_onmessage(Some(listener.as_ref().unchecked_ref()));
        listener.forget();
        send_event(0, Event::Ready(ready));
    });
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// A panic stops the module: say so to the page first, with the message, so that it can show
/// one line and start a new engine.
fn panic_hook(info: &std::panic::PanicHookInfo<'_>) {
    console_error_panic_hook::hook(info);
    let message = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&message, &"panic".into(), &info.to_string().into());
    let _ = scope().post_message(&message);
}

fn post(message: &FromEngine, attachments: Attachments) {
    match attachments.seal(message) {
        Ok((value, transfer)) => {
            if let Err(e) = scope().post_message_with_transfer(&value, &transfer) {
                web_sys::console::error_1(&e);
            }
        }
        Err(e) => web_sys::console::error_1(&e.into()),
    }
}

fn send_event(id: u64, event: Event) {
    post(&FromEngine::Event { id, event }, Attachments::default());
}

async fn receive(engine: Rc<Engine>, data: JsValue) {
    let (message, received) = match Received::open::<ToEngine>(&data) {
        Ok(m) => m,
        Err(e) => {
            web_sys::console::error_1(&format!("the engine could not read a message: {e}").into());
            return;
        }
    };
    let id = message.id;
    let mut attachments = Attachments::default();
    let reply = handle(&engine, id, message.request, &received, &mut attachments)
        .await
        .unwrap_or_else(Reply::Failed);
    post(&FromEngine::Reply { id, reply }, attachments);
}

impl Engine {
    fn model(&self, id: ModelId) -> Result<Rc<Model>, String> {
        self.models
            .borrow()
            .iter()
            .find(|(m, _)| *m == id)
            .map(|(_, m)| m.clone())
            .ok_or_else(|| "that model is no longer loaded".to_string())
    }

    /// One forward pass on `backend`: this engine's own device, or its WebGPU lane's.
    async fn forward(
        &self,
        id: ModelId,
        model: &Model,
        backend: Backend,
        chw: &[f32],
    ) -> Result<Output, String> {
        match (&self.lane, backend) {
            (Some(lane), Backend::WebGpu) if self.devices.gpu.is_none() => {
                lane.forward(id, model, chw).await
            }
            _ => devices::infer(model, &self.devices, backend, chw).await,
        }
    }

    /// A class's relevance on `backend`, as [`Self::forward`] picks the device.
    async fn relevance(
        &self,
        id: ModelId,
        model: &Model,
        backend: Backend,
        chw: &[f32],
        class: usize,
    ) -> Result<vit::explain::Relevance, String> {
        match (&self.lane, backend) {
            (Some(lane), Backend::WebGpu) if self.devices.gpu.is_none() => {
                lane.relevance(id, model, chw, class).await
            }
            _ => devices::relevance(model, &self.devices, backend, chw, class).await,
        }
    }

    /// Keeps `model` and says what the page needs of it.
    fn add(&self, model: Model, steps: Vec<(String, f64)>, kept: bool) -> Loaded {
        let id = self.next_model.get() + 1;
        self.next_model.set(id);
        let manifest = model.manifest.clone();
        self.models.borrow_mut().push((id, Rc::new(model)));
        Loaded {
            model: id,
            manifest,
            steps,
            kept,
        }
    }
}

async fn handle(
    engine: &Rc<Engine>,
    id: u64,
    request: Request,
    received: &Received,
    out: &mut Attachments,
) -> Result<Reply, String> {
    let say = |event: Event| send_event(id, event);
    match request {
        Request::LoadPublished { manifest_url } => {
            let text = crate::platform::net::text(&manifest_url).await?;
            let manifest = Manifest::from_json(&text, &manifest_url).map_err(|e| e.to_string())?;
            let folder = manifest_url
                .rsplit_once('/')
                .map_or(String::new(), |(dir, _)| format!("{dir}/"));
            let weights_url = format!("{folder}{}", manifest.weights.file);
            let bytes = crate::platform::net::bytes_with_progress(
                &weights_url,
                manifest.weights.bytes,
                |received, total| say(Event::Progress { received, total }),
            )
            .await?;
            let model = Model::new(manifest, &bytes, &engine.devices)?;
            Ok(Reply::Loaded(Box::new(engine.add(
                model,
                Vec::new(),
                false,
            ))))
        }
        Request::LoadFiles {
            manifest,
            manifest_name,
            weights,
            weights_name,
        } => {
            let text = read_file(&received.file(manifest)?).await?;
            let text = String::from_utf8(text).map_err(|_| {
                format!("{manifest_name} is not a text file, so not a model manifest")
            })?;
            let manifest = Manifest::from_json(&text, &manifest_name).map_err(|e| e.to_string())?;
            let bytes = read_file(&received.file(weights)?).await?;
            let model = Model::new(manifest, &bytes, &engine.devices).map_err(|e| {
                format!("{manifest_name} and {weights_name} do not make a working model: {e}")
            })?;
            Ok(Reply::Loaded(Box::new(engine.add(
                model,
                Vec::new(),
                false,
            ))))
        }
        Request::LoadPair { manifest, weights } => {
            let manifest =
                Manifest::from_json(&manifest, "the taught manifest").map_err(|e| e.to_string())?;
            let model = Model::new(manifest, &received.bytes(weights)?, &engine.devices)?;
            Ok(Reply::Loaded(Box::new(engine.add(
                model,
                Vec::new(),
                false,
            ))))
        }
        Request::LoadHub {
            name,
            endpoint,
            image_size,
        } => {
            let name = HubName::parse(&name).map_err(|e| e.to_string())?;
            let fetched = hub::load(&name, &endpoint, image_size, &engine.devices, &say).await?;
            Ok(Reply::Loaded(Box::new(engine.add(
                fetched.model,
                fetched.steps,
                fetched.kept,
            ))))
        }
        Request::LoadChecked { manifest, weights } => {
            let model = Model::checked(*manifest, &received.bytes(weights)?, &engine.devices)?;
            Ok(Reply::Loaded(Box::new(engine.add(
                model,
                Vec::new(),
                false,
            ))))
        }
        Request::Unload { model } => {
            engine.models.borrow_mut().retain(|(m, _)| *m != model);
            engine.answers.borrow_mut().forget_model(model);
            if let Some(lane) = &engine.lane {
                lane.unload(model).await;
            }
            Ok(Reply::Done)
        }
        Request::Picture {
            picture,
            name,
            bytes,
        } => {
            let bytes = received.bytes(bytes)?;
            // Decoded before the photo before is dropped: a bad file leaves it in place.
            let photo = Photo::decode(picture, &name, &bytes)?;
            *engine.photo.borrow_mut() = Some(photo);
            Ok(Reply::Done)
        }
        Request::Prepare {
            picture,
            model,
            crop,
            photo,
        } => {
            let pre = engine.model(model)?.manifest.preprocess();
            let mut guard = engine.photo.borrow_mut();
            let p = guard
                .as_mut()
                .filter(|p| p.id == picture)
                .ok_or("that photo is no longer kept")?;
            let prepared = p.prepare(&pre, crop)?;
            let view = &prepared.model_view;
            let original = prepared.original.dimensions();
            let (crop, side, blank) = (prepared.crop, view.width(), is_blank(view));
            let view = out.bytes(view.as_raw());
            let (photo, photo_size) = match photo.then(|| p.display()).flatten() {
                Some(d) => (Some(out.bytes(d.as_raw())), d.dimensions()),
                None => (None, (0, 0)),
            };
            Ok(Reply::Prepared(Prepared {
                photo,
                photo_size,
                original,
                crop,
                view,
                side,
                blank,
                damage: p.damage.clone(),
            }))
        }
        Request::Infer {
            picture,
            model,
            backend,
            fusion,
            discard,
        } => {
            let m = engine.model(model)?;
            let (chw, blank) = {
                let guard = engine.photo.borrow();
                let p = guard
                    .as_ref()
                    .filter(|p| p.id == picture)
                    .and_then(|p| p.prepared.as_ref())
                    .filter(|p| p.model_view.width() as usize == m.image_size())
                    .ok_or("that photo is not prepared for this model")?;
                (p.chw.clone(), is_blank(&p.model_view))
            };
            // A WebGPU that refused a shader answers no more: this photo and the next are the
            // CPU's, and the page says why in one line.
            let (output, fell_back) = match engine.forward(model, &m, backend, &chw).await {
                Err(why) if backend == Backend::WebGpu => {
                    let output = engine.forward(model, &m, Backend::Cpu, &chw).await?;
                    (output, Some(format!("{why}: answering on the CPU")))
                }
                other => (other?, None),
            };
            let verdict = verdict(&output.probs, blank);
            let kept = Kept {
                id: 0,
                model,
                backend,
                pooling: m.manifest.config.pooling,
                attention: output.attention,
                chw,
                relevance: Vec::new(),
            };
            let (rollout, head_maps) = (kept.heat(fusion, discard), kept.head_maps());
            let (layers, heads, tokens) = (
                kept.attention.layers,
                kept.attention.heads,
                kept.attention.tokens,
            );
            let answer = engine.answers.borrow_mut().keep(kept);
            Ok(Reply::Answer(Box::new(Answer {
                answer,
                logits: output.logits,
                probs: output.probs,
                verdict,
                layers,
                heads,
                tokens,
                rollout,
                head_maps,
                ms: output.ms,
                backend: output.backend,
                fell_back,
            })))
        }
        Request::Heat {
            answer,
            fusion,
            discard,
        } => Ok(Reply::Heat(
            engine.answers.borrow().get(answer)?.heat(fusion, discard),
        )),
        Request::Explain { answer, question } => explain(engine, answer, &question).await,
        Request::Time { model, only } => {
            let m = engine.model(model)?;
            let mut t = devices::measure(&m, &engine.devices, only).await;
            if let Some(lane) = &engine.lane
                && only != Some(Backend::Cpu)
            {
                let gpu = lane.time(model, &m).await.unwrap_or_default();
                (t.gpu, t.gpu_first) = (gpu.gpu, gpu.gpu_first);
                (t.gpu_kernels, t.gpu_tuning) = (gpu.gpu_kernels, gpu.gpu_tuning);
            }
            Ok(Reply::Timings(t))
        }
        Request::Square { model, source } => {
            let pre = engine.model(model)?.manifest.preprocess();
            let rgb = match source {
                SquareSource::File { file, name } => {
                    let file = received.file(file)?;
                    let bytes = read_file(&file).await?;
                    square_of_file(&bytes, &name, &pre)?
                }
                SquareSource::Frame { rgb, side } => {
                    square_of_frame(received.bytes(rgb)?, side, &pre)?
                }
            };
            Ok(Reply::Square {
                rgb: out.bytes(&rgb),
                side: pre.image_size,
            })
        }
        Request::Teach(plan) => teach_run(engine, id, *plan, received, out).await,
        Request::StopTeaching => {
            if let Some(stop) = engine.teaching.borrow().as_ref() {
                stop.set(true);
            }
            if let Some(lane) = engine.lane.as_ref().filter(|_| engine.lane_teaching.get()) {
                lane.stop_teaching().await;
            }
            Ok(Reply::Done)
        }
        Request::Kept => Ok(Reply::Kept(keep::list().await)),
        Request::ForgetKept => {
            let (files, bytes) = keep::forget().await?;
            Ok(Reply::Forgot {
                files,
                bytes,
                tunings: keep::forget_tuning().await,
            })
        }
        Request::Forward { model, input } => {
            let m = engine.model(model)?;
            let chw = received.floats(input)?;
            let output = devices::infer(&m, &engine.devices, Backend::WebGpu, &chw).await?;
            let a = &output.attention;
            Ok(Reply::Forward {
                dims: [1, a.layers, a.heads, a.tokens, a.tokens],
                attention: out.floats(&a.data),
                logits: output.logits,
                ms: output.ms,
            })
        }
        Request::Relevance {
            model,
            input,
            class,
        } => {
            let m = engine.model(model)?;
            let chw = received.floats(input)?;
            let r = devices::relevance(&m, &engine.devices, Backend::WebGpu, &chw, class).await?;
            Ok(Reply::Relevance {
                layers: r.layers,
                tokens: r.tokens,
                cams: out.floats(&r.cams),
            })
        }
        Request::Fault(Fault::Panic) => panic!("the page asked the engine to fail (a test)"),
        Request::Fault(Fault::Shader) => match &engine.lane {
            Some(lane) if engine.devices.gpu.is_none() => lane.refuse_shader().await,
            _ => refuse_shader(),
        },
        Request::Fault(Fault::Busy(ms)) => {
            let until = now() + f64::from(ms);
            while now() < until {
                std::hint::spin_loop();
            }
            Ok(Reply::Done)
        }
    }
}

#[cfg(feature = "webgpu")]
fn refuse_shader() -> Result<Reply, String> {
    crate::engine::webgpu::inject_refused_shader().map(|()| Reply::Done)
}

#[cfg(not(feature = "webgpu"))]
fn refuse_shader() -> Result<Reply, String> {
    Err("this engine has no WebGPU".into())
}

/// An explorer map; a class's relevance is computed first when it is asked for the first time.
async fn explain(engine: &Rc<Engine>, answer: u64, question: &Question) -> Result<Reply, String> {
    let needs = {
        let answers = engine.answers.borrow();
        let kept = answers.get(answer)?;
        match question.class {
            Some(class) if question.method == "relevance" && kept.relevance_of(class).is_none() => {
                Some((class, kept.model, kept.backend, kept.chw.clone()))
            }
            _ => None,
        }
    };
    let mut relevance_ms = None;
    if let Some((class, model, backend, chw)) = needs {
        let m = engine.model(model)?;
        let start = now();
        let relevance = engine
            .relevance(model, &m, backend, &chw, class)
            .await
            .map_err(|e| format!("The relevance could not be computed: {e}"))?;
        relevance_ms = Some(now() - start);
        engine
            .answers
            .borrow_mut()
            .get_mut(answer)?
            .relevance
            .push((class, relevance));
    }
    let answers = engine.answers.borrow();
    let kept = answers.get(answer)?;
    Ok(Reply::Map(TokenValues {
        values: kept.explain(question)?,
        relevance_ms,
        backend: kept.backend,
    }))
}

/// A teaching run: the photos fitted to the model, the run, the taught model kept.
async fn teach_run(
    engine: &Rc<Engine>,
    id: u64,
    plan: TeachPlan,
    received: &Received,
    out: &mut Attachments,
) -> Result<Reply, String> {
    let base = engine.model(plan.model)?;
    if engine.teaching.borrow().is_some() {
        return Err("a teaching run is already under way".into());
    }
    let side = base.image_size() as u32;
    let mut photos = Vec::with_capacity(plan.photos.len());
    for p in &plan.photos {
        let rgb = received.bytes(p.rgb)?;
        // Squares added for another model are resized to this one's (the originals are gone).
        let rgb = vit::teach::resize_square(&rgb, p.side, side);
        photos.push(teaching::Photo {
            class: p.class,
            id: p.id,
            rgb,
            held: p.held,
        });
    }
    let views = photos.iter().filter(|p| !p.held).count() * plan.config.views
        + photos.iter().filter(|p| p.held).count();
    let bytes = teach::feature_bytes(&base, plan.config.mode, views);
    if bytes > vit::teach::MAX_FEATURE_BYTES {
        return Ok(Reply::Refused(format!(
            "Teaching the last block keeps every photo's tokens in memory: {} for these {} photos, more than the {} the page allows. Use fewer photos, or “New head only”.",
            human_bytes(bytes as f64),
            photos.len(),
            human_bytes(vit::teach::MAX_FEATURE_BYTES as f64)
        )));
    }
    if let Some(lane) = engine
        .lane
        .as_ref()
        .filter(|_| plan.backend == Backend::WebGpu && engine.devices.gpu.is_none())
    {
        return teach_on_lane(engine, lane, id, &base, plan, photos, out).await;
    }
    let stop = Rc::new(Cell::new(false));
    *engine.teaching.borrow_mut() = Some(stop.clone());
    let run = Run {
        backend: plan.backend,
        name: plan.name,
        labels: plan.labels,
        counts: plan.counts,
        held_per_class: plan.held_per_class,
        config: plan.config,
        photos,
    };
    let report = |event| send_event(id, Event::Teach(event));
    let result = teaching::teach(&base, &engine.devices, run, &stop, &report).await;
    engine.teaching.borrow_mut().take();
    let Some(taught) = result? else {
        return Ok(Reply::Taught(None));
    };
    let bpk = out.bytes(&taught.bpk);
    let name = taught.manifest.name.clone();
    let loaded = engine.add(taught.model, Vec::new(), false);
    Ok(Reply::Taught(Some(Box::new(Taught {
        name,
        manifest: taught.manifest_text,
        bpk,
        loaded,
        record: taught.record,
        stopped: taught.stopped,
        features_ms: taught.features_ms,
        training_ms: taught.training_ms,
        total_ms: taught.total_ms,
    }))))
}

/// A teaching run on the WebGPU lane: the lane teaches (its events relayed to the page), and
/// the taught pair is loaded here too, through the checks any pair gets.
async fn teach_on_lane(
    engine: &Rc<Engine>,
    lane: &GpuLane,
    id: u64,
    base: &Model,
    mut plan: TeachPlan,
    photos: Vec<teaching::Photo>,
    out: &mut Attachments,
) -> Result<Reply, String> {
    let side = base.image_size() as u32;
    for p in &mut plan.photos {
        p.side = side; // resized above
    }
    let squares = photos.into_iter().map(|p| p.rgb).collect();
    let relay: Rc<dyn Fn(Event)> = Rc::new(move |event| send_event(id, event));
    engine.lane_teaching.set(true);
    let result = lane.teach(plan.model, base, plan, squares, relay).await;
    engine.lane_teaching.set(false);
    let (reply, received) = result?;
    let Reply::Taught(Some(taught)) = reply else {
        return Ok(reply); // refused, or stopped before training began
    };
    let bpk = received.bytes(taught.bpk)?;
    let manifest = Manifest::from_json(&taught.manifest, &format!("{}.json", taught.name))
        .map_err(|e| e.to_string())?;
    let model = Model::new(manifest, &bpk, &engine.devices)?;
    let loaded = engine.add(model, Vec::new(), false);
    lane.taught(loaded.model, &taught);
    Ok(Reply::Taught(Some(Box::new(Taught {
        bpk: out.bytes(&bpk),
        loaded,
        ..*taught
    }))))
}
