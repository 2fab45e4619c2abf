//! The request as the runtime hands it over: a `web_sys::Request`, read only where a route asks.
//!
//! workers-rs' `Request::from` reads `method`, `url`, `headers` and `cf` on every request; the
//! `cf` getter alone (workerd materialises the object from its JSON) was about 6% of the
//! Worker's CPU on non-streamed chat in the bench profile, and no route reads it. Here the entry
//! reads the URL once (path and query come from that string, `gateway_core::request::url`) and
//! the headers object, and nothing else until a route asks.

use futures_util::StreamExt;
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::request::url;
use worker::{web_sys, ByteStream, Headers};

pub struct Incoming {
    raw: web_sys::Request,
    url: String,
    headers: Headers,
}

impl Incoming {
    pub fn new(raw: web_sys::Request) -> Self {
        let url = raw.url();
        let headers = Headers(raw.headers());
        Self { raw, url, headers }
    }

    pub fn method(&self) -> String {
        self.raw.method()
    }

    pub fn path(&self) -> &str {
        url::path(&self.url)
    }

    /// The query string without its `?`, `None` when the URL has none.
    pub fn query(&self) -> Option<&str> {
        url::query(&self.url)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).ok().flatten()
    }

    /// Reads the request body, refusing a wrong content type (415) or an oversized body (413)
    /// before holding more of it than the limit. The same for every route that takes one.
    pub async fn read_body(&self, limit: usize) -> std::result::Result<Vec<u8>, GatewayError> {
        let content_type = self.header("content-type").unwrap_or_default();
        let media = content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(GatewayError::new(
                ErrorKind::UnsupportedMediaType,
                "Send the request as JSON with `Content-Type: application/json`.",
            ));
        }
        let too_large = || {
            GatewayError::new(
                ErrorKind::PayloadTooLarge,
                format!("The request body is larger than this gateway's limit of {limit} bytes (MAX_BODY_BYTES)."),
            )
        };
        let declared = self.header("content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let read_error = |e: worker::Error| {
            GatewayError::new(ErrorKind::InvalidRequest, format!("The request body could not be read: {e}"))
        };
        if declared.is_some() {
            // The runtime holds the request to its declared length, so one copy is enough.
            let body = crate::aig::fetch::whole_body(self.raw.array_buffer()).await.map_err(read_error)?;
            return if body.len() > limit { Err(too_large()) } else { Ok(body) };
        }
        // No length declared (chunked): read chunk by chunk and stop at the limit.
        let Some(stream) = self.raw.body() else { return Ok(Vec::new()) };
        let mut stream = ByteStream::from(stream);
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            body.extend_from_slice(&chunk.map_err(read_error)?);
            if body.len() > limit {
                return Err(too_large());
            }
        }
        Ok(body)
    }
}
