//! Models: a published one from the server, a pair from disk, one taught in the page, or one
//! loaded earlier (a hub model's fetching is `actions::hub`'s, which installs it here), each
//! loaded by the engine; the timing of both backends on it, in the background, after its
//! first answer; and a new engine, after one died, given the current model and photo again.

use std::rc::Rc;

use vit::index::IndexEntry;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::spawn_local;

use crate::actions::inference::run_inference;
use crate::actions::picture::reprepare;
use crate::app::state::{Cached, Choice, Model, Origin, Shared, Source, note, spawn_task, step};
use crate::platform::dom::{human_ms, now};
use crate::protocol::{Backend, Event, Fault, Loaded, Reply, Request, Timings, Tuning};
use crate::view::model_info::{fill_model_select, show_model};
use crate::worker::envelope::Attachments;

/// Downloads a published model (manifest, then weights with progress) and switches to it.
pub async fn load_published(app: Shared, entry: IndexEntry) -> Result<(), String> {
    let request = begin_model_request(&app);
    if switch_to_cached(&app, &entry.name).await? {
        return Ok(());
    }
    step(&app, &format!("Loading model {}", entry.name));
    let name = entry.name.clone();
    let result = load_source(&app, Source::Published(entry)).await;
    app.borrow().ui.set_progress(None);
    match result {
        Ok(model) => install(app, Origin::Published, &name, model, request).await,
        Err(e) => {
            restore_model_select(&app);
            Err(format!("Model {name} could not be loaded: {e}"))
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
    let model = load_source(&app, Source::Files(json, bpk)).await?;
    let name = model.manifest.name.clone();
    install(app, Origin::Disk, &name, model, request).await
}

/// Has the engine load `source`, showing a download's progress; the page's handle to it.
pub async fn load_source(app: &Shared, source: Source) -> Result<Rc<Model>, String> {
    let engine = app.borrow().engine.clone();
    let mut out = Attachments::default();
    let request = match &source {
        Source::Published(entry) => Request::LoadPublished {
            manifest_url: format!("models/{}", entry.manifest),
        },
        Source::Files(json, bpk) => Request::LoadFiles {
            manifest: out.value(json.clone().into()),
            manifest_name: json.name(),
            weights: out.value(bpk.clone().into()),
            weights_name: bpk.name(),
        },
        Source::Hub(name) => {
            let a = app.borrow();
            Request::LoadHub {
                name: name.clone(),
                endpoint: a.hub.endpoint.clone(),
                image_size: a.index.hub_entry(name).and_then(|e| e.image_size),
            }
        }
        Source::Pair(manifest, bpk) => Request::LoadPair {
            manifest: manifest.clone(),
            weights: out.copy_of(bpk),
        },
    };
    let listener = app.clone();
    let events: Rc<dyn Fn(Event)> = Rc::new(move |event| match event {
        Event::Progress { received, total } => {
            let mut a = listener.borrow_mut();
            if matches!(a.loading, Some(Source::Hub(_))) {
                let updates = a.hub.download.map_or(0, |d| d.2) + 1;
                a.hub.download = Some((received, total, updates));
            }
            a.ui.set_progress(Some((received, total)));
        }
        Event::Step(text) => step(&listener, &text),
        _ => {}
    });
    app.borrow_mut().loading = Some(source.clone());
    if let Source::Hub(_) = source {
        app.borrow_mut().hub.download = None;
    }
    let result = engine.call_with(request, out, Some(events)).await;
    app.borrow_mut().loading = None;
    let loaded: Loaded = match result? {
        (Reply::Loaded(loaded), _) => *loaded,
        (other, _) => return Err(format!("the engine answered {other:?} to a model")),
    };
    if let Source::Hub(key) = &source {
        let mut a = app.borrow_mut();
        a.hub.steps = loaded.steps.clone();
        if loaded.kept && !a.hub.kept.contains(key) {
            a.hub.kept.push(key.clone());
        }
    }
    Ok(Rc::new(Model {
        id: loaded.model,
        generation: engine.generation(),
        manifest: loaded.manifest,
        source,
    }))
}

/// Makes a model taught in the Teach panel the current one, as a pair from disk would be:
/// listed (under `taught:NAME`) so switching back and forth works, and run on the photo.
pub async fn install_taught(app: Shared, name: &str, model: Rc<Model>) -> Result<(), String> {
    let request = begin_model_request(&app);
    install(app, Origin::Taught, name, model, request).await
}

pub fn begin_model_request(app: &Shared) -> u64 {
    let mut a = app.borrow_mut();
    a.model_request += 1;
    a.model_request
}

pub fn restore_model_select(app: &Shared) {
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

/// Switches to a model loaded before, if there is one under `key` (loaded again when the
/// engine that held it has stopped since).
pub async fn switch_to_cached(app: &Shared, key: &str) -> Result<bool, String> {
    let found = {
        let a = app.borrow();
        a.cache
            .iter()
            .find(|c| c.key == key)
            .map(|c| (c.model.clone(), c.timings))
    };
    let Some((mut model, timings)) = found else {
        return Ok(false);
    };
    let generation = app.borrow().engine.generation();
    if model.generation != generation {
        model = load_source(app, model.source.clone()).await?;
        app.borrow().ui.set_progress(None);
        let mut a = app.borrow_mut();
        if let Some(c) = a.cache.iter_mut().find(|c| c.key == key) {
            c.model = model.clone();
        }
    }
    {
        let mut a = app.borrow_mut();
        a.model = Some(model);
        a.model_key = key.to_string();
        a.timings = timings;
        show_model(&a);
    }
    reprepare(app).await?;
    run_inference(app.clone()).await?;
    Ok(true)
}

/// Makes `model` the current model and answers at once on the CPU; both backends are then
/// timed in the background, and the page moves to WebGPU only if it is faster here.
pub async fn install(
    app: Shared,
    origin: Origin,
    name: &str,
    model: Rc<Model>,
    request: u64,
) -> Result<(), String> {
    if app.borrow().model_request != request {
        return Ok(()); // a newer model was asked for meanwhile
    }
    let key = origin.key(name);
    {
        let mut a = app.borrow_mut();
        a.model = Some(model.clone());
        a.model_key = key.clone();
        a.timings = Timings::default();
        // Cached (and listed) at once; its timings follow when measured.
        a.cache.retain(|c| c.key != key);
        a.cache.push(Cached {
            key: key.clone(),
            origin,
            model: model.clone(),
            timings: Timings::default(),
        });
        fill_model_select(&a);
        show_model(&a);
    }
    reprepare(&app).await?;
    run_inference(app.clone()).await?;
    spawn_local(time_backends(app, model));
    Ok(())
}

/// Times both backends on `model` (a blank image, twice each: the first run compiles
/// kernels), then picks the faster for "Automatic" and says so in the status line.
async fn time_backends(app: Shared, model: Rc<Model>) {
    let (engine, has_gpu) = {
        let a = app.borrow();
        (a.engine.clone(), a.ready.webgpu)
    };
    if has_gpu {
        app.borrow_mut().timing += 1;
        note(&app, Some("timing WebGPU in the background".into()));
        show_model(&app.borrow());
    }
    let timings = match engine
        .call(
            Request::Time {
                model: model.id,
                only: None,
            },
            Attachments::default(),
        )
        .await
    {
        Ok((Reply::Timings(t), _)) => t,
        _ => Timings::default(),
    };
    let switch = {
        let mut a = app.borrow_mut();
        if has_gpu {
            a.timing -= 1;
        }
        a.milestones.timed = Some(now());
        if let Some(c) = a.cache.iter_mut().find(|c| Rc::ptr_eq(&c.model, &model)) {
            c.timings = timings;
        }
        if !a.model.as_ref().is_some_and(|m| Rc::ptr_eq(m, &model)) {
            return; // another model came meanwhile, with its own timing
        }
        a.timings = timings;
        show_model(&a);
        a.note = verdict_note(&timings, has_gpu);
        a.refresh_status();
        let shown = a.shown.as_ref().map(|s| s.backend);
        a.choice == Choice::Auto && shown.is_some_and(|b| b != a.backend())
    };
    if switch {
        spawn_task(
            &app,
            "Switching to the faster backend",
            run_inference(app.clone()),
        );
    }
}

/// What the timing found, for the status line, with what autotune did on WebGPU.
fn verdict_note(t: &Timings, has_gpu: bool) -> Option<String> {
    let verdict = backends_note(t, has_gpu)?;
    Some(match t.gpu_tuning.as_ref().and_then(tuning_note) {
        Some(tuning) => format!("{verdict} · {tuning}"),
        None => verdict,
    })
}

/// When WebGPU's kernels were tuned and for how long: now, or on an earlier visit.
fn tuning_note(t: &Tuning) -> Option<String> {
    if t.tuned > 0 {
        let took = t
            .tuning_ms
            .map_or(String::new(), |ms| format!(" in {}", human_ms(ms)));
        // A key is an operation at a shape: one choice of kernel each.
        return Some(format!("WebGPU tuned {} kernel choices{took}", t.tuned));
    }
    let when = t.tuned_at?;
    let date = js_sys::Date::new(&when.into());
    let day = String::from(date.to_locale_date_string("default", &JsValue::UNDEFINED));
    let took = t
        .remembered_ms
        .map_or(String::new(), |ms| format!(", {} of tuning", human_ms(ms)));
    Some(format!(
        "WebGPU's kernel choices as tuned on {day}{took}, none tuned now"
    ))
}

fn backends_note(t: &Timings, has_gpu: bool) -> Option<String> {
    match (t.cpu, t.gpu) {
        (Some(c), Some(g)) if t.fastest() == Backend::WebGpu => Some(format!(
            "WebGPU is faster here ({} against {} on the CPU)",
            human_ms(g),
            human_ms(c)
        )),
        (Some(c), Some(g)) => Some(format!(
            "the CPU is faster here ({} against {} on WebGPU)",
            human_ms(c),
            human_ms(g)
        )),
        (Some(_), None) if has_gpu => Some("WebGPU failed its test run: using the CPU".into()),
        _ => None,
    }
}

/// A new engine is up after one died: the page says so in one line, and the current model
/// and photo go to the new engine, so that the next photo is answered as before.
pub fn after_restart(app: &Shared, line: String) {
    {
        let mut a = app.borrow_mut();
        // WebGPU's test run, if one was going, died with the engine.
        a.timing = 0;
        a.crop_job = false;
    }
    let task = {
        let app = app.clone();
        async move {
            let engine = app.borrow().engine.clone();
            let ready = engine.ready().await?;
            app.borrow_mut().ready = ready;
            let key = app.borrow().model_key.clone();
            if !key.is_empty() {
                begin_model_request(&app);
                switch_to_cached(&app, &key).await?;
            }
            Ok(())
        }
    };
    spawn_task(app, "Starting the engine again", task);
    note(app, Some(line));
}

/// `window.vitrine.engineFault(kind)`: a test hook that makes the engine fail as it could in
/// the field ("panic", "kill"), or keeps it busy ("busy:MS").
pub fn engine_fault(app: &Shared, kind: &str) {
    let engine = app.borrow().engine.clone();
    let fault = match kind {
        "panic" => Fault::Panic,
        "shader" => Fault::Shader,
        "kill" => {
            engine.died("its worker was ended".into());
            return;
        }
        _ => match kind.strip_prefix("busy:").and_then(|ms| ms.parse().ok()) {
            Some(ms) => Fault::Busy(ms),
            None => {
                web_sys::console::warn_1(&format!("engineFault: unknown fault '{kind}'").into());
                return;
            }
        },
    };
    spawn_local(async move {
        let _ = engine
            .call(Request::Fault(fault), Attachments::default())
            .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_says_which_backend_won() {
        let t = Timings {
            cpu: Some(30.0),
            gpu: Some(1200.0),
            cpu_first: Some(120.0),
            gpu_first: Some(9000.0),
            ..Timings::default()
        };
        assert_eq!(
            verdict_note(&t, true).unwrap(),
            "the CPU is faster here (30 ms against 1.20 s on WebGPU)"
        );
        let t = Timings {
            gpu: Some(3.0),
            ..t
        };
        assert!(
            verdict_note(&t, true)
                .unwrap()
                .starts_with("WebGPU is faster")
        );
        let t = Timings { gpu: None, ..t };
        assert!(verdict_note(&t, true).unwrap().contains("failed"));
        assert_eq!(verdict_note(&t, false), None);
    }

    #[test]
    fn the_status_says_what_autotune_tuned() {
        let t = Timings {
            cpu: Some(30.0),
            gpu: Some(10.0),
            gpu_tuning: Some(Tuning {
                tuned: 12,
                tuning_ms: Some(3400.0),
                ..Tuning::default()
            }),
            ..Timings::default()
        };
        assert_eq!(
            verdict_note(&t, true).unwrap(),
            "WebGPU is faster here (10 ms against 30 ms on the CPU) · WebGPU tuned 12 kernel choices in 3.40 s"
        );
        // Nothing tuned and nothing remembered: nothing to say about tuning.
        let t = Timings {
            gpu_tuning: Some(Tuning::default()),
            ..t
        };
        assert!(!verdict_note(&t, true).unwrap().contains("tuned"));
    }
}
