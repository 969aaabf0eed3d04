//! huggingface_hub's cache layout: `blobs/{etag}` holds a file's content,
//! `snapshots/{commit}/{file}` links to it, `refs/{revision}` names the commit. A file is
//! [`Fetched`] from the cache, or downloaded into a partial file beside it and moved in by
//! [`Fetched::keep`] only once checked.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

use crate::interrupt;

/// A file of the cache, or one fetched and checked but not yet in the cache.
pub struct Fetched {
    pub(super) commit: String,
    pub(super) state: State,
}

/// Partial files a killed process (SIGKILL, power loss) could not remove: any a day old is no
/// download in progress.
pub(super) fn sweep_stale_partials(cache: &Path) {
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
pub(super) struct Partial {
    pub(super) file: NamedTempFile,
    pub(super) _doomed: interrupt::Doomed,
}

pub(super) enum State {
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

pub(super) fn write_ref(file: &Path, commit: &str) -> Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    vit::weights::write_atomic(file, commit.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}
