//! `ProviderLimiter`: the Durable Object that holds one provider's rate-limit window, today's
//! spend and its open reservations (`gateway_core::account::limits::LimiterState`). A Durable Object runs
//! one event at a time and its storage writes are confirmed before its answer leaves, so every
//! reserve sees every earlier reserve and settle: the budget holds under any concurrency.

use gateway_core::account::limits::LimiterState;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::durable::limiter::{LimiterAnswer, Op};
use crate::durable::state::JsonState;

#[durable_object(fetch)]
pub struct ProviderLimiter {
    state: State,
    limiter: JsonState<LimiterState>,
}

impl DurableObject for ProviderLimiter {
    fn new(state: State, _env: Env) -> Self {
        ProviderLimiter { state, limiter: JsonState::new() }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let op: Op = crate::durable::state::request_json(&req).await?;
        let now = worker::Date::now().as_millis();
        let answer = self
            .limiter
            .update(&self.state, |limiter| match op {
                Op::Reserve { id, model, amount, policy, name, lease } => {
                    let (reserved, lease) =
                        limiter.reserve_with_report(&id, model.as_deref(), amount, policy, lease.as_ref(), now);
                    let refused = reserved.err();
                    serde_json::to_string(&LimiterAnswer { refused, lease, ..figures(limiter, &name) })
                }
                Op::Sync { sync, policy, name } => {
                    let lease = Some(limiter.sync_lease(&sync, policy, now));
                    serde_json::to_string(&LimiterAnswer { lease, ..figures(limiter, &name) })
                }
                Op::Settle { id, actual, health, name } => {
                    limiter.settle(&id, actual, health, now);
                    serde_json::to_string(&figures(limiter, &name))
                }
                Op::Release { id, health } => {
                    limiter.release(&id, health, now);
                    Ok(String::from("{}"))
                }
                Op::Cancel { id } => {
                    limiter.cancel(&id, now);
                    Ok(String::from("{}"))
                }
                Op::MarkUnavailable { model, reason, name } => {
                    limiter.mark_unavailable(&model, &reason, now);
                    serde_json::to_string(&figures(limiter, &name))
                }
                Op::Snapshot { breaker, lease, name } => {
                    let lease = lease.map(|(sync, policy)| limiter.sync_lease(&sync, policy, now));
                    let state = Some(limiter.snapshot_with(breaker, now));
                    serde_json::to_string(&LimiterAnswer { lease, state, ..figures(limiter, &name) })
                }
            })
            .await??;
        Response::from_bytes(answer.into_bytes())
    }
}

/// What every answer that changed the books says: the alerts the operation crossed, the budget
/// left and the spend share.
fn figures(limiter: &mut LimiterState, name: &str) -> LimiterAnswer {
    LimiterAnswer {
        alerts: limiter.take_alerts(name),
        remaining: Some(limiter.remaining()),
        used_share: limiter.used_share(),
        ..LimiterAnswer::default()
    }
}
