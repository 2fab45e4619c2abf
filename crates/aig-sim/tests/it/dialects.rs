//! Provider dialects on the unified endpoints: Gemini's tool calls and thought signatures, the
//! providers' rules on replayed history, and the switches that turn them off.

use serde_json::{json, Value};

use crate::client::*;

pub fn tool(name: &str) -> Value {
    json!({"type": "function", "function": {"name": name, "parameters": {"type": "object",
        "properties": {"query": {"type": "string"}}}}})
}

pub fn tools_request(model: &str, text: &str, tools: &[&str], stream: bool) -> Value {
    json!({"model": model, "stream": stream,
        "messages": [{"role": "system", "content": "You triage issues."}, {"role": "user", "content": text}],
        "tools": tools.iter().map(|t| tool(t)).collect::<Vec<_>>()})
}

/// The JSON events of an SSE stream, `[DONE]` left out.
pub fn chunks(r: &Reply) -> Vec<Value> {
    r.events().iter().filter(|(_, d)| d != "[DONE]").map(|(_, d)| serde_json::from_str(d).unwrap()).collect()
}

fn deltas(r: &Reply) -> Vec<Value> {
    chunks(r)
        .iter()
        .filter(|c| c["choices"][0]["delta"].get("tool_calls").is_some())
        .map(|c| c["choices"][0]["delta"]["tool_calls"][0].clone())
        .collect()
}

async fn compat(sim: &Sim, body: &Value) -> Reply {
    post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], body).await
}

#[tokio::test]
async fn gemini_2_5_streams_index_less_calls_with_empty_ids_and_ends_with_stop() {
    let sim = start().await;
    let body = tools_request("google-ai-studio/gemini-2.5-flash", "search for it", &["search"], true);
    let r = compat(&sim, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = chunks(&r);
    let call = &events[0]["choices"][0]["delta"];
    assert_eq!(call["role"], "assistant");
    assert_eq!(
        call["tool_calls"],
        json!([{"id": "", "type": "function", "function": {"name": "search", "arguments": r#"{"query":"search for it"}"#}}])
    );
    assert_eq!(events.len(), 2, "the whole call in one chunk, then the finish");
    assert_eq!(events[1]["choices"][0]["finish_reason"], "stop");
    assert_eq!(r.events().last().unwrap().1, "[DONE]");

    let mut whole = body.clone();
    whole["stream"] = json!(false);
    let answer = compat(&sim, &whole).await.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let calls = &answer["choices"][0]["message"]["tool_calls"];
    assert_eq!(calls[0]["id"], "");
    assert!(calls[0].get("index").is_none() && calls[0].get("extra_content").is_none());
}

#[tokio::test]
async fn gemini_3_signs_the_first_of_parallel_calls() {
    let sim = start().await;
    let text = "search the web, then add_label on the issue";
    let body = tools_request("google-ai-studio/gemini-3-flash-preview", text, &["search", "add_label", "close"], true);
    let r = compat(&sim, &body).await;
    let calls = deltas(&r);
    assert_eq!(calls.len(), 2, "one call per chunk: {calls:?}");
    let names: Vec<&str> = calls.iter().map(|c| c["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["search", "add_label"]);
    for call in &calls {
        assert!(call.get("index").is_none());
        let id = call["id"].as_str().unwrap();
        assert!(
            id.strip_prefix("function-call-").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())),
            "{id}"
        );
    }
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    let signature = calls[0]["extra_content"]["google"]["thought_signature"].as_str().unwrap();
    assert!(signature.len() > 40 && signature.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
    assert!(calls[1].get("extra_content").is_none(), "only the first call of a step is signed");
    assert_eq!(chunks(&r).last().unwrap()["choices"][0]["finish_reason"], "stop");

    // Non-streamed: the same shape, `tool_calls` as the finish reason.
    let mut whole = body.clone();
    whole["stream"] = json!(false);
    let answer = compat(&sim, &whole).await.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    let calls = answer["choices"][0]["message"]["tool_calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(calls[0]["extra_content"]["google"]["thought_signature"].is_string());
    assert!(calls[1].get("extra_content").is_none());
}

#[tokio::test]
async fn gemini_splits_long_arguments_and_trails_the_signature() {
    let sim = start().await;
    let text = "search for the flaky test that fails on main since the last merge";
    let body = tools_request("google-ai-studio/gemini-3-flash-preview", text, &["search"], true);
    let r = compat(&sim, &body).await;
    let calls = deltas(&r);
    let arguments = json!({"query": text}).to_string();
    let words = arguments.split_whitespace().count();
    assert!(arguments.len() > 60);
    assert_eq!(calls.len(), words + 1);
    let joined: String = calls[..words].iter().map(|c| c["function"]["arguments"].as_str().unwrap()).collect();
    assert_eq!(joined, arguments);
    assert!(calls[0]["id"].is_string() && calls[0]["function"]["name"] == "search");
    assert!(calls[1..].iter().all(|c| c.get("id").is_none() && c.get("index").is_none()));
    let trailing = &calls[words];
    assert_eq!(trailing.as_object().unwrap().keys().collect::<Vec<_>>(), ["extra_content"]);
    assert!(trailing["extra_content"]["google"]["thought_signature"].is_string());
}

/// Turn 2 of a tool loop: the assistant's calls (as `calls`) and a result for each.
fn turn_two(model: &str, calls: Value) -> Value {
    let ids: Vec<Value> = calls.as_array().unwrap().iter().map(|c| c["id"].clone()).collect();
    let mut messages = vec![
        json!({"role": "system", "content": "You triage issues."}),
        json!({"role": "user", "content": "search for it"}),
        json!({"role": "assistant", "content": null, "tool_calls": calls}),
    ];
    for id in ids {
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": "found it"}));
    }
    json!({"model": model, "messages": messages, "tools": [tool("search")]})
}

#[tokio::test]
async fn gemini_3_requires_its_signatures_back() {
    let sim = start().await;
    for (model, key) in [
        ("google-ai-studio/gemini-3-flash-preview", "google"),
        ("google-vertex-ai/google/gemini-3-pro-preview", "vertex"),
    ] {
        let first = compat(&sim, &tools_request(model, "search for it", &["search"], false)).await.json();
        let calls = first["choices"][0]["message"]["tool_calls"].clone();
        assert!(calls[0]["extra_content"][key]["thought_signature"].is_string(), "{model}: {calls}");

        // Replayed as received: accepted, and the model answers the result in text.
        let r = compat(&sim, &turn_two(model, calls.clone())).await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert!(r.json()["choices"][0]["message"]["content"].as_str().unwrap().starts_with("Simulated answer"));

        // Dropped (what the OpenAI Node SDK's runTools does): Google's 400, in its array shape.
        let mut stripped = calls.clone();
        stripped[0].as_object_mut().unwrap().remove("extra_content");
        let r = compat(&sim, &turn_two(model, stripped.clone())).await;
        assert_eq!(r.status, 400);
        assert_eq!(
            r.json(),
            json!([{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:search` , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."}}])
        );

        // The documented placeholder is accepted, under either key.
        stripped[0]["extra_content"] = json!({"google": {"thought_signature": "skip_thought_signature_validator"}});
        assert_eq!(compat(&sim, &turn_two(model, stripped.clone())).await.status, 200);

        // A signature it never issued, or one moved to another call id: corrupted.
        for (id, signature) in [
            (calls[0]["id"].clone(), json!("EjQKMgEMOdbHJChLX75QUCJjyYlm")),
            (json!("call_other"), calls[0]["extra_content"][key]["thought_signature"].clone()),
        ] {
            let mut forged = calls.clone();
            forged[0]["id"] = id;
            forged[0]["extra_content"] = json!({key: {"thought_signature": signature}});
            let r = compat(&sim, &turn_two(model, forged)).await;
            assert_eq!(r.status, 400);
            assert_eq!(r.json()[0]["error"]["message"], "Corrupted thought signature.");
        }
    }
    // The refusals are logged as the provider's 400s, with no tokens.
    let failed = logs(sim.addr, "success=false").await.json();
    assert_eq!(failed["result_info"]["total_count"], 6);
    assert_eq!(failed["result"][0]["status_code"], 400);
    assert_eq!(failed["result"][0]["tokens_in"], Value::Null);
}

#[tokio::test]
async fn gemini_3_checks_only_the_current_turn_for_missing_signatures() {
    let sim = start().await;
    let mut body = turn_two(
        "google-ai-studio/gemini-3-flash-preview",
        json!([{"id": "x", "type": "function",
        "function": {"name": "search", "arguments": "{}"}}]),
    );
    body["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "content": "Done."}));
    body["messages"].as_array_mut().unwrap().push(json!({"role": "user", "content": "thanks"}));
    let r = compat(&sim, &body).await;
    assert_eq!(r.status, 200, "an earlier turn's unsigned call is not checked: {}", r.text());
}

#[tokio::test]
async fn gemini_2_5_accepts_a_replay_without_signature_and_rest_google_speaks_gemini() {
    let sim = start().await;
    let calls = json!([{"id": "", "type": "function", "function": {"name": "search", "arguments": "{}"}}]);
    let r = compat(&sim, &turn_two("google-ai-studio/gemini-2.5-flash", calls)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let rest = v4_path("ai/v1/chat/completions");
    let body = tools_request("google/gemini-3-flash-preview", "search for it", &["search"], false);
    let answer = post_json(sim.addr, &rest, &[API_AUTH], &body).await.json();
    let calls = answer["choices"][0]["message"]["tool_calls"].clone();
    assert!(calls[0]["id"].as_str().unwrap().starts_with("function-call-"));
    let mut stripped = calls.clone();
    stripped[0].as_object_mut().unwrap().remove("extra_content");
    let r = post_json(sim.addr, &rest, &[API_AUTH], &turn_two("google/gemini-3-flash-preview", stripped)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()[0]["error"]["status"], "INVALID_ARGUMENT");
    let r = post_json(sim.addr, &rest, &[API_AUTH], &turn_two("google/gemini-3-flash-preview", calls)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn clean_openai_parallel_calls_have_indexes() {
    let sim = start().await;
    let text = "search, then add_label";
    let body = tools_request("openai/gpt-4o", text, &["search", "add_label", "close"], true);
    let r = compat(&sim, &body).await;
    let calls = deltas(&r);
    let heads: Vec<&Value> = calls.iter().filter(|c| c.get("id").is_some()).collect();
    let ids: Vec<&str> = heads.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0].starts_with("call_sim") && ids[1] == format!("{}_1", ids[0]));
    for (i, name) in ["search", "add_label"].iter().enumerate() {
        let arguments: String =
            calls.iter().filter(|c| c["index"] == i).map(|c| c["function"]["arguments"].as_str().unwrap()).collect();
        assert_eq!(arguments, json!({"query": text}).to_string(), "{name}");
    }
    assert_eq!(chunks(&r).last().unwrap()["choices"][0]["finish_reason"], "tool_calls");

    let mut one = body.clone();
    one["parallel_tool_calls"] = json!(false);
    one["stream"] = json!(false);
    let answer = compat(&sim, &one).await.json();
    assert_eq!(answer["choices"][0]["message"]["tool_calls"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn openai_rejects_what_openai_rejects() {
    let sim = start().await;
    let long_id = format!("function-call-{}", "1".repeat(30));
    let calls = json!([{"id": long_id, "type": "function", "function": {"name": "search", "arguments": "{}"}}]);
    for path in [compat_path(), native_path("openai/v1/chat/completions")] {
        let model = if path.contains("compat") { "openai/gpt-4o" } else { "gpt-4o" };
        let r = post_json(sim.addr, &path, &[GATEWAY_AUTH], &turn_two(model, calls.clone())).await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(
            r.json(),
            json!({"error": {"message": "Invalid 'messages[2].tool_calls[0].id': string too long. Expected a string with maximum length 40, but got a string with length 44 instead.",
                "type": "invalid_request_error", "param": "messages[2].tool_calls[0].id", "code": "string_above_max_length"}})
        );
    }
    // Gemini's thought signature on a replayed call: accepted.
    let signed = json!([{"id": "function-call-1", "type": "function", "function": {"name": "search", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "EjQKMg=="}}}]);
    assert_eq!(compat(&sim, &turn_two("openai/gpt-4o", signed.clone())).await.status, 200);

    let mut unanswered = turn_two("openai/gpt-4o", signed.clone());
    unanswered["messages"].as_array_mut().unwrap().pop();
    let r = compat(&sim, &unanswered).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["message"], "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: function-call-1");
    assert_eq!(r.json()["error"]["param"], "messages.[2].role");

    let mut orphan = turn_two("openai/gpt-4o", signed);
    orphan["messages"][3]["tool_call_id"] = json!("call_elsewhere");
    let r = compat(&sim, &orphan).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
    );
}

#[tokio::test]
async fn anthropic_rejects_what_anthropic_rejects() {
    let sim = start().await;
    let call = |id: &str| json!([{"id": id, "type": "function", "function": {"name": "search", "arguments": "{}"}}]);
    for id in ["", "function-call:7", "call 7"] {
        let r = compat(&sim, &turn_two("anthropic/claude-haiku-4-5", call(id))).await;
        assert_eq!(r.status, 400, "{id:?}");
        assert_eq!(
            r.json(),
            json!({"type": "error", "error": {"type": "invalid_request_error",
                "message": "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"}})
        );
    }
    assert_eq!(compat(&sim, &turn_two("anthropic/claude-haiku-4-5", call("function-call-7"))).await.status, 200);
    let mut unanswered = turn_two("anthropic/claude-haiku-4-5", call("toolu_1"));
    unanswered["messages"].as_array_mut().unwrap().pop();
    unanswered["messages"].as_array_mut().unwrap().push(json!({"role": "user", "content": "well?"}));
    let r = compat(&sim, &unanswered).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["error"]["message"],
        "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
    );
}

#[tokio::test]
async fn dialects_switch_off_for_clean_answers() {
    let sim = start().await;
    assert_eq!(
        get(sim.addr, "/__sim/dialects", &[]).await.json(),
        json!({"gemini_tool_calls": true, "thought_signatures": true, "history_rules": true, "thinking_tokens": true,
            "anthropic_ignores_response_format": true})
    );
    for bad in [json!({"nope": true}), json!({"all": "no"}), json!([])] {
        assert_eq!(post_json(sim.addr, "/__sim/dialects", &[], &bad).await.status, 400, "{bad}");
    }
    let r = post_json(sim.addr, "/__sim/dialects", &[], &json!({"all": false})).await;
    assert_eq!(r.json()["gemini_tool_calls"], false);

    let mut body = tools_request("google-ai-studio/gemini-3-flash-preview", "search it", &["search"], true);
    body["stream_options"] = json!({"include_usage": true});
    let r = compat(&sim, &body).await;
    let calls = deltas(&r);
    assert_eq!(calls[0]["index"], 0);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_sim"));
    assert!(calls[0].get("extra_content").is_none());
    let events = chunks(&r);
    assert_eq!(events[events.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
    let usage = &events.last().unwrap()["usage"];
    assert!(usage.get("completion_tokens_details").is_none(), "no thinking: {usage}");
    // No history rules either.
    let unsigned = json!([{"id": "x", "type": "function", "function": {"name": "search", "arguments": "{}"}}]);
    assert_eq!(compat(&sim, &turn_two("google-ai-studio/gemini-3-flash-preview", unsigned)).await.status, 200);
    let long = json!([{"id": "x".repeat(60), "type": "function", "function": {"name": "search", "arguments": "{}"}}]);
    assert_eq!(compat(&sim, &turn_two("openai/gpt-4o", long)).await.status, 200);

    // One switch back on; a reset restores them all.
    let r = post_json(sim.addr, "/__sim/dialects", &[], &json!({"gemini_tool_calls": true})).await;
    assert_eq!(
        (r.json()["gemini_tool_calls"].as_bool(), r.json()["history_rules"].as_bool()),
        (Some(true), Some(false))
    );
    post_json(sim.addr, "/__sim/reset", &[], &json!({})).await;
    assert_eq!(get(sim.addr, "/__sim/dialects", &[]).await.json()["history_rules"], true);
}
