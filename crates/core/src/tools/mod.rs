//! Tool calls across providers: what each one answers, and what each one accepts back.
//!
//! Through AI Gateway's OpenAI-compatible endpoint every provider's own dialect shows through
//! (reference: provider-dialects §1, §3). Gemini streams tool calls without `index`, one
//! parallel call per chunk, with ids of its own forms or empty, a thought signature under
//! `extra_content`, and `finish_reason: "stop"`; OpenAI clients accumulate by `index` and break
//! on all of it. And a failover in the middle of a tool loop sends one provider's history to
//! another, whose rules differ.
//!
//! | concern                                                          | module        |
//! |------------------------------------------------------------------|---------------|
//! | answers made right for OpenAI clients, streamed and not          | [`answer`]    |
//! | history made right for the target (ids, signatures, pairing)     | [`history`]   |
//! | the signatures Gemini issued, remembered for the caller          | [`memory`]    |
//!
//! Which rules a target follows is decided once, here: [`ToolFamily::of`].

pub mod answer;
pub mod history;
pub mod memory;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use answer::{normalise_completion, IssuedSignature, NormalisedCompletion, StreamCalls};
pub use history::ToolHistory;

/// What Gemini 3 accepts in place of a signature on history it did not write (documented by
/// Google for exactly that case; reasoning quality may suffer, the request is not refused).
pub const SIGNATURE_PLACEHOLDER: &str = "skip_thought_signature_validator";

/// The tool-history rules a target follows (reference §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolFamily {
    /// OpenAI and every other OpenAI-compatible provider: ids at most 40 characters, every
    /// result paired with its call; `extra_content` is not theirs.
    OpenAi,
    /// Anthropic (directly, on Bedrock or on Vertex): ids non-empty and `^[a-zA-Z0-9_-]+$`,
    /// unique in the conversation; every `tool_use` answered.
    Anthropic,
    /// Gemini before 3: accepts replayed calls with or without a signature.
    Gemini,
    /// Gemini 3 and later: refuses a history tool step whose first call carries no signature.
    Gemini3,
}

impl ToolFamily {
    /// The family of `provider` (AI Gateway's slug) serving `model`. A model path such as
    /// `publishers/google/models/gemini-3-pro` counts by its last segment; Gemini 3 is any
    /// `gemini-N…` with N ≥ 3, so a newer Gemini keeps the stricter rule.
    pub fn of(provider: &str, model: &str) -> ToolFamily {
        let model = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
        let claude = model.contains("claude");
        match provider {
            "anthropic" => ToolFamily::Anthropic,
            "aws-bedrock" | "google-vertex-ai" if claude || model.starts_with("anthropic.") => ToolFamily::Anthropic,
            "google-ai-studio" | "google-vertex-ai" => {
                let major: Option<u32> = model
                    .strip_prefix("gemini-")
                    .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>())
                    .and_then(|digits| digits.parse().ok());
                match major {
                    Some(n) if n >= 3 => ToolFamily::Gemini3,
                    _ => ToolFamily::Gemini,
                }
            }
            _ => ToolFamily::OpenAi,
        }
    }

    /// Gemini, of any version: the family that issues thought signatures and reads them back.
    pub fn is_gemini(self) -> bool {
        matches!(self, ToolFamily::Gemini | ToolFamily::Gemini3)
    }
}

#[derive(Deserialize)]
struct ExtraContent<'a> {
    #[serde(default, borrow)]
    google: Option<SignatureHolder<'a>>,
    /// Vertex has been seen to use its own key.
    #[serde(default, borrow)]
    vertex: Option<SignatureHolder<'a>>,
}

#[derive(Deserialize)]
struct SignatureHolder<'a> {
    #[serde(default, borrow)]
    thought_signature: Option<Cow<'a, str>>,
}

/// The thought signature an `extra_content` value carries (`google`, else `vertex`), if any and
/// not empty.
pub(crate) fn signature_in(extra_content: &RawValue) -> Option<Cow<'_, str>> {
    fn of(holder: Option<SignatureHolder<'_>>) -> Option<Cow<'_, str>> {
        holder.and_then(|h| h.thought_signature).filter(|s| !s.is_empty())
    }
    let extra: ExtraContent = serde_json::from_slice(extra_content.get().as_bytes()).ok()?;
    of(extra.google).or_else(|| of(extra.vertex))
}

/// Whether `haystack` has `needle` (a quoted JSON key or value such as `"tool_calls"`) as bytes.
/// Inside a JSON string a quote is escaped, so a match outside one is the token itself (a match
/// inside one only costs a parse that finds nothing to do).
pub(crate) fn contains_token(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, _)) = needle.split_first() else { return true };
    let mut at = 0;
    while let Some(i) = haystack.get(at..).and_then(|rest| rest.iter().position(|&b| b == first)) {
        if haystack[at + i..].starts_with(needle) {
            return true;
        }
        at += i + 1;
    }
    false
}

/// `extra_content` carrying `signature` the way Gemini's OpenAI compatibility reads it.
pub(crate) fn extra_content_with(signature: &str) -> String {
    format!("{{\"google\":{{\"thought_signature\":{}}}}}", crate::json::edit::quoted(signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_comes_from_the_provider_and_the_model() {
        use ToolFamily::*;
        let cases = [
            ("google-ai-studio", "gemini-3-pro-preview", Gemini3),
            ("google-ai-studio", "gemini-3.1-flash-lite-preview", Gemini3),
            ("google-ai-studio", "models/gemini-3.5-flash", Gemini3),
            ("google-vertex-ai", "publishers/google/models/gemini-3-flash", Gemini3),
            ("google-ai-studio", "gemini-10-ultra", Gemini3),
            ("google-ai-studio", "gemini-2.5-flash", Gemini),
            ("google-ai-studio", "gemini-exp-1206", Gemini),
            ("google-ai-studio", "gemma-3-27b-it", Gemini),
            ("google-vertex-ai", "claude-sonnet-4-5@20250929", Anthropic),
            ("aws-bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0", Anthropic),
            ("aws-bedrock", "meta.llama3-70b", OpenAi),
            ("anthropic", "claude-opus-4-1", Anthropic),
            ("openai", "gpt-4o", OpenAi),
            ("openai", "gemini-3-pro", OpenAi),
            ("workers-ai", "@cf/meta/llama-3.1-8b-instruct", OpenAi),
        ];
        for (provider, model, family) in cases {
            assert_eq!(ToolFamily::of(provider, model), family, "{provider}/{model}");
        }
        assert!(Gemini3.is_gemini() && Gemini.is_gemini() && !OpenAi.is_gemini() && !Anthropic.is_gemini());
    }

    #[test]
    fn signatures_are_read_from_either_key_and_written_for_google() {
        let raw = |s: &str| -> Box<RawValue> { RawValue::from_string(s.to_owned()).unwrap() };
        assert_eq!(signature_in(&raw(r#"{"google":{"thought_signature":"c2ln"}}"#)).as_deref(), Some("c2ln"));
        assert_eq!(signature_in(&raw(r#"{"vertex":{"thought_signature":"dg=="}}"#)).as_deref(), Some("dg=="));
        assert_eq!(signature_in(&raw(r#"{"google":{"thought_signature":""}}"#)), None);
        assert_eq!(signature_in(&raw(r#"{"google":{}}"#)), None);
        assert_eq!(signature_in(&raw("null")), None);
        let written = extra_content_with("a\"b");
        assert_eq!(signature_in(&raw(&written)).as_deref(), Some("a\"b"));
    }
}
