//! `GET /limits`: each provider's limits and where it stands today, and the scopes the reader may
//! see (operators, agents checking their own budgets, and the tests that check nothing is left
//! reserved). [`budgets_today`] gathers it, for this route and for the dashboard's "Budgets
//! today" panel, within the request's subrequest budget.

use futures_util::future::join_all;
use gateway_core::account::budgets::{BudgetsToday, ProviderToday, ScopeToday};
use gateway_core::account::listing::{self, Seen, Viewer};
use gateway_core::account::scopes::ScopeFilter;
use gateway_core::config::GatewayConfig;
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::request::authenticate::Identity;
use gateway_core::subrequests::Subrequests;
use gateway_core::time;
use serde::Serialize;
use worker::{Env, Response, Result};

use crate::context::Ctx;
use crate::durable::limiter as limits;
use crate::incoming::Incoming;
use crate::respond::{error_response, json_response};

/// Most of today's callers read from the ledger to list their scopes.
const MAX_CALLERS: u32 = 1_000;

pub async fn handle(req: &Incoming, env: &Env, ctx: &Ctx, identity: Option<Identity<'_>>) -> Result<Response> {
    let config = match ctx.config() {
        Ok(c) => c,
        Err(err) => return error_response(&err, None),
    };
    let filter = match ScopeFilter::parse(req.query().unwrap_or("")) {
        Ok(f) => f,
        Err(err) => return error_response(&err, None),
    };
    let viewer = match &identity {
        Some(Identity::Scoped { token, .. }) => Viewer::Token(token),
        Some(Identity::Agent) => Viewer::Everyone,
        // The route table authenticates this route; if it ever did not, show nothing.
        None => {
            return error_response(&GatewayError::new(ErrorKind::Internal, "/limits was reached unauthenticated"), None)
        }
    };
    let mut budget = Subrequests::new(ctx.settings.subrequest_limit);
    let leasing = limits::Leasing::of(&ctx.settings);
    let today = match budgets_today(env, config, &filter, viewer, leasing, &mut budget).await {
        Ok(today) => today,
        Err(err) => return error_response(&err, None),
    };
    // A limiter that did not answer fails the whole answer: a row without its state must not
    // read as "nothing reserved". The deployment's fault, as on the chat route: a 503.
    if today.has_unread_limiter() {
        return error_response(&GatewayError::new(ErrorKind::LimiterUnavailable, today.warnings.join("; ")), None);
    }
    #[derive(Serialize)]
    struct Body {
        unit: &'static str,
        #[serde(flatten)]
        today: BudgetsToday,
    }
    let mut response = json_response(200, serde_json::to_string(&Body { unit: "USD", today })?)?;
    response.headers_mut().set("x-limits-subrequests", &budget.header())?;
    Ok(response)
}

/// Every provider of `config` and the scopes `viewer` may see that `filter` keeps (those of the
/// callers the ledger saw today, and the filter's own), with their limits and state: a scope
/// used today from its limiter (all asked at once), any other from its configuration, without a
/// call. Within `budget`: the ledger's callers, then every provider, then the used scopes in
/// order; what does not fit is left out and said among the warnings. Fails only for a filter
/// outside a scoped token's scopes (403); what cannot be read (the ledger's callers, a limiter)
/// is a warning, and such a limiter's row has no state.
pub async fn budgets_today(
    env: &Env,
    config: &GatewayConfig,
    filter: &ScopeFilter,
    viewer: Viewer<'_>,
    leasing: limits::Leasing,
    budget: &mut Subrequests,
) -> std::result::Result<BudgetsToday, GatewayError> {
    let now = crate::analytics::now_ms();
    let day = now.div_euclid(time::MS_PER_DAY);
    let mut warnings = Vec::new();
    let listed = if config.scopes.is_empty() {
        Vec::new()
    } else {
        let (callers, complete) = if budget.take_all(1) {
            match crate::ledger::callers_on(env, day, MAX_CALLERS).await {
                Ok(callers) => {
                    let complete = callers.len() < MAX_CALLERS as usize;
                    (callers, complete)
                }
                Err(e) => {
                    warnings.push(format!("the ledger could not be read ({e}): only the filter's scopes are shown"));
                    (Vec::new(), false)
                }
            }
        } else {
            budget.leave_out("the ledger's callers of today were not read".to_owned());
            (Vec::new(), false)
        };
        listing::list(&config.scopes, filter, viewer, Seen { callers: &callers, complete })?
    };
    let (providers_asked, listed) = listing::within(budget, config.providers.len(), listed);

    // One future type for both (the same call): all asked at once, answers in order.
    let providers: Vec<_> = config.providers.iter().take(providers_asked).collect();
    let asked: Vec<_> = listed.iter().filter(|l| l.ask).map(|l| &l.scope).collect();
    let names: Vec<String> =
        providers.iter().map(|(name, _)| (*name).clone()).chain(asked.iter().map(|s| s.key())).collect();
    let policies = providers.iter().map(|(_, l)| **l).chain(asked.iter().map(|s| s.policy));
    let states =
        join_all(names.iter().zip(policies).map(|(name, policy)| limits::snapshot(env, name, policy, leasing))).await;
    let mut answers = names.iter().zip(states);
    let mut take = |warnings: &mut Vec<String>| match answers.next()? {
        (_, Ok(state)) => Some(state),
        (name, Err(e)) => {
            warnings.push(format!("the limiter of {name} could not be read ({e})"));
            None
        }
    };
    let providers = providers.iter().map(|(name, l)| ProviderToday::new(name, l, take(&mut warnings))).collect();
    let scopes = listed
        .iter()
        .map(|l| {
            let state = if l.ask { take(&mut warnings) } else { Some(listing::idle(time::format_day(day))) };
            ScopeToday::new(&l.scope, state)
        })
        .collect();
    warnings.extend(budget.drain_left_out());
    Ok(BudgetsToday { providers, scopes, warnings, read_at_ms: now })
}
