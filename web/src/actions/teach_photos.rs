//! The Teach panel's classes and photos: adding photos from files or the webcam (each cut to
//! the current model's square at once by the engine, and only that square kept), removing
//! photos and classes.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{File, HtmlElement};

use crate::app::state::{App, Model, Shared, spawn_task};
use crate::pictures::draw;
use crate::platform::dom::sleep;
use crate::protocol::{Reply, Request, SquareSource};
use crate::teach::squares::thumbnail;
use crate::teach::state::{Camera, Teach};
use crate::teach::texts::{adding_text, refusals_text};
use crate::teach::webcam;
use crate::worker::client::Engine;
use crate::worker::envelope::Attachments;

/// The webcam adds a photo every this many ms while "Take photo" is held, after a first wait.
const HOLD_FIRST_MS: i32 = 400;
const HOLD_EVERY_MS: i32 = 150;

/// Adds picked, dropped or pasted files to a class.
pub fn add_files(app: &Shared, class: u64, files: Vec<File>) {
    if files.is_empty() {
        return;
    }
    let task = add_photos(app.clone(), class, files);
    spawn_task(app, "Adding photos", task);
}

/// The progress of adding photos, unless a run has the bar.
fn show_adding(t: &Teach) {
    if t.phase.running() || t.add_jobs == 0 {
        return;
    }
    let (done, total) = t.adding;
    let text = adding_text(done, total);
    t.ui.set_progress(done as f64 / total.max(1) as f64, &text);
    t.ui.set_status(&text);
}

/// The model's square of a file or a webcam frame, made by the engine (read, decoded and
/// fitted, the rest dropped at once): its RGB bytes and side.
async fn square(
    engine: &Engine,
    model: &Model,
    source: impl FnOnce(&mut Attachments) -> SquareSource,
) -> Result<(Vec<u8>, u32), String> {
    let mut out = Attachments::default();
    let source = source(&mut out);
    let (reply, received) = engine
        .call(
            Request::Square {
                model: model.id,
                source,
            },
            out,
        )
        .await?;
    match reply {
        Reply::Square { rgb, side } => Ok((received.bytes(rgb)?, side)),
        other => Err(format!("the engine answered {other:?} to a photo")),
    }
}

/// The model's square of one file.
async fn read_square(
    engine: &Engine,
    model: &Model,
    file: &File,
) -> Result<(Vec<u8>, u32), String> {
    let name = file.name();
    crate::actions::images::check_size(&name, file.size())?;
    square(engine, model, |out| SquareSource::File {
        file: out.value(file.clone().into()),
        name,
    })
    .await
}

/// The thumbnail element of a square (what the model sees, small).
fn thumb_of(square: &[u8], side: u32) -> HtmlElement {
    let canvas = draw::bitmap(&thumbnail(square, side));
    crate::teach::panel::thumb(&canvas)
}

async fn add_photos(app: Shared, class: u64, files: Vec<File>) -> Result<(), String> {
    let (target, engine) = {
        let a = app.borrow();
        (a.model.clone(), a.engine.clone())
    };
    let Some(model) = target else {
        let message = "The model is still loading: add photos once it is ready.".to_string();
        let mut a = app.borrow_mut();
        a.teach.error = Some(message.clone());
        a.teach.ui.set_status(&message);
        return Err(message);
    };
    let offered = files.len();
    {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        if t.add_jobs == 0 {
            t.adding = (0, 0);
        }
        t.add_jobs += 1;
        t.adding.1 += offered;
        t.error = None;
        t.last_class = Some(class);
        show_adding(t);
    }
    let mut refused = Vec::new();
    let (mut taken, mut seen, mut full) = (0, 0, false);
    for file in &files {
        let room = app.borrow().teach.room(class);
        match room {
            None => break, // the class was removed meanwhile
            Some(0) => {
                full = true;
                break;
            }
            Some(_) => {}
        }
        seen += 1;
        let result = read_square(&engine, &model, file).await;
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        match result {
            Ok((square, size)) => {
                let el = thumb_of(&square, size);
                if t.add_photo(class, size, square, el) {
                    taken += 1;
                } else if t.class(class).is_some() {
                    full = true;
                }
            }
            Err(message) => refused.push(message),
        }
        t.adding.0 += 1;
        show_adding(t);
    }
    let mut a = app.borrow_mut();
    let t = &mut a.teach;
    t.adding.0 += offered - seen; // the ones skipped count as handled
    t.add_jobs -= 1;
    let name = t.class(class).map(|c| c.name());
    let message = refusals_text(&refused, taken, offered, full);
    if t.add_jobs == 0 {
        t.adding = (0, 0);
        if !t.phase.running() {
            t.ui.set_progress(0.0, "");
        }
    }
    if !message.is_empty() {
        t.error = Some(message.clone());
        if !t.phase.running() {
            t.ui.set_status(&message);
        }
        return Err(message);
    }
    if !t.phase.running() && t.add_jobs == 0 {
        let added = match (taken, name) {
            (1, Some(n)) => format!("Added 1 photo to {n}."),
            (k, Some(n)) => format!("Added {k} photos to {n}."),
            (_, None) => "The class was removed before its photos were in.".into(),
        };
        t.ui.set_status(&added);
    }
    Ok(())
}

/// Moves the keyboard focus, with no borrow of the state held: focusing dispatches `focusin`
/// at once, and the panel's listener for it borrows the state.
pub(crate) fn focus(el: Option<HtmlElement>) {
    if let Some(el) = el {
        let _ = el.focus();
    }
}

/// Removes one photo (its × button) and moves the focus to its neighbour's.
pub(crate) fn remove_photo(app: &Shared, photo: u64) {
    let next = {
        let mut a = app.borrow_mut();
        a.teach.remove_photo(photo).and_then(|(class, next)| {
            a.teach.last_class = Some(class);
            next.and_then(|el| el.query_selector("button").ok().flatten())
                .and_then(|b| b.dyn_into::<HtmlElement>().ok())
                .or_else(|| a.teach.class(class).map(|c| c.view.root.clone()))
        })
    };
    focus(next);
}

// ---------- classes ----------

/// "Add a class": a new empty class, its name ready to type over.
pub(crate) fn add_class(app: &Shared) {
    let name = {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        let id = t.add_class();
        t.last_class = id.or(t.last_class);
        id.and_then(|id| t.class(id)).map(|c| c.view.name.clone())
    };
    if let Some(name) = name {
        let _ = name.focus();
        name.select();
    }
}

pub(crate) fn remove_class(app: &Shared, id: u64) {
    let next = {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        if t.camera.as_ref().is_some_and(|c| c.class == id) {
            close_camera(t);
        }
        let Some(i) = t.index_of(id) else { return };
        t.remove_class(id);
        // The focus goes to the class now in its place, or to "Add a class".
        match t.classes.get(i).or_else(|| t.classes.last()) {
            Some(c) => HtmlElement::from(c.view.name.clone()),
            None => HtmlElement::from(t.ui.add_class.clone()),
        }
    };
    focus(Some(next));
}

// ---------- webcam ----------

/// Shows the camera box in class `class`, above its thumbnails.
fn place_camera(t: &Teach, class: u64) {
    let Some(c) = t.class(class) else { return };
    let _ = c
        .view
        .root
        .insert_before(&t.ui.camera, Some(&c.view.thumbs));
    t.ui.camera.set_hidden(false);
    let text = format!(
        "Adding to {}: press “Take photo” (hold it for a burst).",
        c.name()
    );
    crate::platform::dom::set_text(&t.ui.camera_note, &text);
}

/// Stops the camera and puts its box away.
pub(crate) fn close_camera(t: &mut Teach) {
    if let Some(c) = t.camera.take() {
        webcam::stop(&c.stream);
    }
    t.camera_opening = false;
    t.snap_hold += 1;
    t.ui.video.set_src_object(None);
    t.ui.camera.set_hidden(true);
    let _ = t.ui.card.append_child(&t.ui.camera);
}

/// The "Webcam" button of a class: asks for the camera (the first time), or moves the open
/// camera to this class.
pub(crate) fn open_camera(app: &Shared, class: u64) {
    {
        let mut a = app.borrow_mut();
        let t = &mut a.teach;
        t.last_class = Some(class);
        if let Some(cam) = t.camera.as_mut() {
            cam.class = class;
            place_camera(t, class);
            let snap = HtmlElement::from(t.ui.snap.clone());
            drop(a);
            focus(Some(snap));
            return;
        }
        if t.camera_opening {
            return;
        }
        t.camera_opening = true;
        t.ui.set_status("Asking for the webcam…");
    }
    let app = app.clone();
    spawn_local(async move {
        let video = app.borrow().teach.ui.video.clone();
        let result = webcam::open(&video).await;
        let mut a = app.borrow_mut();
        let wanted = std::mem::replace(&mut a.teach.camera_opening, false);
        match result {
            Ok(stream) if !wanted || a.teach.class(class).is_none() => webcam::stop(&stream),
            Ok(stream) => {
                let t = &mut a.teach;
                t.camera = Some(Camera { stream, class });
                place_camera(t, class);
                t.ui.set_status("Webcam on.");
                let snap = HtmlElement::from(t.ui.snap.clone());
                drop(a);
                focus(Some(snap));
            }
            Err(message) => {
                a.teach.ui.video.set_src_object(None);
                a.teach.error = Some(message.clone());
                a.teach.ui.set_status(&message);
                a.ui.show_alert(&message);
            }
        }
    });
}

/// Adds the webcam's current frame to its class; false when there is none to add.
pub(crate) async fn snap(app: &Shared) -> bool {
    let (model, engine, class, frame) = {
        let a = app.borrow();
        let Some(model) = a.model.clone() else {
            a.teach
                .ui
                .set_status("The model is still loading: take photos once it is ready.");
            return false;
        };
        let t = &a.teach;
        let Some(class) = t.camera.as_ref().map(|c| c.class) else {
            return false;
        };
        let Some(frame) = webcam::frame(&t.ui.video) else {
            t.ui.set_status("The webcam has no picture yet: try again in a moment.");
            return false;
        };
        (model, a.engine.clone(), class, frame)
    };
    let side = frame.width();
    let made = square(&engine, &model, |out| SquareSource::Frame {
        rgb: out.bytes(frame.as_raw()),
        side,
    })
    .await;
    let mut guard = app.borrow_mut();
    let a: &mut App = &mut guard;
    let t = &mut a.teach;
    let (square, size) = match made {
        Ok(s) => s,
        Err(e) => {
            t.ui.set_status(&e);
            return false;
        }
    };
    let el = thumb_of(&square, size);
    if !t.add_photo(class, size, square, el) {
        let text = format!(
            "This class is full: a class holds at most {} photos.",
            vit::teach::MAX_PHOTOS_PER_CLASS
        );
        t.ui.set_status(&text);
        return false;
    }
    t.last_class = Some(class);
    if let Some(c) = t.class(class) {
        let text = format!(
            "{}: {}.",
            c.name(),
            crate::teach::panel::photos_text(c.photos.len())
        );
        t.ui.set_status(&text);
    }
    true
}

/// "Take photo" held down: a photo every [`HOLD_EVERY_MS`] after [`HOLD_FIRST_MS`], until it
/// is let go (the click that ends the press adds one more, as a click does).
pub(crate) fn hold_snap(app: &Shared) {
    let hold = {
        let mut a = app.borrow_mut();
        a.teach.snap_hold += 1;
        a.teach.snap_hold
    };
    let app = app.clone();
    spawn_local(async move {
        sleep(HOLD_FIRST_MS).await;
        loop {
            // Read and released before `snap` borrows the state.
            let held = app.borrow().teach.snap_hold == hold;
            if !held || !snap(&app).await {
                break;
            }
            sleep(HOLD_EVERY_MS).await;
        }
    });
}

// ---------- training ----------
