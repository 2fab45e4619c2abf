//! Reading a request's body, bounded: the same for every route that takes one.

use futures_util::StreamExt;
use gateway_core::error::{ErrorKind, GatewayError};
use worker::Request;

/// Reads the request body, refusing a wrong content type (415) or an oversized body (413) before
/// holding more of it than the limit.
pub async fn read_body(req: &mut Request, limit: usize) -> std::result::Result<Vec<u8>, GatewayError> {
    let headers = req.headers();
    let content_type = headers.get("content-type").ok().flatten().unwrap_or_default();
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
    let declared = headers.get("content-length").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let read_error = |e: worker::Error| {
        GatewayError::new(ErrorKind::InvalidRequest, format!("The request body could not be read: {e}"))
    };
    if declared.is_some() {
        // The runtime holds the request to its declared length, so one copy is enough.
        let body = req.bytes().await.map_err(read_error)?;
        return if body.len() > limit { Err(too_large()) } else { Ok(body) };
    }
    // No length declared (chunked): read chunk by chunk and stop at the limit.
    let mut stream = req.stream().map_err(read_error)?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.map_err(read_error)?);
        if body.len() > limit {
            return Err(too_large());
        }
    }
    Ok(body)
}
