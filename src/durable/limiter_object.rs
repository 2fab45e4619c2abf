//! `ProviderLimiter`: the Durable Object that holds one limiter's rate-limit window, today's
//! spend, its open reservations and its isolates' leases (`gateway_core::account::limits`). A
//! Durable Object runs one event at a time and its storage writes are confirmed before its
//! answer leaves, so every operation sees every earlier one: the budget holds under any
//! concurrency. What an operation does is the core's (`LimiterState::handle`); this stores it.

use gateway_core::account::limits::ops::Op;
use gateway_core::account::limits::LimiterState;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

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
        let answer =
            self.limiter.update(&self.state, |limiter| serde_json::to_string(&limiter.handle(op, now))).await??;
        Response::from_bytes(answer.into_bytes())
    }
}
