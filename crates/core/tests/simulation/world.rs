//! The simulated world: providers with the real limiter state, a scripted or random upstream,
//! requests running the real engine, and the checks after each schedule.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::Rc;

use gateway_core::account::breaker::{health_of_stream, BreakerPolicy, Health};
use gateway_core::account::limits::{LimiterState, Policy, Refusal, DAY_MS};
use gateway_core::account::pricing::Usd;
use gateway_core::account::scopes::{Scope, ScopeKind};
use gateway_core::aig::answer::{self as upstream, AigRefusal, AttemptOutcome};
use gateway_core::config::RetryPolicy;
use gateway_core::engine::{self, books, AttemptEnd, Books, Exchange, Fallback, Rules, Runtime, Target};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::relay::pump::{Pump, Step};
use gateway_core::relay::SseRelay;

use crate::executor::{Clock, Task};

/// A secret the upstream echoes back in its errors: it must never reach a client.
pub const SECRET: &str = "aig-sim-SECRET-7f3a";

const NAMES: [&str; 3] = ["p1", "p2", "p3"];
const IDS: [&str; 3] = ["p1/m", "p2/m", "p3/m"];
/// Somewhere in the middle of a UTC day, so that no schedule crosses midnight.
const START_MS: u64 = 20_000 * DAY_MS + 3_600_000;

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How one non-streamed attempt goes.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    Answer,
    UnknownCost,
    CacheHit,
    ContentFilter,
    /// A status, with a `Retry-After` in ms.
    Status(u16, Option<u64>),
    /// One of AI Gateway's own refusals in its error shape, with a `Retry-After` in ms.
    Refusal(AigRefusal, Option<u64>),
    Timeout,
    Unreachable,
    Malformed,
    /// The body starts and then stops.
    SlowBody,
}

/// How one streamed attempt goes (after a 200; a status or a timeout is a [`Fault`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum StreamPlan {
    Clean,
    CutBefore,
    StallBefore,
    ErrorBefore,
    CutAfter,
    StallAfter,
    MalformedAfter,
    SecretEcho,
    /// The client leaves after this many sends.
    ClientLeaves(usize),
}

#[derive(Debug, Clone)]
enum Chunk {
    Bytes(Vec<u8>, u64),
    Stall,
    Cut,
    End,
}

struct RequestSpec {
    targets: Vec<(usize, Usd)>,
    stream: bool,
    fallback: Fallback,
    start_ms: u64,
    deadline_ms: u64,
    faults: VecDeque<Fault>,
    plans: VecDeque<StreamPlan>,
    /// Draws faults at random once the scripts run out (`None`: answer cleanly).
    random: Option<Rng>,
}

/// One schedule: providers, policy, and requests that run at once.
pub struct Schedule {
    policies: Vec<Policy>,
    retry: RetryPolicy,
    first_byte_ms: u64,
    idle_ms: u64,
    requests: Vec<RequestSpec>,
    /// `(provider, from, until)`: down in that span (absolute ms).
    outages: Vec<(usize, u64, u64)>,
    /// The repository scope's limits, if every request falls under one.
    scope: Option<Policy>,
}

/// What one attempt did, as the fake upstream saw it.
#[derive(Debug, Clone)]
struct AttemptLog {
    target: usize,
    start: u64,
    end: u64,
    /// The `Retry-After` its failure carried, in ms.
    retry_after_ms: Option<u64>,
}

/// What a schedule's requests came to.
#[derive(Debug, Default)]
pub struct Report {
    pub answered: usize,
    pub errors: Vec<Option<GatewayError>>,
    pub traces: Vec<Vec<String>>,
    /// Per request: the waits between a failure with `Retry-After` and the next try of that target.
    pub gaps: Vec<Vec<u64>>,
    pub client_bytes: Vec<Vec<u8>>,
    pub charged: Vec<Usd>,
    pub worst_cases: Vec<Usd>,
    ends: BTreeMap<&'static str, usize>,
    attempts: usize,
}

/// Totals over many schedules.
#[derive(Debug, Default)]
pub struct Stats {
    schedules: usize,
    requests: usize,
    attempts: usize,
    answered: usize,
    ends: BTreeMap<&'static str, usize>,
}

impl Stats {
    pub fn add(&mut self, r: &Report) {
        self.schedules += 1;
        self.requests += r.errors.len();
        self.attempts += r.attempts;
        self.answered += r.answered;
        for (k, v) in &r.ends {
            *self.ends.entry(k).or_default() += v;
        }
    }

    pub fn assert_coverage(&self) {
        for kind in [
            "NoResponse",
            "ErrorStatus",
            "AnswerRead",
            "AnswerUnreadable",
            "CacheHit",
            "ContentFiltered",
            "StreamCutBeforeCommit",
            "StreamStalledBeforeCommit",
            "StreamComplete",
            "StreamCutAfterCommit",
            "StreamStalledAfterCommit",
            "ClientGone",
            "refused",
            "scope_refused",
        ] {
            assert!(self.ends.get(kind).copied().unwrap_or(0) > 0, "no schedule reached {kind}: {self}");
        }
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests, {} attempts, {} answered; endings {:?}",
            self.requests, self.attempts, self.answered, self.ends
        )
    }
}

fn end_kind(end: &AttemptEnd) -> &'static str {
    match end {
        AttemptEnd::NoResponse => "NoResponse",
        AttemptEnd::ErrorStatus => "ErrorStatus",
        AttemptEnd::AnswerRead { .. } => "AnswerRead",
        AttemptEnd::AnswerUnreadable => "AnswerUnreadable",
        AttemptEnd::CacheHit => "CacheHit",
        AttemptEnd::ContentFiltered { .. } => "ContentFiltered",
        AttemptEnd::StreamCutBeforeCommit => "StreamCutBeforeCommit",
        AttemptEnd::StreamStalledBeforeCommit => "StreamStalledBeforeCommit",
        AttemptEnd::StreamComplete { .. } => "StreamComplete",
        AttemptEnd::StreamCutAfterCommit { .. } => "StreamCutAfterCommit",
        AttemptEnd::StreamStalledAfterCommit { .. } => "StreamStalledAfterCommit",
        AttemptEnd::ClientGone { .. } => "ClientGone",
    }
}

const ROLE: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const HELLO: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";

fn usage_event(cost: Usd) -> Vec<u8> {
    format!(
        "data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":{}}}}}\n\n",
        cost.0
    )
    .into_bytes()
}

/// The simulated price: the usage's `total_tokens`, in picodollars.
fn usage_cost(relay: &SseRelay) -> Option<Usd> {
    relay.summary().usage.and_then(|u| u.total_tokens.known()).map(Usd)
}

type SimPump = Pump<SseRelay, fn(&SseRelay) -> Option<Usd>>;

enum Answer {
    Whole(Vec<u8>),
    Stream { pump: Box<SimPump>, rest: VecDeque<Chunk>, sent: Vec<u8>, leaves_after: Option<usize> },
}

struct Shared {
    clock: Rc<Clock>,
    limiters: RefCell<Vec<LimiterState>>,
    policies: Vec<Policy>,
    next_id: Cell<u64>,
    ends: RefCell<BTreeMap<&'static str, usize>>,
    /// Providers that are down (every attempt a 503) from one time to another (absolute ms).
    outages: Vec<(usize, u64, u64)>,
    /// A repository every request falls under, with its own limits (`account/scopes.rs`): each
    /// attempt reserves in it too, all or nothing, as the shell does.
    scope: Option<(Scope, RefCell<LimiterState>)>,
}

impl Shared {
    fn count(&self, kind: &'static str) {
        *self.ends.borrow_mut().entry(kind).or_default() += 1;
    }

    fn down(&self, provider: usize, now: u64) -> bool {
        self.outages.iter().any(|&(p, from, until)| p == provider && (from..until).contains(&now))
    }

    /// Closes a reservation the way the shell does: later, in the background.
    fn close(self: &Rc<Self>, provider: usize, id: String, books: Books, health: Health, delay: u64) {
        let shared = self.clone();
        let clock = self.clock.clone();
        self.clock.spawn(async move {
            clock.sleep(delay).await;
            let now = clock.now();
            let mut limiters = shared.limiters.borrow_mut();
            match books.settle_amount() {
                None => limiters[provider].release(&id, health, now),
                Some(actual) => limiters[provider].settle(&id, actual, health, now),
            }
            if let Some((_, scope)) = &shared.scope {
                match books.settle_amount() {
                    None => scope.borrow_mut().release(&id, Health::Neutral, now),
                    Some(actual) => scope.borrow_mut().settle(&id, actual, Health::Neutral, now),
                }
            }
        });
    }
}

struct Sim {
    shared: Rc<Shared>,
    targets: Vec<(usize, Usd)>,
    stream: bool,
    idle_ms: u64,
    deadline: u64,
    upstream: RefCell<RequestUpstream>,
    log: RefCell<Vec<AttemptLog>>,
    rng: RefCell<Rng>,
}

struct RequestUpstream {
    faults: VecDeque<Fault>,
    plans: VecDeque<StreamPlan>,
    random: Option<Rng>,
}

impl RequestUpstream {
    fn fault(&mut self) -> Fault {
        if let Some(f) = self.faults.pop_front() {
            return f;
        }
        let Some(rng) = &mut self.random else { return Fault::Answer };
        match rng.below(100) {
            0..=39 => Fault::Answer,
            40..=44 => Fault::UnknownCost,
            45..=49 => Fault::CacheHit,
            50..=54 => Fault::ContentFilter,
            55..=59 => Fault::Status(429, rng.chance(60).then(|| rng.range(0, 3) * 250)),
            60..=67 => Fault::Status([500, 502, 503, 529][rng.below(4) as usize], rng.chance(30).then_some(100)),
            68..=71 => Fault::Status([400, 404, 422][rng.below(3) as usize], None),
            72..=74 => Fault::Status([401, 403][rng.below(2) as usize], None),
            75..=81 => Fault::Timeout,
            82..=87 => Fault::Unreachable,
            88..=93 => Fault::Malformed,
            94..=96 => Fault::SlowBody,
            _ => {
                let r = REFUSALS[rng.below(REFUSALS.len() as u64) as usize];
                Fault::Refusal(r, (r == AigRefusal::RateLimited && rng.chance(50)).then_some(300))
            }
        }
    }

    fn plan(&mut self) -> StreamPlan {
        if let Some(p) = self.plans.pop_front() {
            return p;
        }
        let Some(rng) = &mut self.random else { return StreamPlan::Clean };
        match rng.below(100) {
            0..=39 => StreamPlan::Clean,
            40..=47 => StreamPlan::CutBefore,
            48..=54 => StreamPlan::StallBefore,
            55..=59 => StreamPlan::ErrorBefore,
            60..=67 => StreamPlan::CutAfter,
            68..=74 => StreamPlan::StallAfter,
            75..=80 => StreamPlan::MalformedAfter,
            81..=86 => StreamPlan::SecretEcho,
            _ => StreamPlan::ClientLeaves(rng.below(3) as usize),
        }
    }
}

impl Runtime for Sim {
    type Reservation = (usize, String);
    type Answer = Answer;
    type Failure = GatewayError;

    async fn reserve(&self, target: &Target<'_>) -> Result<(usize, String), Refusal> {
        let provider = NAMES.iter().position(|n| *n == target.provider).expect("a known provider");
        // A round trip to the limiter: other requests move meanwhile.
        self.shared.clock.yield_now().await;
        let id = self.shared.next_id.get();
        self.shared.next_id.set(id + 1);
        let id = format!("r{id}");
        let now = self.shared.clock.now();
        let result = self.shared.limiters.borrow_mut()[provider].reserve(&id, target.worst_case, target.limits, now);
        if result.is_err() {
            self.shared.count("refused");
        }
        result?;
        // The scope next, after another round trip; refused, the provider's is taken back.
        if let Some((scope, limiter)) = &self.shared.scope {
            self.shared.clock.yield_now().await;
            let now = self.shared.clock.now();
            if let Err(refusal) = limiter.borrow_mut().reserve(&id, target.worst_case, scope.policy, now) {
                self.shared.count("scope_refused");
                self.shared.limiters.borrow_mut()[provider].cancel(&id, now);
                return Err(Refusal { ends_request: Some(scope.refused(&refusal)), ..refusal });
            }
        }
        Ok((provider, id))
    }

    fn close(&self, (provider, id): (usize, String), books: Books, health: Health) {
        let delay = self.rng.borrow_mut().below(5);
        self.shared.close(provider, id, books, health, delay);
    }

    async fn attempt(
        &self,
        target: usize,
        _attempt: u32,
        first_byte_ms: u64,
        _charged_before: Usd,
    ) -> Exchange<Answer, GatewayError> {
        let clock = self.shared.clock.clone();
        let start = clock.now();
        assert!(start < self.deadline, "an attempt started at {start}, after the deadline {}", self.deadline);
        let (provider, worst) = self.targets[target];
        let cost = Usd(self.rng.borrow_mut().range(0, worst.0));
        let fault = self.upstream.borrow_mut().fault();
        // A provider in an outage fails whatever the script says (the script is not consumed
        // twice: its fault is drawn either way).
        let fault = if self.shared.down(provider, start) { Fault::Status(503, None) } else { fault };
        let latency = self.rng.borrow_mut().range(1, first_byte_ms * 5 / 4 + 1);
        let exchange = self.exchange(fault, provider, cost, latency, first_byte_ms, start).await;
        let retry_after_ms = match &exchange {
            Exchange::Failed { retry_after, .. } => gateway_core::engine::retry::retry_after_ms(retry_after.as_deref()),
            Exchange::Answer { .. } => None,
        };
        match &exchange {
            Exchange::Failed { end, .. } | Exchange::Answer { end: Some(end), .. } => self.shared.count(end_kind(end)),
            Exchange::Answer { end: None, .. } => {}
        }
        self.log.borrow_mut().push(AttemptLog { target, start, end: clock.now(), retry_after_ms });
        exchange
    }

    async fn sleep(&self, ms: u64) {
        self.shared.clock.sleep(ms).await
    }

    fn now(&self) -> u64 {
        self.shared.clock.now()
    }

    fn random(&self) -> f64 {
        self.rng.borrow_mut().unit()
    }
}

const REFUSALS: [AigRefusal; 8] = [
    AigRefusal::SpendLimit,
    AigRefusal::RateLimited,
    AigRefusal::NoCredits,
    AigRefusal::PolicyDenied,
    AigRefusal::PromptBlocked,
    AigRefusal::DlpBlocked,
    AigRefusal::ResponseBlocked,
    AigRefusal::GuardrailUnavailable,
];

/// What AI Gateway sends for a refusal: status, body in its own error shape (echoing the
/// gateway token, to prove it is redacted), and whether a `cf-aig-dlp` header comes with it.
fn aig_refusal_answer(r: AigRefusal) -> (u16, String, bool) {
    let (status, code, message, dlp) = match r {
        AigRefusal::SpendLimit => (429, 2041, "Spend limit exceeded", false),
        AigRefusal::RateLimited => (429, 2003, "Rate limited", false),
        AigRefusal::NoCredits => (402, 2021, "Insufficient credits", false),
        AigRefusal::PolicyDenied => (403, 2050, "Access denied by policy", false),
        AigRefusal::PromptBlocked => (424, 2016, "Prompt blocked due to security configurations", false),
        AigRefusal::DlpBlocked => (400, 2100, "Blocked by DLP", true),
        AigRefusal::ResponseBlocked => (424, 2017, "Response blocked due to security configurations", false),
        AigRefusal::GuardrailUnavailable => (503, 7013, "Guardrail service unavailable", false),
    };
    let body = format!(
        r#"{{"success":false,"result":[],"messages":[],"error":[{{"code":{code},"message":"{message} (Bearer {SECRET})"}}],"name":"AiGatewayError"}}"#
    );
    (status, body, dlp)
}

fn failed(outcome: AttemptOutcome, end: AttemptEnd, kind: ErrorKind, text: &str) -> Exchange<Answer, GatewayError> {
    Exchange::Failed { outcome, end, failure: GatewayError::new(kind, text), retry_after: None }
}

impl Sim {
    async fn exchange(
        &self,
        fault: Fault,
        provider: usize,
        cost: Usd,
        latency: u64,
        first_byte_ms: u64,
        start: u64,
    ) -> Exchange<Answer, GatewayError> {
        let clock = self.shared.clock.clone();
        if fault == Fault::Timeout || latency > first_byte_ms {
            clock.sleep(first_byte_ms).await;
            return failed(AttemptOutcome::Timeout, AttemptEnd::NoResponse, ErrorKind::UpstreamTimeout, "no answer");
        }
        clock.sleep(latency).await;
        match fault {
            Fault::Unreachable => {
                return failed(
                    AttemptOutcome::ConnectionError,
                    AttemptEnd::NoResponse,
                    ErrorKind::UpstreamUnreachable,
                    "refused",
                )
            }
            Fault::Status(status, retry_after) => {
                let body = format!("{{\"error\":{{\"message\":\"no: cf-aig-authorization: Bearer {SECRET}\"}}}}");
                let retry_after = retry_after.map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000));
                let err = upstream::error_from_upstream(
                    status,
                    body.as_bytes(),
                    retry_after.clone(),
                    NAMES[provider],
                    &[SECRET],
                );
                return Exchange::Failed {
                    outcome: AttemptOutcome::Status(status),
                    end: AttemptEnd::ErrorStatus,
                    failure: err,
                    retry_after,
                };
            }
            Fault::Refusal(refusal, retry_after) => {
                let (status, body, dlp) = aig_refusal_answer(refusal);
                let retry_after = retry_after.map(|ms| format!("{}.{:03}", ms / 1000, ms % 1000));
                // Read the way the shell reads it: recognised from the status, code and header.
                let seen = upstream::aig_refusal(status, body.as_bytes(), dlp);
                assert_eq!(seen, Some(refusal), "{body}");
                let err = match seen {
                    Some(r) => upstream::refusal_error(r, status, body.as_bytes(), retry_after.clone(), "p", &[SECRET]),
                    None => upstream::error_from_upstream(status, body.as_bytes(), None, NAMES[provider], &[SECRET]),
                };
                return Exchange::Failed {
                    outcome: upstream::outcome_of(status, seen),
                    end: AttemptEnd::ErrorStatus,
                    failure: err,
                    retry_after,
                };
            }
            _ => {}
        }
        if self.stream {
            return self.open_stream(fault, cost, start + first_byte_ms).await;
        }
        // The whole body, within the idle deadline and what is left of the request's.
        let within = self.idle_ms.min(self.deadline.saturating_sub(clock.now()));
        let body_time = if fault == Fault::SlowBody { within + 1 } else { self.rng.borrow_mut().range(0, 20) };
        if body_time > within {
            clock.sleep(within).await;
            return failed(
                AttemptOutcome::Timeout,
                AttemptEnd::AnswerUnreadable,
                ErrorKind::UpstreamTimeout,
                "stopped",
            );
        }
        clock.sleep(body_time).await;
        let answer = |end| Exchange::Answer {
            answer: Answer::Whole(b"{}".to_vec()),
            status: 200,
            end: Some(end),
            content_filtered: false,
        };
        match fault {
            Fault::UnknownCost => answer(AttemptEnd::AnswerRead { cost: None }),
            Fault::CacheHit => answer(AttemptEnd::CacheHit),
            Fault::ContentFilter => Exchange::Answer {
                answer: Answer::Whole(b"{}".to_vec()),
                status: 200,
                end: Some(AttemptEnd::ContentFiltered { cost: Some(cost) }),
                content_filtered: true,
            },
            Fault::Malformed => failed(
                AttemptOutcome::MalformedAnswer,
                AttemptEnd::AnswerUnreadable,
                ErrorKind::UpstreamMalformed,
                "not json",
            ),
            _ => answer(AttemptEnd::AnswerRead { cost: Some(cost) }),
        }
    }

    fn script(&self, plan: StreamPlan, cost: Option<Usd>) -> VecDeque<Chunk> {
        let mut rng = self.rng.borrow_mut();
        let mut events: Vec<Vec<u8>> = vec![ROLE.to_vec()];
        let mut tail = Chunk::End;
        let contents = rng.range(1, 3);
        let content = |events: &mut Vec<Vec<u8>>| (0..contents).for_each(|_| events.push(HELLO.to_vec()));
        match plan {
            StreamPlan::Clean | StreamPlan::ClientLeaves(_) => {
                content(&mut events);
                // Without a usage event the price cannot be known.
                events.extend(cost.map(usage_event));
                events.push(DONE.to_vec());
            }
            StreamPlan::CutBefore => tail = Chunk::Cut,
            StreamPlan::StallBefore => tail = Chunk::Stall,
            StreamPlan::ErrorBefore => {
                events.push(format!("data: {{\"error\":{{\"message\":\"overloaded {SECRET}\"}}}}\n\n").into_bytes())
            }
            StreamPlan::CutAfter => {
                content(&mut events);
                tail = Chunk::Cut;
            }
            StreamPlan::StallAfter => {
                content(&mut events);
                tail = Chunk::Stall;
            }
            StreamPlan::MalformedAfter => {
                content(&mut events);
                events.push(b"data: {not json\n\n".to_vec());
            }
            StreamPlan::SecretEcho => {
                content(&mut events);
                events.push(
                    format!("event: error\ndata: {{\"error\":{{\"message\":\"bad header cf-aig-authorization: Bearer {SECRET}\"}}}}\n\n")
                        .into_bytes(),
                );
            }
        }
        // Cut the bytes where a network might: anywhere, events split and merged.
        let bytes = events.concat();
        let mut chunks = VecDeque::new();
        let mut at = 0;
        while at < bytes.len() {
            let len = rng.range(1, 96) as usize;
            let end = (at + len).min(bytes.len());
            chunks.push_back(Chunk::Bytes(bytes[at..end].to_vec(), rng.range(0, 4)));
            at = end;
        }
        chunks.push_back(tail);
        chunks
    }

    /// Reads until the commit point, within the attempt's first-byte window.
    async fn open_stream(&self, fault: Fault, cost: Usd, attempt_deadline: u64) -> Exchange<Answer, GatewayError> {
        let plan = self.upstream.borrow_mut().plan();
        let cost = if fault == Fault::UnknownCost { None } else { Some(cost) };
        let mut rest = self.script(plan, cost);
        let clock = self.shared.clock.clone();
        let mut pump: SimPump = Pump::new(
            SseRelay::new(),
            usage_cost as fn(&SseRelay) -> Option<Usd>,
            self.idle_ms,
            vec![SECRET.to_owned()],
        );
        loop {
            let window = self.idle_ms.min(attempt_deadline.saturating_sub(clock.now()));
            let step = match rest.pop_front().expect("a script ends with an ending") {
                Chunk::Bytes(bytes, delay) if delay <= window => {
                    clock.sleep(delay).await;
                    pump.on_chunk(&bytes)
                }
                Chunk::Bytes(..) | Chunk::Stall => {
                    clock.sleep(window).await;
                    pump.on_stall()
                }
                Chunk::Cut => pump.on_broken(),
                Chunk::End => pump.on_end(),
            };
            match step {
                Step::Wait => continue,
                Step::Send(held) => {
                    assert!(held.windows(7).any(|w| w == b"\"Hello\""), "sent before the commit point");
                    let leaves_after = match plan {
                        StreamPlan::ClientLeaves(n) => Some(n),
                        _ => None,
                    };
                    return Exchange::Answer {
                        answer: Answer::Stream { pump: Box::new(pump), rest, sent: held, leaves_after },
                        status: 200,
                        end: None,
                        content_filtered: false,
                    };
                }
                Step::Done(ending) => {
                    return Exchange::Answer {
                        answer: Answer::Whole(ending.out),
                        status: 200,
                        end: Some(ending.end),
                        content_filtered: false,
                    }
                }
                Step::Failed(f) => {
                    return Exchange::Failed { outcome: f.outcome, end: f.end, failure: f.error, retry_after: None }
                }
            }
        }
    }
}

/// Relays a committed stream to its end (or until the client leaves); returns what the client
/// got and how the attempt ended.
async fn relay(clock: &Rc<Clock>, idle_ms: u64, answer: Answer) -> (Vec<u8>, Option<AttemptEnd>, bool) {
    let Answer::Stream { mut pump, mut rest, mut sent, leaves_after } = answer else { unreachable!() };
    let mut sends = 0;
    loop {
        if leaves_after == Some(sends) {
            return (sent, pump.on_client_gone(), false);
        }
        let step = match rest.pop_front() {
            Some(Chunk::Bytes(bytes, delay)) => {
                clock.sleep(delay).await;
                pump.on_chunk(&bytes)
            }
            Some(Chunk::Stall) => {
                clock.sleep(idle_ms).await;
                pump.on_stall()
            }
            Some(Chunk::Cut) => pump.on_broken(),
            Some(Chunk::End) | None => pump.on_end(),
        };
        match step {
            Step::Wait => {}
            Step::Send(bytes) => {
                sends += 1;
                sent.extend_from_slice(&bytes);
            }
            Step::Done(ending) => {
                sent.extend_from_slice(&ending.out);
                let clean = ending.fault.is_none();
                if clean {
                    assert!(sent.ends_with(DONE), "a clean end is the stream's own end");
                } else {
                    assert!(!ending.cut, "the OpenAI format carries its error event");
                    let text = String::from_utf8_lossy(&sent).into_owned();
                    assert!(
                        text.trim_end().rsplit("\n\n").next().unwrap().starts_with("data: {\"error\""),
                        "a broken stream must end in an error event: {text}"
                    );
                    assert!(!text.contains("data: [DONE]"), "a broken stream never looks complete: {text}");
                }
                return (sent, Some(ending.end), clean);
            }
            Step::Failed(_) => panic!("a committed stream cannot fail its attempt"),
        }
    }
}

impl Schedule {
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
        let providers = rng.range(1, 3) as usize;
        let policies = (0..providers)
            .map(|_| Policy {
                requests_per_minute: [1, 2, 4, 1000][rng.below(4) as usize],
                daily_budget: Usd([50_000, 200_000, 1_000_000_000][rng.below(3) as usize]),
                // Half the providers have a breaker, tight enough to open within a schedule.
                breaker: rng.chance(50).then(|| BreakerPolicy {
                    window_ms: 10_000,
                    min_attempts: rng.range(1, 4) as u32,
                    failure_permille: [300, 500, 1000][rng.below(3) as usize],
                    cooldown_ms: rng.range(50, 2000),
                    probes: rng.range(1, 2) as u32,
                }),
            })
            .collect();
        let retry = RetryPolicy {
            attempts_per_target: rng.range(1, 3) as u32,
            base_delay_ms: rng.range(5, 100),
            max_delay_ms: 1000,
            max_retry_after_ms: [0, 500, 5000][rng.below(3) as usize],
        };
        let first_byte_ms = rng.range(50, 800);
        let idle_ms = rng.range(20, 400);
        let requests = (0..rng.range(1, 6))
            .map(|_| {
                let native = rng.chance(25);
                let n = if native { 1 } else { rng.range(1, 3) as usize };
                let targets =
                    (0..n).map(|_| (rng.below(providers as u64) as usize, Usd(rng.range(1_000, 40_000)))).collect();
                RequestSpec {
                    targets,
                    stream: rng.chance(50),
                    fallback: if native { Fallback::SameTargetOnly } else { Fallback::NextTarget },
                    start_ms: rng.range(0, 50),
                    deadline_ms: rng.range(100, 4000),
                    faults: VecDeque::new(),
                    plans: VecDeque::new(),
                    random: Some(Rng(rng.next())),
                }
            })
            .collect();
        // Sometimes a provider is down for a while, whatever the requests' own faults.
        let outages = if rng.chance(30) {
            let from = rng.range(0, 500);
            vec![(rng.below(providers as u64) as usize, START_MS + from, START_MS + from + rng.range(100, 3000))]
        } else {
            Vec::new()
        };
        // Sometimes every request is of one repository with limits of its own.
        let scope = rng.chance(30).then(|| Policy {
            requests_per_minute: [1, 3, 1000][rng.below(3) as usize],
            daily_budget: Usd([30_000, 100_000, 1_000_000_000][rng.below(3) as usize]),
            breaker: None,
        });
        Schedule { policies, retry, first_byte_ms, idle_ms, requests, outages, scope }
    }

    fn scripted(
        policies: Vec<Policy>,
        targets: Vec<(usize, Usd)>,
        stream: bool,
        faults: Vec<Fault>,
        plans: Vec<StreamPlan>,
    ) -> Schedule {
        Schedule {
            policies,
            retry: RetryPolicy {
                attempts_per_target: 2,
                base_delay_ms: 50,
                max_delay_ms: 1000,
                max_retry_after_ms: 5000,
            },
            first_byte_ms: 500,
            idle_ms: 200,
            requests: vec![RequestSpec {
                targets,
                stream,
                fallback: Fallback::NextTarget,
                start_ms: 0,
                deadline_ms: 10_000,
                faults: faults.into(),
                plans: plans.into(),
                random: None,
            }],
            outages: Vec::new(),
            scope: None,
        }
    }

    fn generous() -> Policy {
        Policy { requests_per_minute: 1000, daily_budget: Usd(1_000_000_000), breaker: None }
    }

    /// A provider down from the start for `outage_ms`, then well, behind a circuit breaker
    /// (opens at 3 failures of 3, cool-down `cooldown_ms`, one probe); a second provider always
    /// well. `count` requests, one every `every_ms`, each trying the first, then the second.
    pub fn scripted_outage(outage_ms: u64, cooldown_ms: u64, count: usize, every_ms: u64) -> Schedule {
        let breaker =
            BreakerPolicy { window_ms: 60_000, min_attempts: 3, failure_permille: 1000, cooldown_ms, probes: 1 };
        let mut schedule = Self::scripted(
            vec![Policy { breaker: Some(breaker), ..Self::generous() }, Self::generous()],
            vec![(0, Usd(1000)), (1, Usd(1000))],
            false,
            vec![],
            vec![],
        );
        let template = schedule.requests.pop().expect("one request");
        schedule.requests = (0..count)
            .map(|i| RequestSpec {
                start_ms: i as u64 * every_ms,
                faults: VecDeque::new(),
                plans: VecDeque::new(),
                random: None,
                targets: template.targets.clone(),
                ..template
            })
            .collect();
        schedule.outages = vec![(0, START_MS, START_MS + outage_ms)];
        schedule
    }

    pub fn scripted_failover() -> Schedule {
        let faults = vec![Fault::Status(503, None), Fault::Status(503, None), Fault::Answer];
        Self::scripted(
            vec![Self::generous(), Self::generous()],
            vec![(0, Usd(1000)), (1, Usd(1000))],
            false,
            faults,
            vec![],
        )
    }

    /// Two targets; the first answers with AI Gateway's `refusal`, then everything answers.
    pub fn scripted_refusal(refusal: AigRefusal, retry_after_ms: Option<u64>) -> Schedule {
        Self::scripted(
            vec![Self::generous(), Self::generous()],
            vec![(0, Usd(1000)), (1, Usd(1000))],
            false,
            vec![Fault::Refusal(refusal, retry_after_ms), Fault::Answer, Fault::Answer],
            vec![],
        )
    }

    pub fn scripted_retry_after(ms: u64) -> Schedule {
        Self::scripted(vec![Self::generous()], vec![(0, Usd(1000))], false, vec![Fault::Status(429, Some(ms))], vec![])
    }

    pub fn scripted_all_limited() -> Schedule {
        let limited = Policy { requests_per_minute: 0, daily_budget: Usd(1_000_000), breaker: None };
        let broke = Policy { requests_per_minute: 1000, daily_budget: Usd(10), breaker: None };
        Self::scripted(vec![limited, broke], vec![(0, Usd(1000)), (1, Usd(1000))], false, vec![], vec![])
    }

    pub fn scripted_secret_echo() -> Schedule {
        Self::scripted(vec![Self::generous()], vec![(0, Usd(1000))], true, vec![], vec![StreamPlan::SecretEcho])
    }

    pub fn scripted_client_leaves() -> Schedule {
        Self::scripted(vec![Self::generous()], vec![(0, Usd(1000))], true, vec![], vec![StreamPlan::ClientLeaves(0)])
    }

    /// Runs every request at once, then checks the invariants; the report says what happened.
    pub fn run_and_check(self) -> Report {
        let clock = Clock::starting_at(START_MS);
        let shared = Rc::new(Shared {
            clock: clock.clone(),
            limiters: RefCell::new(vec![LimiterState::default(); self.policies.len()]),
            policies: self.policies.clone(),
            next_id: Cell::new(0),
            ends: RefCell::default(),
            outages: self.outages.clone(),
            scope: self.scope.map(|policy| {
                let scope = Scope { kind: ScopeKind::Repository, name: "octo/app".into(), policy };
                (scope, RefCell::new(LimiterState::default()))
            }),
        });
        let outcomes: Rc<RefCell<Vec<Option<RequestOutcome>>>> =
            Rc::new(RefCell::new((0..self.requests.len()).map(|_| None).collect()));
        let mut tasks: Vec<Task> = Vec::new();
        for (i, spec) in self.requests.into_iter().enumerate() {
            let (shared, outcomes, clock) = (shared.clone(), outcomes.clone(), clock.clone());
            let (retry, first_byte_ms, idle_ms) = (self.retry, self.first_byte_ms, self.idle_ms);
            tasks.push(Box::pin(async move {
                clock.sleep(spec.start_ms).await;
                let deadline = clock.now() + spec.deadline_ms;
                let sim = Sim {
                    shared: shared.clone(),
                    targets: spec.targets.clone(),
                    stream: spec.stream,
                    idle_ms,
                    deadline,
                    upstream: RefCell::new(RequestUpstream {
                        faults: spec.faults,
                        plans: spec.plans,
                        random: spec.random.clone(),
                    }),
                    log: RefCell::default(),
                    rng: RefCell::new(Rng(spec.random.map_or(7, |mut r| r.next()))),
                };
                let targets: Vec<Target> = spec
                    .targets
                    .iter()
                    .map(|&(p, worst)| Target {
                        id: IDS[p],
                        provider: NAMES[p],
                        limits: shared.policies[p],
                        worst_case: worst,
                    })
                    .collect();
                let rules = Rules {
                    retry: &retry,
                    deadline_ms: deadline,
                    first_byte_timeout_ms: first_byte_ms,
                    fallback: spec.fallback,
                    subject: "the route",
                };
                let (result, record) = engine::run(&sim, &targets, &rules).await;
                let answered_at = clock.now();
                assert!(answered_at <= deadline, "the answer started at {answered_at}, after the deadline {deadline}");
                // One line per attempt (the ledger's rows), and they add up to what was charged:
                // only a committed stream's (the last) is still open.
                assert_eq!(record.lines.len() as u32, record.attempts, "one line per attempt");
                let lined = record.lines.iter().filter_map(|l| l.charged).fold(Usd::ZERO, Usd::saturating_add);
                assert_eq!(lined, record.charged, "the lines add up to what the record charged");
                let open = record.lines.iter().filter(|l| l.charged.is_none()).count();
                assert!(open <= 1 && record.lines.iter().rev().skip(1).all(|l| l.charged.is_some()));
                let mut charged = record.charged;
                let mut client = Vec::new();
                let error = match result {
                    Ok(win) => {
                        match (win.answer, win.open) {
                            (Answer::Whole(bytes), None) => client = bytes,
                            (stream @ Answer::Stream { .. }, Some((provider, id))) => {
                                let (sent, end, _clean) = relay(&clock, idle_ms, stream).await;
                                client = sent;
                                let end = end.expect("a stream ends once");
                                shared.count(end_kind(&end));
                                let b = books(end);
                                charged = charged.saturating_add(b.charge(targets[win.target].worst_case));
                                let delay = sim.rng.borrow_mut().below(5);
                                shared.close(provider, id, b, health_of_stream(end), delay);
                            }
                            _ => panic!("a whole answer has no open reservation, a stream always has one"),
                        }
                        None
                    }
                    Err(err) => Some(err),
                };
                let log = sim.log.borrow().clone();
                outcomes.borrow_mut()[i] = Some(RequestOutcome {
                    error,
                    record,
                    log,
                    client,
                    charged,
                    worst: targets.iter().map(|t| t.worst_case).fold(Usd::ZERO, |a, b| a.saturating_add(b)),
                    targets: targets.iter().map(|t| t.id).collect(),
                });
            }));
        }
        clock.run(tasks);
        let outcomes: Vec<RequestOutcome> =
            outcomes.take().into_iter().map(|o| o.expect("every request finished")).collect();
        check_books(&shared, &outcomes);
        let mut report = Report { ends: shared.ends.take(), ..Report::default() };
        for o in outcomes {
            check_request(&o);
            report.attempts += o.log.len();
            report.answered += usize::from(o.error.is_none());
            report.gaps.push(retry_gaps(&o.log));
            report.traces.push(o.record.trace.clone());
            report.client_bytes.push(o.client);
            report.charged.push(o.charged);
            report.worst_cases.push(o.worst);
            report.errors.push(o.error);
        }
        report
    }
}

struct RequestOutcome {
    error: Option<GatewayError>,
    record: engine::Record,
    log: Vec<AttemptLog>,
    client: Vec<u8>,
    charged: Usd,
    worst: Usd,
    targets: Vec<&'static str>,
}

fn retry_gaps(log: &[AttemptLog]) -> Vec<u64> {
    log.windows(2)
        .filter(|w| w[0].target == w[1].target && w[0].retry_after_ms.is_some())
        .map(|w| w[1].start - w[0].end)
        .collect()
}

fn check_request(o: &RequestOutcome) {
    // A well-formed error with a status the SDKs map, and no secret in it.
    if let Some(err) = &o.error {
        let status = err.status();
        assert!((400..=599).contains(&status) || status == 200, "status {status}");
        let json: serde_json::Value = serde_json::from_str(&err.to_json()).expect("the error is JSON");
        for field in ["message", "type", "code"] {
            assert!(json["error"].get(field).is_some(), "error without {field}: {json}");
        }
        assert!(!err.to_json().contains(SECRET), "a secret in an error: {}", err.to_json());
    }
    assert!(!String::from_utf8_lossy(&o.client).contains(SECRET), "a secret reached the client");
    // The trace names every attempt, in order, and every skip. (A spend limit is a skip learned
    // from an attempt: AI Gateway refused it, so it is both.)
    let attempted: Vec<&str> = o
        .record
        .trace
        .iter()
        .filter(|t| !t.contains("=skipped:") || t.ends_with("=skipped:aig_spend_limit"))
        .map(|t| t.split('=').next().unwrap())
        .collect();
    let logged: Vec<&str> = o.log.iter().map(|a| o.targets[a.target]).collect();
    assert_eq!(attempted, logged, "the trace must name every attempt: {:?}", o.record.trace);
    assert_eq!(o.record.attempts as usize, o.log.len());
    // Every Retry-After was waited for before the same target was tried again.
    for w in o.log.windows(2) {
        if let (Some(ra), true) = (w[0].retry_after_ms, w[0].target == w[1].target) {
            assert!(w[1].start - w[0].end >= ra, "Retry-After {ra} ms not honoured: {:?}", o.log);
        }
    }
    // Attempts never overlap: nothing is retried while an answer is in flight.
    for w in o.log.windows(2) {
        assert!(w[1].start >= w[0].end, "attempts overlap: {:?}", o.log);
    }
}

fn check_books(shared: &Shared, outcomes: &[RequestOutcome]) {
    let now = shared.clock.now();
    let charged = outcomes.iter().fold(Usd::ZERO, |a, o| a.saturating_add(o.charged));
    let mut spent = Usd::ZERO;
    for (i, limiter) in shared.limiters.borrow_mut().iter_mut().enumerate() {
        let snapshot = limiter.snapshot(now);
        assert_eq!(
            snapshot.outstanding_reservations, 0,
            "{} reservations left open on {}",
            snapshot.outstanding_reservations, NAMES[i]
        );
        assert_eq!(snapshot.reserved_usd, Usd::ZERO);
        assert!(
            snapshot.spent_usd <= shared.policies[i].daily_budget,
            "{} overspent: {} > {}",
            NAMES[i],
            snapshot.spent_usd,
            shared.policies[i].daily_budget
        );
        spent = spent.saturating_add(snapshot.spent_usd);
    }
    assert_eq!(charged, spent, "what the requests were charged must equal what the limiters recorded");
    // The scope holds the same books: all or nothing, nothing left reserved, never overspent.
    if let Some((scope, limiter)) = &shared.scope {
        let snapshot = limiter.borrow_mut().snapshot(now);
        assert_eq!(snapshot.outstanding_reservations, 0, "reservations left open in the scope");
        assert_eq!(snapshot.spent_usd, charged, "the scope was charged what the requests were");
        assert!(snapshot.spent_usd <= scope.policy.daily_budget, "the scope overspent");
    }
}
