//! Admission for the two OpenAI-compatible endpoints:
//!
//! * compat: `POST /v1/{account}/{gateway}/compat/chat/completions`, gateway auth via
//!   `cf-aig-authorization`, `model` = `{provider}/{model}`;
//! * REST: `POST /client/v4/accounts/{account}/ai/v1/chat/completions`, Cloudflare API token in
//!   `Authorization`, gateway chosen by `cf-aig-gateway-id` (the configured one when absent),
//!   `model` = a compat id, an `author/model` id or a Workers AI `@cf/…` id.
//!
//! Both answer in the OpenAI format; validation errors use the gateway's `AiGatewayError` shape
//! with simulator-chosen codes (2007 invalid body, 2008 invalid provider/model, 2010 metadata).

use hyper::Method;
use serde_json::Value;

use crate::formats::{openai, Format};
use crate::http::{gateway_error, has_bearer, header, v4_error, v4_unauthorized};
use crate::inference::{
    self, logged, parse_options, unlogged, Admission, Call, GatewaySettings, InferenceRequest, Target,
};
use crate::state::State;

/// Provider prefixes the compat endpoint knows.
pub const COMPAT_PROVIDERS: &[&str] = &[
    "openai",
    "anthropic",
    "google-ai-studio",
    "google-vertex-ai",
    "workers-ai",
    "groq",
    "mistral",
    "cohere",
    "perplexity",
    "grok",
    "deepseek",
    "cerebras",
    "aws-bedrock",
];

/// `openai/gpt-4o-mini` → `("openai", "gpt-4o-mini")`; the model part may contain more
/// slashes (`workers-ai/@cf/meta/llama-3.1-8b-instruct`, `google-vertex-ai/google/gemini-2.5-pro`).
pub fn split_compat_model(id: &str) -> Option<(String, String)> {
    let (provider, model) = id.split_once('/')?;
    (COMPAT_PROVIDERS.contains(&provider) && !model.is_empty()).then(|| (provider.to_string(), model.to_string()))
}

/// REST model ids: Workers AI ids (`@cf/…`, `@hf/…`), compat ids, and Unified Billing
/// `author/model` ids whose author is not a provider slug (`google/…` is Google AI Studio,
/// `xai/…` is Grok).
pub fn split_rest_model(id: &str) -> Option<(String, String)> {
    if id.starts_with("@cf/") || id.starts_with("@hf/") {
        return Some(("workers-ai".into(), id.to_string()));
    }
    if let Some(split) = split_compat_model(id) {
        return Some(split);
    }
    let (author, model) = id.split_once('/')?;
    let provider = match author {
        "google" => "google-ai-studio",
        "xai" => "grok",
        _ => return None,
    };
    (!model.is_empty()).then(|| (provider.to_string(), model.to_string()))
}

/// The compat endpoint.
pub fn admit_compat(state: &State, req: &InferenceRequest, account: &str, gateway_id: &str) -> Admission {
    let gateway = inference::gateway(state, account, gateway_id)?;
    inference::check_gateway_auth(state, &gateway, &req.headers)?;
    if req.method != Method::POST {
        let target = Target::new(gateway, "compat/chat/completions");
        return Err(logged(gateway_error(404, 7003, "Route not found"), &target));
    }
    admit_chat(req, gateway, "compat/chat/completions", split_compat_model)
}

/// The REST endpoint. An empty `--api-token` turns its authentication off.
pub fn admit_rest(state: &State, req: &InferenceRequest, account: &str) -> Admission {
    let token = &state.config.api_token;
    if !token.is_empty() && !has_bearer(&req.headers, "authorization", token) {
        return Err(unlogged(v4_unauthorized()));
    }
    if account != state.config.account_id {
        return Err(unlogged(v4_error(
            404,
            7003,
            "Could not route to the account, perhaps your object identifier is invalid?",
        )));
    }
    let gateway_id = header(&req.headers, "cf-aig-gateway-id").unwrap_or(&state.config.gateway_id);
    let gateway = inference::gateway_by_id(state, gateway_id)?;
    if req.method != Method::POST {
        let target = Target::new(gateway, "v1/chat/completions");
        return Err(logged(v4_error(405, 10405, "Method not allowed"), &target));
    }
    admit_chat(req, gateway, "v1/chat/completions", split_rest_model)
}

/// What both endpoints check once the caller is authenticated.
fn admit_chat(
    req: &InferenceRequest,
    gateway: GatewaySettings,
    path: &str,
    split_model: fn(&str) -> Option<(String, String)>,
) -> Admission {
    let mut target = Target::new(gateway, path);
    let body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| logged(gateway_error(400, 2007, &format!("Invalid JSON body: {e}")), &target))?;
    let id = body.get("model").and_then(Value::as_str).ok_or_else(|| {
        logged(
            gateway_error(400, 2008, "Invalid provider: `model` must be a string like `openai/gpt-4o-mini`"),
            &target,
        )
    })?;
    let (provider, model) = split_model(id)
        .ok_or_else(|| logged(gateway_error(400, 2008, &format!("Invalid provider in model `{id}`")), &target))?;
    target.provider = Some(provider);
    target.model = Some(model);
    let chat = openai::parse_request(&body).map_err(|message| logged(gateway_error(400, 2007, &message), &target))?;
    target.options =
        parse_options(&req.headers).map_err(|message| logged(gateway_error(400, 2010, &message), &target))?;
    Ok(Call { target, format: Format::OpenAi, chat })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids() {
        let s = |p: &str, m: &str| Some((p.to_string(), m.to_string()));
        assert_eq!(split_compat_model("openai/gpt-4o-mini"), s("openai", "gpt-4o-mini"));
        assert_eq!(
            split_compat_model("workers-ai/@cf/meta/llama-3.1-8b-instruct"),
            s("workers-ai", "@cf/meta/llama-3.1-8b-instruct")
        );
        assert_eq!(split_compat_model("google/gemini-2.5-flash"), None);
        assert_eq!(split_compat_model("openai/"), None);
        assert_eq!(split_compat_model("gpt-4o"), None);
        assert_eq!(split_rest_model("google/gemini-2.5-flash"), s("google-ai-studio", "gemini-2.5-flash"));
        assert_eq!(split_rest_model("xai/grok-3"), s("grok", "grok-3"));
        assert_eq!(split_rest_model("openai/gpt-4.1"), s("openai", "gpt-4.1"));
        assert_eq!(
            split_rest_model("@cf/meta/llama-3.1-8b-instruct"),
            s("workers-ai", "@cf/meta/llama-3.1-8b-instruct")
        );
        assert_eq!(split_rest_model("acme/model"), None);
    }
}
