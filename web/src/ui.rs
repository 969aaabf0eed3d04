//! Handles on the page's elements (ids from index.html) and the small text updates on them.

use web_sys::{
    HtmlButtonElement, HtmlCanvasElement, HtmlElement, HtmlInputElement, HtmlSelectElement,
};

use crate::dom::{by_id, create, human_bytes, set_attr, set_text};

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
    pub model_select: HtmlSelectElement,
    pub model_info: HtmlElement,
    pub progress: HtmlElement,
    pub progress_bar: HtmlElement,
    pub progress_text: HtmlElement,
    pub model_files: HtmlInputElement,
    pub backend_select: HtmlSelectElement,
    pub time_gpu: HtmlElement,
    pub time_cpu: HtmlElement,
    pub play: HtmlButtonElement,
    pub replay: HtmlButtonElement,
    pub speed: HtmlInputElement,
    pub speed_out: HtmlElement,
    pub stage: HtmlCanvasElement,
    pub bars: HtmlCanvasElement,
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
            body: crate::dom::document().body().expect("the page has a body"),
            status: by_id("status"),
            alert: by_id("alert"),
            alert_text: by_id("alert-text"),
            alert_close: by_id("alert-close"),
            file_input: by_id("file-input"),
            drop: by_id("drop"),
            samples: by_id("samples"),
            current: by_id("current"),
            model_select: by_id("model-select"),
            model_info: by_id("model-info"),
            progress: by_id("progress"),
            progress_bar: by_id("progress-bar"),
            progress_text: by_id("progress-text"),
            model_files: by_id("model-files"),
            backend_select: by_id("backend-select"),
            time_gpu: by_id("time-webgpu"),
            time_cpu: by_id("time-cpu"),
            play: by_id("play"),
            replay: by_id("replay"),
            speed: by_id("speed"),
            speed_out: by_id("speed-out"),
            stage: by_id("stage"),
            bars: by_id("bars"),
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
            (100.0 * got as f64 / total as f64).min(100.0)
        } else {
            0.0
        };
        let _ = self
            .progress_bar
            .style()
            .set_property("width", &format!("{percent:.1}%"));
        set_attr(&self.progress, "aria-valuenow", &format!("{percent:.0}"));
        let label = if total > 0 {
            format!(
                "{} of {}",
                human_bytes(got as f64),
                human_bytes(total as f64)
            )
        } else {
            human_bytes(got as f64)
        };
        set_attr(&self.progress, "aria-valuetext", &label);
        set_text(&self.progress_text, &label);
    }

    /// Replaces the model select's options: `(value, text)` pairs, with `selected` chosen.
    pub fn set_model_options(&self, options: &[(String, String)], selected: &str) {
        self.model_select.set_inner_html("");
        for (value, label) in options {
            let option: web_sys::HtmlOptionElement = create("option");
            option.set_value(value);
            option.set_text(label);
            let _ = self.model_select.append_child(&option);
        }
        self.model_select.set_value(selected);
        self.model_select.set_disabled(options.is_empty());
    }
}
