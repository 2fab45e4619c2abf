//! The rules each provider applies to the tool-call history a request replays, and the errors it
//! answers when they are broken (reference: provider-dialects §1 and §3).
//!
//! * OpenAI: a call id longer than 40 characters; a `tool` message that does not answer a call
//!   of the assistant message just before it; an assistant `tool_calls` message not followed by
//!   a `tool` message for each of its ids. `extra_content` on replayed calls is accepted (no
//!   report either way; the reference calls it unknown).
//! * Anthropic: a call id that is empty or not `^[a-zA-Z0-9_-]+$`; a `tool_use` without its
//!   `tool_result` in the next message, and a `tool_result` without its `tool_use`.
//! * Gemini 3: in the current turn (after the last `user` message, as Google documents), the
//!   first call of every assistant tool step must carry a thought signature; anywhere, a
//!   signature must be one the simulator issued for that call and model, or the placeholder.

use serde_json::{json, Value};

use super::{signature, Refusal};

/// One message of the replayed history, as far as the rules look at it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    pub role: String,
    /// `tool_calls` of an assistant message.
    pub calls: Vec<PastCall>,
    /// `tool_call_id` of a `tool` message.
    pub tool_call_id: Option<String>,
    /// Whether the message has text content besides any calls.
    pub has_text: bool,
}

/// One replayed function call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PastCall {
    /// `id`, when it is a string.
    pub id: Option<String>,
    pub name: String,
    /// `extra_content.google.thought_signature` (or `.vertex.`), when it is a string.
    pub signature: Option<String>,
}

/// Reads the history from OpenAI `messages`. Lenient: what the rules do not look at, or cannot
/// read, is left out (parsing proper is the format's job).
pub fn parse(messages: &[Value]) -> Vec<Turn> {
    messages
        .iter()
        .map(|message| {
            let text = |v: Option<&Value>| match v {
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Array(parts)) => !parts.is_empty(),
                _ => false,
            };
            let calls = message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            Turn {
                role: message.get("role").and_then(Value::as_str).unwrap_or_default().to_string(),
                calls: calls.iter().map(past_call).collect(),
                tool_call_id: message.get("tool_call_id").and_then(Value::as_str).map(str::to_string),
                has_text: text(message.get("content")),
            }
        })
        .collect()
}

fn past_call(call: &Value) -> PastCall {
    let signature = ["google", "vertex"]
        .iter()
        .find_map(|key| call.get("extra_content")?.get(*key)?.get("thought_signature")?.as_str().map(str::to_string));
    PastCall {
        id: call.get("id").and_then(Value::as_str).map(str::to_string),
        name: call.get("function").and_then(|f| f.get("name")).and_then(Value::as_str).unwrap_or_default().to_string(),
        signature,
    }
}

fn openai_refusal(message: String, param: Option<String>, code: Option<&str>) -> Refusal {
    Refusal {
        status: 400,
        body: json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}),
    }
}

/// OpenAI Chat Completions' rules (texts as OpenAI words them, its "preceeding" included).
pub fn check_openai(turns: &[Turn]) -> Result<(), Refusal> {
    for (i, turn) in turns.iter().enumerate() {
        for (j, call) in turn.calls.iter().enumerate() {
            let param = format!("messages[{i}].tool_calls[{j}].id");
            match &call.id {
                None => {
                    let message = format!("Missing required parameter: '{param}'.");
                    return Err(openai_refusal(message, Some(param), Some("missing_required_parameter")));
                }
                Some(id) if id.chars().count() > 40 => {
                    let message = format!(
                        "Invalid '{param}': string too long. Expected a string with maximum length 40, but got a string with length {} instead.",
                        id.chars().count()
                    );
                    return Err(openai_refusal(message, Some(param), Some("string_above_max_length")));
                }
                Some(_) => {}
            }
        }
    }
    let unanswered = |at: usize, ids: &[String]| {
        let message = format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
            ids.join(", ")
        );
        Err(openai_refusal(message, Some(format!("messages.[{at}].role")), None))
    };
    // The assistant message whose calls the following `tool` messages answer, and the ids not
    // answered yet.
    let mut open: Option<(usize, Vec<String>, Vec<String>)> = None;
    for (i, turn) in turns.iter().enumerate() {
        if turn.role == "tool" {
            let answers =
                open.as_mut().filter(|(_, ids, _)| turn.tool_call_id.as_ref().is_some_and(|id| ids.contains(id)));
            let Some((_, _, pending)) = answers else {
                let message =
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
                return Err(openai_refusal(message.into(), Some(format!("messages.[{i}].role")), None));
            };
            pending.retain(|id| Some(id) != turn.tool_call_id.as_ref());
            continue;
        }
        if let Some((at, _, pending)) = open.take() {
            if !pending.is_empty() {
                return unanswered(at, &pending);
            }
        }
        if !turn.calls.is_empty() {
            let ids: Vec<String> = turn.calls.iter().filter_map(|c| c.id.clone()).collect();
            open = Some((i, ids.clone(), ids));
        }
    }
    match open {
        Some((at, _, pending)) if !pending.is_empty() => unanswered(at, &pending),
        _ => Ok(()),
    }
}

fn anthropic_refusal(message: String) -> Refusal {
    Refusal {
        status: 400,
        body: json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
    }
}

fn anthropic_id_ok(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Anthropic Messages' rules, on the messages as Anthropic receives them: system messages go
/// to `system`, and consecutive `tool` messages become one user message of `tool_result` blocks.
pub fn check_anthropic(turns: &[Turn]) -> Result<(), Refusal> {
    // (Anthropic's message index, the turns it is made of).
    let mut messages: Vec<(usize, Vec<&Turn>)> = Vec::new();
    for turn in turns.iter().filter(|t| t.role != "system" && t.role != "developer") {
        match messages.last_mut() {
            Some((_, group)) if turn.role == "tool" && group.last().is_some_and(|t| t.role == "tool") => {
                group.push(turn)
            }
            _ => messages.push((messages.len(), vec![turn])),
        }
    }
    for (k, group) in &messages {
        let Some(first) = group.first() else { continue };
        for (j, call) in first.calls.iter().enumerate() {
            if !call.id.as_deref().is_some_and(anthropic_id_ok) {
                let block = j + usize::from(first.has_text);
                return Err(anthropic_refusal(format!(
                    "messages.{k}.content.{block}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
                )));
            }
        }
    }
    for (n, (k, group)) in messages.iter().enumerate() {
        let Some(first) = group.first() else { continue };
        if first.role == "tool" {
            let previous = n.checked_sub(1).and_then(|p| messages.get(p)).and_then(|(_, g)| g.first());
            let called: Vec<&str> =
                previous.map(|t| t.calls.iter().filter_map(|c| c.id.as_deref()).collect()).unwrap_or_default();
            for (j, result) in group.iter().enumerate() {
                let id = result.tool_call_id.as_deref().unwrap_or_default();
                if !called.contains(&id) {
                    return Err(anthropic_refusal(format!(
                        "messages.{k}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    )));
                }
            }
        }
        if !first.calls.is_empty() {
            let results: Vec<&str> = match messages.get(n + 1) {
                Some((_, next)) if next.first().is_some_and(|t| t.role == "tool") => {
                    next.iter().filter_map(|t| t.tool_call_id.as_deref()).collect()
                }
                _ => Vec::new(),
            };
            let missing: Vec<&str> =
                first.calls.iter().filter_map(|c| c.id.as_deref()).filter(|id| !results.contains(id)).collect();
            if !missing.is_empty() {
                return Err(anthropic_refusal(format!(
                    "messages.{k}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn google_refusal(message: String) -> Refusal {
    // Google's OpenAI-compatible layer wraps its error object in an array.
    Refusal { status: 400, body: json!([{"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}]) }
}

/// Gemini 3's signature rule for `model`. The position in the missing-signature error is the
/// 1-based position of the assistant message among the non-system messages (Gemini's
/// `contents`), which gives the `position 2` of most captures.
pub fn check_gemini_signatures(turns: &[Turn], model: &str, secret: u64) -> Result<(), Refusal> {
    let turn_start = turns.iter().rposition(|t| t.role == "user").unwrap_or(0);
    let mut position = 0;
    for (i, turn) in turns.iter().enumerate() {
        if turn.role != "system" && turn.role != "developer" {
            position += 1;
        }
        for call in &turn.calls {
            if let Some(sig) = &call.signature {
                if !signature::verify(secret, call.id.as_deref().unwrap_or_default(), model, sig) {
                    return Err(google_refusal("Corrupted thought signature.".into()));
                }
            }
        }
        let first = turn.calls.first();
        if let Some(call) = first.filter(|c| i > turn_start && c.signature.is_none()) {
            return Err(google_refusal(format!(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:{}` , position {position}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.",
                call.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{}"}})
    }

    fn history(messages: Value) -> Vec<Turn> {
        parse(messages.as_array().unwrap())
    }

    fn loop_with(calls: Vec<Value>, answered: &[&str]) -> Vec<Turn> {
        let mut messages = vec![json!({"role": "system", "content": "s"}), json!({"role": "user", "content": "u"})];
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
        for id in answered {
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": "r"}));
        }
        parse(&messages)
    }

    #[test]
    fn parses_the_history() {
        let turns = history(json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "a", "function": {"name": "f"},
                "extra_content": {"vertex": {"thought_signature": "sig"}}}, {"function": {"name": "g"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "r"},
            "not even an object"
        ]));
        assert_eq!(turns[0], Turn { role: "user".into(), has_text: true, ..Turn::default() });
        assert_eq!(
            turns[1].calls,
            [
                PastCall { id: Some("a".into()), name: "f".into(), signature: Some("sig".into()) },
                PastCall { id: None, name: "g".into(), signature: None }
            ]
        );
        assert!(!turns[1].has_text);
        assert_eq!(turns[2].tool_call_id.as_deref(), Some("a"));
        assert_eq!(turns[3], Turn::default());
    }

    #[test]
    fn openai_rules() {
        assert_eq!(
            check_openai(&loop_with(vec![call("call_1", "f"), call("call_2", "g")], &["call_2", "call_1"])),
            Ok(())
        );
        let long = "x".repeat(41);
        let err = check_openai(&loop_with(vec![call("ok", "f"), call(&long, "g")], &["ok", &long])).unwrap_err();
        assert_eq!(
            err.body["error"],
            json!({"message": "Invalid 'messages[2].tool_calls[1].id': string too long. Expected a string with maximum length 40, but got a string with length 41 instead.",
                "type": "invalid_request_error", "param": "messages[2].tool_calls[1].id", "code": "string_above_max_length"})
        );
        let err = check_openai(&loop_with(vec![call("a", "f"), call("b", "g")], &["a"])).unwrap_err();
        assert_eq!(err.body["error"]["param"], "messages.[2].role");
        assert!(err.body["error"]["message"].as_str().unwrap().ends_with("did not have response messages: b"));
        let err = check_openai(&loop_with(vec![call("a", "f")], &["a", "zzz"])).unwrap_err();
        assert_eq!(err.body["error"]["param"], "messages.[4].role");
        let orphan =
            history(json!([{"role": "user", "content": "u"}, {"role": "tool", "tool_call_id": "a", "content": "r"}]));
        assert!(check_openai(&orphan).unwrap_err().body["error"]["message"].as_str().unwrap().contains("preceeding"));
        // A user message between the calls and their results.
        let mut turns = loop_with(vec![call("a", "f")], &[]);
        turns.push(Turn { role: "user".into(), has_text: true, ..Turn::default() });
        assert!(check_openai(&turns).is_err());
        let missing = history(json!([{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]));
        assert_eq!(check_openai(&missing).unwrap_err().body["error"]["code"], "missing_required_parameter");
    }

    #[test]
    fn anthropic_rules() {
        assert_eq!(
            check_anthropic(&loop_with(vec![call("toolu_1", "f"), call("call-2", "g")], &["toolu_1", "call-2"])),
            Ok(())
        );
        for bad in ["", "function-call:1", "call 1", "a.b"] {
            let err = check_anthropic(&loop_with(vec![call(bad, "f")], &[bad])).unwrap_err();
            assert_eq!(err.status, 400);
            assert_eq!(err.body["type"], "error");
            assert_eq!(
                err.body["error"]["message"],
                "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
                "{bad:?}"
            );
        }
        let err = check_anthropic(&loop_with(vec![call("a", "f"), call("b", "g")], &["a"])).unwrap_err();
        assert_eq!(
            err.body["error"]["message"],
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: b. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
        );
        let err = check_anthropic(&loop_with(vec![call("a", "f")], &["a", "c"])).unwrap_err();
        assert!(err.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messages.2.content.1: unexpected `tool_use_id`"));
    }

    #[test]
    fn gemini_signature_rule() {
        let model = "gemini-3-flash-preview";
        let signed = |id: &str, sig: &str| {
            let mut c = call(id, "search");
            c["extra_content"] = json!({"google": {"thought_signature": sig}});
            c
        };
        let good = signature::issue(9, "function-call-1", model);
        assert_eq!(
            check_gemini_signatures(&loop_with(vec![signed("function-call-1", &good), call("x", "g")], &[]), model, 9),
            Ok(())
        );
        assert_eq!(
            check_gemini_signatures(&loop_with(vec![signed("", signature::PLACEHOLDER)], &[]), model, 9),
            Ok(())
        );
        let err =
            check_gemini_signatures(&loop_with(vec![call("function-call-1", "search")], &[]), model, 9).unwrap_err();
        assert_eq!(err.body[0]["error"]["status"], "INVALID_ARGUMENT");
        let message = err.body[0]["error"]["message"].as_str().unwrap();
        assert!(message.contains("function call `default_api:search` , position 2."), "{message}");
        let err = check_gemini_signatures(&loop_with(vec![signed("function-call-1", "EjQKMg==")], &[]), model, 9)
            .unwrap_err();
        assert_eq!(err.body[0]["error"]["message"], "Corrupted thought signature.");
        assert!(check_gemini_signatures(&loop_with(vec![signed("function-call-1", &good)], &[]), "gemini-3-pro", 9)
            .is_err());
        // Earlier turns are not checked for a missing signature (only for a corrupted one).
        let mut turns = loop_with(vec![call("function-call-1", "search")], &["function-call-1"]);
        turns.push(Turn { role: "user".into(), has_text: true, ..Turn::default() });
        assert_eq!(check_gemini_signatures(&turns, model, 9), Ok(()));
    }
}
