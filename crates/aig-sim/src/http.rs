//! HTTP plumbing shared by every route: the response body type, JSON responses, the two error
//! envelopes Cloudflare uses, and query/path decoding.

use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub type Resp = Response<SimBody>;

/// Why a streamed body ended without its proper end. Returning it from the body makes hyper
/// abort the connection, so the client sees a truncated chunked body rather than a clean end.
#[derive(Debug)]
pub struct BodyAbort(pub &'static str);

impl fmt::Display for BodyAbort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyAbort {}

/// A response body: either all at once, or chunk by chunk from a channel so that every SSE
/// event reaches the client as its own write.
pub enum SimBody {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Result<Bytes, BodyAbort>>),
}

impl SimBody {
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        SimBody::Full((!bytes.is_empty()).then_some(bytes))
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = BodyAbort;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyAbort>>> {
        match self.get_mut() {
            SimBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            SimBody::Channel(rx) => rx.poll_recv(cx).map(|item| item.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, SimBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            SimBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            SimBody::Full(None) => SizeHint::with_exact(0),
            SimBody::Channel(_) => SizeHint::default(),
        }
    }
}

/// Marks a response with the provider it was about, for the one-line request log on stderr.
#[derive(Clone, Debug)]
pub struct ProviderTag(pub String);

/// A response with a body and content type. Status codes come from our own tables or from
/// validated fault scripts, so they are always valid.
pub fn response(status: u16, content_type: &str, body: SimBody) -> Resp {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

pub fn json_response(status: u16, body: &Value) -> Resp {
    response(status, "application/json", SimBody::full(body.to_string()))
}

/// Sets a header from a string we made; values that are not valid header text are dropped
/// rather than panicking.
pub fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// The gateway runtime's own error shape (observed on `gateway.ai.cloudflare.com`; note the
/// singular `error` key). Codes 2009 and 7003 are observed ones; the others the simulator uses
/// (2001 gateway not found, 2007 invalid request body, 2008 invalid provider/model,
/// 2010 invalid metadata, 2011 stall ended) are simulator-chosen.
pub fn gateway_error(status: u16, code: u32, message: &str) -> Resp {
    json_response(
        status,
        &json!({
            "success": false,
            "result": [],
            "messages": [],
            "error": [{"code": code, "message": message}],
            "name": "AiGatewayError",
            "httpCode": status,
            "internalCode": code,
            "message": message,
        }),
    )
}

/// The `api.cloudflare.com/client/v4` error envelope.
pub fn v4_error(status: u16, code: u32, message: &str) -> Resp {
    json_response(
        status,
        &json!({
            "success": false,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": null,
        }),
    )
}

pub fn v4_unauthorized() -> Resp {
    v4_error(401, 10000, "Authentication error")
}

pub fn v4_not_found() -> Resp {
    v4_error(404, 7002, "Not Found")
}

/// The v4 success envelope, with `result_info` for lists.
pub fn v4_ok(status: u16, result: Value, result_info: Option<Value>) -> Resp {
    let mut body = json!({"success": true, "errors": [], "messages": [], "result": result});
    if let Some(info) = result_info {
        body["result_info"] = info;
    }
    json_response(status, &body)
}

/// A header as text; headers that are not visible ASCII count as absent.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `Authorization`-style header `name` is exactly `Bearer <token>`.
pub fn has_bearer(headers: &HeaderMap, name: &str, token: &str) -> bool {
    header(headers, name).and_then(|v| v.strip_prefix("Bearer ")) == Some(token)
}

/// Reads a request body, refusing more than `limit` bytes. Errors carry the status to answer
/// with (413 for too large, 400 for a body that could not be read).
pub async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, (u16, String)> {
    let mut buf = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(Bytes::from(buf)),
            Some(Err(e)) => return Err((400, format!("could not read the request body: {e}"))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return Err((413, format!("request body larger than {limit} bytes")));
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Decodes `%XX` escapes (and `+` as space when `form` is set). Invalid escapes are kept as
/// they are and invalid UTF-8 is replaced, so decoding never fails.
pub fn percent_decode(s: &str, form: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if form => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=x%20y` → `[("a","1"),("b","x y")]`.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The last value of query parameter `name`.
pub fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Result type for hyper's service function: every failure is already a response.
pub type HandlerResult = Result<Resp, Infallible>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("a%3Ab", false), "a:b");
        assert_eq!(percent_decode("a+b%2", true), "a b%2");
        assert_eq!(percent_decode("%zz%", false), "%zz%");
        assert_eq!(percent_decode("%E2%80%A6", false), "…");
        let q = parse_query("page=2&provider=google-ai-studio&x&start_date=2026-01-01T00%3A00%3A00Z");
        assert_eq!(query_param(&q, "page"), Some("2"));
        assert_eq!(query_param(&q, "x"), Some(""));
        assert_eq!(query_param(&q, "start_date"), Some("2026-01-01T00:00:00Z"));
    }
}
