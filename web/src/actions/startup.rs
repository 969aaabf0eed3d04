//! What the page does when it opens: the sample list, the model list, the default model and
//! the first sample.

use vit::index::ModelIndex;

use crate::actions::{hub, images, loading};
use crate::app::state::{Samples, Shared};
use crate::platform::net;

/// The sample images' file names, CIFAR's and the photos (none of a set whose list is
/// missing: the page works without).
pub async fn samples() -> Samples {
    Samples {
        cifar: names("samples/index.json", "").await,
        photos: names("samples/photos/index.json", "photos/").await,
    }
}

async fn names(list: &str, folder: &str) -> Vec<String> {
    match net::text(list).await {
        Ok(text) => serde_json::from_str::<Vec<String>>(&text)
            .unwrap_or_default()
            .into_iter()
            .map(|name| format!("{folder}{name}"))
            .collect(),
        Err(e) => {
            web_sys::console::warn_1(&format!("no samples in {list}: {e}").into());
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
    {
        let mut a = app.borrow_mut();
        a.hub.endpoint = hub_endpoint(&index);
        a.index = index;
    }
    // Fills the model select, kept hub models marked.
    hub::refresh_kept(&app).await;
    app.borrow().ui.model_select.set_value(&entry.name);
    loading::load_published(app.clone(), entry).await
}

/// The hub the page fetches from: the page's `?hub=URL` (tests point it at a local stand-in),
/// else `models/index.json`'s, else the Hugging Face hub.
fn hub_endpoint(index: &ModelIndex) -> String {
    let search = crate::platform::dom::window()
        .location()
        .search()
        .unwrap_or_default();
    query_param(&search, "hub")
        .or_else(|| index.hub.as_ref().and_then(|h| h.endpoint.clone()))
        .unwrap_or_else(|| vit::hub::DEFAULT_ENDPOINT.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// `key`'s value in a query string (`?a=1&hub=http%3A%2F%2F...`), decoded.
fn query_param(search: &str, key: &str) -> Option<String> {
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| js_sys::decode_uri_component(v).ok())
        .and_then(|v| v.as_string())
        .filter(|v| !v.is_empty())
}
