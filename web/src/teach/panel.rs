//! The Teach panel's elements: the fixed ones (ids in index.html, section "Teach it your own
//! classes") and the ones made for each class and each photo. Class and photo elements carry
//! `data-id` / `data-photo`, so `events::teach`'s few delegated listeners on the panel find them
//! without a listener per element (photos come and go by the hundred).

use web_sys::{
    HtmlButtonElement, HtmlCanvasElement, HtmlElement, HtmlInputElement, HtmlSelectElement,
    HtmlVideoElement,
};

use crate::platform::dom::{by_id, create, fill_progress, set_attr, set_text};

pub struct TeachUi {
    pub card: HtmlElement,
    pub classes: HtmlElement,
    pub add_class: HtmlButtonElement,
    /// The webcam's preview and buttons, moved into the class it adds to while open.
    pub camera: HtmlElement,
    pub video: HtmlVideoElement,
    pub snap: HtmlButtonElement,
    pub camera_close: HtmlButtonElement,
    pub camera_note: HtmlElement,
    pub mode: HtmlSelectElement,
    pub steps: HtmlInputElement,
    pub name: HtmlInputElement,
    pub train: HtmlButtonElement,
    pub stop: HtmlButtonElement,
    pub download: HtmlButtonElement,
    pub progress: HtmlElement,
    pub progress_bar: HtmlElement,
    pub progress_text: HtmlElement,
    pub curve: HtmlCanvasElement,
    pub status: HtmlElement,
}

impl TeachUi {
    pub fn find() -> Self {
        Self {
            card: by_id("teach-card"),
            classes: by_id("teach-classes"),
            add_class: by_id("teach-add-class"),
            camera: by_id("teach-camera"),
            video: by_id("teach-video"),
            snap: by_id("teach-snap"),
            camera_close: by_id("teach-camera-close"),
            camera_note: by_id("teach-camera-note"),
            mode: by_id("teach-mode"),
            steps: by_id("teach-steps"),
            name: by_id("teach-name-input"),
            train: by_id("teach-train"),
            stop: by_id("teach-stop"),
            download: by_id("teach-download"),
            progress: by_id("teach-progress"),
            progress_bar: by_id("teach-progress-bar"),
            progress_text: by_id("teach-progress-text"),
            curve: by_id("teach-curve"),
            status: by_id("teach-status"),
        }
    }

    pub fn set_status(&self, text: &str) {
        set_text(&self.status, text);
    }

    /// The progress bar at `fraction` (0 to 1) with `text` on it.
    pub fn set_progress(&self, fraction: f64, text: &str) {
        fill_progress(
            &self.progress,
            &self.progress_bar,
            &self.progress_text,
            100.0 * fraction,
            text,
        );
    }

    /// Train and the options while nothing runs; Stop while something does; Download once a
    /// model is taught (and nothing runs).
    pub fn set_running(&self, running: bool, taught: bool) {
        self.train.set_disabled(running);
        self.stop.set_disabled(!running);
        self.download.set_disabled(running || !taught);
        self.mode.set_disabled(running);
        self.steps.set_disabled(running);
        self.name.set_disabled(running);
        set_attr(
            &self.card,
            "aria-busy",
            if running { "true" } else { "false" },
        );
    }
}

/// One class's elements.
pub struct ClassView {
    pub root: HtmlElement,
    pub name: HtmlInputElement,
    pub name_label: HtmlElement,
    pub files: HtmlInputElement,
    pub files_label: HtmlElement,
    pub webcam: HtmlButtonElement,
    pub remove: HtmlButtonElement,
    pub count: HtmlElement,
    pub thumbs: HtmlElement,
}

impl ClassView {
    /// A class's block: name, photo count, remove button, then the ways to add photos, then
    /// its thumbnails. `id` is the class's for good; `index` its place, which changes when a
    /// class above it goes ([`Self::set_index`]).
    pub fn new(id: u64, index: usize, name: &str) -> Self {
        let root: HtmlElement = create("div");
        root.set_class_name("teach-class");
        set_attr(&root, "data-id", &id.to_string());
        set_attr(&root, "role", "group");
        // Focusable by a click (not by Tab: its controls are), so Ctrl+V after clicking a
        // class pastes into it.
        set_attr(&root, "tabindex", "-1");

        let head: HtmlElement = create("div");
        head.set_class_name("teach-class-head");
        let name_label: HtmlElement = create("label");
        name_label.set_class_name("visually-hidden");
        let name_input: HtmlInputElement = create("input");
        name_input.set_class_name("teach-name");
        name_input.set_type("text");
        name_input.set_value(name);
        set_attr(&name_input, "maxlength", "60");
        set_attr(&name_input, "autocomplete", "off");
        set_attr(&name_input, "spellcheck", "false");
        let count: HtmlElement = create("span");
        count.set_class_name("teach-count");
        set_text(&count, &photos_text(0));
        let remove: HtmlButtonElement = create("button");
        remove.set_type("button");
        remove.set_class_name("teach-remove-class icon-button");
        set_text(&remove, "×");
        let _ = head.append_child(&name_label);
        let _ = head.append_child(&name_input);
        let _ = head.append_child(&count);
        let _ = head.append_child(&remove);

        let add: HtmlElement = create("div");
        add.set_class_name("teach-add");
        let files: HtmlInputElement = create("input");
        files.set_type("file");
        files.set_multiple(true);
        files.set_accept("image/*,.jpg,.jpeg,.png,.webp,.gif,.bmp");
        files.set_class_name("teach-files visually-hidden");
        let files_label: HtmlElement = create("label");
        files_label.set_class_name("button ghost small");
        set_text(&files_label, "Upload photos…");
        let webcam: HtmlButtonElement = create("button");
        webcam.set_type("button");
        webcam.set_class_name("teach-webcam button ghost small");
        set_text(&webcam, "Webcam");
        let hint: HtmlElement = create("span");
        hint.set_class_name("hint");
        set_text(&hint, "or drop photos here, or paste (Ctrl+V)");
        let _ = add.append_child(&files);
        let _ = add.append_child(&files_label);
        let _ = add.append_child(&webcam);
        let _ = add.append_child(&hint);

        let thumbs: HtmlElement = create("div");
        thumbs.set_class_name("teach-thumbs");
        set_attr(&thumbs, "role", "list");

        let _ = root.append_child(&head);
        let _ = root.append_child(&add);
        let _ = root.append_child(&thumbs);
        let view = Self {
            root,
            name: name_input,
            name_label,
            files,
            files_label,
            webcam,
            remove,
            count,
            thumbs,
        };
        view.set_index(index);
        view
    }

    /// Numbers the class `index` (from 0): its `data-class`, the ids the contract names, and
    /// the labels that say "class N".
    pub fn set_index(&self, index: usize) {
        let n = index + 1;
        set_attr(&self.root, "data-class", &index.to_string());
        set_attr(&self.root, "aria-label", &format!("Class {n}"));
        let name_id = format!("teach-class-name-{index}");
        self.name.set_id(&name_id);
        set_attr(&self.name_label, "for", &name_id);
        set_text(&self.name_label, &format!("Name of class {n}"));
        let files_id = format!("teach-files-{index}");
        self.files.set_id(&files_id);
        set_attr(&self.files_label, "for", &files_id);
        set_attr(
            &self.files,
            "aria-label",
            &format!("Upload photos to class {n}"),
        );
        set_attr(
            &self.webcam,
            "aria-label",
            &format!("Take photos for class {n} with the webcam"),
        );
        set_attr(&self.remove, "aria-label", &format!("Remove class {n}"));
        set_attr(&self.thumbs, "aria-label", &format!("Photos of class {n}"));
    }

    pub fn set_count(&self, photos: usize) {
        set_text(&self.count, &photos_text(photos));
    }
}

/// One photo's thumbnail: `canvas` (the model's square, small) and its remove button. The
/// state numbers it (`data-photo`) when it takes the photo.
pub fn thumb(canvas: &HtmlCanvasElement) -> HtmlElement {
    let item: HtmlElement = create("div");
    item.set_class_name("teach-thumb");
    set_attr(&item, "role", "listitem");
    set_attr(canvas, "aria-hidden", "true");
    let _ = item.append_child(canvas);
    let remove: HtmlButtonElement = create("button");
    remove.set_type("button");
    remove.set_class_name("teach-remove-photo");
    set_attr(&remove, "aria-label", "Remove this photo");
    set_text(&remove, "×");
    let _ = item.append_child(&remove);
    item
}

/// "1 photo", "12 photos": the number first, so it reads (and parses) as a count.
pub fn photos_text(n: usize) -> String {
    if n == 1 {
        "1 photo".into()
    } else {
        format!("{n} photos")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words() {
        assert_eq!(photos_text(0), "0 photos");
        assert_eq!(photos_text(1), "1 photo");
        assert_eq!(photos_text(500), "500 photos");
    }
}
