//! The Teach panel, "teach it your own classes": training and the taught pair.
//!
//! - Train checks the classes (`vit::teach::check_classes`), then has the engine, on the
//!   backend the page uses for inference, compute the frozen part's features a batch at a time
//!   and run the steps (`engine::teaching`); the page draws the figures it sends every few
//!   steps (`teach::curve`). Stop ends it after the current step with a model of the steps
//!   done.
//! - The engine loads the taught pair through the same checks as a pair from disk, and the
//!   page installs it like one (`actions::loading::install_taught`): every part of the page
//!   then follows the new classes. Download saves the pair.
//!
//! Classes and photos (files, drops, pastes, the webcam) are `actions::teach_photos`'; the
//! panel's listeners are `events::teach`'s; its state, texts and report are in `teach`. Just
//! over 500 lines, for one job: a run from its plan to the taught pair.

use std::rc::Rc;

use vit::teach::{Mode, Split, TeachConfig, check_classes};
use vit::weights::{Manifest, check_model_name};

use crate::actions::loading;
use crate::app::state::{App, Model, Shared, Source, spawn_task};
use crate::platform::dom::{download, set_attr, sleep};
use crate::protocol::{Backend, Event, Reply, Request, TeachEvent, TeachPhoto, TeachPlan};
use crate::teach::curve::{self, Point};
use crate::teach::state::{Phase, Run, Taught, Teach, Times};
use crate::teach::texts::{parse_steps, reading_text, step_text, summary};
use crate::worker::envelope::Attachments;

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

/// What a run needs, gathered when Train is pressed: the engine's request, with the squares
/// attached.
struct Plan {
    request: TeachPlan,
    squares: Attachments,
    backend: Backend,
    steps: usize,
    /// The panel's phase before, restored if the engine refuses the run.
    before: Phase,
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
    let model = a
        .model
        .clone()
        .ok_or("The model is still loading: train once it is ready.")?;
    let backend = a.backend();
    if backend == Backend::WebGpu && !a.ready.webgpu {
        return Err(format!(
            "WebGPU is not available here ({}): choose the CPU in the backend select.",
            a.ready.webgpu_problem.as_deref().unwrap_or("no adapter")
        ));
    }
    let mut config = TeachConfig::new(mode);
    config.steps = steps;
    let split = Split::new(&counts, config.holdout, config.seed);
    let t = &mut a.teach;
    // The squares, training photos first, as the engine reads them (it resizes any made for a
    // model of another size).
    let mut squares = Attachments::default();
    let photos: Vec<TeachPhoto> = [(false, &split.train), (true, &split.held)]
        .into_iter()
        .flat_map(|(held, list)| list.iter().map(move |&(c, p)| (held, c, p)))
        .filter_map(|(held, c, p)| {
            let photo = t.classes.get(c)?.photos.get(p)?;
            Some(TeachPhoto {
                class: c,
                id: photo.id,
                side: photo.side,
                rgb: squares.bytes(&photo.rgb),
                held,
            })
        })
        .collect();
    let before = t.phase;
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
        request: TeachPlan {
            model: model.id,
            backend,
            held_per_class: split.held_per_class(labels.len()),
            config,
            name,
            labels,
            counts,
            photos,
        },
        squares,
        backend,
        steps,
        before,
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
    let engine = {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        if !t.phase.running() || t.stop {
            return;
        }
        t.stop = true;
        t.ui.set_status("Stopping after this step…");
        a.engine.clone()
    };
    wasm_bindgen_futures::spawn_local(async move {
        let _ = engine
            .call(Request::StopTeaching, Attachments::default())
            .await;
    });
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
    /// The engine refused it before it began (too much memory for the last block).
    Refused(String),
    /// Stopped while reading the photos: nothing taught.
    StoppedEarly,
    Taught {
        pair: Taught,
        model: Rc<Model>,
        stopped: bool,
        times: Times,
    },
}

async fn run(app: Shared, plan: Plan) -> Result<(), String> {
    let before = plan.before;
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
            Ok(Outcome::Refused(message)) => {
                t.phase = before;
                t.error = Some(message.clone());
                t.ui.set_status(&message);
                t.ui.set_progress(0.0, "");
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
                model,
                stopped,
                times,
            }) => {
                t.run.ms = Some(times);
                let name = pair.name.clone();
                t.taught = Some(pair);
                t.ui.set_status(&format!("Taught: switching the page to {name}…"));
                (Ok(()), Some((name, model, stopped)))
            }
        }
    };
    let Some((name, model, stopped)) = install else {
        return result;
    };
    // Installed like a pair from disk: listed in the model select, the current photo re-run.
    let installed = loading::install_taught(app.clone(), &name, model).await;
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

/// Follows the engine's progress: the bar, the status, the state and the curve.
fn progress(app: &Shared, event: TeachEvent) {
    let mut a = app.borrow_mut();
    let t = &mut a.teach;
    match event {
        TeachEvent::Reading { done, total } => {
            t.ui.set_progress(
                done as f64 / total.max(1) as f64,
                &reading_text(done, total),
            );
        }
        TeachEvent::Training { held_photos } => {
            t.phase = Phase::Training;
            t.run.held_photos = held_photos;
            t.ui.set_progress(0.0, &step_text(&t.run));
            if !t.stop {
                let backend = t.run.backend.map_or("?", Backend::label);
                t.ui.set_status(&format!("Training {} steps on {backend}…", t.run.steps));
            }
        }
        TeachEvent::Figures {
            step,
            loss,
            train_acc,
            held,
        } => {
            let r = &mut t.run;
            r.step = step;
            r.loss = Some(loss);
            r.train_acc = Some(train_acc);
            if let Some((loss, acc)) = held {
                r.held_loss = Some(loss);
                r.held_acc = Some(acc);
            }
            r.curve.push(Point {
                step,
                loss,
                train_acc,
                held_acc: held.map(|h| h.1),
            });
            let fraction = r.step as f64 / r.steps.max(1) as f64;
            t.ui.set_progress(fraction, &step_text(&t.run));
            draw_curve(t);
        }
        TeachEvent::Finishing => t.ui.set_status("Putting the taught model together…"),
    }
}

/// The run itself, in the engine: features, steps, then the taught pair, checked and loaded.
async fn teach(app: &Shared, plan: Plan) -> Result<Outcome, String> {
    let Plan {
        request,
        squares,
        backend,
        steps,
        ..
    } = plan;
    let engine = app.borrow().engine.clone();
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
    // Stop pressed before the engine heard of the run.
    if app.borrow().teach.stop {
        return Ok(Outcome::StoppedEarly);
    }
    let listener = app.clone();
    let events: Rc<dyn Fn(Event)> = Rc::new(move |event| {
        if let Event::Teach(e) = event {
            progress(&listener, e);
        }
    });
    let (reply, received) = engine
        .call_with(Request::Teach(Box::new(request)), squares, Some(events))
        .await?;
    let taught = match reply {
        Reply::Refused(message) => return Ok(Outcome::Refused(message)),
        Reply::Taught(None) => return Ok(Outcome::StoppedEarly),
        Reply::Taught(Some(taught)) => *taught,
        other => return Err(format!("the engine answered {other:?} to teaching")),
    };
    let bpk = received.array(taught.bpk)?;
    let model = Rc::new(Model {
        id: taught.loaded.model,
        generation: engine.generation(),
        manifest: taught.loaded.manifest,
        source: Source::Pair(taught.manifest.clone(), bpk.clone()),
    });
    Ok(Outcome::Taught {
        pair: Taught {
            name: taught.name,
            manifest: taught.manifest,
            bpk,
        },
        model,
        stopped: taught.stopped || taught.record.steps_run < steps,
        times: Times {
            features: taught.features_ms,
            training: taught.training_ms,
            total: taught.total_ms,
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
                &js_sys::Uint8Array::from(manifest.as_bytes()),
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
