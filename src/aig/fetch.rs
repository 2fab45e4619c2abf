//! Calling AI Gateway: one `fetch` with a time-to-first-byte deadline, and bounded body reads.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::JsValue;
use worker::{wasm_bindgen_futures, web_sys};
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response, ResponseBody};

/// How an attempt to reach AI Gateway failed before any response.
pub enum SendError {
    /// No response headers within the deadline (the request was aborted).
    Timeout,
    /// The connection failed (DNS, refused, reset). The text is the runtime's, without secrets
    /// (it never sees our headers' values).
    Connection(String),
}

/// POSTs `body` to `url` and waits for the response headers at most `first_byte` long (a
/// stream that stalls later is cancelled through its body: `js/relay.mjs`).
pub async fn post(
    url: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
    first_byte: Duration,
) -> Result<Response, SendError> {
    send(Method::Post, url, headers, Some(body), first_byte).await
}

/// Sends a request (a JSON `body`, if any) and waits for the response headers at most
/// `first_byte` long.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&'static str, String)],
    body: Option<&[u8]>,
    first_byte: Duration,
) -> Result<Response, SendError> {
    let h = Headers::new();
    if body.is_some() {
        let _ = h.set("content-type", "application/json");
    }
    for (name, value) in headers {
        h.set(name, value).map_err(|_| SendError::Connection(format!("invalid header {name}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(h);
    if let Some(body) = body {
        init.with_body(Some(JsValue::from(js_sys::Uint8Array::from(body))));
    }
    let request = Request::new_with_init(url, &init).map_err(|e| SendError::Connection(e.to_string()))?;

    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let send = Box::pin(fetch.send_with_signal(&signal));
    let answered = match select(send, Delay::from(first_byte)).await {
        Either::Left((result, _)) => Some(result),
        Either::Right(_) => None,
    };
    match answered {
        Some(Ok(response)) => Ok(response),
        Some(Err(e)) => Err(SendError::Connection(e.to_string())),
        None => {
            controller.abort();
            Err(SendError::Timeout)
        }
    }
}

/// Reads at most `limit` bytes of a body (error bodies are shown in part, never held whole).
pub async fn read_limited(response: &mut Response, limit: usize) -> Vec<u8> {
    let Ok(mut stream) = response.stream() else {
        return response.bytes().await.unwrap_or_default();
    };
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Why a whole body could not be read.
pub enum BodyError {
    /// It did not end within the time allowed (a stalled upstream).
    Timeout,
    /// The connection broke, or the body was not readable. The runtime's text.
    Failed(String),
}

/// The whole body of a (non-streamed) answer, within `within`. Read by the runtime in one go
/// (`arrayBuffer()`): one promise and one copy into wasm, where `Response::bytes` reads it as a
/// stream with a reader, a promise and a copy per chunk (13% of the Worker's CPU on a
/// non-streamed chat in `make bench`'s profile). The deadline matters as much: an upstream that
/// sends half a body and then nothing must not hold the request forever.
pub async fn read_all(response: &Response, within: Duration) -> Result<Vec<u8>, BodyError> {
    let stream = match response.body() {
        ResponseBody::Stream(stream) => stream,
        ResponseBody::Body(bytes) => return Ok(bytes.clone()),
        ResponseBody::Empty => return Ok(Vec::new()),
    };
    let failed = |e: JsValue| BodyError::Failed(e.as_string().unwrap_or_else(|| format!("{e:?}")));
    let whole = web_sys::Response::new_with_opt_readable_stream(Some(stream)).map_err(failed)?;
    let read = wasm_bindgen_futures::JsFuture::from(whole.array_buffer().map_err(failed)?);
    // One timer for the whole read (its progress is the runtime's, not visible from here).
    match select(read, Delay::from(within)).await {
        Either::Left((Ok(buffer), _)) => Ok(js_sys::Uint8Array::new(&buffer).to_vec()),
        Either::Left((Err(e), _)) => Err(failed(e)),
        Either::Right(_) => Err(BodyError::Timeout),
    }
}

/// A small local body (a Durable Object's request or answer) in one read: `arrayBuffer()` is one
/// promise and one copy into wasm, where `text()` through workers-rs reads it as a stream, a
/// promise and a reader lock per chunk (the limiter's answers were 10% of a request's CPU so).
pub async fn whole_body(body: Result<js_sys::Promise, JsValue>) -> worker::Result<Vec<u8>> {
    let described = |e: JsValue| worker::Error::RustError(e.as_string().unwrap_or_else(|| format!("{e:?}")));
    let buffer = wasm_bindgen_futures::JsFuture::from(body.map_err(described)?).await.map_err(described)?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// A header of the upstream response, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}
