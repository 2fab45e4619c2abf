//! The OpenAI formats, streamed: Chat Completions (`choices[].delta`, `[DONE]`), the Responses
//! API (`response.*` events, `response.completed`) and Workers AI (`{"response": "text"}`).

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::aig::answer::upstream_message;
use crate::relay::StreamFault;

use super::StreamTally;
use crate::native::usage::UsageProbe;

#[derive(Deserialize, Default)]
struct OpenAiProbe<'a> {
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default, borrow)]
    choices: Option<Vec<OpenAiChoice<'a>>>,
    #[serde(default)]
    usage: Option<UsageProbe>,
    #[serde(default)]
    model: Option<String>,
    /// Responses API event type.
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Responses API text delta.
    #[serde(default, borrow)]
    delta: Option<&'a RawValue>,
    /// Responses API: the response object; Workers AI: the text so far.
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct OpenAiChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<OpenAiDelta<'a>>,
}

#[derive(Deserialize, Default)]
struct OpenAiDelta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct ResponsesObject {
    #[serde(default)]
    usage: Option<UsageProbe>,
    #[serde(default)]
    model: Option<String>,
}

/// Reads one event.
pub(super) fn inspect(tally: &mut StreamTally, name: &[u8], data: &[u8]) -> Result<(), StreamFault> {
    let upstream_error = || StreamFault::UpstreamError(upstream_message(data));
    if data == b"[DONE]" {
        tally.complete = true;
        return Ok(());
    }
    if name == b"error" {
        return Err(upstream_error());
    }
    let p: OpenAiProbe = serde_json::from_slice(data).map_err(|_| StreamFault::Malformed)?;
    if p.error.is_some() || matches!(p.kind.as_deref(), Some("error" | "response.failed")) {
        return Err(upstream_error());
    }
    tally.model = p.model.or(tally.model.take());
    if let Some(u) = p.usage.as_ref().and_then(UsageProbe::openai) {
        tally.usage = Some(u);
    }
    let chat_content = p.choices.iter().flatten().filter_map(|c| c.delta.as_ref()).any(|d| {
        d.content.as_deref().is_some_and(|c| !c.is_empty())
            || d.refusal.as_deref().is_some_and(|c| !c.is_empty())
            || d.tool_calls.is_some()
    });
    let responses_delta =
        p.kind.as_deref().is_some_and(|k| k.ends_with(".delta")) && p.delta.is_some_and(|d| d.get() != "\"\"");
    match p.response.map(RawValue::get) {
        // Workers AI: `{"response":"text"}`.
        Some(raw) if raw.starts_with('"') => {
            tally.saw_content |= crate::json::from_str::<String>(raw).is_ok_and(|s| !s.is_empty());
        }
        // Responses API: the response object, with the usage on `response.completed`.
        Some(raw) if raw.starts_with('{') => {
            let r: ResponsesObject = crate::json::from_str(raw).unwrap_or_default();
            if let Some(u) = r.usage.as_ref().and_then(UsageProbe::openai) {
                tally.usage = Some(u);
            }
            tally.model = r.model.or(tally.model.take());
            if matches!(p.kind.as_deref(), Some("response.completed" | "response.incomplete")) {
                tally.complete = true;
            }
        }
        _ => {}
    }
    tally.saw_content |= chat_content || responses_delta;
    Ok(())
}
