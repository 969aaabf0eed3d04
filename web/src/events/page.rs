//! What each control does: the page's event listeners. The top layer: it calls the actions
//! (`actions`: startup, loading, images, inference; and `view::results`); the explorer's and
//! the Teach panel's listeners are `events::explorer`'s and `events::teach`'s, which [`wire`]
//! calls. Nothing calls back into it.

use std::cell::RefCell;
use std::rc::Rc;

use vit::preprocess::Crop;
use vit::rollout::HeadFusion;
use web_sys::{
    ClipboardEvent, DragEvent, Event, File, FileList, KeyboardEvent, MouseEvent, PointerEvent,
};

use crate::actions::{hub, images, inference, loading, picture};
use crate::app::state::{Choice, Shared, spawn_task};
use crate::pictures::animate;
use crate::pictures::crop::{self, Gesture};
use crate::platform::dom::{on, set_text, window_target};
use crate::protocol::Backend;
use crate::view::results;

pub fn wire(app: &Shared) {
    let ui_targets = {
        let a = app.borrow();
        (
            a.ui.file_input.clone(),
            a.ui.alert_close.clone(),
            a.ui.model_select.clone(),
            a.ui.model_files.clone(),
            a.ui.backend_select.clone(),
        )
    };
    let (file_input, alert_close, model_select, model_files, backend_select) = ui_targets;

    // Images: picker, drag and drop anywhere on the page, paste.
    {
        let app = app.clone();
        let input = file_input.clone();
        on(&file_input, "change", move |_: Event| {
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                take_file(&app, file);
            }
            input.set_value(""); // picking the same file again still fires `change`
        });
    }
    wire_drop(app);
    {
        let app = app.clone();
        on(&window_target(), "paste", move |e: ClipboardEvent| {
            if crate::events::teach::focus_in_panel() {
                return; // the Teach panel's own paste handler adds it to a class
            }
            let files = e.clipboard_data().and_then(|d| d.files());
            if let Some(file) = files.as_ref().and_then(first_image) {
                e.prevent_default();
                take_file(&app, file);
            }
        });
    }
    {
        let app = app.clone();
        on(&alert_close, "click", move |_: Event| {
            app.borrow().ui.hide_alert();
        });
    }

    // Models.
    {
        let app = app.clone();
        let select = model_select.clone();
        on(&model_select, "change", move |_: Event| {
            let key = select.value();
            if key.starts_with(vit::hub::PREFIX) {
                let label = format!("Loading {key}");
                spawn_task(&app, &label, hub::load_hub(app.clone(), key));
                return;
            }
            let entry = {
                let a = app.borrow();
                a.index.models.iter().find(|e| e.name == key).cloned()
            };
            match entry {
                Some(entry) => {
                    let label = format!("Loading model {}", entry.name);
                    spawn_task(&app, &label, loading::load_published(app.clone(), entry));
                }
                None => spawn_task(
                    &app,
                    "Switching model",
                    loading::select_cached(app.clone(), key),
                ),
            }
        });
    }
    {
        let app = app.clone();
        let input = model_files.clone();
        on(&model_files, "change", move |_: Event| {
            let files = input.files().map(|l| list(&l)).unwrap_or_default();
            input.set_value("");
            spawn_task(
                &app,
                "Loading model files",
                loading::load_files(app.clone(), files),
            );
        });
    }
    {
        let app = app.clone();
        let select = backend_select.clone();
        on(&backend_select, "change", move |_: Event| {
            let choice = match select.value().as_str() {
                "webgpu" => Choice::Fixed(Backend::WebGpu),
                "cpu" => Choice::Fixed(Backend::Cpu),
                _ => Choice::Auto,
            };
            app.borrow_mut().choice = choice;
            spawn_task(&app, "Running", inference::run_inference(app.clone()));
        });
    }

    wire_animation(app);
    wire_heat(app);
    wire_crop(app);
    crate::events::hub::wire(app);
    crate::events::explorer::wire(app);
    crate::events::teach::wire(app);

    let app2 = app.clone();
    on(&window_target(), "resize", move |_: Event| {
        let a = app2.borrow();
        animate::kick(&a.stage);
        results::render_results(&a);
        picture::draw_cropper(&a);
    });
}

/// Makes a click on a sample button (`Ui::show_samples` makes them, and remakes them when the
/// model asks for another set) load its image.
pub fn wire_samples(app: &Shared) {
    let container = app.borrow().ui.samples.clone();
    let app = app.clone();
    on(&container, "click", move |e: MouseEvent| {
        let name = e
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .and_then(|t| t.closest("button[data-name]").ok().flatten())
            .and_then(|b| b.get_attribute("data-name"));
        if let Some(name) = name {
            spawn_task(
                &app,
                &format!("Loading {name}"),
                images::load_sample(app.clone(), name),
            );
        }
    });
}

fn list(files: &FileList) -> Vec<File> {
    (0..files.length()).filter_map(|i| files.get(i)).collect()
}

fn first_image(files: &FileList) -> Option<File> {
    let all = list(files);
    all.iter()
        .find(|f| f.type_().starts_with("image/"))
        .cloned()
        .or_else(|| all.into_iter().next())
}

/// Reads a user's file (after a size check) and shows it.
fn take_file(app: &Shared, file: File) {
    let name = file.name();
    if let Err(message) = images::check_size(&name, file.size()) {
        spawn_task(app, "Checking the file", async move { Err(message) });
        return;
    }
    let app2 = app.clone();
    spawn_task(app, &format!("Reading {name}"), async move {
        let bytes = crate::platform::dom::read_file(&file).await?;
        images::set_image(app2, bytes, name).await
    });
}

fn wire_drop(app: &Shared) {
    let drop_zone = app.borrow().ui.drop.clone();
    let target = window_target();
    {
        let zone = drop_zone.clone();
        on(&target, "dragover", move |e: DragEvent| {
            e.prevent_default(); // allows dropping
            let _ = zone.class_list().add_1("over");
        });
    }
    {
        let zone = drop_zone.clone();
        on(&target, "dragleave", move |e: DragEvent| {
            // Leaving the window (no related target) ends the hover state.
            if e.related_target().is_none() {
                let _ = zone.class_list().remove_1("over");
            }
        });
    }
    let app = app.clone();
    on(&target, "drop", move |e: DragEvent| {
        e.prevent_default();
        let _ = drop_zone.class_list().remove_1("over");
        let files = e.data_transfer().and_then(|d| d.files());
        match files.as_ref().and_then(first_image) {
            Some(file) => take_file(&app, file),
            None => spawn_task(&app, "Dropping", async {
                Err("That was not a file. Drop an image file (JPEG, PNG, WebP, GIF or BMP).".into())
            }),
        }
    });
}

fn wire_animation(app: &Shared) {
    let (play, replay, speed) = {
        let a = app.borrow();
        (a.ui.play.clone(), a.ui.replay.clone(), a.ui.speed.clone())
    };
    {
        let app = app.clone();
        on(&play, "click", move |_: Event| {
            let a = app.borrow();
            a.stage.borrow_mut().toggle();
            animate::kick(&a.stage);
        });
    }
    {
        let app = app.clone();
        on(&replay, "click", move |_: Event| {
            let a = app.borrow();
            // An explicit replay animates even under reduced motion: the person asked for it.
            a.stage.borrow_mut().replay(false);
            animate::kick(&a.stage);
        });
    }
    {
        let app = app.clone();
        let input = speed.clone();
        on(&speed, "input", move |_: Event| {
            let a = app.borrow();
            let v: f64 = input.value().parse().unwrap_or(1.0);
            a.stage.borrow_mut().speed = v;
            set_text(&a.ui.speed_out, &format!("{v}×"));
        });
    }
}

fn wire_heat(app: &Shared) {
    let (opacity, fusion, discard) = {
        let a = app.borrow();
        (
            a.ui.opacity.clone(),
            a.ui.fusion.clone(),
            a.ui.discard.clone(),
        )
    };
    {
        let app = app.clone();
        let input = opacity.clone();
        on(&opacity, "input", move |_: Event| {
            let mut a = app.borrow_mut();
            a.heat.opacity = input.value().parse().unwrap_or(0.65);
            set_text(
                &a.ui.opacity_out,
                &format!("{:.0}%", 100.0 * a.heat.opacity),
            );
            results::render_heat(&a);
        });
    }
    {
        let app = app.clone();
        let select = fusion.clone();
        on(&fusion, "change", move |_: Event| {
            app.borrow_mut().heat.fusion = select.value().parse().unwrap_or(HeadFusion::Mean);
            inference::reheat(&app);
        });
    }
    let app = app.clone();
    let input = discard.clone();
    on(&discard, "input", move |_: Event| {
        {
            let mut a = app.borrow_mut();
            a.heat.discard = input.value().parse().unwrap_or(0.0);
            set_text(
                &a.ui.discard_out,
                &format!("{:.0}%", 100.0 * a.heat.discard),
            );
        }
        inference::reheat(&app);
    });
}

/// A drag of the square under way: where it started, in screen and photo pixels.
struct Drag {
    gesture: Gesture,
    pointer: i32,
    from: (f64, f64),
    start: Crop,
    /// Photo pixels per CSS pixel of the frame.
    scale: f64,
    size: (u32, u32),
}

/// The square on the photo: dragged (inside to move it, by its corner to resize it), moved
/// with the keyboard, or put back in the centre.
fn wire_crop(app: &Shared) {
    let (square, handle, reset, frame) = {
        let a = app.borrow();
        (
            a.ui.crop_square.clone(),
            a.ui.crop_handle.clone(),
            a.ui.crop_reset.clone(),
            a.ui.crop_frame.clone(),
        )
    };
    let drag: Rc<RefCell<Option<Drag>>> = Rc::new(RefCell::new(None));
    {
        let (app, drag, el) = (app.clone(), drag.clone(), square.clone());
        on(&square, "pointerdown", move |e: PointerEvent| {
            let Some((start, size)) = newest_square(&app) else {
                return;
            };
            let on_handle = e.target().is_some_and(|t| {
                wasm_bindgen::JsValue::from(t) == wasm_bindgen::JsValue::from(&handle)
            });
            let width = frame.client_width().max(1) as f64;
            e.prevent_default();
            // Keeps the moves coming when the pointer leaves the square mid-drag; a synthetic
            // event has no pointer to capture, which changes nothing else.
            let _ = el.set_pointer_capture(e.pointer_id());
            let _ = el.focus();
            *drag.borrow_mut() = Some(Drag {
                gesture: if on_handle {
                    Gesture::Resize
                } else {
                    Gesture::Move
                },
                pointer: e.pointer_id(),
                from: (e.client_x() as f64, e.client_y() as f64),
                start,
                scale: size.0 as f64 / width,
                size,
            });
        });
    }
    {
        let (app, drag) = (app.clone(), drag.clone());
        on(&square, "pointermove", move |e: PointerEvent| {
            let next = drag.borrow().as_ref().and_then(|d| {
                (d.pointer == e.pointer_id()).then(|| {
                    let dx = (e.client_x() as f64 - d.from.0) * d.scale;
                    let dy = (e.client_y() as f64 - d.from.1) * d.scale;
                    crop::dragged(d.start, d.gesture, dx, dy, d.size.0, d.size.1)
                })
            });
            if let Some(c) = next {
                images::move_crop(&app, Some(c));
            }
        });
    }
    for event in ["pointerup", "pointercancel", "lostpointercapture"] {
        let drag = drag.clone();
        on(&square, event, move |e: PointerEvent| {
            let mut d = drag.borrow_mut();
            if d.as_ref().is_some_and(|d| d.pointer == e.pointer_id()) {
                *d = None;
            }
        });
    }
    {
        let app = app.clone();
        on(&square, "keydown", move |e: KeyboardEvent| {
            let Some((current, (w, h))) = newest_square(&app) else {
                return;
            };
            let key = e.key();
            if key == "Home" {
                e.prevent_default();
                images::move_crop(&app, None);
            } else if let Some(c) = crop::keyed(current, &key, e.shift_key(), w, h) {
                e.prevent_default();
                images::move_crop(&app, Some(c));
            }
        });
    }
    let app = app.clone();
    on(&reset, "click", move |_: Event| {
        images::move_crop(&app, None)
    });
}

/// The square most recently asked for (it may not have been run yet) and the photo's size.
fn newest_square(app: &Shared) -> Option<(Crop, (u32, u32))> {
    let a = app.borrow();
    let p = a.picture.as_ref()?;
    Some((a.crop_next.square(p.square(), p.original), p.original))
}
