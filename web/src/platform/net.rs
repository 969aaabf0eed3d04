//! Fetching: the model list, manifests, weights and samples from the page's own server, and
//! hub models from the Hugging Face hub (with the hub's error codes), from the page or from
//! the engine's worker (which is given absolute URLs: a worker resolves relative ones against
//! its own script).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, RequestCache, RequestInit, Response};

use crate::platform::dom::js_message;
use crate::platform::scope::scope;

/// Why a fetch got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No answer at all: no network, a refused connection, or a cross-origin answer the
    /// browser hid (CORS).
    Network { url: String, why: String },
    /// An answer with an error status, and the hub's `X-Error-Code` when it sent one.
    Status {
        url: String,
        status: u16,
        text: String,
        code: Option<String>,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Network { url, why } => write!(f, "could not fetch {url}: {why}"),
            Failure::Status {
                url, status, text, ..
            } => write!(
                f,
                "could not fetch {url}: the server answered {status} {text}"
            ),
        }
    }
}

/// Fetches `url`; `fresh` has the browser check its HTTP cache's copy with the server first.
pub async fn fetch(url: &str, fresh: bool) -> Result<Response, Failure> {
    let init = RequestInit::new();
    if fresh {
        init.set_cache(RequestCache::NoCache);
    }
    let response = JsFuture::from(scope().fetch(url, &init))
        .await
        .map_err(|e| Failure::Network {
            url: url.into(),
            why: js_message(&e),
        })?;
    let response: Response = response.unchecked_into();
    if !response.ok() {
        return Err(Failure::Status {
            url: url.into(),
            status: response.status(),
            text: response.status_text(),
            code: response.headers().get("x-error-code").ok().flatten(),
        });
    }
    Ok(response)
}

/// Every fetch from the page's own server is checked with it (a cached copy only when it is
/// still current): the model list, manifests and weights change when a model is (re)published
/// while the page is served, and a stale copy would hide it or fail its checksum.
async fn get(url: &str) -> Result<Response, String> {
    fetch(url, true).await.map_err(|e| e.to_string())
}

pub async fn text(url: &str) -> Result<String, String> {
    read_text(get(url).await?, url).await
}

/// A response's body as text (`url` names it in messages).
pub async fn read_text(response: Response, url: &str) -> Result<String, String> {
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
pub async fn bytes_with_progress(
    url: &str,
    expected: u64,
    progress: impl FnMut(u64, u64),
) -> Result<Vec<u8>, String> {
    read_bytes(get(url).await?, url, expected, progress).await
}

/// A response's body, calling `progress(received, total)` as chunks arrive.
///
/// `expected` (from the manifest) is the total when the server sends no Content-Length, as
/// compressed transfers do. The body is read through its stream reader so the bar moves while
/// the bytes arrive, not only at the end.
pub async fn read_bytes(
    response: Response,
    url: &str,
    expected: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<u8>, String> {
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
    // Never trust a length from the network for an allocation up front.
    let mut out = Vec::with_capacity(total.min(1 << 30) as usize);
    progress(0, total);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|e| {
            format!(
                "the download of {url} broke off after {} of {} bytes: {}",
                out.len(),
                total,
                js_message(&e)
            )
        })?;
        let done = Reflect::get(&chunk, &"done".into())
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            break;
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(|e| js_message(&e))?;
        let array: Uint8Array = value.unchecked_into();
        if expected != 0 && (out.len() + array.length() as usize) as u64 > expected {
            return Err(format!(
                "{url} sent more than the {expected} bytes it was said to have"
            ));
        }
        let start = out.len();
        out.resize(start + array.length() as usize, 0);
        array.copy_to(&mut out[start..]);
        progress(out.len() as u64, total.max(out.len() as u64));
    }
    Ok(out)
}
