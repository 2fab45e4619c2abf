//! `GET /healthz`: can this Worker serve? The vars and secrets, the routing configuration, the
//! bindings, and the ledger's table; names what is missing, never a value.

use gateway_core::config::EndpointMode;
use serde::Serialize;
use worker::{Env, Response, Result};

use crate::context::Ctx;
use crate::respond::json_response;

/// The Durable Object bindings the Worker uses (wrangler.toml), by binding name and class.
const OBJECTS: [(&str, &str); 3] = [
    (crate::durable::limiter::BINDING, "ProviderLimiter"),
    (crate::durable::idempotency::BINDING, "IdempotencyStore"),
    (crate::analytics::rollups::BINDING, "AnalyticsRollup"),
];

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    /// Vars and secrets the chat route needs and does not have, by name.
    missing: Vec<&'static str>,
    /// Settings present but unusable.
    invalid: &'a [String],
    /// Problems in the routing configuration.
    config_errors: Vec<&'a str>,
    /// Bindings of wrangler.toml this Worker runs without, each with what it is for.
    missing_bindings: Vec<String>,
    /// Why the ledger cannot be written (its binding, or its table: with the command to run).
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<String>,
    /// What serves but deserves a look: models answered unavailable, skipped while marked (as
    /// this isolate has seen them; `/limits` has every provider's marks).
    warnings: Vec<String>,
    endpoint: &'static str,
    /// The AI Gateway base URL in use (not a secret: it tells the simulator from Cloudflare).
    gateway_url: &'a str,
    aliases: Vec<&'a str>,
    version: &'static str,
}

pub async fn handle(env: &Env, ctx: &Ctx) -> Result<Response> {
    let s = &ctx.settings;
    let missing = s.missing();
    let config_errors: Vec<&str> = match ctx.config.as_ref() {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(String::as_str).collect(),
    };
    let mut missing_bindings: Vec<String> = OBJECTS
        .iter()
        .filter(|(binding, _)| env.durable_object(binding).is_err())
        .map(|(binding, class)| format!("{binding} (Durable Object class {class})"))
        .collect();
    if !crate::ledger::is_bound(env) {
        missing_bindings.push("LEDGER (D1 database)".to_owned());
    }
    let ledger = crate::ledger::unavailable_reason(env).await;
    let healthy = missing.is_empty()
        && s.invalid.is_empty()
        && config_errors.is_empty()
        && missing_bindings.is_empty()
        && ledger.is_none();
    let health = Health {
        status: if healthy { "ok" } else { "misconfigured" },
        missing,
        invalid: &s.invalid,
        config_errors,
        missing_bindings,
        ledger,
        warnings: crate::durable::limiter::unavailable_models(worker::Date::now().as_millis()),
        endpoint: match s.endpoint {
            EndpointMode::Compat => "compat",
            EndpointMode::Rest => "rest",
        },
        gateway_url: match s.endpoint {
            EndpointMode::Compat => &s.gateway_url,
            EndpointMode::Rest => &s.api_url,
        },
        aliases: ctx
            .config
            .as_ref()
            .as_ref()
            .map(|c| c.aliases.iter().map(|a| a.name.as_str()).collect())
            .unwrap_or_default(),
        version: env!("CARGO_PKG_VERSION"),
    };
    json_response(if healthy { 200 } else { 503 }, serde_json::to_string(&health)?)
}
