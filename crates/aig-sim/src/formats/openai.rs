//! OpenAI Chat Completions: requests, `chat.completion` bodies and `chat.completion.chunk`
//! streams. The one code path for the compat, REST, `openai` and `workers-ai` routes.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{content_text, flag, positive_int, sse, ChatRequest};
use crate::answer::{sample, Answer, Conversation, Finish, Reply};
use crate::http::{json_response, Resp};
use crate::stream::StreamPlan;

/// Reads a Chat Completions request. `model` must be a non-empty string and `messages` a
/// non-empty array of `{role, content}` objects. `tools` and `response_format` choose the kind of
/// reply (see [`reply`]).
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
    let last_role = messages.last().and_then(|m| m.get("role")).and_then(Value::as_str);
    let reply = reply(body, last_role == Some("tool"), &conv.last_user)?;
    Ok(ChatRequest { model, conv, stream: flag(body, "stream")?, include_usage, max_tokens, reply })
}

/// What the simulated model answers with:
///
/// * a call of one of the `tools` (each `{"type":"function","function":{"name",…}}`): the one
///   `tool_choice` names, else the first; arguments sampled from its `parameters` with the last
///   user text for strings. Not when `tool_choice` is `"none"`, nor right after a `tool`
///   message (the model then answers the tool's result in text);
/// * else, for `response_format` `{"type":"json_schema","json_schema":{"schema":…}}`, a JSON
///   value sampled from the schema, as compact text;
/// * else the text answer.
fn reply(body: &Value, after_tool_result: bool, text: &str) -> Result<Reply, String> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(tools)) => tools.as_slice(),
        Some(_) => return Err("tools must be an array".into()),
    };
    let mut functions = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        let function = tool
            .get("function")
            .filter(|_| tool.get("type").and_then(Value::as_str) == Some("function"))
            .filter(|f| f.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty()))
            .ok_or_else(|| format!("tools[{i}] must be {{\"type\":\"function\",\"function\":{{\"name\":…}}}}"))?;
        functions.push(function);
    }
    let name_of = |f: &Value| f.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let chosen = match body.get("tool_choice") {
        None | Some(Value::Null) => functions.first().copied(),
        Some(Value::String(mode)) if mode == "auto" || mode == "required" => functions.first().copied(),
        Some(Value::String(mode)) if mode == "none" => None,
        Some(choice) => {
            let wanted = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or("tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",…}")?;
            let found = functions.iter().copied().find(|f| name_of(f) == wanted);
            Some(found.ok_or_else(|| format!("tool_choice names `{wanted}`, which is not in tools"))?)
        }
    };
    if let Some(function) = chosen.filter(|_| !after_tool_result) {
        let schema = function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}));
        let arguments = match sample(&schema, text) {
            object @ Value::Object(_) => object,
            _ => json!({}),
        };
        return Ok(Reply::Call { name: name_of(function), arguments: arguments.to_string() });
    }
    match body.get("response_format") {
        Some(format) if format.get("type").and_then(Value::as_str) == Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .filter(|s| s.is_object())
                .ok_or("response_format.json_schema must be an object")?;
            let schema = spec.get("schema").cloned().unwrap_or_else(|| json!({"type": "object"}));
            Ok(Reply::Json(sample(&schema, text).to_string()))
        }
        _ => Ok(Reply::Text),
    }
}

fn finish_reason(answer: &Answer) -> &'static str {
    match answer.finish {
        Finish::Stop if answer.tool_call.is_some() => "tool_calls",
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ContentFilter => "content_filter",
    }
}

fn usage(answer: &Answer) -> Value {
    let (p, c) = (answer.prompt_tokens, answer.completion_tokens());
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// The `chat.completion` body. A filtered answer has `content: null`, and so has a function
/// call, whose arguments are in `tool_calls`.
pub fn completion(answer: &Answer) -> Value {
    let message = match (&answer.tool_call, answer.finish) {
        (_, Finish::ContentFilter) => json!({"role": "assistant", "content": null}),
        (Some(call), _) => json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": answer.content()},
        }]}),
        (None, _) => json!({"role": "assistant", "content": answer.content()}),
    };
    json!({
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(answer),
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

/// Role chunk, one chunk per word, a finish chunk, the usage chunk when asked, `[DONE]`. For a
/// function call, as OpenAI streams it: the role chunk carries the call's id, name and empty
/// arguments, and each following chunk one piece of the arguments.
pub fn stream_plan(answer: &Answer, include_usage: bool) -> StreamPlan {
    let (head, content) = match &answer.tool_call {
        Some(call) => {
            let head = json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""},
            }]});
            let piece = |p: &String| json!({"tool_calls": [{"index": 0, "function": {"arguments": p}}]});
            (head, answer.pieces.iter().map(|p| chunk(answer, piece(p), None)).collect())
        }
        None => (
            json!({"role": "assistant", "content": ""}),
            answer.pieces.iter().map(|piece| chunk(answer, json!({"content": piece}), None)).collect(),
        ),
    };
    let head = vec![chunk(answer, head, None)];
    let mut tail = vec![chunk(answer, json!({}), Some(finish_reason(answer)))];
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
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": {}}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [tool("a")],
                   "tool_choice": {"type": "function", "function": {"name": "b"}}}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": 3, "tools": [tool("a")]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
                   "response_format": {"type": "json_schema"}}),
        ] {
            assert!(parse_request(&bad).is_err(), "{bad}");
        }
    }

    fn tool(name: &str) -> Value {
        json!({"type": "function", "function": {"name": name, "parameters": {"type": "object",
            "properties": {"label": {"type": "string"}, "n": {"type": "integer"}}}}})
    }

    fn reply_to(extra: Value) -> Reply {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "is it a bug"}]});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        parse_request(&body).unwrap().reply
    }

    #[test]
    fn chooses_the_reply() {
        let call = |name: &str| Reply::Call { name: name.into(), arguments: r#"{"label":"is it a bug","n":1}"#.into() };
        assert_eq!(reply_to(json!({})), Reply::Text);
        assert_eq!(reply_to(json!({"tools": []})), Reply::Text);
        assert_eq!(reply_to(json!({"tools": [tool("a"), tool("b")]})), call("a"));
        assert_eq!(reply_to(json!({"tools": [tool("a"), tool("b")], "tool_choice": "required"})), call("a"));
        assert_eq!(reply_to(json!({"tools": [tool("a")], "tool_choice": "none"})), Reply::Text);
        let named = json!({"type": "function", "function": {"name": "b"}});
        assert_eq!(reply_to(json!({"tools": [tool("a"), tool("b")], "tool_choice": named})), call("b"));
        let bare = json!({"type": "function", "function": {"name": "c"}});
        assert_eq!(reply_to(json!({"tools": [bare]})), Reply::Call { name: "c".into(), arguments: "{}".into() });

        let schema = json!({"type": "json_schema", "json_schema": {"name": "triage", "strict": true,
            "schema": {"type": "object", "properties": {"kind": {"enum": ["bug", "feature"]}, "why": {"type": "string"}}}}});
        let json = Reply::Json(r#"{"kind":"bug","why":"is it a bug"}"#.into());
        assert_eq!(reply_to(json!({"response_format": schema})), json);
        assert_eq!(reply_to(json!({"response_format": {"type": "json_object"}})), Reply::Text);
        // A tool's result comes back: the model answers it in text (or in the schema).
        let after = json!({"model": "m", "tools": [tool("a")], "messages": [
            {"role": "user", "content": "is it a bug"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}]});
        assert_eq!(parse_request(&after).unwrap().reply, Reply::Text);
    }

    #[test]
    fn renders_function_calls() {
        let conv = Conversation { texts: vec!["x".into()], last_user: "x".into() };
        let reply = Reply::Call { name: "add_label".into(), arguments: r#"{"label":"a b c"}"#.into() };
        let answer = Answer::reply("chatcmpl-1".into(), 1, "openai", "gpt-4o", &conv, None, &reply, "call_1".into());
        let body = completion(&answer);
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            body["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "add_label", "arguments": r#"{"label":"a b c"}"#}}]})
        );
        assert_eq!(body["usage"]["completion_tokens"], 3);

        let plan = stream_plan(&answer, false);
        let data = |event: &Bytes| -> Value {
            serde_json::from_str(std::str::from_utf8(event).unwrap().trim().strip_prefix("data: ").unwrap()).unwrap()
        };
        let head = data(&plan.head[0]);
        assert_eq!(head["choices"][0]["delta"]["tool_calls"][0]["id"], "call_1");
        assert_eq!(head["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "add_label");
        let arguments: String = plan
            .content
            .iter()
            .map(|e| {
                data(e)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!((plan.content.len(), arguments.as_str()), (3, r#"{"label":"a b c"}"#));
        assert_eq!(data(&plan.tail[0])["choices"][0]["finish_reason"], "tool_calls");
    }
}
