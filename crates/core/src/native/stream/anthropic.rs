//! Anthropic's Messages stream (also Bedrock's Anthropic models): `message_start` (input usage),
//! `content_block_delta` (content), `message_delta` (output usage), `message_stop` (the end).

use serde::Deserialize;

use crate::aig::answer::upstream_message;
use crate::error::GatewayError;
use crate::relay::StreamFault;

use super::StreamTally;
use crate::native::usage::{NativeUsage, UsageProbe};

#[derive(Deserialize, Default)]
struct AnthropicProbe {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<AnthropicMessage>,
    #[serde(default)]
    usage: Option<UsageProbe>,
    #[serde(default)]
    content_block: Option<AnthropicBlock>,
}

#[derive(Deserialize, Default)]
struct AnthropicMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<UsageProbe>,
}

#[derive(Deserialize, Default)]
struct AnthropicBlock {
    #[serde(default, rename = "type")]
    kind: String,
}

/// Reads one event.
pub(super) fn inspect(tally: &mut StreamTally, name: &[u8], data: &[u8]) -> Result<(), StreamFault> {
    let upstream_error = || StreamFault::UpstreamError(upstream_message(data));
    let p: AnthropicProbe = serde_json::from_slice(data).map_err(|_| StreamFault::Malformed)?;
    let kind = if p.kind.is_empty() { String::from_utf8_lossy(name).into_owned() } else { p.kind.clone() };
    match kind.as_str() {
        "error" => return Err(upstream_error()),
        "message_start" => {
            if let Some(m) = p.message {
                tally.model = m.model.or(tally.model.take());
                tally.usage = m.usage.as_ref().and_then(UsageProbe::anthropic).or(tally.usage);
            }
        }
        "message_delta" if !tally.usage_unreadable => {
            if let Some(u) = &p.usage {
                if u.merge_anthropic_into(tally.usage.get_or_insert_with(NativeUsage::default)).is_none() {
                    // A count that is not one: the stream's usage is unknown from here on.
                    (tally.usage, tally.usage_unreadable) = (None, true);
                }
            }
        }
        "content_block_delta" => tally.saw_content = true,
        "content_block_start" if p.content_block.as_ref().is_some_and(|b| b.kind != "text") => {
            tally.saw_content = true;
        }
        "message_stop" => tally.complete = true,
        _ => {}
    }
    Ok(())
}

/// The SDK's own error event.
pub(super) fn error_event(err: &GatewayError) -> String {
    let status = err.status();
    let kind = match status {
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let body = serde_json::json!({"type": "error", "error": {"type": kind, "message": err.message}});
    format!("event: error\ndata: {body}\n\n")
}
