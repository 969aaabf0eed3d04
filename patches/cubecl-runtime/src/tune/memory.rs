//! A place outside the process that remembers autotune's choices, for an application whose
//! storage `persistence` cannot reach or is too heavy for (a browser page: its Turso database on
//! OPFS is most of a megabyte of wasm). The application installs one [`TuneMemory`]; every
//! tuner asks it before tuning a key and tells it each choice it measured.

use alloc::string::String;
use alloc::sync::Arc;

use cubecl_environment::sync::Mutex;

/// Where autotune's choices are kept between processes.
///
/// `table` names the tuner and its device (`{device}/{tuner}`), `key` is the autotune key's
/// `Debug` form, and `checksum` names the candidate list: an index is an answer to that list
/// alone, so a memory must return it only for the same three.
pub trait TuneMemory: Send + Sync {
    /// The fastest candidate's index remembered for `key`, if any. `None` means the key is about
    /// to be tuned.
    fn recall(&self, table: &str, key: &str, checksum: &str) -> Option<usize>;
    /// The fastest candidate measured for `key`.
    fn remember(&self, table: &str, key: &str, checksum: &str, fastest_index: usize);
}

static MEMORY: Mutex<Option<Arc<dyn TuneMemory>>> = Mutex::new(None);

/// Installs `memory` for every tuner (`None`: none). Keys tuned or recalled before stay in each
/// tuner's own cache.
pub fn set_tune_memory(memory: Option<Arc<dyn TuneMemory>>) {
    *MEMORY.lock() = memory;
}

pub(crate) fn tune_memory() -> Option<Arc<dyn TuneMemory>> {
    MEMORY.lock().clone()
}

/// What a tune needs to tell the memory once it has measured its key.
#[derive(Debug, Clone)]
pub(crate) struct Memo {
    pub table: String,
    pub key: String,
    pub checksum: String,
}
