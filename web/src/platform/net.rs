//! Fetching the model list, manifests, weights and samples from the page's own server.

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestCache, RequestInit, Response};

use crate::platform::dom::{js_message, window};

/// Every fetch is checked with the server (a cached copy only when it is still current): the
/// model list, manifests and weights change when a model is (re)published while the page is
/// served, and a stale copy would hide it or fail its checksum.
async fn get(url: &str) -> Result<Response, String> {
    let init = RequestInit::new();
    init.set_cache(RequestCache::NoCache);
    let response = JsFuture::from(window().fetch_with_str_and_init(url, &init))
        .await
        .map_err(|e| format!("could not fetch {url}: {}", js_message(&e)))?;
    let response: Response = response.unchecked_into();
    if !response.ok() {
        return Err(format!(
            "could not fetch {url}: the server answered {} {}",
            response.status(),
            response.status_text()
        ));
    }
    Ok(response)
}

pub async fn text(url: &str) -> Result<String, String> {
    let response = get(url).await?;
    let promise = response.text().map_err(|e| js_message(&e))?;
    let value = JsFuture::from(promise)
        .await
        .map_err(|e| format!("could not read {url}: {}", js_message(&e)))?;
    Ok(value.as_string().unwrap_or_default())
}

pub async fn bytes(url: &str) -> Result<Vec<u8>, String> {
    bytes_with_progress(url, 0, |_, _| {}).await
}

/// Downloads `url`, calling `progress(received, total)` as chunks arrive.
///
/// `expected` (from the manifest) is the total when the server sends no Content-Length, as
/// compressed transfers do. The body is read through its stream reader so the bar moves while
/// the bytes arrive, not only at the end.
pub async fn bytes_with_progress(
    url: &str,
    expected: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<u8>, String> {
    let response = get(url).await?;
    let total = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(expected);
    let Some(body) = response.body() else {
        let promise = response.array_buffer().map_err(|e| js_message(&e))?;
        let buffer = JsFuture::from(promise).await.map_err(|e| js_message(&e))?;
        return Ok(Uint8Array::new(&buffer).to_vec());
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut out = Vec::with_capacity(total as usize);
    progress(0, total);
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("the download of {url} broke off: {}", js_message(&e)))?;
        let done = Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(|e| js_message(&e))?;
        let array: Uint8Array = value.unchecked_into();
        let start = out.len();
        out.resize(start + array.length() as usize, 0);
        array.copy_to(&mut out[start..]);
        progress(out.len() as u64, total.max(out.len() as u64));
    }
    Ok(out)
}
