//! A message as it crosses `postMessage` between the page and its engine: `{ body, attach }`,
//! the body a JavaScript value made by serde-wasm-bindgen from a `protocol` enum, and beside it
//! the attachments the body names by index (`protocol::Attached`): byte buffers, transferred
//! rather than copied, and `File`s (which the browser passes by reference).

use js_sys::{Array, ArrayBuffer, Reflect, Uint8Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::File;

use crate::platform::dom::js_message;
use crate::protocol::Attached;

/// What a message carries beside its body.
#[derive(Default)]
pub struct Attachments {
    values: Vec<JsValue>,
    /// The buffers among them, moved to the other side (and detached here).
    transfer: Vec<JsValue>,
}

impl Attachments {
    /// `bytes`, copied once out of this side's memory into a buffer of their own, which then
    /// moves to the other side without another copy.
    pub fn bytes(&mut self, bytes: &[u8]) -> Attached {
        let array = Uint8Array::new_with_length(bytes.len() as u32);
        array.copy_from(bytes);
        self.transfer.push(array.buffer().into());
        self.push(array.buffer().into())
    }

    /// A copy of `array`, moved (the page keeps `array`).
    pub fn copy_of(&mut self, array: &Uint8Array) -> Attached {
        let copy = array.slice(0, array.length());
        self.transfer.push(copy.buffer().into());
        self.push(copy.buffer().into())
    }

    /// `values` as little-endian f32 bytes (wasm is little-endian), moved as [`Self::bytes`].
    pub fn floats(&mut self, values: &[f32]) -> Attached {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.bytes(&bytes)
    }

    /// A `File` (or any value the browser clones cheaply).
    pub fn value(&mut self, value: JsValue) -> Attached {
        self.push(value)
    }

    fn push(&mut self, value: JsValue) -> Attached {
        self.values.push(value);
        Attached(self.values.len() as u32 - 1)
    }

    /// The message: `{ body, attach }`, and the list of what to transfer with it.
    pub fn seal(self, body: &impl Serialize) -> Result<(JsValue, Array), String> {
        let body = serde_wasm_bindgen::to_value(body)
            .map_err(|e| format!("a message could not be written: {e}"))?;
        let message = js_sys::Object::new();
        let attach: Array = self.values.into_iter().collect();
        let _ = Reflect::set(&message, &"body".into(), &body);
        let _ = Reflect::set(&message, &"attach".into(), &attach);
        Ok((message.into(), self.transfer.into_iter().collect()))
    }
}

/// A message received: its attachments, by index.
pub struct Received {
    attach: Array,
}

impl Received {
    /// Reads `{ body, attach }`.
    pub fn open<T: DeserializeOwned>(message: &JsValue) -> Result<(T, Self), String> {
        let body = Reflect::get(message, &"body".into()).map_err(|e| js_message(&e))?;
        let body = serde_wasm_bindgen::from_value(body)
            .map_err(|e| format!("a message could not be read: {e}"))?;
        let attach = Reflect::get(message, &"attach".into())
            .ok()
            .and_then(|a| a.dyn_into::<Array>().ok())
            .unwrap_or_default();
        Ok((body, Self { attach }))
    }

    fn get(&self, a: Attached) -> Result<JsValue, String> {
        let value = self.attach.get(a.0);
        if value.is_undefined() {
            return Err(format!("a message lacks its attachment {}", a.0));
        }
        Ok(value)
    }

    /// An attached buffer's bytes, copied into this side's memory.
    pub fn bytes(&self, a: Attached) -> Result<Vec<u8>, String> {
        let buffer: ArrayBuffer = self
            .get(a)?
            .dyn_into()
            .map_err(|_| format!("attachment {} is not a byte buffer", a.0))?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }

    /// An attached byte buffer, left where it is (no copy into this module's memory).
    pub fn array(&self, a: Attached) -> Result<Uint8Array, String> {
        let buffer: ArrayBuffer = self
            .get(a)?
            .dyn_into()
            .map_err(|_| format!("attachment {} is not a byte buffer", a.0))?;
        Ok(Uint8Array::new(&buffer))
    }

    /// An attached buffer of little-endian f32 values ([`Attachments::floats`]).
    pub fn floats(&self, a: Attached) -> Result<Vec<f32>, String> {
        let bytes = self.bytes(a)?;
        if bytes.len() % 4 != 0 {
            return Err(format!(
                "attachment {} is not a whole number of floats",
                a.0
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }

    /// An attached `File`.
    pub fn file(&self, a: Attached) -> Result<File, String> {
        self.get(a)?
            .dyn_into()
            .map_err(|_| format!("attachment {} is not a file", a.0))
    }
}
