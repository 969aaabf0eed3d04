//! A file of a hub repo, from the cache or downloaded and held until it is kept, deciding as
//! huggingface_hub's `hf_hub_download` does:
//! - a revision given as a commit hash whose file is in the cache needs no request at all;
//! - `HF_HUB_OFFLINE` reads the cache alone;
//! - otherwise the hub is asked which commit the revision is; when it cannot answer (no
//!   network, a timeout, 5xx, 429, a refused token: 401 or 403, or an answer that is not a
//!   hub's) a copy in the cache serves, with a one-line warning, and the model's other files
//!   come from the cache without asking again.

use std::cell::RefCell;
use std::fs;

use anyhow::{Result, anyhow, bail};
use vit::hub::{CONFIG_FILE, HubModel, HubName, MAX_CONFIG_BYTES};

use super::cache::{Fetched, State, write_ref};
use super::client::{Client, Failure, is_commit};

/// A client for one model's files, remembering whether the hub failed it already.
pub(super) struct Fetcher<'a> {
    client: Client<'a>,
    /// Set once a file came from the cache because the hub could not be used: the next
    /// files are not asked for again (each would wait out the same timeout or outage).
    hub_failed: RefCell<bool>,
}

impl<'a> Fetcher<'a> {
    pub(super) fn new(client: Client<'a>) -> Self {
        Self {
            client,
            hub_failed: RefCell::new(false),
        }
    }

    /// The commit a revision names in the cache, if it was fetched before.
    fn cached_commit(&self, name: &HubName) -> Option<String> {
        if is_commit(&name.revision) {
            return Some(name.revision.to_ascii_lowercase());
        }
        let file = self
            .client
            .env
            .repo_dir(name)
            .join("refs")
            .join(&name.revision);
        fs::read_to_string(file)
            .ok()
            .map(|c| c.trim().to_owned())
            .filter(|c| is_commit(c))
    }

    /// `file` of `name` as the cache holds it (written by us or by Python).
    fn cached(&self, name: &HubName, file: &str) -> Option<Fetched> {
        let commit = self.cached_commit(name)?;
        let path = self
            .client
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
        let env = self.client.env;
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
        let meta = match self.client.metadata(name, file) {
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
            Some(self.client.download(name, file, &meta, max_bytes)?)
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
