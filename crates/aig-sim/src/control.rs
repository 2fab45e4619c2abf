//! The test control API under `/__sim/` (no auth: the simulator only listens on loopback).
//!
//! | method | path                | what                                                     |
//! |--------|---------------------|----------------------------------------------------------|
//! | POST   | `/__sim/faults`     | queue a fault: `{"provider","times"?,"fault":{…}}`       |
//! | GET    | `/__sim/faults`     | pending faults per provider                              |
//! | GET    | `/__sim/requests`   | every inference request since the last reset            |
//! | GET    | `/__sim/calls`      | `{provider: count}` of those requests                     |
//! | POST   | `/__sim/reset`      | clear faults, records, cache and log rows               |
//! | POST   | `/__sim/logs/seed`  | add deterministic synthetic log rows                     |
//! | POST   | `/__sim/logs/faults`| queue a Logs API fault: `{"after_pages","times"?,"fault"}` |
//! | GET    | `/__sim/logs/faults`| pending Logs API faults (DELETE: drop them)              |
//! | GET    | `/__sim/logs/requests` | every Logs API list request: `{"query","status"}`     |
//! | GET    | `/__sim/health`     | `{"ok":true,"in_flight":n}`                              |
//! | POST   | `/__sim/dialects`   | switch provider dialects: `{"all"?,"<switch>"?: bool}`   |
//! | GET    | `/__sim/dialects`   | the switches                                             |
//! | POST   | `/__sim/models`     | `{"retired"?: [model], "redirects"?: {from: to}}`        |
//! | GET    | `/__sim/models`     | the model rules                                          |
//!
//! Errors are `{"error": "<message>"}` with 400/404/405.

use std::collections::BTreeMap;

use hyper::Method;
use serde_json::{json, Value};

use crate::faults::Fault;
use crate::http::{json_response, Resp};
use crate::log_faults::LogFault;
use crate::logs::{synthesize, SeedSpec};
use crate::models::ModelRules;
use crate::state::State;

fn error(status: u16, message: &str) -> Resp {
    json_response(status, &json!({"error": message}))
}

pub fn handle(state: &State, method: &Method, path: &[&str], body: &[u8]) -> Resp {
    match (method, path) {
        (&Method::POST, ["faults"]) => add_fault(state, body),
        (&Method::GET, ["faults"]) => json_response(200, &state.lock().faults.to_json()),
        (&Method::GET, ["requests"]) => {
            let inner = state.lock();
            json_response(200, &serde_json::to_value(&inner.records).unwrap_or(Value::Null))
        }
        (&Method::GET, ["calls"]) => calls(state),
        (&Method::POST, ["reset"]) => {
            state.reset();
            json_response(200, &json!({"ok": true}))
        }
        (&Method::POST, ["logs", "seed"]) => seed(state, body),
        (&Method::POST, ["logs", "faults"]) => add_log_fault(state, body),
        (&Method::GET, ["logs", "faults"]) => json_response(200, &state.lock().log_faults.pending()),
        (&Method::DELETE, ["logs", "faults"]) => {
            state.lock().log_faults.clear_queue();
            json_response(200, &json!({"ok": true}))
        }
        (&Method::GET, ["logs", "requests"]) => {
            json_response(200, &Value::Array(state.lock().log_faults.requests.clone()))
        }
        (&Method::GET, ["health"]) => json_response(200, &json!({"ok": true, "in_flight": state.in_flight_count()})),
        (&Method::GET, ["dialects"]) => json_response(200, &state.lock().dialects.to_json()),
        (&Method::POST, ["dialects"]) => set_dialects(state, body),
        (&Method::GET, ["models"]) => json_response(200, &state.lock().models.to_json()),
        (&Method::POST, ["models"]) => set_models(state, body),
        (
            _,
            ["faults" | "requests" | "calls" | "reset" | "health" | "dialects" | "models"]
            | ["logs", "seed" | "faults" | "requests"],
        ) => error(405, "method not allowed"),
        _ => error(404, "no such control endpoint"),
    }
}

fn parse_object(body: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object)
}

/// `{"provider": "google-ai-studio" | "*", "times": 1, "fault": {...}}` →
/// `{"provider": …, "queued": <faults now queued for it>}`.
fn add_fault(state: &State, body: &[u8]) -> Resp {
    let Some(body) = parse_object(body) else {
        return error(400, "the body must be a JSON object");
    };
    let Some(provider) = body.get("provider").and_then(Value::as_str).filter(|p| !p.is_empty()) else {
        return error(400, "provider must be a non-empty string (or \"*\")");
    };
    let times = match body.get("times") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => n,
            _ => return error(400, "times must be a positive integer"),
        },
    };
    let fault = match body.get("fault").map(Fault::parse) {
        Some(Ok(f)) => f,
        Some(Err(message)) => return error(400, &message),
        None => return error(400, "fault is required"),
    };
    let queued = state.lock().faults.push(provider, times, fault);
    json_response(200, &json!({"provider": provider, "queued": queued}))
}

/// `{"all"?: bool, "<switch>"?: bool}` → the switches now.
fn set_dialects(state: &State, body: &[u8]) -> Resp {
    let Some(body) = parse_object(body) else {
        return error(400, "the body must be a JSON object");
    };
    let mut inner = state.lock();
    match inner.dialects.update(&body) {
        Ok(()) => json_response(200, &inner.dialects.to_json()),
        Err(message) => error(400, &message),
    }
}

/// `{"retired"?: [...], "redirects"?: {...}}` replaces the model rules → the rules now.
fn set_models(state: &State, body: &[u8]) -> Resp {
    let Some(body) = parse_object(body) else {
        return error(400, "the body must be a JSON object");
    };
    match ModelRules::parse(&body) {
        Ok(rules) => {
            let json = rules.to_json();
            state.lock().models = rules;
            json_response(200, &json)
        }
        Err(message) => error(400, &message),
    }
}

fn calls(state: &State) -> Resp {
    let inner = state.lock();
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for provider in inner.records.iter().filter_map(|r| r.provider.as_deref()) {
        *counts.entry(provider).or_default() += 1;
    }
    json_response(200, &json!(counts))
}

/// `{"count","days","seed","end","gateway_id"?}` → `{"added": N}`.
fn seed(state: &State, body: &[u8]) -> Resp {
    let Some(body) = parse_object(body) else {
        return error(400, "the body must be a JSON object");
    };
    let spec = match SeedSpec::parse(&body, &state.config.gateway_id) {
        Ok(s) => s,
        Err(message) => return error(400, &message),
    };
    if !state.lock().gateways.contains_key(&spec.gateway_id) {
        return error(404, "no such gateway");
    }
    // Built outside the lock: a million rows take a moment.
    let rows = synthesize(&spec);
    let added = rows.len();
    crate::logs::add_rows(&mut state.lock(), rows);
    json_response(200, &json!({"added": added}))
}

/// `{"after_pages": 0, "times": 1, "fault": {...}}` → `{"queued": n}`.
fn add_log_fault(state: &State, body: &[u8]) -> Resp {
    let Some(body) = parse_object(body) else {
        return error(400, "the body must be a JSON object");
    };
    let after = match body.get("after_pages") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_u64() {
            Some(n) => n,
            None => return error(400, "after_pages must be a non-negative integer"),
        },
    };
    let times = match body.get("times") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => n,
            _ => return error(400, "times must be a positive integer"),
        },
    };
    let fault = match body.get("fault").map(LogFault::parse) {
        Some(Ok(f)) => f,
        Some(Err(message)) => return error(400, &message),
        None => return error(400, "fault is required"),
    };
    let queued = state.lock().log_faults.push(after, times, fault);
    json_response(200, &json!({"queued": queued}))
}
