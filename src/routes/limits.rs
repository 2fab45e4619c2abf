//! `GET /limits`: each provider's limits and where it stands today (operators, and the tests
//! that check nothing is left reserved).

use gateway_core::account::pricing::Usd;
use serde::Serialize;
use worker::{Env, Response, Result};

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

pub async fn handle(env: &Env, ctx: &Ctx) -> Result<Response> {
    let config = match ctx.config() {
        Ok(c) => c,
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
    #[derive(Serialize)]
    struct Body<'a> {
        unit: &'static str,
        providers: Vec<ProviderState<'a>>,
    }
    json_response(200, serde_json::to_string(&Body { unit: "USD", providers })?, &Decision::default())
}
