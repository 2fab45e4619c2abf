//! `GET /limits`: each provider's limits and where it stands today (operators, and the tests
//! that check nothing is left reserved). [`budgets_today`] gathers it, for this route and for
//! the dashboard's "Budgets today" panel.

use futures_util::future::join_all;
use gateway_core::account::budgets::{BudgetsToday, ProviderToday, ScopeToday};
use gateway_core::account::scopes::ScopeFilter;
use gateway_core::config::GatewayConfig;
use gateway_core::error::{ErrorKind, GatewayError};
use serde::Serialize;
use worker::{Env, Response, Result};

use crate::context::Ctx;
use crate::durable::limiter as limits;
use crate::incoming::Incoming;
use crate::respond::{error_response, json_response, Decision};

pub async fn handle(req: &Incoming, env: &Env, ctx: &Ctx) -> Result<Response> {
    let config = match ctx.config() {
        Ok(c) => c,
        Err(err) => return error_response(&err, None),
    };
    let filter = match ScopeFilter::parse(req.query().unwrap_or("")) {
        Ok(f) => f,
        Err(err) => return error_response(&err, None),
    };
    let today = budgets_today(env, config, &filter, ctx.settings.limiter_leases).await;
    // A limiter that did not answer fails the whole answer: a row without its state must not
    // read as "nothing reserved".
    if today.has_unread_limiter() {
        return error_response(&GatewayError::new(ErrorKind::Internal, today.warnings.join("; ")), None);
    }
    #[derive(Serialize)]
    struct Body {
        unit: &'static str,
        #[serde(flatten)]
        today: BudgetsToday,
    }
    json_response(200, serde_json::to_string(&Body { unit: "USD", today })?, &Decision::default())
}

/// Every provider of `config` and every scope of the callers the ledger saw today (and of
/// `filter`'s own), with its limits and its limiter's state, all limiters asked at once. Never
/// fails: what cannot be read (the ledger's callers, a limiter) is a warning, and such a
/// limiter's row has no state.
pub async fn budgets_today(env: &Env, config: &GatewayConfig, filter: &ScopeFilter, leases: bool) -> BudgetsToday {
    let now = crate::analytics::now_ms();
    let mut warnings = Vec::new();
    let scopes = if config.scopes.is_empty() {
        Vec::new()
    } else {
        let seen = crate::ledger::callers_on(env, now.div_euclid(86_400_000), 1_000).await.unwrap_or_else(|e| {
            warnings.push(format!("the ledger could not be read ({e}): only the filter's scopes are shown"));
            Vec::new()
        });
        filter.scopes(&config.scopes, &seen)
    };
    // One future type for both (the same call): all asked at once, answers in order.
    let names: Vec<String> = config.providers.keys().cloned().chain(scopes.iter().map(|s| s.key())).collect();
    let policies = config.providers.values().map(|l| l.policy()).chain(scopes.iter().map(|s| s.policy));
    let states =
        join_all(names.iter().zip(policies).map(|(name, policy)| limits::snapshot(env, name, policy, leases))).await;
    let mut answers = names.iter().zip(states);
    let mut take = |warnings: &mut Vec<String>| match answers.next()? {
        (_, Ok(state)) => Some(state),
        (name, Err(e)) => {
            warnings.push(format!("the limiter of {name} could not be read ({e})"));
            None
        }
    };
    let providers = config.providers.iter().map(|(name, l)| ProviderToday::new(name, l, take(&mut warnings))).collect();
    let scopes = scopes.iter().map(|scope| ScopeToday::new(scope, take(&mut warnings))).collect();
    BudgetsToday { providers, scopes, warnings, read_at_ms: now }
}
