//! Scripted Logs API faults and the record of list requests.

use serde_json::json;

use crate::client::*;

#[tokio::test]
async fn faults_come_after_the_pages_asked_for_and_every_list_is_recorded() {
    let sim = start().await;
    let seeded = post_json(sim.addr, "/__sim/logs/seed", &[], &json!({"count": 120, "seed": 1})).await;
    assert_eq!(seeded.status, 200);
    let queued = post_json(
        sim.addr,
        "/__sim/logs/faults",
        &[],
        &json!({"after_pages": 1, "times": 1, "fault": {"kind": "status", "status": 429, "retry_after": 2}}),
    )
    .await;
    assert_eq!(queued.json(), json!({"queued": 1}));
    post_json(sim.addr, "/__sim/logs/faults", &[], &json!({"fault": {"kind": "malformed"}})).await;
    post_json(sim.addr, "/__sim/logs/faults", &[], &json!({"fault": {"kind": "wrong_shape"}})).await;
    post_json(sim.addr, "/__sim/logs/faults", &[], &json!({"fault": {"kind": "status", "status": 503}})).await;

    let first = logs(sim.addr, "page=1&per_page=50").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["result"].as_array().unwrap().len(), 50);
    let limited = logs(sim.addr, "page=2&per_page=50").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("2"));
    assert_eq!(limited.json()["errors"][0]["code"], 971);
    let malformed = logs(sim.addr, "page=2&per_page=50").await;
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_slice::<serde_json::Value>(&malformed.body).is_err());
    let wrong = logs(sim.addr, "page=2&per_page=50").await;
    assert!(wrong.json()["result"].is_object());
    assert_eq!(logs(sim.addr, "page=2&per_page=50").await.status, 503);
    let again = logs(sim.addr, "page=2&per_page=50").await;
    assert_eq!(again.json()["result"].as_array().unwrap().len(), 50);
    assert_eq!(get(sim.addr, "/__sim/logs/faults", &[]).await.json(), json!([]));

    // New rows are seen at once by the same query (its remembered row list is invalidated).
    post_json(sim.addr, "/__sim/logs/seed", &[], &json!({"count": 30, "seed": 2})).await;
    assert_eq!(logs(sim.addr, "page=2&per_page=50").await.json()["result_info"]["total_count"], 150);
    let recorded = get(sim.addr, "/__sim/logs/requests", &[]).await.json();
    let statuses: Vec<u64> = recorded.as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 429, 200, 200, 503, 200, 200]);
    assert_eq!(recorded[0]["query"], "page=1&per_page=50");

    post_json(sim.addr, "/__sim/logs/faults", &[], &json!({"after_pages": 9, "fault": {"kind": "malformed"}})).await;
    assert_eq!(send(sim.addr, "DELETE", "/__sim/logs/faults", &[], "").await.status, 200);
    assert_eq!(get(sim.addr, "/__sim/logs/faults", &[]).await.json(), json!([]));
    assert_eq!(get(sim.addr, "/__sim/logs/requests", &[]).await.json().as_array().unwrap().len(), 7);

    post_json(sim.addr, "/__sim/reset", &[], &json!({})).await;
    assert_eq!(get(sim.addr, "/__sim/logs/requests", &[]).await.json(), json!([]));
    let bad =
        post_json(sim.addr, "/__sim/logs/faults", &[], &json!({"fault": {"kind": "status", "status": 200}})).await;
    assert_eq!(bad.status, 400);
}
