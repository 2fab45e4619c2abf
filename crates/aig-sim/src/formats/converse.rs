//! AWS Bedrock: the Converse API (`…/model/{model}/converse`) and Bedrock's error shape. (Claude
//! through `…/invoke` and the Messages endpoint speak the Anthropic format.)

use serde_json::{json, Value};

use super::{positive_int, ChatRequest};
use crate::answer::{Answer, Conversation, Finish, Reply};
use crate::http::{json_response, Resp};

/// `{"text":…}` blocks of a Converse `content` (or `system`) array, joined with a space.
fn blocks_text(blocks: Option<&Value>, what: &str) -> Result<String, String> {
    let blocks =
        blocks.and_then(Value::as_array).ok_or_else(|| format!("{what} must be an array of content blocks"))?;
    let mut texts = Vec::new();
    for block in blocks {
        match block.get("text") {
            Some(Value::String(t)) => texts.push(t.as_str()),
            None if block.is_object() => {}
            _ => return Err(format!("{what}: a block's text must be a string")),
        }
    }
    Ok(texts.join(" "))
}

/// Reads a Converse request for `model` (from the path). Converse never streams on this path
/// (`converse-stream` is a binary event stream the simulator does not speak).
pub fn parse_request(body: &Value, model: &str) -> Result<ChatRequest, String> {
    if !body.is_object() {
        return Err("The request body must be a JSON object.".into());
    }
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or("messages: a non-empty array is required")?;
    let mut conv = Conversation::default();
    if let Some(system) = body.get("system").filter(|s| !s.is_null()) {
        conv.texts.push(blocks_text(Some(system), "system")?);
    }
    for (i, message) in messages.iter().enumerate() {
        let role =
            message.get("role").and_then(Value::as_str).ok_or_else(|| format!("messages.{i}.role is required"))?;
        let text = blocks_text(message.get("content"), &format!("messages.{i}.content"))?;
        if role == "user" {
            conv.last_user.clone_from(&text);
        }
        conv.texts.push(text);
    }
    let max_tokens = match body.get("inferenceConfig") {
        None | Some(Value::Null) => None,
        Some(cfg) if cfg.is_object() => positive_int(cfg, "maxTokens").map_err(|e| format!("inferenceConfig.{e}"))?,
        Some(_) => return Err("inferenceConfig must be an object".into()),
    };
    Ok(ChatRequest {
        model: model.to_string(),
        conv,
        stream: false,
        include_usage: false,
        max_tokens,
        reply: Reply::Text,
        history: Vec::new(),
    })
}

/// The Converse response body.
pub fn response(answer: &Answer) -> Value {
    let stop = match answer.finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ContentFilter => "content_filtered",
    };
    let content = match answer.finish {
        Finish::ContentFilter => json!([]),
        _ => json!([{"text": answer.content()}]),
    };
    let (p, c) = (answer.prompt_tokens, answer.completion_tokens());
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": p, "outputTokens": c, "totalTokens": p + c},
        "metrics": {"latencyMs": 0},
    })
}

/// Bedrock's error shape (`ValidationException` and friends carry only a message).
pub fn error(status: u16, message: &str) -> Resp {
    json_response(status, &json!({"message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_answers() {
        let r = parse_request(
            &json!({"system": [{"text": "Be brief."}], "messages": [{"role": "user", "content": [{"text": "Hi"}, {"image": {}}]}],
                "inferenceConfig": {"maxTokens": 3}}),
            "amazon.nova-lite-v1:0",
        )
        .unwrap();
        assert_eq!(r.conv.texts, ["Be brief.", "Hi"]);
        assert_eq!(r.max_tokens, Some(3));
        let a = Answer::new("x".into(), 0, "aws-bedrock", &r.model, &r.conv, r.max_tokens);
        let body = response(&a);
        assert_eq!(body["stopReason"], "max_tokens");
        assert_eq!(body["output"]["message"]["content"][0]["text"], "Simulated answer from");
        assert_eq!(body["usage"]["outputTokens"], 3);
        for bad in [json!([]), json!({"messages": []}), json!({"messages": [{"role": "user", "content": "x"}]})] {
            assert!(parse_request(&bad, "m").is_err(), "{bad}");
        }
    }
}
