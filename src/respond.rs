//! Building responses: the OpenAI error shape, JSON bodies, and the decision headers every
//! response carries.

use gateway_core::error::GatewayError;
use worker::{Headers, Response, ResponseBuilder, Result};

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
    pub charged: Option<gateway_core::pricing::Usd>,
}

impl Decision {
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

/// An error in the OpenAI shape, with `Retry-After` and `Allow` where they apply.
pub fn error_response(err: &GatewayError, allow: Option<&str>) -> Result<Response> {
    error_response_with(err, allow, &Decision::default())
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
