//! The Teach panel's state: its classes and their photos, the run under way (or the last one),
//! and the taught model pair; with its report for `window.vitrine.teach()` and the panel's
//! texts.
//!
//! Memory stays bounded: a photo is kept only as the model's RGB square (`side` x `side` x 3
//! bytes, 6.9 kB at 48 px) and a thumbnail canvas of at most [`THUMB_SIDE`] pixels; the file's
//! bytes and the decoded original are dropped as soon as the square is made. When the model
//! changes size, the squares are resized ([`resize_square`]): the originals are gone.
//!
//! The texts, the report's shape, the resizing and the base64 are pure and tested natively.

use std::rc::Rc;

use image::RgbImage;
use image::imageops::FilterType;
use serde::Serialize;
use web_sys::{HtmlElement, MediaStream};

use crate::curve::Point;
use crate::model::Backend;
use crate::teach_ui::{ClassView, TeachUi};

/// Largest side of a thumbnail's canvas: 500 photos of a 224 px model stay small.
pub const THUMB_SIDE: u32 = 64;
/// The steps a person may ask for.
pub const MIN_STEPS: usize = 10;
pub const MAX_STEPS: usize = 2000;
/// The model name the panel suggests.
pub const DEFAULT_NAME: &str = "my-classes";

/// One photo of a class: the model's square and its thumbnail element.
pub struct Photo {
    /// For good, across removals: the extractor's crops of a photo follow it.
    pub id: u64,
    pub side: u32,
    /// `side * side * 3` bytes, rows top to bottom (`RgbImage::into_raw`).
    pub rgb: Rc<Vec<u8>>,
    pub el: HtmlElement,
}

pub struct Class {
    pub id: u64,
    pub photos: Vec<Photo>,
    pub view: ClassView,
}

impl Class {
    /// The name as typed (trimmed and checked by `vit::teach::check_classes` at Train).
    pub fn name(&self) -> String {
        self.view.name.value()
    }
}

/// Where the panel stands. Adding photos is reported on top of it ([`Teach::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Extracting,
    Training,
    Done,
    Stopped,
    Error,
}

impl Phase {
    pub fn id(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Extracting => "extracting",
            Phase::Training => "training",
            Phase::Done => "done",
            Phase::Stopped => "stopped",
            Phase::Error => "error",
        }
    }

    pub fn running(self) -> bool {
        matches!(self, Phase::Extracting | Phase::Training)
    }
}

/// How long a run took, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Times {
    pub features: f64,
    pub training: f64,
    pub total: f64,
}

/// The run under way, or the last one.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub step: usize,
    pub steps: usize,
    pub loss: Option<f32>,
    pub train_acc: Option<f32>,
    /// Photos held out (0: none, every photo trains).
    pub held_photos: usize,
    pub held_acc: Option<f32>,
    pub held_loss: Option<f32>,
    pub curve: Vec<Point>,
    pub ms: Option<Times>,
    pub backend: Option<Backend>,
}

/// The last model taught: exactly what Download saves.
pub struct Taught {
    pub name: String,
    /// `NAME.json`'s text.
    pub manifest: String,
    /// `NAME.bpk`'s bytes.
    pub bpk: Rc<Vec<u8>>,
}

/// The webcam while it is open, and the class its photos go to.
pub struct Camera {
    pub stream: MediaStream,
    pub class: u64,
}

pub struct Teach {
    pub ui: TeachUi,
    pub classes: Vec<Class>,
    next_id: u64,
    pub phase: Phase,
    /// Stop was pressed: the run ends after its current step.
    pub stop: bool,
    pub run: Run,
    /// The last refusal or failure, for `window.vitrine.teach()`.
    pub error: Option<String>,
    pub taught: Option<Taught>,
    /// Photos being added (all picks together): done, total; and how many picks are at it.
    pub adding: (usize, usize),
    pub add_jobs: usize,
    /// The class last clicked, typed in or added to: where a paste goes when the focus is in
    /// the panel but not in a class.
    pub last_class: Option<u64>,
    pub camera: Option<Camera>,
    /// The webcam is being asked for.
    pub camera_opening: bool,
    /// Bumped on every press of "Take photo", so an earlier hold's repeats stop.
    pub snap_hold: u64,
}

impl Teach {
    /// The panel's elements, with two empty classes, "Class 1" and "Class 2".
    pub fn find() -> Self {
        let mut teach = Self {
            ui: TeachUi::find(),
            classes: Vec::new(),
            next_id: 1,
            phase: Phase::Idle,
            stop: false,
            run: Run::default(),
            error: None,
            taught: None,
            adding: (0, 0),
            add_jobs: 0,
            last_class: None,
            camera: None,
            camera_opening: false,
            snap_hold: 0,
        };
        teach.add_class();
        teach.add_class();
        teach
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Adds an empty class named "Class N" (the first N free); `None` at
    /// `vit::teach::MAX_CLASSES`.
    pub fn add_class(&mut self) -> Option<u64> {
        if self.classes.len() >= vit::teach::MAX_CLASSES {
            return None;
        }
        let names: Vec<String> = self.classes.iter().map(Class::name).collect();
        let id = self.next();
        let view = ClassView::new(id, self.classes.len(), &next_class_name(&names));
        let _ = self.ui.classes.append_child(&view.root);
        self.classes.push(Class {
            id,
            photos: Vec::new(),
            view,
        });
        self.ui
            .add_class
            .set_disabled(self.classes.len() >= vit::teach::MAX_CLASSES);
        Some(id)
    }

    /// Removes a class with its photos; the classes below it move up a place.
    pub fn remove_class(&mut self, id: u64) {
        let Some(i) = self.index_of(id) else { return };
        let class = self.classes.remove(i);
        class.view.root.remove();
        for (j, c) in self.classes.iter().enumerate().skip(i) {
            c.view.set_index(j);
        }
        if self.last_class == Some(id) {
            self.last_class = None;
        }
        self.ui.add_class.set_disabled(false);
    }

    pub fn index_of(&self, id: u64) -> Option<usize> {
        self.classes.iter().position(|c| c.id == id)
    }

    pub fn class(&self, id: u64) -> Option<&Class> {
        self.classes.iter().find(|c| c.id == id)
    }

    /// Room left in a class (`None`: the class is gone).
    pub fn room(&self, id: u64) -> Option<usize> {
        self.class(id)
            .map(|c| vit::teach::MAX_PHOTOS_PER_CLASS.saturating_sub(c.photos.len()))
    }

    /// Adds a square (`side` pixels) to a class, with its thumbnail `el`; false when the
    /// class is gone or full.
    pub fn add_photo(&mut self, class: u64, side: u32, rgb: Vec<u8>, el: HtmlElement) -> bool {
        if self.room(class).unwrap_or(0) == 0 {
            return false;
        }
        let id = self.next();
        crate::dom::set_attr(&el, "data-photo", &id.to_string());
        let Some(c) = self.classes.iter_mut().find(|c| c.id == class) else {
            return false;
        };
        let _ = c.view.thumbs.append_child(&el);
        c.photos.push(Photo {
            id,
            side,
            rgb: Rc::new(rgb),
            el,
        });
        c.view.set_count(c.photos.len());
        true
    }

    /// Removes a photo wherever it is; returns its class and the element to focus next (the
    /// next photo's, or the previous one's).
    pub fn remove_photo(&mut self, photo: u64) -> Option<(u64, Option<HtmlElement>)> {
        for c in &mut self.classes {
            if let Some(i) = c.photos.iter().position(|p| p.id == photo) {
                let p = c.photos.remove(i);
                p.el.remove();
                c.view.set_count(c.photos.len());
                let next = c
                    .photos
                    .get(i)
                    .or_else(|| i.checked_sub(1).and_then(|j| c.photos.get(j)))
                    .map(|p| p.el.clone());
                return Some((c.id, next));
            }
        }
        None
    }

    /// Resizes every square not of `side` pixels to it (the model changed size): bilinear,
    /// from the stored square, since the original is gone.
    pub fn fit_photos(&mut self, side: u32) {
        for p in self.classes.iter_mut().flat_map(|c| c.photos.iter_mut()) {
            if p.side != side {
                p.rgb = Rc::new(resize_square(&p.rgb, p.side, side));
                p.side = side;
            }
        }
    }

    /// What `window.vitrine.teach()` calls `state`: a run's phase while one runs, "adding"
    /// while photos are being added, else the phase the last run (or refusal) left.
    pub fn state(&self) -> &'static str {
        if self.phase.running() {
            self.phase.id()
        } else if self.add_jobs > 0 {
            "adding"
        } else {
            self.phase.id()
        }
    }

    /// `window.vitrine.teach()`.
    pub fn json(&self) -> String {
        let r = &self.run;
        let report = Report {
            state: self.state(),
            classes: self
                .classes
                .iter()
                .map(|c| ClassReport {
                    name: c.name(),
                    photos: c.photos.len(),
                })
                .collect(),
            step: r.step,
            steps: r.steps,
            loss: r.loss,
            train_acc: r.train_acc,
            held_out: (r.held_photos > 0).then_some(HeldReport {
                photos: r.held_photos,
                accuracy: r.held_acc,
                loss: r.held_loss,
            }),
            ms: r.ms,
            backend: r.backend.map(Backend::id),
            model: self.taught.as_ref().map(|t| t.name.as_str()),
            error: self.error.as_deref(),
            curve: &r.curve,
            adding: (self.add_jobs > 0).then_some(Adding {
                done: self.adding.0,
                total: self.adding.1,
            }),
        };
        serde_json::to_string(&report).unwrap_or_else(|_| "null".into())
    }

    /// `window.vitrine.taughtPair()`: the pair Download saves, the weights in base64.
    pub fn pair_json(&self) -> Option<String> {
        let t = self.taught.as_ref()?;
        Some(
            serde_json::json!({
                "name": t.name,
                "manifest": t.manifest,
                "bpk": base64(&t.bpk),
            })
            .to_string(),
        )
    }
}

#[derive(Debug, Serialize)]
struct ClassReport {
    name: String,
    photos: usize,
}

#[derive(Debug, Serialize)]
struct HeldReport {
    photos: usize,
    accuracy: Option<f32>,
    loss: Option<f32>,
}

#[derive(Debug, Serialize)]
struct Adding {
    done: usize,
    total: usize,
}

/// The shape of `window.vitrine.teach()`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    state: &'static str,
    classes: Vec<ClassReport>,
    step: usize,
    steps: usize,
    loss: Option<f32>,
    train_acc: Option<f32>,
    held_out: Option<HeldReport>,
    ms: Option<Times>,
    backend: Option<&'static str>,
    model: Option<&'a str>,
    error: Option<&'a str>,
    curve: &'a [Point],
    adding: Option<Adding>,
}

/// "Class N" for the first N from `existing.len() + 1` that no class is called (ignoring
/// case, as `vit::teach::check_classes` compares names).
pub fn next_class_name(existing: &[String]) -> String {
    let taken = |name: &str| {
        existing
            .iter()
            .any(|e| e.trim().to_lowercase() == name.to_lowercase())
    };
    (existing.len() + 1..)
        .map(|n| format!("Class {n}"))
        .find(|name| !taken(name))
        .unwrap_or_else(|| "Class".into())
}

/// A stored `from`-pixel RGB square resized to `to` pixels (bilinear). A square of the wrong
/// length (never stored) comes back black rather than panicking.
pub fn resize_square(rgb: &[u8], from: u32, to: u32) -> Vec<u8> {
    let black = || vec![0u8; (to * to * 3) as usize];
    let Some(img) = RgbImage::from_raw(from, from, rgb.to_vec()) else {
        return black();
    };
    if from == to {
        return img.into_raw();
    }
    image::imageops::resize(&img, to, to, FilterType::Triangle).into_raw()
}

/// The thumbnail of a square: itself when small, else shrunk to [`THUMB_SIDE`].
pub fn thumbnail(rgb: &[u8], side: u32) -> RgbImage {
    let small = side.min(THUMB_SIDE);
    RgbImage::from_raw(small, small, resize_square(rgb, side, small))
        .unwrap_or_else(|| RgbImage::new(small, small))
}

/// Standard base64 with padding (RFC 4648), for `window.vitrine.taughtPair()`.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The steps typed, if a whole number from [`MIN_STEPS`] to [`MAX_STEPS`].
pub fn parse_steps(text: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|s| (MIN_STEPS..=MAX_STEPS).contains(s))
        .ok_or_else(|| {
            format!(
                "Steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}, not '{}'.",
                text.trim()
            )
        })
}

/// A duration as the summary says it: "3.2 s", "0.4 s", "40 ms".
pub fn seconds(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.0} ms", ms.max(0.0))
    }
}

/// "Adding photos… 3/10".
pub fn adding_text(done: usize, total: usize) -> String {
    format!("Adding photos… {done}/{total}")
}

/// "Reading your photos… 16/40".
pub fn reading_text(done: usize, total: usize) -> String {
    format!("Reading your photos… {done}/{total}")
}

/// "Step 120/300", with the figures read at that step.
pub fn step_text(run: &Run) -> String {
    let mut s = format!("Step {}/{}", run.step, run.steps);
    if let Some(loss) = run.loss {
        s += &format!(" · loss {loss:.3}");
    }
    if let Some(acc) = run.train_acc {
        s += &format!(" · batch accuracy {:.0}%", 100.0 * acc);
    }
    if let Some(acc) = run.held_acc {
        s += &format!(" · held-out accuracy {:.0}%", 100.0 * acc);
    }
    s
}

/// The sentence after a run: where and how fast it learned, and how well it does on photos
/// it never trained on.
pub fn summary(run: &Run, stopped: bool) -> String {
    let Some(ms) = run.ms else {
        return String::new();
    };
    let backend = run.backend.map_or("?", Backend::label);
    let mut s = if stopped {
        format!("Stopped after {} of {} steps. ", run.step, run.steps)
    } else {
        String::new()
    };
    s += &format!(
        "Taught in {} on {backend}: features {}, {} {} {}",
        seconds(ms.total),
        seconds(ms.features),
        run.step,
        if run.step == 1 { "step" } else { "steps" },
        seconds(ms.training)
    );
    match (run.held_photos, run.held_acc) {
        (0, _) => s += "; no photos held out (a class needs 5 photos for that)",
        (n, Some(acc)) => {
            s += &format!(
                "; held-out accuracy {:.0}% ({n} {})",
                100.0 * acc,
                if n == 1 { "photo" } else { "photos" }
            )
        }
        (_, None) => {}
    }
    s + "."
}

/// Why some files of a pick were not added: the refused ones by name, and those past a full
/// class.
pub fn refusals_text(refused: &[String], taken: usize, offered: usize, full: bool) -> String {
    let mut parts: Vec<String> = refused.to_vec();
    if full {
        parts.push(format!(
            "Took {taken} of {offered} photos: a class holds at most {}.",
            vit::teach::MAX_PHOTOS_PER_CLASS
        ));
    }
    parts.join("\n")
}

/// Photos per extraction batch: on the CPU (where a batch blocks the page while it computes)
/// as many as fit in about `budget_ms` at the measured `ms_per_photo`, 1 to 16; on WebGPU
/// (where the work is only queued) 16.
pub fn batch_photos(backend: Backend, ms_per_photo: Option<f64>, budget_ms: f64) -> usize {
    match (backend, ms_per_photo) {
        (Backend::WebGpu, _) => 16,
        (Backend::Cpu, None) => 2,
        (Backend::Cpu, Some(ms)) if ms > 0.0 && ms.is_finite() => {
            ((budget_ms / ms).floor() as usize).clamp(1, 16)
        }
        (Backend::Cpu, Some(_)) => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_classes_get_the_first_free_number() {
        assert_eq!(next_class_name(&[]), "Class 1");
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(next_class_name(&names(&["Class 1"])), "Class 2");
        assert_eq!(next_class_name(&names(&["cats", "dogs"])), "Class 3");
        // "Class 3" exists (class 1 was removed): the next free number.
        assert_eq!(next_class_name(&names(&["Class 2", "class 3"])), "Class 4");
    }

    #[test]
    fn stored_squares_resize_to_the_new_model() {
        let side = 4u32;
        let rgb: Vec<u8> = (0..side * side * 3).map(|i| (i * 5) as u8).collect();
        let same = resize_square(&rgb, side, side);
        assert_eq!(same, rgb);
        let big = resize_square(&rgb, side, 8);
        assert_eq!(big.len(), 8 * 8 * 3);
        let small = resize_square(&rgb, side, 2);
        assert_eq!(small.len(), 2 * 2 * 3);
        // A flat colour stays that colour.
        let flat = vec![200u8; 48 * 48 * 3];
        assert!(resize_square(&flat, 48, 224).iter().all(|&v| v == 200));
        // A broken square gives black, not a panic.
        assert_eq!(resize_square(&[1, 2, 3], 4, 2), vec![0; 12]);
        let t = thumbnail(&vec![9u8; 224 * 224 * 3], 224);
        assert_eq!(t.dimensions(), (THUMB_SIDE, THUMB_SIDE));
        assert_eq!(thumbnail(&rgb, side).dimensions(), (4, 4));
    }

    #[test]
    fn base64_is_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00, 0x01]), "//4AAQ==");
    }

    #[test]
    fn steps_are_checked() {
        assert_eq!(parse_steps(" 300 "), Ok(300));
        assert_eq!(parse_steps("10"), Ok(10));
        assert_eq!(parse_steps("2000"), Ok(2000));
        for bad in ["9", "2001", "", "abc", "1.5", "-5"] {
            let e = parse_steps(bad).unwrap_err();
            assert!(e.contains("from 10 to 2000"), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_and_progress_read_well() {
        assert_eq!(seconds(3210.0), "3.2 s");
        assert_eq!(seconds(400.0), "0.4 s");
        assert_eq!(seconds(40.4), "40 ms");
        assert_eq!(adding_text(3, 10), "Adding photos… 3/10");
        assert_eq!(reading_text(16, 40), "Reading your photos… 16/40");
        let mut run = Run {
            step: 120,
            steps: 300,
            ..Run::default()
        };
        assert_eq!(step_text(&run), "Step 120/300");
        run.loss = Some(0.4123);
        run.train_acc = Some(0.9375);
        run.held_acc = Some(1.0);
        assert_eq!(
            step_text(&run),
            "Step 120/300 · loss 0.412 · batch accuracy 94% · held-out accuracy 100%"
        );
    }

    #[test]
    fn the_summary_says_where_how_fast_and_how_well() {
        let mut run = Run {
            step: 300,
            steps: 300,
            held_photos: 6,
            held_acc: Some(1.0),
            ms: Some(Times {
                features: 1100.0,
                training: 2100.0,
                total: 3240.0,
            }),
            backend: Some(Backend::Cpu),
            ..Run::default()
        };
        assert_eq!(
            summary(&run, false),
            "Taught in 3.2 s on CPU (Flex): features 1.1 s, 300 steps 2.1 s; held-out accuracy 100% (6 photos)."
        );
        run.step = 120;
        run.held_photos = 0;
        run.held_acc = None;
        run.backend = Some(Backend::WebGpu);
        assert_eq!(
            summary(&run, true),
            "Stopped after 120 of 300 steps. Taught in 3.2 s on WebGPU: features 1.1 s, 120 steps 2.1 s; no photos held out (a class needs 5 photos for that)."
        );
        assert_eq!(summary(&Run::default(), false), "");
    }

    #[test]
    fn refusals_name_the_files_and_the_limit() {
        let refused = vec!["notes.txt is not an image: unrecognised content".to_string()];
        assert_eq!(refusals_text(&refused, 3, 4, false), refused[0]);
        let s = refusals_text(&[], 1000, 1200, true);
        assert_eq!(
            s,
            format!(
                "Took 1000 of 1200 photos: a class holds at most {}.",
                vit::teach::MAX_PHOTOS_PER_CLASS
            )
        );
    }

    #[test]
    fn cpu_batches_fit_the_time_budget() {
        assert_eq!(batch_photos(Backend::WebGpu, None, 120.0), 16);
        assert_eq!(batch_photos(Backend::Cpu, None, 120.0), 2);
        assert_eq!(batch_photos(Backend::Cpu, Some(30.0), 120.0), 4);
        assert_eq!(batch_photos(Backend::Cpu, Some(500.0), 120.0), 1);
        assert_eq!(batch_photos(Backend::Cpu, Some(0.5), 120.0), 16);
        assert_eq!(batch_photos(Backend::Cpu, Some(0.0), 120.0), 16);
    }

    #[test]
    fn the_report_has_the_contract_shape() {
        let curve = [Point {
            step: 10,
            loss: 0.5,
            train_acc: 0.75,
            held_acc: None,
        }];
        let report = Report {
            state: "training",
            classes: vec![ClassReport {
                name: "cats".into(),
                photos: 3,
            }],
            step: 10,
            steps: 300,
            loss: Some(0.5),
            train_acc: Some(0.75),
            held_out: None,
            ms: None,
            backend: Some("cpu"),
            model: None,
            error: None,
            curve: &curve,
            adding: Some(Adding { done: 1, total: 2 }),
        };
        let v: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "state": "training",
                "classes": [{"name": "cats", "photos": 3}],
                "step": 10, "steps": 300, "loss": 0.5, "train_acc": 0.75,
                "held_out": null, "ms": null, "backend": "cpu", "model": null, "error": null,
                "curve": [{"step": 10, "loss": 0.5, "train_acc": 0.75, "held_acc": null}],
                "adding": {"done": 1, "total": 2},
            })
        );
        let held = HeldReport {
            photos: 6,
            accuracy: Some(1.0),
            loss: None,
        };
        assert_eq!(
            serde_json::to_value(&held).unwrap(),
            serde_json::json!({"photos": 6, "accuracy": 1.0, "loss": null})
        );
        let t = Times {
            features: 1.0,
            training: 2.0,
            total: 3.5,
        };
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            serde_json::json!({"features": 1.0, "training": 2.0, "total": 3.5})
        );
    }
}
