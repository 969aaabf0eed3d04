//! A teaching run in the engine, from the page's plan to the taught pair: the photos' features
//! a batch at a time, the AdamW steps with their figures sent as they are read, then the pair
//! (weights and manifest) loaded back through the checks any pair gets. Stop
//! (`Request::StopTeaching`) ends it after the current step; stopped while the photos are
//! being read, nothing is taught.
//!
//! Both loops give the worker's event loop a turn between slices of work, so that Stop, the
//! page's other questions (a map, another photo) and WebGPU's callbacks get through.

use std::cell::Cell;
use std::rc::Rc;

use vit::teach::{TeachConfig, TeachRecord, taught_manifest};
use vit::weights::Manifest;

use crate::engine::devices::{Devices, Model};
use crate::engine::teach::{Extraction, Figures, batch_photos};
use crate::platform::dom::{now, yield_now};
use crate::protocol::{Backend, TeachEvent};

/// Figures are read after the first step, every this many steps, and after the last: the
/// first reading shows where the loss started.
const READ_EVERY: usize = 10;
/// Work between two turns of the event loop, in ms. A turn costs a timer (4 ms or more once
/// nested), so yielding after every quick step would double the run.
const SLICE_MS: f64 = 12.0;
/// Photos' features computed between two turns on the CPU, in ms of work.
const BATCH_MS: f64 = 120.0;

/// One photo to learn from: class, stable id, square at the model's size, held out or not.
pub struct Photo {
    pub class: usize,
    pub id: u64,
    pub rgb: Vec<u8>,
    pub held: bool,
}

/// What the run is asked to do.
pub struct Run {
    pub backend: Backend,
    pub name: String,
    pub labels: Vec<String>,
    pub counts: Vec<usize>,
    pub held_per_class: Vec<usize>,
    pub config: TeachConfig,
    /// Training photos first, then the held-out ones.
    pub photos: Vec<Photo>,
}

/// The taught pair and how it was made.
pub struct Taught {
    pub manifest: Manifest,
    pub manifest_text: String,
    pub bpk: Vec<u8>,
    pub model: Model,
    pub record: TeachRecord,
    pub stopped: bool,
    pub features_ms: f64,
    pub training_ms: f64,
    pub total_ms: f64,
}

/// Runs `run` on `base`; `Ok(None)` when stopped before the steps began.
pub async fn teach(
    base: &Model,
    devices: &Devices,
    run: Run,
    stop: &Rc<Cell<bool>>,
    report: &dyn Fn(TeachEvent),
) -> Result<Option<Taught>, String> {
    let Run {
        backend,
        name,
        labels,
        counts,
        held_per_class,
        config,
        photos,
    } = run;
    let start = now();

    // (1) Features: the frozen part, once per view, a batch of photos at a time.
    let mut extraction = Extraction::new(base, devices, backend, &config)?;
    let total = photos.len();
    let mut done = 0;
    let mut ms_per_view: Option<f64> = None;
    for held in [false, true] {
        let views = if held { 1 } else { config.views.max(1) };
        let mut rest: Vec<&Photo> = photos.iter().filter(|p| p.held == held).collect();
        while !rest.is_empty() {
            if stop.get() {
                return Ok(None);
            }
            let n = batch_photos(backend, ms_per_view.map(|v| v * views as f64), BATCH_MS)
                .min(rest.len());
            let batch: Vec<&Photo> = rest.drain(..n).collect();
            let begun = now();
            let squares: Vec<(usize, u64, &[u8])> = batch
                .iter()
                .map(|p| (p.class, p.id, p.rgb.as_slice()))
                .collect();
            extraction.add(&squares, held);
            extraction.settle().await?;
            ms_per_view = Some((now() - begun) / (n * views) as f64);
            done += n;
            report(TeachEvent::Reading { done, total });
            yield_now().await;
        }
    }
    let features_ms = now() - start;
    if stop.get() {
        return Ok(None);
    }

    // (2) The steps, on the features alone.
    let steps = config.steps;
    let mut training = extraction.teach(labels.len(), config.clone())?;
    report(TeachEvent::Training {
        held_photos: training.held_photos(),
    });
    yield_now().await;
    let begun = now();
    let mut slice = now();
    let mut held_acc = None;
    loop {
        training.step();
        let k = training.steps_done();
        let last = k >= steps || stop.get();
        if k % READ_EVERY == 0 || k == 1 || last {
            // The read also waits for the steps queued on WebGPU.
            let Figures {
                step,
                loss,
                train_acc,
                held,
            } = training.figures().await?;
            held_acc = held.map(|h| h.1).or(held_acc);
            report(TeachEvent::Figures {
                step,
                loss,
                train_acc,
                held,
            });
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
    report(TeachEvent::Finishing);
    yield_now().await;

    // (3) The pair: weights, manifest, then loaded back through the checks any pair gets.
    let bpk = training.finish(base).await?;
    let classes = labels.len();
    let record = TeachRecord {
        base: base.manifest.name.clone(),
        base_sha256: base.manifest.weights.sha256.clone(),
        photos_per_class: counts,
        held_out_per_class: held_per_class,
        held_out_accuracy: held_acc.map(f64::from),
        steps_run,
        config,
        device: backend.label().to_string(),
        seconds: (now() - start) / 1000.0,
    };
    debug_assert_eq!(record.held_out_per_class.len(), classes);
    let manifest =
        taught_manifest(&base.manifest, &name, labels, &record, &bpk).map_err(|e| e.to_string())?;
    let manifest_text = manifest.to_json();
    let parsed =
        Manifest::from_json(&manifest_text, &format!("{name}.json")).map_err(|e| e.to_string())?;
    let model = Model::new(parsed.clone(), &bpk, devices)?;
    Ok(Some(Taught {
        manifest: parsed,
        manifest_text,
        bpk,
        model,
        record,
        stopped: steps_run < steps,
        features_ms,
        training_ms,
        total_ms: now() - start,
    }))
}
