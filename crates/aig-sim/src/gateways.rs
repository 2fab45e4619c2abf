//! The v4 gateway management API (`/ai-gateway/gateways`) and stored provider keys
//! (`/provider_configs`).
//!
//! Gateway settings are live: `cache_ttl`, `collect_logs` and `authentication` of the gateway a
//! request names decide how the inference routes treat it, and a deleted gateway answers 404.

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::clock;
use crate::config::Config;
use crate::http::{parse_query, query_param, v4_error, v4_not_found, v4_ok, Resp};
use crate::state::State;

/// A gateway object with the fields of the API schema.
#[derive(Debug, Clone, Serialize)]
pub struct Gateway {
    pub id: String,
    pub created_at: String,
    pub modified_at: String,
    pub cache_ttl: Option<u64>,
    pub cache_invalidate_on_update: bool,
    pub collect_logs: bool,
    pub rate_limiting_limit: Option<u64>,
    pub rate_limiting_interval: Option<u64>,
    pub rate_limiting_technique: Option<String>,
    pub authentication: bool,
    pub byok_only: bool,
    pub is_default: bool,
    pub log_management: Option<u64>,
    pub log_management_strategy: Option<String>,
    pub logpush: bool,
    pub logpush_public_key: Option<String>,
    pub retry_max_attempts: Option<u64>,
    pub retry_delay: Option<u64>,
    pub retry_backoff: Option<String>,
    pub zdr: bool,
    pub workers_ai_billing_mode: String,
    /// Feature objects (`dlp`, `guardrails`, `otel`, `spend_limits`, …) kept as sent.
    #[serde(flatten)]
    pub features: Map<String, Value>,
}

/// Feature fields stored and echoed without interpretation.
const FEATURE_FIELDS: &[&str] =
    &["dlp", "guardrails", "otel", "spend_limits", "store_id", "stripe", "log_classification"];

/// Fields `POST` requires (`PUT` requires the same minus `id`).
const REQUIRED: &[&str] =
    &["cache_ttl", "cache_invalidate_on_update", "collect_logs", "rate_limiting_interval", "rate_limiting_limit"];

impl Gateway {
    fn blank(id: &str, now_ms: i64) -> Self {
        let now = clock::format_rfc3339_s(now_ms);
        Self {
            id: id.to_string(),
            created_at: now.clone(),
            modified_at: now,
            cache_ttl: Some(0),
            cache_invalidate_on_update: false,
            collect_logs: true,
            rate_limiting_limit: None,
            rate_limiting_interval: None,
            rate_limiting_technique: None,
            authentication: false,
            byok_only: false,
            is_default: false,
            log_management: None,
            log_management_strategy: None,
            logpush: false,
            logpush_public_key: None,
            retry_max_attempts: None,
            retry_delay: None,
            retry_backoff: None,
            zdr: false,
            workers_ai_billing_mode: "postpaid".into(),
            features: Map::new(),
        }
    }

    /// The gateway configured on the command line. It is authenticated exactly when a gateway
    /// token is configured, so the object never claims auth that the routes do not enforce.
    pub fn initial(config: &Config, now_ms: i64) -> Self {
        let mut g = Self::blank(&config.gateway_id, now_ms);
        g.cache_ttl = Some(config.cache_ttl);
        g.authentication = !config.gateway_token.is_empty();
        g
    }

    /// Applies a create/update body after validating every field it knows.
    fn apply(&mut self, body: &Map<String, Value>) -> Result<(), String> {
        for field in REQUIRED {
            if !body.contains_key(*field) {
                return Err(format!("{field} is required"));
            }
        }
        let mut next = self.clone();
        for (key, value) in body {
            match key.as_str() {
                "cache_ttl" => next.cache_ttl = opt_uint(key, value, 0, u64::MAX)?,
                "rate_limiting_limit" => next.rate_limiting_limit = opt_uint(key, value, 0, u64::MAX)?,
                "rate_limiting_interval" => {
                    next.rate_limiting_interval = opt_uint(key, value, 0, u64::MAX)?;
                }
                "log_management" => {
                    next.log_management = opt_uint(key, value, 10_000, 10_000_000)?;
                }
                "retry_max_attempts" => next.retry_max_attempts = opt_uint(key, value, 1, 5)?,
                "retry_delay" => next.retry_delay = opt_uint(key, value, 0, 60_000)?,
                "cache_invalidate_on_update" => next.cache_invalidate_on_update = boolean(key, value)?,
                "collect_logs" => next.collect_logs = boolean(key, value)?,
                "authentication" => next.authentication = boolean(key, value)?,
                "byok_only" => next.byok_only = boolean(key, value)?,
                "logpush" => next.logpush = boolean(key, value)?,
                "zdr" => next.zdr = boolean(key, value)?,
                "rate_limiting_technique" => {
                    next.rate_limiting_technique = opt_enum(key, value, &["fixed", "sliding"])?;
                }
                "log_management_strategy" => {
                    next.log_management_strategy = opt_enum(key, value, &["STOP_INSERTING", "DELETE_OLDEST"])?;
                }
                "retry_backoff" => {
                    next.retry_backoff = opt_enum(key, value, &["constant", "linear", "exponential"])?;
                }
                "workers_ai_billing_mode" => {
                    next.workers_ai_billing_mode = opt_enum(key, value, &["postpaid", "unified"])?
                        .ok_or("workers_ai_billing_mode must be postpaid or unified")?;
                }
                "logpush_public_key" => {
                    next.logpush_public_key = match value {
                        Value::Null => None,
                        Value::String(s) if (16..=1024).contains(&s.len()) => Some(s.clone()),
                        _ => return Err("logpush_public_key must be 16 to 1024 characters or null".into()),
                    };
                }
                k if FEATURE_FIELDS.contains(&k) => {
                    next.features.insert(key.clone(), value.clone());
                }
                // `id`, read-only fields and unknown ones are ignored, as the API does.
                _ => {}
            }
        }
        *self = next;
        Ok(())
    }
}

fn opt_uint(key: &str, v: &Value, min: u64, max: u64) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        _ => v
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .map(Some)
            .ok_or(format!("{key} must be an integer between {min} and {max}, or null")),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or(format!("{key} must be a boolean"))
}

fn opt_enum(key: &str, v: &Value, allowed: &[&str]) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(Some(s.clone())),
        _ => Err(format!("{key} must be one of {} or null", allowed.join(", "))),
    }
}

/// `^[a-z0-9_]+(?:-[a-z0-9_]+)*$`, 1–64 characters.
pub fn valid_gateway_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.split('-').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// Provider slugs of the gateway runtime (`AIGatewayProviders`).
pub const PROVIDER_SLUGS: &[&str] = &[
    "workers-ai",
    "anthropic",
    "aws-bedrock",
    "azure-openai",
    "google-vertex-ai",
    "huggingface",
    "openai",
    "perplexity-ai",
    "replicate",
    "groq",
    "cohere",
    "google-ai-studio",
    "mistral",
    "grok",
    "openrouter",
    "deepseek",
    "cerebras",
    "cartesia",
    "elevenlabs",
    "adobe-firefly",
];

/// A stored provider key (BYOK). The secret is kept but never shown: only `secret_preview`.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderConfig {
    pub id: String,
    pub alias: String,
    pub default_config: bool,
    pub gateway_id: String,
    pub modified_at: String,
    pub provider_slug: String,
    pub secret_id: String,
    pub secret_preview: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_period: Option<u64>,
    #[serde(skip)]
    #[allow(dead_code)] // Stored like the real Secrets Store would; nothing reads it back.
    pub secret: Option<String>,
}

/// Reads `page` and `per_page` (max 100 here, as for gateway lists).
fn paging(raw_query: &str) -> Result<(u64, u64), &'static str> {
    let q = parse_query(raw_query);
    let page = match query_param(&q, "page") {
        None => 1,
        Some(p) => match p.parse::<u64>() {
            Ok(n) if n >= 1 => n,
            _ => return Err("page must be an integer of at least 1"),
        },
    };
    let per_page = match query_param(&q, "per_page") {
        None => 20,
        Some(p) => match p.parse::<u64>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err("per_page must be between 1 and 100"),
        },
    };
    Ok((page, per_page))
}

fn page_of<T: Serialize>(items: Vec<&T>, page: u64, per_page: u64) -> Resp {
    let total = items.len();
    let skip = usize::try_from((page - 1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let result: Vec<Value> = items
        .into_iter()
        .skip(skip)
        .take(per_page as usize)
        .map(|i| serde_json::to_value(i).unwrap_or(Value::Null))
        .collect();
    let info = json!({"page": page, "per_page": per_page, "count": result.len(), "total_count": total});
    v4_ok(200, Value::Array(result), Some(info))
}

fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn not_an_object() -> Resp {
    v4_error(400, 7001, "the request body must be a JSON object")
}

fn to_json<T: Serialize>(item: &T) -> Value {
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// `GET …/gateways`.
pub fn list(state: &State, raw_query: &str) -> Resp {
    let (page, per_page) = match paging(raw_query) {
        Ok(p) => p,
        Err(message) => return v4_error(400, 7001, message),
    };
    let q = parse_query(raw_query);
    let search = query_param(&q, "search").unwrap_or("");
    let inner = state.lock();
    let items: Vec<&Gateway> = inner.gateways.values().filter(|g| g.id.contains(search)).collect();
    page_of(items, page, per_page)
}

/// `POST …/gateways`.
pub fn create(state: &State, body: &[u8]) -> Resp {
    let Some(body) = object(body) else {
        return not_an_object();
    };
    let Some(id) = body.get("id").and_then(Value::as_str) else {
        return v4_error(400, 7001, "id is required");
    };
    if !valid_gateway_id(id) {
        return v4_error(400, 7001, "id must be 1-64 characters matching ^[a-z0-9_]+(?:-[a-z0-9_]+)*$");
    }
    let mut gateway = Gateway::blank(id, clock::now_ms());
    if let Err(message) = gateway.apply(&body) {
        return v4_error(400, 7001, &message);
    }
    let mut inner = state.lock();
    if inner.gateways.contains_key(id) {
        // Code simulator-chosen; the real conflict code is not documented.
        return v4_error(409, 7009, "a gateway with this id already exists");
    }
    let result = to_json(&gateway);
    inner.gateways.insert(id.to_string(), gateway);
    v4_ok(200, result, None)
}

/// `GET …/gateways/{id}`.
pub fn get(state: &State, id: &str) -> Resp {
    match state.lock().gateways.get(id) {
        Some(g) => v4_ok(200, to_json(g), None),
        None => v4_not_found(),
    }
}

/// `PUT …/gateways/{id}`: a full update (the required fields must all be sent).
pub fn update(state: &State, id: &str, body: &[u8]) -> Resp {
    let Some(body) = object(body) else {
        return not_an_object();
    };
    let mut inner = state.lock();
    let Some(gateway) = inner.gateways.get_mut(id) else {
        return v4_not_found();
    };
    if let Err(message) = gateway.apply(&body) {
        return v4_error(400, 7001, &message);
    }
    gateway.modified_at = clock::format_rfc3339_s(clock::now_ms());
    v4_ok(200, to_json(gateway), None)
}

/// `DELETE …/gateways/{id}`: returns the deleted gateway.
pub fn delete(state: &State, id: &str) -> Resp {
    let mut inner = state.lock();
    match inner.gateways.remove(id) {
        Some(g) => {
            inner.provider_configs.retain(|p| p.gateway_id != id);
            v4_ok(200, to_json(&g), None)
        }
        None => v4_not_found(),
    }
}

/// `GET …/gateways/{id}/provider_configs`.
pub fn list_provider_configs(state: &State, gateway: &str, raw_query: &str) -> Resp {
    let (page, per_page) = match paging(raw_query) {
        Ok(p) => p,
        Err(message) => return v4_error(400, 7001, message),
    };
    let inner = state.lock();
    if !inner.gateways.contains_key(gateway) {
        return v4_not_found();
    }
    let items: Vec<&ProviderConfig> = inner.provider_configs.iter().filter(|p| p.gateway_id == gateway).collect();
    page_of(items, page, per_page)
}

/// `POST …/gateways/{id}/provider_configs`: body `{provider_slug, alias?, default_config?,
/// secret | secret_id, rate_limit?, rate_limit_period?}`.
pub fn create_provider_config(state: &State, gateway: &str, body: &[u8]) -> Resp {
    let Some(body) = object(body) else {
        return not_an_object();
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let Some(slug) = text("provider_slug").filter(|s| PROVIDER_SLUGS.contains(s)) else {
        return v4_error(400, 7001, "provider_slug must be a known provider slug");
    };
    let alias = text("alias").unwrap_or("default");
    let secret = text("secret").map(str::to_string);
    let secret_id = text("secret_id").map(str::to_string);
    if secret.is_none() && secret_id.is_none() {
        return v4_error(400, 7001, "secret or secret_id is required");
    }
    let default_config = match body.get("default_config") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return v4_error(400, 7001, "default_config must be a boolean"),
    };
    let (rate_limit, rate_limit_period) = match (
        body.get("rate_limit").map(|v| opt_uint("rate_limit", v, 0, u64::MAX)).transpose(),
        body.get("rate_limit_period").map(|v| opt_uint("rate_limit_period", v, 0, u64::MAX)).transpose(),
    ) {
        (Ok(a), Ok(b)) => (a.flatten(), b.flatten()),
        (Err(m), _) | (_, Err(m)) => return v4_error(400, 7001, &m),
    };
    let mut inner = state.lock();
    if !inner.gateways.contains_key(gateway) {
        return v4_not_found();
    }
    if inner.provider_configs.iter().any(|p| p.gateway_id == gateway && p.provider_slug == slug && p.alias == alias) {
        return v4_error(409, 7009, "a provider config with this provider and alias already exists");
    }
    let n = state.ids.next_number();
    let preview = match &secret {
        Some(s) => format!("{}…", s.chars().take(4).collect::<String>()),
        None => "…".to_string(),
    };
    let config = ProviderConfig {
        id: format!("{:032x}", u128::from(n) * 0x9E37_79B9_7F4A_7C15 + 1),
        alias: alias.to_string(),
        default_config,
        gateway_id: gateway.to_string(),
        modified_at: clock::format_rfc3339_s(clock::now_ms()),
        provider_slug: slug.to_string(),
        secret_id: secret_id.unwrap_or_else(|| format!("{:032x}", u128::from(n) * 0xBF58_476D + 7)),
        secret_preview: preview,
        rate_limit,
        rate_limit_period,
        secret,
    };
    let result = to_json(&config);
    inner.provider_configs.push(config);
    v4_ok(200, result, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_ids() {
        for ok in ["a", "agent-gateway", "my_gw-2", &"x".repeat(64)] {
            assert!(valid_gateway_id(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "Upper", "a.b", &"x".repeat(65)] {
            assert!(!valid_gateway_id(bad), "{bad}");
        }
    }

    #[test]
    fn apply_validates() {
        let mut g = Gateway::blank("g", 0);
        let body = |v: Value| v.as_object().unwrap().clone();
        let full = json!({"cache_ttl": 60, "cache_invalidate_on_update": true, "collect_logs": false,
            "rate_limiting_interval": null, "rate_limiting_limit": null, "retry_backoff": "linear",
            "guardrails": {"enabled": true}});
        g.apply(&body(full.clone())).unwrap();
        assert_eq!(g.cache_ttl, Some(60));
        assert!(!g.collect_logs);
        assert_eq!(to_json(&g)["guardrails"], json!({"enabled": true}));
        let mut missing = full.clone();
        missing.as_object_mut().unwrap().remove("collect_logs");
        assert!(g.apply(&body(missing)).is_err());
        let mut bad = full;
        bad["retry_max_attempts"] = json!(9);
        assert!(g.apply(&body(bad)).is_err());
        assert_eq!(g.retry_max_attempts, None, "a failed update changes nothing");
    }
}
