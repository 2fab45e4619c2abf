//! OpenAI Chat Completions: requests, `chat.completion` bodies and `chat.completion.chunk`
//! streams. The one code path for the compat, REST, `openai` and `workers-ai` routes.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{content_text, flag, positive_int, sse, ChatRequest};
use crate::answer::{Answer, Conversation, Finish};
use crate::http::{json_response, Resp};
use crate::stream::StreamPlan;

/// Reads a Chat Completions request. `model` must be a non-empty string and `messages` a
/// non-empty array of `{role, content}` objects.
pub fn parse_request(body: &Value) -> Result<ChatRequest, String> {
    if !body.is_object() {
        return Err("the request body must be a JSON object".into());
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or("you must provide a model parameter")?
        .to_string();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages must be a non-empty array")?;
    let mut conv = Conversation::default();
    for (i, message) in messages.iter().enumerate() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("messages[{i}] must be an object with a string role"))?;
        let text = content_text(message.get("content"), &format!("messages[{i}]"))?;
        if role == "user" {
            conv.last_user.clone_from(&text);
        }
        conv.texts.push(text);
    }
    let include_usage = match body.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(opts) if opts.is_object() => {
            flag(opts, "include_usage").map_err(|_| "stream_options.include_usage must be a boolean".to_string())?
        }
        Some(_) => return Err("stream_options must be an object".into()),
    };
    // The newer name wins when both are sent, as with OpenAI.
    let max_tokens = match positive_int(body, "max_completion_tokens")? {
        Some(n) => Some(n),
        None => positive_int(body, "max_tokens")?,
    };
    Ok(ChatRequest { model, conv, stream: flag(body, "stream")?, include_usage, max_tokens })
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ContentFilter => "content_filter",
    }
}

fn usage(answer: &Answer) -> Value {
    let (p, c) = (answer.prompt_tokens, answer.completion_tokens());
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// The `chat.completion` body. A filtered answer has `content: null`.
pub fn completion(answer: &Answer) -> Value {
    let content = match answer.finish {
        Finish::ContentFilter => Value::Null,
        _ => Value::String(answer.content()),
    };
    json!({
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason(answer.finish),
        }],
        "usage": usage(answer),
    })
}

fn chunk(answer: &Answer, delta: Value, finish: Option<&str>) -> Bytes {
    let body = json!({
        "id": answer.id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    sse(None, &body.to_string())
}

/// Role chunk, one chunk per word, a finish chunk, the usage chunk when asked, `[DONE]`.
pub fn stream_plan(answer: &Answer, include_usage: bool) -> StreamPlan {
    let head = vec![chunk(answer, json!({"role": "assistant", "content": ""}), None)];
    let content = answer.pieces.iter().map(|piece| chunk(answer, json!({"content": piece}), None)).collect();
    let mut tail = vec![chunk(answer, json!({}), Some(finish_reason(answer.finish)))];
    if include_usage {
        let body = json!({
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.model,
            "choices": [],
            "usage": usage(answer),
        });
        tail.push(sse(None, &body.to_string()));
    }
    tail.push(sse(None, "[DONE]"));
    StreamPlan {
        head,
        content,
        tail,
        malformed: vec![
            Bytes::from_static(b"data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"bro\n\n"),
            sse(None, "[DONE]"),
        ],
    }
}

/// An OpenAI-style error, for requests the `openai` / `workers-ai` native routes refuse.
pub fn error(status: u16, message: &str) -> Resp {
    json_response(
        status,
        &json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let r = parse_request(&json!({
            "model": "openai/gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "there"}]},
                {"role": "assistant", "content": null, "tool_calls": []}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 50,
            "max_completion_tokens": 9
        }))
        .unwrap();
        assert_eq!(r.conv.last_user, "Hello there");
        assert_eq!(r.conv.texts, ["Be brief.", "Hello there", ""]);
        assert!(r.stream && r.include_usage);
        assert_eq!(r.max_tokens, Some(9));

        for bad in [
            json!([]),
            json!({"messages": [{"role": "user", "content": "x"}]}),
            json!({"model": "m", "messages": []}),
            json!({"model": "m", "messages": [{"content": "x"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
        ] {
            assert!(parse_request(&bad).is_err(), "{bad}");
        }
    }
}
