//! The hub's HTTP protocol, on ureq: a HEAD names a file's commit, content and size
//! ([`Metadata`]), a GET streams its body into a partial file beside the cache, checked against
//! its size and SHA-256, and the hub's refusals become one line that says what to do.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use vit::hub::HubName;

use super::cache::{Partial, sweep_stale_partials};
use super::env::HubEnv;
use crate::download::{Cut, Progress, stream};
use crate::interrupt;

/// What the hub says of a file before its body is fetched.
pub(super) struct Metadata {
    pub(super) commit: String,
    pub(super) etag: String,
    pub(super) size: Option<u64>,
    /// Where the body is: a CDN for a large file, the same URL for a small one.
    location: String,
}

pub(super) struct Client<'a> {
    pub(super) env: &'a HubEnv,
    /// Follows no redirects: the HEAD's own answer carries the file's metadata.
    head: ureq::Agent,
    get: ureq::Agent,
}

pub(super) fn is_commit(revision: &str) -> bool {
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

    fn authorised(&self, request: ureq::Request) -> ureq::Request {
        match &self.env.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    pub(super) fn metadata(
        &self,
        name: &HubName,
        file: &str,
        url: &str,
    ) -> Result<Metadata, Failure> {
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
    pub(super) fn download(
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

pub(super) enum Failure {
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

pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weak_markers() {
        assert_eq!(normalise_etag("W/\"abc\""), "abc");
        assert_eq!(normalise_etag("\"0123\""), "0123");
    }
}
