//! OpenAI Chat Completions: requests, `chat.completion` bodies and `chat.completion.chunk`
//! streams. The one code path for the compat, REST, `openai` and `workers-ai` routes; a
//! [`Style`] renders the dialects of the providers behind compat (Gemini's tool calls, usage
//! without `total_tokens`).

use bytes::Bytes;
use serde_json::{json, Value};

use super::{content_text, flag, positive_int, sse, ChatRequest};
use crate::answer::{sample, Answer, Conversation, Finish, PlannedCall, Reply, ToolCall};
use crate::dialect::history;
use crate::http::{json_response, Resp};
use crate::stream::StreamPlan;

/// Gemini sends a call's arguments whole in one delta when they are at most this many bytes,
/// else one delta per word (the same split as CONTENT).
pub const GEMINI_WHOLE_ARGUMENTS_MAX: usize = 60;

/// How an answer is rendered, beyond clean OpenAI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Gemini's tool calls: streamed without `index`, one call per chunk, arguments whole (or
    /// split over index-less deltas), `finish_reason: "stop"` ending the stream.
    pub gemini_tool_calls: bool,
    /// `usage` without `total_tokens`, thinking reported apart only.
    pub without_total: bool,
    /// The key of thought signatures under `extra_content` (`google`, or `vertex`).
    pub signature_key: &'static str,
}

impl Default for Style {
    fn default() -> Self {
        Self { gemini_tool_calls: false, without_total: false, signature_key: "google" }
    }
}

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
    Ok(ChatRequest {
        model,
        conv,
        stream: flag(body, "stream")?,
        include_usage,
        max_tokens,
        reply,
        history: history::parse(messages),
    })
}

/// Whether `name` appears in `text` as a word: not touching a letter, digit, `_` or `-`.
fn mentions(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    text.match_indices(name).any(|(at, _)| {
        let before = text.get(..at).and_then(|t| t.chars().next_back());
        let after = text.get(at + name.len()..).and_then(|t| t.chars().next());
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

/// What the simulated model answers with:
///
/// * calls of `tools` (each `{"type":"function","function":{"name",…}}`): the one `tool_choice`
///   names; else every tool whose name the last user text mentions as a word (parallel calls,
///   in `tools` order; only the first with `parallel_tool_calls: false`); else the first tool.
///   Arguments are sampled from each tool's `parameters` with the last user text for strings.
///   No call when `tool_choice` is `"none"`, nor right after a `tool` message (the model then
///   answers the tool's result in text);
/// * else, for `response_format` `{"type":"json_schema","json_schema":{"schema":…}}`, a JSON
///   value sampled from the schema, as compact text; for `{"type":"json_object"}`,
///   `{"answer": CONTENT}`;
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
    let parallel = match body.get("parallel_tool_calls") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("parallel_tool_calls must be a boolean".into()),
    };
    let name_of = |f: &Value| f.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let chosen: Vec<&Value> = match body.get("tool_choice") {
        None | Some(Value::Null) => mentioned(&functions, text, parallel),
        Some(Value::String(mode)) if mode == "auto" || mode == "required" => mentioned(&functions, text, parallel),
        Some(Value::String(mode)) if mode == "none" => Vec::new(),
        Some(choice) => {
            let wanted = choice
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or("tool_choice must be \"none\", \"auto\", \"required\" or {\"type\":\"function\",…}")?;
            let found = functions.iter().copied().find(|f| name_of(f) == wanted);
            vec![found.ok_or_else(|| format!("tool_choice names `{wanted}`, which is not in tools"))?]
        }
    };
    if !chosen.is_empty() && !after_tool_result {
        let calls = chosen
            .into_iter()
            .map(|function| {
                let schema = function.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"}));
                let arguments = match sample(&schema, text) {
                    object @ Value::Object(_) => object,
                    _ => json!({}),
                };
                PlannedCall { name: name_of(function), arguments: arguments.to_string() }
            })
            .collect();
        return Ok(Reply::Calls(calls));
    }
    match body.get("response_format").and_then(|f| f.get("type")).and_then(Value::as_str) {
        Some("json_schema") => {
            let spec = body["response_format"]
                .get("json_schema")
                .filter(|s| s.is_object())
                .ok_or("response_format.json_schema must be an object")?;
            let schema = spec.get("schema").cloned().unwrap_or_else(|| json!({"type": "object"}));
            Ok(Reply::Json(sample(&schema, text).to_string()))
        }
        Some("json_object") => Ok(Reply::JsonObject),
        _ => Ok(Reply::Text),
    }
}

/// The tools the text mentions (see [`reply`]), or the first tool when it mentions none.
fn mentioned<'a>(functions: &[&'a Value], text: &str, parallel: bool) -> Vec<&'a Value> {
    let named: Vec<&Value> = functions
        .iter()
        .copied()
        .filter(|f| f.get("name").and_then(Value::as_str).is_some_and(|name| mentions(text, name)))
        .collect();
    match named.first() {
        None => functions.first().copied().into_iter().collect(),
        Some(first) if !parallel => vec![*first],
        Some(_) => named,
    }
}

fn finish_reason(answer: &Answer, streamed: bool, style: Style) -> &'static str {
    match answer.finish {
        // Gemini ends a stream that made calls with "stop" (the whole answer says "tool_calls").
        Finish::Stop if answer.tool_calls.is_empty() || (streamed && style.gemini_tool_calls) => "stop",
        Finish::Stop => "tool_calls",
        Finish::Length => "length",
        Finish::ContentFilter => "content_filter",
    }
}

/// `usage`: C excludes the thinking tokens R, which `completion_tokens_details.reasoning_tokens`
/// reports (when there are any, or when `total_tokens` is left out); `total_tokens` = P + C + R.
fn usage(answer: &Answer, style: Style) -> Value {
    let (p, c, r) = (answer.prompt_tokens, answer.completion_tokens(), answer.reasoning_tokens);
    let mut usage = json!({"prompt_tokens": p, "completion_tokens": c});
    if !style.without_total {
        usage["total_tokens"] = json!(p + c + r);
    }
    if r > 0 || style.without_total {
        usage["completion_tokens_details"] = json!({"reasoning_tokens": r});
    }
    usage
}

/// `{"<key>": {"thought_signature": sig}}`, the `extra_content` of a signed call.
fn extra_content(style: Style, signature: &str) -> Value {
    json!({ style.signature_key: {"thought_signature": signature} })
}

/// A call as the whole answer shows it (no `index`, like OpenAI and Gemini alike).
fn whole_call(call: &ToolCall, style: Style) -> Value {
    let mut value =
        json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments()}});
    if let Some(signature) = &call.signature {
        value["extra_content"] = extra_content(style, signature);
    }
    value
}

/// The `chat.completion` body. A filtered answer has `content: null`, and so has a function
/// call, whose arguments are in `tool_calls`.
pub fn completion(answer: &Answer, style: Style) -> Value {
    let message = match answer.finish {
        Finish::ContentFilter => json!({"role": "assistant", "content": null}),
        _ if !answer.tool_calls.is_empty() => {
            let calls: Vec<Value> = answer.tool_calls.iter().map(|call| whole_call(call, style)).collect();
            json!({"role": "assistant", "content": null, "tool_calls": calls})
        }
        _ => json!({"role": "assistant", "content": answer.content()}),
    };
    json!({
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish_reason(answer, false, style),
        }],
        "usage": usage(answer, style),
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

/// Calls as OpenAI streams them: per call, a delta with its `index`, id, name and empty
/// arguments (the first one with the role, as `head`), then one delta per argument piece.
fn openai_call_events(answer: &Answer, style: Style) -> (Vec<Bytes>, Vec<Bytes>) {
    let (mut head, mut content) = (Vec::new(), Vec::new());
    for (i, call) in answer.tool_calls.iter().enumerate() {
        let mut start =
            json!({"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}});
        if let Some(signature) = &call.signature {
            start["extra_content"] = extra_content(style, signature);
        }
        if i == 0 {
            head.push(chunk(answer, json!({"role": "assistant", "content": null, "tool_calls": [start]}), None));
        } else {
            content.push(chunk(answer, json!({"tool_calls": [start]}), None));
        }
        for piece in &call.pieces {
            content.push(chunk(answer, json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}), None));
        }
    }
    (head, content)
}

/// Calls as Gemini streams them: no `index` anywhere, one call per chunk. A call's first delta
/// has its id, type, name and its arguments (whole when at most
/// [`GEMINI_WHOLE_ARGUMENTS_MAX`] bytes, else the first word; further words follow in deltas
/// with only `function.arguments`). A signature rides on the first delta of a whole call, or on
/// a trailing delta with only `extra_content` right after a split one.
fn gemini_call_events(answer: &Answer, style: Style) -> Vec<Bytes> {
    let mut events = Vec::new();
    for (i, call) in answer.tool_calls.iter().enumerate() {
        let arguments = call.arguments();
        let parts = if arguments.len() > GEMINI_WHOLE_ARGUMENTS_MAX { call.pieces.clone() } else { vec![arguments] };
        let split = parts.len() > 1;
        for (k, part) in parts.iter().enumerate() {
            let mut delta_call = match k {
                0 => json!({"id": call.id, "type": "function", "function": {"name": call.name, "arguments": part}}),
                _ => json!({"function": {"arguments": part}}),
            };
            if let Some(signature) = call.signature.as_deref().filter(|_| k == 0 && !split) {
                delta_call["extra_content"] = extra_content(style, signature);
            }
            let mut delta = json!({"tool_calls": [delta_call]});
            if i == 0 && k == 0 {
                delta["role"] = json!("assistant");
            }
            events.push(chunk(answer, delta, None));
        }
        if let Some(signature) = call.signature.as_deref().filter(|_| split) {
            events.push(chunk(
                answer,
                json!({"tool_calls": [{"extra_content": extra_content(style, signature)}]}),
                None,
            ));
        }
    }
    events
}

/// Role chunk, one chunk per word, a finish chunk, the usage chunk when asked, `[DONE]`. Calls
/// are streamed as OpenAI or as Gemini does (see [`Style`]).
pub fn stream_plan(answer: &Answer, include_usage: bool, style: Style) -> StreamPlan {
    let (head, content) = if answer.tool_calls.is_empty() {
        (
            vec![chunk(answer, json!({"role": "assistant", "content": ""}), None)],
            answer.pieces.iter().map(|piece| chunk(answer, json!({"content": piece}), None)).collect(),
        )
    } else if style.gemini_tool_calls {
        (Vec::new(), gemini_call_events(answer, style))
    } else {
        openai_call_events(answer, style)
    };
    let mut tail = vec![chunk(answer, json!({}), Some(finish_reason(answer, true, style)))];
    if include_usage {
        let body = json!({
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.model,
            "choices": [],
            "usage": usage(answer, style),
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
        let args = r#"{"label":"is it a bug","n":1}"#;
        let call = |name: &str| Reply::Calls(vec![PlannedCall { name: name.into(), arguments: args.into() }]);
        assert_eq!(reply_to(json!({})), Reply::Text);
        assert_eq!(reply_to(json!({"tools": []})), Reply::Text);
        assert_eq!(reply_to(json!({"tools": [tool("a"), tool("b")]})), call("a"));
        assert_eq!(reply_to(json!({"tools": [tool("a"), tool("b")], "tool_choice": "required"})), call("a"));
        assert_eq!(reply_to(json!({"tools": [tool("a")], "tool_choice": "none"})), Reply::Text);
        let named = json!({"type": "function", "function": {"name": "b"}});
        assert_eq!(reply_to(json!({"tools": [tool("a"), tool("b")], "tool_choice": named})), call("b"));
        let bare = json!({"type": "function", "function": {"name": "c"}});
        assert_eq!(
            reply_to(json!({"tools": [bare]})),
            Reply::Calls(vec![PlannedCall { name: "c".into(), arguments: "{}".into() }])
        );
        assert!(parse_request(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "parallel_tool_calls": "yes"}))
        .is_err());

        let schema = json!({"type": "json_schema", "json_schema": {"name": "triage", "strict": true,
            "schema": {"type": "object", "properties": {"kind": {"enum": ["bug", "feature"]}, "why": {"type": "string"}}}}});
        let json = Reply::Json(r#"{"kind":"bug","why":"is it a bug"}"#.into());
        assert_eq!(reply_to(json!({"response_format": schema})), json);
        assert_eq!(reply_to(json!({"response_format": {"type": "json_object"}})), Reply::JsonObject);
        assert_eq!(reply_to(json!({"response_format": {"type": "text"}})), Reply::Text);
        // A tool's result comes back: the model answers it in text (or in the schema).
        let after = json!({"model": "m", "tools": [tool("a")], "messages": [
            {"role": "user", "content": "is it a bug"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "a", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "done"}]});
        let parsed = parse_request(&after).unwrap();
        assert_eq!(parsed.reply, Reply::Text);
        assert_eq!(parsed.history[1].calls[0].id.as_deref(), Some("call_1"));
    }

    #[test]
    fn calls_every_tool_the_user_names() {
        let names = |body: Value| -> Vec<String> {
            let mut request = json!({"model": "m", "messages": [{"role": "user", "content": body["text"]}],
                "tools": [tool("search"), tool("add_label"), tool("close")]});
            if let Some(p) = body.get("parallel") {
                request["parallel_tool_calls"] = p.clone();
            }
            match parse_request(&request).unwrap().reply {
                Reply::Calls(calls) => calls.into_iter().map(|c| c.name).collect(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(names(json!({"text": "close it, then add_label"})), ["add_label", "close"]);
        assert_eq!(names(json!({"text": "close it, then add_label", "parallel": false})), ["add_label"]);
        assert_eq!(names(json!({"text": "closed; add_labels; research"})), ["search"], "whole words only");
        assert_eq!(names(json!({"text": "(search)"})), ["search"]);
        assert!(mentions("a add_label.", "add_label") && !mentions("add_label-x", "add_label"));
    }

    fn answer_with(calls: &[(&str, &str)], model: &str) -> Answer {
        let conv = Conversation { texts: vec!["x".into()], last_user: "x".into() };
        let planned = calls.iter().map(|(n, a)| PlannedCall { name: (*n).into(), arguments: (*a).into() }).collect();
        let mut answer = Answer::reply("chatcmpl-1".into(), 1, "openai", model, &conv, None, &Reply::Calls(planned));
        for (i, call) in answer.tool_calls.iter_mut().enumerate() {
            call.id = format!("call_{i}");
        }
        answer
    }

    fn data(event: &Bytes) -> Value {
        serde_json::from_str(std::str::from_utf8(event).unwrap().trim().strip_prefix("data: ").unwrap()).unwrap()
    }

    #[test]
    fn renders_function_calls() {
        let answer = answer_with(&[("add_label", r#"{"label":"a b c"}"#)], "gpt-4o");
        let body = completion(&answer, Style::default());
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            body["choices"][0]["message"],
            json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
                "function": {"name": "add_label", "arguments": r#"{"label":"a b c"}"#}}]})
        );
        assert_eq!(body["usage"]["completion_tokens"], 3);

        let plan = stream_plan(&answer, false, Style::default());
        let head = data(&plan.head[0]);
        assert_eq!(head["choices"][0]["delta"]["tool_calls"][0]["id"], "call_0");
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

    #[test]
    fn streams_parallel_calls_with_indexes() {
        let answer = answer_with(&[("a", r#"{"x":"1 2"}"#), ("b", "{}")], "gpt-4o");
        let plan = stream_plan(&answer, false, Style::default());
        let deltas: Vec<Value> = plan
            .head
            .iter()
            .chain(&plan.content)
            .map(|e| data(e)["choices"][0]["delta"]["tool_calls"][0].clone())
            .collect();
        let indexes: Vec<u64> = deltas.iter().map(|d| d["index"].as_u64().unwrap()).collect();
        assert_eq!(indexes, [0, 0, 0, 1, 1]);
        assert_eq!((deltas[3]["id"].as_str(), deltas[3]["function"]["name"].as_str()), (Some("call_1"), Some("b")));
    }

    #[test]
    fn streams_calls_as_gemini_does() {
        let long = r#"{"query":"a long question that takes more than sixty bytes to write"}"#;
        let mut answer = answer_with(&[("search", long), ("close", "{}")], "gemini-3-flash");
        answer.tool_calls[0].signature = Some("SIG".into());
        let style = Style { gemini_tool_calls: true, signature_key: "vertex", ..Style::default() };
        let plan = stream_plan(&answer, true, style);
        assert!(plan.head.is_empty());
        let deltas: Vec<Value> = plan.content.iter().map(|e| data(e)["choices"][0]["delta"].clone()).collect();
        assert!(deltas.iter().all(|d| d["tool_calls"][0].get("index").is_none()), "no index anywhere");
        assert_eq!(deltas[0]["role"], "assistant");
        assert_eq!(deltas[0]["tool_calls"][0]["id"], "call_0");
        let words = long.split_whitespace().count();
        let split: String =
            deltas[..words].iter().map(|d| d["tool_calls"][0]["function"]["arguments"].as_str().unwrap()).collect();
        assert_eq!(split, long);
        assert!(
            deltas[1]["tool_calls"][0].get("id").is_none()
                && deltas[1]["tool_calls"][0]["function"].get("name").is_none()
        );
        // The signature of the split first call trails it, alone.
        assert_eq!(deltas[words], json!({"tool_calls": [{"extra_content": {"vertex": {"thought_signature": "SIG"}}}]}));
        assert_eq!(deltas[words + 1]["tool_calls"][0]["function"], json!({"name": "close", "arguments": "{}"}));
        assert_eq!(deltas.len(), words + 2);
        assert_eq!(data(&plan.tail[0])["choices"][0]["finish_reason"], "stop");
        assert_eq!(completion(&answer, style)["choices"][0]["finish_reason"], "tool_calls");

        // A short first call carries its signature itself.
        let mut answer = answer_with(&[("close", "{}")], "gemini-3-flash");
        answer.tool_calls[0].signature = Some("SIG".into());
        let plan = stream_plan(&answer, false, Style { gemini_tool_calls: true, ..Style::default() });
        assert_eq!(plan.content.len(), 1);
        let call = &data(&plan.content[0])["choices"][0]["delta"]["tool_calls"][0];
        assert_eq!(call["extra_content"]["google"]["thought_signature"], "SIG");
    }

    #[test]
    fn reports_thinking_apart() {
        let conv = Conversation { texts: vec!["x".into()], last_user: "x".into() };
        let mut answer = Answer::new("c".into(), 1, "google-ai-studio", "gemini-2.5-flash", &conv, None);
        answer.reasoning_tokens = 10;
        let (p, c) = (answer.prompt_tokens, answer.completion_tokens());
        assert_eq!(
            completion(&answer, Style::default())["usage"],
            json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c + 10,
                "completion_tokens_details": {"reasoning_tokens": 10}})
        );
        let apart = Style { without_total: true, ..Style::default() };
        assert_eq!(
            completion(&answer, apart)["usage"],
            json!({"prompt_tokens": p, "completion_tokens": c, "completion_tokens_details": {"reasoning_tokens": 10}})
        );
        answer.reasoning_tokens = 0;
        assert_eq!(
            completion(&answer, Style::default())["usage"],
            json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
        );
    }
}
