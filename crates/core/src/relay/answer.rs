//! What the OpenAI relay keeps of a streamed answer beyond its summary: the model its chunks
//! name (an answer from another model than asked is priced as that model), and, for a request
//! whose `response_format` asks for JSON, the content of its first choice, gathered for the
//! check at the stream's end ([`crate::output`]).
//!
//! It reads each event apart from the relay's own reading, so that it changes nothing of it;
//! the model is looked for in the first few events only (OpenAI-style chunks all carry it), and
//! the content only when asked for, so a stream that is not checked pays for one small read.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::output::{AnswerContent, MAX_CHECKED_CONTENT_BYTES};

/// Events looked at for the model before giving up on finding one.
const MODEL_LOOKS: u8 = 4;
/// The longest model name kept.
const MAX_MODEL_CHARS: usize = 128;

#[derive(Debug, Default)]
pub struct StreamAnswer {
    model: Option<String>,
    looked: u8,
    /// Gathering the first choice's content (JSON mode).
    gathered: Option<Gathered>,
}

#[derive(Debug, Default)]
struct Gathered {
    text: String,
    tool_calls: bool,
    refusal: bool,
    oversized: bool,
}

#[derive(Deserialize)]
struct EventProbe<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceProbe<'a>>>,
}

#[derive(Deserialize)]
struct ChoiceProbe<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<DeltaProbe<'a>>,
}

#[derive(Deserialize)]
struct DeltaProbe<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
}

impl StreamAnswer {
    /// Gathers the first choice's content from now on (JSON mode).
    pub fn gather_content(&mut self) {
        self.gathered.get_or_insert_with(Gathered::default);
    }

    /// Reads one event's JSON payload (a chunk the relay already read as valid).
    pub(crate) fn event(&mut self, payload: &[u8]) {
        let wants_model = self.model.is_none() && self.looked < MODEL_LOOKS;
        if !wants_model && self.gathered.is_none() {
            return;
        }
        let Ok(probe) = serde_json::from_slice::<EventProbe>(payload) else { return };
        if wants_model {
            self.looked += 1;
            self.model =
                probe.model.filter(|m| !m.trim().is_empty()).map(|m| m.chars().take(MAX_MODEL_CHARS).collect());
        }
        let Some(gathered) = &mut self.gathered else { return };
        let first = probe.choices.into_iter().flatten().find(|c| c.index.unwrap_or(0) == 0);
        let Some(delta) = first.and_then(|c| c.delta) else { return };
        gathered.tool_calls |= delta.tool_calls.is_some_and(|t| t.get() != "null");
        gathered.refusal |= delta.refusal.as_deref().is_some_and(|r| !r.is_empty());
        if let Some(text) = delta.content {
            if gathered.text.len() + text.len() > MAX_CHECKED_CONTENT_BYTES {
                gathered.oversized = true;
            } else {
                gathered.text.push_str(&text);
            }
        }
    }

    /// The model the stream's chunks name, if they name one.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// The first choice's content as gathered (none when gathering was not asked for).
    pub fn content(&self) -> AnswerContent<'_> {
        match &self.gathered {
            None => AnswerContent::default(),
            Some(g) => AnswerContent {
                content: (!g.text.is_empty()).then_some(Cow::Borrowed(g.text.as_str())),
                tool_calls: g.tool_calls,
                refusal: g.refusal,
                oversized: g.oversized,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(json: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json).unwrap()
    }

    #[test]
    fn the_model_and_the_first_choices_content_are_kept() {
        let mut a = StreamAnswer::default();
        a.gather_content();
        a.event(&chunk(serde_json::json!({"model": "gemini-3.5-flash-lite", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})));
        a.event(&chunk(serde_json::json!({"model": "other", "choices": [{"index": 0, "delta": {"content": "{\"a\":"}}, {"index": 1, "delta": {"content": "x"}}]})));
        a.event(&chunk(serde_json::json!({"choices": [{"delta": {"content": " 1}"}, "finish_reason": "stop"}]})));
        a.event(b"not json");
        assert_eq!(a.model(), Some("gemini-3.5-flash-lite"));
        assert_eq!(a.content().content.as_deref(), Some("{\"a\": 1}"));
        assert!(!a.content().tool_calls);
    }

    #[test]
    fn nothing_is_gathered_unless_asked_and_the_gathering_is_bounded() {
        let mut a = StreamAnswer::default();
        a.event(&chunk(serde_json::json!({"choices": [{"delta": {"content": "x"}}]})));
        assert_eq!(a.content(), AnswerContent::default());
        assert_eq!(a.model(), None);
        let mut a = StreamAnswer::default();
        a.gather_content();
        let piece = "a".repeat(64 * 1024);
        for _ in 0..20 {
            a.event(&chunk(serde_json::json!({"choices": [{"delta": {"content": piece}}]})));
        }
        assert!(a.content().oversized);
        assert!(a.content().content.unwrap().len() <= MAX_CHECKED_CONTENT_BYTES);
        let mut a = StreamAnswer::default();
        a.gather_content();
        a.event(&chunk(
            serde_json::json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]}}]}),
        ));
        assert!(a.content().tool_calls);
    }
}
