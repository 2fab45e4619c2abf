//! Gemini's stream (`streamGenerateContent`, SSE or a JSON array): content in a candidate's
//! parts, the end at a candidate's `finishReason` (or the array's closing `]`), usage in
//! `usageMetadata` (latest wins).

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::aig::answer::upstream_message;
use crate::error::GatewayError;
use crate::relay::StreamFault;

use super::StreamTally;
use crate::native::shape::Framing;
use crate::native::usage::GeminiUsage;

#[derive(Deserialize, Default)]
struct GeminiProbe<'a> {
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    #[serde(default)]
    candidates: Option<Vec<GeminiCandidate>>,
    #[serde(default, rename = "usageMetadata")]
    usage: Option<GeminiUsage>,
    #[serde(default, rename = "modelVersion")]
    model: Option<String>,
}

#[derive(Deserialize, Default)]
struct GeminiCandidate {
    #[serde(default)]
    content: Option<GeminiContent>,
    #[serde(default, rename = "finishReason")]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct GeminiContent {
    #[serde(default)]
    parts: Vec<GeminiPart>,
}

#[derive(Deserialize, Default)]
struct GeminiPart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, rename = "functionCall")]
    function_call: Option<IgnoredAny>,
}

/// Reads one event (or one element of the array).
pub(super) fn inspect(tally: &mut StreamTally, data: &[u8]) -> Result<(), StreamFault> {
    let upstream_error = || StreamFault::UpstreamError(upstream_message(data));
    let p: GeminiProbe = serde_json::from_slice(data).map_err(|_| StreamFault::Malformed)?;
    if p.error.is_some() {
        return Err(upstream_error());
    }
    tally.model = p.model.or(tally.model.take());
    if let Some(u) = p.usage.as_ref().and_then(GeminiUsage::usage) {
        tally.usage = Some(u);
    }
    for c in p.candidates.iter().flatten() {
        let content = c
            .content
            .iter()
            .flat_map(|c| &c.parts)
            .any(|part| part.text.as_deref().is_some_and(|t| !t.is_empty()) || part.function_call.is_some());
        tally.saw_content |= content;
        if c.finish_reason.is_some() {
            tally.complete = true;
        }
    }
    Ok(())
}

/// Google's error shape, as an SSE event or as the array's last element.
pub(super) fn error_event(err: &GatewayError, framing: Framing) -> String {
    let status = err.status();
    let name = match status {
        504 => "DEADLINE_EXCEEDED",
        429 => "RESOURCE_EXHAUSTED",
        _ => "UNAVAILABLE",
    };
    let body = serde_json::json!({"error": {"code": status, "message": err.message, "status": name}});
    match framing {
        // After the commit point at least one element was forwarded, so the array
        // continues with a comma and is closed properly.
        Framing::JsonArray => format!(",\r\n{body}]"),
        _ => format!("data: {body}\n\n"),
    }
}
