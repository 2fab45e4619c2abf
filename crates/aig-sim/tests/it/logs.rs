//! Caching, metadata, the Logs API and seeding.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::client::*;

fn body(text: &str) -> Value {
    json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn cache_hit_miss_and_skip() {
    let sim = start().await;
    let ttl = ("cf-aig-cache-ttl", "300");
    let first = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ttl], &body("cache me")).await;
    assert_eq!(first.header("cf-aig-cache-status"), Some("MISS"));
    let second = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ttl], &body("cache me")).await;
    assert_eq!(second.header("cf-aig-cache-status"), Some("HIT"));
    assert_eq!(second.body, first.body, "a hit returns the stored body");
    assert_ne!(second.header("cf-aig-log-id"), first.header("cf-aig-log-id"));

    let skip =
        post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ttl, ("cf-aig-skip-cache", "true")], &body("cache me"))
            .await;
    assert_eq!(skip.header("cf-aig-cache-status"), Some("MISS"));
    assert_ne!(skip.body, first.body, "a fresh answer has a fresh id");
    let other_key =
        post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ttl, ("cf-aig-cache-key", "k")], &body("cache me")).await;
    assert_eq!(other_key.header("cf-aig-cache-status"), Some("MISS"));
    let short_ttl =
        post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ("cf-aig-cache-ttl", "30")], &body("cache me")).await;
    assert_eq!(short_ttl.header("cf-aig-cache-status"), Some("MISS"), "TTL below 60 s is not cacheable");
    let no_ttl = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("cache me")).await;
    assert_eq!(no_ttl.header("cf-aig-cache-status"), Some("MISS"), "caching is off by default");

    let hit_row = get(
        sim.addr,
        &v4_path(&format!("ai-gateway/gateways/{GATEWAY}/logs/{}", second.header("cf-aig-log-id").unwrap())),
        &[API_AUTH],
    )
    .await
    .json();
    assert_eq!(hit_row["result"]["cached"], true);
    assert_eq!(hit_row["result"]["cost"], 0.0);
    assert_eq!(hit_row["result"]["tokens_out"], first.json()["usage"]["completion_tokens"]);
    let cached = logs(sim.addr, "cached=true").await.json();
    assert_eq!(cached["result_info"]["total_count"], 1);
    // The hit never reached the upstream but was still received by the simulator.
    assert_eq!(get(sim.addr, "/__sim/calls", &[]).await.json(), json!({"openai": 6}));
}

#[tokio::test]
async fn gateway_default_ttl_errors_and_streams_are_not_cached() {
    let sim = start_with(|c| c.cache_ttl = 60).await;
    fault(sim.addr, "openai", 1, json!({"kind": "status", "status": 500})).await;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("x")).await;
    assert_eq!(r.status, 500);
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("x")).await;
    assert_eq!((r.status, r.header("cf-aig-cache-status")), (200, Some("MISS")), "errors are never cached");
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &body("x")).await;
    assert_eq!(r.header("cf-aig-cache-status"), Some("HIT"));
    let mut stream = body("x");
    stream["stream"] = json!(true);
    for _ in 0..2 {
        let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH], &stream).await;
        assert_eq!(r.header("cf-aig-cache-status"), Some("MISS"));
    }
}

#[tokio::test]
async fn metadata_is_stored_as_text_and_validated() {
    let sim = start().await;
    let meta = r#"{"agent":"TriagingAgent","repo":"acme/widgets","attempt":1,"retry":false}"#;
    let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ("cf-aig-metadata", meta)], &body("x")).await;
    assert_eq!(r.status, 200);
    let row = &logs(sim.addr, "").await.json()["result"][0];
    assert_eq!(row["metadata"], Value::String(meta.to_string()));

    for bad in [r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}"#, "not json", r#"{"a":[1]}"#] {
        let r = post_json(sim.addr, &compat_path(), &[GATEWAY_AUTH, ("cf-aig-metadata", bad)], &body("x")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["name"], "AiGatewayError");
    }
}

#[tokio::test]
async fn logs_api_auth_and_validation() {
    let sim = start().await;
    let path = v4_path(&format!("ai-gateway/gateways/{GATEWAY}/logs"));
    let r = get(sim.addr, &path, &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["errors"][0]["code"], 10000);
    let r = get(sim.addr, &path, &[("authorization", "Bearer nope")]).await;
    assert_eq!(r.status, 401);
    for q in [
        "per_page=51",
        "per_page=0",
        "per_page=x",
        "page=0",
        "order_by_direction=up",
        "start_date=nope",
        "success=maybe",
    ] {
        let r = logs(sim.addr, q).await;
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["errors"][0]["code"], 7001);
        assert_eq!(r.json()["success"], false);
    }
    assert_eq!(logs(sim.addr, "per_page=51").await.json()["errors"][0]["message"], "per_page must be between 1 and 50");
    let r = get(sim.addr, &format!("{path}/01ARZ3NDEKTSV4RRFFQ69G5FAV"), &[API_AUTH]).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"success":false,"errors":[{"code":7002,"message":"Not Found"}],"messages":[],"result":null})
    );
    let r = get(sim.addr, &v4_path("ai-gateway/gateways/nope/logs"), &[API_AUTH]).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn logs_pagination_stops_exactly_at_the_end() {
    let sim = start().await;
    let r = post_json(
        sim.addr,
        "/__sim/logs/seed",
        &[],
        &json!({"count": 123, "days": 7, "seed": 1, "end": "2026-08-20T00:00:00Z"}),
    )
    .await;
    assert_eq!(r.json(), json!({"added": 123}));

    let mut seen = HashSet::new();
    let mut last_created: Option<String> = None;
    for page in 1..=3 {
        let r = logs(sim.addr, &format!("page={page}&per_page=50")).await.json();
        assert_eq!(r["success"], true);
        assert_eq!(r["errors"], json!([]));
        let info = &r["result_info"];
        let expected = if page < 3 { 50 } else { 23 };
        assert_eq!(info, &json!({"page": page, "per_page": 50, "count": expected, "total_count": 123}));
        for row in r["result"].as_array().unwrap() {
            assert!(seen.insert(row["id"].as_str().unwrap().to_string()));
            let created = row["created_at"].as_str().unwrap().to_string();
            if let Some(prev) = &last_created {
                assert!(&created <= prev, "newest first by default");
            }
            last_created = Some(created);
        }
    }
    assert_eq!(seen.len(), 123);
    let past = logs(sim.addr, "page=4&per_page=50").await.json();
    assert_eq!(past["result"], json!([]));
    assert_eq!(past["result_info"]["count"], 0);
    assert_eq!(past["result_info"]["total_count"], 123);

    // Default per_page is 20; ascending order flips it.
    let asc = logs(sim.addr, "order_by_direction=asc").await.json();
    assert_eq!(asc["result"].as_array().unwrap().len(), 20);
    assert_eq!(asc["result"][0]["id"].as_str().unwrap(), seen.iter().min().unwrap(), "ids sort like created_at");
}

#[tokio::test]
async fn logs_filters() {
    let sim = start().await;
    post_json(
        sim.addr,
        "/__sim/logs/seed",
        &[],
        &json!({"count": 500, "days": 10, "seed": 9, "end": "2026-08-20T00:00:00Z"}),
    )
    .await;
    let total =
        |q: &'static str| async move { logs(sim.addr, q).await.json()["result_info"]["total_count"].as_u64().unwrap() };
    let all = total("").await;
    assert_eq!(all, 500);
    let ok = total("success=true").await;
    let failed = total("success=false").await;
    assert_eq!(ok + failed, all);
    assert!(failed > 0);
    let by_provider: u64 = [
        total("provider=openai").await,
        total("provider=anthropic").await,
        total("provider=google-ai-studio").await,
        total("provider=workers-ai").await,
    ]
    .iter()
    .sum();
    assert_eq!(by_provider, all);
    let first_half = total("end_date=2026-08-15T00:00:00Z").await;
    let second_half = total("start_date=2026-08-15T00:00:00.001Z").await;
    assert_eq!(first_half + second_half, all);
    let rows = logs(sim.addr, "model=gpt-4o&cached=true&per_page=50").await.json();
    for row in rows["result"].as_array().unwrap() {
        assert_eq!(row["model"], "gpt-4o");
        assert_eq!(row["cost"], 0.0);
    }
    let failures = logs(sim.addr, "success=false&per_page=50").await.json();
    for row in failures["result"].as_array().unwrap() {
        assert!([429, 500, 503].contains(&row["status_code"].as_u64().unwrap()));
        assert_eq!(row["tokens_in"], Value::Null);
    }
}

#[tokio::test]
async fn seeding_is_deterministic() {
    let sim = start().await;
    let spec = json!({"count": 300, "days": 30, "seed": 42, "end": "2026-08-20T00:00:00Z"});
    let snapshot = || async {
        let mut rows = Vec::new();
        for page in 1..=6 {
            let r = logs(sim.addr, &format!("page={page}&per_page=50")).await.json();
            rows.extend(r["result"].as_array().unwrap().clone());
        }
        rows
    };
    post_json(sim.addr, "/__sim/logs/seed", &[], &spec).await;
    let a = snapshot().await;
    post_json(sim.addr, "/__sim/reset", &[], &json!({})).await;
    assert_eq!(logs(sim.addr, "").await.json()["result_info"]["total_count"], 0);
    post_json(sim.addr, "/__sim/logs/seed", &[], &spec).await;
    let b = snapshot().await;
    assert_eq!(a.len(), 300);
    assert_eq!(a, b);
    let metadata: Value = serde_json::from_str(a.iter().find_map(|r| r["metadata"].as_str()).unwrap()).unwrap();
    assert!(["TriagingAgent", "PRReviewAgent"].contains(&metadata["agent"].as_str().unwrap()));

    let r = post_json(sim.addr, "/__sim/logs/seed", &[], &json!({"count": 10, "end": "soon"})).await;
    assert_eq!(r.status, 400);
}
