//! What the page does when it opens: the sample list, the model list, the default model and
//! the first sample.

use vit::weights::{IndexEntry, ModelIndex};

use crate::app::{App, Shared};
use crate::{images, loading, net};

/// The sample images' file names (none when the list is missing: the page works without).
pub async fn sample_names() -> Vec<String> {
    match net::text("samples/index.json").await {
        Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
        Err(e) => {
            web_sys::console::warn_1(&format!("no samples: {e}").into());
            Vec::new()
        }
    }
}

/// Loads `first_sample`, the list of published models and the default model, which then
/// answers at once on the sample.
pub async fn startup(app: Shared, first_sample: Option<String>) -> Result<(), String> {
    // The sample first (a few kB), so the model's first run is on it: the answer is then on
    // screen before the backends are timed.
    if let Some(first) = first_sample {
        images::load_sample(app.clone(), first).await?;
    }
    // Checked with the server on every visit (net.rs): a model published while the page is
    // served shows up on the next reload (scripts/serve serves www/models live).
    let text = net::text("models/index.json")
        .await
        .map_err(|e| format!("The list of models could not be loaded: {e}"))?;
    let index = ModelIndex::from_json(&text, "models/index.json").map_err(|e| e.to_string())?;
    let entry = index
        .default_entry()
        .cloned()
        .ok_or("models/index.json lists no models: publish one with `trainer publish`")?;
    app.borrow_mut().index = index;
    fill_model_select(&app.borrow());
    app.borrow().ui.model_select.set_value(&entry.name);
    loading::load_published(app.clone(), entry).await
}

/// The model select: every published model, then those loaded from disk or taught in this
/// visit.
pub fn fill_model_select(a: &App) {
    let mut options: Vec<(String, String)> = a
        .index
        .models
        .iter()
        .map(|e| (e.name.clone(), entry_label(e)))
        .collect();
    for c in &a.cache {
        let origin = if c.key.starts_with("disk:") {
            "from disk"
        } else if c.key.starts_with("taught:") {
            "taught here"
        } else {
            continue;
        };
        options.push((
            c.key.clone(),
            format!("{} ({origin})", c.loaded.manifest.name),
        ));
    }
    a.ui.set_model_options(&options, &a.model_key);
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
