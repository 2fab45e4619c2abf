//! Thinking tokens, retired and redirected models, and structured output across providers.

use serde_json::{json, Value};

use crate::client::*;
use crate::dialects::chunks;

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You triage issues."},
        {"role": "user", "content": "Label this issue please"}]})
}

async fn compat(sim: &Sim, body: &Value) -> Reply {
    post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], body).await
}

async fn log_row(sim: &Sim, r: &Reply) -> Value {
    let id = r.header("cf-aig-log-id").unwrap();
    get(sim.addr, &v4_path(&format!("ai-gateway/gateways/{GATEWAY}/logs/{id}")), &[API_AUTH]).await.json()["result"]
        .clone()
}

#[tokio::test]
async fn thinking_models_report_reasoning_apart_and_bill_it_as_output() {
    let sim = start().await;
    // P = 19, C = 8 (see inference.rs), R = 2 P = 38.
    let r = compat(&sim, &chat("google-ai-studio/gemini-2.5-flash")).await;
    let usage = r.json()["usage"].clone();
    assert_eq!(
        usage,
        json!({"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 65,
            "completion_tokens_details": {"reasoning_tokens": 38}})
    );
    let row = log_row(&sim, &r).await;
    assert_eq!((row["tokens_in"].as_u64(), row["tokens_out"].as_u64()), (Some(19), Some(46)));
    let cost = row["cost"].as_f64().unwrap();
    assert!((cost - (19.0 * 0.30 + 46.0 * 2.50) / 1e6).abs() < 1e-12, "{cost}");

    // Streamed: the final usage chunk says the same.
    let mut body = chat("google-ai-studio/gemini-3-flash-preview");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = compat(&sim, &body).await;
    let usage = chunks(&r).last().unwrap()["usage"].clone();
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 38);
    assert_eq!(usage["total_tokens"], 19 + 8 + 38);
    assert_eq!(log_row(&sim, &r).await["tokens_out"], 8 + 38);

    // Non-thinking models keep the plain usage.
    for model in ["openai/gpt-4o", "google-ai-studio/gemini-2.0-flash"] {
        let usage = compat(&sim, &chat(model)).await.json()["usage"].clone();
        assert!(usage.get("completion_tokens_details").is_none(), "{model}: {usage}");
    }
}

#[tokio::test]
async fn usage_without_total_fault_reports_reasoning_apart_only() {
    let sim = start().await;
    fault(sim.addr, "google-ai-studio", 2, json!({"kind": "usage_without_total"})).await;
    let r = compat(&sim, &chat("google-ai-studio/gemini-2.5-flash")).await;
    assert_eq!(
        r.json()["usage"],
        json!({"prompt_tokens": 19, "completion_tokens": 8, "completion_tokens_details": {"reasoning_tokens": 38}})
    );
    assert_eq!(log_row(&sim, &r).await["tokens_out"], 46, "the log counts the same tokens either way");
    let mut body = chat("google-ai-studio/gemini-2.5-flash");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let usage = chunks(&compat(&sim, &body).await).last().unwrap()["usage"].clone();
    assert!(usage.get("total_tokens").is_none() && usage["completion_tokens_details"]["reasoning_tokens"] == 38);
    assert_eq!(requests(sim.addr).await[0]["fault"], "usage_without_total");
}

#[tokio::test]
async fn retired_models_answer_404_in_the_providers_shape() {
    let sim = start().await;
    assert_eq!(get(sim.addr, "/__sim/models", &[]).await.json(), json!({"retired": [], "redirects": {}}));
    let rules = json!({"retired": ["gemini-2.5-flash", "gpt-4o", "claude-haiku-4-5"]});
    assert_eq!(post_json(sim.addr, "/__sim/models", &[], &rules).await.json()["retired"][0], "claude-haiku-4-5");
    fault(sim.addr, "*", 1, json!({"kind": "status", "status": 500})).await;

    let gemini_text = "This model models/gemini-2.5-flash is no longer available to new users. Please update your code to use a newer model for the latest features and improvements.";
    let r = compat(&sim, &chat("google-ai-studio/gemini-2.5-flash")).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!([{"error": {"code": 404, "message": gemini_text, "status": "NOT_FOUND"}}]));
    let native = post_json(
        sim.addr,
        &native_path("google-ai-studio/v1beta/models/gemini-2.5-flash:generateContent"),
        &[GATEWAY_AUTH],
        &json!({"contents": [{"parts": [{"text": "hi"}]}]}),
    )
    .await;
    assert_eq!((native.status, native.json()["error"]["message"].as_str()), (404, Some(gemini_text)));
    let r = compat(&sim, &chat("openai/gpt-4o")).await;
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("model_not_found")));
    let r = compat(&sim, &chat("anthropic/claude-haiku-4-5")).await;
    assert_eq!(
        r.json(),
        json!({"type": "error", "error": {"type": "not_found_error", "message": "model: claude-haiku-4-5"}})
    );

    // No fault was used; the refusals are logged under the model asked for.
    assert_eq!(get(sim.addr, "/__sim/faults", &[]).await.json()["*"][0]["times"], 1);
    let rows = logs(sim.addr, "success=false").await.json();
    assert_eq!(rows["result_info"]["total_count"], 4);
    assert_eq!(rows["result"][0]["model"], "claude-haiku-4-5");
    assert_eq!(rows["result"][0]["status_code"], 404);

    post_json(sim.addr, "/__sim/reset", &[], &json!({})).await;
    assert_eq!(compat(&sim, &chat("openai/gpt-4o")).await.status, 200, "a reset un-retires");
    for bad in [json!({"retired": "x"}), json!({"redirects": {"a": ""}}), json!({"other": 1})] {
        assert_eq!(post_json(sim.addr, "/__sim/models", &[], &bad).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn redirected_models_answer_as_their_target() {
    let sim = start().await;
    let rules = json!({"retired": ["gemini-2.5-flash"], "redirects": {"gemini-2.5-flash": "gemini-3.5-flash-lite"}});
    post_json(sim.addr, "/__sim/models", &[], &rules).await;
    let r = compat(&sim, &chat("google-ai-studio/gemini-2.5-flash")).await;
    assert_eq!(r.status, 200, "a redirect wins over retirement");
    let answer = r.json();
    assert_eq!(answer["model"], "gemini-3.5-flash-lite");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Label this issue please"
    );
    assert_eq!(answer["usage"]["completion_tokens_details"]["reasoning_tokens"], 38);
    let row = log_row(&sim, &r).await;
    assert_eq!(row["model"], "gemini-3.5-flash-lite");
    assert_eq!(row["tokens_out"], answer["usage"]["completion_tokens"].as_u64().unwrap() + 38);
    // Priced as the model that answered: thinking billed as output (0.30 / 2.50 per million).
    let (input, output) = (row["tokens_in"].as_f64().unwrap(), row["tokens_out"].as_f64().unwrap());
    let cost = row["cost"].as_f64().unwrap();
    assert!((cost - (input * 0.30 + output * 2.50) / 1e6).abs() < 1e-12, "{row}");
    // The request is recorded as sent.
    assert_eq!(requests(sim.addr).await[0]["model"], "gemini-2.5-flash");
}

fn structured(model: &str) -> Value {
    let mut body = chat(model);
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "triage", "schema": {
        "type": "object", "properties": {"kind": {"enum": ["bug", "feature"]}}}}});
    body
}

#[tokio::test]
async fn structured_output_across_providers() {
    let sim = start().await;
    for model in ["openai/gpt-4o", "google-ai-studio/gemini-2.5-flash", "groq/llama-3.3-70b"] {
        let content = compat(&sim, &structured(model)).await.json()["choices"][0]["message"]["content"].clone();
        assert_eq!(content, r#"{"kind":"bug"}"#, "{model}");
    }
    // Anthropic through compat ignores response_format: prose.
    let content = compat(&sim, &structured("anthropic/claude-haiku-4-5")).await.json()["choices"][0]["message"]
        ["content"]
        .clone();
    assert_eq!(content, "Simulated answer from anthropic/claude-haiku-4-5: Label this issue please");
    let mut object = chat("openai/gpt-4o-mini");
    object["response_format"] = json!({"type": "json_object"});
    let content = compat(&sim, &object).await.json()["choices"][0]["message"]["content"].clone();
    let parsed: Value = serde_json::from_str(content.as_str().unwrap()).unwrap();
    assert_eq!(parsed, json!({"answer": "Simulated answer from openai/gpt-4o-mini: Label this issue please"}));

    post_json(sim.addr, "/__sim/dialects", &[], &json!({"anthropic_ignores_response_format": false})).await;
    let content = compat(&sim, &structured("anthropic/claude-haiku-4-5")).await.json()["choices"][0]["message"]
        ["content"]
        .clone();
    assert_eq!(content, r#"{"kind":"bug"}"#);
}

#[tokio::test]
async fn structured_output_fault_spoils_the_json() {
    let sim = start().await;
    for (answer, expected) in [
        ("prose", "Simulated answer from openai/gpt-4o: Label this issue please"),
        ("malformed", r#"{"kind":"bug""#),
        ("violates_schema", r#"[{"kind":"bug"}]"#),
    ] {
        fault(sim.addr, "openai", 1, json!({"kind": "structured_output", "answer": answer})).await;
        let r = compat(&sim, &structured("openai/gpt-4o")).await;
        assert_eq!(r.json()["choices"][0]["message"]["content"], expected, "{answer}");
    }
    // On a request without structured output the fault is used up and changes nothing.
    fault(sim.addr, "openai", 1, json!({"kind": "structured_output"})).await;
    let r = compat(&sim, &chat("openai/gpt-4o")).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Simulated answer from openai/gpt-4o: Label this issue please"
    );
    assert_eq!(get(sim.addr, "/__sim/faults", &[]).await.json(), json!({}));
}
