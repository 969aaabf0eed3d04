//! SHA-256 by the browser's own `crypto.subtle`: native speed, where the `sha2` crate compiled
//! to wasm hashed ViT-Ti/16's 22.9 MB in 0.6–1.1 s here. Pages without it (an insecure origin)
//! fall back to `vit::weights::sha256_hex`, the same answer.

use js_sys::Uint8Array;
use wasm_bindgen_futures::JsFuture;

use crate::platform::scope::scope;

/// `bytes`' SHA-256 in lowercase hex.
pub async fn sha256_hex(bytes: &[u8]) -> String {
    match subtle(bytes).await {
        Some(hex) => hex,
        None => vit::weights::sha256_hex(bytes),
    }
}

async fn subtle(bytes: &[u8]) -> Option<String> {
    let subtle = scope().crypto().ok()?.subtle();
    // The bytes are copied when digest() is called, before anything else can run.
    let promise = subtle.digest_with_str_and_u8_array("SHA-256", bytes).ok()?;
    let digest = JsFuture::from(promise).await.ok()?;
    let digest = Uint8Array::new(&digest).to_vec();
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}
