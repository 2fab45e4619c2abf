//! Compat, REST and provider-native answers.

use serde_json::{json, Value};

use crate::client::*;

fn chat(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You triage issues."},
            {"role": "user", "content": "Label this issue please"}
        ]
    })
}

#[tokio::test]
async fn compat_requires_the_gateway_token() {
    let sim = start().await;
    for headers in
        [vec![], vec![("cf-aig-authorization", "Bearer wrong")], vec![("cf-aig-authorization", "sim-gateway-token")]]
    {
        let r = post_json(sim.addr, &compat_path(), &headers, &chat("openai/gpt-4o-mini")).await;
        assert_eq!(r.status, 401);
        assert_eq!(
            r.json(),
            json!({"success":false,"result":[],"messages":[],"error":[{"code":2009,"message":"Unauthorized"}],"name":"AiGatewayError","httpCode":401,"internalCode":2009,"message":"Unauthorized"})
        );
        assert!(r.header("cf-aig-log-id").is_none(), "no log row before auth");
    }
    // Refusals before auth are recorded but not logged.
    assert_eq!(requests(sim.addr).await.len(), 3);
    assert_eq!(logs(sim.addr, "").await.json()["result_info"]["total_count"], 0);
}

#[tokio::test]
async fn unauthenticated_gateway_needs_no_token() {
    let sim = start_with(|c| c.gateway_token = String::new()).await;
    let r = post_json(sim.addr, &compat_path(), &[], &chat("openai/gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let g = get(sim.addr, &v4_path(&format!("ai-gateway/gateways/{GATEWAY}")), &[API_AUTH]).await;
    assert_eq!(g.json()["result"]["authentication"], false);
}

#[tokio::test]
async fn compat_non_stream_answer_is_exact() {
    let sim = start().await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &chat("openai/gpt-4o-mini")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cf-aig-cache-status"), Some("MISS"));
    assert_eq!(r.header("cf-aig-step"), Some("0"));
    let log_id = r.header("cf-aig-log-id").unwrap().to_string();
    assert_eq!(log_id.len(), 26);
    assert!(log_id.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));

    let body = r.json();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(
        body["choices"],
        json!([{"index": 0, "message": {"role": "assistant",
            "content": "Simulated answer from openai/gpt-4o-mini: Label this issue please"},
            "finish_reason": "stop"}])
    );
    // P = (ceil(18/4)+4) + (ceil(23/4)+4) = 9 + 10; C = 8 words.
    assert_eq!(body["usage"], json!({"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 27}));

    // A second answer gets a different log id.
    let r2 = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &chat("openai/gpt-4o-mini")).await;
    assert_ne!(r2.header("cf-aig-log-id").unwrap(), log_id);

    // The log row.
    let row =
        get(sim.addr, &v4_path(&format!("ai-gateway/gateways/{GATEWAY}/logs/{log_id}")), &[API_AUTH]).await.json();
    let row = &row["result"];
    assert_eq!(row["provider"], "openai");
    assert_eq!(row["model"], "gpt-4o-mini");
    assert_eq!(row["tokens_in"], 19);
    assert_eq!(row["tokens_out"], 8);
    assert_eq!(row["status_code"], 200);
    assert_eq!(row["success"], true);
    assert_eq!(row["cached"], false);
    assert_eq!(row["model_type"], "chat");
    assert_eq!(row["step"], 0);
    assert_eq!(row["custom_cost"], false);
    let cost = row["cost"].as_f64().unwrap();
    assert!((cost - (19.0 * 0.15 + 8.0 * 0.60) / 1e6).abs() < 1e-12, "{cost}");
    assert!(row.get("metadata").is_none());
    assert_eq!(row["request_content_type"], "application/json");
    assert!(row["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn max_tokens_truncates() {
    let sim = start().await;
    let mut body = chat("google-ai-studio/gemini-2.5-flash");
    body["max_tokens"] = json!(3);
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await.json();
    assert_eq!(r["choices"][0]["message"]["content"], "Simulated answer from");
    assert_eq!(r["choices"][0]["finish_reason"], "length");
    assert_eq!(r["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn compat_validation_errors() {
    let sim = start().await;
    let cases: Vec<(&str, u64)> = vec![
        ("{not json", 2007),
        (r#"{"messages":[{"role":"user","content":"x"}]}"#, 2008),
        (r#"{"model":"nope/x","messages":[{"role":"user","content":"x"}]}"#, 2008),
        (r#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#, 2008),
        (r#"{"model":"openai/gpt-4o","messages":[]}"#, 2007),
        (r#"{"model":"openai/gpt-4o"}"#, 2007),
    ];
    for (body, code) in cases {
        let r = send(sim.addr, "POST", &compat_path(), &[GATEWAY_AUTH], body).await;
        assert_eq!(r.status, 400, "{body}");
        let j = r.json();
        assert_eq!(j["name"], "AiGatewayError");
        assert_eq!(j["internalCode"], code, "{body}: {j}");
        assert_eq!(j["error"][0]["code"], code);
        assert!(r.header("cf-aig-log-id").is_some(), "errors after auth are logged");
    }
    let wrong_gateway = post_json(
        sim.addr,
        &format!("/v1/{ACCOUNT}/other/compat/chat/completions"),
        &[GATEWAY_AUTH],
        &chat("openai/gpt-4o"),
    )
    .await;
    assert_eq!(wrong_gateway.status, 404);
    assert_eq!(wrong_gateway.json()["name"], "AiGatewayError");
    let wrong_account = post_json(
        sim.addr,
        &format!("/v1/other/{GATEWAY}/compat/chat/completions"),
        &[GATEWAY_AUTH],
        &chat("openai/gpt-4o"),
    )
    .await;
    assert_eq!(wrong_account.status, 404);

    let logged = logs(sim.addr, "success=false").await.json();
    assert_eq!(logged["result_info"]["total_count"], 6);
}

fn concat_deltas(events: &[(Option<String>, String)]) -> String {
    events
        .iter()
        .filter(|(_, d)| d != "[DONE]")
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn compat_stream_concatenates_to_the_content() {
    let sim = start_with(|c| c.chunk_delay_ms = 1).await;
    let mut body = chat("anthropic/claude-sonnet-4-5");
    body["messages"][1]["content"] = json!("Label  this\nissue please ");
    body["stream"] = json!(true);
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await;
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.header("cf-aig-log-id").is_some());
    let events = r.events();
    let content = "Simulated answer from anthropic/claude-sonnet-4-5: Label  this\nissue please ";
    assert_eq!(concat_deltas(&events), content);
    let first: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], "claude-sonnet-4-5");
    assert_eq!(first["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    assert_eq!(first["choices"][0]["finish_reason"], Value::Null);
    // role, 8 words, finish, [DONE]: no usage chunk unless asked.
    assert_eq!(events.len(), 1 + 8 + 1 + 1);
    let finish: Value = serde_json::from_str(&events[9].1).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert!(!r.text().contains("usage"));

    body["stream_options"] = json!({"include_usage": true});
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await;
    let events = r.events();
    assert_eq!(events.len(), 1 + 8 + 1 + 1 + 1);
    let usage: Value = serde_json::from_str(&events[10].1).unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 8);
    assert_eq!(events.last().unwrap().1, "[DONE]");
    assert_eq!(concat_deltas(&events), content);
}

#[tokio::test]
async fn compat_answers_tools_with_a_function_call() {
    let sim = start().await;
    let mut body = chat("openai/gpt-4o");
    body["tools"] = json!([{"type": "function", "function": {"name": "add_label", "parameters": {
        "type": "object", "properties": {"label": {"type": "string", "enum": ["bug", "feature"]}, "why": {"type": "string"}}}}}]);
    let arguments = r#"{"label":"bug","why":"Label this issue please"}"#;

    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let message = &answer["choices"][0]["message"];
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    let call = &message["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_sim"));
    assert_eq!((call["type"].as_str(), call["function"]["name"].as_str()), (Some("function"), Some("add_label")));
    assert_eq!(call["function"]["arguments"], arguments);
    // C = the pieces of the arguments: `{"label":"bug","why":"Label`, ` this`, ` issue`, ` please"}`.
    assert_eq!(answer["usage"]["completion_tokens"], 4);
    // The request is recorded as sent.
    let recorded = requests(sim.addr).await;
    assert_eq!(serde_json::from_str::<Value>(recorded[0]["body"].as_str().unwrap()).unwrap(), body);

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await;
    let events: Vec<Value> =
        r.events().iter().filter(|(_, d)| d != "[DONE]").map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    let head = &events[0]["choices"][0]["delta"];
    assert_eq!(head["role"], "assistant");
    assert_eq!(head["tool_calls"][0]["function"], json!({"name": "add_label", "arguments": ""}));
    assert!(head["tool_calls"][0]["id"].as_str().unwrap().starts_with("call_sim"));
    let streamed: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(streamed, arguments);
    assert_eq!(events[events.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(events.last().unwrap()["usage"]["completion_tokens"], 4);
    assert_eq!(events.len(), 1 + 4 + 1 + 1);

    // After the tool's result, the answer is text again.
    body["stream"] = json!(false);
    let messages = body["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
    messages.push(json!({"role": "tool", "tool_call_id": call["id"], "content": "labelled"}));
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Simulated answer from openai/gpt-4o: Label this issue please"
    );
}

#[tokio::test]
async fn compat_answers_a_json_schema_in_it() {
    let sim = start().await;
    let mut body = chat("google-ai-studio/gemini-2.5-flash");
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "t", "schema": {
        "type": "object", "properties": {"kind": {"enum": ["bug"]}, "n": {"type": "integer"}}}}});
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await;
    let answer = r.json();
    assert_eq!(answer["choices"][0]["message"]["content"], r#"{"kind":"bug","n":1}"#);
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    body["response_format"] = json!({"type": "json_schema", "json_schema": "nope"});
    assert_eq!(post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body).await.status, 400);
}

#[tokio::test]
async fn stream_events_arrive_as_separate_chunks() {
    let sim = start_with(|c| c.chunk_delay_ms = 40).await;
    let mut body = chat("openai/gpt-4o-mini");
    body["stream"] = json!(true);
    let mut conn = open(sim.addr, "POST", &compat_path(), &[GATEWAY_AUTH], &body.to_string()).await;
    // Read until the first event is in: 11 events 40 ms apart, so the end is ≥ 400 ms away.
    let mut data = Vec::new();
    while parse_reply(&data).is_none_or(|r| r.events().is_empty()) {
        let (more, ended) = read_for(&mut conn, std::time::Duration::from_millis(10)).await;
        assert!(!ended, "the stream ended early");
        data.extend(more);
    }
    assert!(!parse_reply(&data).unwrap().text().contains("[DONE]"), "everything arrived at once");
    let (rest, ended) = read_for(&mut conn, std::time::Duration::from_secs(5)).await;
    assert!(ended);
    let whole = parse_reply(&[data, rest].concat()).unwrap();
    assert!(whole.complete);
    assert_eq!(whole.events().len(), 11);
    assert_eq!(whole.events().last().unwrap().1, "[DONE]");
}

#[tokio::test]
async fn rest_endpoint() {
    let sim = start().await;
    let path = v4_path("ai/v1/chat/completions");
    let r = post_json(sim.addr, &path, &[], &chat("google/gemini-2.5-flash")).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null})
    );
    let r =
        post_json(sim.addr, &path, &[API_AUTH, ("cf-aig-gateway-id", GATEWAY)], &chat("google/gemini-2.5-flash")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Simulated answer from google-ai-studio/gemini-2.5-flash: Label this issue please"
    );
    assert_eq!(r.json()["model"], "gemini-2.5-flash");
    let r = post_json(sim.addr, &path, &[API_AUTH], &chat("openai/gpt-4o")).await;
    assert_eq!(r.status, 200, "the configured gateway is the default");
    let r = post_json(sim.addr, &path, &[API_AUTH, ("cf-aig-gateway-id", "nope")], &chat("openai/gpt-4o")).await;
    assert_eq!(r.status, 404);
    let r = post_json(sim.addr, &path, &[API_AUTH], &chat("acme/x")).await;
    assert_eq!(r.status, 400);
    let rows = logs(sim.addr, "provider=google-ai-studio").await.json();
    assert_eq!(rows["result"][0]["model"], "gemini-2.5-flash");
}

#[tokio::test]
async fn openai_and_workers_ai_native_routes() {
    let sim = start().await;
    for (path, model) in [
        ("openai/chat/completions", "gpt-4o"),
        ("openai/v1/chat/completions", "gpt-4o"),
        ("workers-ai/v1/chat/completions", "@cf/meta/llama-3.1-8b-instruct"),
    ] {
        let r = post_json(
            sim.addr,
            &native_path(path),
            &[GATEWAY_AUTH, ("authorization", "Bearer sk-provider")],
            &chat(model),
        )
        .await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let provider = path.split('/').next().unwrap();
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            format!("Simulated answer from {provider}/{model}: Label this issue please")
        );
    }
    let r =
        post_json(sim.addr, &native_path("openai/chat/completions"), &[GATEWAY_AUTH], &json!({"messages": []})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let recorded = requests(sim.addr).await;
    assert_eq!(recorded[0]["headers"]["authorization"], "Bearer sk-provider");
    assert_eq!(recorded[0]["provider"], "openai");
    assert_eq!(recorded[2]["model"], "@cf/meta/llama-3.1-8b-instruct");
    let calls = get(sim.addr, "/__sim/calls", &[]).await.json();
    assert_eq!(calls, json!({"openai": 3, "workers-ai": 1}));
}

#[tokio::test]
async fn other_native_routes_are_not_found() {
    let sim = start().await;
    for path in [
        "groq/chat/completions",
        "azure-openai/res/dep/chat/completions",
        "openai/responses",
        "nope/x",
        "compat/embeddings",
    ] {
        let r = post_json(sim.addr, &native_path(path), &[GATEWAY_AUTH], &chat("x")).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["internalCode"], 7003);
    }
    let r = get(sim.addr, &compat_path(), &[GATEWAY_AUTH]).await;
    assert_eq!(r.status, 404);
    // Past authentication, even unknown routes get a log row.
    assert_eq!(logs(sim.addr, "").await.json()["result_info"]["total_count"], 6);
    let r = post_json(sim.addr, &native_path("groq/chat/completions"), &[], &chat("x")).await;
    assert_eq!(r.status, 401, "auth comes first");
}

#[tokio::test]
async fn latency_is_added_to_every_answer() {
    let sim = start_with(|c| c.latency_ms = 200).await;
    let t = std::time::Instant::now();
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &chat("openai/gpt-4o")).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(200));
    let t = std::time::Instant::now();
    get(sim.addr, "/__sim/health", &[]).await;
    assert!(t.elapsed() < std::time::Duration::from_millis(200), "not on the control API");
}

fn anthropic_body(stream: bool) -> Value {
    json!({"model": "claude-haiku-4-5", "max_tokens": 100, "stream": stream,
        "system": "You triage issues.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Label this issue please"}]}]})
}

#[tokio::test]
async fn anthropic_messages() {
    let sim = start().await;
    let path = native_path("anthropic/v1/messages");
    let auth = [GATEWAY_AUTH, ("x-api-key", "sk-ant-test"), ("anthropic-version", "2023-06-01")];
    let r = post_json(sim.addr, &path, &auth, &anthropic_body(false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert!(b["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(b["type"], "message");
    assert_eq!(b["role"], "assistant");
    assert_eq!(b["model"], "claude-haiku-4-5");
    let content = "Simulated answer from anthropic/claude-haiku-4-5: Label this issue please";
    assert_eq!(b["content"], json!([{"type": "text", "text": content}]));
    assert_eq!(b["stop_reason"], "end_turn");
    assert_eq!(b["stop_sequence"], Value::Null);
    assert_eq!(b["usage"], json!({"input_tokens": 19, "output_tokens": 8}));

    let r = post_json(sim.addr, &path, &auth, &anthropic_body(true)).await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let events = r.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    let mut expected = vec!["message_start", "content_block_start"];
    expected.extend(std::iter::repeat_n("content_block_delta", 8));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let start: Value = serde_json::from_str(&events[0].1).unwrap();
    assert_eq!(start["message"]["usage"]["input_tokens"], 19);
    let text: String = events
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("content_block_delta"))
        .map(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["delta"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, content);
    let delta: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(
        delta,
        json!({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":8}})
    );

    let mut no_max = anthropic_body(false);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let r = post_json(sim.addr, &path, &auth, &no_max).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert_eq!(requests(sim.addr).await[0]["headers"]["x-api-key"], "sk-ant-test");
}

#[tokio::test]
async fn google_ai_studio_generate_content() {
    let sim = start().await;
    let auth = [GATEWAY_AUTH, ("x-goog-api-key", "goog-key")];
    let body = json!({"systemInstruction": {"parts": [{"text": "You triage issues."}]},
        "contents": [{"role": "user", "parts": [{"text": "Label this issue please"}]}]});
    let content = "Simulated answer from google-ai-studio/gemini-2.5-flash: Label this issue please";

    let r = post_json(
        sim.addr,
        &native_path("google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent"),
        &auth,
        &body,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(
        b["candidates"][0],
        json!({"content": {"parts": [{"text": content}], "role": "model"}, "finishReason": "STOP", "index": 0})
    );
    // Gemini 2.5 thinks: R = 2 P, apart from the candidates, inside the total.
    assert_eq!(
        b["usageMetadata"],
        json!({"promptTokenCount": 19, "candidatesTokenCount": 8, "thoughtsTokenCount": 38, "totalTokenCount": 65})
    );
    assert_eq!(b["modelVersion"], "gemini-2.5-flash");

    // SSE framing.
    let r = post_json(
        sim.addr,
        &native_path("google-ai-studio/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
        &auth,
        &body,
    )
    .await;
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let chunks: Vec<Value> = r.events().iter().map(|(_, d)| serde_json::from_str(d).unwrap()).collect();
    let text: String =
        chunks.iter().map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()).collect();
    assert_eq!(text, content);
    assert_eq!(chunks.last().unwrap()["usageMetadata"]["candidatesTokenCount"], 8);

    // JSON array framing.
    let r = post_json(
        sim.addr,
        &native_path("google-ai-studio/v1/models/gemini-2.5-flash:streamGenerateContent"),
        &auth,
        &body,
    )
    .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let chunks = r.json();
    assert_eq!(chunks.as_array().unwrap().len(), 9);

    let r = post_json(
        sim.addr,
        &native_path("google-ai-studio/v1/models/gemini-2.5-flash:generateContent"),
        &auth,
        &json!({"contents": []}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["status"], "INVALID_ARGUMENT");

    let rows = logs(sim.addr, "order_by_direction=asc").await.json();
    assert_eq!(rows["result"][0]["path"], "v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(rows["result"][1]["response_content_type"], "text/event-stream");
    let recorded = requests(sim.addr).await;
    assert_eq!(recorded[1]["query"], "alt=sse");
    assert_eq!(recorded[1]["headers"]["x-goog-api-key"], "goog-key");
}
