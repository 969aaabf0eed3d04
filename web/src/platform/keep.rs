//! Files kept in the browser for offline visits (the Cache API): what the page fetched from the
//! Hugging Face hub, keyed by the URL it was fetched from; and the cache where WebGPU's
//! autotune choices are kept per adapter (engine/tuning.rs), which "forget" drops too. A page without the Cache API (an
//! insecure origin) keeps nothing and says so in the console; nothing here is needed to run a
//! model.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, CacheStorage, Request, Response, ResponseInit};

use crate::platform::dom::js_message;
use crate::platform::scope::scope;

/// One cache for everything kept; its version changes if what is kept changes form.
const CACHE: &str = "vitrine-hub-v1";
/// Autotune's choices, one record per WebGPU adapter (engine/tuning.rs).
pub const TUNING_CACHE: &str = "vitrine-tuning-v1";
/// Each kept file's size, written beside it so "forget" can say what it frees without reading
/// every file back.
const SIZE_HEADER: &str = "x-vitrine-bytes";

fn storage() -> Result<CacheStorage, String> {
    scope().caches().map_err(|e| {
        format!(
            "this page cannot keep downloads (the Cache API needs https or localhost): {}",
            js_message(&e)
        )
    })
}

async fn open() -> Result<Cache, String> {
    let cache = JsFuture::from(storage()?.open(CACHE))
        .await
        .map_err(|e| format!("the download cache could not be opened: {}", js_message(&e)))?;
    Ok(cache.unchecked_into())
}

/// The bytes kept for `url`, or `None` (never kept, forgotten, or no Cache API).
pub async fn get(url: &str) -> Option<Vec<u8>> {
    let cache = open().await.ok()?;
    let found = JsFuture::from(cache.match_with_str(url)).await.ok()?;
    if found.is_undefined() {
        return None;
    }
    let response: Response = found.unchecked_into();
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    Some(Uint8Array::new(&buffer).to_vec())
}

/// A file to keep, copied out of the wasm memory at once so that the bytes can go on to be
/// read into a model while it waits to be kept (only once everything is checked).
pub struct Pending(Response);

impl Pending {
    pub fn new(bytes: &[u8]) -> Result<Self, String> {
        let init = ResponseInit::new();
        let headers = web_sys::Headers::new().map_err(|e| js_message(&e))?;
        headers
            .set(SIZE_HEADER, &bytes.len().to_string())
            .map_err(|e| js_message(&e))?;
        init.set_headers(&headers);
        let body = Uint8Array::from(bytes);
        Response::new_with_opt_buffer_source_and_init(Some(&body), &init)
            .map(Self)
            .map_err(|e| js_message(&e))
    }

    /// Keeps the file under `url`, replacing what was kept there.
    pub async fn keep(self, url: &str) -> Result<(), String> {
        let cache = open().await?;
        JsFuture::from(cache.put_with_str(url, &self.0))
            .await
            .map_err(|e| {
                format!(
                    "{url} could not be kept for offline use (is the browser's storage full?): {}",
                    js_message(&e)
                )
            })?;
        Ok(())
    }
}

/// Drops what is kept under `url` (a set of files kept only in part is no use).
pub async fn remove(url: &str) {
    if let Ok(cache) = open().await {
        let _ = JsFuture::from(cache.delete_with_str(url)).await;
    }
}

/// The URLs kept, with their sizes in bytes.
pub async fn list() -> Vec<(String, u64)> {
    let Ok(cache) = open().await else {
        return Vec::new();
    };
    let Ok(keys) = JsFuture::from(cache.keys()).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for key in Array::from(&keys).iter() {
        let request: Request = key.unchecked_into();
        let url = request.url();
        let size = match JsFuture::from(cache.match_with_request(&request)).await {
            Ok(found) if !found.is_undefined() => {
                let response: Response = found.unchecked_into();
                size_of(&response)
            }
            _ => 0,
        };
        out.push((url, size));
    }
    out
}

fn size_of(response: &Response) -> u64 {
    response
        .headers()
        .get(SIZE_HEADER)
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Drops everything kept; returns how many files and bytes that freed.
pub async fn forget() -> Result<(usize, u64), String> {
    let kept = list().await;
    let deleted: JsValue = JsFuture::from(storage()?.delete(CACHE))
        .await
        .map_err(|e| {
            format!(
                "the kept downloads could not be deleted: {}",
                js_message(&e)
            )
        })?;
    if deleted.as_bool() == Some(false) && !kept.is_empty() {
        return Err("the kept downloads could not be deleted".into());
    }
    Ok((kept.len(), kept.iter().map(|(_, b)| b).sum()))
}

/// Drops autotune's kept choices; returns for how many adapters. An engine that tuned keeps its
/// kernels chosen until it ends.
pub async fn forget_tuning() -> usize {
    let Ok(storage) = storage() else {
        return 0;
    };
    let Ok(cache) = JsFuture::from(storage.open(TUNING_CACHE)).await else {
        return 0;
    };
    let cache: Cache = cache.unchecked_into();
    let count = match JsFuture::from(cache.keys()).await {
        Ok(keys) => Array::from(&keys).length() as usize,
        Err(_) => 0,
    };
    let _ = JsFuture::from(storage.delete(TUNING_CACHE)).await;
    count
}
