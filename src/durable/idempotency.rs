//! Idempotent requests: one Durable Object per key (`IDEMPOTENCY` binding) keeps the first
//! answer (`gateway_core::idempotency::Record`); repeats get it instead of spending again. This
//! is the client; the object is `idempotency_object`.

use std::time::Duration;

use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::idempotency::{Begin, IdempotencyKey, StoredAnswer};
use serde::{Deserialize, Serialize};
use worker::{Env, Method, Request, RequestInit, Response, ResponseBuilder, Stub};

use crate::durable::limiter::read_json;

pub const BINDING: &str = "IDEMPOTENCY";
/// How often a repeat asks whether the first run has finished.
const POLL: Duration = Duration::from_millis(200);

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    Begin { fingerprint: String, lease_ms: u64 },
    Complete { fingerprint: String, answer: StoredAnswer },
    Abort { fingerprint: String },
}

/// A request that holds its key: it must end in `complete` or `abort` (a guard that is dropped
/// is freed when its lease runs out).
pub struct Claim {
    stub: Stub,
    fingerprint: String,
}

/// What the caller of [`claim`] does next.
pub enum Claimed {
    /// Run the request.
    Run(Claim),
    /// Answer with this replay.
    Replay(Response),
}

async fn call(stub: &Stub, op: &Op) -> worker::Result<worker::Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(op)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://idempotency/op", &init)?).await
}

/// Claims `key` for this request, waiting (until `deadline`, ms since the epoch) while an
/// identical request is running.
pub async fn claim(
    env: &Env,
    key: &IdempotencyKey,
    lease_ms: u64,
    deadline: u64,
) -> std::result::Result<Claimed, GatewayError> {
    let unavailable = |e: worker::Error| {
        GatewayError::new(
            ErrorKind::Internal,
            format!("The idempotency store is unavailable ({e}); retry the request."),
        )
    };
    let namespace = env.durable_object(BINDING).map_err(|_| {
        GatewayError::new(
            ErrorKind::Configuration,
            format!(
                "Idempotent requests need the Durable Object binding `{BINDING}` (class IdempotencyStore), \
                 which this Worker does not have (see wrangler.toml)."
            ),
        )
    })?;
    let stub = namespace.id_from_name(&key.object_name).and_then(|id| id.get_stub()).map_err(unavailable)?;
    loop {
        let op = Op::Begin { fingerprint: key.fingerprint.clone(), lease_ms };
        let begin: Begin = read_json(&mut call(&stub, &op).await.map_err(unavailable)?).await.map_err(unavailable)?;
        match begin {
            Begin::Proceed => return Ok(Claimed::Run(Claim { stub, fingerprint: key.fingerprint.clone() })),
            Begin::Replay { answer } => return Ok(Claimed::Replay(replay(answer))),
            Begin::Mismatch => {
                return Err(GatewayError::new(
                    ErrorKind::Conflict,
                    "This Idempotency-Key was already used for a different request body.",
                ))
            }
            Begin::InFlight if worker::Date::now().as_millis() + POLL.as_millis() as u64 >= deadline => {
                return Err(GatewayError::new(
                    ErrorKind::Conflict,
                    "An identical request with this idempotency key is still running; retry later.",
                ))
            }
            Begin::InFlight => worker::Delay::from(POLL).await,
        }
    }
}

impl Claim {
    pub async fn complete(self, answer: StoredAnswer) {
        if let Err(e) = call(&self.stub, &Op::Complete { fingerprint: self.fingerprint, answer }).await {
            worker::console_error!("idempotency complete failed (the key frees itself): {e}");
        }
    }

    pub async fn abort(self) {
        if let Err(e) = call(&self.stub, &Op::Abort { fingerprint: self.fingerprint }).await {
            worker::console_error!("idempotency abort failed (the key frees itself): {e}");
        }
    }
}

/// The first answer again. Nothing was spent for it, so its cost is 0.
fn replay(answer: StoredAnswer) -> Response {
    let headers = worker::Headers::new();
    for (name, value) in &answer.headers {
        let _ = headers.set(name, value);
    }
    let _ = headers.set("x-gateway-idempotent-replay", "true");
    let _ = headers.set("x-gateway-cost-usd", "0");
    ResponseBuilder::new().with_status(answer.status).with_headers(headers).fixed(answer.body.into_bytes())
}
