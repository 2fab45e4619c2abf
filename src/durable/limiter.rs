//! The Worker's side of the per-provider limiter: one Durable Object per provider
//! (`LIMITER` binding, named by the provider slug), asked to reserve, settle and release — or,
//! for a busy isolate, not asked at all: the request is admitted under the isolate's lease of
//! the limiter (`leases.rs`), reported later off the request's path.

use futures_util::future::join_all;
use gateway_core::account::alerts::Alert;
use gateway_core::account::breaker::{BreakerPolicy, Health};
use gateway_core::account::limits::lease::{LeaseGrant, LeaseSync, Ticket};
use gateway_core::account::limits::{Policy, Refusal, Snapshot};
use gateway_core::account::pricing::Usd;
use gateway_core::account::scopes::Scope;
use gateway_core::engine::Books;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use worker::{Context, Env, Method, Request, RequestInit, Stub};

use crate::durable::leases;

pub const BINDING: &str = "LIMITER";

thread_local! {
    /// Models this isolate saw answered unavailable (its own attempts, or a limiter's refusal),
    /// `(provider/model, what the provider said, until)`: `/healthz`'s warnings.
    static UNAVAILABLE: std::cell::RefCell<Vec<(String, String, u64)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn note_unavailable_model(target: String, why: String, until: u64) {
    UNAVAILABLE.with(|seen| {
        let mut seen = seen.borrow_mut();
        seen.retain(|(t, _, _)| *t != target);
        seen.push((target, why, until));
        // A provider keeps at most a few dozen marks; so does this list.
        if seen.len() > 64 {
            seen.remove(0);
        }
    });
}

/// The models this isolate knows are answered unavailable now, each as a warning.
pub fn unavailable_models(now: u64) -> Vec<String> {
    UNAVAILABLE.with(|seen| {
        seen.borrow()
            .iter()
            .filter(|(_, _, until)| *until > now)
            .map(|(target, why, until)| {
                format!(
                    "{target} answered that it is not available ({why}); skipped for {} s more",
                    (until - now) / 1000
                )
            })
            .collect()
    })
}

/// A held reservation: in the provider's limiter and in every scope's the request falls under.
/// It must end in [`Reservation::close`]; one that is dropped is released by each limiter after
/// its time-to-live, and settled at its worst case under this isolate's leases (what its
/// attempt was billed is unknown).
pub struct Reservation {
    held: Vec<Held>,
    env: Env,
    /// The request's context, for the give-backs that outlive its close.
    wctx: Rc<Context>,
    /// What was reserved: a settle "at the worst case" says this amount, so that a reservation
    /// which expired meanwhile (a stream longer than its time-to-live) is still charged it.
    worst_case: Usd,
}

/// One limiter's part of a reservation.
enum Held {
    Limiter(AtLimiter),
    /// Admitted under this isolate's lease of limiter `name`.
    Lease {
        name: String,
        ticket: Ticket,
        policy: Policy,
    },
}

/// Reserved at the limiter (`id`), named `name`; `leases`: this isolate may lease from it (the
/// settle's answer refreshes the figures local admissions report).
struct AtLimiter {
    stub: Stub,
    id: String,
    name: String,
    leases: bool,
    policy: Policy,
}

/// The limiter's answer, as sent over the Durable Object's fetch interface.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Reserve {
        id: String,
        /// The target's model, for a provider's limiter (it refuses one marked unavailable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        amount: Usd,
        policy: Policy,
        /// The limiter's own name (a provider or a scope key), for its alerts.
        #[serde(default)]
        name: String,
        /// This isolate's report on its lease and request for the next: the report applied
        /// before the reservation, the next lease sized after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<LeaseSync>,
    },
    /// A lease's renewal or give-back, on its own.
    Sync { sync: LeaseSync, policy: Policy, name: String },
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
    /// The provider answered that `model` does not exist or is no longer served.
    MarkUnavailable { model: String, reason: String, name: String },
    /// Today's state; `breaker` is the provider's configured circuit breaker (shown even before
    /// any attempt has given it to the limiter).
    Snapshot {
        #[serde(default)]
        breaker: Option<BreakerPolicy>,
        /// The asking isolate's report on its lease, applied first: what it spent shows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<(LeaseSync, Policy)>,
        #[serde(default)]
        name: String,
    },
}

/// Every operation's answer, as sent over the Durable Object's fetch interface: each fills in
/// what it has (a cancel, nothing).
#[derive(Serialize, Deserialize, Default)]
pub struct LimiterAnswer {
    /// A reserve's refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Thresholds of the daily budget the operation crossed (100%: the budget refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
    /// What is left of today's budget after the operation, and today's spend as a share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Usd>,
    #[serde(default)]
    pub used_share: f64,
    /// The lease granted in answer to the isolate's report (none sent: `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseGrant>,
    /// A snapshot's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Snapshot>,
}

/// What a reserve came to, besides the reservation: alerts to post, and the provider's budget.
pub struct Reserved {
    pub result: Result<Reservation, Refusal>,
    pub alerts: Vec<Alert>,
    /// The provider's budget left after this reservation (`None` when its limiter did not answer).
    pub remaining: Option<Usd>,
    pub used_share: Option<f64>,
}

/// What a limiter refusal says when this Worker has no `LIMITER` binding at all.
fn missing_binding(name: &str) -> String {
    format!(
        "the limiter for {name} cannot be reached: this Worker has no Durable Object binding `{BINDING}` \
         (class ProviderLimiter; see wrangler.toml)"
    )
}

fn stub(env: &Env, provider: &str) -> worker::Result<Stub> {
    env.durable_object(BINDING)?.id_from_name(provider)?.get_stub()
}

async fn call(stub: &Stub, op: &Op) -> worker::Result<worker::Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(op)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://limiter/op", &init)?).await
}

/// A unique id for a reservation at one limiter (only made when the limiter is asked).
fn reservation_id(now: u64) -> String {
    let noise = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
    format!("{now:x}-{noise:x}")
}

/// Reserves one request of `provider`'s rate limit and `worst_case` of its daily budget, and the
/// same in each of `scopes` (the caller's repository, owner, agent), all at once and all or
/// nothing: when any refuses, what was granted is released. A scope's refusal ends the request
/// (`Refusal::ends_request`); the provider's moves it to the next target. With `leases`, each
/// limiter whose lease this isolate holds admits the request locally, without being asked.
///
/// A limiter that cannot be reached refuses (fail closed): spending without a budget check is
/// exactly what the limiter exists to prevent.
#[allow(clippy::too_many_arguments)]
pub async fn reserve(
    env: &Env,
    wctx: &Rc<Context>,
    provider: &str,
    model: &str,
    policy: Policy,
    scopes: &[Scope],
    worst_case: Usd,
    leases: bool,
) -> Reserved {
    let now = worker::Date::now().as_millis();
    let mut asks = vec![reserve_one(env, provider.to_owned(), Some(model), policy, now, worst_case, leases)];
    asks.extend(scopes.iter().map(|s| reserve_one(env, s.key(), None, s.policy, now, worst_case, leases)));
    let answers = join_all(asks).await;
    let mut held = Vec::with_capacity(answers.len());
    let mut refused: Option<Refusal> = None;
    let (mut alerts, mut remaining, mut used_share) = (Vec::new(), None, None);
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(answer) => {
                alerts.extend(answer.alerts);
                if i == 0 {
                    (remaining, used_share) = (Some(answer.remaining), Some(answer.used_share));
                }
                match answer.result {
                    Ok(h) => held.push(h),
                    Err(refusal) if i == 0 => {
                        if refusal.model_unavailable {
                            let until = now + refusal.retry_after_secs * 1000;
                            note_unavailable_model(format!("{provider}/{model}"), refusal.message.clone(), until);
                        }
                        refused = refused.or(Some(refusal))
                    }
                    // A scope's refusal wins over the provider's: it is the caller's own limit.
                    Err(refusal) => {
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
        None => Ok(Reservation { held, env: env.clone(), wctx: wctx.clone(), worst_case }),
        Some(refusal) => {
            // All or nothing: what was granted is taken back, rate-window slot included.
            let cancels = held.into_iter().map(|h| async move {
                match h {
                    Held::Lease { name, ticket, .. } => leases::cancel(&name, ticket),
                    Held::Limiter(AtLimiter { stub, id, .. }) => {
                        if let Err(e) = call(&stub, &Op::Cancel { id }).await {
                            worker::console_error!("limiter cancel failed (the reservation expires on its own): {e}");
                        }
                    }
                }
            });
            join_all(cancels).await;
            Err(refusal)
        }
    };
    Reserved { result, alerts, remaining, used_share }
}

/// One limiter's admission or refusal, with its alerts and budget figures.
struct OneLimiter {
    result: Result<Held, Refusal>,
    alerts: Vec<Alert>,
    remaining: Usd,
    used_share: f64,
}

/// One limiter's answer — under this isolate's lease, or asked — or the refusal that stands for
/// a limiter that could not be asked.
async fn reserve_one(
    env: &Env,
    name: String,
    model: Option<&str>,
    policy: Policy,
    now: u64,
    amount: Usd,
    leases: bool,
) -> Result<OneLimiter, Refusal> {
    if leases {
        if let Some((ticket, remaining, used_share)) = leases::admit(&name, model, amount, now) {
            let result = Ok(Held::Lease { name, ticket, policy });
            return Ok(OneLimiter { result, alerts: Vec::new(), remaining, used_share });
        }
    }
    let unavailable = |e: worker::Error| {
        Refusal::limiter_unavailable(format!(
            "the limiter for {name} (Durable Object binding `{BINDING}`) did not answer: {e}"
        ))
    };
    let stub = stub(env, &name).map_err(|_| Refusal::limiter_unavailable(missing_binding(&name)))?;
    // The request is asked anyway: it carries this isolate's report, and a request for a lease.
    let report = leases.then(|| leases::with_request(&name, amount, now));
    let lease = report.as_ref().and_then(|r| r.sync().cloned());
    let id = reservation_id(now);
    let model = model.map(str::to_owned);
    let op = Op::Reserve { id: id.clone(), model, amount, policy, name: name.clone(), lease };
    let asked = async { read_json::<LimiterAnswer>(&mut call(&stub, &op).await?).await };
    match asked.await {
        Ok(answer) => {
            let mut remaining = answer.remaining.unwrap_or_default();
            if let Some(report) = report {
                remaining = report.end(answer.lease, remaining, answer.used_share);
            }
            let result = match answer.refused {
                None => Ok(Held::Limiter(AtLimiter { stub, id, name, leases, policy })),
                Some(refusal) => Err(refusal),
            };
            Ok(OneLimiter { result, alerts: answer.alerts, remaining, used_share: answer.used_share })
        }
        Err(e) => {
            // The limiter may have granted it and the answer been lost: take it back (an
            // unknown id is nothing to cancel) rather than hold the budget until it expires.
            // The report (dropped here) is kept for the next one.
            let _ = call(&stub, &Op::Cancel { id }).await;
            Err(unavailable(e))
        }
    }
}

impl Reservation {
    /// Ends the reservation as the books say, in every limiter that holds it: released, settled
    /// with a cost, or settled at the worst case it reserved; `health` is what the attempt said
    /// of the provider (its breaker; scopes have none). Under a lease, the settle is local, and
    /// the lease renewed when that is due. Thresholds the settle crossed are posted to the alert
    /// webhook (this already runs after the response). Last, a lease left with nothing in
    /// flight is given back at its end unless a request renews it first.
    pub async fn close(self, books: Books, health: Health) {
        if let Some(rest) = self.close_now(books, health) {
            rest.await
        }
    }

    /// What [`Self::close`] does, as far as it can be done at once: every lease's ticket is
    /// settled here, synchronously. What is left — a limiter object to settle with, a lease's
    /// renewal, a give-back to plan — is returned to be awaited (in `waitUntil`); most requests
    /// of a busy isolate have none, and so cost no task, promise or `waitUntil` to close.
    pub fn close_now(mut self, books: Books, health: Health) -> Option<Pin<Box<dyn Future<Output = ()>>>> {
        let charge = books.charge(self.worst_case);
        let now = worker::Date::now().as_millis();
        let mut renewals = Vec::new();
        let mut quiet = Vec::new();
        let mut limiters = Vec::new();
        for held in std::mem::take(&mut self.held) {
            match held {
                Held::Lease { name, ticket, policy } => {
                    leases::settle(&name, ticket, Some(charge), health);
                    match leases::renewal(&name, ticket.amount(), now) {
                        Some(report) => renewals.push((name, policy, report)),
                        None => quiet.extend(leases::quiet_until(&name, now).map(|until| (name, policy, until))),
                    }
                }
                Held::Limiter(at) => limiters.push(at),
            }
        }
        if limiters.is_empty() && renewals.is_empty() && quiet.is_empty() {
            return None;
        }
        Some(Box::pin(self.close_rest(books, health, charge, limiters, renewals, quiet)))
    }

    async fn close_rest(
        self,
        books: Books,
        health: Health,
        charge: Usd,
        limiters: Vec<AtLimiter>,
        renewals: Vec<(String, Policy, leases::Report)>,
        mut quiet: Vec<Quiet>,
    ) {
        let env = &self.env;
        let settles = limiters.into_iter().map(|AtLimiter { stub, id, name, leases, policy }| async move {
            let op = match books {
                Books::Release => Op::Release { id, health },
                _ => Op::Settle { id, actual: Some(charge), health, name: name.clone() },
            };
            match call(&stub, &op).await {
                Ok(mut response) => {
                    let answer = read_json::<LimiterAnswer>(&mut response).await.unwrap_or_default();
                    if let (true, Some(remaining)) = (leases, answer.remaining) {
                        leases::observe(&name, remaining, answer.used_share);
                    }
                    // The reserve may have brought a lease (a busy isolate's second request):
                    // it too is given back if nothing renews it.
                    let now = worker::Date::now().as_millis();
                    let quiet = if leases { leases::quiet_until(&name, now) } else { None };
                    (answer.alerts, quiet.map(|until| (name, policy, until)))
                }
                Err(e) => {
                    worker::console_error!("limiter update failed (the reservation expires on its own): {e}");
                    (Vec::new(), None)
                }
            }
        });
        let renewed = renewals.into_iter().map(|(name, policy, report)| async move {
            let alerts = sync(env, &name, policy, report).await;
            let quiet = leases::quiet_until(&name, worker::Date::now().as_millis());
            (alerts, quiet.map(|until| (name, policy, until)))
        });
        let (settled, renewed) = futures_util::future::join(join_all(settles), join_all(renewed)).await;
        let mut alerts = Vec::new();
        for (crossed, planned) in settled.into_iter().chain(renewed) {
            alerts.extend(crossed);
            quiet.extend(planned);
        }
        crate::alerts::post(env, alerts).await;
        // On their own, after the request's own work: a stream's close (its ledger rows, an
        // idempotent replay's record) does not wait for a lease's end.
        for (name, policy, until) in quiet {
            let env = self.env.clone();
            self.wctx.wait_until(async move {
                let wait = until.saturating_sub(worker::Date::now().as_millis());
                worker::Delay::from(std::time::Duration::from_millis(wait)).await;
                if let Some(report) = leases::give_back(&name, until, worker::Date::now().as_millis()) {
                    crate::alerts::post(&env, sync(&env, &name, policy, report).await).await;
                }
            });
        }
    }
}

impl Drop for Reservation {
    /// A reservation dropped without its close: each limiter that reserved releases it at its
    /// time-to-live; under a lease, its ticket is settled at its worst case, so that the lease
    /// does not hold it for the rest of the day.
    fn drop(&mut self) {
        for held in self.held.drain(..) {
            if let Held::Lease { name, ticket, .. } = held {
                leases::settle(&name, ticket, None, Health::Neutral);
            }
        }
    }
}

/// A lease left with nothing in flight: limiter `.0` (its policy `.1`), to give back at `.2`.
type Quiet = (String, Policy, u64);

/// Sends a lease's report on its own (a renewal, a give-back); the thresholds it crossed.
async fn sync(env: &Env, name: &str, policy: Policy, report: leases::Report) -> Vec<Alert> {
    let Some(sync) = report.sync().cloned() else { return Vec::new() };
    let op = Op::Sync { sync, policy, name: name.to_owned() };
    let asked = async { read_json::<LimiterAnswer>(&mut call(&stub(env, name)?, &op).await?).await };
    match asked.await {
        Ok(answer) => {
            report.end(answer.lease, answer.remaining.unwrap_or_default(), answer.used_share);
            answer.alerts
        }
        Err(e) => {
            worker::console_error!("limiter lease report failed (kept for the next one): {e}");
            Vec::new()
        }
    }
}

/// Marks `model` unavailable in `provider`'s limiter (and in this isolate's lease of it at
/// once): later reserves for it are refused until the mark ends. Off the answer's path; the
/// alert of a new mark is posted.
pub async fn mark_unavailable(env: &Env, provider: &str, model: &str, reason: &str) {
    let now = worker::Date::now().as_millis();
    leases::note_unavailable(provider, model, now);
    let until = now + gateway_core::account::limits::MODEL_UNAVAILABLE_MS;
    note_unavailable_model(format!("{provider}/{model}"), reason.to_owned(), until);
    let op = Op::MarkUnavailable { model: model.to_owned(), reason: reason.to_owned(), name: provider.to_owned() };
    let asked = async { read_json::<LimiterAnswer>(&mut call(&stub(env, provider)?, &op).await?).await };
    match asked.await {
        Ok(answer) => crate::alerts::post(env, answer.alerts).await,
        Err(e) => worker::console_error!("limiter mark of an unavailable model failed: {e}"),
    }
}

/// Today's state of limiter `name` (a provider's, with its breaker; or a scope's). With
/// `leases`, this isolate first hands in its lease of it with the question, so that what it
/// spent under the lease shows as spent (other isolates' leases show as leased).
pub async fn snapshot(env: &Env, name: &str, policy: Policy, leases: bool) -> worker::Result<Snapshot> {
    let stub = stub(env, name)?;
    let report = leases.then(|| leases::hand_in(name, worker::Date::now().as_millis()));
    let lease = report.as_ref().and_then(|r| r.sync().cloned()).map(|sync| (sync, policy));
    let answer: LimiterAnswer =
        read_json(&mut call(&stub, &Op::Snapshot { breaker: policy.breaker, lease, name: name.to_owned() }).await?)
            .await?;
    if let Some(report) = report {
        report.end(answer.lease, answer.remaining.unwrap_or_default(), answer.used_share);
    }
    crate::alerts::post(env, answer.alerts).await;
    answer.state.ok_or_else(|| worker::Error::RustError("the limiter answered no state".into()))
}

/// JSON through serde_json, not the runtime's JS objects: amounts stay exact decimal digits.
/// An object that did not answer 2xx (it failed, or its class is not deployed) is named by its
/// status, not by the parse of its error page.
pub async fn read_json<T: serde::de::DeserializeOwned>(response: &mut worker::Response) -> worker::Result<T> {
    let status = response.status_code();
    if !(200..300).contains(&status) {
        return Err(worker::Error::RustError(format!("its Durable Object answered {status}")));
    }
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
