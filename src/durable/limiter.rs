//! The Worker's side of the per-provider limiter: one Durable Object per provider
//! (`LIMITER` binding, named by the provider slug), asked to reserve, settle and release.

use gateway_core::account::breaker::{BreakerPolicy, Health};
use gateway_core::account::limits::{Policy, Refusal, Snapshot};
use gateway_core::account::pricing::Usd;
use gateway_core::engine::Books;
use serde::{Deserialize, Serialize};
use worker::{Env, Method, Request, RequestInit, Stub};

pub const BINDING: &str = "LIMITER";

/// A held reservation. It must end in [`Reservation::close`]; one that is dropped is released
/// by the limiter after its time-to-live.
#[derive(Debug)]
pub struct Reservation {
    stub: Stub,
    id: String,
}

/// The limiter's answer, as sent over the Durable Object's fetch interface.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Reserve {
        id: String,
        amount: Usd,
        policy: Policy,
    },
    Settle {
        id: String,
        actual: Option<Usd>,
        #[serde(default)]
        health: Health,
    },
    Release {
        id: String,
        #[serde(default)]
        health: Health,
    },
    /// Today's state; `breaker` is the provider's configured circuit breaker (shown even before
    /// any attempt has given it to the limiter).
    Snapshot {
        #[serde(default)]
        breaker: Option<BreakerPolicy>,
    },
}

#[derive(Serialize, Deserialize)]
pub struct ReserveAnswer {
    pub refused: Option<Refusal>,
}

fn stub(env: &Env, provider: &str) -> worker::Result<Stub> {
    env.durable_object(BINDING)?.id_from_name(provider)?.get_stub()
}

async fn call(stub: &Stub, op: &Op) -> worker::Result<worker::Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(op)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://limiter/op", &init)?).await
}

/// A unique id for a reservation.
fn reservation_id() -> String {
    let now = worker::Date::now().as_millis();
    let noise = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
    format!("{now:x}-{noise:x}")
}

/// Reserves one request of `provider`'s rate limit and `worst_case` of its daily budget.
/// A limiter that cannot be reached refuses (fail closed): spending without a budget check is
/// exactly what the limiter exists to prevent.
pub async fn reserve(env: &Env, provider: &str, policy: Policy, worst_case: Usd) -> Result<Reservation, Refusal> {
    let unavailable = |e: worker::Error| Refusal {
        rate_limited: false,
        over_budget: false,
        circuit_open: false,
        retry_after_secs: 1,
        message: format!("the limiter for {provider} is unavailable ({e})"),
    };
    let stub = stub(env, provider).map_err(unavailable)?;
    let id = reservation_id();
    let op = Op::Reserve { id: id.clone(), amount: worst_case, policy };
    let mut response = call(&stub, &op).await.map_err(unavailable)?;
    let answer: ReserveAnswer = read_json(&mut response).await.map_err(unavailable)?;
    match answer.refused {
        Some(refusal) => Err(refusal),
        None => Ok(Reservation { stub, id }),
    }
}

impl Reservation {
    /// Ends the reservation as the books say: released, settled with a cost, or settled at the
    /// worst case it reserved; `health` is what the attempt said of the provider (its breaker).
    pub async fn close(self, books: Books, health: Health) {
        let op = match books.settle_amount() {
            None => Op::Release { id: self.id, health },
            Some(actual) => Op::Settle { id: self.id, actual, health },
        };
        if let Err(e) = call(&self.stub, &op).await {
            worker::console_error!("limiter update failed (the reservation expires on its own): {e}");
        }
    }
}

/// Today's state of `provider`'s limiter.
pub async fn snapshot(env: &Env, provider: &str, breaker: Option<BreakerPolicy>) -> worker::Result<Snapshot> {
    let stub = stub(env, provider)?;
    read_json(&mut call(&stub, &Op::Snapshot { breaker }).await?).await
}

/// JSON through serde_json, not the runtime's JS objects: amounts stay exact decimal digits.
pub async fn read_json<T: serde::de::DeserializeOwned>(response: &mut worker::Response) -> worker::Result<T> {
    Ok(serde_json::from_str(&response.text().await?)?)
}
