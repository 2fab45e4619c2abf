//! Everything about the call to AI Gateway: which URL, which headers, which model id, what
//! metadata. The one place that knows AI Gateway's URL layout.

use std::borrow::Cow;

use serde::Serialize;

use crate::config::{EndpointMode, ModelId, Settings};
use crate::error::{ErrorKind, GatewayError};
use crate::request::caller::Caller;

/// The chat completions URL for the configured endpoint.
pub fn chat_url(settings: &Settings) -> Result<String, GatewayError> {
    let (Some(account), Some(gateway)) = (&settings.account_id, &settings.gateway_id) else {
        return Err(GatewayError::new(
            ErrorKind::Configuration,
            "CF_ACCOUNT_ID and AI_GATEWAY_ID must be set to reach AI Gateway.",
        ));
    };
    Ok(match settings.endpoint {
        EndpointMode::Compat => format!("{}/{account}/{gateway}/compat/chat/completions", settings.gateway_url),
        EndpointMode::Rest => format!("{}/accounts/{account}/ai/v1/chat/completions", settings.api_url),
    })
}

/// The model id to send. Compat takes `provider/model` as configured. The REST endpoint names
/// models by author (`google/gemini-…`, reference §0); only Google's differs from our provider
/// slug. Open question (reference §0, §1): the REST endpoint's catalogue may not carry every
/// compat model, so a REST deployment should name REST model ids in its configuration.
pub fn upstream_model(mode: EndpointMode, target: &ModelId) -> Cow<'_, str> {
    match (mode, target.provider()) {
        (EndpointMode::Rest, "google-ai-studio") => Cow::Owned(format!("google/{}", target.model())),
        _ => Cow::Borrowed(&target.id),
    }
}

/// The `cf-aig-metadata` JSON: at most five entries (AI Gateway's limit, reference §10).
/// Keys are the names `/analytics` groups on.
pub fn metadata(caller: &Caller, alias: Option<&str>, attempt: u32) -> String {
    #[derive(Serialize)]
    struct Metadata<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        repo: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        route: Option<&'a str>,
        attempt: u32,
        gateway: &'static str,
    }
    serde_json::to_string(&Metadata {
        agent: caller.agent.as_deref(),
        repo: caller.repository.as_deref(),
        route: alias,
        attempt,
        gateway: "agent-gateway",
    })
    .unwrap_or_else(|_| String::from("{}"))
}

/// Headers for a chat call to AI Gateway (besides `content-type`). Credentials come only from
/// settings: nothing of the caller's `Authorization` is ever forwarded.
pub fn chat_headers(settings: &Settings, metadata: String) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(5);
    if let Some(token) = &settings.aig_token {
        headers.push(("cf-aig-authorization", format!("Bearer {}", token.expose())));
    }
    if settings.endpoint == EndpointMode::Rest {
        if let Some(token) = &settings.api_token {
            headers.push(("authorization", format!("Bearer {}", token.expose())));
        }
        if let Some(gateway) = &settings.gateway_id {
            headers.push(("cf-aig-gateway-id", gateway.clone()));
        }
    }
    headers.push(("cf-aig-metadata", metadata));
    // The Worker owns retries and failover; AI Gateway must not retry underneath it, or attempts
    // multiply across layers (peer-gateways §5.8).
    headers.push(("cf-aig-max-attempts", String::from("1")));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::read(move |n| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()))
    }

    #[test]
    fn compat_url_and_headers() {
        let s = settings(&[("CF_ACCOUNT_ID", "acct"), ("AI_GATEWAY_ID", "gw"), ("CF_AIG_TOKEN", "tok")]);
        assert_eq!(chat_url(&s).unwrap(), "https://gateway.ai.cloudflare.com/v1/acct/gw/compat/chat/completions");
        let h = chat_headers(&s, "{}".into());
        assert!(h.contains(&("cf-aig-authorization", "Bearer tok".into())));
        assert!(h.contains(&("cf-aig-max-attempts", "1".into())));
        assert!(!h.iter().any(|(k, _)| *k == "authorization"), "no provider key is sent (BYOK)");
    }

    #[test]
    fn rest_url_and_headers() {
        let s = settings(&[
            ("CF_ACCOUNT_ID", "acct"),
            ("AI_GATEWAY_ID", "gw"),
            ("GATEWAY_ENDPOINT", "rest"),
            ("CF_API_TOKEN", "api"),
            ("CF_API_URL", "http://127.0.0.1:9/client/v4"),
        ]);
        assert_eq!(chat_url(&s).unwrap(), "http://127.0.0.1:9/client/v4/accounts/acct/ai/v1/chat/completions");
        let h = chat_headers(&s, "{}".into());
        assert!(h.contains(&("authorization", "Bearer api".into())));
        assert!(h.contains(&("cf-aig-gateway-id", "gw".into())));
        let t = ModelId::parse("google-ai-studio/gemini-2.5-flash").unwrap();
        assert_eq!(upstream_model(EndpointMode::Rest, &t), "google/gemini-2.5-flash");
        assert_eq!(upstream_model(EndpointMode::Compat, &t), "google-ai-studio/gemini-2.5-flash");
    }

    #[test]
    fn url_needs_ids() {
        let e = chat_url(&settings(&[])).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration);
    }

    #[test]
    fn metadata_has_at_most_five_entries() {
        let c = Caller { agent: Some("PRReviewAgent".into()), repository: Some("o/r".into()) };
        let m: serde_json::Value = crate::json::from_str(&metadata(&c, Some("review"), 2)).unwrap();
        let obj = m.as_object().unwrap();
        assert!(obj.len() <= 5);
        assert_eq!(m["agent"], "PRReviewAgent");
        assert_eq!(m["repo"], "o/r");
        assert_eq!(m["route"], "review");
        assert_eq!(m["attempt"], 2);
        let bare: serde_json::Value = crate::json::from_str(&metadata(&Caller::default(), None, 1)).unwrap();
        assert!(bare.get("agent").is_none());
    }
}
