//! Calling AI Gateway (and the Cloudflare API): one call to `js/upstream.mjs`, which does the
//! `fetch` with its time-to-first-byte deadline and the body's bounded read in JavaScript and
//! hands back one answer — one promise through wasm-bindgen's executor per attempt, where the
//! fetch, its deadline's timer and the body's `arrayBuffer()` were three, and AI Gateway's
//! headers read in the same go.

use std::time::Duration;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{wasm_bindgen_futures, web_sys};

#[wasm_bindgen(module = "/js/upstream.mjs")]
extern "C" {
    type Reply;
    #[wasm_bindgen(js_name = call)]
    #[allow(clippy::too_many_arguments)]
    fn call_js(
        url: &str,
        method: &str,
        headers: &str,
        body: &[u8],
        has_body: bool,
        first_byte_ms: f64,
        read: f64,
        error_limit: f64,
        idle_ms: f64,
        deadline_ms: f64,
    ) -> js_sys::Promise;
    #[wasm_bindgen(method, getter)]
    fn failure(this: &Reply) -> u32;
    #[wasm_bindgen(method, getter)]
    fn message(this: &Reply) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn status(this: &Reply) -> u16;
    #[wasm_bindgen(method, getter, js_name = logId)]
    fn log_id(this: &Reply) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = cacheStatus)]
    fn cache_status(this: &Reply) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = contentType)]
    fn content_type(this: &Reply) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = retryAfter)]
    fn retry_after(this: &Reply) -> Option<String>;
    #[wasm_bindgen(method, getter)]
    fn dlp(this: &Reply) -> bool;
    #[wasm_bindgen(method, getter)]
    fn bytes(this: &Reply) -> Option<js_sys::Uint8Array>;
    #[wasm_bindgen(method, getter)]
    fn stream(this: &Reply) -> Option<web_sys::ReadableStream>;
    #[wasm_bindgen(method, getter)]
    fn waited(this: &Reply) -> f64;
}

/// `js/upstream.mjs`'s codes, the same names and values (a test of the core reads both files:
/// `crates/core/tests/js_codes.rs`).
const STREAM: f64 = -1.0;
const WHOLE: f64 = -2.0;
const NONE: u32 = 0;
const TIMEOUT: u32 = 1;
const CONNECTION: u32 = 2;
const BODY_TIMEOUT: u32 = 3;
const BODY_FAILED: u32 = 4;

/// How an attempt to reach AI Gateway failed before any response.
pub enum SendError {
    /// No response headers within the deadline (the request was aborted).
    Timeout,
    /// The connection failed (DNS, refused, reset), or a header could not be sent. The text is
    /// the runtime's, without secrets (it never sees our headers' values).
    Connection(String),
}

/// How a 2xx answer's body is read (an error status's body is always read bounded).
pub enum Read {
    /// Not read: its stream is handed back (`js/relay.mjs` reads it).
    Stream,
    /// Whole (within the call's [`Bounds`]).
    Whole,
    /// At most this many bytes (`/admin`'s Cloudflare API calls).
    UpTo(usize),
}

/// How far a body is read: for at most `idle_ms`, never past `deadline_ms` (epoch ms), and an
/// error status's body at most `error_bytes` long.
#[derive(Clone, Copy)]
pub struct Bounds {
    pub idle_ms: u64,
    pub deadline_ms: u64,
    pub error_bytes: usize,
}

/// An answer: its status, the headers the engine reads, and its body as asked for.
pub struct Answer {
    pub status: u16,
    pub log_id: Option<String>,
    pub cache_status: Option<String>,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    /// AI Gateway's data-loss-prevention header was there.
    pub dlp: bool,
    pub body: Body,
}

pub enum Body {
    Bytes(Vec<u8>),
    /// The body's stream (`None`: the answer has no body).
    Stream(Option<web_sys::ReadableStream>),
    /// The whole body could not be read.
    Unreadable(BodyError),
}

/// Why a whole body could not be read.
pub enum BodyError {
    /// It did not end within this many ms (a stalled upstream).
    Timeout(u64),
    /// The connection broke, or the body was not readable. The runtime's text.
    Failed(String),
}

/// Sends a request (a JSON `body`, if any), waits for the response headers at most
/// `first_byte` long, and reads its body as `read` says, within `bounds`.
pub async fn call(
    method: &str,
    url: &str,
    headers: &[(&'static str, String)],
    body: Option<&[u8]>,
    first_byte: Duration,
    read: Read,
    bounds: Bounds,
) -> Result<Answer, SendError> {
    // One string for every header: `Headers` refuses a line break in a name or value, and so
    // does this (it would otherwise shift the pairs).
    let mut joined = String::new();
    for (name, value) in headers {
        if value.contains(['\n', '\r', '\0']) {
            return Err(SendError::Connection(format!("invalid header {name}")));
        }
        if !joined.is_empty() {
            joined.push('\n');
        }
        joined.push_str(name);
        joined.push('\n');
        joined.push_str(value);
    }
    let read = match read {
        Read::Stream => STREAM,
        Read::Whole => WHOLE,
        Read::UpTo(n) => n as f64,
    };
    let promise = call_js(
        url,
        method,
        &joined,
        body.unwrap_or_default(),
        body.is_some(),
        first_byte.as_millis() as f64,
        read,
        bounds.error_bytes as f64,
        bounds.idle_ms as f64,
        bounds.deadline_ms as f64,
    );
    // It never rejects; a rejection would be a bug in it, reported as a connection failure.
    let reply: Reply = match wasm_bindgen_futures::JsFuture::from(promise).await {
        Ok(reply) => reply.unchecked_into(),
        Err(e) => return Err(SendError::Connection(described(&e))),
    };
    let failure = reply.failure();
    match failure {
        TIMEOUT => return Err(SendError::Timeout),
        CONNECTION => return Err(SendError::Connection(reply.message().unwrap_or_default())),
        _ => {}
    }
    let body = match failure {
        NONE => match reply.bytes() {
            Some(bytes) => Body::Bytes(bytes.to_vec()),
            None => Body::Stream(reply.stream()),
        },
        BODY_TIMEOUT => Body::Unreadable(BodyError::Timeout(reply.waited() as u64)),
        BODY_FAILED => Body::Unreadable(BodyError::Failed(reply.message().unwrap_or_default())),
        other => Body::Unreadable(BodyError::Failed(format!("js/upstream.mjs answered an unknown failure {other}"))),
    };
    Ok(Answer {
        status: reply.status(),
        log_id: reply.log_id(),
        cache_status: reply.cache_status(),
        content_type: reply.content_type(),
        retry_after: reply.retry_after(),
        dlp: reply.dlp(),
        body,
    })
}

fn described(e: &JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// A small local body (a Durable Object's request or answer) in one read: `arrayBuffer()` is one
/// promise and one copy into wasm, where `text()` through workers-rs reads it as a stream, a
/// promise and a reader lock per chunk (the limiter's answers were 10% of a request's CPU so).
pub async fn whole_body(body: Result<js_sys::Promise, JsValue>) -> worker::Result<Vec<u8>> {
    let described = |e: JsValue| worker::Error::RustError(described(&e));
    let buffer = wasm_bindgen_futures::JsFuture::from(body.map_err(described)?).await.map_err(described)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}
