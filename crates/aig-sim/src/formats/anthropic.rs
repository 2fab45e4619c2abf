//! Anthropic Messages (`/anthropic/v1/messages`): requests, `message` bodies and the named-event
//! stream (`message_start` … `message_stop`).

use bytes::Bytes;
use serde_json::{json, Value};

use super::{content_text, flag, sse, ChatRequest};
use crate::answer::{Answer, Conversation, Finish, Reply};
use crate::http::{json_response, Resp};
use crate::stream::StreamPlan;

/// Reads a Messages request. Like the real API, `max_tokens` is required. A top-level `system`
/// prompt counts as one more message for the prompt tokens, so the same conversation costs the
/// same P in every format.
pub fn parse_request(body: &Value) -> Result<ChatRequest, String> {
    if !body.is_object() {
        return Err("the request body must be a JSON object".into());
    }
    let model =
        body.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()).ok_or("model: Field required")?.to_string();
    let max_tokens = match body.get("max_tokens") {
        None | Some(Value::Null) => return Err("max_tokens: Field required".into()),
        Some(v) => v.as_u64().filter(|n| *n > 0).ok_or("max_tokens: Input should be a positive integer")?,
    };
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages: Field required (a non-empty array)")?;
    let mut conv = Conversation::default();
    if let Some(system) = body.get("system").filter(|s| !s.is_null()) {
        conv.texts.push(content_text(Some(system), "system")?);
    }
    for (i, message) in messages.iter().enumerate() {
        let role =
            message.get("role").and_then(Value::as_str).ok_or_else(|| format!("messages.{i}.role: Field required"))?;
        let text = content_text(message.get("content"), &format!("messages.{i}.content"))?;
        if role == "user" {
            conv.last_user.clone_from(&text);
        }
        conv.texts.push(text);
    }
    Ok(ChatRequest {
        model,
        conv,
        stream: flag(body, "stream")?,
        include_usage: false,
        max_tokens: Some(max_tokens),
        reply: Reply::Text,
        history: Vec::new(),
    })
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ContentFilter => "refusal",
    }
}

/// The `message` body. A filtered answer has no content blocks and `stop_reason: "refusal"`.
pub fn message(answer: &Answer) -> Value {
    let content = match answer.finish {
        Finish::ContentFilter => json!([]),
        _ => json!([{"type": "text", "text": answer.content()}]),
    };
    json!({
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason(answer.finish),
        "stop_sequence": null,
        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens()},
    })
}

fn event(name: &str, data: Value) -> Bytes {
    sse(Some(name), &data.to_string())
}

/// `message_start`, `content_block_start`, one `content_block_delta` per word,
/// `content_block_stop`, `message_delta`, `message_stop`. A filtered answer has no content block.
pub fn stream_plan(answer: &Answer) -> StreamPlan {
    let start = event(
        "message_start",
        json!({"type": "message_start", "message": {
            "id": answer.id, "type": "message", "role": "assistant", "model": answer.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 0},
        }}),
    );
    let message_delta = event(
        "message_delta",
        json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason(answer.finish), "stop_sequence": null},
            "usage": {"output_tokens": answer.completion_tokens()}}),
    );
    let stop = event("message_stop", json!({"type": "message_stop"}));
    let malformed = vec![
        Bytes::from_static(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"bro\n\n",
        ),
        stop.clone(),
    ];
    if answer.finish == Finish::ContentFilter {
        return StreamPlan { head: vec![start], content: Vec::new(), tail: vec![message_delta, stop], malformed };
    }
    let block_start = event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    let content = answer
        .pieces
        .iter()
        .map(|piece| {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
            )
        })
        .collect();
    let block_stop = event("content_block_stop", json!({"type": "content_block_stop", "index": 0}));
    StreamPlan { head: vec![start, block_start], content, tail: vec![block_stop, message_delta, stop], malformed }
}

/// Anthropic's error shape (`invalid_request_error` for a 400).
pub fn error(status: u16, message: &str) -> Resp {
    json_response(status, &json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_max_tokens() {
        let ok = json!({"model": "claude-haiku-4-5", "max_tokens": 10, "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]});
        let r = parse_request(&ok).unwrap();
        assert_eq!(r.conv.texts, ["Be brief.", "Hi"]);
        assert_eq!(r.max_tokens, Some(10));
        let mut missing = ok.clone();
        missing.as_object_mut().unwrap().remove("max_tokens");
        assert_eq!(parse_request(&missing).unwrap_err(), "max_tokens: Field required");
    }
}
