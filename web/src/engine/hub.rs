//! Hub models in the engine: a timm ViT fetched from the Hugging Face hub by name
//! (`ORG/NAME[@REVISION]`), checked as the trainer checks it, and kept for offline visits.
//!
//! config.json comes first, so that a model the page cannot run is refused before its weights;
//! then the hub's API, for the commit and the weights' SHA-256 and size (a browser cannot read
//! the headers of the 302 that carry them for the trainer); then the weights at that commit,
//! with progress, checked for size, SHA-256 and against config.json. Only a model that passed
//! everything is kept (`platform::keep`), and a kept one loads with no network at all. The
//! page (`actions::hub`) installs the model, or says why it could not, and keeps the current
//! one.

use vit::hub::{
    CONFIG_FILE, HubModel, HubName, Revision, WEIGHTS_FILE, read_config, read_revision,
};
use vit::weights::{Manifest, WeightsFile};

use crate::engine::devices::{Devices, Model};
use crate::platform::digest::sha256_hex;
use crate::platform::dom::{human_bytes, now, yield_now};
use crate::platform::keep::{self, Pending};
use crate::platform::net::{self, Failure};
use crate::protocol::Event;

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

/// A hub model loaded: the model, where its load spent its time, whether it is kept.
pub struct Fetched {
    pub model: Model,
    pub steps: Vec<(String, f64)>,
    pub kept: bool,
}

/// Fetches (or finds kept) the hub model `name` and loads it, at `image_size` when given;
/// `say` hears the steps and the download's progress.
pub async fn load(
    name: &HubName,
    endpoint: &str,
    image_size: Option<usize>,
    devices: &Devices,
    say: &dyn Fn(Event),
) -> Result<Fetched, String> {
    let urls = Urls::of(name, endpoint);
    if let Some(fetched) = from_kept(name, &urls, image_size, devices, say).await {
        return Ok(fetched);
    }
    let step = |text: String| say(Event::Step(text));
    let mut clock = Clock::start();
    step(format!("Fetching {name}: config.json"));
    let config = hub_text(&urls.config, name, CONFIG_FILE).await?;
    let hub = read_config(&config, &format!("{name}: config.json"))
        .and_then(|hub| at_size(hub, image_size))
        .map_err(|e| e.to_string())?;
    step(format!("Fetching {name}: the weights' checksum"));
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
    step(format!(
        "Downloading {name} ({})",
        human_bytes(revision.weights_bytes as f64)
    ));
    // The weights of the commit the checksum is for, even if the branch moves meanwhile.
    let at_commit = HubName {
        revision: revision.commit.clone(),
        ..name.clone()
    };
    let weights_url = at_commit.file_url(endpoint, WEIGHTS_FILE);
    let response = net::fetch(&weights_url, false)
        .await
        .map_err(|f| explain(&f, name, WEIGHTS_FILE))?;
    say(Event::Progress {
        received: 0,
        total: revision.weights_bytes,
    });
    let bytes = net::read_bytes(
        response,
        &weights_url,
        revision.weights_bytes,
        |received, total| say(Event::Progress { received, total }),
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
    step(format!("Checking {name}'s weights"));
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
    let vit = hub
        .load_weights(bytes, &origin, &devices.cpu)
        .map_err(|e| e.to_string())?;
    let model = Model::from_model(manifest, vit, devices);
    clock.lap("sha256, import and webgpu copy");
    let kept = keep_all(name, pending).await;
    clock.lap("keep");
    Ok(Fetched {
        model,
        steps: clock.laps,
        kept,
    })
}

/// Keeps a checked model's files; a model kept in part is dropped (it would not load offline).
/// Returns whether it was kept.
async fn keep_all(name: &HubName, pending: [(&String, Result<Pending, String>); 3]) -> bool {
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
        return false;
    }
    true
}

/// The model from the files kept on an earlier visit, if all three are there and still make
/// the model (anything else is fetched anew).
async fn from_kept(
    name: &HubName,
    urls: &Urls,
    image_size: Option<usize>,
    devices: &Devices,
    say: &dyn Fn(Event),
) -> Option<Fetched> {
    let mut clock = Clock::start();
    // The small files first: without them the weights are not worth reading.
    let config = String::from_utf8(keep::get(&urls.config).await?).ok()?;
    let revision = String::from_utf8(keep::get(&urls.revision).await?).ok()?;
    let weights = keep::get(&urls.weights).await?;
    clock.lap("read");
    say(Event::Step(format!(
        "Reading {name}, kept from an earlier visit"
    )));
    yield_now().await;
    let hub = read_config(&config, "kept config.json")
        .and_then(|hub| at_size(hub, image_size))
        .ok()?;
    let revision = read_revision(&revision, "kept revision").ok()?;
    if sha256_hex(&weights).await != revision.weights_sha256 {
        return None;
    }
    clock.lap("sha256");
    let vit = hub
        .load_weights(weights, "kept weights", &devices.cpu)
        .ok()?;
    clock.lap("import");
    let model = Model::from_model(manifest(&hub, name, &revision), vit, devices);
    clock.lap("webgpu copy");
    Some(Fetched {
        model,
        steps: clock.laps,
        kept: true,
    })
}

/// Where a hub model's load spent its time, for `window.vitrine.hub()` (and
/// `bench/page-hub-vit-ti16`).
struct Clock {
    last: f64,
    laps: Vec<(String, f64)>,
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
        self.laps.push((what.to_string(), t - self.last));
        self.last = t;
    }
}

/// The model's manifest, naming the weights the page checked.
/// `hub` to run at `image_size` when given (its position embeddings resampled as its weights
/// are read).
fn at_size(hub: HubModel, image_size: Option<usize>) -> vit::Result<HubModel> {
    match image_size {
        Some(size) if size != hub.config.image_size => hub.with_image_size(size),
        _ => Ok(hub),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
