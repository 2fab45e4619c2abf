//! What a native request asks for, read from its path and body without changing either: the
//! model (for the price), whether it streams and how the stream is framed, the most output it
//! allows, and from those its worst-case cost, reserved against the provider's budget before the
//! call is made.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::config::Estimates;
use crate::error::{ErrorKind, GatewayError};
use crate::money::pricing::{Prices, Usd};
use crate::native::path::NativePath;
use crate::provider::{Provider, Wire};

/// How a streamed answer is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (OpenAI, Anthropic, Gemini with `alt=sse`).
    Sse,
    /// One JSON array whose elements arrive over time (Gemini without `alt=sse`).
    JsonArray,
    /// A binary framing the gateway does not read (Bedrock's AWS event stream): relayed byte for
    /// byte, usage unknown.
    Opaque,
}

/// What a native request asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub wire: Wire,
    /// `None`: the answer is one JSON body.
    pub stream: Option<Framing>,
    /// The model as the request names it (body `model`, or the path for Gemini, Bedrock and
    /// Azure deployments), if it names one.
    pub model: Option<String>,
    /// The request's own output limit, if it sets one.
    pub max_output_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct BodyProbe<'a> {
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    stream: Option<&'a RawValue>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
    /// OpenAI Responses API.
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default, rename = "generationConfig")]
    generation_config: Option<GenerationConfig>,
    /// Bedrock Converse (`maxTokens`) and Nova invoke (`max_new_tokens`).
    #[serde(default, rename = "inferenceConfig")]
    inference_config: Option<InferenceConfig>,
}

#[derive(Deserialize, Default)]
struct GenerationConfig {
    #[serde(default, rename = "maxOutputTokens")]
    max_output_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct InferenceConfig {
    #[serde(default, rename = "maxTokens")]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_new_tokens: Option<u64>,
}

impl Shape {
    /// Reads the request. The body must be a JSON object (every native API here takes one); a
    /// `stream` that is not a boolean is refused, since it decides how the answer is read.
    pub fn read(path: &NativePath, body: &[u8]) -> Result<Shape, GatewayError> {
        if !body.trim_ascii_start().starts_with(b"{") {
            return Err(GatewayError::new(ErrorKind::InvalidJson, "The request body must be a JSON object."));
        }
        // One pass: the probe reads the few fields it needs and checks the rest is valid JSON.
        let probe: BodyProbe = serde_json::from_slice(body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                GatewayError::new(ErrorKind::InvalidRequest, format!("A field of the request has the wrong type: {e}."))
            }
            _ => GatewayError::new(ErrorKind::InvalidJson, format!("The request body is not valid JSON: {e}.")),
        })?;
        let body_stream = match probe.stream.map(RawValue::get) {
            None | Some("null") | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(GatewayError::new(ErrorKind::InvalidRequest, "`stream` must be a boolean.")),
        };
        let sse_if = |streams: bool| streams.then_some(Framing::Sse);
        let body_model = probe.model.as_deref().map(str::to_owned);
        let openai_max = probe.max_completion_tokens.or(probe.max_tokens).or(probe.max_output_tokens);
        let segments: Vec<String> = path.segments().collect();
        let seg = |i: usize| segments.get(i).map(String::as_str);

        let shape = match path.provider {
            Provider::OpenAi => Shape {
                wire: Wire::OpenAi,
                stream: sse_if(body_stream),
                model: body_model,
                max_output_tokens: openai_max,
            },
            Provider::WorkersAi => Shape {
                wire: Wire::OpenAi,
                stream: sse_if(body_stream),
                // `/workers-ai/@cf/meta/llama…` names the model in the path.
                model: body_model.or_else(|| (seg(0)?.starts_with('@')).then(|| path.rest.clone())),
                max_output_tokens: openai_max,
            },
            Provider::AzureOpenAi => Shape {
                wire: Wire::OpenAi,
                stream: sse_if(body_stream),
                // `{resource}/{deployment}/…`: a deployment name, priced only if the table has it.
                model: body_model.or_else(|| seg(1).map(str::to_owned)),
                max_output_tokens: openai_max,
            },
            Provider::Anthropic => Shape {
                wire: Wire::Anthropic,
                stream: sse_if(body_stream),
                model: body_model,
                max_output_tokens: probe.max_tokens,
            },
            Provider::GoogleAiStudio => {
                // `{version}/models/{model}:{method}`.
                let (model, method) = match (seg(1), segments.last()) {
                    (Some("models"), Some(last)) => match last.rsplit_once(':') {
                        Some((m, method)) => (Some(m.to_owned()), method.to_owned()),
                        None => (None, String::new()),
                    },
                    _ => (None, String::new()),
                };
                let stream = (method == "streamGenerateContent").then(|| {
                    if path.query_param("alt") == Some("sse") {
                        Framing::Sse
                    } else {
                        Framing::JsonArray
                    }
                });
                Shape {
                    wire: Wire::Gemini,
                    stream,
                    model,
                    max_output_tokens: probe.generation_config.and_then(|g| g.max_output_tokens),
                }
            }
            Provider::AwsBedrock => {
                let action = segments.last().map(String::as_str).unwrap_or("");
                let messages_api =
                    segments.len() >= 3 && segments[segments.len() - 3..] == ["anthropic", "v1", "messages"];
                if messages_api {
                    Shape {
                        wire: Wire::Anthropic,
                        stream: sse_if(body_stream),
                        model: body_model,
                        max_output_tokens: probe.max_tokens,
                    }
                } else {
                    // `bedrock-runtime/{region}/model/{model}/{action}`.
                    let model = match (seg(2), seg(3)) {
                        (Some("model"), Some(m)) => Some(m.to_owned()),
                        _ => body_model,
                    };
                    let inference = probe.inference_config.unwrap_or_default();
                    Shape {
                        wire: Wire::Bedrock,
                        stream: matches!(action, "invoke-with-response-stream" | "converse-stream")
                            .then_some(Framing::Opaque),
                        model,
                        max_output_tokens: probe.max_tokens.or(inference.max_tokens).or(inference.max_new_tokens),
                    }
                }
            }
        };
        Ok(shape)
    }

    /// The most this request can cost at `provider`'s prices, or `None` when its model has no
    /// price (never a guess; the reservation is then zero and the spend unknown).
    ///
    /// The prompt is estimated from the body's size: `ceil(bytes / prompt_bytes_per_token)`. The
    /// body is the prompt plus JSON framing, and English text and code run about four bytes per
    /// token, so with the shipped three bytes per token this over-counts: the safe side for a
    /// budget. (Text of mostly multi-byte characters can run fewer bytes per token; the real cost
    /// settles the reservation either way.) Output is the request's own limit, else the
    /// configured `max_output_tokens`.
    pub fn worst_case(
        &self,
        prices: &Prices,
        provider: Provider,
        body_len: usize,
        estimates: &Estimates,
    ) -> Option<Usd> {
        let price = prices.lookup(provider.slug(), self.model.as_deref()?)?;
        let prompt = (body_len as u64).div_ceil(estimates.prompt_bytes_per_token.max(1));
        let output = self.max_output_tokens.unwrap_or(estimates.max_output_tokens);
        Some(price.worst_case(prompt, output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(path: &str, query: Option<&str>, body: &str) -> Result<Shape, GatewayError> {
        Shape::read(&NativePath::parse(path, query).unwrap(), body.as_bytes())
    }

    #[test]
    fn openai_and_friends() {
        let s = shape(
            "/openai/chat/completions",
            None,
            r#"{"model":"gpt-4o-mini","stream":true,"max_tokens":50,"max_completion_tokens":9}"#,
        )
        .unwrap();
        assert_eq!(
            s,
            Shape {
                wire: Wire::OpenAi,
                stream: Some(Framing::Sse),
                model: Some("gpt-4o-mini".into()),
                max_output_tokens: Some(9)
            }
        );
        let s = shape("/workers-ai/@cf/meta/llama-3.1-8b-instruct", None, r#"{"prompt":"x"}"#).unwrap();
        assert_eq!(s.model.as_deref(), Some("@cf/meta/llama-3.1-8b-instruct"));
        assert_eq!(s.stream, None);
        let s = shape("/azure-openai/res/my-deployment/chat/completions", Some("api-version=1"), r#"{"messages":[]}"#)
            .unwrap();
        assert_eq!(s.model.as_deref(), Some("my-deployment"));
        let s = shape("/openai/responses", None, r#"{"model":"gpt-4o","max_output_tokens":7}"#).unwrap();
        assert_eq!(s.max_output_tokens, Some(7));
    }

    #[test]
    fn anthropic_gemini_bedrock() {
        let s = shape("/anthropic/v1/messages", None, r#"{"model":"claude-haiku-4-5","max_tokens":64,"stream":false}"#)
            .unwrap();
        assert_eq!((s.wire, s.stream, s.max_output_tokens), (Wire::Anthropic, None, Some(64)));

        let body = r#"{"contents":[],"generationConfig":{"maxOutputTokens":32}}"#;
        let s = shape("/google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent", Some("alt=sse"), body)
            .unwrap();
        assert_eq!(
            s,
            Shape {
                wire: Wire::Gemini,
                stream: Some(Framing::Sse),
                model: Some("gemini-2.5-flash".into()),
                max_output_tokens: Some(32)
            }
        );
        let s = shape("/google-ai-studio/v1/models/gemini-2.5-flash:streamGenerateContent", None, body).unwrap();
        assert_eq!(s.stream, Some(Framing::JsonArray));
        let s = shape("/google-ai-studio/v1/models/gemini-2.5-flash:generateContent", None, body).unwrap();
        assert_eq!(s.stream, None);

        let s = shape(
            "/aws-bedrock/bedrock-runtime/us-east-1/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
            None,
            r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[]}"#,
        )
        .unwrap();
        assert_eq!(s.model.as_deref(), Some("anthropic.claude-3-haiku-20240307-v1:0"));
        assert_eq!((s.wire, s.stream, s.max_output_tokens), (Wire::Bedrock, None, Some(10)));
        let s = shape(
            "/aws-bedrock/bedrock-runtime/us-east-1/model/amazon.nova-lite-v1:0/converse-stream",
            None,
            r#"{"messages":[],"inferenceConfig":{"maxTokens":20}}"#,
        )
        .unwrap();
        assert_eq!((s.stream, s.max_output_tokens), (Some(Framing::Opaque), Some(20)));
        let s = shape(
            "/aws-bedrock/bedrock-mantle/us-east-1/anthropic/v1/messages",
            None,
            r#"{"model":"claude-haiku-4-5","max_tokens":5,"stream":true}"#,
        )
        .unwrap();
        assert_eq!((s.wire, s.stream), (Wire::Anthropic, Some(Framing::Sse)));
    }

    #[test]
    fn bad_bodies() {
        for (body, kind) in [
            ("not json", ErrorKind::InvalidJson),
            ("[]", ErrorKind::InvalidJson),
            (r#"{"model":"m","stream":"yes"}"#, ErrorKind::InvalidRequest),
            (r#"{"model":5}"#, ErrorKind::InvalidRequest),
            (r#"{"max_tokens":-1}"#, ErrorKind::InvalidRequest),
        ] {
            assert_eq!(shape("/openai/chat/completions", None, body).unwrap_err().kind, kind, "{body}");
        }
    }

    #[test]
    fn worst_case_from_bytes_and_output_limit() {
        let prices = Prices::shipped();
        let est = Estimates { max_output_tokens: 1000, prompt_bytes_per_token: 4 };
        let body =
            format!(r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(3950));
        let s = shape("/openai/chat/completions", None, &body).unwrap();
        // ceil(bytes/4) prompt tokens at 0.15/M + 1000 output tokens at 0.60/M.
        let prompt = (body.len() as u64).div_ceil(4);
        let expected = Usd(prompt * 150_000 + 1000 * 600_000);
        assert_eq!(s.worst_case(&prices, Provider::OpenAi, body.len(), &est), Some(expected));
        let limited = Shape { max_output_tokens: Some(10), ..s.clone() };
        assert_eq!(
            limited.worst_case(&prices, Provider::OpenAi, body.len(), &est),
            Some(Usd(prompt * 150_000 + 10 * 600_000))
        );
        // No price: unknown, not zero and not a guess.
        let unpriced = Shape { model: Some("gpt-9".into()), ..s };
        assert_eq!(unpriced.worst_case(&prices, Provider::OpenAi, body.len(), &est), None);
        let azure = shape("/azure-openai/r/gpt-4o-mini/chat/completions", None, "{}").unwrap();
        assert_eq!(azure.worst_case(&prices, Provider::AzureOpenAi, 2, &est), None);
    }
}
