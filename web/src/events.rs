//! What each control does: the page's event listeners.

use vit::rollout::HeadFusion;
use wasm_bindgen::JsCast;
use web_sys::{
    ClipboardEvent, DragEvent, Event, File, FileList, HtmlButtonElement, HtmlImageElement,
};

use crate::animate;
use crate::app::{self, App, Choice, Shared, spawn_task};
use crate::dom::{create, on, set_attr, set_text, window_target};
use crate::model::Backend;
use crate::ui::Ui;

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
            let entry = {
                let a = app.borrow();
                a.index.models.iter().find(|e| e.name == key).cloned()
            };
            match entry {
                Some(entry) => {
                    let label = format!("Loading model {}", entry.name);
                    spawn_task(&app, &label, app::load_published(app.clone(), entry));
                }
                None => spawn_task(
                    &app,
                    "Switching model",
                    app::select_cached(app.clone(), key),
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
                app::load_files(app.clone(), files),
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
            spawn_task(&app, "Running", app::run_inference(app.clone()));
        });
    }

    wire_animation(app);
    wire_heat(app);

    let app2 = app.clone();
    on(&window_target(), "resize", move |_: Event| {
        let a = app2.borrow();
        animate::kick(&a.stage);
        app::render_results(&a);
    });
}

/// Disables the WebGPU option when there is no adapter, saying why.
pub fn describe_backends(a: &App) {
    if a.backends.gpu.is_none() {
        let options = a.ui.backend_select.options();
        for i in 0..options.length() {
            if let Some(option) = options
                .item(i)
                .and_then(|o| o.dyn_into::<web_sys::HtmlOptionElement>().ok())
                && option.value() == "webgpu"
            {
                option.set_disabled(true);
                let why = a.backends.gpu_problem.as_deref().unwrap_or("no adapter");
                option.set_text(&format!("WebGPU (unavailable: {why})"));
            }
        }
    }
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
    if let Err(message) = app::check_size(&name, file.size()) {
        spawn_task(app, "Checking the file", async move { Err(message) });
        return;
    }
    let app2 = app.clone();
    spawn_task(app, &format!("Reading {name}"), async move {
        let bytes = crate::dom::read_file(&file).await?;
        app::set_image(app2, bytes, name).await
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
            app::render_heat(&a);
        });
    }
    {
        let app = app.clone();
        let select = fusion.clone();
        on(&fusion, "change", move |_: Event| {
            let mut a = app.borrow_mut();
            a.heat.fusion = select.value().parse().unwrap_or(HeadFusion::Mean);
            app::rerollout(&mut a);
        });
    }
    let app = app.clone();
    let input = discard.clone();
    on(&discard, "input", move |_: Event| {
        let mut a = app.borrow_mut();
        a.heat.discard = input.value().parse().unwrap_or(0.0);
        set_text(
            &a.ui.discard_out,
            &format!("{:.0}%", 100.0 * a.heat.discard),
        );
        app::rerollout(&mut a);
    });
}

/// One button per sample image, its thumbnail inside.
pub fn add_sample_buttons(app: &Shared, names: &[String]) {
    let container = app.borrow().ui.samples.clone();
    container.set_inner_html("");
    for name in names {
        let button: HtmlButtonElement = create("button");
        button.set_type("button");
        button.set_class_name("sample");
        set_attr(&button, "data-name", name);
        set_attr(&button, "aria-pressed", "false");
        let title = name
            .rsplit_once('.')
            .map_or(name.as_str(), |(stem, _)| stem);
        set_attr(&button, "aria-label", &format!("Sample image: {title}"));
        let img: HtmlImageElement = create("img");
        img.set_src(&format!("samples/{name}"));
        img.set_alt("");
        let _ = button.append_child(&img);
        let _ = container.append_child(&button);
        let app = app.clone();
        let name = name.clone();
        on(&button, "click", move |_: Event| {
            spawn_task(
                &app,
                &format!("Loading {name}"),
                app::load_sample(app.clone(), name.clone()),
            );
        });
    }
    if names.is_empty()
        && let Some(parent) = container.parent_element()
    {
        let _ = parent.set_attribute("hidden", "");
    }
}

/// Marks the sample button for the current image, if it is a sample.
pub fn mark_sample(ui: &Ui, name: &str) {
    let buttons = ui.samples.children();
    for i in 0..buttons.length() {
        if let Some(b) = buttons.item(i) {
            let pressed = b.get_attribute("data-name").as_deref() == Some(name);
            set_attr(&b, "aria-pressed", if pressed { "true" } else { "false" });
        }
    }
}
