//! Every scripted fault kind, streamed and not.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::*;

fn body(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Hi there"}]})
}

async fn in_flight(addr: std::net::SocketAddr) -> u64 {
    get(addr, "/__sim/health", &[]).await.json()["in_flight"].as_u64().unwrap()
}

#[tokio::test]
async fn status_faults_with_default_and_custom_bodies() {
    let sim = start().await;
    fault(sim.addr, "google-ai-studio", 2, json!({"kind": "status", "status": 429, "retry_after": "2"})).await;
    fault(sim.addr, "*", 1, json!({"kind": "status", "status": 529})).await;
    fault(sim.addr, "openai", 1, json!({"kind": "status", "status": 503, "body": {"custom": true}})).await;

    for _ in 0..2 {
        let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("google-ai-studio/gemini-2.5-flash", false))
            .await;
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("2"));
        assert!(r.header("cf-aig-log-id").is_some());
        assert_eq!(
            r.json(),
            json!({"error": {"message": "Simulated upstream error 429", "type": "rate_limit_error", "code": "rate_limited"}})
        );
    }
    // google's queue is empty now, so the wildcard applies.
    let r =
        post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("google-ai-studio/gemini-2.5-flash", false)).await;
    assert_eq!(r.status, 529);
    assert_eq!(r.json()["error"]["type"], "overloaded_error");
    assert!(r.header("retry-after").is_none());
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false)).await;
    assert_eq!((r.status, r.json()), (503, json!({"custom": true})));
    let r =
        post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("google-ai-studio/gemini-2.5-flash", false)).await;
    assert_eq!(r.status, 200, "all faults used up");

    let recorded = requests(sim.addr).await;
    let faults: Vec<&Value> = recorded.iter().map(|r| &r["fault"]).collect();
    assert_eq!(faults, [&json!("status"), &json!("status"), &json!("status"), &json!("status"), &Value::Null]);
    let statuses: Vec<u64> = recorded.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [429, 429, 529, 503, 200]);

    let failed = logs(sim.addr, "success=false").await.json();
    assert_eq!(failed["result_info"]["total_count"], 4);
    let row = &failed["result"][0];
    assert_eq!(row["tokens_in"], Value::Null);
    assert_eq!(row["tokens_out"], Value::Null);
    assert!(row.get("cost").is_none());
}

#[tokio::test]
async fn delay_fault_delays() {
    let sim = start().await;
    fault(sim.addr, "openai", 1, json!({"kind": "delay", "ms": 300})).await;
    let t = Instant::now();
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false)).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let row = &logs(sim.addr, "").await.json()["result"][0];
    assert!(row["duration"].as_u64().unwrap() >= 300);
}

#[tokio::test]
async fn stall_sends_nothing_and_ends_with_the_client() {
    let sim = start().await;
    fault(sim.addr, "openai", 1, json!({"kind": "stall"})).await;
    let mut conn =
        open(sim.addr, "POST", &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false).to_string()).await;
    let (data, ended) = read_for(&mut conn, Duration::from_millis(300)).await;
    assert!(data.is_empty() && !ended, "no headers during a stall");
    assert_eq!(in_flight(sim.addr).await, 1);
    assert_eq!(requests(sim.addr).await[0]["fault"], "stall");
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(5);
    while in_flight(sim.addr).await != 0 {
        assert!(Instant::now() < deadline, "the stalled handler outlived its client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stall_after_first_chunk() {
    let sim = start().await;
    fault(sim.addr, "openai", 1, json!({"kind": "stall_after_first_chunk"})).await;
    let mut conn =
        open(sim.addr, "POST", &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true).to_string()).await;
    let (data, ended) = read_for(&mut conn, Duration::from_millis(300)).await;
    assert!(!ended);
    let r = parse_reply(&data).unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    let events = r.events();
    assert_eq!(events.len(), 2, "role chunk + first content chunk");
    let first: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "Simulated");
}

#[tokio::test]
async fn cut_before_first_chunk_breaks_the_body() {
    let sim = start().await;
    fault(sim.addr, "openai", 1, json!({"kind": "cut_before_first_chunk"})).await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(!r.complete, "the chunked body must not end cleanly");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn cut_after_first_chunk_breaks_the_body() {
    let sim = start().await;
    fault(sim.addr, "anthropic", 1, json!({"kind": "cut_after_first_chunk"})).await;
    fault(sim.addr, "openai", 1, json!({"kind": "cut_after_first_chunk"})).await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    assert!(!r.complete);
    assert_eq!(r.events().len(), 2);
    assert!(!r.text().contains("[DONE]"));

    // Same fault on a native Anthropic stream: message_start, content_block_start, one delta.
    let anthropic = json!({"model": "claude-haiku-4-5", "max_tokens": 50, "stream": true,
        "messages": [{"role": "user", "content": "Hi"}]});
    let r = post_json(sim.addr, &native_path("anthropic/v1/messages"), &[GATEWAY_AUTH], &anthropic).await;
    assert!(!r.complete);
    let names: Vec<String> = r.events().into_iter().filter_map(|(n, _)| n).collect();
    assert_eq!(names, ["message_start", "content_block_start", "content_block_delta"]);
}

#[tokio::test]
async fn cut_on_a_non_stream_answer() {
    let sim = start().await;
    fault(sim.addr, "openai", 1, json!({"kind": "cut_after_first_chunk"})).await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false)).await;
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
}

#[tokio::test]
async fn malformed_stream_and_body() {
    let sim = start().await;
    fault(sim.addr, "openai", 2, json!({"kind": "malformed"})).await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    assert!(r.complete);
    let events = r.events();
    assert_eq!(events.len(), 3);
    assert!(serde_json::from_str::<Value>(&events[0].1).is_ok());
    assert_eq!(events[1].1, r#"{"id":"x","choices":[{"delta":{"content":"bro"#);
    assert!(serde_json::from_str::<Value>(&events[1].1).is_err());
    assert_eq!(events[2].1, "[DONE]");

    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false)).await;
    assert_eq!(r.status, 200);
    assert!(r.complete);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
}

#[tokio::test]
async fn streams_that_end_without_an_end() {
    let sim = start().await;
    fault(sim.addr, "openai", 1, json!({"kind": "end_after_first_chunk"})).await;
    fault(sim.addr, "openai", 1, json!({"kind": "end_before_first_chunk"})).await;
    fault(sim.addr, "google-ai-studio", 1, json!({"kind": "end_after_first_chunk"})).await;

    // After some content: a clean close, without a finish_reason or [DONE].
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    assert_eq!(r.status, 200);
    assert!(r.complete, "the body ends cleanly");
    let events = r.events();
    assert_eq!(events.len(), 2, "role chunk + first content chunk");
    assert!(!r.text().contains("[DONE]") && !r.text().contains("finish_reason\":\""));
    assert!(events
        .iter()
        .all(|(_, d)| serde_json::from_str::<Value>(d).unwrap()["choices"][0]["finish_reason"].is_null()));

    // Before any content: only the role chunk.
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    assert!(r.complete);
    let events = r.events();
    assert_eq!(events.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&events[0].1).unwrap()["choices"][0]["delta"]["content"], "");

    // Native Gemini: the first chunk, and no finishReason.
    let r = post_json(
        sim.addr,
        &native_path("google-ai-studio/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"),
        &[GATEWAY_AUTH],
        &json!({"contents": [{"parts": [{"text": "Hi"}]}]}),
    )
    .await;
    assert!(r.complete);
    assert_eq!(r.events().len(), 1);
    assert!(!r.text().contains("finishReason"));
    let rows = logs(sim.addr, "").await.json();
    assert_eq!(rows["result"][0]["tokens_out"], Value::Null, "the client never saw the usage");
}

#[tokio::test]
async fn content_filter() {
    let sim = start().await;
    fault(sim.addr, "openai", 2, json!({"kind": "content_filter"})).await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false)).await;
    assert_eq!(r.status, 200);
    let b = r.json();
    assert_eq!(b["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(b["choices"][0]["message"]["content"], Value::Null);

    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    let events = r.events();
    assert_eq!(events.len(), 3, "role, filtered finish, [DONE]");
    let finish: Value = serde_json::from_str(&events[1].1).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(events[2].1, "[DONE]");
}

#[tokio::test]
async fn aig_refusals_in_the_gateways_own_shape() {
    let sim = start().await;
    let cases = [
        ("spend_limit", 429, 2041),
        ("rate_limit", 429, 2003),
        ("insufficient_credits", 402, 2021),
        ("policy_denied", 403, 2050),
        ("prompt_blocked", 424, 2016),
        ("dlp_blocked", 400, 2060),
        ("response_blocked", 424, 2017),
        ("guardrail_unavailable", 503, 7013),
    ];
    for (refusal, status, code) in cases {
        fault(sim.addr, "openai", 1, json!({"kind": "aig_refusal", "refusal": refusal, "retry_after": 4})).await;
        let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", false)).await;
        assert_eq!(r.status, status, "{refusal}");
        let b = r.json();
        assert_eq!(b["name"], "AiGatewayError", "{refusal}");
        assert_eq!(b["error"][0]["code"], code, "{refusal}");
        assert_eq!(r.header("retry-after"), Some("4"));
        assert_eq!(r.header("cf-aig-dlp").is_some(), refusal == "dlp_blocked", "{refusal}");
    }
    let b = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("openai/gpt-4o", true)).await;
    assert_eq!(b.status, 200, "all faults used up");
    let recorded = requests(sim.addr).await;
    assert!(recorded.iter().take(8).all(|r| r["fault"] == "aig_refusal"));
}

#[tokio::test]
async fn fault_api_validation_and_listing() {
    let sim = start().await;
    for bad in [
        json!({"fault": {"kind": "stall"}}),
        json!({"provider": "openai", "fault": {"kind": "bogus"}}),
        json!({"provider": "openai", "times": 0, "fault": {"kind": "stall"}}),
        json!({"provider": "openai"}),
    ] {
        let r = post_json(sim.addr, "/__sim/faults", &[], &bad).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.json()["error"].is_string());
    }
    fault(sim.addr, "openai", 3, json!({"kind": "delay", "ms": 1})).await;
    let pending = get(sim.addr, "/__sim/faults", &[]).await.json();
    assert_eq!(pending, json!({"openai": [{"times": 3, "fault": {"kind": "delay", "ms": 1}}]}));
    post_json(sim.addr, "/__sim/reset", &[], &json!({})).await;
    assert_eq!(get(sim.addr, "/__sim/faults", &[]).await.json(), json!({}));
}
