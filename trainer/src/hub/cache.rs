//! huggingface_hub's cache layout: `blobs/{etag}` holds a file's content,
//! `snapshots/{commit}/{file}` links to it, `refs/{revision}` names the commit. A file is
//! [`Fetched`] from the cache, or downloaded into a partial file and moved in by
//! [`Fetched::keep`] only once checked.
//!
//! Kept as huggingface_hub keeps it, so that Python and `hf cache scan` share it with us:
//! - a partial download is `blobs/{etag}.{random}.incomplete` (huggingface_hub's name since it
//!   gave each process its own), never a file in the cache's root, which `hf cache scan`
//!   would report as a broken repo;
//! - every file and folder is created with the umask's permissions (`0644` and `0755` under
//!   umask 022), so that a cache shared between users or mounted into a container is
//!   readable by all its readers, as Python's `_chmod_and_move` makes its blobs;
//! - a repo folder has `snapshots/` from the start, so that even an interrupted first download
//!   leaves a folder the scan reads as a repo with no revision rather than a corrupted one;
//! - a ref is written only after the snapshot it names exists.

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

/// A partial file older than this is no download in progress (each write touches it): one that
/// a killed process (SIGKILL, power loss) could not remove.
const STALE: Duration = Duration::from_secs(24 * 3600);

fn is_stale(path: &Path) -> bool {
    path.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE)
}

/// Removes the stale partial files of `repo`, and those that earlier versions of Vitrine left
/// in the cache's root (`.vitrine-*.incomplete`).
fn sweep_stale_partials(cache: &Path, repo: &Path) {
    let partials = |dir: &Path| -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".incomplete"))
            .collect()
    };
    let legacy = partials(cache).into_iter().filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".vitrine-"))
    });
    for path in legacy.chain(partials(&repo.join("blobs"))) {
        if is_stale(&path) {
            let _ = fs::remove_file(path);
        }
    }
}

/// A file being fetched into the repo's `blobs/`: removed when dropped, and by Ctrl-C.
pub(super) struct Partial {
    pub(super) file: NamedTempFile,
    pub(super) _doomed: interrupt::Doomed,
}

impl Partial {
    /// `blobs/{etag}.{random}.incomplete` in `repo`, with the umask's permissions.
    pub(super) fn create(cache: &Path, repo: &Path, etag: &str) -> Result<Self> {
        let blobs = repo.join("blobs");
        for dir in [&blobs, &repo.join("snapshots")] {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        sweep_stale_partials(cache, repo);
        let prefix = format!("{etag}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".incomplete");
        // tempfile's own default is 0600, which other users of a shared cache cannot read;
        // 0666 is what the umask then takes away from, as for any file a program creates.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666));
        }
        let file = builder
            .tempfile_in(&blobs)
            .with_context(|| format!("creating a file in {}", blobs.display()))?;
        let doomed = interrupt::remove_on_interrupt(file.path());
        Ok(Self {
            file,
            _doomed: doomed,
        })
    }
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
                    // Beside the blob, so the rename is atomic.
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

/// `refs/{revision}` names `commit`, without a newline, as huggingface_hub writes it.
pub(super) fn write_ref(file: &Path, commit: &str) -> Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    vit::weights::write_atomic(file, commit.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}
