//! HTTP for the tool: one blocking client (rustls for Cloudflare, plain http for the simulator),
//! and the Cloudflare v4 envelope. Nothing it prints can contain a secret: transport errors and
//! error messages are redacted of every token the tool holds.

use std::time::Duration;

use gateway_core::error::redact;
use serde_json::Value;

/// An HTTP answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The most useful short message of an error answer (v4 `errors`, a provider's `error`,
    /// or a bit of the text), one line.
    pub fn message(&self) -> String {
        let v = self.json();
        let found = v.as_ref().and_then(|v| {
            let first = |k: &str| v.get(k)?.as_array()?.first()?.get("message")?.as_str().map(str::to_owned);
            first("errors")
                .or_else(|| first("error"))
                .or_else(|| v.get("error")?.get("message")?.as_str().map(str::to_owned))
                .or_else(|| v.get("message")?.as_str().map(str::to_owned))
        });
        let text = found.unwrap_or_else(|| self.body.clone());
        let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
        format!("HTTP {}: {}", self.status, one_line.trim())
    }
}

pub struct Http {
    agent: ureq::Agent,
    secrets: Vec<String>,
}

impl Http {
    pub fn new(secrets: Vec<String>) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .user_agent(concat!("agw/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Http { agent, secrets }
    }

    /// Redacts every secret the tool holds.
    pub fn clean(&self, text: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(text, &secrets)
    }

    /// Sends a request; `Err` only when there was no HTTP answer at all.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        let fail = |e: ureq::Error| self.clean(&format!("{url} could not be reached: {e}"));
        let result = match (method, body) {
            ("GET", _) => {
                let mut req = self.agent.get(url);
                for (k, v) in headers {
                    req = req.header(*k, v.as_str());
                }
                req.call()
            }
            ("DELETE", _) => {
                let mut req = self.agent.delete(url);
                for (k, v) in headers {
                    req = req.header(*k, v.as_str());
                }
                req.call()
            }
            (method, body) => {
                let mut req = match method {
                    "PUT" => self.agent.put(url),
                    _ => self.agent.post(url),
                };
                for (k, v) in headers {
                    req = req.header(*k, v.as_str());
                }
                let text = body.map(Value::to_string).unwrap_or_default();
                req.content_type("application/json").send(text.as_str())
            }
        };
        let mut response = result.map_err(fail)?;
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().map_err(fail)?;
        Ok(Reply { status, body })
    }
}

/// The Cloudflare API's AI Gateway endpoints for one account.
pub struct Cloudflare<'a> {
    pub http: &'a Http,
    /// `{CF_API_URL}/accounts/{account}/ai-gateway/gateways`.
    pub gateways_url: String,
    pub token: String,
}

impl Cloudflare<'_> {
    /// Calls `{gateways_url}{suffix}`.
    pub fn call(&self, method: &str, suffix: &str, body: Option<&Value>) -> Result<Reply, String> {
        let url = format!("{}{suffix}", self.gateways_url);
        self.http.send(method, &url, &[("authorization", format!("Bearer {}", self.token))], body)
    }
}

/// The `result` of a successful v4 envelope.
pub fn result(reply: &Reply) -> Option<Value> {
    let v = reply.json()?;
    (v.get("success")? == &Value::Bool(true)).then(|| v.get("result").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_each_shape() {
        let r = |status, body: &str| Reply { status, body: body.to_owned() };
        assert_eq!(
            r(404, r#"{"success":false,"errors":[{"code":7002,"message":"Not Found"}]}"#).message(),
            "HTTP 404: Not Found"
        );
        assert_eq!(r(401, r#"{"error":[{"code":2009,"message":"Unauthorized"}]}"#).message(), "HTTP 401: Unauthorized");
        assert_eq!(
            r(400, r#"{"type":"error","error":{"message":"max_tokens: Field required"}}"#).message(),
            "HTTP 400: max_tokens: Field required"
        );
        assert_eq!(r(502, "bad\ngateway").message(), "HTTP 502: bad gateway");
        assert_eq!(result(&r(200, r#"{"success":true,"result":{"id":"g"}}"#)).unwrap()["id"], "g");
        assert!(result(&r(200, r#"{"success":false}"#)).is_none());
    }
}
