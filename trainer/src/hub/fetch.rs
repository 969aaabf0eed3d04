//! A file of a hub repo, from the cache when the hub's commit is there (or the hub is offline
//! or unreachable), else downloaded and held until it is kept.

use std::fs;

use anyhow::{Result, anyhow, bail};
use vit::hub::{CONFIG_FILE, HubModel, HubName, MAX_CONFIG_BYTES};

use super::cache::{Fetched, State, write_ref};
use super::client::{Client, Failure, is_commit};

impl Client<'_> {
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
    pub(super) fn config(&self, name: &HubName) -> Result<(Fetched, HubModel)> {
        let config = self.fetch(name, CONFIG_FILE, MAX_CONFIG_BYTES)?;
        let text = fs::read_to_string(config.path())
            .map_err(|e| anyhow!("{name}: config.json is not text: {e}"))?;
        let hub = vit::hub::read_config(&text, &format!("{name}: config.json"))?;
        Ok((config, hub))
    }

    /// `file` of `name`: from the cache when the hub's commit is there (or offline), else
    /// downloaded, checked against its size and checksum, and held until [`Fetched::keep`].
    pub(super) fn fetch(&self, name: &HubName, file: &str, max_bytes: u64) -> Result<Fetched> {
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
}
