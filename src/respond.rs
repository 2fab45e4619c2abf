//! Building responses: the OpenAI error shape, JSON bodies, answers and streams, each with the
//! decision headers (`gateway_core::outcome`) every response carries.

use gateway_core::error::GatewayError;
use gateway_core::outcome::{nothing_attempted, RequestOutcome};
use gateway_core::protocol::native::ProviderError;
use worker::{Headers, Response, ResponseBuilder, Result};

/// Name/value pairs as the runtime's headers.
fn headers_of(pairs: &[(String, String)]) -> Headers {
    let h = Headers::new();
    for (name, value) in pairs {
        let _ = h.set(name, value);
    }
    h
}

/// An error in the OpenAI shape, with `Retry-After` and `Allow` where they apply.
/// Nothing was attempted, so nothing was spent: `x-gateway-cost-usd: 0`, as on every error.
pub fn error_response(err: &GatewayError, allow: Option<&str>) -> Result<Response> {
    let nothing_spent = RequestOutcome::new(gateway_core::ledger::Route::Chat).headers();
    error_response_with(err, allow, &nothing_spent)
}

pub fn error_response_with(err: &GatewayError, allow: Option<&str>, decision: &[(String, String)]) -> Result<Response> {
    let headers = headers_of(decision);
    headers.set("content-type", "application/json")?;
    if let Some(retry) = &err.retry_after {
        headers.set("retry-after", retry)?;
    }
    if let Some(allow) = allow {
        headers.set("allow", allow)?;
    }
    Ok(ResponseBuilder::new().with_status(err.status()).with_headers(headers).fixed(err.to_json().into_bytes()))
}

/// A JSON body of the Worker's own (nothing attempted, nothing charged).
pub fn json_response(status: u16, body: String) -> Result<Response> {
    let headers = headers_of(&nothing_attempted());
    headers.set("content-type", "application/json")?;
    Ok(ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body.into_bytes()))
}

/// A whole answer, byte for byte, with the decision headers.
pub fn answer_response(status: u16, content_type: &str, body: Vec<u8>, decision: &[(String, String)]) -> Response {
    let headers = headers_of(decision);
    let _ = headers.set("content-type", content_type);
    ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body)
}

/// A streamed answer with the decision headers (its cost is not among them: it is known only
/// at the stream's end).
pub fn stream_response(
    status: u16,
    content_type: &str,
    decision: &[(String, String)],
    body: worker::web_sys::ReadableStream,
) -> Response {
    let headers = headers_of(decision);
    let _ = headers.set("content-type", content_type);
    let _ = headers.set("cache-control", "no-cache");
    ResponseBuilder::new().with_status(status).with_headers(headers).stream(body)
}

/// A provider's error answer, passed on in its own shape with the decision headers.
pub fn provider_error_response(error: ProviderError, decision: &[(String, String)]) -> Response {
    let headers = headers_of(decision);
    let _ = headers.set("content-type", error.content_type.as_deref().unwrap_or("application/json"));
    if let Some(r) = &error.retry_after {
        let _ = headers.set("retry-after", r);
    }
    ResponseBuilder::new().with_status(error.status).with_headers(headers).fixed(error.body.into_bytes())
}
