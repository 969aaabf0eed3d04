//! What the page says about its models: the model select (every published model, then those
//! loaded from disk or taught in this visit) and the current model's description, classes and
//! backend timings.

use vit::hub::HubName;
use vit::index::{HubEntry, IndexEntry};

use crate::app::state::{App, Origin};
use crate::platform::dom::{human_bytes, human_ms, set_text};
use crate::protocol::Backend;

/// The model select: every published model, then the hub's (the ready ones, and any other
/// fetched or kept), then those loaded from disk or taught in this visit.
pub fn fill_model_select(a: &App) {
    let published: Vec<(String, String)> = a
        .index
        .models
        .iter()
        .map(|e| (e.name.clone(), entry_label(e)))
        .collect();
    let mut hub: Vec<(String, String)> = a
        .index
        .hub
        .iter()
        .flat_map(|h| &h.models)
        .filter_map(|e| {
            let key = HubName::parse(&e.repo).ok()?.to_string();
            let label = hub_label(e, a.hub.kept.contains(&key));
            Some((key, label))
        })
        .collect();
    let others = a.hub.kept.iter().chain(
        a.cache
            .iter()
            .filter(|c| c.origin == Origin::Hub)
            .map(|c| &c.key),
    );
    for key in others {
        if !hub.iter().any(|(k, _)| k == key) {
            let bare = key.trim_start_matches(vit::hub::PREFIX);
            let kept = if a.hub.kept.contains(key) {
                " · kept"
            } else {
                ""
            };
            hub.push((key.clone(), format!("{bare}{kept}")));
        }
    }
    let mut mine = Vec::new();
    for c in &a.cache {
        let Some(origin) = c.origin.label() else {
            continue;
        };
        if c.origin != Origin::Hub {
            mine.push((
                c.key.clone(),
                format!("{} ({origin})", c.model.manifest.name),
            ));
        }
    }
    let groups = [
        ("Published here", published),
        ("From the Hugging Face hub · ImageNet top-1 · download", hub),
        ("Loaded in this visit", mine),
    ];
    a.ui.set_model_options(&groups, &a.model_key);
}

/// A ready hub model: its name, ImageNet top-1 and download (or that it is kept), short enough
/// for a narrow select.
fn hub_label(e: &HubEntry, kept: bool) -> String {
    let mut label = e.title.clone();
    if let Some(top1) = e.top1 {
        label += &format!(" · {:.1}% top-1", 100.0 * top1);
    }
    if let Some(note) = &e.note {
        label += &format!(" · {note}");
    }
    if kept {
        label + " · kept"
    } else {
        label + &format!(" · {}", human_bytes(e.bytes as f64))
    }
}

/// Name, accuracy, size: a narrow screen cuts a select's label off at its right edge, and what
/// a visitor chooses a model by should survive that.
fn entry_label(e: &IndexEntry) -> String {
    let mut label = e.name.clone();
    if let Some(top1) = e.top1 {
        label += &format!(" · {:.1}% top-1", 100.0 * top1);
    }
    label + &format!(" · {} params", compact(e.params))
}

fn compact(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 1000 {
        format!("{:.0}k", n as f64 / 1e3)
    } else {
        n.to_string()
    }
}

/// Model description, the classes it knows and the backend timings.
pub fn show_model(a: &App) {
    let Some(m) = &a.model else { return };
    let c = &m.manifest.config;
    let mut info = if m.manifest.description.is_empty() {
        m.manifest.name.clone()
    } else {
        m.manifest.description.clone()
    };
    // The classes get a line of their own (`show_classes`), so they are not counted here too.
    info += &format!(
        " · {} px input, {} patches · {}",
        c.image_size,
        c.num_patches(),
        human_bytes(m.manifest.weights.bytes as f64)
    );
    set_text(&a.ui.model_info, &info);
    a.ui.show_classes(&m.manifest.labels);
    let (set, names) = a.samples.fitting(c.image_size);
    let current = a.picture.as_ref().map(|p| p.name.as_str());
    a.ui.show_samples(set, names, current);

    let t = &a.timings;
    let timing = a.timing > 0;
    let show =
        |el: &web_sys::HtmlElement, warm: Option<f64>, first: Option<f64>, available: bool| {
            let text = match (warm, available) {
                (Some(ms), _) => match first {
                    Some(f) => format!("{} (first {})", human_ms(ms), human_ms(f)),
                    None => human_ms(ms),
                },
                (None, false) => "unavailable".to_string(),
                (None, true) if timing => "timing…".to_string(),
                (None, true) => "—".to_string(),
            };
            set_text(el, &text);
        };
    show(&a.ui.time_gpu, t.gpu, t.gpu_first, a.ready.webgpu);
    show(&a.ui.time_cpu, t.cpu, t.cpu_first, true);
    let active = a.backend();
    for (el, b) in [
        (&a.ui.time_gpu, Backend::WebGpu),
        (&a.ui.time_cpu, Backend::Cpu),
    ] {
        if let Some(parent) = el.parent_element() {
            let _ = parent.class_list().toggle_with_force("active", b == active);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_labels_are_short() {
        assert_eq!(compact(468_586), "469k");
        assert_eq!(compact(1_800_000), "1.8M");
        assert_eq!(compact(999), "999");
        let e = IndexEntry {
            name: "m".into(),
            manifest: "m.json".into(),
            description: String::new(),
            params: 468_586,
            bytes: 1,
            top1: Some(0.7271),
        };
        assert_eq!(entry_label(&e), "m · 72.7% top-1 · 469k params");
        let unmeasured = IndexEntry { top1: None, ..e };
        assert_eq!(entry_label(&unmeasured), "m · 469k params");
    }
}
