//! The Teach panel's state: its classes and their photos, the run under way (or the last one),
//! and the taught model pair. Its report for `window.vitrine.teach()` is `report`'s, the
//! panel's texts `texts`'.
//!
//! Memory stays bounded: a photo is kept only as the model's RGB square (`side` x `side` x 3
//! bytes, 6.9 kB at 48 px) and a thumbnail canvas of at most
//! [`THUMB_SIDE`](crate::teach::squares::THUMB_SIDE) pixels; the file's bytes and the decoded
//! original are dropped as soon as the square is made. When the model changes size, the
//! engine resizes the squares it is sent (`vit::teach::resize_square`): the originals are gone.

use js_sys::Uint8Array;
use std::rc::Rc;

use serde::Serialize;
use web_sys::{HtmlElement, MediaStream};

use crate::protocol::Backend;
use crate::teach::curve::Point;
use crate::teach::panel::{ClassView, TeachUi};

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
    /// `NAME.bpk`'s bytes, as the engine sent them ([`crate::app::state::Source::Pair`]).
    pub bpk: Uint8Array,
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
        crate::platform::dom::set_attr(&el, "data-photo", &id.to_string());
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
}
