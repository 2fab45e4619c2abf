//! Azure OpenAI and AWS Bedrock native paths: the model comes from the path, the answers are the
//! deterministic ones in each provider's format, and every call gets a log row.

use serde_json::json;

use crate::client::*;

fn user(text: &str) -> serde_json::Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn azure_openai_uses_the_deployment_and_needs_an_api_version() {
    let sim = start().await;
    let path = native_path("azure-openai/my-res/gpt-4o-mini/chat/completions?api-version=2024-10-21");
    let r = post_json(sim.addr, &path, &[GATEWAY_AUTH], &json!({"messages": user("Hello there")})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["choices"][0]["message"]["content"], "Simulated answer from azure-openai/gpt-4o-mini: Hello there");
    assert!(body["usage"]["total_tokens"].as_u64().unwrap() > 0);

    let without_version = native_path("azure-openai/my-res/gpt-4o-mini/chat/completions");
    let r = post_json(sim.addr, &without_version, &[GATEWAY_AUTH], &json!({"messages": user("x")})).await;
    assert_eq!(r.status, 404);
    let records = requests(sim.addr).await;
    assert_eq!(records[0]["provider"], "azure-openai");
    assert_eq!(records[0]["query"], "api-version=2024-10-21");
}

#[tokio::test]
async fn bedrock_invoke_converse_and_messages() {
    let sim = start().await;
    let model = "anthropic.claude-3-haiku-20240307-v1:0";
    let invoke = native_path(&format!("aws-bedrock/bedrock-runtime/us-east-1/model/{model}/invoke"));
    let body = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": user("Hi")});
    let r = post_json(sim.addr, &invoke, &[GATEWAY_AUTH], &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json();
    assert_eq!(a["type"], "message");
    assert_eq!(a["model"], model);
    assert_eq!(a["content"][0]["text"], format!("Simulated answer from aws-bedrock/{model}: Hi"));
    assert_eq!(a["usage"]["output_tokens"], 5);

    // The AWS SDKs percent-encode the `:` of a model id; it is the same model.
    let encoded =
        native_path("aws-bedrock/bedrock-runtime/us-east-1/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke");
    assert_eq!(post_json(sim.addr, &encoded, &[GATEWAY_AUTH], &body).await.json()["model"], model);

    let converse = native_path("aws-bedrock/bedrock-runtime/us-east-1/model/amazon.nova-lite-v1:0/converse");
    let r = post_json(
        sim.addr,
        &converse,
        &[GATEWAY_AUTH],
        &json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}], "inferenceConfig": {"maxTokens": 2}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = r.json();
    assert_eq!(c["output"]["message"]["content"][0]["text"], "Simulated answer");
    assert_eq!(c["stopReason"], "max_tokens");
    assert_eq!(c["usage"]["outputTokens"], 2);
    let bad = post_json(sim.addr, &converse, &[GATEWAY_AUTH], &json!({"messages": []})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().contains("messages"));

    let messages = native_path("aws-bedrock/bedrock-mantle/us-east-1/anthropic/v1/messages");
    let r = post_json(
        sim.addr,
        &messages,
        &[GATEWAY_AUTH],
        &json!({"model": "claude-haiku-4-5", "max_tokens": 50, "stream": true, "messages": user("Hi")}),
    )
    .await;
    assert_eq!(r.status, 200);
    let names: Vec<Option<String>> = r.events().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names.first().cloned().flatten().as_deref(), Some("message_start"));
    assert_eq!(names.last().cloned().flatten().as_deref(), Some("message_stop"));

    let providers: Vec<String> =
        requests(sim.addr).await.iter().map(|r| r["provider"].as_str().unwrap_or("").to_owned()).collect();
    assert!(providers.iter().all(|p| p == "aws-bedrock"), "{providers:?}");
}
