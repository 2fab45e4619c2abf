//! Google AI Studio (Gemini) `generateContent` / `streamGenerateContent`.
//!
//! Streams come in two framings, as with the real API: `?alt=sse` gives `data: <json>\n\n`
//! events, otherwise the body is one JSON array whose elements arrive over time.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{positive_int, sse, ChatRequest};
use crate::answer::{Answer, Conversation, Finish, Reply};
use crate::http::{json_response, Resp};
use crate::stream::StreamPlan;

/// Reads a `generateContent` request for `model` (which comes from the path). Text comes from
/// `contents[].parts[].text` (and `systemInstruction.parts[].text`, counted as one more message);
/// a content without a role is the user's, as in the API.
pub fn parse_request(body: &Value, model: &str, stream: bool) -> Result<ChatRequest, String> {
    if !body.is_object() {
        return Err("Invalid JSON payload: the body must be an object.".into());
    }
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let mut conv = Conversation::default();
    if let Some(system) = body.get("systemInstruction").filter(|s| !s.is_null()) {
        conv.texts.push(parts_text(system, "systemInstruction")?);
    }
    for (i, content) in contents.iter().enumerate() {
        let text = parts_text(content, &format!("contents[{i}]"))?;
        let role = match content.get("role") {
            None | Some(Value::Null) => "user",
            Some(Value::String(r)) => r.as_str(),
            Some(_) => return Err(format!("contents[{i}].role must be a string")),
        };
        if role == "user" {
            conv.last_user.clone_from(&text);
        }
        conv.texts.push(text);
    }
    let max_tokens = match body.get("generationConfig") {
        None | Some(Value::Null) => None,
        Some(cfg) if cfg.is_object() => {
            positive_int(cfg, "maxOutputTokens").map_err(|e| format!("generationConfig.{e}"))?
        }
        Some(_) => return Err("generationConfig must be an object".into()),
    };
    Ok(ChatRequest {
        model: model.to_string(),
        conv,
        stream,
        include_usage: false,
        max_tokens,
        reply: Reply::Text,
        history: Vec::new(),
    })
}

/// `{"parts":[{"text":…}, …]}` → the texts joined with a space (non-text parts ignored), the same
/// rule as for OpenAI content arrays.
fn parts_text(content: &Value, what: &str) -> Result<String, String> {
    let parts =
        content.get("parts").and_then(Value::as_array).ok_or_else(|| format!("{what}.parts must be an array"))?;
    let mut texts = Vec::new();
    for part in parts {
        match part.get("text") {
            None if part.is_object() => {}
            Some(Value::String(t)) => texts.push(t.as_str()),
            _ => return Err(format!("{what}.parts: every part must be an object with a string text")),
        }
    }
    Ok(texts.join(" "))
}

fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "STOP",
        Finish::Length => "MAX_TOKENS",
        Finish::ContentFilter => "SAFETY",
    }
}

/// `usageMetadata`: `candidatesTokenCount` excludes the thinking tokens, which
/// `thoughtsTokenCount` reports (for a thinking model); `totalTokenCount` includes them.
fn usage(answer: &Answer) -> Value {
    let (p, c, r) = (answer.prompt_tokens, answer.completion_tokens(), answer.reasoning_tokens);
    let mut usage = json!({"promptTokenCount": p, "candidatesTokenCount": c, "totalTokenCount": p + c + r});
    if r > 0 {
        usage["thoughtsTokenCount"] = json!(r);
    }
    usage
}

/// The final candidate: the whole text (or none when filtered) with its finish reason.
fn final_candidate(answer: &Answer, text: &str) -> Value {
    let mut candidate = json!({"finishReason": finish_reason(answer.finish), "index": 0});
    if answer.finish != Finish::ContentFilter {
        candidate["content"] = json!({"parts": [{"text": text}], "role": "model"});
    }
    candidate
}

/// The `GenerateContentResponse` body.
pub fn response(answer: &Answer) -> Value {
    json!({
        "candidates": [final_candidate(answer, &answer.content())],
        "usageMetadata": usage(answer),
        "modelVersion": answer.model,
        "responseId": answer.id,
    })
}

/// One chunk per word, then a final chunk with an empty text, the finish reason and the usage.
pub fn stream_plan(answer: &Answer, sse_framing: bool) -> StreamPlan {
    let mut elements: Vec<String> = answer
        .pieces
        .iter()
        .map(|piece| {
            json!({
                "candidates": [{"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}],
                "modelVersion": answer.model,
                "responseId": answer.id,
            })
            .to_string()
        })
        .collect();
    elements.push(
        json!({
            "candidates": [final_candidate(answer, "")],
            "usageMetadata": usage(answer),
            "modelVersion": answer.model,
            "responseId": answer.id,
        })
        .to_string(),
    );
    let broken = r#"{"candidates":[{"content":{"parts":[{"text":"bro"#;
    let last = elements.len() - 1;
    if sse_framing {
        let mut events: Vec<Bytes> = elements.iter().map(|e| sse(None, e)).collect();
        let tail = vec![events.remove(last)];
        StreamPlan { head: Vec::new(), content: events, tail, malformed: vec![sse(None, broken)] }
    } else {
        // A JSON array written element by element: `[`, `e0`, `,\r\ne1`, …, `]`.
        let mut events: Vec<Bytes> = elements
            .iter()
            .enumerate()
            .map(|(i, e)| if i == 0 { e.clone().into() } else { format!(",\r\n{e}").into() })
            .collect();
        let tail = vec![events.remove(last), Bytes::from_static(b"]")];
        StreamPlan {
            head: vec![Bytes::from_static(b"[")],
            content: events,
            tail,
            malformed: vec![Bytes::from(broken), Bytes::from_static(b"]")],
        }
    }
}

/// Google's error shape.
pub fn error(status: u16, message: &str) -> Resp {
    let status_name = match status {
        400 => "INVALID_ARGUMENT",
        404 => "NOT_FOUND",
        _ => "UNKNOWN",
    };
    json_response(status, &json!({"error": {"code": status, "message": message, "status": status_name}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(finish_words: Option<u64>) -> Answer {
        let r = parse_request(
            &json!({"contents": [{"parts": [{"text": "Hi"}, {"text": "you"}]}]}),
            "gemini-2.5-flash",
            true,
        )
        .unwrap();
        Answer::new("sim-1".into(), 0, "google-ai-studio", &r.model, &r.conv, finish_words)
    }

    #[test]
    fn array_stream_is_valid_json() {
        let a = answer(None);
        let plan = stream_plan(&a, false);
        let body: Vec<u8> = plan.head.iter().chain(&plan.content).chain(&plan.tail).flat_map(|b| b.to_vec()).collect();
        let chunks: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(chunks.len(), a.pieces.len() + 1);
        let text: String =
            chunks.iter().map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()).collect();
        assert_eq!(text, a.content());
        assert_eq!(chunks.last().unwrap()["candidates"][0]["finishReason"], "STOP");
    }

    #[test]
    fn blocked_has_no_content() {
        let body = response(&answer(None).blocked());
        assert_eq!(body["candidates"][0]["finishReason"], "SAFETY");
        assert!(body["candidates"][0].get("content").is_none());
    }
}
