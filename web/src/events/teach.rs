//! The Teach panel's listeners, delegated to the panel (one per kind of event), so classes and
//! photos added by the hundred need none of their own.

use vit::teach::TeachConfig;
use wasm_bindgen::JsCast;
use web_sys::{
    ClipboardEvent, DragEvent, Element, Event, File, FileList, HtmlElement, HtmlInputElement,
    KeyboardEvent, MouseEvent, PointerEvent,
};

use crate::app::state::Shared;
use crate::platform::dom::{document, on, window_target};

use crate::actions::teach_photos::{
    add_class, add_files, close_camera, focus, hold_snap, open_camera, remove_class, remove_photo,
    snap,
};
use crate::actions::teach_training::{download_pair, draw_curve, mode_of, refuse, stop, train};

/// Whether the keyboard focus is in the Teach panel: a paste then goes to a class, not to
/// the main photo (`events::page`'s page-wide paste handler asks this first).
pub fn focus_in_panel() -> bool {
    let doc = document();
    match (doc.active_element(), doc.get_element_by_id("teach-card")) {
        (Some(active), Some(card)) => card.contains(Some(&active)),
        _ => false,
    }
}

/// The id of the class `el` is in, if any.
fn class_of(el: &Element) -> Option<u64> {
    el.closest(".teach-class")
        .ok()
        .flatten()?
        .get_attribute("data-id")?
        .parse()
        .ok()
}

fn target_element(e: &Event) -> Option<Element> {
    e.target().and_then(|t| t.dyn_into::<Element>().ok())
}

fn list(files: &FileList) -> Vec<File> {
    (0..files.length()).filter_map(|i| files.get(i)).collect()
}

/// The panel's listeners. Class and photo buttons, pickers, drops and focus are delegated to
/// the panel; a paste is taken page-wide while the focus is in the panel.
pub fn wire(app: &Shared) {
    let (card, ui_add, train_b, stop_b, download_b, mode, snap_b, close_b, camera) = {
        let a = app.borrow();
        let u = &a.teach.ui;
        (
            u.card.clone(),
            u.add_class.clone(),
            u.train.clone(),
            u.stop.clone(),
            u.download.clone(),
            u.mode.clone(),
            u.snap.clone(),
            u.camera_close.clone(),
            u.camera.clone(),
        )
    };
    {
        let app = app.clone();
        on(&ui_add, "click", move |_: Event| add_class(&app));
    }
    {
        let app = app.clone();
        on(&train_b, "click", move |_: Event| train(&app));
    }
    {
        let app = app.clone();
        on(&stop_b, "click", move |_: Event| stop(&app));
    }
    {
        let app = app.clone();
        on(&download_b, "click", move |_: Event| download_pair(&app));
    }
    {
        // Each mode's own default steps.
        let app = app.clone();
        let select = mode.clone();
        on(&mode, "change", move |_: Event| {
            let steps = TeachConfig::new(mode_of(&select.value())).steps;
            app.borrow().teach.ui.steps.set_value(&steps.to_string());
        });
    }

    // The webcam: a click takes a photo, a press held takes more; Escape or Close ends it.
    {
        let app = app.clone();
        on(&snap_b, "click", move |_: Event| {
            let app = app.clone();
            wasm_bindgen_futures::spawn_local(async move {
                snap(&app).await;
            });
        });
    }
    {
        let app = app.clone();
        on(&snap_b, "pointerdown", move |e: PointerEvent| {
            if e.button() == 0 {
                hold_snap(&app);
            }
        });
    }
    for event in ["pointerup", "pointerleave", "pointercancel"] {
        let app = app.clone();
        on(&snap_b, event, move |_: PointerEvent| {
            app.borrow_mut().teach.snap_hold += 1;
        });
    }
    {
        let app = app.clone();
        on(&close_b, "click", move |_: Event| {
            let back = {
                let mut a = app.borrow_mut();
                let class = a.teach.camera.as_ref().map(|c| c.class);
                close_camera(&mut a.teach);
                a.teach.ui.set_status("Webcam off.");
                class
                    .and_then(|c| a.teach.class(c))
                    .map(|c| HtmlElement::from(c.view.webcam.clone()))
            };
            focus(back);
        });
    }
    {
        let app = app.clone();
        on(&camera, "keydown", move |e: KeyboardEvent| {
            if e.key() == "Escape" {
                let mut a = app.borrow_mut();
                close_camera(&mut a.teach);
                a.teach.ui.set_status("Webcam off.");
            }
        });
    }

    // Delegated: the buttons of classes and photos.
    {
        let app = app.clone();
        on(&card, "click", move |e: MouseEvent| {
            let Some(el) = target_element(&e) else { return };
            let class = class_of(&el);
            if let Some(c) = class {
                app.borrow_mut().teach.last_class = Some(c);
            }
            let button = |selector: &str| el.closest(selector).ok().flatten();
            if let Some(b) = button("button.teach-remove-photo") {
                let photo = b
                    .closest(".teach-thumb")
                    .ok()
                    .flatten()
                    .and_then(|t| t.get_attribute("data-photo"))
                    .and_then(|p| p.parse().ok());
                if let Some(photo) = photo {
                    remove_photo(&app, photo);
                }
            } else if button("button.teach-remove-class").is_some() {
                if let Some(c) = class {
                    remove_class(&app, c);
                }
            } else if button("button.teach-webcam").is_some()
                && let Some(c) = class
            {
                open_camera(&app, c);
            }
        });
    }
    {
        let app = app.clone();
        on(&card, "change", move |e: Event| {
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            else {
                return;
            };
            if !input.class_list().contains("teach-files") {
                return;
            }
            let files = input.files().map(|l| list(&l)).unwrap_or_default();
            input.set_value(""); // picking the same files again still fires `change`
            if let Some(c) = class_of(&input) {
                add_files(&app, c, files);
            }
        });
    }
    {
        let app = app.clone();
        on(&card, "focusin", move |e: Event| {
            if let (Some(c), Ok(mut a)) = (
                target_element(&e).as_ref().and_then(class_of),
                app.try_borrow_mut(),
            ) {
                a.teach.last_class = Some(c);
            }
        });
    }
    wire_drop(app, &card);
    {
        let app = app.clone();
        on(&window_target(), "paste", move |e: ClipboardEvent| {
            if !focus_in_panel() {
                return; // the main photo's paste (events.rs)
            }
            let files = e
                .clipboard_data()
                .and_then(|d| d.files())
                .map(|l| list(&l))
                .unwrap_or_default();
            if files.is_empty() {
                return; // text pastes into the name fields as usual
            }
            e.prevent_default();
            let class = {
                let a = app.borrow();
                let t = &a.teach;
                document()
                    .active_element()
                    .as_ref()
                    .and_then(class_of)
                    .or(t.last_class.filter(|c| t.class(*c).is_some()))
                    .or(t.classes.first().map(|c| c.id))
            };
            match class {
                Some(c) => add_files(&app, c, files),
                None => refuse(
                    &app,
                    "Add a class first: pasted photos go into a class.".into(),
                ),
            }
        });
    }
    {
        let app = app.clone();
        on(&window_target(), "resize", move |_: Event| {
            if let Ok(a) = app.try_borrow() {
                draw_curve(&a.teach);
            }
        });
    }
    let a = app.borrow();
    a.teach.ui.set_running(false, false);
    draw_curve(&a.teach);
}

/// Drops onto a class add to it; the page-wide drop (the main photo) never sees drops on the
/// panel.
fn wire_drop(app: &Shared, card: &HtmlElement) {
    let mark = |card: &HtmlElement, over: Option<&Element>| {
        if let Ok(marked) = card.query_selector_all(".teach-class.over") {
            for i in 0..marked.length() {
                if let Some(el) = marked.item(i).and_then(|n| n.dyn_into::<Element>().ok()) {
                    let _ = el.class_list().remove_1("over");
                }
            }
        }
        if let Some(el) = over {
            let _ = el.class_list().add_1("over");
        }
    };
    {
        let app = app.clone();
        let card2 = card.clone();
        on(card, "dragover", move |e: DragEvent| {
            e.prevent_default(); // allows dropping here
            e.stop_propagation(); // not the main photo's drop zone
            if let Some(d) = e.data_transfer() {
                d.set_drop_effect("copy");
            }
            let _ = app.borrow().ui.drop.class_list().remove_1("over");
            let class = target_element(&e).and_then(|el| el.closest(".teach-class").ok().flatten());
            mark(&card2, class.as_ref());
        });
    }
    {
        let card2 = card.clone();
        on(card, "dragleave", move |e: DragEvent| {
            let inside = e
                .related_target()
                .and_then(|t| t.dyn_into::<web_sys::Node>().ok())
                .is_some_and(|n| card2.contains(Some(&n)));
            if !inside {
                mark(&card2, None);
            }
        });
    }
    let app = app.clone();
    let card2 = card.clone();
    on(card, "drop", move |e: DragEvent| {
        e.prevent_default();
        e.stop_propagation();
        mark(&card2, None);
        let _ = app.borrow().ui.drop.class_list().remove_1("over");
        let files = e
            .data_transfer()
            .and_then(|d| d.files())
            .map(|l| list(&l))
            .unwrap_or_default();
        let class = target_element(&e).as_ref().and_then(class_of);
        match (class, files.is_empty()) {
            (_, true) => refuse(
                &app,
                "That was not a file: drop photos (JPEG, PNG, WebP, GIF or BMP) onto a class."
                    .into(),
            ),
            (Some(c), false) => add_files(&app, c, files),
            (None, false) => refuse(
                &app,
                "Drop photos onto one of the classes (the main photo takes drops outside this panel)."
                    .into(),
            ),
        }
    });
}
