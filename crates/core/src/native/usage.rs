//! Usage read from each provider's own answer format, and what it cost.
//!
//! | wire       | where the counts are                                                          |
//! |------------|-------------------------------------------------------------------------------|
//! | OpenAI     | `usage.{prompt_tokens, completion_tokens, prompt_tokens_details.cached_tokens}`; Responses API `usage.{input_tokens, output_tokens, input_tokens_details.cached_tokens}`; Workers AI `result.usage` |
//! | Anthropic  | `usage.{input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens}` (`input_tokens` excludes the cache) |
//! | Gemini     | `usageMetadata.{promptTokenCount, candidatesTokenCount, thoughtsTokenCount, cachedContentTokenCount, toolUsePromptTokenCount}` (the prompt count includes the cached part; thinking is billed as output) |
//! | Bedrock    | the Anthropic shape for Claude `invoke`; Converse `usage.{inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens}` |
//!
//! Counts become [`Tokens`] (uncached input, cached input, output as billed, thinking apart) by
//! the one rule of [`crate::money::usage`], priced exactly by [`crate::money::pricing`]. A
//! count that is not a non-negative integer leaves the answer without usage (cost unknown). Prompt-cache *writes* have no price in the table, so a request with any
//! has an unknown cost (with a warning), never a guessed one.

use serde::Deserialize;

use crate::error::{ErrorKind, GatewayError};
use crate::money::pricing::{AnswerCost, Cost, Prices, Tokens};
use crate::money::usage::{Count, Counts, Details, Thinking};
use crate::provider::{Provider, Wire};

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
    prompt_tokens: Count,
    #[serde(default)]
    completion_tokens: Count,
    #[serde(default)]
    total_tokens: Count,
    #[serde(default)]
    prompt_tokens_details: Option<Details>,
    #[serde(default)]
    completion_tokens_details: Option<Details>,
    // OpenAI Responses and Anthropic.
    #[serde(default)]
    input_tokens: Count,
    #[serde(default)]
    output_tokens: Count,
    #[serde(default)]
    input_tokens_details: Option<Details>,
    #[serde(default)]
    output_tokens_details: Option<Details>,
    #[serde(default)]
    cache_read_input_tokens: Count,
    #[serde(default)]
    cache_creation_input_tokens: Count,
    // Bedrock Converse.
    #[serde(default, rename = "inputTokens")]
    converse_input: Count,
    #[serde(default, rename = "outputTokens")]
    converse_output: Count,
    #[serde(default, rename = "cacheReadInputTokens")]
    converse_cache_read: Count,
    #[serde(default, rename = "cacheWriteInputTokens")]
    converse_cache_write: Count,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct GeminiUsage {
    #[serde(default, rename = "promptTokenCount")]
    prompt: Count,
    #[serde(default, rename = "candidatesTokenCount")]
    candidates: Count,
    #[serde(default, rename = "thoughtsTokenCount")]
    thoughts: Count,
    #[serde(default, rename = "totalTokenCount")]
    total: Count,
    #[serde(default, rename = "cachedContentTokenCount")]
    cached: Count,
    #[serde(default, rename = "toolUsePromptTokenCount")]
    tool_use_prompt: Count,
}

/// `a + b` of two counts: invalid if either is, absent if both are.
fn sum(a: Count, b: Count) -> Count {
    match (a, b) {
        (Count::Invalid, _) | (_, Count::Invalid) => Count::Invalid,
        (Count::Absent, Count::Absent) => Count::Absent,
        (a, b) => Count::Known(a.known().unwrap_or(0).saturating_add(b.known().unwrap_or(0))),
    }
}

fn detail(d: &Option<Details>, pick: fn(&Details) -> Count) -> Count {
    d.as_ref().map_or(Count::Absent, pick)
}

/// A count a prompt-cache write must be: known (or absent, 0); `None` when invalid.
fn writes(count: Count) -> Option<u64> {
    match count {
        Count::Invalid => None,
        other => Some(other.known().unwrap_or(0)),
    }
}

impl UsageProbe {
    /// OpenAI's counts: the prompt includes its cached part; Chat Completions or Responses.
    pub(crate) fn openai(&self) -> Option<NativeUsage> {
        let chat = self.prompt_tokens != Count::Absent || self.completion_tokens != Count::Absent;
        let counts = if chat {
            Counts {
                prompt: self.prompt_tokens,
                cached: detail(&self.prompt_tokens_details, |d| d.cached_tokens),
                completion: self.completion_tokens,
                total: self.total_tokens,
                reasoning: detail(&self.completion_tokens_details, |d| d.reasoning_tokens),
            }
        } else {
            Counts {
                prompt: self.input_tokens,
                cached: detail(&self.input_tokens_details, |d| d.cached_tokens),
                completion: self.output_tokens,
                total: self.total_tokens,
                reasoning: detail(&self.output_tokens_details, |d| d.reasoning_tokens),
            }
        };
        let tokens = counts.tokens(Thinking::Unsaid).ok()?;
        Some(NativeUsage { tokens, cache_write: 0 })
    }

    /// Anthropic's counts: `input_tokens` excludes cache reads and writes; `output_tokens`
    /// includes thinking.
    pub(crate) fn anthropic(&self) -> Option<NativeUsage> {
        if self.input_tokens == Count::Absent && self.output_tokens == Count::Absent {
            return None;
        }
        let counts = Counts {
            prompt: sum(self.input_tokens, self.cache_read_input_tokens),
            cached: self.cache_read_input_tokens,
            completion: self.output_tokens,
            ..Counts::default()
        };
        let tokens = counts.tokens(Thinking::Unsaid).ok()?;
        Some(NativeUsage { tokens, cache_write: writes(self.cache_creation_input_tokens)? })
    }

    /// Applies a streamed `message_delta`'s counts: they are cumulative, so each one given
    /// replaces the earlier (and `message_start`'s input stands unless the delta restates it).
    /// `None`: a count is not a count, and the stream's usage cannot be read.
    pub(crate) fn merge_anthropic_into(&self, u: &mut NativeUsage) -> Option<()> {
        let set = |count: Count, into: &mut u64| match count {
            Count::Invalid => None,
            Count::Known(n) => {
                *into = n;
                Some(())
            }
            Count::Absent => Some(()),
        };
        set(self.input_tokens, &mut u.tokens.input)?;
        set(self.output_tokens, &mut u.tokens.output)?;
        set(self.cache_read_input_tokens, &mut u.tokens.cached_input)?;
        set(self.cache_creation_input_tokens, &mut u.cache_write)
    }

    /// Bedrock: Converse counts, else the model's own (Anthropic-shaped for Claude).
    fn bedrock(&self) -> Option<NativeUsage> {
        if self.converse_input == Count::Absent && self.converse_output == Count::Absent {
            return self.anthropic();
        }
        let counts = Counts {
            prompt: sum(self.converse_input, self.converse_cache_read),
            cached: self.converse_cache_read,
            completion: self.converse_output,
            ..Counts::default()
        };
        let tokens = counts.tokens(Thinking::Unsaid).ok()?;
        Some(NativeUsage { tokens, cache_write: writes(self.converse_cache_write)? })
    }
}

impl GeminiUsage {
    /// Gemini's counts: the prompt (with the tools' prompt) includes its cached part; thoughts
    /// are counted apart from the candidates, and billed as output.
    pub(crate) fn usage(&self) -> Option<NativeUsage> {
        if self.prompt == Count::Absent && self.candidates == Count::Absent {
            return None;
        }
        let counts = Counts {
            prompt: sum(self.prompt, self.tool_use_prompt),
            cached: self.cached,
            completion: self.candidates,
            total: self.total,
            reasoning: self.thoughts,
        };
        let tokens = counts.tokens(Thinking::Apart).ok()?;
        Some(NativeUsage { tokens, cache_write: 0 })
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

/// The cost of a native answer at `provider`'s prices, priced as the model that answered
/// ([`Prices::cost_answered`]: the request's model, or the model the answer names when it is
/// another one the table prices; the answer's model alone when the request names none).
/// Unknown with a warning when no model is priced, when there is no usage it could read, or
/// when prompt-cache writes were billed.
pub fn cost(
    prices: &Prices,
    provider: Provider,
    request_model: Option<&str>,
    answer_model: Option<&str>,
    usage: Option<NativeUsage>,
) -> AnswerCost {
    let unknown = |w: String| AnswerCost { cost: Cost { usd: None, warning: Some(w) }, answered_by: None };
    let Some(usage) = usage else {
        return unknown(format!("{} answered without a usage the gateway could read: cost unknown", provider.slug()));
    };
    let priced = match (request_model, answer_model) {
        (Some(asked), answered) => prices.cost_answered(provider.slug(), asked, answered, usage.tokens),
        (None, Some(answered)) => {
            AnswerCost { cost: prices.cost(provider.slug(), answered, usage.tokens), answered_by: None }
        }
        (None, None) => return unknown(format!("no price for {}/an unnamed model: cost unknown", provider.slug())),
    };
    if usage.cache_write > 0 && priced.cost.usd.is_some() {
        let model = priced.answered_by.as_deref().or(request_model).or(answer_model).unwrap_or("the model");
        return AnswerCost {
            cost: Cost {
                usd: None,
                warning: Some(format!(
                    "no prompt-cache write price for {}/{model}: cost unknown for a request that wrote {} cache tokens",
                    provider.slug(),
                    usage.cache_write
                )),
            },
            answered_by: priced.answered_by,
        };
    }
    priced
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::pricing::Usd;

    fn usage(input: u64, cached: u64, output: u64) -> Option<NativeUsage> {
        Some(NativeUsage { tokens: Tokens { input, cached_input: cached, output, reasoning: 0 }, cache_write: 0 })
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
        assert_eq!(
            a.usage.map(|u| (u.tokens.input, u.tokens.cached_input, u.tokens.output, u.tokens.reasoning)),
            Some((16, 4, 12, 7))
        );
        assert_eq!(a.model.as_deref(), Some("gemini-2.5-flash"));
        let array = br#"[{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}},
            {"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}]"#;
        assert_eq!(read_answer(Wire::Gemini, array).unwrap().usage, usage(3, 0, 2));
    }

    /// Thinking is billed as output in every format, by the one rule of `account::usage`.
    #[test]
    fn thinking_is_billed_in_every_format() {
        let out =
            |wire, body: &[u8]| read_answer(wire, body).unwrap().usage.map(|u| (u.tokens.output, u.tokens.reasoning));
        // OpenAI: reasoning inside completion_tokens, and the total agrees.
        let body = br#"{"usage":{"prompt_tokens":10,"completion_tokens":100,"total_tokens":110,"completion_tokens_details":{"reasoning_tokens":64}}}"#;
        assert_eq!(out(Wire::OpenAi, body), Some((100, 64)));
        // Responses API: the same inside output_tokens.
        let body = br#"{"object":"response","usage":{"input_tokens":10,"output_tokens":50,"total_tokens":60,"output_tokens_details":{"reasoning_tokens":30}}}"#;
        assert_eq!(out(Wire::OpenAi, body), Some((50, 30)));
        // Gemini's compat shape on the OpenAI wire: completion 0, reasoning 60, total 81.
        let body = br#"{"usage":{"prompt_tokens":21,"completion_tokens":0,"total_tokens":81,"completion_tokens_details":{"reasoning_tokens":60}}}"#;
        assert_eq!(out(Wire::OpenAi, body), Some((60, 60)));
        // Gemini: thoughts beside candidates, even when the total leaves them out.
        let body = br#"{"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"thoughtsTokenCount":7}}"#;
        assert_eq!(out(Wire::Gemini, body), Some((12, 7)));
        let body = br#"{"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"thoughtsTokenCount":7,"totalTokenCount":25}}"#;
        assert_eq!(out(Wire::Gemini, body), Some((12, 7)));
        // Anthropic: output_tokens already includes thinking, reported nowhere apart.
        let body = br#"{"usage":{"input_tokens":8,"output_tokens":40}}"#;
        assert_eq!(out(Wire::Anthropic, body), Some((40, 0)));
    }

    /// A count that is not a non-negative integer leaves the answer readable and its usage
    /// unknown (its cost then unknown, with a warning), in every format.
    #[test]
    fn counts_that_are_not_counts_make_the_usage_unknown() {
        for (wire, body) in [
            (Wire::OpenAi, &br#"{"usage":{"prompt_tokens":-5,"completion_tokens":2}}"#[..]),
            (Wire::OpenAi, br#"{"usage":{"prompt_tokens":5,"completion_tokens":2.5}}"#),
            (
                Wire::OpenAi,
                br#"{"usage":{"prompt_tokens":5,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":"x"}}}"#,
            ),
            (Wire::Anthropic, br#"{"usage":{"input_tokens":8,"output_tokens":-1}}"#),
            (Wire::Anthropic, br#"{"usage":{"input_tokens":8,"output_tokens":1,"cache_creation_input_tokens":-2}}"#),
            (
                Wire::Gemini,
                br#"{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1,"thoughtsTokenCount":-9}}"#,
            ),
            (Wire::Bedrock, br#"{"usage":{"inputTokens":9,"outputTokens":1e30}}"#),
        ] {
            let a = read_answer(wire, body).unwrap();
            assert_eq!(a.usage, None, "{}", String::from_utf8_lossy(body));
            let c = cost(&Prices::shipped(), Provider::OpenAi, Some("gpt-4o-mini"), None, a.usage).cost;
            assert!(c.usd.is_none() && c.warning.is_some());
        }
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
        let c = cost(&prices, Provider::GoogleAiStudio, Some("gemini-2.5-flash"), None, usage(412, 0, 188)).cost;
        assert_eq!(c.usd.unwrap().to_string(), "0.0005936");
        // The answer's dated model is used when the request named none that is priced.
        let c = cost(
            &prices,
            Provider::Anthropic,
            Some("claude-x"),
            Some("claude-haiku-4-5-20251001"),
            usage(1000, 0, 100),
        );
        assert_eq!(c.cost.usd, Some(Usd(1000 * 1_000_000 + 100 * 5_000_000)));
        assert_eq!(c.answered_by.as_deref(), Some("claude-haiku-4-5"));
        // An answer from another priced model than asked (Gemini's `modelVersion`) is priced as it.
        let c = cost(
            &prices,
            Provider::GoogleAiStudio,
            Some("gemini-2.5-flash"),
            Some("gemini-3.5-flash-lite"),
            usage(1000, 0, 100),
        );
        assert_eq!(c.answered_by.as_deref(), Some("gemini-3.5-flash-lite"));
        let lite = prices.lookup("google-ai-studio", "gemini-3.5-flash-lite").unwrap();
        assert_eq!(c.cost.usd, lite.cost(Tokens { input: 1000, cached_input: 0, output: 100, reasoning: 0 }).usd);
        for (provider, model, u) in [
            (Provider::OpenAi, Some("gpt-9"), usage(1, 0, 1)),
            (Provider::AzureOpenAi, Some("gpt-4o-mini"), usage(1, 0, 1)),
            (Provider::OpenAi, Some("gpt-4o-mini"), None),
            (
                Provider::Anthropic,
                Some("claude-haiku-4-5"),
                Some(NativeUsage {
                    tokens: Tokens { input: 1, cached_input: 0, output: 1, reasoning: 0 },
                    cache_write: 5,
                }),
            ),
        ] {
            let c = cost(&prices, provider, model, None, u).cost;
            assert_eq!(c.usd, None, "{provider:?} {model:?}");
            assert!(c.warning.is_some());
        }
    }
}
