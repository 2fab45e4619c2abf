//! Building responses: the OpenAI error shape, JSON bodies, and the decision headers every
//! response carries.

use gateway_core::engine::{Record, Target};
use gateway_core::error::GatewayError;
use gateway_core::protocol::native::ProviderError;
use worker::{Headers, Response, ResponseBuilder, Result};

use crate::aig::runtime::Seen;

/// Which target answered, after how many attempts: on every response.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: u32,
    /// `provider/model=outcome` per attempt, in order.
    pub trace: Vec<String>,
    pub log_id: Option<String>,
    pub cache_status: Option<String>,
    /// What this request was charged against the budgets, every attempt included (exact USD);
    /// sent as `x-gateway-cost-usd` once known.
    pub charged: Option<gateway_core::money::pricing::Usd>,
    /// The ledger's id of the request (`x-gateway-request-id`): its rows in D1 carry it.
    pub request_id: Option<String>,
    /// What the answering provider has left of today's budget (`x-gateway-budget-remaining-usd`),
    /// this request counted at its worst case.
    pub budget_remaining: Option<gateway_core::money::pricing::Usd>,
    /// What the caller should know of how its answer was checked or priced
    /// (`x-gateway-warning`): a schema the gateway does not check in full, a cost unknown.
    pub warnings: Vec<String>,
}

impl Decision {
    /// What the engine's run decided, with AI Gateway's headers of its last attempt; the model
    /// named is the one that answered (`answered_model`, when it was not the target's).
    pub fn of(record: &Record, targets: &[Target<'_>], seen: Seen, answered_model: Option<&str>) -> Decision {
        let last = record.last_target.map(|i| &targets[i]);
        Decision {
            provider: last.map(|t| t.provider.to_owned()),
            model: answered_model.map(str::to_owned).or_else(|| last.map(|t| t.model().to_owned())),
            attempts: record.attempts,
            trace: record.trace.clone(),
            log_id: seen.log_id,
            cache_status: seen.cache_status,
            charged: Some(record.charged),
            request_id: None,
            budget_remaining: None,
            warnings: Vec::new(),
        }
    }

    /// The decision headers as name/value pairs (also what an idempotent replay repeats).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("x-gateway-provider".to_owned(), self.provider.clone().unwrap_or_else(|| "none".to_owned())),
            ("x-gateway-model".to_owned(), self.model.clone().unwrap_or_else(|| "none".to_owned())),
            ("x-gateway-attempts".to_owned(), self.attempts.to_string()),
        ];
        let optional = [
            ("x-gateway-trace", (!self.trace.is_empty()).then(|| self.trace.join(", "))),
            ("cf-aig-log-id", self.log_id.clone()),
            ("cf-aig-cache-status", self.cache_status.clone()),
            ("x-gateway-cost-usd", self.charged.map(|c| c.to_string())),
            ("x-gateway-request-id", self.request_id.clone()),
            ("x-gateway-budget-remaining-usd", self.budget_remaining.map(|c| c.to_string())),
            ("x-gateway-warning", (!self.warnings.is_empty()).then(|| header_text(&self.warnings.join("; ")))),
        ];
        h.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k.to_owned(), v))));
        h
    }

    pub fn headers(&self) -> Headers {
        let h = Headers::new();
        for (name, value) in self.pairs() {
            let _ = h.set(&name, &value);
        }
        h
    }
}

/// Text as a header value: printable ASCII, at most 1,000 bytes.
fn header_text(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(1000).collect()
}

/// An error in the OpenAI shape, with `Retry-After` and `Allow` where they apply.
/// Nothing was attempted, so nothing was spent: `x-gateway-cost-usd: 0`, as on every error.
pub fn error_response(err: &GatewayError, allow: Option<&str>) -> Result<Response> {
    let nothing_spent = Decision { charged: Some(gateway_core::money::pricing::Usd::ZERO), ..Decision::default() };
    error_response_with(err, allow, &nothing_spent)
}

pub fn error_response_with(err: &GatewayError, allow: Option<&str>, decision: &Decision) -> Result<Response> {
    let headers = decision.headers();
    headers.set("content-type", "application/json")?;
    if let Some(retry) = &err.retry_after {
        headers.set("retry-after", retry)?;
    }
    if let Some(allow) = allow {
        headers.set("allow", allow)?;
    }
    Ok(ResponseBuilder::new().with_status(err.status()).with_headers(headers).fixed(err.to_json().into_bytes()))
}

/// A JSON body with the decision headers.
pub fn json_response(status: u16, body: String, decision: &Decision) -> Result<Response> {
    let headers = decision.headers();
    headers.set("content-type", "application/json")?;
    Ok(ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body.into_bytes()))
}

/// A whole answer, byte for byte, with the decision headers.
pub fn answer_response(status: u16, content_type: &str, body: Vec<u8>, decision: &Decision) -> Response {
    let headers = decision.headers();
    let _ = headers.set("content-type", content_type);
    ResponseBuilder::new().with_status(status).with_headers(headers).fixed(body)
}

/// A streamed answer with the decision headers (its cost is not among them: it is known only
/// at the stream's end).
pub fn stream_response(
    status: u16,
    content_type: &str,
    decision: &Decision,
    body: worker::web_sys::ReadableStream,
) -> Response {
    let mut decision = decision.clone();
    decision.charged = None;
    let headers = decision.headers();
    let _ = headers.set("content-type", content_type);
    let _ = headers.set("cache-control", "no-cache");
    ResponseBuilder::new().with_status(status).with_headers(headers).stream(body)
}

/// A provider's error answer, passed on in its own shape with the decision headers.
pub fn provider_error_response(error: ProviderError, decision: &Decision) -> Response {
    let headers = decision.headers();
    let _ = headers.set("content-type", error.content_type.as_deref().unwrap_or("application/json"));
    if let Some(r) = &error.retry_after {
        let _ = headers.set("retry-after", r);
    }
    ResponseBuilder::new().with_status(error.status).with_headers(headers).fixed(error.body.into_bytes())
}
