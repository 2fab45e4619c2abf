//! The engine's runtime in the Worker (`gateway_core::engine::Runtime`): the limiter Durable
//! Object, one attempt through AI Gateway, a timer, the clock and `Math.random`.
//!
//! One attempt is the same for every route — fetch within the first-byte deadline, read an
//! error body bounded, read a whole answer within the deadlines, or open a stream to its commit
//! point — and what differs per route (URL, headers, body, how an answer and an error read) is
//! its [`Protocol`] (`gateway_core::protocol`: unified for `/v1/chat/completions`, native for
//! `/{provider}/…`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use gateway_core::account::limits::Refusal;
use gateway_core::account::scopes::Scope;
use gateway_core::aig::answer as aig_answer;
use gateway_core::aig::cache;
use gateway_core::attempt::{AttemptEnd, AttemptOutcome, Books, Health, Meter};
use gateway_core::config::RetryPolicy;
use gateway_core::config::Settings;
use gateway_core::engine::{self, Exchange, Fallback, Record, Rules, Runtime, Target, Win};
use gateway_core::error::{redact, ErrorKind, GatewayError};
use gateway_core::money::pricing::Usd;
use gateway_core::protocol::judge::Judged;
use gateway_core::protocol::{Protocol, Reading};
use gateway_core::relay::pump::Pump;
use gateway_core::relay::Observer;
use gateway_core::tools::IssuedSignature;
use worker::{Context, Delay, Env};

use super::fetch::{self, Body, BodyError, Bounds, Read, SendError};
use crate::durable::limiter::{self, Leasing, Reservation};
use crate::relay::{Opened, Upstream};
use futures_util::future::{join_all, FutureExt, LocalBoxFuture, Shared};

/// Error bodies are read this far, no further: enough for any message, bounded whatever comes.
const ERROR_BODY_LIMIT: usize = 16 * 1024;

/// An answer for the client.
pub struct Answered<O: Observer + 'static> {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: AnswerBody<O>,
}

pub enum AnswerBody<O: Observer + 'static> {
    /// The whole body (a JSON answer, or a stream that was over before its commit point).
    Whole { bytes: Vec<u8>, copy: Option<Vec<u8>> },
    /// A committed stream: its commit point's bytes, then the rest.
    Stream { upstream: Upstream<O> },
}

pub struct AigRuntime<'a, P: Protocol> {
    pub env: &'a Env,
    pub wctx: &'a Rc<Context>,
    pub settings: &'a Settings,
    pub protocol: P,
    pub targets: &'a [Target<'a>],
    pub deadline_ms: u64,
    /// Keep a copy of a streamed answer up to this many bytes (idempotent replays).
    pub capture: Option<usize>,
    /// The meter of the attempt under way.
    current: RefCell<Meter>,
    /// The caller's scopes (repository, owner, agent) each attempt also reserves in.
    scopes: Vec<Scope>,
    /// What the last admitted attempt's provider had left of today's budget.
    budget_remaining: std::cell::Cell<Option<Usd>>,
    /// What the attempts' answers warned of (a cost unknown, a check past its bounds).
    warnings: RefCell<Vec<String>>,
    /// The thought signatures of the last whole answer (the signature memory's).
    signatures: RefCell<Vec<IssuedSignature>>,
    /// What the provider said of a model it answered is not available (the mark's reason).
    unavailable_reason: RefCell<Option<String>>,
    /// The closes of the attempts, each ending when its limiters acknowledged it.
    closes: RefCell<Vec<Close>>,
}

/// An attempt's close, under way in `waitUntil` and awaited by the request's ledger rows.
type Close = Shared<LocalBoxFuture<'static, ()>>;

/// The attempts' closes, acknowledged (or given up): the request's ledger rows wait for it, so
/// that rows exist only for charges their limiters know.
pub type Settled = LocalBoxFuture<'static, ()>;

/// What a run of the engine produced.
pub struct Ran<O: Observer + 'static, F> {
    pub result: Result<Win<Answered<O>, Reservation>, F>,
    /// The engine's record: each attempt's line carries what was measured of it.
    pub record: Record,
    /// The answering provider's budget left, as its reserve saw it.
    pub budget_remaining: Option<Usd>,
    /// What the attempts' answers warned of.
    pub warnings: Vec<String>,
    /// The thought signatures of the whole answer given to the caller.
    pub signatures: Vec<IssuedSignature>,
    /// The closes of the attempts made so far (a committed stream's is closed at its end).
    pub settled: Settled,
}

pub fn now() -> u64 {
    worker::Date::now().as_millis()
}

impl<'a, P: Protocol> AigRuntime<'a, P> {
    pub fn new(
        env: &'a Env,
        wctx: &'a Rc<Context>,
        settings: &'a Settings,
        protocol: P,
        targets: &'a [Target<'a>],
        deadline_ms: u64,
        capture: Option<usize>,
    ) -> Self {
        AigRuntime {
            env,
            wctx,
            settings,
            protocol,
            targets,
            deadline_ms,
            capture,
            current: RefCell::default(),
            scopes: Vec::new(),
            budget_remaining: std::cell::Cell::new(None),
            warnings: RefCell::default(),
            signatures: RefCell::default(),
            unavailable_reason: RefCell::default(),
            closes: RefCell::default(),
        }
    }

    /// Every attempt also reserves in these scopes (all or nothing), and closes them the same way.
    pub fn with_scopes(mut self, scopes: Vec<Scope>) -> Self {
        self.scopes = scopes;
        self
    }

    /// Runs the engine with this runtime — the one way every route calls it: the answer (or
    /// the error for the client) and the record, each attempt's line with what was measured of it.
    pub async fn run(self, retry: &RetryPolicy, fallback: Fallback, subject: &str) -> Ran<P::Observer, P::Failure> {
        let rules = Rules {
            retry,
            deadline_ms: self.deadline_ms,
            first_byte_timeout_ms: self.settings.first_byte_timeout_ms.into(),
            fallback,
            subject,
        };
        let (result, record) = engine::run(&self, self.targets, &rules).await;
        Ran {
            result,
            record,
            budget_remaining: self.budget_remaining.get(),
            warnings: self.warnings.take(),
            signatures: self.signatures.take(),
            settled: join_all(self.closes.take()).map(|_| ()).boxed_local(),
        }
    }

    fn secrets(&self) -> Vec<String> {
        self.settings.secret_values().into_iter().map(str::to_owned).collect()
    }

    fn fail(
        &self,
        outcome: AttemptOutcome,
        end: AttemptEnd,
        kind: ErrorKind,
        text: String,
    ) -> Exchange<Answered<P::Observer>, P::Failure> {
        Exchange::Failed { outcome, end, failure: GatewayError::new(kind, text).into(), retry_after: None }
    }
}

impl<P: Protocol> Runtime for AigRuntime<'_, P> {
    type Reservation = Reservation;
    type Answer = Answered<P::Observer>;
    type Failure = P::Failure;

    async fn reserve(&self, target: &Target<'_>) -> Result<Reservation, Refusal> {
        let reserved = limiter::reserve(
            self.env,
            self.wctx,
            target.provider,
            target.model(),
            target.limits,
            &self.scopes,
            target.worst_case,
            Leasing::of(self.settings),
        )
        .await;
        if !reserved.alerts.is_empty() {
            let (env, alerts) = (self.env.clone(), reserved.alerts);
            self.wctx.wait_until(async move { crate::alerts::post(&env, alerts).await });
        }
        if let Some(share) = reserved.used_share {
            budget_use::record(target.provider, share);
        }
        if reserved.result.is_ok() {
            // The last admitted attempt is the one that answers, if any does.
            self.budget_remaining.set(reserved.remaining);
        }
        reserved.result
    }

    fn close(&self, reservation: Reservation, books: Books, health: Health) {
        // Under a lease the settle is done here; its report and the limiters' settles go on in
        // `waitUntil`, and the request's rows wait for them.
        let close = reservation.close_now(books, health).shared();
        self.wctx.wait_until(close.clone());
        self.closes.borrow_mut().push(close);
    }

    async fn attempt(
        &self,
        target: usize,
        attempt: u32,
        first_byte_ms: u64,
        charged_before: Usd,
    ) -> (Exchange<Self::Answer, P::Failure>, Meter) {
        let started = now();
        *self.current.borrow_mut() = Meter { started_ms: started, ..Meter::default() };
        let exchange = self.exchange(target, attempt, first_byte_ms, charged_before, started).await;
        let mut meter = self.current.take();
        meter.ended_ms = now();
        meter.cost = match &exchange {
            Exchange::Answer { end, .. } => end.and_then(AttemptEnd::cost),
            Exchange::Failed { end, .. } | Exchange::Invalid { end, .. } => end.cost(),
        };
        (exchange, meter)
    }

    fn mark_unavailable(&self, target: &Target<'_>) {
        // A native target whose request names no model has nothing to mark.
        let model = target.model();
        if !gateway_core::names::is_named(model) {
            return;
        }
        let reason = self.unavailable_reason.take().unwrap_or_default();
        let (env, provider, model) = (self.env.clone(), target.provider.to_owned(), model.to_owned());
        let ttl = self.settings.lease_ttl_ms;
        self.wctx.wait_until(async move { limiter::mark_unavailable(&env, ttl, &provider, &model, &reason).await });
    }

    async fn sleep(&self, ms: u64) {
        Delay::from(Duration::from_millis(ms)).await
    }

    fn now(&self) -> u64 {
        now()
    }

    fn random(&self) -> f64 {
        js_sys::Math::random()
    }
}

/// What an attempt's answer said before its body.
struct Head {
    status: u16,
    content_type: Option<String>,
    cache_hit: bool,
}

impl<P: Protocol> AigRuntime<'_, P> {
    /// One attempt; what it measures goes into `self.current` (its status, the usage it read).
    async fn exchange(
        &self,
        target: usize,
        attempt: u32,
        first_byte_ms: u64,
        charged_before: Usd,
        started: u64,
    ) -> Exchange<Answered<P::Observer>, P::Failure> {
        let id = self.targets[target].id;
        // Borrowed: only a stream's pump needs its own copy (it outlives this call).
        let secret_refs = self.settings.secret_values();
        let out = self.protocol.outgoing(target, attempt);
        let first_byte = Duration::from_millis(first_byte_ms);
        let read = if self.protocol.streamed() { Read::Stream } else { Read::Whole };
        // A whole answer within the idle deadline and what is left of the request's.
        let bounds = Bounds {
            idle_ms: self.settings.stream_idle_timeout_ms.into(),
            deadline_ms: self.deadline_ms,
            error_bytes: ERROR_BODY_LIMIT,
        };
        let answer = match fetch::call("POST", out.url, &out.headers, Some(&out.body), first_byte, read, bounds).await {
            Ok(answer) => answer,
            Err(SendError::Timeout) => {
                return self.fail(
                    AttemptOutcome::Timeout,
                    AttemptEnd::NoResponse,
                    ErrorKind::UpstreamTimeout,
                    format!("{id} did not answer within {first_byte_ms} ms."),
                )
            }
            Err(SendError::Connection(message)) => {
                return self.fail(
                    AttemptOutcome::ConnectionError,
                    AttemptEnd::NoResponse,
                    ErrorKind::UpstreamUnreachable,
                    format!("AI Gateway could not be reached: {}", redact(&message, &secret_refs)),
                )
            }
        };
        let cache_hit = cache::is_hit(answer.cache_status.as_deref());
        let status = answer.status;
        {
            let mut meter = self.current.borrow_mut();
            (meter.status, meter.log_id, meter.cache) = (Some(status), answer.log_id, answer.cache_status);
        }
        let content_type = answer.content_type;

        let bytes = match answer.body {
            Body::Bytes(bytes) => bytes,
            // The answer started and broke off: it may have been billed.
            Body::Unreadable(BodyError::Timeout(waited)) => {
                return self.fail(
                    AttemptOutcome::Timeout,
                    AttemptEnd::AnswerUnreadable,
                    ErrorKind::UpstreamTimeout,
                    format!("{id} stopped sending its answer for {waited} ms."),
                )
            }
            Body::Unreadable(BodyError::Failed(message)) => {
                return self.fail(
                    AttemptOutcome::MalformedAnswer,
                    AttemptEnd::AnswerUnreadable,
                    ErrorKind::UpstreamMalformed,
                    format!("The answer of {id} broke off: {}", redact(&message, &secret_refs)),
                )
            }
            Body::Stream(Some(stream)) => {
                // The commit point is the stream's first byte for the client: the attempt's
                // first-byte window bounds it, so the request's deadline holds for streams too.
                let head = Head { status, content_type, cache_hit };
                return self.open_stream(target, stream, head, charged_before, started + first_byte_ms).await;
            }
            Body::Stream(None) => {
                return self.fail(
                    AttemptOutcome::MalformedAnswer,
                    AttemptEnd::StreamCutBeforeCommit,
                    ErrorKind::UpstreamMalformed,
                    "the stream has no body".to_owned(),
                )
            }
        };

        if !(200..300).contains(&status) {
            let retry_after = answer.retry_after;
            // AI Gateway's own refusals (by its error code) name themselves, on either route.
            let refusal = aig_answer::aig_refusal(status, &bytes, answer.dlp);
            let failure = match refusal {
                Some(r) => aig_answer::refusal_error(r, status, &bytes, retry_after.clone(), id, &secret_refs).into(),
                None => self.protocol.failure(target, status, content_type, &bytes, retry_after.clone()),
            };
            let outcome = aig_answer::outcome_of(status, refusal, &bytes);
            if outcome == AttemptOutcome::ModelUnavailable {
                *self.unavailable_reason.borrow_mut() =
                    Some(redact(&aig_answer::upstream_message(&bytes), &secret_refs));
            }
            return Exchange::Failed { outcome, end: AttemptEnd::ErrorStatus, failure, retry_after };
        }

        match self.protocol.whole(target, bytes, cache_hit) {
            Reading::Judged { body, judged, signatures } => {
                *self.signatures.borrow_mut() = signatures;
                let answer = Answered { status, content_type, body: AnswerBody::Whole { bytes: body, copy: None } };
                self.judged(judged, answer, status)
            }
            Reading::Malformed(err) => Exchange::Failed {
                outcome: AttemptOutcome::MalformedAnswer,
                end: AttemptEnd::AnswerUnreadable,
                failure: err.into(),
                retry_after: None,
            },
        }
    }

    /// A 2xx stream, opened to its commit point (or read whole when it ends before it).
    async fn open_stream(
        &self,
        target: usize,
        bytes: worker::web_sys::ReadableStream,
        head: Head,
        charged_before: Usd,
        until: u64,
    ) -> Exchange<Answered<P::Observer>, P::Failure> {
        let Head { status, content_type, cache_hit } = head;
        let idle = Duration::from_millis(self.settings.stream_idle_timeout_ms.into());
        let (observer, cost) = self.protocol.observer(target, cache_hit, charged_before);
        let mut pump = Pump::new(observer, cost, idle.as_millis() as u64, self.secrets());
        // A stream held to its end has until the request's deadline, not its first byte's.
        let until = if self.protocol.held() {
            pump.hold_until_complete();
            self.deadline_ms
        } else {
            until
        };
        let mut upstream = Upstream::new(bytes, pump, idle);
        if let Some(limit) = self.capture {
            upstream.capture(limit);
        }
        match upstream.open(until).await {
            Opened::Committed { upstream, model } => {
                self.current.borrow_mut().answered_model = self.protocol.answered_by(target, model.as_deref());
                Exchange::Answer {
                    answer: Answered { status, content_type, body: AnswerBody::Stream { upstream } },
                    status,
                    end: None,
                    content_filtered: false,
                }
            }
            Opened::Ended { ending, observer } => {
                let judged = self.protocol.stream_judged(target, &observer, ending.end, cache_hit);
                *self.signatures.borrow_mut() = observer.signatures().to_vec();
                let body = AnswerBody::Whole { bytes: ending.out, copy: ending.copy };
                self.judged(judged, Answered { status, content_type, body }, status)
            }
            Opened::Failed(f) => {
                Exchange::Failed { outcome: f.outcome, end: f.end, failure: f.error.into(), retry_after: None }
            }
        }
    }
}

impl<P: Protocol> AigRuntime<'_, P> {
    /// The exchange of a judged answer: measured (its usage, the model that answered), its
    /// warnings kept, and the answer for the caller or the attempt ended as invalid.
    fn judged(
        &self,
        judged: Judged,
        answer: Answered<P::Observer>,
        status: u16,
    ) -> Exchange<Answered<P::Observer>, P::Failure> {
        {
            let mut meter = self.current.borrow_mut();
            meter.tokens = judged.tokens;
            meter.answered_model = judged.answered_by.clone();
        }
        for warning in &judged.warnings {
            worker::console_warn!("{warning}");
        }
        self.warnings.borrow_mut().extend(judged.warnings.iter().cloned());
        judged.exchange(answer, status)
    }
}

/// Each provider's share of its daily budget used, as this isolate last heard it from the
/// provider's limiter (with every reserve): what a route rule's `budget_used_above` reads. It
/// lags other isolates' spending by at most their requests since this one's last reserve.
pub mod budget_use {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        static USED: RefCell<BTreeMap<String, f64>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub fn record(provider: &str, share: f64) {
        USED.with(|u| {
            u.borrow_mut().insert(provider.to_owned(), share);
        });
    }

    /// As permille, for `RequestFacts::budget_used`.
    pub fn permille() -> BTreeMap<String, u32> {
        USED.with(|u| u.borrow().iter().map(|(p, s)| (p.clone(), (s * 1000.0).round() as u32)).collect())
    }
}
