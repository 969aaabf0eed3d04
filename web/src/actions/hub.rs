//! Hub models: a timm ViT fetched from the Hugging Face hub by name (`ORG/NAME[@REVISION]`),
//! checked as the trainer checks it, kept for offline visits, and installed as any model.
//!
//! config.json comes first, so that a model the page cannot run is refused before its weights;
//! then the hub's API, for the commit and the weights' SHA-256 and size (a browser cannot read
//! the headers of the 302 that carry them for the trainer); then the weights at that commit,
//! with progress, checked for size, SHA-256 and against config.json. Only a model that passed
//! everything is kept (`platform::keep`), and a kept one loads with no network at all. A
//! failure leaves the current model in use.

use vit::hub::{
    CONFIG_FILE, HubModel, HubName, Revision, WEIGHTS_FILE, read_config, read_revision,
};
use vit::weights::{Manifest, WeightsFile};

use crate::actions::loading::{
    begin_model_request, install, restore_model_select, switch_to_cached,
};
use crate::app::state::{Origin, Shared, step};
use crate::backends::Loaded;
use crate::platform::digest::sha256_hex;
use crate::platform::dom::{human_bytes, now, yield_now};
use crate::platform::keep::{self, Pending};
use crate::platform::net::{self, Failure};
use crate::view::model_info::fill_model_select;

/// The most the page downloads for one model: ViT-B/16 (346 MB) fits; larger ones need more
/// memory than a page gets (the download, the model, and its WebGPU copy).
const MAX_WEIGHTS_BYTES: u64 = 400 << 20;

/// The three files a hub model is made of, by the URLs they are fetched (and kept) under.
struct Urls {
    config: String,
    revision: String,
    weights: String,
}

impl Urls {
    fn of(name: &HubName, endpoint: &str) -> Self {
        Self {
            config: name.file_url(endpoint, CONFIG_FILE),
            revision: name.revision_url(endpoint),
            weights: name.file_url(endpoint, WEIGHTS_FILE),
        }
    }
}

/// Fetches (or finds kept) the hub model `text` names and makes it the current model.
pub async fn load_hub(app: Shared, text: String) -> Result<(), String> {
    let request = begin_model_request(&app);
    let name = match HubName::parse(&text) {
        Ok(name) => name,
        Err(e) => {
            restore_model_select(&app);
            return Err(e.to_string());
        }
    };
    let key = name.to_string();
    if switch_to_cached(&app, &key).await? {
        return Ok(());
    }
    let endpoint = app.borrow().hub.endpoint.clone();
    let start = now();
    app.borrow_mut().hub.steps.clear();
    let result = fetch(&app, &name, &endpoint).await;
    app.borrow().ui.set_progress(None);
    match result {
        Ok(loaded) => {
            let bare = &key[vit::hub::PREFIX.len()..];
            install(app.clone(), Origin::Hub, bare, loaded, request).await?;
            let total = now() - start;
            app.borrow_mut()
                .hub
                .steps
                .push(("to the first result", total));
            Ok(())
        }
        Err(e) => {
            restore_model_select(&app);
            Err(format!(
                "{name} could not be loaded: {e}. The current model stays."
            ))
        }
    }
}

async fn fetch(app: &Shared, name: &HubName, endpoint: &str) -> Result<Loaded, String> {
    let urls = Urls::of(name, endpoint);
    if let Some(loaded) = from_kept(app, name, &urls).await {
        return Ok(loaded);
    }
    let mut clock = Clock::start();
    step(app, &format!("Fetching {name}: config.json"));
    let config = hub_text(&urls.config, name, CONFIG_FILE).await?;
    let hub = read_config(&config, &format!("{name}: config.json")).map_err(|e| e.to_string())?;
    step(app, &format!("Fetching {name}: the weights' checksum"));
    let revision_text = hub_text(&urls.revision, name, "its description").await?;
    let revision = read_revision(&revision_text, &format!("{name}: the hub's API"))
        .map_err(|e| e.to_string())?;
    if revision.weights_bytes > MAX_WEIGHTS_BYTES {
        return Err(format!(
            "its weights are {}, more than this page can hold ({}): the trainer runs it (`trainer predict --model {name}`)",
            human_bytes(revision.weights_bytes as f64),
            human_bytes(MAX_WEIGHTS_BYTES as f64)
        ));
    }
    step(
        app,
        &format!(
            "Downloading {name} ({})",
            human_bytes(revision.weights_bytes as f64)
        ),
    );
    // The weights of the commit the checksum is for, even if the branch moves meanwhile.
    let at_commit = HubName {
        revision: revision.commit.clone(),
        ..name.clone()
    };
    let weights_url = at_commit.file_url(endpoint, WEIGHTS_FILE);
    let response = net::fetch(&weights_url, false)
        .await
        .map_err(|f| explain(&f, name, WEIGHTS_FILE))?;
    app.borrow_mut().hub.download = Some((0, revision.weights_bytes, 0));
    let progress_app = app.clone();
    let bytes = net::read_bytes(
        response,
        &weights_url,
        revision.weights_bytes,
        move |got, total| {
            let mut a = progress_app.borrow_mut();
            let updates = a.hub.download.map_or(0, |d| d.2) + 1;
            a.hub.download = Some((got, total, updates));
            a.ui.set_progress(Some((got, total)));
        },
    )
    .await?;
    if bytes.len() as u64 != revision.weights_bytes {
        return Err(format!(
            "the download of its weights ended after {} of {} bytes (a cut connection?); nothing was kept",
            bytes.len(),
            revision.weights_bytes
        ));
    }
    clock.lap("config, API and download");
    step(app, &format!("Checking {name}'s weights"));
    yield_now().await;
    let sha = sha256_hex(&bytes).await;
    if sha != revision.weights_sha256 {
        return Err(format!(
            "its weights' SHA-256 is {sha}, but the hub says {}: the download was damaged; nothing was kept",
            revision.weights_sha256
        ));
    }
    // Copied out for keeping before the bytes are read into the model.
    let pending = [
        (&urls.config, Pending::new(config.as_bytes())),
        (&urls.revision, Pending::new(revision_text.as_bytes())),
        (&urls.weights, Pending::new(&bytes)),
    ];
    let manifest = manifest(&hub, name, &revision);
    let origin = format!("{name}: {WEIGHTS_FILE}");
    let backends = app.borrow().backends.clone();
    let model = hub
        .load_weights(bytes, &origin, &backends.cpu)
        .map_err(|e| e.to_string())?;
    let loaded = Loaded::from_model(manifest, model, &backends);
    clock.lap("sha256, import and webgpu copy");
    keep_all(app, name, pending).await;
    clock.lap("keep");
    app.borrow_mut().hub.steps = clock.laps;
    Ok(loaded)
}

/// Keeps a checked model's files; a model kept in part is dropped (it would not load offline).
async fn keep_all(app: &Shared, name: &HubName, pending: [(&String, Result<Pending, String>); 3]) {
    let mut kept = Vec::new();
    let mut failure = None;
    for (url, file) in pending {
        match file {
            Ok(file) => match file.keep(url).await {
                Ok(()) => kept.push(url.clone()),
                Err(e) => failure = Some(e),
            },
            Err(e) => failure = Some(e),
        }
        if failure.is_some() {
            break;
        }
    }
    if let Some(e) = failure {
        for url in &kept {
            keep::remove(url).await;
        }
        web_sys::console::warn_1(&format!("{name} was not kept for offline use: {e}").into());
        return;
    }
    let key = name.to_string();
    let mut a = app.borrow_mut();
    if !a.hub.kept.contains(&key) {
        a.hub.kept.push(key);
    }
}

/// The model from the files kept on an earlier visit, if all three are there and still make
/// the model (anything else is fetched anew).
async fn from_kept(app: &Shared, name: &HubName, urls: &Urls) -> Option<Loaded> {
    let mut clock = Clock::start();
    // The small files first: without them the weights are not worth reading.
    let config = String::from_utf8(keep::get(&urls.config).await?).ok()?;
    let revision = String::from_utf8(keep::get(&urls.revision).await?).ok()?;
    let weights = keep::get(&urls.weights).await?;
    clock.lap("read");
    step(app, &format!("Reading {name}, kept from an earlier visit"));
    yield_now().await;
    let hub = read_config(&config, "kept config.json").ok()?;
    let revision = read_revision(&revision, "kept revision").ok()?;
    if sha256_hex(&weights).await != revision.weights_sha256 {
        return None;
    }
    clock.lap("sha256");
    let backends = app.borrow().backends.clone();
    let model = hub
        .load_weights(weights, "kept weights", &backends.cpu)
        .ok()?;
    clock.lap("import");
    let loaded = Loaded::from_model(manifest(&hub, name, &revision), model, &backends);
    clock.lap("webgpu copy");
    app.borrow_mut().hub.steps = clock.laps;
    Some(loaded)
}

/// Where a hub model's load spent its time, for `window.vitrine.hub()` (and
/// `bench/page-hub-vit-ti16`).
struct Clock {
    last: f64,
    laps: Vec<(&'static str, f64)>,
}

impl Clock {
    fn start() -> Self {
        Self {
            last: now(),
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, what: &'static str) {
        let t = now();
        self.laps.push((what, t - self.last));
        self.last = t;
    }
}

/// The model's manifest, naming the weights the page checked.
fn manifest(hub: &HubModel, name: &HubName, revision: &Revision) -> Manifest {
    let mut manifest = hub.manifest(name, &revision.commit);
    manifest.weights = WeightsFile {
        file: WEIGHTS_FILE.into(),
        sha256: revision.weights_sha256.clone(),
        bytes: revision.weights_bytes,
    };
    manifest
}

async fn hub_text(url: &str, name: &HubName, what: &str) -> Result<String, String> {
    let response = net::fetch(url, false)
        .await
        .map_err(|f| explain(&f, name, what))?;
    net::read_text(response, url).await
}

/// One line a visitor can act on, for a hub request that failed: `vit::hub::answer`'s
/// advice, the trainer's, for a client that sends no token.
fn explain(failure: &Failure, name: &HubName, what: &str) -> String {
    use vit::hub::answer::{Answer, Client, endpoint_of, unreachable};
    match failure {
        Failure::Network { url, why } => {
            unreachable(name, endpoint_of(url, name), why, Client::Page)
        }
        Failure::Status {
            url, status, code, ..
        } => {
            let answer = Answer {
                status: *status,
                error_code: code.as_deref(),
                token_sent: false,
                // The page's fetch does not keep the header; the advice then says "a few
                // minutes".
                retry_after: None,
            };
            answer
                .refusal()
                .message(name, endpoint_of(url, name), what, Client::Page)
        }
    }
}

/// Lists the hub models kept from earlier visits (at startup, and after forgetting them).
pub async fn refresh_kept(app: &Shared) {
    let endpoint = app.borrow().hub.endpoint.clone();
    let kept: Vec<String> = keep::list()
        .await
        .iter()
        .filter_map(|(url, _)| kept_name(url, &endpoint))
        .collect();
    let mut a = app.borrow_mut();
    a.hub.kept = kept;
    fill_model_select(&a);
}

/// The hub model whose weights `url` is, as the select names it.
fn kept_name(url: &str, endpoint: &str) -> Option<String> {
    let rest = url.strip_prefix(endpoint.trim_end_matches('/'))?;
    let rest = rest.strip_suffix(&format!("/{WEIGHTS_FILE}"))?;
    let (repo, revision) = rest.trim_start_matches('/').split_once("/resolve/")?;
    let revision = revision.replace("%2F", "/");
    HubName::parse(&format!("{repo}@{revision}"))
        .ok()
        .map(|n| n.to_string())
}

/// Drops every kept hub model and says how much that freed.
pub async fn forget(app: Shared) -> Result<(), String> {
    let (files, bytes) = keep::forget().await?;
    refresh_kept(&app).await;
    let message = if files == 0 {
        "No downloaded models were kept".to_string()
    } else {
        format!(
            "Forgot the downloaded models: {} freed",
            human_bytes(bytes as f64)
        )
    };
    crate::app::state::note(&app, Some(message));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_weights_name_their_model() {
        let e = "http://127.0.0.1:9/";
        let n = |s: &str| kept_name(s, e);
        assert_eq!(
            n("http://127.0.0.1:9/timm/deit/resolve/main/model.safetensors").as_deref(),
            Some("hf-hub:timm/deit")
        );
        assert_eq!(
            n("http://127.0.0.1:9/timm/deit/resolve/v1%2Fa/model.safetensors").as_deref(),
            Some("hf-hub:timm/deit@v1/a")
        );
        assert_eq!(
            n("http://127.0.0.1:9/timm/deit/resolve/main/config.json"),
            None
        );
        assert_eq!(
            n("http://elsewhere/timm/deit/resolve/main/model.safetensors"),
            None
        );
    }

    #[test]
    fn each_refusal_says_what_to_do() {
        let name = HubName::parse("timm/deit").unwrap();
        let url = Urls::of(&name, "http://127.0.0.1:9").config;
        let status_of = |status: u16, code: Option<&str>| Failure::Status {
            url: url.clone(),
            status,
            text: String::new(),
            code: code.map(str::to_owned),
        };
        let typo = explain(&status_of(401, None), &name, CONFIG_FILE);
        assert!(
            typo.contains("timm/deit was not found") && typo.contains("check the name"),
            "{typo}"
        );
        let gated = explain(&status_of(401, Some("GatedRepo")), &name, CONFIG_FILE);
        assert!(
            gated.contains("is gated") && gated.contains("http://127.0.0.1:9/timm/deit"),
            "{gated}"
        );
        let down = explain(&status_of(503, None), &name, CONFIG_FILE);
        assert!(down.contains("down or overloaded (HTTP 503)"), "{down}");
        let offline = explain(
            &Failure::Network {
                url: url.clone(),
                why: "Failed to fetch".into(),
            },
            &name,
            CONFIG_FILE,
        );
        assert!(
            offline.contains("could not be reached") && offline.contains("http://127.0.0.1:9"),
            "{offline}"
        );
    }
}
