//! The hub's client: its HTTP protocol as huggingface_hub's `file_download.py` speaks it, and
//! the choice between the cache and a download as its `hf_hub_download` makes it.
//!
//! The protocol: a HEAD names a file's commit, content and size ([`Metadata`]); a GET streams
//! its body into a partial file in the repo's `blobs/`, checked against its size and SHA-256
//! (`crate::http::save`); a refusal becomes [`Failure`], whose line of advice comes from
//! `vit::hub::answer` (the page gives the same).
//!
//! Redirects are followed here, not by ureq, because each hop decides where the token goes:
//! - relative ones always (the hub's small files come through a 307 to
//!   `/api/resolve-cache/...`, a renamed repo through another);
//! - absolute ones from a HEAD only to the hub's own hosts: the endpoint's origin, and
//!   huggingface.co over https (a mirror in `HF_ENDPOINT` may answer 308 to it); any other
//!   host is the CDN, whose 302 is itself the answer that carries the file's metadata;
//! - a GET follows any redirect to its body;
//! - the token is sent to the hub's own hosts only, never to the CDN or anywhere else.
//!
//! A file comes from the cache or is downloaded and held until it is kept:
//! - a revision given as a commit hash whose file is in the cache needs no request at all;
//! - `HF_HUB_OFFLINE` reads the cache alone;
//! - otherwise the hub is asked which commit the revision is; when it cannot answer (no
//!   network, a timeout, 5xx, 429, a refused token: 401 or 403, or an answer that is not a
//!   hub's) a copy in the cache serves, with a one-line warning, and the model's other files
//!   come from the cache without asking again.

use std::cell::RefCell;
use std::fs;

use anyhow::{Context, Result, anyhow, bail};
use sha2::Sha256;
use vit::hub::{Answer, CONFIG_FILE, HubModel, HubName, MAX_CONFIG_BYTES};

use super::cache::{Fetched, Partial, State, write_ref};
use super::env::HubEnv;
use crate::http::{self, Cut, Progress, Timeouts, header, origin, resolve};

/// More hops than this is a loop (huggingface_hub stops at 10 too).
const MAX_REDIRECTS: usize = 10;

/// The hub's own hosts besides the endpoint's, trusted over https only (huggingface_hub's
/// production and staging hubs).
const HUB_HOSTS: [&str; 2] = ["huggingface.co", "hub-ci.huggingface.co"];

/// What the hub says of a file before its body is fetched.
pub(super) struct Metadata {
    pub(super) commit: String,
    pub(super) etag: String,
    /// `X-Linked-Size`, or a direct answer's `Content-Length` (never a redirect's: that is the
    /// size of the redirect's own body).
    pub(super) size: Option<u64>,
    /// Where the body is: the CDN for a large file, the URL the redirects ended at for a small
    /// one.
    location: String,
}

/// The hub for one model's files: its protocol (HEAD, GET, redirects, tokens, refusals), and
/// whether a file comes from the cache or is downloaded.
pub(super) struct Client<'a> {
    pub(super) env: &'a HubEnv,
    /// Set once a file came from the cache because the hub could not be used: the next
    /// files are not asked for again (each would wait out the same timeout or outage).
    hub_failed: RefCell<bool>,
    head: ureq3::Agent,
    get: ureq3::Agent,
    head_timeouts: Timeouts,
    get_timeouts: Timeouts,
}

/// Why the hub's metadata for a file could not be had.
pub(super) enum Failure {
    /// No answer at all: why, with the variable that sets the wait if it timed out.
    Unreachable(String),
    /// An answer without the hub's headers: a captive portal, a proxy's error page, or an
    /// `HF_ENDPOINT` that is not a hub (huggingface_hub falls back to the cache on it too).
    NotAHub(String),
    /// The hub said no.
    Refused {
        /// The line of advice.
        message: String,
        /// `HTTP 503` and the like, for the warning when the cache serves instead.
        summary: String,
        cache_may_serve: bool,
    },
}

impl Failure {
    /// Whether a copy in the cache may stand in, as huggingface_hub lets one.
    pub(super) fn cache_may_serve(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::NotAHub(_) => true,
            Failure::Refused {
                cache_may_serve, ..
            } => *cache_may_serve,
        }
    }

    /// What the warning says when the cache serves instead.
    pub(super) fn summary(&self, endpoint: &str) -> String {
        match self {
            Failure::Unreachable(why) => {
                format!("the hub at {endpoint} could not be reached ({why})")
            }
            Failure::NotAHub(why) => why.clone(),
            Failure::Refused { summary, .. } => summary.clone(),
        }
    }
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
    pub(super) fn new(env: &'a HubEnv) -> Self {
        let connect = http::CONNECT.max(env.etag_timeout);
        let head_timeouts = Timeouts {
            connect,
            read: env.etag_timeout,
        };
        let get_timeouts = Timeouts {
            connect,
            read: env.download_timeout,
        };
        Self {
            env,
            head: http::agent(head_timeouts, 0),
            get: http::agent(get_timeouts, 0),
            head_timeouts,
            get_timeouts,
            hub_failed: RefCell::new(false),
        }
    }

    /// Whether `url` is on one of the hub's own hosts: the endpoint's origin, or huggingface.co
    /// over https. Only these see the token, and only their absolute redirects are followed
    /// for a file's metadata.
    fn trusted(&self, url: &str) -> bool {
        let Some(target) = origin(url) else {
            return false;
        };
        origin(&self.env.endpoint).as_ref() == Some(&target)
            || (target.0 == "https" && HUB_HOSTS.contains(&target.1.as_str()))
    }

    /// The token, if there is one and `url` may see it.
    fn token_for(&self, url: &str) -> Option<&str> {
        self.env.token.as_deref().filter(|_| self.trusted(url))
    }

    fn send(
        &self,
        agent: &ureq3::Agent,
        head: bool,
        url: &str,
    ) -> Result<(ureq3::http::Response<ureq3::Body>, bool), ureq3::Error> {
        let token = self.token_for(url);
        let mut request = if head {
            agent.head(url)
        } else {
            agent.get(url)
        };
        // The body as stored: its size and checksum are what the hub announces.
        request = request.header("Accept-Encoding", "identity");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.call()?;
        Ok((response, token.is_some()))
    }

    /// Why a request got no answer, naming the variable that sets the wait if it timed out.
    fn unreachable(e: &ureq3::Error, url: &str, timeouts: Timeouts, knob: &str) -> String {
        let why = http::describe(e, url, timeouts);
        if matches!(e, ureq3::Error::Timeout(_)) {
            format!("{why}; {knob} sets the wait")
        } else {
            why
        }
    }

    /// The hub's no, read as huggingface_hub reads it.
    fn refused(
        &self,
        name: &HubName,
        file: &str,
        response: &ureq3::http::Response<ureq3::Body>,
        token_sent: bool,
    ) -> Failure {
        let status = response.status().as_u16();
        let code = header(response, "X-Error-Code");
        let retry_after = header(response, "Retry-After");
        let answer = Answer {
            status,
            error_code: code.as_deref(),
            token_sent,
            retry_after: retry_after.as_deref(),
        };
        let message =
            answer
                .refusal()
                .message(name, &self.env.endpoint, file, vit::hub::Client::Trainer);
        let summary = format!(
            "the hub at {} answered HTTP {status}{}",
            self.env.endpoint,
            code.as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        );
        Failure::Refused {
            message,
            summary,
            cache_may_serve: answer.cache_may_serve(),
        }
    }

    /// What the hub says of `file`: a HEAD, through the hub's own redirects.
    pub(super) fn metadata(&self, name: &HubName, file: &str) -> Result<Metadata, Failure> {
        let mut url = name.file_url(&self.env.endpoint, file);
        for _ in 0..MAX_REDIRECTS {
            let (response, token_sent) = self.send(&self.head, true, &url).map_err(|e| {
                Failure::Unreachable(Self::unreachable(
                    &e,
                    &url,
                    self.head_timeouts,
                    "HF_HUB_ETAG_TIMEOUT",
                ))
            })?;
            let status = response.status().as_u16();
            if status >= 400 {
                return Err(self.refused(name, file, &response, token_sent));
            }
            let redirect = (300..400).contains(&status);
            let location = header(&response, "Location");
            if redirect {
                let Some(to) = location.as_deref().and_then(|l| resolve(&url, l)) else {
                    return Err(Failure::NotAHub(format!(
                        "{name}: the hub answered {status} for {file} without saying where to"
                    )));
                };
                if self.trusted(&to) {
                    url = to;
                    continue;
                }
                // The CDN: this redirect carries the file's metadata, and `to` its body.
                return self.read_metadata(name, file, &response, to);
            }
            return self.read_metadata(name, file, &response, url);
        }
        Err(Failure::NotAHub(format!(
            "{name}: the hub redirected {file} more than {MAX_REDIRECTS} times"
        )))
    }

    fn read_metadata(
        &self,
        name: &HubName,
        file: &str,
        response: &ureq3::http::Response<ureq3::Body>,
        location: String,
    ) -> Result<Metadata, Failure> {
        let missing = |what: &str| {
            Failure::NotAHub(format!(
                "{name}: the answer for {file} has no {what}, so it is not a Hugging Face hub's: is {} a hub, or did a proxy or firewall answer instead?",
                self.env.endpoint
            ))
        };
        let commit = header(response, "X-Repo-Commit").ok_or_else(|| missing("X-Repo-Commit"))?;
        let etag = header(response, "X-Linked-Etag")
            .or_else(|| header(response, "ETag"))
            .map(|t| normalise_etag(&t))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| missing("ETag"))?;
        if !is_commit(&commit) || !etag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Failure::NotAHub(format!(
                "{name}: the hub's answer for {file} names commit '{commit}' and etag '{etag}', which are not hashes"
            )));
        }
        let redirect = response.status().is_redirection();
        let size = header(response, "X-Linked-Size")
            .or_else(|| {
                (!redirect)
                    .then(|| header(response, "Content-Length"))
                    .flatten()
            })
            .and_then(|s| s.parse().ok());
        Ok(Metadata {
            commit,
            etag,
            size,
            location,
        })
    }

    /// Streams the body into a partial file in the repo's `blobs/`, checking its size as it
    /// comes and its SHA-256 at the end (when the etag is one: large files' are).
    pub(super) fn download(
        &self,
        name: &HubName,
        file: &str,
        meta: &Metadata,
        max_bytes: u64,
    ) -> Result<Partial> {
        let what = format!("{name}: {file}");
        let mut url = meta.location.clone();
        let mut hops = 0;
        let response = loop {
            let (response, token_sent) = self.send(&self.get, false, &url).map_err(|e| {
                let why = Self::unreachable(&e, &url, self.get_timeouts, "HF_HUB_DOWNLOAD_TIMEOUT");
                anyhow::anyhow!("{what}: the download failed ({why}); nothing was kept")
            })?;
            let status = response.status().as_u16();
            if response.status().is_redirection()
                && hops < MAX_REDIRECTS
                && let Some(to) = header(&response, "Location").and_then(|l| resolve(&url, &l))
            {
                url = to;
                hops += 1;
                continue;
            }
            if status >= 300 {
                let message = match self.refused(name, file, &response, token_sent) {
                    Failure::Refused { message, .. } => message,
                    other => other.summary(&self.env.endpoint),
                };
                bail!("{message}");
            }
            break response;
        };
        let expected = meta.size.or_else(|| http::content_length(&response));
        let repo = self.env.repo_dir(name);
        let mut temp = Partial::create(&self.env.cache, &repo, &meta.etag)?;
        let mut body = response.into_body().into_reader();
        // A bar (or, in a log, a line) for the weights; config.json comes and goes unannounced.
        let mut progress = Progress::new(&what, expected);
        if self.env.quiet || expected.is_some_and(|t| t < 1 << 20) {
            progress.quiet();
        }
        let limit = expected.unwrap_or(max_bytes).min(max_bytes);
        let file = temp.file.as_file_mut();
        let sha = match http::save::<Sha256>(&mut body, file, expected, Some(limit), &mut progress)
        {
            Ok(sha) => sha,
            Err(Cut::Read(e)) if http::timed_out(&e) => bail!(
                "{what}: the hub sent nothing for {} s after {} of {} bytes (HF_HUB_DOWNLOAD_TIMEOUT sets the wait); nothing was kept, run again to retry",
                self.get_timeouts.read.as_secs_f32(),
                progress.got(),
                expected.map_or("?".into(), |t| t.to_string())
            ),
            Err(Cut::Read(e)) => bail!(
                "{what}: the connection broke after {} of {} bytes ({}); nothing was kept, run again to retry",
                progress.got(),
                expected.map_or("?".into(), |t| t.to_string()),
                http::one_line(&e.to_string())
            ),
            Err(Cut::Write(e)) => {
                return Err(e).with_context(|| format!("writing {}", temp.file.path().display()));
            }
            Err(Cut::TooLong) => bail!(
                "{what}: the hub sent more than the {limit} bytes it announced; nothing was kept"
            ),
            Err(Cut::Short { total }) => bail!(
                "{what}: the connection closed after {} of {total} bytes; nothing was kept, run again to retry",
                progress.got()
            ),
        };
        // Large files' etag is their SHA-256 (git's SHA-1 names small ones).
        if meta.etag.len() == 64 && !sha.eq_ignore_ascii_case(&meta.etag) {
            bail!(
                "{what}: the download's SHA-256 is {sha}, but the hub says {}; nothing was kept",
                meta.etag
            );
        }
        temp.file
            .as_file()
            .sync_all()
            .with_context(|| format!("writing {}", temp.file.path().display()))?;
        Ok(temp)
    }
}

/// Cache or download, as huggingface_hub's `hf_hub_download` decides.
impl Client<'_> {
    /// The commit a revision names in the cache, if it was fetched before.
    fn cached_commit(&self, name: &HubName) -> Option<String> {
        if is_commit(&name.revision) {
            return Some(name.revision.to_ascii_lowercase());
        }
        let file = self.env.repo_dir(name).join("refs").join(&name.revision);
        fs::read_to_string(file)
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| is_commit(c))
    }

    /// `file` of `name` as the cache holds it (written by us or by Python).
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
    pub(super) fn config(&self, name: &HubName) -> Result<(Fetched, HubModel)> {
        let config = self.fetch(name, CONFIG_FILE, MAX_CONFIG_BYTES)?;
        let text = fs::read_to_string(config.path())
            .map_err(|e| anyhow!("{name}: config.json is not text: {e}"))?;
        let hub = vit::hub::read_config(&text, &format!("{name}: config.json"))?;
        Ok((config, hub))
    }

    /// `file` of `name`: from the cache when the hub's commit is there (or the hub cannot be
    /// used), else downloaded, checked against its size and checksum, and held until
    /// [`Fetched::keep`].
    pub(super) fn fetch(&self, name: &HubName, file: &str, max_bytes: u64) -> Result<Fetched> {
        let env = self.env;
        if is_commit(&name.revision)
            && let Some(found) = self.cached(name, file)
        {
            return Ok(found);
        }
        if env.offline {
            return self.cached(name, file).ok_or_else(|| {
                anyhow!(
                    "{name}: {file} is not in the cache ({}) and HF_HUB_OFFLINE is set, so nothing is downloaded; run once with the network (and HF_HUB_OFFLINE unset)",
                    env.cache.display()
                )
            });
        }
        if *self.hub_failed.borrow()
            && let Some(found) = self.cached(name, file)
        {
            return Ok(found);
        }
        let meta = match self.metadata(name, file) {
            Ok(meta) => meta,
            Err(failure) if failure.cache_may_serve() => {
                return match self.cached(name, file) {
                    Some(found) => {
                        if !self.hub_failed.replace(true) {
                            eprintln!(
                                "warning: {}; using the cached copy of {name} (commit {})",
                                failure.summary(&env.endpoint),
                                &found.commit[..7]
                            );
                        }
                        Ok(found)
                    }
                    None => Err(anyhow!("{}", not_cached(name, &env.endpoint, failure))),
                };
            }
            Err(failure) => return Err(anyhow!("{}", not_cached(name, &env.endpoint, failure))),
        };
        let repo = env.repo_dir(name);
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
}

/// The failure's line, for a file the cache does not hold either.
fn not_cached(name: &HubName, endpoint: &str, failure: Failure) -> String {
    match failure {
        Failure::Refused { message, .. } => message,
        Failure::Unreachable(why) => format!(
            "{}, but {name} is not in the cache yet",
            vit::hub::answer::unreachable(name, endpoint, &why, vit::hub::Client::Trainer)
        ),
        Failure::NotAHub(why) => why,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn env(endpoint: &str, token: Option<&str>) -> HubEnv {
        HubEnv {
            endpoint: endpoint.into(),
            cache: PathBuf::from("/nowhere"),
            token: token.map(str::to_owned),
            offline: false,
            quiet: true,
            etag_timeout: Duration::from_secs(1),
            download_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn etags_lose_quotes_and_weak_markers() {
        assert_eq!(normalise_etag("W/\"abc\""), "abc");
        assert_eq!(normalise_etag("\"0123\""), "0123");
    }

    #[test]
    fn the_token_goes_to_the_hubs_own_hosts_only() {
        let mirror = env("https://hf-mirror.com/", Some("hf_secret"));
        let c = Client::new(&mirror);
        for url in [
            "https://hf-mirror.com/timm/x/resolve/main/config.json",
            "https://HF-MIRROR.com:443/api/models/timm/x",
            // A mirror answering 308 to the hub itself.
            "https://huggingface.co/timm/x/resolve/main/config.json",
        ] {
            assert_eq!(c.token_for(url), Some("hf_secret"), "{url}");
        }
        for url in [
            "https://cdn-lfs.hf.co/repos/aa/bb",
            "https://cas-bridge.xethub.hf.co/x",
            // Not over plain http, and not to a look-alike.
            "http://huggingface.co/timm/x",
            "https://huggingface.co.evil.example/timm/x",
            "http://hf-mirror.com/timm/x",
            "https://hf-mirror.com:8443/timm/x",
            "not a url",
        ] {
            assert_eq!(c.token_for(url), None, "{url}");
        }
        let local = env("http://127.0.0.1:8080", Some("t"));
        let c = Client::new(&local);
        assert!(c.trusted("http://127.0.0.1:8080/a"));
        assert!(!c.trusted("http://127.0.0.1:8081/cdn/a"));
    }
}
