//! The Worker's side of the per-provider limiter: one Durable Object per provider
//! (`LIMITER` binding, named by the provider slug), asked to reserve, settle and release.

use futures_util::future::join_all;
use gateway_core::account::alerts::Alert;
use gateway_core::account::breaker::{BreakerPolicy, Health};
use gateway_core::account::limits::{Policy, Refusal, Snapshot};
use gateway_core::account::pricing::Usd;
use gateway_core::account::scopes::Scope;
use gateway_core::engine::Books;
use serde::{Deserialize, Serialize};
use worker::{Env, Method, Request, RequestInit, Stub};

pub const BINDING: &str = "LIMITER";

/// A held reservation: in the provider's limiter and in every scope's the request falls under.
/// It must end in [`Reservation::close`]; one that is dropped is released by each limiter after
/// its time-to-live.
pub struct Reservation {
    held: Vec<(Stub, String, String)>,
    env: Env,
    /// What was reserved: a settle "at the worst case" says this amount, so that a reservation
    /// which expired meanwhile (a stream longer than its time-to-live) is still charged it.
    worst_case: Usd,
}

/// The limiter's answer, as sent over the Durable Object's fetch interface.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Reserve {
        id: String,
        amount: Usd,
        policy: Policy,
        /// The limiter's own name (a provider or a scope key), for its alerts.
        #[serde(default)]
        name: String,
    },
    Settle {
        id: String,
        actual: Option<Usd>,
        #[serde(default)]
        health: Health,
        #[serde(default)]
        name: String,
    },
    Release {
        id: String,
        #[serde(default)]
        health: Health,
    },
    /// The attempt never started (another limiter refused it): released and uncounted.
    Cancel { id: String },
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
    /// Thresholds of the daily budget this reserve crossed (100%: the budget refused).
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// What is left of today's budget after this reservation, and today's spend as a share.
    #[serde(default)]
    pub remaining: Usd,
    #[serde(default)]
    pub used_share: f64,
}

#[derive(Serialize, Deserialize, Default)]
pub struct SettleAnswer {
    #[serde(default)]
    pub alerts: Vec<Alert>,
}

/// What a reserve came to, besides the reservation: alerts to post, and the provider's budget.
pub struct Reserved {
    pub result: Result<Reservation, Refusal>,
    pub alerts: Vec<Alert>,
    /// The provider's budget left after this reservation (`None` when its limiter did not answer).
    pub remaining: Option<Usd>,
    pub used_share: Option<f64>,
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

/// Reserves one request of `provider`'s rate limit and `worst_case` of its daily budget, and the
/// same in each of `scopes` (the caller's repository, owner, agent), all at once and all or
/// nothing: when any refuses, what was granted is released. A scope's refusal ends the request
/// (`Refusal::ends_request`); the provider's moves it to the next target.
///
/// A limiter that cannot be reached refuses (fail closed): spending without a budget check is
/// exactly what the limiter exists to prevent.
pub async fn reserve(env: &Env, provider: &str, policy: Policy, scopes: &[Scope], worst_case: Usd) -> Reserved {
    let id = reservation_id();
    let mut asks = vec![reserve_one(env, provider.to_owned(), policy, &id, worst_case)];
    asks.extend(scopes.iter().map(|s| reserve_one(env, s.key(), s.policy, &id, worst_case)));
    let answers = join_all(asks).await;
    let mut held = Vec::with_capacity(answers.len());
    let mut refused: Option<Refusal> = None;
    let (mut alerts, mut remaining, mut used_share) = (Vec::new(), None, None);
    for (i, (name, answer)) in answers.into_iter().enumerate() {
        match answer {
            Ok((stub, answer)) => {
                alerts.extend(answer.alerts);
                if i == 0 {
                    (remaining, used_share) = (Some(answer.remaining), Some(answer.used_share));
                }
                match answer.refused {
                    None => held.push((stub, id.clone(), name)),
                    Some(refusal) if i == 0 => refused = refused.or(Some(refusal)),
                    // A scope's refusal wins over the provider's: it is the caller's own limit.
                    Some(refusal) => {
                        if refused.as_ref().is_none_or(|r| r.ends_request.is_none()) {
                            let err = scopes[i - 1].refused(&refusal);
                            refused = Some(Refusal { ends_request: Some(err), ..refusal });
                        }
                    }
                }
            }
            Err(refusal) => {
                if refused.as_ref().is_none_or(|r| r.ends_request.is_none()) {
                    refused = Some(refusal);
                }
            }
        }
    }
    let result = match refused {
        None => Ok(Reservation { held, env: env.clone(), worst_case }),
        Some(refusal) => {
            // All or nothing: what was granted is taken back, rate-window slot included.
            let cancels = held.into_iter().map(|(stub, id, _)| async move {
                if let Err(e) = call(&stub, &Op::Cancel { id }).await {
                    worker::console_error!("limiter cancel failed (the reservation expires on its own): {e}");
                }
            });
            join_all(cancels).await;
            Err(refusal)
        }
    };
    Reserved { result, alerts, remaining, used_share }
}

/// One limiter's answer, or the refusal that stands for a limiter that could not be asked.
async fn reserve_one(
    env: &Env,
    name: String,
    policy: Policy,
    id: &str,
    amount: Usd,
) -> (String, Result<(Stub, ReserveAnswer), Refusal>) {
    let unavailable = |e: worker::Error| Refusal {
        rate_limited: false,
        over_budget: false,
        circuit_open: false,
        ends_request: None,
        retry_after_secs: 1,
        message: format!("the limiter for {name} is unavailable ({e})"),
    };
    let stub = match stub(env, &name) {
        Ok(stub) => stub,
        Err(e) => return (name.clone(), Err(unavailable(e))),
    };
    let op = Op::Reserve { id: id.to_owned(), amount, policy, name: name.clone() };
    let asked = async { read_json::<ReserveAnswer>(&mut call(&stub, &op).await?).await };
    match asked.await {
        Ok(answer) => (name, Ok((stub, answer))),
        Err(e) => {
            // The limiter may have granted it and the answer been lost: take it back (an
            // unknown id is nothing to cancel) rather than hold the budget until it expires.
            let _ = call(&stub, &Op::Cancel { id: id.to_owned() }).await;
            let refusal = unavailable(e);
            (name, Err(refusal))
        }
    }
}

impl Reservation {
    /// Ends the reservation as the books say, in every limiter that holds it: released, settled
    /// with a cost, or settled at the worst case it reserved; `health` is what the attempt said
    /// of the provider (its breaker; scopes have none). Thresholds the settle crossed are posted
    /// to the alert webhook (this already runs after the response).
    pub async fn close(self, books: Books, health: Health) {
        let worst_case = self.worst_case;
        let closes = self.held.into_iter().map(|(stub, id, name)| async move {
            let op = match books {
                Books::Release => Op::Release { id, health },
                _ => Op::Settle { id, actual: Some(books.charge(worst_case)), health, name },
            };
            match call(&stub, &op).await {
                Ok(mut response) => read_json::<SettleAnswer>(&mut response).await.unwrap_or_default().alerts,
                Err(e) => {
                    worker::console_error!("limiter update failed (the reservation expires on its own): {e}");
                    Vec::new()
                }
            }
        });
        let alerts: Vec<Alert> = join_all(closes).await.into_iter().flatten().collect();
        crate::alerts::post(&self.env, alerts).await;
    }
}

/// Today's state of `provider`'s limiter.
pub async fn snapshot(env: &Env, provider: &str, breaker: Option<BreakerPolicy>) -> worker::Result<Snapshot> {
    let stub = stub(env, provider)?;
    read_json(&mut call(&stub, &Op::Snapshot { breaker }).await?).await
}

/// JSON through serde_json, not the runtime's JS objects: amounts stay exact decimal digits.
pub async fn read_json<T: serde::de::DeserializeOwned>(response: &mut worker::Response) -> worker::Result<T> {
    let body = match response.body() {
        worker::ResponseBody::Body(bytes) => bytes.clone(),
        worker::ResponseBody::Empty => Vec::new(),
        worker::ResponseBody::Stream(stream) => {
            let whole = worker::web_sys::Response::new_with_opt_readable_stream(Some(stream))?;
            crate::aig::fetch::whole_body(whole.array_buffer()).await?
        }
    };
    Ok(serde_json::from_slice(&body)?)
}

/// A Durable Object's request body as JSON, in one read.
pub async fn request_json<T: serde::de::DeserializeOwned>(req: &Request) -> worker::Result<T> {
    Ok(serde_json::from_slice(&crate::aig::fetch::whole_body(req.inner().array_buffer()).await?)?)
}
