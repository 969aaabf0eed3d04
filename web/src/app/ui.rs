//! Handles on the page's elements (ids from index.html) and the small text updates on them.

use vit::preprocess::Crop;
use wasm_bindgen::JsCast;
use web_sys::{
    HtmlButtonElement, HtmlCanvasElement, HtmlElement, HtmlImageElement, HtmlInputElement,
    HtmlSelectElement,
};

use crate::platform::dom::{by_id, create, fill_progress, human_bytes, set_attr, set_text};

pub struct Ui {
    pub body: HtmlElement,
    pub status: HtmlElement,
    pub alert: HtmlElement,
    pub alert_text: HtmlElement,
    pub alert_close: HtmlButtonElement,
    pub file_input: HtmlInputElement,
    pub drop: HtmlElement,
    pub samples: HtmlElement,
    pub current: HtmlElement,
    pub cropper: HtmlElement,
    pub crop_frame: HtmlElement,
    pub crop_photo: HtmlCanvasElement,
    pub crop_square: HtmlElement,
    pub crop_handle: HtmlElement,
    pub crop_where: HtmlElement,
    pub crop_reset: HtmlButtonElement,
    pub model_select: HtmlSelectElement,
    pub model_info: HtmlElement,
    pub model_classes: HtmlElement,
    pub progress: HtmlElement,
    pub progress_bar: HtmlElement,
    pub progress_text: HtmlElement,
    pub model_files: HtmlInputElement,
    pub hub_form: HtmlElement,
    pub hub_name: HtmlInputElement,
    pub hub_forget: HtmlButtonElement,
    pub backend_select: HtmlSelectElement,
    pub time_gpu: HtmlElement,
    pub time_cpu: HtmlElement,
    pub play: HtmlButtonElement,
    pub replay: HtmlButtonElement,
    pub speed: HtmlInputElement,
    pub speed_out: HtmlElement,
    pub stage: HtmlCanvasElement,
    pub bars: HtmlCanvasElement,
    pub verdict: HtmlElement,
    pub damage: HtmlElement,
    pub pred_list: HtmlElement,
    pub pred_meta: HtmlElement,
    pub heat: HtmlCanvasElement,
    pub opacity: HtmlInputElement,
    pub opacity_out: HtmlElement,
    pub fusion: HtmlSelectElement,
    pub discard: HtmlInputElement,
    pub discard_out: HtmlElement,
    pub heads: HtmlCanvasElement,
}

impl Ui {
    pub fn find() -> Self {
        Self {
            body: crate::platform::dom::document()
                .body()
                .expect("the page has a body"),
            status: by_id("status"),
            alert: by_id("alert"),
            alert_text: by_id("alert-text"),
            alert_close: by_id("alert-close"),
            file_input: by_id("file-input"),
            drop: by_id("drop"),
            samples: by_id("samples"),
            current: by_id("current"),
            cropper: by_id("cropper"),
            crop_frame: by_id("crop-frame"),
            crop_photo: by_id("crop-photo"),
            crop_square: by_id("crop-square"),
            crop_handle: by_id("crop-handle"),
            crop_where: by_id("crop-where"),
            crop_reset: by_id("crop-reset"),
            model_select: by_id("model-select"),
            model_info: by_id("model-info"),
            model_classes: by_id("model-classes"),
            progress: by_id("progress"),
            progress_bar: by_id("progress-bar"),
            progress_text: by_id("progress-text"),
            model_files: by_id("model-files"),
            hub_form: by_id("hub-form"),
            hub_name: by_id("hub-name"),
            hub_forget: by_id("hub-forget"),
            backend_select: by_id("backend-select"),
            time_gpu: by_id("time-webgpu"),
            time_cpu: by_id("time-cpu"),
            play: by_id("play"),
            replay: by_id("replay"),
            speed: by_id("speed"),
            speed_out: by_id("speed-out"),
            stage: by_id("stage"),
            bars: by_id("bars"),
            verdict: by_id("verdict"),
            damage: by_id("damage"),
            pred_list: by_id("pred-list"),
            pred_meta: by_id("pred-meta"),
            heat: by_id("heat"),
            opacity: by_id("opacity"),
            opacity_out: by_id("opacity-out"),
            fusion: by_id("fusion"),
            discard: by_id("discard"),
            discard_out: by_id("discard-out"),
            heads: by_id("heads"),
        }
    }

    /// Shows a problem in the alert region (announced by screen readers).
    pub fn show_alert(&self, message: &str) {
        set_text(&self.alert_text, message);
        self.alert.set_hidden(false);
    }

    pub fn hide_alert(&self) {
        self.alert.set_hidden(true);
        set_text(&self.alert_text, "");
    }

    /// The weights download bar; `None` hides it.
    pub fn set_progress(&self, progress: Option<(u64, u64)>) {
        let Some((got, total)) = progress else {
            self.progress.set_hidden(true);
            return;
        };
        self.progress.set_hidden(false);
        let percent = if total > 0 {
            100.0 * got as f64 / total as f64
        } else {
            0.0
        };
        let label = if total > 0 {
            format!(
                "{} of {}",
                human_bytes(got as f64),
                human_bytes(total as f64)
            )
        } else {
            human_bytes(got as f64)
        };
        fill_progress(
            &self.progress,
            &self.progress_bar,
            &self.progress_text,
            percent,
            &label,
        );
    }

    /// Replaces the model select's options: groups of `(value, text)` pairs under a heading
    /// (an empty group is left out), with `selected` chosen.
    pub fn set_model_options(&self, groups: &[(&str, Vec<(String, String)>)], selected: &str) {
        self.model_select.set_inner_html("");
        for (heading, options) in groups.iter().filter(|(_, o)| !o.is_empty()) {
            let group: web_sys::HtmlElement = create("optgroup");
            set_attr(&group, "label", heading);
            for (value, label) in options {
                let option: web_sys::HtmlOptionElement = create("option");
                option.set_value(value);
                option.set_text(label);
                let _ = group.append_child(&option);
            }
            let _ = self.model_select.append_child(&group);
        }
        self.model_select.set_value(selected);
        self.model_select
            .set_disabled(groups.iter().all(|(_, o)| o.is_empty()));
    }

    /// One button per sample image of the set `set`, its thumbnail inside (a click on one is
    /// `events::page::wire_samples`'s); nothing changes when that set is already shown.
    pub fn show_samples(&self, set: &str, names: &[String], current: Option<&str>) {
        if self.samples.get_attribute("data-set").as_deref() == Some(set) {
            return;
        }
        set_attr(&self.samples, "data-set", set);
        self.samples.set_inner_html("");
        for name in names {
            {
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
                let _ = self.samples.append_child(&button);
            }
        }
        if let Some(parent) = self.samples.parent_element() {
            parent
                .toggle_attribute_with_force("hidden", names.is_empty())
                .ok();
        }
        if let Some(name) = current {
            self.mark_sample(name);
        }
    }

    /// Marks the sample button for the current image, if it is a sample.
    pub fn mark_sample(&self, name: &str) {
        let buttons = self.samples.children();
        for i in 0..buttons.length() {
            if let Some(b) = buttons.item(i) {
                let pressed = b.get_attribute("data-name").as_deref() == Some(name);
                set_attr(&b, "aria-pressed", if pressed { "true" } else { "false" });
            }
        }
    }

    /// Places the square on the photo (`size`: the photo's pixels) and says where it is.
    pub fn place_crop(&self, crop: Crop, size: (u32, u32), chosen: bool) {
        let [left, top, width, height] = crate::pictures::crop::percent(crop, size.0, size.1);
        let style = self.crop_square.style();
        for (name, value) in [
            ("left", left),
            ("top", top),
            ("width", width),
            ("height", height),
        ] {
            let _ = style.set_property(name, &format!("{value:.4}%"));
        }
        let text = format!(
            "{} square of {} px at x {}, y {} (as `trainer predict --crop {crop}`)",
            if chosen { "Your" } else { "The centre" },
            crop.size,
            crop.x,
            crop.y
        );
        set_text(&self.crop_where, &text);
        set_attr(&self.crop_square, "aria-valuetext", &text);
    }

    /// The classes a model knows, in words ("ten for the default model").
    pub fn show_classes(&self, labels: &[String]) {
        const LISTED: usize = 20;
        if labels.is_empty() {
            set_text(
                &self.model_classes,
                "It knows no classes: a feature model, to explore and to teach classes of your own.",
            );
            set_attr(&self.model_classes, "title", "");
            return;
        }
        let mut text = format!("It knows {} classes: ", labels.len());
        text += &labels
            .iter()
            .take(LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if labels.len() > LISTED {
            text += &format!(" and {} more", labels.len() - LISTED);
        }
        text += ". Anything else, it can only mistake for one of them.";
        set_text(&self.model_classes, &text);
        set_attr(&self.model_classes, "title", &labels.join(", "));
    }

    /// Says which engine build runs and how many threads the CPU path uses: in the backend
    /// select, beside the CPU's timing, and on `<body data-engine>`.
    pub fn describe_threads(&self, build: &str, threads: usize) {
        let label = cpu_label(threads);
        let options = self.backend_select.options();
        for i in 0..options.length() {
            if let Some(option) = options
                .item(i)
                .and_then(|o| o.dyn_into::<web_sys::HtmlOptionElement>().ok())
                && option.value() == "cpu"
            {
                option.set_text(&label);
            }
        }
        if let Some(dt) = self.time_cpu.previous_element_sibling() {
            set_text(&dt, &label);
        }
        set_attr(&self.body, "data-engine", build);
    }

    /// Disables the WebGPU option when there is no adapter (`problem`), saying why.
    pub fn describe_backends(&self, problem: Option<&str>) {
        let Some(why) = problem else { return };
        let options = self.backend_select.options();
        for i in 0..options.length() {
            if let Some(option) = options
                .item(i)
                .and_then(|o| o.dyn_into::<web_sys::HtmlOptionElement>().ok())
                && option.value() == "webgpu"
            {
                option.set_disabled(true);
                option.set_text(&format!("WebGPU (unavailable: {why})"));
            }
        }
    }
}

/// "CPU (Flex, 2 threads)": the CPU path and the threads it runs on.
pub fn cpu_label(threads: usize) -> String {
    match threads {
        1 => "CPU (Flex, 1 thread)".to_string(),
        n => format!("CPU (Flex, {n} threads)"),
    }
}
