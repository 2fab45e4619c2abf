//! Admission for provider-native paths, `/v1/{account}/{gateway}/{provider}/{path…}`:
//!
//! | provider           | path                                                        | format    |
//! |--------------------|-------------------------------------------------------------|-----------|
//! | `openai`           | `chat/completions`, `v1/chat/completions`                   | OpenAI    |
//! | `workers-ai`       | `v1/chat/completions`                                       | OpenAI    |
//! | `anthropic`        | `v1/messages`                                               | Anthropic |
//! | `google-ai-studio` | `{v1,v1beta}/models/{model}:{generateContent,streamGenerateContent}` | Gemini |
//! | `azure-openai`     | `{resource}/{deployment}/chat/completions?api-version=…` (model = deployment) | OpenAI |
//! | `aws-bedrock`      | `bedrock-runtime/{region}/model/{anthropic.…}/invoke` (model from the path) | Anthropic |
//! | `aws-bedrock`      | `bedrock-runtime/{region}/model/{model}/converse`           | Converse  |
//! | `aws-bedrock`      | `bedrock-mantle/{region}/anthropic/v1/messages`             | Anthropic |
//!
//! Anything else (other providers, other paths, other methods) is a 404 "route not found"
//! (code 7003) once the gateway's own checks pass; like every error after authentication it
//! gets a log row. Validation errors use the provider's own error
//! shape, since on the real gateway they come from the upstream.

use hyper::Method;
use serde_json::Value;

use crate::formats::ChatRequest;
use crate::formats::{anthropic, converse, gemini, openai, Format};
use crate::http::{gateway_error, parse_query, query_param, Resp};
use crate::inference::{self, logged, parse_options, Admission, Call, InferenceRequest, Target};
use crate::state::State;

/// A recognised native route.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    OpenAi,
    Anthropic,
    Gemini {
        model: String,
        stream: bool,
        sse: bool,
    },
    /// Azure OpenAI: the OpenAI format, the model being the deployment in the path.
    Azure {
        deployment: String,
    },
    /// Bedrock `invoke` of a Claude model: the Anthropic format, the model in the path.
    BedrockInvoke {
        model: String,
    },
    BedrockConverse {
        model: String,
    },
}

impl Route {
    fn recognise(provider: &str, path: &[&str], query: &str) -> Option<Route> {
        match (provider, path) {
            ("openai", ["chat", "completions"] | ["v1", "chat", "completions"])
            | ("workers-ai", ["v1", "chat", "completions"]) => Some(Route::OpenAi),
            ("anthropic", ["v1", "messages"])
            | ("aws-bedrock", ["bedrock-mantle", _, "anthropic", "v1", "messages"]) => Some(Route::Anthropic),
            ("azure-openai", [_, deployment, "chat", "completions"]) => {
                // Azure answers 404 without an `api-version`.
                query_param(&parse_query(query), "api-version")?;
                Some(Route::Azure { deployment: deployment.to_string() })
            }
            ("aws-bedrock", ["bedrock-runtime", _, "model", model, "invoke"]) if model.contains("anthropic.") => {
                Some(Route::BedrockInvoke { model: model.to_string() })
            }
            ("aws-bedrock", ["bedrock-runtime", _, "model", model, "converse"]) => {
                Some(Route::BedrockConverse { model: model.to_string() })
            }
            ("google-ai-studio", ["v1" | "v1beta", "models", last]) => {
                let (model, method) = last.rsplit_once(':')?;
                let stream = match method {
                    "generateContent" => false,
                    "streamGenerateContent" => true,
                    _ => return None,
                };
                let sse = stream && query_param(&parse_query(query), "alt") == Some("sse");
                (!model.is_empty()).then(|| Route::Gemini { model: model.to_string(), stream, sse })
            }
            _ => None,
        }
    }

    fn format(&self) -> Format {
        match self {
            Route::OpenAi | Route::Azure { .. } => Format::OpenAi,
            Route::Anthropic | Route::BedrockInvoke { .. } => Format::Anthropic,
            Route::Gemini { sse, .. } => Format::Gemini { sse: *sse },
            Route::BedrockConverse { .. } => Format::Converse,
        }
    }

    /// A 400 in the provider's error shape.
    fn invalid(&self, message: &str) -> Resp {
        match self {
            Route::OpenAi | Route::Azure { .. } => openai::error(400, message),
            Route::Anthropic => anthropic::error(400, message),
            Route::Gemini { .. } => gemini::error(400, message),
            Route::BedrockInvoke { .. } | Route::BedrockConverse { .. } => converse::error(400, message),
        }
    }
}

pub fn admit(
    state: &State,
    req: &InferenceRequest,
    account: &str,
    gateway_id: &str,
    provider: &str,
    path: &[&str],
) -> Admission {
    let gateway = inference::gateway(state, account, gateway_id)?;
    inference::check_gateway_auth(state, &gateway, &req.headers)?;
    let mut target = Target::new(gateway, path.join("/"));
    target.provider = Some(provider.to_string());
    let route = Route::recognise(provider, path, &req.query)
        .filter(|_| req.method == Method::POST)
        .ok_or_else(|| logged(gateway_error(404, 7003, "Route not found"), &target))?;
    if let Route::Gemini { model, .. } = &route {
        target.model = Some(model.clone());
    }
    let mut body: Value = serde_json::from_slice(&req.body)
        .map_err(|e| logged(route.invalid(&format!("Invalid JSON body: {e}")), &target))?;
    // Azure and Bedrock name the model in the path, not the body.
    if let (Route::Azure { deployment: model } | Route::BedrockInvoke { model }, Some(obj)) =
        (&route, body.as_object_mut())
    {
        obj.entry("model").or_insert_with(|| Value::String(model.clone()));
    }
    let chat = match &route {
        Route::OpenAi | Route::Azure { .. } => openai::parse_request(&body),
        Route::Anthropic => anthropic::parse_request(&body),
        // Bedrock's invoke answers whole; `invoke-with-response-stream` is not simulated.
        Route::BedrockInvoke { .. } => anthropic::parse_request(&body).map(|c| ChatRequest { stream: false, ..c }),
        Route::Gemini { model, stream, .. } => gemini::parse_request(&body, model, *stream),
        Route::BedrockConverse { model } => converse::parse_request(&body, model),
    }
    .map_err(|message| logged(route.invalid(&message), &target))?;
    target.model = Some(chat.model.clone());
    target.options =
        parse_options(&req.headers).map_err(|message| logged(gateway_error(400, 2010, &message), &target))?;
    Ok(Call { target, format: route.format(), chat })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_routes() {
        assert_eq!(Route::recognise("openai", &["v1", "chat", "completions"], ""), Some(Route::OpenAi));
        assert_eq!(Route::recognise("anthropic", &["v1", "messages"], ""), Some(Route::Anthropic));
        assert_eq!(
            Route::recognise(
                "google-ai-studio",
                &["v1beta", "models", "gemini-2.5-flash:streamGenerateContent"],
                "alt=sse"
            ),
            Some(Route::Gemini { model: "gemini-2.5-flash".into(), stream: true, sse: true })
        );
        assert_eq!(
            Route::recognise("google-ai-studio", &["v1", "models", "gemini-2.5-flash:generateContent"], "alt=sse"),
            Some(Route::Gemini { model: "gemini-2.5-flash".into(), stream: false, sse: false })
        );
        assert_eq!(
            Route::recognise("azure-openai", &["res", "gpt-4o", "chat", "completions"], "api-version=2024-10-21"),
            Some(Route::Azure { deployment: "gpt-4o".into() })
        );
        assert_eq!(
            Route::recognise(
                "aws-bedrock",
                &["bedrock-runtime", "us-east-1", "model", "anthropic.claude-3-haiku-20240307-v1:0", "invoke"],
                ""
            ),
            Some(Route::BedrockInvoke { model: "anthropic.claude-3-haiku-20240307-v1:0".into() })
        );
        assert_eq!(
            Route::recognise("aws-bedrock", &["bedrock-mantle", "us-east-1", "anthropic", "v1", "messages"], ""),
            Some(Route::Anthropic)
        );
        for (p, path) in [
            ("azure-openai", &["res", "gpt-4o", "chat", "completions"][..]),
            ("aws-bedrock", &["bedrock-runtime", "us-east-1", "model", "amazon.nova-lite-v1:0", "invoke"][..]),
            ("aws-bedrock", &["bedrock-runtime", "us-east-1", "model", "m", "converse-stream"][..]),
            ("groq", &["chat", "completions"][..]),
            ("openai", &["responses"][..]),
            ("anthropic", &["v1", "complete"][..]),
            ("google-ai-studio", &["v1", "models", "gemini:countTokens"][..]),
            ("google-ai-studio", &["v1", "models", ":generateContent"][..]),
        ] {
            assert_eq!(Route::recognise(p, path, ""), None, "{p} {path:?}");
        }
    }
}
