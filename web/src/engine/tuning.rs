//! Autotune's choices, remembered per WebGPU adapter in the browser's Cache API, so that a
//! second visit tunes nothing (cubecl's own `persistence` would bring a Turso database into the
//! wasm; patches/cubecl-runtime lets an application keep the choices instead).
//!
//! The record of one adapter is loaded once, when WebGPU starts; each choice autotune measures
//! is added and the record written back. The counters say what this engine tuned and recalled,
//! for the status line and `window.vitrine.timings()`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::cubecl::tune::{TuneMemory, set_tune_memory};
use js_sys::Uint8Array;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use crate::platform::dom::now;
use crate::platform::scope::scope;
use crate::protocol::Tuning;

/// Its own cache, apart from the kept downloads; the version changes if the record's form does.
const CACHE: &str = crate::platform::keep::TUNING_CACHE;

/// What is kept for one adapter.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    adapter: String,
    /// When the last choice was measured (ms since the epoch).
    tuned_at: f64,
    /// From the first key tuned to the last choice measured, in the visit that tuned them.
    tuning_ms: f64,
    /// `table \u{1f} key \u{1f} checksum` -> the fastest candidate's index.
    choices: BTreeMap<String, usize>,
}

#[derive(Default)]
struct State {
    record: Record,
    /// Keys tuned and recalled by this engine.
    tuned: u32,
    recalled: u32,
    /// When this engine began its first tune and measured its last choice (`now()`).
    began: Option<f64>,
    ended: Option<f64>,
    /// A write is under way / the record changed since it began.
    writing: bool,
    dirty: bool,
}

struct Memory(Mutex<State>);

static MEMORY: Mutex<Option<Arc<Memory>>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn entry(table: &str, key: &str, checksum: &str) -> String {
    format!("{table}\u{1f}{key}\u{1f}{checksum}")
}

impl TuneMemory for Memory {
    fn recall(&self, table: &str, key: &str, checksum: &str) -> Option<usize> {
        let mut s = lock(&self.0);
        let found = s.record.choices.get(&entry(table, key, checksum)).copied();
        match found {
            Some(_) => s.recalled += 1,
            None => {
                s.tuned += 1;
                s.began.get_or_insert_with(now);
            }
        }
        found
    }

    fn remember(&self, table: &str, key: &str, checksum: &str, fastest_index: usize) {
        {
            let mut s = lock(&self.0);
            s.record
                .choices
                .insert(entry(table, key, checksum), fastest_index);
            let t = now();
            s.ended = Some(t);
            s.record.tuned_at = js_sys::Date::now();
            s.record.tuning_ms = t - s.began.unwrap_or(t);
            s.dirty = true;
            if s.writing {
                return;
            }
            s.writing = true;
        }
        wasm_bindgen_futures::spawn_local(write_back());
    }
}

/// Loads `adapter`'s record and hands autotune the memory; without the Cache API (an insecure
/// origin) the memory starts empty and keeps nothing.
pub async fn start(adapter: &str) {
    let record = match read(adapter).await {
        Some(r) if r.adapter == adapter => r,
        _ => Record {
            adapter: adapter.to_string(),
            ..Record::default()
        },
    };
    let memory = Arc::new(Memory(Mutex::new(State {
        record,
        ..State::default()
    })));
    *lock(&MEMORY) = Some(memory.clone());
    set_tune_memory(Some(memory));
}

/// What this engine tuned and recalled so far, and when the adapter's choices were measured.
pub fn tuning() -> Option<Tuning> {
    let memory = lock(&MEMORY).clone()?;
    let s = lock(&memory.0);
    Some(Tuning {
        tuned: s.tuned,
        recalled: s.recalled,
        tuning_ms: match (s.began, s.ended) {
            (Some(b), Some(e)) => Some(e - b),
            _ => None,
        },
        remembered: s.record.choices.len() as u32,
        tuned_at: (s.record.tuned_at > 0.0).then_some(s.record.tuned_at),
        remembered_ms: (s.record.tuning_ms > 0.0).then_some(s.record.tuning_ms),
    })
}

/// Writes the record until it no longer changes under the write.
async fn write_back() {
    let Some(memory) = lock(&MEMORY).clone() else {
        return;
    };
    loop {
        let (url, json) = {
            let mut s = lock(&memory.0);
            if !s.dirty {
                s.writing = false;
                return;
            }
            s.dirty = false;
            (
                url(&s.record.adapter),
                serde_json::to_string(&s.record).unwrap_or_default(),
            )
        };
        if let Err(e) = write(&url, &json).await {
            web_sys::console::warn_1(&format!("autotune's choices were not kept: {e}").into());
        }
    }
}

fn url(adapter: &str) -> String {
    format!(
        "tuning?adapter={}",
        String::from(js_sys::encode_uri_component(adapter))
    )
}

async fn open() -> Result<Cache, String> {
    let storage = scope().caches().map_err(|_| "no Cache API here")?;
    let cache = JsFuture::from(storage.open(CACHE))
        .await
        .map_err(|_| "the tuning cache could not be opened")?;
    Ok(cache.unchecked_into())
}

async fn read(adapter: &str) -> Option<Record> {
    let cache = open().await.ok()?;
    let found = JsFuture::from(cache.match_with_str(&url(adapter)))
        .await
        .ok()?;
    if found.is_undefined() {
        return None;
    }
    let response: Response = found.unchecked_into();
    let text = JsFuture::from(response.text().ok()?).await.ok()?;
    serde_json::from_str(&text.as_string()?).ok()
}

async fn write(url: &str, json: &str) -> Result<(), String> {
    let cache = open().await?;
    let body = Uint8Array::from(json.as_bytes());
    let response = Response::new_with_opt_buffer_source(Some(&body))
        .map_err(|_| "the record could not be made a response")?;
    JsFuture::from(cache.put_with_str(url, &response))
        .await
        .map_err(|_| "the browser's storage refused it".to_string())?;
    Ok(())
}
