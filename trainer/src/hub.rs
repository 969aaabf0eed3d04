//! Hugging Face hub models for the CLI: `--model hf-hub:ORG/NAME[@REVISION]`.
//!
//! Files come over the hub's own protocol into huggingface_hub's cache, so a model that
//! Python's timm already downloaded is found here, and one fetched here is found there:
//! - `HEAD {endpoint}/{org}/{name}/resolve/{revision}/{file}` names the commit
//!   (`X-Repo-Commit`), the content (`X-Linked-Etag`, the SHA-256 of a large file, or `ETag`),
//!   its size (`X-Linked-Size` or `Content-Length`), and for a large file a 302 to a CDN;
//! - the body streams into a temporary file beside the cache, is checked (size, SHA-256, and
//!   what it says: config.json must describe a ViT Vitrine builds, the weights must fit it),
//!   and only then is renamed into `models--{org}--{name}/blobs/{etag}`, with
//!   `snapshots/{commit}/{file}` linking to it and `refs/{revision}` naming the commit.
//!
//! So a cut connection, a wrong checksum, an unsupported model or Ctrl-C leaves nothing in the
//! cache. Settings are huggingface_hub's variables: `HF_ENDPOINT`, `HF_HUB_CACHE` / `HF_HOME`,
//! `HF_TOKEN` (or the token file `huggingface-cli login` writes) and `HF_HUB_OFFLINE`.
//!
//! Written on ureq rather than the `hf-hub` crate: its blocking client (0.4) checks no SHA-256,
//! keeps half-downloaded `.part` files in the cache, and has no offline mode; 1.0 is async only
//! and brings tokio, reqwest and hf-xet into a build that has a working HTTP client already.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use burn::prelude::Device;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use vit::VisionTransformer;
use vit::hub::{CONFIG_FILE, HubModel, HubName, MAX_CONFIG_BYTES, WEIGHTS_FILE};
use vit::weights::{Manifest, import_timm, safetensors_shapes};

use crate::download::{Cut, Progress, stream};
use crate::interrupt;

/// The largest weights file fetched: timm's ViT-L/16 in f32 is 1.2 GB.
pub const MAX_WEIGHTS_BYTES: u64 = 4 << 30;

/// Where and how to reach the hub, from huggingface_hub's environment variables.
#[derive(Debug, Clone)]
pub struct HubEnv {
    pub endpoint: String,
    pub cache: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
}

/// huggingface_hub's reading of a yes/no variable.
fn is_true(value: Option<String>) -> bool {
    value.is_some_and(|v| matches!(v.to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE"))
}

impl HubEnv {
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("huggingface")
        });
        let token_file = var("HF_TOKEN_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("token"));
        let token = var("HF_TOKEN").or_else(|| {
            fs::read_to_string(token_file)
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
        });
        Self {
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| vit::hub::DEFAULT_ENDPOINT.into()),
            cache: var("HF_HUB_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join("hub")),
            token,
            offline: is_true(var("HF_HUB_OFFLINE")),
        }
    }

    /// `models--{org}--{name}`, the repo's folder in the cache.
    fn repo_dir(&self, name: &HubName) -> PathBuf {
        self.cache
            .join(format!("models--{}--{}", name.org, name.name))
    }
}

/// A hub model, read and checked, ready to run or to write as a model pair.
pub struct Loaded {
    /// Its `source` names the repo and the commit its files came from.
    pub manifest: Manifest,
    pub model: VisionTransformer,
}

/// Fetches (or finds in the cache) a hub model's config.json and weights, refusing anything
/// Vitrine cannot run exactly before the weights are fetched, and builds it on `device`.
pub fn load(name: &HubName, device: &Device) -> Result<Loaded> {
    // Ctrl-C removes what was fetched and stops, until it is all kept.
    let _stop = interrupt::during_download();
    let env = HubEnv::from_env();
    let client = Client::new(&env);
    let (mut config, hub) = client.config(name)?;
    let mut weights = client.fetch(name, WEIGHTS_FILE, MAX_WEIGHTS_BYTES)?;
    let origin = format!("{name}: {WEIGHTS_FILE}");
    let shapes = safetensors_shapes(weights.path())
        .map_err(|e| anyhow!("{origin} is not a readable safetensors file: {e}"))?;
    vit::hub::check_checkpoint(&hub, &shapes, &origin)?;
    let model = import_timm(weights.path(), &hub.config, device)
        .map_err(|e| anyhow!("{origin}: {}", one_line(&e.to_string())))?;
    // Everything checked: only now does anything enter the cache.
    let commit = weights.commit.clone();
    config.keep()?;
    weights.keep()?;
    Ok(Loaded {
        manifest: manifest_for(name, &hub, &commit),
        model,
    })
}

/// A hub model's manifest from its config.json alone (what `trainer patches` needs).
pub fn manifest(name: &HubName) -> Result<Manifest> {
    let _stop = interrupt::during_download();
    let env = HubEnv::from_env();
    let (mut config, hub) = Client::new(&env).config(name)?;
    let commit = config.commit.clone();
    config.keep()?;
    Ok(manifest_for(name, &hub, &commit))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The model pair's manifest for a hub model (its weights entry is filled when it is saved).
fn manifest_for(name: &HubName, hub: &HubModel, commit: &str) -> Manifest {
    let c = &hub.config;
    let mut manifest = Manifest::new(&name.pair_name(), c.clone(), hub.labels.clone(), hub.norm);
    manifest.resize = hub.resize;
    manifest.source = format!("{}/{}@{commit} (Hugging Face hub)", name.org, name.name);
    manifest.description = format!(
        "{} from the Hugging Face hub: {}px, patch {}, {} classes",
        hub.architecture, c.image_size, c.patch_size, c.num_classes
    );
    manifest
}

/// What the hub says of a file before its body is fetched.
struct Metadata {
    commit: String,
    etag: String,
    size: Option<u64>,
    /// Where the body is: a CDN for a large file, the same URL for a small one.
    location: String,
}

/// A file of the cache, or one fetched and checked but not yet in the cache.
pub struct Fetched {
    commit: String,
    state: State,
}

/// Partial files a killed process (SIGKILL, power loss) could not remove: any a day old is no
/// download in progress.
fn sweep_stale_partials(cache: &Path) {
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(24 * 3600));
        if name.starts_with(".vitrine-") && name.ends_with(".incomplete") && old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// A file fetched (or being fetched) beside the cache: removed when dropped, and by Ctrl-C.
struct Partial {
    file: NamedTempFile,
    _doomed: interrupt::Doomed,
}

enum State {
    /// In the cache (found there, or kept).
    Cached(PathBuf),
    Pending {
        /// The download; `None` when another revision's blob already holds the content.
        temp: Option<Partial>,
        blob: PathBuf,
        pointer: PathBuf,
        reference: Option<(PathBuf, String)>,
    },
}

impl Fetched {
    pub fn path(&self) -> &Path {
        match &self.state {
            State::Cached(p) => p,
            State::Pending {
                temp: Some(temp), ..
            } => temp.file.path(),
            State::Pending { blob, .. } => blob,
        }
    }

    /// Moves a checked download into the cache (blob, snapshot link, ref); returns its path.
    pub fn keep(&mut self) -> Result<PathBuf> {
        let state = std::mem::replace(&mut self.state, State::Cached(PathBuf::new()));
        let path = match state {
            State::Cached(p) => p,
            State::Pending {
                temp,
                blob,
                pointer,
                reference,
            } => {
                if let Some(temp) = temp {
                    let dir = blob.parent().expect("a blob has a folder");
                    fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                    temp.file
                        .persist(&blob)
                        .with_context(|| format!("storing {}", blob.display()))?;
                }
                link(&blob, &pointer)?;
                if let Some((file, commit)) = reference {
                    write_ref(&file, &commit)?;
                }
                pointer
            }
        };
        self.state = State::Cached(path.clone());
        Ok(path)
    }
}

/// `snapshots/{commit}/{file}` -> `../../blobs/{etag}`, as huggingface_hub links them.
fn link(blob: &Path, pointer: &Path) -> Result<()> {
    let dir = pointer.parent().expect("a pointer has a folder");
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let _ = fs::remove_file(pointer);
    #[cfg(unix)]
    {
        let blob_name = blob.file_name().expect("a blob has a name");
        let relative = Path::new("../../blobs").join(blob_name);
        std::os::unix::fs::symlink(relative, pointer)
            .with_context(|| format!("linking {}", pointer.display()))
    }
    #[cfg(not(unix))]
    {
        fs::copy(blob, pointer)
            .map(|_| ())
            .with_context(|| format!("copying to {}", pointer.display()))
    }
}

fn write_ref(file: &Path, commit: &str) -> Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    vit::weights::write_atomic(file, commit.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}

struct Client<'a> {
    env: &'a HubEnv,
    /// Follows no redirects: the HEAD's own answer carries the file's metadata.
    head: ureq::Agent,
    get: ureq::Agent,
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// huggingface_hub's `_normalize_etag`: no weak marker, no quotes.
fn normalise_etag(tag: &str) -> String {
    tag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_owned()
}

impl<'a> Client<'a> {
    fn new(env: &'a HubEnv) -> Self {
        let agent = |redirects| {
            ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(30))
                // A stalled server should fail the download, not hang it forever.
                .timeout_read(Duration::from_secs(60))
                .redirects(redirects)
                .user_agent(concat!("vitrine/", env!("CARGO_PKG_VERSION")))
                .build()
        };
        Self {
            env,
            head: agent(0),
            get: agent(5),
        }
    }

    /// The commit a revision names in the cache, if it was fetched before.
    fn cached_commit(&self, name: &HubName) -> Option<String> {
        if is_commit(&name.revision) {
            return Some(name.revision.clone());
        }
        let file = self.env.repo_dir(name).join("refs").join(&name.revision);
        fs::read_to_string(file)
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
    }

    fn cached(&self, name: &HubName, file: &str) -> Option<Fetched> {
        let commit = self.cached_commit(name)?;
        let path = self
            .env
            .repo_dir(name)
            .join("snapshots")
            .join(&commit)
            .join(file);
        path.is_file().then(|| Fetched {
            commit,
            state: State::Cached(path),
        })
    }

    /// `name`'s config.json, fetched (not yet kept) and read: what Vitrine builds for it.
    fn config(&self, name: &HubName) -> Result<(Fetched, HubModel)> {
        let config = self.fetch(name, CONFIG_FILE, MAX_CONFIG_BYTES)?;
        let text = fs::read_to_string(config.path())
            .map_err(|e| anyhow!("{name}: config.json is not text: {e}"))?;
        let hub = vit::hub::read_config(&text, &format!("{name}: config.json"))?;
        Ok((config, hub))
    }

    /// `file` of `name`: from the cache when the hub's commit is there (or offline), else
    /// downloaded, checked against its size and checksum, and held until [`Fetched::keep`].
    fn fetch(&self, name: &HubName, file: &str, max_bytes: u64) -> Result<Fetched> {
        if self.env.offline {
            return self.cached(name, file).ok_or_else(|| {
                anyhow!(
                    "{name}: {file} is not in the cache ({}) and HF_HUB_OFFLINE is set, so nothing is downloaded; run once with the network (and HF_HUB_OFFLINE unset)",
                    self.env.cache.display()
                )
            });
        }
        let url = name.file_url(&self.env.endpoint, file);
        let meta = match self.metadata(name, file, &url) {
            Ok(meta) => meta,
            // Unreachable hub, but the file is cached: use it, as huggingface_hub does.
            Err(Failure::Unreachable(why)) => {
                return match self.cached(name, file) {
                    Some(found) => {
                        eprintln!("warning: {why}; using the cached copy of {name}: {file}");
                        Ok(found)
                    }
                    None => Err(anyhow!("{why}; {name} is not in the cache either")),
                };
            }
            Err(Failure::Refused(e)) => return Err(e),
        };
        let repo = self.env.repo_dir(name);
        let pointer = repo.join("snapshots").join(&meta.commit).join(file);
        let reference = (name.revision != meta.commit)
            .then(|| (repo.join("refs").join(&name.revision), meta.commit.clone()));
        if pointer.is_file() {
            if let Some((file, commit)) = &reference {
                write_ref(file, commit)?;
            }
            return Ok(Fetched {
                commit: meta.commit,
                state: State::Cached(pointer),
            });
        }
        let blob = repo.join("blobs").join(&meta.etag);
        if let Some(size) = meta.size.filter(|&s| s > max_bytes) {
            bail!(
                "{name}: {file} is {size} bytes, more than the {max_bytes} Vitrine fetches for it"
            );
        }
        // Another revision's blob may hold the same content: then it is only linked.
        let temp = if blob.is_file() {
            None
        } else {
            Some(self.download(name, file, &meta, max_bytes)?)
        };
        Ok(Fetched {
            commit: meta.commit,
            state: State::Pending {
                temp,
                blob,
                pointer,
                reference,
            },
        })
    }

    fn authorised(&self, request: ureq::Request) -> ureq::Request {
        match &self.env.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    fn metadata(&self, name: &HubName, file: &str, url: &str) -> Result<Metadata, Failure> {
        let mut url = url.to_owned();
        // Relative redirects (a renamed repo) are the hub's own; follow a few.
        for _ in 0..5 {
            let request = self
                .authorised(self.head.head(&url))
                .set("Accept-Encoding", "identity");
            let response = match request.call() {
                Ok(r) => r,
                Err(ureq::Error::Status(code, r)) => {
                    return Err(Failure::Refused(refusal(self.env, name, file, code, &r)));
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(Failure::Unreachable(format!(
                        "cannot reach the hub at {}: {}",
                        self.env.endpoint,
                        one_line(&t.to_string())
                    )));
                }
            };
            let header = |h: &str| response.header(h).map(str::to_owned);
            let location = header("Location");
            if (300..400).contains(&response.status()) {
                match &location {
                    Some(to) if to.starts_with('/') => {
                        url = format!("{}{to}", self.env.endpoint.trim_end_matches('/'));
                        continue;
                    }
                    Some(_) => {}
                    None => {
                        return Err(Failure::Refused(anyhow!(
                            "{name}: the hub answered {} for {file} without saying where to",
                            response.status()
                        )));
                    }
                }
            }
            let missing = |what: &str| {
                Failure::Refused(anyhow!(
                    "{name}: the hub's answer for {file} has no {what} (is {} a Hugging Face hub?)",
                    self.env.endpoint
                ))
            };
            let commit = header("X-Repo-Commit").ok_or_else(|| missing("X-Repo-Commit"))?;
            let etag = header("X-Linked-Etag")
                .or_else(|| header("ETag"))
                .map(|t| normalise_etag(&t))
                .filter(|t| !t.is_empty())
                .ok_or_else(|| missing("ETag"))?;
            if !is_commit(&commit) || !etag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(Failure::Refused(anyhow!(
                    "{name}: the hub's answer for {file} names commit '{commit}' and etag '{etag}', which are not hashes"
                )));
            }
            let size = header("X-Linked-Size")
                .or_else(|| header("Content-Length"))
                .and_then(|s| s.trim().parse().ok());
            return Ok(Metadata {
                commit,
                etag,
                size,
                location: match location {
                    Some(to) if (300..400).contains(&response.status()) => to,
                    _ => url,
                },
            });
        }
        Err(Failure::Refused(anyhow!(
            "{name}: the hub redirected {file} too many times"
        )))
    }

    fn temp_file(&self) -> Result<Partial> {
        fs::create_dir_all(&self.env.cache)
            .with_context(|| format!("creating the cache {}", self.env.cache.display()))?;
        sweep_stale_partials(&self.env.cache);
        let file = tempfile::Builder::new()
            .prefix(".vitrine-")
            .suffix(".incomplete")
            .tempfile_in(&self.env.cache)
            .with_context(|| format!("creating a file in {}", self.env.cache.display()))?;
        let doomed = interrupt::remove_on_interrupt(file.path());
        Ok(Partial {
            file,
            _doomed: doomed,
        })
    }

    /// Streams the body into a temporary file beside the cache, checking its size as it comes
    /// and its SHA-256 at the end (when the etag is one: large files' are).
    fn download(
        &self,
        name: &HubName,
        file: &str,
        meta: &Metadata,
        max_bytes: u64,
    ) -> Result<Partial> {
        let what = format!("{name}: {file}");
        // The CDN's signed URL carries its own authorisation.
        let request = if meta.location.starts_with(&self.env.endpoint) {
            self.authorised(self.get.get(&meta.location))
        } else {
            self.get.get(&meta.location)
        };
        let response = request.call().map_err(|e| match e {
            ureq::Error::Status(code, r) => refusal(self.env, name, file, code, &r),
            ureq::Error::Transport(t) => {
                anyhow!("{what}: download failed: {}", one_line(&t.to_string()))
            }
        })?;
        let expected = meta.size.or_else(|| {
            response
                .header("Content-Length")
                .and_then(|s| s.trim().parse().ok())
        });
        let mut temp = self.temp_file()?;
        let mut body = response.into_reader();
        let mut hasher = Sha256::new();
        // A bar (or, in a log, a line) for the weights; config.json comes and goes unannounced.
        let mut progress = Progress::new(&what, expected);
        if expected.is_some_and(|t| t < 1 << 20) {
            progress.quiet();
        }
        let limit = expected.unwrap_or(max_bytes).min(max_bytes);
        let file = temp.file.as_file_mut();
        let got = match stream(&mut body, file, Some(limit), &mut progress, |c| {
            hasher.update(c)
        }) {
            Ok(got) => got,
            Err(Cut::Read(e)) => bail!(
                "{what}: the connection broke after {} of {} bytes ({e}); nothing was kept, run again to retry",
                progress.got(),
                expected.map_or("?".into(), |t| t.to_string())
            ),
            Err(Cut::Write(e)) => {
                return Err(e).with_context(|| format!("writing {}", temp.file.path().display()));
            }
            Err(Cut::TooLong) => bail!(
                "{what}: the hub sent more than the {limit} bytes it announced; nothing was kept"
            ),
        };
        if let Some(total) = expected.filter(|&t| t != got) {
            bail!(
                "{what}: the connection closed after {got} of {total} bytes; nothing was kept, run again to retry"
            );
        }
        // Large files' etag is their SHA-256 (git's SHA-1 names small ones).
        if meta.etag.len() == 64 {
            let sha = format!("{:x}", hasher.finalize());
            if !sha.eq_ignore_ascii_case(&meta.etag) {
                bail!(
                    "{what}: the download's SHA-256 is {sha}, but the hub says {}; nothing was kept",
                    meta.etag
                );
            }
        }
        temp.file
            .as_file()
            .sync_all()
            .with_context(|| format!("writing {}", temp.file.path().display()))?;
        Ok(temp)
    }
}

enum Failure {
    /// The hub could not be reached at all: a cached copy may serve.
    Unreachable(String),
    /// The hub answered no.
    Refused(anyhow::Error),
}

/// The hub's no, in one line that says what to do.
fn refusal(
    env: &HubEnv,
    name: &HubName,
    file: &str,
    code: u16,
    r: &ureq::Response,
) -> anyhow::Error {
    let error_code = r.header("X-Error-Code").unwrap_or("");
    let page = format!("{}/{}", env.endpoint.trim_end_matches('/'), name.repo_id());
    match (code, error_code) {
        (401 | 403, "GatedRepo") if env.token.is_none() => anyhow!(
            "{name} is gated: accept its terms at {page}, then set HF_TOKEN to a token of that account"
        ),
        (401 | 403, "GatedRepo") => anyhow!(
            "{name} is gated and HF_TOKEN's account has no access yet: accept its terms at {page}"
        ),
        (_, "RevisionNotFound") => anyhow!("{name}: the repo has no revision '{}'", name.revision),
        (_, "EntryNotFound") => anyhow!("{name}: the repo has no {file}: not a timm model"),
        (404, _) | (401, "RepoNotFound") if env.token.is_none() => anyhow!(
            "{name} was not found on {}: check the name, or set HF_TOKEN if it is private",
            env.endpoint
        ),
        (404, _) | (401, "RepoNotFound") => {
            anyhow!(
                "{name} was not found on {}, or HF_TOKEN cannot see it",
                env.endpoint
            )
        }
        (401, _) if env.token.is_none() => {
            anyhow!("{name} needs a login (HTTP 401): set HF_TOKEN to a token that can read it")
        }
        (401 | 403, _) => anyhow!("{name}: HF_TOKEN is not allowed to read it (HTTP {code})"),
        _ => anyhow!(
            "{name}: the hub answered HTTP {code} {} for {file}",
            r.status_text()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weak_markers() {
        assert_eq!(normalise_etag("W/\"abc\""), "abc");
        assert_eq!(normalise_etag("\"0123\""), "0123");
    }

    #[test]
    fn yes_is_spelt_as_huggingface_hub_spells_it() {
        for yes in ["1", "on", "YES", "true"] {
            assert!(is_true(Some(yes.into())), "{yes}");
        }
        for no in ["0", "", "no", "off"] {
            assert!(!is_true(Some(no.into())), "{no}");
        }
        assert!(!is_true(None));
    }
}
