//! One JSON reader for every parse in the Worker.
//!
//! serde_json's `from_str` and `from_slice` are two readers, and every `Deserialize` type that is
//! read through both is compiled twice into the wasm. Every parse goes through `from_slice`
//! (a `&str` is valid UTF-8 already), so each type's deserializer is compiled once.
//!
//! [`edit`] reads JSON text as unparsed slices and rewrites only the spans that change.

pub mod edit;

use serde::Deserialize;

/// `crate::json::from_str`, through the slice reader (see the module's note).
pub fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    serde_json::from_slice(text.as_bytes())
}
