//! Usage read from each provider's own answer format, and what it cost.
//!
//! | wire       | where the counts are                                                          |
//! |------------|-------------------------------------------------------------------------------|
//! | OpenAI     | `usage.{prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}`; Responses API `usage.{input_tokens, output_tokens, input_tokens_details.cached_tokens}`; Workers AI `result.usage` |
//! | Anthropic  | `usage.{input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens}` (`input_tokens` excludes the cache) |
//! | Gemini     | `usageMetadata.{promptTokenCount, candidatesTokenCount, thoughtsTokenCount, cachedContentTokenCount, toolUsePromptTokenCount}` (the prompt count includes the cached part; thinking is billed as output) |
//! | Bedrock    | the Anthropic shape for Claude `invoke`; Converse `usage.{inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens}` |
//!
//! Counts become [`Tokens`] (uncached input, cached input, output), priced exactly by
//! [`crate::account::pricing`]. Prompt-cache *writes* have no price in the table, so a request with any
//! has an unknown cost (with a warning), never a guessed one.

use serde::Deserialize;

use crate::account::pricing::{Cost, Prices, Tokens};
use crate::error::{ErrorKind, GatewayError};
use crate::native::provider::{Provider, Wire};

/// What a native answer used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NativeUsage {
    pub tokens: Tokens,
    /// Prompt tokens written to the provider's prompt cache (Anthropic, Bedrock).
    pub cache_write: u64,
}

/// What the gateway reads from a whole (non-streamed) native answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NativeAnswer {
    pub usage: Option<NativeUsage>,
    /// The model as the answer names it (`model`, Gemini's `modelVersion`).
    pub model: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct UsageProbe {
    // OpenAI Chat Completions (and Workers AI's OpenAI-style answers).
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
    // OpenAI Responses and Anthropic.
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<Details>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    // Bedrock Converse.
    #[serde(default, rename = "inputTokens")]
    converse_input: Option<u64>,
    #[serde(default, rename = "outputTokens")]
    converse_output: Option<u64>,
    #[serde(default, rename = "cacheReadInputTokens")]
    converse_cache_read: Option<u64>,
    #[serde(default, rename = "cacheWriteInputTokens")]
    converse_cache_write: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct GeminiUsage {
    #[serde(default, rename = "promptTokenCount")]
    prompt: Option<u64>,
    #[serde(default, rename = "candidatesTokenCount")]
    candidates: Option<u64>,
    #[serde(default, rename = "thoughtsTokenCount")]
    thoughts: Option<u64>,
    #[serde(default, rename = "cachedContentTokenCount")]
    cached: Option<u64>,
    #[serde(default, rename = "toolUsePromptTokenCount")]
    tool_use_prompt: Option<u64>,
}

impl UsageProbe {
    /// OpenAI's counts: the prompt includes its cached part.
    pub(crate) fn openai(&self) -> Option<NativeUsage> {
        let cached = |d: &Option<Details>| d.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0);
        let tokens = match (self.prompt_tokens, self.completion_tokens, self.input_tokens, self.output_tokens) {
            (Some(p), c, _, _) => Tokens::from_openai(p, cached(&self.prompt_tokens_details), c.unwrap_or(0)),
            (None, Some(c), None, _) => Tokens::from_openai(0, 0, c),
            (None, _, Some(i), o) => Tokens::from_openai(i, cached(&self.input_tokens_details), o.unwrap_or(0)),
            _ => return None,
        };
        Some(NativeUsage { tokens, cache_write: 0 })
    }

    /// Anthropic's counts: `input_tokens` excludes cache reads and writes.
    pub(crate) fn anthropic(&self) -> Option<NativeUsage> {
        if self.input_tokens.is_none() && self.output_tokens.is_none() {
            return None;
        }
        Some(NativeUsage {
            tokens: Tokens {
                input: self.input_tokens.unwrap_or(0),
                cached_input: self.cache_read_input_tokens.unwrap_or(0),
                output: self.output_tokens.unwrap_or(0),
            },
            cache_write: self.cache_creation_input_tokens.unwrap_or(0),
        })
    }

    /// Applies a streamed `message_delta`'s counts: they are cumulative, so each one given
    /// replaces the earlier (and `message_start`'s input stands unless the delta restates it).
    pub(crate) fn merge_anthropic_into(&self, u: &mut NativeUsage) {
        if let Some(n) = self.input_tokens {
            u.tokens.input = n;
        }
        if let Some(n) = self.output_tokens {
            u.tokens.output = n;
        }
        if let Some(n) = self.cache_read_input_tokens {
            u.tokens.cached_input = n;
        }
        if let Some(n) = self.cache_creation_input_tokens {
            u.cache_write = n;
        }
    }

    /// Bedrock: Converse counts, else the model's own (Anthropic-shaped for Claude).
    fn bedrock(&self) -> Option<NativeUsage> {
        match (self.converse_input, self.converse_output) {
            (None, None) => self.anthropic(),
            (i, o) => Some(NativeUsage {
                tokens: Tokens {
                    input: i.unwrap_or(0),
                    cached_input: self.converse_cache_read.unwrap_or(0),
                    output: o.unwrap_or(0),
                },
                cache_write: self.converse_cache_write.unwrap_or(0),
            }),
        }
    }
}

impl GeminiUsage {
    pub(crate) fn usage(&self) -> Option<NativeUsage> {
        if self.prompt.is_none() && self.candidates.is_none() {
            return None;
        }
        let prompt = self.prompt.unwrap_or(0) + self.tool_use_prompt.unwrap_or(0);
        let output = self.candidates.unwrap_or(0) + self.thoughts.unwrap_or(0);
        Some(NativeUsage { tokens: Tokens::from_openai(prompt, self.cached.unwrap_or(0), output), cache_write: 0 })
    }
}

#[derive(Deserialize, Default)]
struct AnswerProbe {
    #[serde(default)]
    model: Option<String>,
    #[serde(default, rename = "modelVersion")]
    model_version: Option<String>,
    #[serde(default)]
    usage: Option<UsageProbe>,
    #[serde(default, rename = "usageMetadata")]
    usage_metadata: Option<GeminiUsage>,
    /// Workers AI wraps its answer: `{"result":{…,"usage":{…}},"success":true}`.
    #[serde(default)]
    result: Option<Box<AnswerProbe>>,
}

impl AnswerProbe {
    fn read(self, wire: Wire) -> NativeAnswer {
        if let Some(inner) = self.result {
            if self.usage.is_none() && self.usage_metadata.is_none() {
                return inner.read(wire);
            }
        }
        let usage = match wire {
            Wire::OpenAi => self.usage.as_ref().and_then(UsageProbe::openai),
            Wire::Anthropic => self.usage.as_ref().and_then(UsageProbe::anthropic),
            Wire::Bedrock => self.usage.as_ref().and_then(UsageProbe::bedrock),
            Wire::Gemini => self.usage_metadata.as_ref().and_then(GeminiUsage::usage),
        };
        NativeAnswer { usage, model: self.model.or(self.model_version) }
    }
}

/// Reads a whole 200 answer. It must be JSON (an object, or for Gemini's streamed form an array
/// of objects, whose last usage counts): anything else breaks the provider's contract, a 502.
pub fn read_answer(wire: Wire, body: &[u8]) -> Result<NativeAnswer, GatewayError> {
    let malformed =
        || GatewayError::new(ErrorKind::UpstreamMalformed, "AI Gateway answered 200 with a body that is not JSON.");
    if body.trim_ascii_start().starts_with(b"[") {
        let items: Vec<AnswerProbe> = serde_json::from_slice(body).map_err(|_| malformed())?;
        let mut answer = NativeAnswer::default();
        for item in items {
            let read = item.read(wire);
            answer.usage = read.usage.or(answer.usage);
            answer.model = read.model.or(answer.model);
        }
        return Ok(answer);
    }
    if !body.trim_ascii_start().starts_with(b"{") {
        return Err(malformed());
    }
    // Usage fields of an unexpected type are ignored (the cost is then unknown); only a body that
    // is not JSON at all is malformed.
    match serde_json::from_slice::<AnswerProbe>(body) {
        Ok(probe) => Ok(probe.read(wire)),
        Err(e) if e.classify() == serde_json::error::Category::Data => Ok(NativeAnswer::default()),
        Err(_) => Err(malformed()),
    }
}

/// The cost of a native answer at `provider`'s prices: the request's model first, else the model
/// the answer names (a dated snapshot, or what an Azure deployment runs). Unknown with a warning
/// when neither is priced, when there is no usage, or when prompt-cache writes were billed.
pub fn cost(
    prices: &Prices,
    provider: Provider,
    request_model: Option<&str>,
    answer_model: Option<&str>,
    usage: Option<NativeUsage>,
) -> Cost {
    let unknown = |w: String| Cost { usd: None, warning: Some(w) };
    let Some(usage) = usage else {
        return unknown(format!("{} answered without usage: cost unknown", provider.slug()));
    };
    let candidates = [request_model, answer_model];
    let Some((model, price)) =
        candidates.into_iter().flatten().find_map(|m| prices.lookup(provider.slug(), m).map(|p| (m, p)))
    else {
        let named = request_model.or(answer_model).unwrap_or("an unnamed model");
        return unknown(format!("no price for {}/{named}: cost unknown", provider.slug()));
    };
    if usage.cache_write > 0 {
        return unknown(format!(
            "no prompt-cache write price for {}/{model}: cost unknown for a request that wrote {} cache tokens",
            provider.slug(),
            usage.cache_write
        ));
    }
    price.cost(usage.tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::pricing::Usd;

    fn usage(input: u64, cached: u64, output: u64) -> Option<NativeUsage> {
        Some(NativeUsage { tokens: Tokens { input, cached_input: cached, output }, cache_write: 0 })
    }

    #[test]
    fn openai_chat_responses_and_workers_ai() {
        let a = read_answer(
            Wire::OpenAi,
            br#"{"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":40}}}"#,
        )
        .unwrap();
        assert_eq!(a.usage, usage(60, 40, 20));
        assert_eq!(a.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        let a = read_answer(
            Wire::OpenAi,
            br#"{"object":"response","usage":{"input_tokens":10,"output_tokens":3,"input_tokens_details":{"cached_tokens":0}}}"#,
        )
        .unwrap();
        assert_eq!(a.usage, usage(10, 0, 3));
        let a = read_answer(
            Wire::OpenAi,
            br#"{"result":{"response":"hi","usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}},"success":true}"#,
        )
        .unwrap();
        assert_eq!(a.usage, usage(7, 0, 2));
        assert_eq!(read_answer(Wire::OpenAi, br#"{"choices":[]}"#).unwrap().usage, None);
    }

    #[test]
    fn anthropic_and_bedrock() {
        let a = read_answer(
            Wire::Anthropic,
            br#"{"type":"message","model":"claude-haiku-4-5-20251001","usage":{"input_tokens":12,"output_tokens":5,"cache_read_input_tokens":3,"cache_creation_input_tokens":0}}"#,
        )
        .unwrap();
        assert_eq!(a.usage, usage(12, 3, 5));
        let a = read_answer(
            Wire::Bedrock,
            br#"{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn","usage":{"inputTokens":9,"outputTokens":4,"totalTokens":13}}"#,
        )
        .unwrap();
        assert_eq!(a.usage, usage(9, 0, 4));
        let a =
            read_answer(Wire::Bedrock, br#"{"type":"message","usage":{"input_tokens":8,"output_tokens":1}}"#).unwrap();
        assert_eq!(a.usage, usage(8, 0, 1));
        let a = read_answer(
            Wire::Anthropic,
            br#"{"usage":{"input_tokens":8,"output_tokens":1,"cache_creation_input_tokens":50}}"#,
        )
        .unwrap();
        assert_eq!(a.usage.unwrap().cache_write, 50);
    }

    #[test]
    fn gemini_object_and_array() {
        let one = br#"{"candidates":[],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"thoughtsTokenCount":7,"cachedContentTokenCount":4,"totalTokenCount":32},"modelVersion":"gemini-2.5-flash"}"#;
        let a = read_answer(Wire::Gemini, one).unwrap();
        assert_eq!(a.usage, usage(16, 4, 12));
        assert_eq!(a.model.as_deref(), Some("gemini-2.5-flash"));
        let array = br#"[{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}},
            {"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}]"#;
        assert_eq!(read_answer(Wire::Gemini, array).unwrap().usage, usage(3, 0, 2));
    }

    #[test]
    fn non_json_is_malformed() {
        for body in [&b"<html>"[..], b"", b"\"text\"", b"[1,"] {
            assert_eq!(read_answer(Wire::OpenAi, body).unwrap_err().kind, ErrorKind::UpstreamMalformed);
        }
    }

    #[test]
    fn cost_is_exact_or_unknown_with_a_reason() {
        let prices = Prices::shipped();
        let c = cost(&prices, Provider::GoogleAiStudio, Some("gemini-2.5-flash"), None, usage(412, 0, 188));
        assert_eq!(c.usd.unwrap().to_string(), "0.0005936");
        // The answer's dated model is used when the request named none that is priced.
        let c = cost(
            &prices,
            Provider::Anthropic,
            Some("claude-x"),
            Some("claude-haiku-4-5-20251001"),
            usage(1000, 0, 100),
        );
        assert_eq!(c.usd, Some(Usd(1000 * 1_000_000 + 100 * 5_000_000)));
        for (provider, model, u) in [
            (Provider::OpenAi, Some("gpt-9"), usage(1, 0, 1)),
            (Provider::AzureOpenAi, Some("gpt-4o-mini"), usage(1, 0, 1)),
            (Provider::OpenAi, Some("gpt-4o-mini"), None),
            (
                Provider::Anthropic,
                Some("claude-haiku-4-5"),
                Some(NativeUsage { tokens: Tokens { input: 1, cached_input: 0, output: 1 }, cache_write: 5 }),
            ),
        ] {
            let c = cost(&prices, provider, model, None, u);
            assert_eq!(c.usd, None, "{provider:?} {model:?}");
            assert!(c.warning.is_some());
        }
    }
}
