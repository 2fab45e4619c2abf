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
}

impl Decision {
    pub fn headers(&self) -> Headers {
        let h = Headers::new();
        let _ = h.set("x-gateway-provider", self.provider.as_deref().unwrap_or("none"));
        let _ = h.set("x-gateway-model", self.model.as_deref().unwrap_or("none"));
        let _ = h.set("x-gateway-attempts", &self.attempts.to_string());
        if !self.trace.is_empty() {
            let _ = h.set("x-gateway-trace", &self.trace.join(", "));
        }
        if let Some(id) = &self.log_id {
            let _ = h.set("cf-aig-log-id", id);
        }
        if let Some(status) = &self.cache_status {
            let _ = h.set("cf-aig-cache-status", status);
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
