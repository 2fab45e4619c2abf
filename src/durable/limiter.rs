//! The Worker's side of the limiters: one Durable Object per provider and per scope (`LIMITER`
//! binding, named by the provider slug or the scope's key). What an attempt's admission asks of
//! them, what its close sends, and what is given back is decided by the core
//! (`gateway_core::account::admission`); this file makes the calls — all of an admission's at
//! once, the reports not waited for on the request's path — and keeps the isolate's lease table
//! (`leases.rs`).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use futures_util::future::join_all;
use gateway_core::account::admission::{Admission, Admitted, Closing, Options, Renewal};
use gateway_core::account::alerts::Alert;
use gateway_core::account::limits::local::Flush;
use gateway_core::account::limits::ops::{LimiterAnswer, Op};
use gateway_core::account::limits::{Policy, Refusal, Snapshot};
use gateway_core::account::scopes::Scope;
use gateway_core::attempt::Books;
use gateway_core::attempt::Health;
use gateway_core::config::Settings;
use gateway_core::money::pricing::Usd;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::{wasm_bindgen_futures, Context, Env, Method, Request, RequestInit, Stub};

use crate::durable::leases;

pub const BINDING: &str = "LIMITER";

/// How many times a settle, a release or a batch of settles is sent before it is given up (each
/// is idempotent: a second finds nothing to do).
const TRIES: u32 = 3;
/// How often a settle waiting for another request's batch asks the lease table again.
const BATCH_POLL: std::time::Duration = std::time::Duration::from_millis(10);

#[wasm_bindgen(module = "/js/limiter.mjs")]
extern "C" {
    #[wasm_bindgen(js_name = send)]
    fn send_js(namespace: &JsValue, name: &str, body: &str) -> js_sys::Promise;
}

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

/// How admissions are made here, from the deployment's settings.
#[derive(Clone, Copy)]
pub struct Leasing {
    pub options: Options,
    pub lease_ttl_ms: u64,
}

impl Leasing {
    pub fn of(settings: &Settings) -> Leasing {
        Leasing {
            options: Options { leases: settings.limiter_leases, reservation_ttl_ms: settings.reservation_ttl_ms },
            lease_ttl_ms: settings.lease_ttl_ms,
        }
    }
}

/// An attempt admitted by its provider's limiter and every scope's. It must end in
/// [`Reservation::close_now`]; one that is dropped is settled at its worst case everywhere
/// (what its attempt was billed is unknown).
pub struct Reservation {
    admitted: Option<Admitted>,
    env: Env,
    /// The request's context, for what outlives its close (give-backs, dropped settles).
    wctx: Rc<Context>,
    leasing: Leasing,
}

/// What an admission came to, besides the reservation: alerts to post, and the provider's budget.
pub struct Reserved {
    pub result: Result<Reservation, Refusal>,
    pub alerts: Vec<Alert>,
    /// The provider's budget left after this admission (`None` when its limiter did not answer).
    pub remaining: Option<Usd>,
    pub used_share: Option<f64>,
}

/// Why a limiter could not be asked, when this Worker has no `LIMITER` binding at all.
fn missing_binding() -> String {
    format!("this Worker has no Durable Object binding `{BINDING}` (class ProviderLimiter; see wrangler.toml)")
}

fn stub(env: &Env, name: &str) -> Result<Stub, String> {
    let namespace = env.durable_object(BINDING).map_err(|_| missing_binding())?;
    namespace.id_from_name(name).and_then(|id| id.get_stub()).map_err(|e| e.to_string())
}

async fn call(stub: &Stub, op: &Op) -> worker::Result<worker::Response> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(serde_json::to_string(op)?.into()));
    stub.fetch_with_request(Request::new_with_init("https://limiter/op", &init)?).await
}

/// Asks limiter `name`: its answer, or why there is none.
async fn ask(env: &Env, name: &str, op: &Op) -> Result<LimiterAnswer, String> {
    let stub = stub(env, name)?;
    let answered = async { read_json::<LimiterAnswer>(&mut call(&stub, op).await?).await };
    answered.await.map_err(|e| format!("its Durable Object (binding `{BINDING}`) did not answer: {e}"))
}

/// Sends `op` to limiter `name` now, not waiting for it on the request's path: the call has
/// left the isolate when this returns (`js/limiter.mjs`); its answer is awaited in `waitUntil`,
/// and a call that failed is sent again from there.
fn dispatch(env: &Env, wctx: &Context, name: String, op: Op) {
    let Ok(body) = serde_json::to_string(&op) else { return };
    let sent = env.durable_object(BINDING).ok().map(|ns| send_js(ns.as_ref(), &name, &body));
    let env = env.clone();
    wctx.wait_until(async move {
        let status = match sent {
            Some(promise) => wasm_bindgen_futures::JsFuture::from(promise).await.ok().and_then(|s| s.as_f64()),
            None => None,
        };
        if status.is_some_and(|s| (200.0..300.0).contains(&s)) {
            return;
        }
        for _ in 1..TRIES {
            if ask(&env, &name, &op).await.is_ok() {
                return;
            }
        }
        worker::console_error!("limiter {name}: a report was not delivered ({})", describe(&op));
    });
}

fn describe(op: &Op) -> &'static str {
    match op {
        Op::Admitted { .. } => "an admission under a lease: not charged if its isolate dies",
        Op::Cancel { .. } => "a take-back: its reservation is charged its worst case when it expires",
        _ => "an operation",
    }
}

/// Admits one attempt of `provider`'s `model` costing at most `worst_case`, by the provider's
/// limiter and by each of `scopes`' (the caller's repository, owner, agent), all at once and all
/// or nothing (`gateway_core::account::admission`). A limiter that cannot be reached refuses
/// (fail closed): spending without a budget check is what the limiter exists to prevent.
#[allow(clippy::too_many_arguments)]
pub async fn reserve(
    env: &Env,
    wctx: &Rc<Context>,
    provider: &str,
    model: &str,
    policy: Policy,
    scopes: &[Scope],
    worst_case: Usd,
    leasing: Leasing,
) -> Reserved {
    let now = worker::Date::now().as_millis();
    let noise = (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64;
    let mut admission = Admission::new(provider, model, policy, scopes, worst_case, leasing.options);
    let calls = leases::with(leasing.lease_ttl_ms, |table| admission.begin(table, noise, now));
    // Given up before its decision (the request went away), it takes back what it holds.
    let mut pending = Pending { admission: Some(admission), env, wctx, leasing };
    let answers = join_all(calls.iter().map(|c| ask(env, &c.limiter, &c.op))).await;
    let Some(mut admission) = pending.admission.take() else {
        let refused = Refusal::limiter_unavailable("the admission was given up".to_owned());
        return Reserved { result: Err(refused), alerts: Vec::new(), remaining: None, used_share: None };
    };
    leases::with(leasing.lease_ttl_ms, |table| {
        for (call, answer) in calls.iter().zip(answers) {
            admission.reply(call.part, answer, table);
        }
    });
    let now = worker::Date::now().as_millis();
    let decided = leases::with(leasing.lease_ttl_ms, |table| admission.decide(table, now));
    // The admissions under leases are reported before the attempt's upstream call is made.
    for (name, op) in decided.dispatch {
        dispatch(env, wctx, name, op);
    }
    if let Some((until, why)) = decided.unavailable {
        note_unavailable_model(format!("{provider}/{model}"), why, until);
    }
    Reserved {
        result: decided.result.map(|admitted| Reservation {
            admitted: Some(admitted),
            env: env.clone(),
            wctx: wctx.clone(),
            leasing,
        }),
        alerts: decided.alerts,
        remaining: decided.remaining,
        used_share: decided.used_share,
    }
}

/// An admission under way: dropped before its decision, it takes back what it holds.
struct Pending<'a> {
    admission: Option<Admission>,
    env: &'a Env,
    wctx: &'a Rc<Context>,
    leasing: Leasing,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Some(admission) = self.admission.take() {
            for (name, op) in leases::with(self.leasing.lease_ttl_ms, |table| admission.abandon(table)) {
                dispatch(self.env, self.wctx, name, op);
            }
        }
    }
}

impl Reservation {
    /// Ends the admission as the books say, in every limiter that holds it: released, settled
    /// with a cost, or settled at the worst case it reserved; `health` is what the attempt said
    /// of the provider (its breaker; scopes have none). Under a lease the settle is local, then
    /// reported with the isolate's other settles. The returned future ends once every limiter
    /// acknowledged the close (or it was given up): the request's ledger rows wait for it. It
    /// also makes the renewals the close made due, posts the thresholds crossed, and plans to
    /// give back a lease left with nothing in flight.
    pub fn close_now(mut self, books: Books, health: Health) -> Pin<Box<dyn Future<Output = ()>>> {
        let now = worker::Date::now().as_millis();
        let closing = match self.admitted.take() {
            Some(admitted) => {
                leases::with(self.leasing.lease_ttl_ms, |table| admitted.close(books, health, table, now))
            }
            None => Closing::default(),
        };
        let (env, wctx, ttl) = (self.env.clone(), self.wctx.clone(), self.leasing.lease_ttl_ms);
        Box::pin(close(env, wctx, ttl, closing))
    }

    /// [`Self::close_now`], awaited.
    pub async fn close(self, books: Books, health: Health) {
        self.close_now(books, health).await
    }
}

impl Drop for Reservation {
    /// An admission dropped without its close (its request went away mid-attempt): settled at
    /// its worst case everywhere.
    fn drop(&mut self) {
        let Some(admitted) = self.admitted.take() else { return };
        for (name, op) in leases::with(self.leasing.lease_ttl_ms, |table| admitted.abandon(table)) {
            dispatch(&self.env, &self.wctx, name, op);
        }
    }
}

async fn close(env: Env, wctx: Rc<Context>, ttl: u64, closing: Closing) {
    let Closing { settles, tickets, renewals, quiet } = closing;
    let env = &env;
    let settled = settles.into_iter().map(|(name, op, policy)| async move {
        for _ in 0..TRIES {
            match ask(env, &name, &op).await {
                Ok(answer) => {
                    // With leases, the reserve may have brought one: given back at its end if
                    // nothing renews it.
                    let plan = policy.and_then(|policy| {
                        let now = worker::Date::now().as_millis();
                        leases::with(ttl, |table| {
                            table.slot(&name).observe(answer.remaining.unwrap_or_default(), answer.used_share);
                            table.plan_give_back(&name, now).map(|until| (name.clone(), policy, until))
                        })
                    });
                    return (answer.alerts, plan);
                }
                Err(e) => worker::console_error!("limiter {name}: a settle was not answered ({e})"),
            }
        }
        // Given up: the reservation expires, charged its worst case (shown as died).
        (Vec::new(), None)
    });
    let renewed = renewals.into_iter().map(|renewal| async move {
        let alerts = sync(env, ttl, &renewal).await;
        let now = worker::Date::now().as_millis();
        let plan = leases::with(ttl, |table| table.plan_give_back(&renewal.limiter, now));
        (alerts, plan.map(|until| (renewal.limiter.clone(), renewal.policy, until)))
    });
    let flushed = tickets.iter().map(|(name, n)| flush(env, ttl, name, *n));
    let (settled, renewed, _) = futures_util::join!(join_all(settled), join_all(renewed), join_all(flushed));
    let mut alerts = Vec::new();
    let mut quiet = quiet;
    for (crossed, plan) in settled.into_iter().chain(renewed) {
        alerts.extend(crossed);
        quiet.extend(plan);
    }
    crate::alerts::post(env, alerts).await;
    // On their own, after the request's own work: a stream's close (its ledger rows, an
    // idempotent replay's record) does not wait for a lease's end.
    for (name, policy, until) in quiet {
        let env = env.clone();
        wctx.wait_until(async move {
            let wait = until.saturating_sub(worker::Date::now().as_millis());
            worker::Delay::from(std::time::Duration::from_millis(wait)).await;
            let now = worker::Date::now().as_millis();
            if let Some(renewal) = leases::with(ttl, |table| table.give_back(&name, policy, until, now)) {
                crate::alerts::post(&env, sync(&env, ttl, &renewal).await).await;
            }
        });
    }
}

/// Gets ticket `n`'s settle at limiter `name` acknowledged: it goes in the batch under way's
/// successor, or in a batch of its own; a batch that fails is sent again, [`TRIES`] times.
///
/// A batch under way is another request's, and its future is not awaited here: it resolves in
/// that request's context, and this request's work woken from there would run its I/O on that
/// request's behalf, which the runtime then cancels as hung once that request is done (rows of
/// a stream lost with it). The batch's answer shows in the lease table: this request asks it
/// again after its own short timer (and sends the next batch itself when that one is lost).
async fn flush(env: &Env, ttl: u64, name: &str, n: u64) {
    let mut failed = 0;
    while failed < TRIES {
        let now = worker::Date::now().as_millis();
        match leases::with(ttl, |table| table.flush(name, n, now)) {
            Flush::Done => return,
            Flush::Send { no, op } => {
                if !send_batch(env, ttl, name, no, *op).await {
                    failed += 1;
                }
            }
            Flush::Wait => worker::Delay::from(BATCH_POLL).await,
        }
    }
    worker::console_error!(
        "limiter {name}: a settle was not acknowledged; it goes with the next report (if this isolate dies first, its worst case is charged)"
    );
}

async fn send_batch(env: &Env, ttl: u64, name: &str, no: u64, op: Op) -> bool {
    let answer = ask(env, name, &op).await;
    leases::with(ttl, |table| table.end_flush(name, no, answer.as_ref().ok()));
    match answer {
        Ok(answer) => {
            crate::alerts::post(env, answer.alerts).await;
            true
        }
        Err(e) => {
            worker::console_error!("limiter {name}: a batch of settles was not answered ({e})");
            false
        }
    }
}

/// Sends a lease's report on its own (a renewal, a give-back); the thresholds it crossed.
async fn sync(env: &Env, ttl: u64, renewal: &Renewal) -> Vec<Alert> {
    let answer = ask(env, &renewal.limiter, &renewal.op()).await;
    leases::with(ttl, |table| table.end_sync(renewal, answer.as_ref().ok()));
    match answer {
        Ok(answer) => answer.alerts,
        Err(e) => {
            worker::console_error!("limiter lease report failed (kept for the next one): {e}");
            Vec::new()
        }
    }
}

/// Marks `model` unavailable in `provider`'s limiter (and in this isolate's lease of it at
/// once): later reserves for it are refused until the mark ends. Off the answer's path; the
/// alert of a new mark is posted.
pub async fn mark_unavailable(env: &Env, ttl: u64, provider: &str, model: &str, reason: &str) {
    let now = worker::Date::now().as_millis();
    leases::with(ttl, |table| table.note_unavailable(provider, model, now));
    let until = now + gateway_core::account::limits::MODEL_UNAVAILABLE_MS;
    note_unavailable_model(format!("{provider}/{model}"), reason.to_owned(), until);
    let op = Op::MarkUnavailable { model: model.to_owned(), reason: reason.to_owned(), name: provider.to_owned() };
    match ask(env, provider, &op).await {
        Ok(answer) => crate::alerts::post(env, answer.alerts).await,
        Err(e) => worker::console_error!("limiter mark of an unavailable model failed: {e}"),
    }
}

/// Today's state of limiter `name` (a provider's, with its breaker; or a scope's). With leases,
/// this isolate first hands in its lease of it with the question, so that what it spent under
/// the lease shows as spent (other isolates' leases show as leased).
pub async fn snapshot(env: &Env, name: &str, policy: Policy, leasing: Leasing) -> Result<Snapshot, String> {
    let ttl = leasing.lease_ttl_ms;
    let now = worker::Date::now().as_millis();
    let renewal =
        if leasing.options.leases { leases::with(ttl, |table| table.hand_in(name, policy, now)) } else { None };
    let lease = renewal.as_ref().map(|r| (r.sync.clone(), policy));
    let answer = ask(env, name, &Op::Snapshot { breaker: policy.breaker, lease, name: name.to_owned() }).await;
    if let Some(renewal) = &renewal {
        leases::with(ttl, |table| table.end_sync(renewal, answer.as_ref().ok()));
    }
    let answer = answer?;
    crate::alerts::post(env, answer.alerts).await;
    answer.state.ok_or_else(|| "the limiter answered no state".to_owned())
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
