//! Models: a published one from the server, a pair from disk, one taught in the page, or one
//! loaded earlier (a hub model's fetching is `actions::hub`'s, which installs it here); and the timing of both backends on it, in the background, after its first
//! answer.

use std::rc::Rc;

use vit::index::IndexEntry;
use vit::weights::Manifest;
use wasm_bindgen_futures::spawn_local;

use crate::actions::images::reprepare;
use crate::actions::inference::run_inference;
use crate::app::state::{Cached, Choice, Origin, Shared, note, spawn_task, step};
use crate::backends::{self, Backend, Loaded, Timings};
use crate::platform::dom::{human_ms, now, yield_now};
use crate::platform::net;
use crate::view::model_info::{fill_model_select, show_model};

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
        Loaded::new(manifest, &bytes, &backends)
    }
    .await;
    app.borrow().ui.set_progress(None);
    match result {
        Ok(loaded) => install(app, Origin::Published, &entry.name, loaded, request).await,
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
    let text = String::from_utf8(crate::platform::dom::read_file(&json).await?).map_err(|_| {
        format!(
            "{} is not a text file, so not a model manifest",
            json.name()
        )
    })?;
    let manifest = Manifest::from_json(&text, &json.name()).map_err(|e| e.to_string())?;
    let bytes = crate::platform::dom::read_file(&bpk).await?;
    yield_now().await;
    let backends = app.borrow().backends.clone();
    let name = manifest.name.clone();
    let loaded = Loaded::new(manifest, &bytes, &backends).map_err(|e| {
        format!(
            "{} and {} do not make a working model: {e}",
            json.name(),
            bpk.name()
        )
    })?;
    install(app, Origin::Disk, &name, loaded, request).await
}

/// Makes a model taught in the Teach panel the current one, as a pair from disk would be:
/// listed (under `taught:NAME`) so switching back and forth works, and run on the photo.
pub async fn install_taught(app: Shared, name: &str, loaded: Loaded) -> Result<(), String> {
    let request = begin_model_request(&app);
    install(app, Origin::Taught, name, loaded, request).await
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

/// Switches to a model loaded before, if there is one under `key`.
pub async fn switch_to_cached(app: &Shared, key: &str) -> Result<bool, String> {
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

/// Makes `loaded` the current model and answers at once on the CPU; both backends are then
/// timed in the background, and the page moves to WebGPU only if it is faster here.
pub async fn install(
    app: Shared,
    origin: Origin,
    name: &str,
    loaded: Loaded,
    request: u64,
) -> Result<(), String> {
    if app.borrow().model_request != request {
        return Ok(()); // a newer model was asked for meanwhile
    }
    let key = origin.key(name);
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
            origin,
            loaded: loaded.clone(),
            timings: Timings::default(),
        });
        fill_model_select(&a);
        show_model(&a);
    }
    reprepare(&app)?;
    run_inference(app.clone()).await?;
    spawn_local(time_backends(app, loaded));
    Ok(())
}

/// Times both backends on `loaded` (a blank image, twice each: the first run compiles
/// kernels), then picks the faster for "Automatic" and says so in the status line.
async fn time_backends(app: Shared, loaded: Rc<Loaded>) {
    let backends = app.borrow().backends.clone();
    if backends.gpu.is_some() {
        app.borrow_mut().timing += 1;
        note(&app, Some("timing WebGPU in the background".into()));
        show_model(&app.borrow());
    }
    let timings = backends::measure(&loaded, &backends).await;
    let switch = {
        let mut a = app.borrow_mut();
        if backends.gpu.is_some() {
            a.timing -= 1;
        }
        a.milestones.timed = Some(now());
        if let Some(c) = a.cache.iter_mut().find(|c| Rc::ptr_eq(&c.loaded, &loaded)) {
            c.timings = timings;
        }
        if !a.model.as_ref().is_some_and(|m| Rc::ptr_eq(m, &loaded)) {
            return; // another model came meanwhile, with its own timing
        }
        a.timings = timings;
        show_model(&a);
        a.note = verdict_note(&timings, backends.gpu.is_some());
        a.refresh_status();
        let shown = a.shown.as_ref().map(|s| s.output.backend);
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

/// What the timing found, for the status line.
fn verdict_note(t: &Timings, has_gpu: bool) -> Option<String> {
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
}
