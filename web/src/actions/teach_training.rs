//! The Teach panel, "teach it your own classes": training and the taught pair.
//!
//! - Train checks the classes (`vit::teach::check_classes`), then on the backend the page uses
//!   for inference computes the frozen part's features a batch at a time and runs the steps
//!   (`teach::backend`), reading the figures every few steps, drawing the curve (`teach::curve`) and
//!   yielding to the browser so the page stays responsive; Stop ends it after the current
//!   step with a model of the steps done.
//! - The taught pair is loaded through the same checks as a pair from disk (`Loaded::new`)
//!   and installed like one (`actions::loading::install_taught`): every part of the page then follows
//!   the new classes. Download saves the pair.
//!
//! Classes and photos (files, drops, pastes, the webcam) are `actions::teach_photos`'; the
//! panel's listeners are `events::teach`'s; its state, texts and report are in `teach`. Just
//! over 500 lines, for one job: a run from its plan to the taught pair.

use std::rc::Rc;

use vit::teach::{
    MAX_FEATURE_BYTES, Mode, Split, TeachConfig, TeachRecord, check_classes, taught_manifest,
};
use vit::weights::{Manifest, check_model_name};

use crate::actions::loading;
use crate::app::state::{App, Shared, spawn_task};
use crate::backends::{Backend, Loaded};
use crate::platform::dom::{download, human_bytes, now, set_attr, sleep, yield_now};
use crate::teach::backend::{Extraction, Figures, batch_photos};
use crate::teach::curve::{self, Point};
use crate::teach::state::{Phase, Run, Taught, Teach, Times};
use crate::teach::texts::{parse_steps, reading_text, step_text, summary};

/// Figures are read (and the curve grows) after the first step, every this many steps, and
/// after the last: the first reading shows where the loss started.
const READ_EVERY: usize = 10;
/// Work between two yields to the browser, in ms: a frame's worth. A yield costs a timer
/// turn (4 ms or more once nested), so yielding after every quick step would double the run.
const SLICE_MS: f64 = 12.0;

/// A message as a sentence: capital first, full stop last.
fn sentence(s: &str) -> String {
    let mut chars = s.trim().chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>())
        .unwrap_or_default();
    out.extend(chars);
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A refusal: said in the panel and, like every error of the page, in its alert.
pub(crate) fn refuse(app: &Shared, message: String) {
    {
        let mut a = app.borrow_mut();
        a.teach.error = Some(message.clone());
        a.teach.ui.set_status(&message);
    }
    spawn_task(app, "Checking", async move { Err(message) });
}

/// What a run needs, gathered when Train is pressed.
struct Plan {
    loaded: Rc<Loaded>,
    backend: Backend,
    labels: Vec<String>,
    name: String,
    config: TeachConfig,
    counts: Vec<usize>,
    /// Each class's photos: id and square, all at the model's size.
    photos: Vec<Vec<(u64, Rc<Vec<u8>>)>>,
    split: Split,
}

pub(crate) fn mode_of(value: &str) -> Mode {
    match value {
        "last-block" => Mode::LastBlock,
        _ => Mode::Head,
    }
}

/// The name typed, checked: it becomes the pair's two file names.
fn model_name(t: &Teach) -> Result<String, String> {
    let name = t.ui.name.value().trim().to_string();
    check_model_name(&name).map_err(|e| {
        format!(
            "{} It becomes the names of the model's two files, NAME.json and NAME.bpk.",
            sentence(&e.to_string())
        )
    })?;
    Ok(name)
}

/// Checks everything and starts the run's state; `Ok(None)` when a run is already going.
fn plan(app: &Shared) -> Result<Option<Plan>, String> {
    let mut guard = app.borrow_mut();
    let a: &mut App = &mut guard;
    if a.teach.phase.running() {
        return Ok(None);
    }
    let t = &a.teach;
    if t.add_jobs > 0 {
        return Err(format!(
            "Photos are still being added ({}/{}): train once they are in.",
            t.adding.0, t.adding.1
        ));
    }
    let names: Vec<String> = t.classes.iter().map(|c| c.name()).collect();
    let counts: Vec<usize> = t.classes.iter().map(|c| c.photos.len()).collect();
    let labels = check_classes(&names, &counts).map_err(|e| sentence(&e.to_string()))?;
    let name = model_name(t)?;
    let steps = parse_steps(&t.ui.steps.value())?;
    let mode = mode_of(&t.ui.mode.value());
    let loaded = a
        .model
        .clone()
        .ok_or("The model is still loading: train once it is ready.")?;
    let backend = a.backend();
    if a.backends.device(backend).is_none() {
        return Err(format!(
            "WebGPU is not available here ({}): choose the CPU in the backend select.",
            a.backends.gpu_problem.as_deref().unwrap_or("no adapter")
        ));
    }
    let mut config = TeachConfig::new(mode);
    config.steps = steps;
    let split = Split::new(&counts, config.holdout, config.seed);
    let views = split.train.len() * config.views + split.held.len();
    let bytes = crate::teach::backend::feature_bytes(&loaded, mode, views);
    if bytes > MAX_FEATURE_BYTES {
        return Err(format!(
            "Teaching the last block keeps every photo's tokens in memory: {} for these {} photos, more than the {} the page allows. Use fewer photos, or “New head only”.",
            human_bytes(bytes as f64),
            counts.iter().sum::<usize>(),
            human_bytes(MAX_FEATURE_BYTES as f64)
        ));
    }
    let t = &mut a.teach;
    // Squares added for another model are resized to this one's (the originals are gone).
    t.fit_photos(loaded.image_size() as u32);
    let photos = t
        .classes
        .iter()
        .map(|c| c.photos.iter().map(|p| (p.id, p.rgb.clone())).collect())
        .collect();
    t.phase = Phase::Extracting;
    t.stop = false;
    t.error = None;
    t.run = Run {
        steps,
        held_photos: split.held.len(),
        backend: Some(backend),
        ..Run::default()
    };
    let total = split.train.len() + split.held.len();
    t.ui.set_running(true, t.taught.is_some());
    t.ui.set_progress(0.0, &reading_text(0, total));
    t.ui.set_status(&format!("Reading your photos on {}…", backend.label()));
    draw_curve(t);
    Ok(Some(Plan {
        loaded,
        backend,
        labels,
        name,
        config,
        counts,
        photos,
        split,
    }))
}

/// Train: checks, then runs (a page task, so a failure also lands in the alert).
pub fn train(app: &Shared) {
    match plan(app) {
        Ok(Some(plan)) => spawn_task(app, "Teaching", run(app.clone(), plan)),
        Ok(None) => {}
        Err(message) => refuse(app, message),
    }
}

/// Stop: the run ends after its current step (or batch of photos).
pub fn stop(app: &Shared) {
    let mut a = app.borrow_mut();
    let t = &mut a.teach;
    if t.phase.running() && !t.stop {
        t.stop = true;
        t.ui.set_status("Stopping after this step…");
    }
}

pub(crate) fn draw_curve(t: &Teach) {
    curve::draw(
        &t.ui.curve,
        &t.run.curve,
        t.run.steps,
        t.run.held_photos > 0,
    );
    set_attr(
        &t.ui.curve,
        "aria-label",
        &curve::describe(&t.run.curve, t.run.steps),
    );
}

/// How a run ended.
enum Outcome {
    /// Stopped while reading the photos: nothing taught.
    StoppedEarly,
    Taught {
        pair: Taught,
        loaded: Box<Loaded>,
        stopped: bool,
        times: Times,
    },
}

async fn run(app: Shared, plan: Plan) -> Result<(), String> {
    let outcome = teach(&app, plan).await;
    let (result, install) = {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        match outcome {
            Err(e) => {
                let message = format!("Teaching failed: {e}");
                t.phase = Phase::Error;
                t.error = Some(message.clone());
                t.ui.set_status(&message);
                t.ui.set_running(false, t.taught.is_some());
                (Err(message), None)
            }
            Ok(Outcome::StoppedEarly) => {
                t.phase = Phase::Stopped;
                t.ui.set_status("Stopped before training began: nothing was taught this time.");
                t.ui.set_progress(0.0, "Stopped");
                t.ui.set_running(false, t.taught.is_some());
                (Ok(()), None)
            }
            Ok(Outcome::Taught {
                pair,
                loaded,
                stopped,
                times,
            }) => {
                t.run.ms = Some(times);
                let name = pair.name.clone();
                t.taught = Some(pair);
                t.ui.set_status(&format!("Taught: switching the page to {name}…"));
                (Ok(()), Some((name, loaded, stopped)))
            }
        }
    };
    let Some((name, loaded, stopped)) = install else {
        return result;
    };
    // Installed like a pair from disk: listed in the model select, the current photo re-run.
    let installed = loading::install_taught(app.clone(), &name, *loaded).await;
    let mut a = app.borrow_mut();
    let t = &mut a.teach;
    t.phase = if stopped { Phase::Stopped } else { Phase::Done };
    t.ui.set_running(false, true);
    let text = summary(&t.run, stopped);
    t.ui.set_status(&text);
    installed.map_err(|e| {
        let message = format!("{name} was taught, but the page could not switch to it: {e}");
        t.error = Some(message.clone());
        message
    })
}

/// Records a reading of the figures: the state, the progress bar and the curve.
fn record(app: &Shared, f: Figures) {
    let mut a = app.borrow_mut();
    let t = &mut a.teach;
    let r = &mut t.run;
    r.step = f.step;
    r.loss = Some(f.loss);
    r.train_acc = Some(f.train_acc);
    if let Some((loss, acc)) = f.held {
        r.held_loss = Some(loss);
        r.held_acc = Some(acc);
    }
    r.curve.push(Point {
        step: f.step,
        loss: f.loss,
        train_acc: f.train_acc,
        held_acc: f.held.map(|h| h.1),
    });
    let fraction = r.step as f64 / r.steps.max(1) as f64;
    t.ui.set_progress(fraction, &step_text(&t.run));
    draw_curve(t);
}

/// The run itself: features, steps, then the taught pair, checked and loaded.
async fn teach(app: &Shared, plan: Plan) -> Result<Outcome, String> {
    let Plan {
        loaded,
        backend,
        labels,
        name,
        config,
        counts,
        photos,
        split,
    } = plan;
    let backends = app.borrow().backends.clone();
    if backend == Backend::WebGpu && app.borrow().timing > 0 {
        // One user of the GPU at a time: the background timing is compiling its kernels.
        app.borrow()
            .teach
            .ui
            .set_status("Waiting for WebGPU's test run to end…");
        while app.borrow().timing > 0 {
            sleep(50).await;
        }
    }
    let stopped = || app.borrow().teach.stop;
    let start = now();

    // (1) Features: the frozen part, once per view, a batch of photos at a time.
    let mut extraction = Extraction::new(&loaded, &backends, backend, &config)?;
    let total = split.train.len() + split.held.len();
    let mut done = 0;
    let mut ms_per_view: Option<f64> = None;
    for (held, list) in [(false, &split.train), (true, &split.held)] {
        let views = if held { 1 } else { config.views.max(1) };
        let mut rest: &[(usize, usize)] = list;
        while !rest.is_empty() {
            if stopped() {
                return Ok(Outcome::StoppedEarly);
            }
            let n =
                batch_photos(backend, ms_per_view.map(|v| v * views as f64), 120.0).min(rest.len());
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            let begun = now();
            {
                let squares: Vec<(usize, u64, &[u8])> = batch
                    .iter()
                    .filter_map(|&(c, p)| {
                        let (id, rgb) = photos.get(c)?.get(p)?;
                        Some((c, *id, rgb.as_slice()))
                    })
                    .collect();
                extraction.add(&squares, held);
            }
            extraction.settle().await?;
            ms_per_view = Some((now() - begun) / (n * views) as f64);
            done += n;
            app.borrow()
                .teach
                .ui
                .set_progress(done as f64 / total as f64, &reading_text(done, total));
            yield_now().await;
        }
    }
    let features_ms = now() - start;
    if stopped() {
        return Ok(Outcome::StoppedEarly);
    }

    // (2) The steps, on the features alone.
    let steps = config.steps;
    let mut training = extraction.teach(labels.len(), config.clone())?;
    {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        t.phase = Phase::Training;
        t.run.held_photos = training.held_photos();
        t.ui.set_progress(0.0, &step_text(&t.run));
        if !t.stop {
            t.ui.set_status(&format!(
                "Training {steps} steps on {}…",
                training.backend().label()
            ));
        }
    }
    yield_now().await;
    let begun = now();
    let mut slice = now();
    loop {
        training.step();
        let k = training.steps_done();
        let stop = stopped();
        let last = k >= steps || stop;
        if k % READ_EVERY == 0 || k == 1 || last {
            // The read also waits for the steps queued on WebGPU.
            let figures = training.figures().await?;
            record(app, figures);
        }
        if last {
            break;
        }
        if now() - slice > SLICE_MS {
            yield_now().await;
            slice = now();
        }
    }
    let training_ms = now() - begun;
    let steps_run = training.steps_done();
    let held_acc = app.borrow().teach.run.held_acc;
    app.borrow()
        .teach
        .ui
        .set_status("Putting the taught model together…");
    yield_now().await;

    // (3) The pair: weights, manifest, then loaded back through the checks any pair gets.
    let bpk = training.finish(&loaded).await?;
    let classes = labels.len();
    let record = TeachRecord {
        base: loaded.manifest.name.clone(),
        base_sha256: loaded.manifest.weights.sha256.clone(),
        photos_per_class: counts,
        held_out_per_class: split.held_per_class(classes),
        held_out_accuracy: held_acc.map(f64::from),
        steps_run,
        config,
        device: backend.label().to_string(),
        seconds: (now() - start) / 1000.0,
    };
    let manifest = taught_manifest(&loaded.manifest, &name, labels, &record, &bpk)
        .map_err(|e| e.to_string())?;
    let text = manifest.to_json();
    let parsed = Manifest::from_json(&text, &format!("{name}.json")).map_err(|e| e.to_string())?;
    let taught = Loaded::new(parsed, &bpk, &backends)?;
    let total_ms = now() - start;
    Ok(Outcome::Taught {
        pair: Taught {
            name,
            manifest: text,
            bpk: Rc::new(bpk),
        },
        loaded: Box::new(taught),
        stopped: steps_run < steps,
        times: Times {
            features: features_ms,
            training: training_ms,
            total: total_ms,
        },
    })
}

// ---------- download ----------

/// Saves the taught pair as `NAME.json` and `NAME.bpk`. A name typed since the training
/// renames the pair first (manifest name and weights file), after the same check.
pub(crate) fn download_pair(app: &Shared) {
    let result = {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        model_name(t).and_then(|wanted| {
            let pair = t.taught.as_mut().ok_or("Nothing has been taught yet.")?;
            if pair.name != wanted {
                let mut m = Manifest::from_json(&pair.manifest, &format!("{}.json", pair.name))
                    .map_err(|e| e.to_string())?;
                m.description = m.description.replacen(&pair.name, &wanted, 1);
                m.name = wanted.clone();
                m.weights.file = format!("{wanted}.bpk");
                pair.manifest = m.to_json();
                pair.name = wanted;
            }
            Ok((pair.name.clone(), pair.manifest.clone(), pair.bpk.clone()))
        })
    };
    match result {
        Ok((name, manifest, bpk)) => {
            let saved = download(
                &format!("{name}.json"),
                manifest.as_bytes(),
                "application/json",
            )
            .and_then(|_| download(&format!("{name}.bpk"), &bpk, "application/octet-stream"));
            match saved {
                Ok(()) => app
                    .borrow()
                    .teach
                    .ui
                    .set_status(&format!("Saved {name}.json and {name}.bpk: load them with “Load a model from disk…”, or run `trainer predict --model {name}.json photo.jpg`.")),
                Err(e) => refuse(app, format!("The files could not be saved: {e}")),
            }
        }
        Err(message) => refuse(app, message),
    }
}

// ---------- listeners ----------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(
            sentence("class 'a' has no photo yet: give every class at least one"),
            "Class 'a' has no photo yet: give every class at least one."
        );
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence(""), ".");
    }

    #[test]
    fn modes_come_from_the_select() {
        assert_eq!(mode_of("head"), Mode::Head);
        assert_eq!(mode_of("last-block"), Mode::LastBlock);
        assert_eq!(mode_of("anything"), Mode::Head);
    }
}
