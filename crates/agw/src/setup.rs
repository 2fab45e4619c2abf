//! `agw setup`: the gateway as the Worker needs it, in one go. Create it (or update it) with
//! authentication and logs on and the configuration's cache TTL, then store the provider keys it
//! was given and does not have yet. Safe to run again: what is already right is left alone.

use std::io::Write;

use gateway_core::secret::Secret;
use serde_json::{json, Map, Value};

use crate::api::{result, Cloudflare, Http};
use crate::env::{Deployment, Environment};

/// Gateway fields that an update (a full `PUT`) carries over from the current settings.
const KEPT_FIELDS: &[&str] = &[
    "cache_invalidate_on_update",
    "rate_limiting_interval",
    "rate_limiting_limit",
    "rate_limiting_technique",
    "byok_only",
    "log_management",
    "log_management_strategy",
    "logpush",
    "logpush_public_key",
    "retry_max_attempts",
    "retry_delay",
    "retry_backoff",
    "zdr",
    "workers_ai_billing_mode",
    "dlp",
    "guardrails",
    "otel",
    "spend_limits",
];

/// The body that makes the gateway what the Worker needs, and whether anything changes.
///
/// Authentication on: only holders of the gateway token (the Worker) can spend through it. Logs
/// on: `/analytics` and `agw doctor` read them. AI Gateway's own rate limiting stays off on a
/// new gateway (the Worker enforces per-provider limits), and retries are the Worker's too.
pub fn desired(id: &str, existing: Option<&Value>, cache_ttl: u64) -> (Value, bool) {
    let ours = [("authentication", json!(true)), ("collect_logs", json!(true)), ("cache_ttl", json!(cache_ttl))];
    match existing {
        None => {
            let mut body = json!({
                "id": id,
                "cache_invalidate_on_update": true,
                "rate_limiting_interval": 0,
                "rate_limiting_limit": 0,
            });
            for (k, v) in ours {
                body[k] = v;
            }
            (body, true)
        }
        Some(current) => {
            let mut body = Map::new();
            for field in KEPT_FIELDS {
                if let Some(v) = current.get(*field) {
                    body.insert((*field).to_owned(), v.clone());
                }
            }
            for field in ["cache_invalidate_on_update", "rate_limiting_interval", "rate_limiting_limit"] {
                body.entry(field).or_insert(match field {
                    "cache_invalidate_on_update" => json!(true),
                    _ => json!(0),
                });
            }
            let changed = ours.iter().any(|(k, v)| current.get(*k) != Some(v));
            for (k, v) in ours {
                body.insert(k.to_owned(), v);
            }
            (Value::Object(body), changed)
        }
    }
}

pub fn run(
    env: &Environment,
    deployment: &Deployment,
    cache_ttl: Option<u64>,
    keys: Vec<(String, Secret)>,
    out: &mut impl Write,
) -> Result<(), String> {
    let (gateways_url, id) = env.gateway_api()?;
    let token = env
        .api_token
        .as_ref()
        .ok_or("CF_API_TOKEN must be set (a Cloudflare API token with AI Gateway Read and Edit)")?;
    let mut secrets = env.secrets();
    secrets.extend(keys.iter().map(|(_, k)| k.expose().to_owned()));
    let http = Http::new(secrets);
    let cf = Cloudflare { http: &http, gateways_url, token: token.expose().to_owned() };
    let cache_ttl = cache_ttl.unwrap_or(deployment.cache_ttl);
    let say = |out: &mut dyn Write, line: String| writeln!(out, "{}", http.clean(&line)).map_err(|e| e.to_string());

    let current = cf.call("GET", &format!("/{id}"), None)?;
    let existing = match current.status {
        200 => Some(result(&current).ok_or_else(|| format!("reading gateway `{id}`: {}", current.message()))?),
        404 => None,
        401 | 403 => {
            return Err(format!(
                "the Cloudflare API refused CF_API_TOKEN ({}): it needs AI Gateway Read and Edit",
                current.message()
            ))
        }
        _ => return Err(format!("reading gateway `{id}`: {}", current.message())),
    };
    let (body, changed) = desired(id, existing.as_ref(), cache_ttl);
    let settings = format!("authentication on, logs on, cache TTL {cache_ttl} s");
    match (&existing, changed) {
        (None, _) => {
            let r = cf.call("POST", "", Some(&body))?;
            result(&r).ok_or_else(|| format!("creating gateway `{id}`: {}", r.message()))?;
            say(out, format!("gateway {id}: created ({settings})"))?;
        }
        (Some(_), true) => {
            let r = cf.call("PUT", &format!("/{id}"), Some(&body))?;
            result(&r).ok_or_else(|| format!("updating gateway `{id}`: {}", r.message()))?;
            say(out, format!("gateway {id}: updated ({settings})"))?;
        }
        (Some(_), false) => say(out, format!("gateway {id}: already as needed ({settings})"))?,
    }

    let stored = cf.call("GET", &format!("/{id}/provider_configs?per_page=100"), None)?;
    let stored = result(&stored).ok_or_else(|| format!("listing stored keys: {}", stored.message()))?;
    let have = |slug: &str| {
        stored.as_array().into_iter().flatten().find(|c| {
            c["provider_slug"] == slug && c.get("alias").and_then(Value::as_str).unwrap_or("default") == "default"
        })
    };
    if keys.is_empty() {
        say(
            out,
            "keys: none given (set OPENAI_API_KEY etc., or pipe `provider=key` lines with --keys-from-stdin)".into(),
        )?;
    }
    for (slug, key) in &keys {
        if let Some(existing) = have(slug) {
            let preview = existing.get("secret_preview").and_then(Value::as_str).unwrap_or("…");
            say(out, format!("key {slug}: already stored ({preview}), left as it is (replace it in the dashboard)"))?;
            continue;
        }
        let body = json!({"provider_slug": slug, "alias": "default", "default_config": true, "secret": key.expose()});
        let r = cf.call("POST", &format!("/{id}/provider_configs"), Some(&body))?;
        let created = result(&r).ok_or_else(|| format!("storing the {slug} key: {}", r.message()))?;
        let preview = created.get("secret_preview").and_then(Value::as_str).unwrap_or("…");
        say(out, format!("key {slug}: stored ({preview})"))?;
    }
    say(
        out,
        "next: the Worker needs the gateway's authentication token as CF_AIG_TOKEN (create it under the \
         gateway's Authentication settings, then `npx wrangler secret put CF_AIG_TOKEN`); check with `agw doctor`"
            .into(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_gateway_has_auth_logs_and_the_ttl() {
        let (body, changed) = desired("gw", None, 3600);
        assert!(changed);
        assert_eq!(body["id"], "gw");
        assert_eq!(body["authentication"], true);
        assert_eq!(body["collect_logs"], true);
        assert_eq!(body["cache_ttl"], 3600);
        for required in ["cache_invalidate_on_update", "rate_limiting_interval", "rate_limiting_limit"] {
            assert!(body.get(required).is_some(), "{required}");
        }
    }

    #[test]
    fn an_update_keeps_other_settings() {
        let current = json!({"id": "gw", "created_at": "x", "cache_ttl": 0, "collect_logs": true, "authentication": false,
            "cache_invalidate_on_update": false, "rate_limiting_interval": 60, "rate_limiting_limit": 100,
            "retry_backoff": "linear", "spend_limits": {"enabled": true}});
        let (body, changed) = desired("gw", Some(&current), 600);
        assert!(changed);
        assert_eq!(body["authentication"], true);
        assert_eq!(body["cache_ttl"], 600);
        assert_eq!(body["rate_limiting_limit"], 100);
        assert_eq!(body["retry_backoff"], "linear");
        assert_eq!(body["spend_limits"], json!({"enabled": true}));
        assert!(body.get("id").is_none() && body.get("created_at").is_none());
        let done = json!({"cache_ttl": 600, "collect_logs": true, "authentication": true});
        assert!(!desired("gw", Some(&done), 600).1, "nothing to change");
    }
}
