//! Gateway management: the admin routes, translated to the Cloudflare API (reference §3, §6).
//!
//! | admin route                                         | Cloudflare API (`{CF_API_URL}/accounts/{account}/ai-gateway/…`) |
//! |-----------------------------------------------------|------------------------------------|
//! | `GET /admin/gateways` (`page`, `per_page`, `search`) | `GET gateways`                    |
//! | `POST /admin/gateways`                              | `POST gateways`                    |
//! | `GET/PUT/DELETE /admin/gateways/{id}`               | `GET/PUT/DELETE gateways/{id}`     |
//! | `GET/POST /admin/gateways/{id}/provider_configs`    | `GET/POST gateways/{id}/provider_configs` (stored provider keys) |
//!
//! The routes take `Authorization: Bearer <ADMIN_TOKEN>`, a secret apart from `AGENT_TOKEN` (an
//! agent can call models, not reconfigure the gateway); the Worker calls Cloudflare with
//! `CF_API_TOKEN`. Cloudflare's v4 envelopes are passed through as they are, except that:
//! * a stored key's secret is never returned: any `secret` field is dropped from results (the API
//!   shows only `secret_preview`; this holds even if that ever changed), and every configured
//!   secret is redacted from the text;
//! * Cloudflare refusing `CF_API_TOKEN` (401/403) becomes a 502 naming the token, so an operator
//!   does not take it for a wrong `ADMIN_TOKEN`;
//! * an answer that is not a v4 envelope becomes a 502.

use serde_json::Value;

use crate::config::Settings;
use crate::error::{redact, ErrorKind, GatewayError};
use crate::request::authenticate::check_bearer;

/// One admin operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCall {
    ListGateways { query: Option<String> },
    CreateGateway,
    GetGateway(String),
    UpdateGateway(String),
    DeleteGateway(String),
    ListProviderKeys { gateway: String, query: Option<String> },
    StoreProviderKey(String),
}

/// Query parameters passed on to list calls; anything else is dropped.
const LIST_PARAMS: &[&str] = &["page", "per_page", "search"];

impl AdminCall {
    /// Reads an admin request (the route table already matched its shape).
    pub fn parse(method: &str, path: &str, query: Option<&str>) -> Result<AdminCall, GatewayError> {
        let rest = path.strip_prefix("/admin/gateways").unwrap_or("");
        let segments: Vec<&str> = rest.split('/').skip(1).collect();
        let query = list_query(query);
        let call = match (method, segments.as_slice()) {
            ("GET" | "HEAD", []) => AdminCall::ListGateways { query },
            ("POST", []) => AdminCall::CreateGateway,
            ("GET" | "HEAD", [id]) => AdminCall::GetGateway(gateway_id(id)?),
            ("PUT", [id]) => AdminCall::UpdateGateway(gateway_id(id)?),
            ("DELETE", [id]) => AdminCall::DeleteGateway(gateway_id(id)?),
            ("GET" | "HEAD", [id, "provider_configs"]) => {
                AdminCall::ListProviderKeys { gateway: gateway_id(id)?, query }
            }
            ("POST", [id, "provider_configs"]) => AdminCall::StoreProviderKey(gateway_id(id)?),
            _ => return Err(GatewayError::new(ErrorKind::NotFound, "No such admin route.")),
        };
        Ok(call)
    }

    /// The HTTP method of the Cloudflare API call.
    pub fn method(&self) -> &'static str {
        match self {
            AdminCall::ListGateways { .. } | AdminCall::GetGateway(_) | AdminCall::ListProviderKeys { .. } => "GET",
            AdminCall::CreateGateway | AdminCall::StoreProviderKey(_) => "POST",
            AdminCall::UpdateGateway(_) => "PUT",
            AdminCall::DeleteGateway(_) => "DELETE",
        }
    }

    /// Whether the call sends the request's JSON body on.
    pub fn has_body(&self) -> bool {
        matches!(self, AdminCall::CreateGateway | AdminCall::UpdateGateway(_) | AdminCall::StoreProviderKey(_))
    }

    /// The Cloudflare API URL.
    pub fn url(&self, settings: &Settings) -> Result<String, GatewayError> {
        let Some(account) = &settings.account_id else {
            return Err(GatewayError::new(ErrorKind::Configuration, "CF_ACCOUNT_ID must be set for the admin routes."));
        };
        let base = format!("{}/accounts/{account}/ai-gateway/gateways", settings.api_url);
        let with_query = |url: String, q: &Option<String>| match q {
            Some(q) => format!("{url}?{q}"),
            None => url,
        };
        Ok(match self {
            AdminCall::ListGateways { query } => with_query(base, query),
            AdminCall::CreateGateway => base,
            AdminCall::GetGateway(id) | AdminCall::UpdateGateway(id) | AdminCall::DeleteGateway(id) => {
                format!("{base}/{id}")
            }
            AdminCall::ListProviderKeys { gateway, query } => {
                with_query(format!("{base}/{gateway}/provider_configs"), query)
            }
            AdminCall::StoreProviderKey(gateway) => format!("{base}/{gateway}/provider_configs"),
        })
    }
}

/// AI Gateway's id rule (reference §6): `^[a-z0-9_]+(?:-[a-z0-9_]+)*$`, 1–64 characters.
pub fn valid_gateway_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn gateway_id(id: &str) -> Result<String, GatewayError> {
    if valid_gateway_id(id) {
        Ok(id.to_owned())
    } else {
        Err(GatewayError::new(
            ErrorKind::InvalidRequest,
            "A gateway id is 1-64 characters of lower-case letters, digits and `_`, in parts joined by single `-`.",
        ))
    }
}

/// Only the paging and search parameters, each a short plain value.
fn list_query(query: Option<&str>) -> Option<String> {
    let kept: Vec<&str> = query?
        .split('&')
        .filter(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            LIST_PARAMS.contains(&k)
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.%".contains(&b))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Checks `Authorization: Bearer <ADMIN_TOKEN>`. Without an `ADMIN_TOKEN` the admin routes do
/// not exist (404 that says how to turn them on); they also need `CF_API_TOKEN`.
pub fn authenticate(header: Option<&str>, settings: &Settings) -> Result<(), GatewayError> {
    let Some(admin) = settings.admin_token.as_ref() else {
        return Err(GatewayError::new(
            ErrorKind::NotFound,
            "The admin routes are off: set the ADMIN_TOKEN secret (different from AGENT_TOKEN) to turn them on.",
        ));
    };
    check_bearer(header, Some(admin.expose()))?;
    if settings.api_token.is_none() {
        return Err(GatewayError::new(
            ErrorKind::Configuration,
            "CF_API_TOKEN is not set: the admin routes call the Cloudflare API with it.",
        ));
    }
    Ok(())
}

/// Checks a create/update body: a JSON object (Cloudflare validates the fields themselves).
pub fn check_body(body: &[u8]) -> Result<(), GatewayError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(GatewayError::new(ErrorKind::InvalidJson, "The request body must be a JSON object.")),
        Err(e) => Err(GatewayError::new(ErrorKind::InvalidJson, format!("The request body is not valid JSON: {e}."))),
    }
}

/// What to answer the admin with, from Cloudflare's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    pub status: u16,
    pub body: String,
}

/// Translates Cloudflare's answer (see the module comment).
pub fn relay(status: u16, body: &[u8], secrets: &[&str]) -> Result<Relayed, GatewayError> {
    let text = redact(&String::from_utf8_lossy(body), secrets);
    let envelope =
        crate::json::from_str::<Value>(&text).ok().filter(|v| v.get("success").is_some_and(Value::is_boolean));
    if status == 401 || status == 403 {
        let detail = envelope.as_ref().and_then(first_error).unwrap_or_else(|| format!("HTTP {status}"));
        return Err(GatewayError::new(
            ErrorKind::UpstreamAuth,
            format!(
                "The Cloudflare API refused CF_API_TOKEN ({detail}). It needs the AI Gateway Read and Edit \
                 permissions on this account."
            ),
        ));
    }
    let Some(mut envelope) = envelope else {
        let excerpt: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
        return Err(GatewayError::new(
            ErrorKind::UpstreamMalformed,
            format!("The Cloudflare API answered HTTP {status} with something that is not a v4 envelope: {excerpt}"),
        ));
    };
    if let Some(result) = envelope.get_mut("result") {
        drop_secrets(result);
    }
    Ok(Relayed { status, body: envelope.to_string() })
}

fn first_error(envelope: &Value) -> Option<String> {
    let e = envelope.get("errors")?.as_array()?.first()?;
    Some(match (e.get("code"), e.get("message").and_then(Value::as_str)) {
        (Some(code), Some(m)) => format!("{code}: {m}"),
        (_, Some(m)) => m.to_owned(),
        _ => e.to_string(),
    })
}

/// Removes every `secret` field, at any depth.
fn drop_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("secret");
            map.values_mut().for_each(drop_secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::read(move |n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
    }

    #[test]
    fn routes_map_to_the_cloudflare_api() {
        let s = settings(&[("CF_ACCOUNT_ID", "acct"), ("CF_API_URL", "http://127.0.0.1:9/client/v4")]);
        let base = "http://127.0.0.1:9/client/v4/accounts/acct/ai-gateway/gateways";
        for (method, path, query, want_method, want_url) in [
            (
                "GET",
                "/admin/gateways",
                Some("page=2&per_page=5&evil=1&search=a%20b"),
                "GET",
                format!("{base}?page=2&per_page=5&search=a%20b"),
            ),
            ("POST", "/admin/gateways", None, "POST", base.to_owned()),
            ("GET", "/admin/gateways/prod", None, "GET", format!("{base}/prod")),
            ("PUT", "/admin/gateways/prod", None, "PUT", format!("{base}/prod")),
            ("DELETE", "/admin/gateways/prod", None, "DELETE", format!("{base}/prod")),
            ("GET", "/admin/gateways/prod/provider_configs", None, "GET", format!("{base}/prod/provider_configs")),
            (
                "POST",
                "/admin/gateways/prod/provider_configs",
                Some("x=1"),
                "POST",
                format!("{base}/prod/provider_configs"),
            ),
        ] {
            let call = AdminCall::parse(method, path, query).unwrap();
            assert_eq!(call.method(), want_method);
            assert_eq!(call.url(&s).unwrap(), want_url);
        }
        for bad in ["/admin/gateways/Prod", "/admin/gateways/a--b", "/admin/gateways/..", "/admin/gateways/a%2fb"] {
            assert_eq!(AdminCall::parse("GET", bad, None).unwrap_err().kind, ErrorKind::InvalidRequest, "{bad}");
        }
        assert_eq!(
            AdminCall::parse("GET", "/admin/gateways", None).unwrap().url(&settings(&[])).unwrap_err().kind,
            ErrorKind::Configuration
        );
    }

    #[test]
    fn admin_token_is_separate_and_required() {
        let off = settings(&[("AGENT_TOKEN", "agent-1"), ("CF_API_TOKEN", "api")]);
        assert_eq!(authenticate(Some("Bearer agent-1"), &off).unwrap_err().kind, ErrorKind::NotFound);
        let on = settings(&[("AGENT_TOKEN", "agent-1"), ("ADMIN_TOKEN", "admin-1"), ("CF_API_TOKEN", "api")]);
        assert!(authenticate(Some("Bearer admin-1"), &on).is_ok());
        for h in [None, Some("Bearer agent-1"), Some("admin-1"), Some("Bearer admin-2")] {
            assert_eq!(authenticate(h, &on).unwrap_err().kind, ErrorKind::Unauthorized, "{h:?}");
        }
        let no_api = settings(&[("ADMIN_TOKEN", "admin-1")]);
        assert_eq!(authenticate(Some("Bearer admin-1"), &no_api).unwrap_err().kind, ErrorKind::Configuration);
    }

    #[test]
    fn envelopes_pass_through_without_secrets() {
        let body = br#"{"success":true,"errors":[],"messages":[],"result":[{"id":"k1","provider_slug":"openai","secret_preview":"sk-p\u2026","secret":"sk-proj-123"}],"result_info":{"page":1}}"#;
        let r = relay(200, body, &["api-token-x"]).unwrap();
        assert_eq!(r.status, 200);
        let v: Value = crate::json::from_str(&r.body).unwrap();
        assert!(v["result"][0].get("secret").is_none());
        assert_eq!(v["result"][0]["secret_preview"], "sk-p…");
        assert_eq!(v["result_info"]["page"], 1);
        // Errors keep their status and envelope; our secrets are redacted from them.
        let r = relay(
            404,
            br#"{"success":false,"errors":[{"code":7002,"message":"Not Found api-token-x"}],"result":null}"#,
            &["api-token-x"],
        )
        .unwrap();
        assert_eq!(r.status, 404);
        assert!(r.body.contains("[redacted]") && !r.body.contains("api-token-x"));
    }

    #[test]
    fn refused_token_and_garbage_are_502s() {
        let e = relay(403, br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#, &[])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::UpstreamAuth);
        assert!(e.message.contains("CF_API_TOKEN") && e.message.contains("Authentication error"));
        assert_eq!(relay(200, b"<html>oops</html>", &[]).unwrap_err().kind, ErrorKind::UpstreamMalformed);
        assert_eq!(relay(200, br#"{"result":1}"#, &[]).unwrap_err().kind, ErrorKind::UpstreamMalformed);
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(check_body(br#"{"id":"x"}"#).is_ok());
        for bad in [&b""[..], b"[]", b"nope", b"1"] {
            assert_eq!(check_body(bad).unwrap_err().kind, ErrorKind::InvalidJson);
        }
    }
}
