//! `GET /healthz`: is the configuration complete? Names what is missing; never a value.

use gateway_core::aig::call::EndpointMode;
use serde::Serialize;
use worker::{Response, Result};

use crate::context::Ctx;
use crate::respond::{json_response, Decision};

#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    /// Vars and secrets the chat route needs and does not have, by name.
    missing: Vec<&'static str>,
    /// Settings present but unusable.
    invalid: &'a [String],
    /// Problems in the routing configuration.
    config_errors: Vec<&'a str>,
    endpoint: &'static str,
    /// The AI Gateway base URL in use (not a secret: it tells the simulator from Cloudflare).
    gateway_url: &'a str,
    aliases: Vec<&'a str>,
    version: &'static str,
}

pub fn handle(ctx: &Ctx) -> Result<Response> {
    let s = &ctx.settings;
    let missing = s.missing();
    let config_errors: Vec<&str> = match ctx.config.as_ref() {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(String::as_str).collect(),
    };
    let healthy = missing.is_empty() && s.invalid.is_empty() && config_errors.is_empty();
    let health = Health {
        status: if healthy { "ok" } else { "misconfigured" },
        missing,
        invalid: &s.invalid,
        config_errors,
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
    json_response(if healthy { 200 } else { 503 }, serde_json::to_string(&health)?, &Decision::default())
}
