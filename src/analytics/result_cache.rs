//! Computed views kept for a short time (`ANALYTICS_CACHE_TTL`) in the Cache API, so a dashboard
//! reloaded a few times costs one read of the logs. Only complete results are kept. (The Cache
//! API stores nothing on `*.workers.dev` hosts; it does on a custom domain and in `wrangler dev`.)

use worker::{Cache, Headers, Response, ResponseBuilder};

/// A URL naming a view (the cache is keyed by URL): the query's resolved range, grouping,
/// format and gateway, never a token.
pub fn key(cache_key: &str) -> String {
    format!("https://analytics.agent-gateway.internal/v1?{cache_key}")
}

/// A stored view's headers and body.
pub async fn get(key: &str) -> Option<(Headers, Vec<u8>)> {
    let mut response = Cache::default().get(key, true).await.ok()??;
    let headers = response.headers().clone();
    let body = response.bytes().await.ok()?;
    Some((headers, body))
}

/// Stores a view for `ttl_s` seconds; failures only cost a later recomputation.
pub async fn put(key: &str, headers: &Headers, body: &[u8], ttl_s: u32) {
    let stored = Headers::new();
    for (name, value) in headers.entries() {
        let _ = stored.set(&name, &value);
    }
    let _ = stored.set("cache-control", &format!("max-age={ttl_s}"));
    let response: Response = ResponseBuilder::new().with_status(200).with_headers(stored).fixed(body.to_vec());
    if let Err(e) = Cache::default().put(key, response).await {
        worker::console_warn!("analytics result cache: {e}");
    }
}
