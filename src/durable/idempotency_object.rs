//! `IdempotencyStore`, the Durable Object behind `crate::durable::idempotency`.

use std::time::Duration;

use gateway_core::idempotency::{Record, KEEP_MS};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::durable::idempotency::Op;
use crate::durable::state::JsonState;

/// `IdempotencyStore`: the Durable Object holding one key's [`Record`], deleted a day after first use.
#[durable_object(alarm)]
pub struct IdempotencyStore {
    state: State,
    record: JsonState<Record>,
}

impl DurableObject for IdempotencyStore {
    fn new(state: State, _env: Env) -> Self {
        IdempotencyStore { state, record: JsonState::new() }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let op: Op = crate::durable::state::request_json(&req).await?;
        let now = worker::Date::now().as_millis();
        let answer = self
            .record
            .update(&self.state, |record| match op {
                Op::Begin { fingerprint, lease_ms } => {
                    serde_json::to_string(&record.begin(&fingerprint, now, lease_ms))
                }
                Op::Complete { fingerprint, answer } => {
                    record.complete(&fingerprint, answer);
                    Ok(String::from("{}"))
                }
                Op::Abort { fingerprint } => {
                    record.abort(&fingerprint);
                    Ok(String::from("{}"))
                }
            })
            .await??;
        if self.state.storage().get_alarm().await?.is_none() {
            self.state.storage().set_alarm(Duration::from_millis(KEEP_MS)).await?;
        }
        Response::from_bytes(answer.into_bytes())
    }

    async fn alarm(&self) -> Result<Response> {
        // A day after first use the key is forgotten.
        self.record.clear(&self.state).await?;
        Response::empty()
    }
}
