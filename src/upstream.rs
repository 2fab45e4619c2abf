//! Calling AI Gateway: one `fetch` with a time-to-first-byte deadline, and bounded body reads.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::StreamExt;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response};

/// How an attempt to reach AI Gateway failed before any response.
pub enum SendError {
    /// No response headers within the deadline (the request was aborted).
    Timeout,
    /// The connection failed (DNS, refused, reset). The text is the runtime's, without secrets
    /// (it never sees our headers' values).
    Connection(String),
}

/// POSTs `body` to `url` and waits for the response headers at most `first_byte` long.
/// The returned controller aborts the request if the caller gives up later (e.g. a stalled stream).
pub async fn post(
    url: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
    first_byte: Duration,
) -> Result<(Response, AbortController), SendError> {
    let h = Headers::new();
    let _ = h.set("content-type", "application/json");
    for (name, value) in headers {
        h.set(name, value).map_err(|_| SendError::Connection(format!("invalid header {name}")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(h).with_body(Some(JsValue::from(js_sys::Uint8Array::from(body))));
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
        Some(Ok(response)) => Ok((response, controller)),
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

/// A header of the upstream response, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}
