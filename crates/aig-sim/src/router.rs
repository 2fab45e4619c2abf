//! Maps a request to its handler, and writes the one-line request log on stderr.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::json;

use crate::http::{
    gateway_error, json_response, percent_decode, read_body, v4_error, v4_unauthorized, HandlerResult, ProviderTag,
    Resp,
};
use crate::inference::{self, InferenceRequest};
use crate::state::State;
use crate::{clock, compat, control, gateways, logs, native};

/// Largest request body accepted (the real gateway caches up to 25 MB; bigger is not useful).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// hyper's service: dispatch, then log `METHOD PATH STATUS PROVIDER` (never headers or bodies,
/// so no token is ever printed).
pub async fn serve_request(state: Arc<State>, req: Request<Incoming>) -> HandlerResult {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = dispatch(&state, req).await;
    let provider = resp.extensions().get::<ProviderTag>().map_or("-", |p| p.0.as_str());
    eprintln!("{method} {path} {} {provider}", resp.status().as_u16());
    Ok(resp)
}

async fn dispatch(state: &State, req: Request<Incoming>) -> Resp {
    let started = Instant::now();
    let started_ms = clock::now_ms();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let segments: Vec<String> = path.split('/').skip(1).map(|s| percent_decode(s, false)).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let body = match read_body(body, MAX_BODY).await {
        Ok(b) => b,
        Err((status, message)) => {
            return match segs.first() {
                Some(&"v1") => gateway_error(status, 2007, &message),
                Some(&"client") => v4_error(status, 7001, &message),
                _ => json_response(status, &json!({"error": message})),
            }
        }
    };
    let request = |path: String| InferenceRequest {
        method: parts.method.clone(),
        path,
        query: query.clone(),
        headers: parts.headers.clone(),
        body: body.clone(),
        started,
        started_ms,
    };
    match segs.as_slice() {
        ["__sim", rest @ ..] => control::handle(state, &parts.method, rest, &body),
        ["v1", account, gateway, "compat", "chat", "completions"] => {
            inference::handle(state, request(path.clone()), |s, r| compat::admit_compat(s, r, account, gateway)).await
        }
        ["v1", account, gateway, provider, rest @ ..] => {
            inference::handle(state, request(path.clone()), |s, r| {
                native::admit(s, r, account, gateway, provider, rest)
            })
            .await
        }
        ["client", "v4", "accounts", account, "ai", "v1", "chat", "completions"] => {
            inference::handle(state, request(path.clone()), |s, r| compat::admit_rest(s, r, account)).await
        }
        ["client", "v4", "accounts", account, "ai-gateway", "gateways", rest @ ..] => {
            v4_gateways(state, &parts.method, &parts.headers, account, rest, &query, &body)
        }
        ["client", "v4", ..] => v4_error(404, 7000, "No route for that URI"),
        ["v1", ..] => gateway_error(404, 7003, "Route not found"),
        _ => json_response(404, &json!({"error": "not found"})),
    }
}

/// The `api.cloudflare.com` gateway, log and provider-key routes. All need
/// `Authorization: Bearer <api token>` (unless the token is configured empty).
fn v4_gateways(
    state: &State,
    method: &Method,
    headers: &hyper::HeaderMap,
    account: &str,
    rest: &[&str],
    query: &str,
    body: &[u8],
) -> Resp {
    let token = &state.config.api_token;
    if !token.is_empty() && !crate::http::has_bearer(headers, "authorization", token) {
        return v4_unauthorized();
    }
    if account != state.config.account_id {
        return v4_error(404, 7003, "Could not route to the account, perhaps your object identifier is invalid?");
    }
    match (method, rest) {
        (&Method::GET, []) => gateways::list(state, query),
        (&Method::POST, []) => gateways::create(state, body),
        (&Method::GET, [id]) => gateways::get(state, id),
        (&Method::PUT, [id]) => gateways::update(state, id, body),
        (&Method::DELETE, [id]) => gateways::delete(state, id),
        (&Method::GET, [id, "logs"]) => logs::list(state, id, query),
        (&Method::GET, [id, "logs", log_id]) => logs::get(state, id, log_id),
        (&Method::GET, [id, "provider_configs"]) => gateways::list_provider_configs(state, id, query),
        (&Method::POST, [id, "provider_configs"]) => gateways::create_provider_config(state, id, body),
        (_, [] | [_] | [_, "logs"] | [_, "logs", _] | [_, "provider_configs"]) => {
            v4_error(405, 10405, "Method not allowed")
        }
        _ => v4_error(404, 7000, "No route for that URI"),
    }
}
