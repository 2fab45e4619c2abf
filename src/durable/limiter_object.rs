//! `ProviderLimiter`: the Durable Object that holds one provider's rate-limit window, today's
//! spend and its open reservations (`gateway_core::account::limits::LimiterState`). A Durable Object runs
//! one event at a time and its storage writes are confirmed before its answer leaves, so every
//! reserve sees every earlier reserve and settle: the budget holds under any concurrency.

use gateway_core::account::limits::LimiterState;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::durable::limiter::{Op, ReserveAnswer, SettleAnswer, SnapshotAnswer, SyncAnswer};
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
        let op: Op = crate::durable::limiter::request_json(&req).await?;
        let now = worker::Date::now().as_millis();
        let answer = self
            .limiter
            .update(&self.state, |limiter| match op {
                Op::Reserve { id, amount, policy, name, lease } => {
                    let refused = limiter.reserve(&id, amount, policy, now).err();
                    let lease = lease.map(|sync| limiter.sync_lease(&sync, policy, now));
                    serde_json::to_string(&ReserveAnswer {
                        refused,
                        alerts: limiter.take_alerts(&name),
                        remaining: limiter.remaining(),
                        used_share: limiter.used_share(),
                        lease,
                    })
                }
                Op::Sync { sync, policy, name } => {
                    let lease = limiter.sync_lease(&sync, policy, now);
                    serde_json::to_string(&SyncAnswer {
                        lease,
                        alerts: limiter.take_alerts(&name),
                        remaining: limiter.remaining(),
                        used_share: limiter.used_share(),
                    })
                }
                Op::Settle { id, actual, health, name } => {
                    limiter.settle(&id, actual, health, now);
                    serde_json::to_string(&SettleAnswer {
                        alerts: limiter.take_alerts(&name),
                        remaining: Some(limiter.remaining()),
                        used_share: limiter.used_share(),
                    })
                }
                Op::Release { id, health } => {
                    limiter.release(&id, health, now);
                    Ok(String::from("{}"))
                }
                Op::Cancel { id } => {
                    limiter.cancel(&id, now);
                    Ok(String::from("{}"))
                }
                Op::Snapshot { breaker, lease, name } => {
                    let lease = lease.map(|(sync, policy)| limiter.sync_lease(&sync, policy, now));
                    serde_json::to_string(&SnapshotAnswer {
                        alerts: limiter.take_alerts(&name),
                        lease,
                        remaining: limiter.remaining(),
                        used_share: limiter.used_share(),
                        state: limiter.snapshot_with(breaker, now),
                    })
                }
            })
            .await??;
        Response::from_bytes(answer.into_bytes())
    }
}
