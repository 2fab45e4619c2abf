//! The gateway management API and stored provider keys.

use serde_json::{json, Value};

use crate::client::*;

fn gateways() -> String {
    v4_path("ai-gateway/gateways")
}

fn new_gateway(id: &str) -> Value {
    json!({"id": id, "cache_ttl": 0, "cache_invalidate_on_update": false, "collect_logs": true,
        "rate_limiting_interval": 0, "rate_limiting_limit": 0})
}

#[tokio::test]
async fn gateway_crud() {
    let sim = start().await;
    let r = get(sim.addr, &gateways(), &[API_AUTH]).await.json();
    assert_eq!(r["result_info"]["total_count"], 1);
    let g = &r["result"][0];
    assert_eq!(g["id"], GATEWAY);
    assert_eq!(g["authentication"], true);
    assert_eq!(g["collect_logs"], true);
    for field in [
        "created_at",
        "modified_at",
        "cache_ttl",
        "rate_limiting_technique",
        "log_management",
        "retry_backoff",
        "zdr",
        "workers_ai_billing_mode",
        "is_default",
    ] {
        assert!(g.get(field).is_some(), "{field}");
    }

    assert_eq!(post_json(sim.addr, &gateways(), &[], &new_gateway("x")).await.status, 401);
    let mut missing = new_gateway("second");
    missing.as_object_mut().unwrap().remove("rate_limiting_limit");
    let r = post_json(sim.addr, &gateways(), &[API_AUTH], &missing).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errors"][0]["code"], 7001);
    let r = post_json(sim.addr, &gateways(), &[API_AUTH], &new_gateway("Bad Id")).await;
    assert_eq!(r.status, 400);

    let r = post_json(sim.addr, &gateways(), &[API_AUTH], &new_gateway("second")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["id"], "second");
    let r = post_json(sim.addr, &gateways(), &[API_AUTH], &new_gateway("second")).await;
    assert_eq!(r.status, 409);

    // Inference works on the new gateway, and its logs are its own.
    let chat = json!({"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let r = post_json(sim.addr, "/v1/local-account/second/compat/chat/completions", &[], &chat).await;
    assert_eq!(r.status, 200, "the new gateway is unauthenticated");
    let second_logs = get(sim.addr, &format!("{}/second/logs", gateways()), &[API_AUTH]).await.json();
    assert_eq!(second_logs["result_info"]["total_count"], 1);
    assert_eq!(logs(sim.addr, "").await.json()["result_info"]["total_count"], 0);

    // PUT is a full update; settings take effect.
    let mut update = new_gateway("ignored");
    update["cache_ttl"] = json!(120);
    update["collect_logs"] = json!(false);
    let r = send(sim.addr, "PUT", &format!("{}/second", gateways()), &[API_AUTH], &update.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["result"]["cache_ttl"], 120);
    assert_eq!(r.json()["result"]["id"], "second");
    let r = post_json(sim.addr, "/v1/local-account/second/compat/chat/completions", &[], &chat).await;
    assert_eq!(r.header("cf-aig-cache-status"), Some("MISS"));
    let r = post_json(sim.addr, "/v1/local-account/second/compat/chat/completions", &[], &chat).await;
    assert_eq!(r.header("cf-aig-cache-status"), Some("HIT"));
    let second_logs = get(sim.addr, &format!("{}/second/logs", gateways()), &[API_AUTH]).await.json();
    assert_eq!(second_logs["result_info"]["total_count"], 1, "collect_logs off");

    let r = send(sim.addr, "DELETE", &format!("{}/second", gateways()), &[API_AUTH], "").await;
    assert_eq!(r.json()["result"]["id"], "second");
    assert_eq!(get(sim.addr, &format!("{}/second", gateways()), &[API_AUTH]).await.status, 404);
    let r = post_json(sim.addr, "/v1/local-account/second/compat/chat/completions", &[], &chat).await;
    assert_eq!(r.status, 404);
    assert_eq!(get(sim.addr, &format!("{}?per_page=101", gateways()), &[API_AUTH]).await.status, 400);
}

#[tokio::test]
async fn provider_configs_never_reveal_the_secret() {
    let sim = start().await;
    let path = format!("{}/{GATEWAY}/provider_configs", gateways());
    let r = post_json(
        sim.addr,
        &path,
        &[API_AUTH],
        &json!({"provider_slug": "google-ai-studio", "secret": "AIzaSecretValue123", "default_config": true}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let item = r.json()["result"].clone();
    assert_eq!(item["secret_preview"], "AIza…");
    assert_eq!(item["alias"], "default");
    assert_eq!(item["gateway_id"], GATEWAY);
    assert!(!r.text().contains("SecretValue"));
    let r =
        post_json(sim.addr, &path, &[API_AUTH], &json!({"provider_slug": "google-ai-studio", "secret": "again"})).await;
    assert_eq!(r.status, 409);
    let r = post_json(sim.addr, &path, &[API_AUTH], &json!({"provider_slug": "nope", "secret": "x"})).await;
    assert_eq!(r.status, 400);
    let r = post_json(sim.addr, &path, &[API_AUTH], &json!({"provider_slug": "openai"})).await;
    assert_eq!(r.status, 400);
    let list = get(sim.addr, &path, &[API_AUTH]).await;
    assert_eq!(list.json()["result_info"]["total_count"], 1);
    assert!(!list.text().contains("SecretValue"));
}
