//! `GET /limits`: each provider's limits and where it stands today (operators, and the tests
//! that check nothing is left reserved).

use gateway_core::account::pricing::Usd;
use gateway_core::account::scopes::ScopeFilter;
use serde::Serialize;
use worker::{Env, Request, Response, Result};

use crate::context::Ctx;
use crate::durable::limiter as limits;
use crate::respond::{error_response, json_response, Decision};

#[derive(Serialize)]
struct ProviderState<'a> {
    provider: &'a str,
    requests_per_minute: u32,
    daily_budget_usd: Usd,
    #[serde(flatten)]
    today: gateway_core::account::limits::Snapshot,
}

/// One scope (repository, owner, agent) and where it stands today.
#[derive(Serialize)]
struct ScopeState {
    scope: &'static str,
    name: String,
    /// `null`: no rate limit of its own.
    requests_per_minute: Option<u32>,
    daily_budget_usd: Usd,
    #[serde(flatten)]
    today: gateway_core::account::limits::Snapshot,
}

pub async fn handle(req: &Request, env: &Env, ctx: &Ctx) -> Result<Response> {
    let config = match ctx.config() {
        Ok(c) => c,
        Err(err) => return error_response(&err, None),
    };
    let raw_url = req.inner().url();
    let filter = match ScopeFilter::parse(gateway_core::request::url::query(&raw_url).unwrap_or("")) {
        Ok(f) => f,
        Err(err) => return error_response(&err, None),
    };
    let mut providers = Vec::new();
    for (name, limits) in &config.providers {
        let today = limits::snapshot(env, name, limits.breaker).await?;
        providers.push(ProviderState {
            provider: name,
            requests_per_minute: limits.requests_per_minute,
            daily_budget_usd: limits.daily_budget,
            today,
        });
    }
    // Scopes: those of the callers the ledger saw today, and the filter's own.
    let mut warnings = Vec::new();
    let mut scopes = Vec::new();
    if !config.scopes.is_empty() {
        let today = crate::analytics::now_ms().div_euclid(86_400_000);
        let seen = crate::ledger::callers_on(env, today, 1_000).await.unwrap_or_else(|e| {
            warnings.push(format!("the ledger could not be read ({e}): only the filter's scopes are shown"));
            Vec::new()
        });
        for scope in filter.scopes(&config.scopes, &seen) {
            let today = limits::snapshot(env, &scope.key(), None).await?;
            scopes.push(ScopeState {
                scope: scope.kind.name(),
                name: scope.name,
                requests_per_minute: (scope.policy.requests_per_minute != u32::MAX)
                    .then_some(scope.policy.requests_per_minute),
                daily_budget_usd: scope.policy.daily_budget,
                today,
            });
        }
    }
    #[derive(Serialize)]
    struct Body<'a> {
        unit: &'static str,
        providers: Vec<ProviderState<'a>>,
        scopes: Vec<ScopeState>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    }
    let body = Body { unit: "USD", providers, scopes, warnings };
    json_response(200, serde_json::to_string(&body)?, &Decision::default())
}
