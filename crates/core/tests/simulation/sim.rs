//! The engine's runtime in the simulation: the core's admission and the real limiter state
//! behind limiter calls that yield (`limiters.rs`), closes that land later, and one attempt
//! against the fake upstream, read the way the shell reads it (the core's judge of answers,
//! the real relay and pump).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use gateway_core::account::limits::{LimiterState, Policy, Refusal, MODEL_UNAVAILABLE_MS};
use gateway_core::account::scopes::Scope;
use gateway_core::aig::answer as upstream;
use gateway_core::attempt::AttemptOutcome;
use gateway_core::attempt::Health;
use gateway_core::attempt::Meter;
use gateway_core::attempt::{AttemptEnd, Books};
use gateway_core::engine::{Exchange, Runtime, Target};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::money::pricing::{Prices, Usd};
use gateway_core::names;
use gateway_core::output::OutputContract;
use gateway_core::protocol::judge::Judge;
use gateway_core::relay::pump::{CostFn, Pump, Step};
use gateway_core::relay::SseRelay;
use gateway_core::tools::normalise_completion;

use crate::executor::Clock;
use crate::limiters::{Held, Isolate};
use crate::tool_calls::ToolAnswer;
use crate::upstream::{
    aig_refusal_answer, retired_answer, Fault, Named, RequestUpstream, Rng, StreamPlan, Written, IDS, MODELS, NAMES,
    SECRET,
};

pub const DONE: &[u8] = b"data: [DONE]\n\n";

#[derive(Debug, Clone)]
pub enum Chunk {
    Bytes(Vec<u8>, u64),
    Stall,
    Cut,
    End,
}

pub type SimCost = CostFn<SseRelay>;
pub type SimPump = Pump<SseRelay, SimCost>;

pub enum Answer {
    Whole(Vec<u8>),
    Stream { pump: Box<SimPump>, rest: VecDeque<Chunk>, sent: Vec<u8>, leaves_after: Option<usize> },
}

/// A model marked unavailable, as the engine asked (the sequence number orders it among
/// reservations).
#[derive(Debug, Clone)]
pub struct Mark {
    pub provider: usize,
    pub model: String,
    pub seq: u64,
    pub until: u64,
}

/// An admission a provider's limiter granted (`leased`: under the isolate's lease).
#[derive(Debug, Clone)]
pub struct Granted {
    pub provider: usize,
    pub model: String,
    pub seq: u64,
    pub at: u64,
    pub leased: bool,
}

pub struct Shared {
    pub clock: Rc<Clock>,
    /// Every limiter by name: the providers' (`NAMES`) and the scope's (its key).
    pub limiters: RefCell<HashMap<String, LimiterState>>,
    pub policies: Vec<Policy>,
    pub prices: Rc<Prices>,
    pub ends: RefCell<BTreeMap<&'static str, usize>>,
    /// Providers that are down (every attempt a 503) from one time to another (absolute ms).
    pub outages: Vec<(usize, u64, u64)>,
    /// Models retired from a time on (every attempt a 404 "no longer available").
    pub retired: Vec<(usize, usize, u64)>,
    /// A repository every request falls under, with its own limits (`account/scopes.rs`): each
    /// attempt is admitted by it too, all or nothing, as the shell does.
    pub scope: Option<Scope>,
    pub seq: Cell<u64>,
    pub marks: RefCell<Vec<Mark>>,
    pub granted: RefCell<Vec<Granted>>,
    /// The isolates the requests run in, and whether they admit under leases.
    pub isolates: Vec<Isolate>,
    pub leases: bool,
    /// Calls to the limiters fail or lose their answers now and then.
    pub lossy: bool,
    pub faults: RefCell<Rng>,
    /// Per request: its closes not yet acknowledged, and what its closes charged each limiter.
    pub pending: RefCell<Vec<usize>>,
    pub closed: RefCell<Vec<BTreeMap<String, Usd>>>,
    /// What the killed isolates had at stake when they died.
    pub at_stake: Cell<Usd>,
    /// Each alert threshold a limiter announced, in order: `(limiter, percent)`.
    pub alerts: RefCell<Vec<(String, u32)>>,
}

impl Shared {
    pub fn count(&self, kind: &'static str) {
        *self.ends.borrow_mut().entry(kind).or_default() += 1;
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.set(self.seq.get() + 1);
        self.seq.get()
    }

    fn down(&self, provider: usize, now: u64) -> bool {
        self.outages.iter().any(|&(p, from, until)| p == provider && (from..until).contains(&now))
    }

    fn retired(&self, provider: usize, model: usize, now: u64) -> bool {
        self.retired.iter().any(|&(p, m, from)| p == provider && m == model && now >= from)
    }

    /// Keeps the thresholds a limiter's answer announced, as the shell posts them.
    pub fn note_alerts(&self, alerts: &[gateway_core::account::alerts::Alert]) {
        for alert in alerts.iter().filter(|a| a.model_unavailable.is_none()) {
            self.count(match alert.threshold_percent {
                50 => "alert_50",
                80 => "alert_80",
                _ => "alert_100",
            });
            self.alerts.borrow_mut().push((alert.limiter.clone(), alert.threshold_percent));
        }
    }
}

/// What one attempt did, as the fake upstream saw it.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    pub target: usize,
    pub start: u64,
    pub end: u64,
    /// The `Retry-After` its failure carried, in ms.
    pub retry_after_ms: Option<u64>,
    /// What its books must settle at, as the upstream computed it apart from the gateway
    /// (an answer whose usage was read); `None`: not known to the upstream.
    pub expected: Option<Usd>,
}

pub struct Sim {
    pub shared: Rc<Shared>,
    /// The isolate it runs in, and its index among the schedule's requests.
    pub isolate: usize,
    pub request: usize,
    /// `(provider, model, worst case)` of each target.
    pub targets: Vec<(usize, usize, Usd)>,
    pub stream: bool,
    pub json: Option<OutputContract>,
    /// A tool-call answer (every attempt answers the same calls), and its streamed events after
    /// the role chunk, rendered when first asked.
    pub tools: Option<ToolAnswer>,
    pub tool_events: OnceCell<Vec<String>>,
    pub idle_ms: u64,
    pub deadline: u64,
    pub upstream: RefCell<RequestUpstream>,
    pub log: RefCell<Vec<AttemptLog>>,
    pub rng: RefCell<Rng>,
}

fn failed(outcome: AttemptOutcome, end: AttemptEnd, kind: ErrorKind, text: &str) -> Exchange<Answer, GatewayError> {
    Exchange::Failed { outcome, end, failure: GatewayError::new(kind, text), retry_after: None }
}

fn provider_of(target: &Target<'_>) -> usize {
    NAMES.iter().position(|n| *n == target.provider).expect("a known provider")
}

impl Runtime for Sim {
    type Reservation = Held;
    type Answer = Answer;
    type Failure = GatewayError;

    async fn reserve(&self, target: &Target<'_>) -> Result<Held, Refusal> {
        self.shared.admit(self.isolate, target, provider_of(target)).await
    }

    fn close(&self, held: Held, books: Books, health: Health) {
        let delay = self.rng.borrow_mut().below(5);
        self.shared.close(self.isolate, self.request, held, books, health, delay);
    }

    fn mark_unavailable(&self, target: &Target<'_>) {
        let provider = provider_of(target);
        let now = self.shared.clock.now();
        let model = names::model(target.model());
        let mut limiters = self.shared.limiters.borrow_mut();
        let limiter = limiters.entry(NAMES[provider].to_owned()).or_default();
        let marked_before = limiter.snapshot(now).unavailable_models.iter().any(|m| m.model == model);
        limiter.mark_unavailable(target.model(), "the provider answered 404: no longer available", now);
        let announced = limiter.take_alerts(NAMES[provider]).iter().filter(|a| a.model_unavailable.is_some()).count();
        assert_eq!(announced, usize::from(!marked_before), "a new mark is announced once, a renewal never");
        self.shared.count("model_marked");
        drop(limiters);
        // This isolate no longer admits it under its lease.
        self.shared.isolates[self.isolate].table.borrow_mut().note_unavailable(NAMES[provider], target.model(), now);
        let seq = self.shared.next_seq();
        self.shared.marks.borrow_mut().push(Mark { provider, model, seq, until: now + MODEL_UNAVAILABLE_MS });
    }

    async fn attempt(
        &self,
        target: usize,
        _attempt: u32,
        first_byte_ms: u64,
        _charged_before: Usd,
    ) -> (Exchange<Answer, GatewayError>, Meter) {
        let clock = self.shared.clock.clone();
        let start = clock.now();
        assert!(start < self.deadline, "an attempt started at {start}, after the deadline {}", self.deadline);
        let (provider, model, worst) = self.targets[target];
        let written = self.written(model, worst);
        let fault = self.upstream.borrow_mut().fault();
        // A provider in an outage fails whatever the script says (the script is not consumed
        // twice: its fault is drawn either way); a retired model is gone whatever the outage.
        let fault = if self.shared.down(provider, start) { Fault::Status(503, None) } else { fault };
        let gone = self.shared.retired(provider, model, start);
        // Past the first-byte deadline at times, but only when the dice draw the faults: a
        // script times out where it says so.
        let latency = self.rng.borrow_mut().range(1, first_byte_ms * 5 / 4 + 1);
        let latency = if self.upstream.borrow().random.is_none() { latency.min(first_byte_ms) } else { latency };
        let (exchange, expected) = self.exchange(fault, gone, provider, written, latency, first_byte_ms, start).await;
        let retry_after_ms = match &exchange {
            Exchange::Failed { retry_after, .. } => gateway_core::engine::retry::retry_after_ms(retry_after.as_deref()),
            _ => None,
        };
        match &exchange {
            Exchange::Failed { end, outcome, .. } => {
                self.shared.count(end_kind(end));
                if *outcome == AttemptOutcome::ModelUnavailable {
                    self.shared.count("ModelUnavailable");
                }
            }
            Exchange::Answer { end: Some(end), .. } => self.shared.count(end_kind(end)),
            Exchange::Invalid { end, .. } => {
                self.shared.count(end_kind(end));
                self.shared.count("InvalidOutput");
            }
            Exchange::Answer { end: None, .. } => {}
        }
        let end = clock.now();
        self.log.borrow_mut().push(AttemptLog { target, start, end, retry_after_ms, expected });
        (exchange, Meter { started_ms: start, ended_ms: end, ..Meter::default() })
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

/// A `Retry-After` as sent: whole seconds as AI Gateway and the providers send them, or a
/// fraction of one.
fn retry_after_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

pub fn end_kind(end: &AttemptEnd) -> &'static str {
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

impl Sim {
    /// The answer this attempt would write: its shape, and tokens whose cost at the dearer
    /// rate still fits the target's worst case (so no budget is overspent by a cost above it).
    fn written(&self, model: usize, worst: Usd) -> Written {
        let shape = self.upstream.borrow_mut().shape();
        let half = worst.0 / 2;
        // One draw, random or scripted, so that scripts see the same latencies whatever the tokens.
        let roll = self.rng.borrow_mut().next();
        let (total, prompt) = if self.upstream.borrow().random.is_some() {
            let total = roll % (half + 1);
            (total, (roll >> 32) % (total + 1))
        } else {
            (half, half / 3)
        };
        Written { shape, model: MODELS[model], prompt, output: total - prompt, json: self.json.is_some() }
    }

    fn judge(&self, provider: usize, written: &Written, cache_hit: bool) -> Judge<'_> {
        Judge {
            prices: &self.shared.prices,
            provider: NAMES[provider],
            model: written.model,
            contract: self.json.as_ref(),
            cache_hit,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        fault: Fault,
        gone: bool,
        provider: usize,
        written: Written,
        latency: u64,
        first_byte_ms: u64,
        start: u64,
    ) -> (Exchange<Answer, GatewayError>, Option<Usd>) {
        let clock = self.shared.clock.clone();
        if fault == Fault::Timeout || latency > first_byte_ms {
            clock.sleep(first_byte_ms).await;
            return (
                failed(AttemptOutcome::Timeout, AttemptEnd::NoResponse, ErrorKind::UpstreamTimeout, "no answer"),
                None,
            );
        }
        clock.sleep(latency).await;
        if gone {
            let (status, body) = retired_answer(written.model);
            let outcome = upstream::outcome_of(status, None, body.as_bytes());
            assert_eq!(outcome, AttemptOutcome::ModelUnavailable, "{body}");
            let failure = upstream::error_from_upstream(status, body.as_bytes(), None, NAMES[provider], &[SECRET]);
            return (Exchange::Failed { outcome, end: AttemptEnd::ErrorStatus, failure, retry_after: None }, None);
        }
        match fault {
            Fault::Unreachable => {
                let f = failed(
                    AttemptOutcome::ConnectionError,
                    AttemptEnd::NoResponse,
                    ErrorKind::UpstreamUnreachable,
                    "refused",
                );
                return (f, None);
            }
            Fault::Status(status, retry_after) => {
                let body = format!("{{\"error\":{{\"message\":\"no: cf-aig-authorization: Bearer {SECRET}\"}}}}");
                let retry_after = retry_after.map(retry_after_text);
                let err = upstream::error_from_upstream(
                    status,
                    body.as_bytes(),
                    retry_after.clone(),
                    NAMES[provider],
                    &[SECRET],
                );
                let outcome = upstream::outcome_of(status, None, body.as_bytes());
                return (Exchange::Failed { outcome, end: AttemptEnd::ErrorStatus, failure: err, retry_after }, None);
            }
            Fault::Refusal(refusal, retry_after) => {
                let (status, body, dlp) = aig_refusal_answer(refusal);
                let retry_after = retry_after.map(retry_after_text);
                // Read the way the shell reads it: recognised from the status, code and header.
                let seen = upstream::aig_refusal(status, body.as_bytes(), dlp);
                assert_eq!(seen, Some(refusal), "{body}");
                let err = match seen {
                    Some(r) => upstream::refusal_error(r, status, body.as_bytes(), retry_after.clone(), "p", &[SECRET]),
                    None => upstream::error_from_upstream(status, body.as_bytes(), None, NAMES[provider], &[SECRET]),
                };
                let outcome = upstream::outcome_of(status, seen, body.as_bytes());
                return (Exchange::Failed { outcome, end: AttemptEnd::ErrorStatus, failure: err, retry_after }, None);
            }
            _ => {}
        }
        if self.stream {
            // A stream held to its end (JSON mode) has until the request's deadline.
            let until = if self.json.is_some() { self.deadline } else { start + first_byte_ms };
            return self.open_stream(fault, provider, written, until).await;
        }
        // The whole body, within the idle deadline and what is left of the request's.
        let within = self.idle_ms.min(self.deadline.saturating_sub(clock.now()));
        let body_time = if fault == Fault::SlowBody { within + 1 } else { self.rng.borrow_mut().range(0, 20) };
        if body_time > within {
            clock.sleep(within).await;
            let f =
                failed(AttemptOutcome::Timeout, AttemptEnd::AnswerUnreadable, ErrorKind::UpstreamTimeout, "stopped");
            return (f, None);
        }
        clock.sleep(body_time).await;
        if fault == Fault::Malformed {
            let f = failed(
                AttemptOutcome::MalformedAnswer,
                AttemptEnd::AnswerUnreadable,
                ErrorKind::UpstreamMalformed,
                "not json",
            );
            return (f, None);
        }
        let finish = if fault == Fault::ContentFilter { "content_filter" } else { "stop" };
        let usage = fault != Fault::UnknownCost;
        let body = match (&self.tools, fault) {
            // A tool-call answer, made right the way the shell makes it, whatever its dialect.
            (Some(t), f) if f != Fault::ContentFilter => {
                let body = written.with_model_and_usage(&t.completion_body(), usage);
                normalise_completion(&body).body.into_owned()
            }
            _ => written.completion(finish, usage),
        };
        let judged = match self.judge(provider, &written, fault == Fault::CacheHit).completion(&body) {
            Ok(judged) => judged,
            Err(err) => panic!("the sim's completion is one: {err:?}"),
        };
        if usage {
            let billed = judged.tokens.map(|t| t.prompt() + t.output);
            assert_eq!(
                billed,
                Some(written.prompt + written.output),
                "billed as the provider bills: {}",
                written.usage()
            );
        }
        self.count_shape(&written, judged.answered_by.is_some());
        let expected = match fault {
            Fault::CacheHit => Some(Usd::ZERO),
            _ if usage => Some(written.expected_cost()),
            _ => None,
        };
        (judged.exchange(Answer::Whole(body), 200), expected)
    }

    fn count_shape(&self, written: &Written, answered_by_other: bool) {
        if answered_by_other {
            assert!(matches!(written.shape.named, Named::Other(_)), "{written:?}");
            self.shared.count("answered_by_other");
        }
        if written.json {
            self.shared.count("json_answer");
        }
    }

    fn script(&self, plan: StreamPlan, written: &Written, usage: bool) -> VecDeque<Chunk> {
        let mut rng = self.rng.borrow_mut();
        let mut events: Vec<Vec<u8>> = vec![written.role_event()];
        let mut tail = Chunk::End;
        let pieces = rng.range(1, 3) as usize;
        // A tool-call answer's events carry its own finish; a text answer's come before it.
        let tool_events = self.tools.as_ref().map(|t| {
            self.tool_events
                .get_or_init(|| t.stream_events().into_iter().skip(1).collect())
                .iter()
                .map(|e| written.with_model_and_usage(e, false))
        });
        let tool_calls = tool_events.is_some();
        let content = |events: &mut Vec<Vec<u8>>| match tool_events.clone() {
            Some(calls) => events.extend(calls),
            None => events.extend(written.content_events(pieces)),
        };
        match plan {
            StreamPlan::Clean | StreamPlan::ClientLeaves(_) => {
                content(&mut events);
                // Without a usage event the price cannot be known.
                events.extend(written.end_events(usage).into_iter().skip(usize::from(tool_calls)));
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

    /// Reads until the commit point (a held stream: its end), by `until`.
    async fn open_stream(
        &self,
        fault: Fault,
        provider: usize,
        written: Written,
        until: u64,
    ) -> (Exchange<Answer, GatewayError>, Option<Usd>) {
        let plan = self.upstream.borrow_mut().plan();
        let usage = fault != Fault::UnknownCost;
        let mut rest = self.script(plan, &written, usage);
        let clock = self.shared.clock.clone();
        // Priced as the shell prices a stream: the judge's cost of its final usage.
        let (prices, model) = (self.shared.prices.clone(), written.model);
        let cost: SimCost = Box::new(move |relay: &SseRelay| {
            let judge = Judge { prices: &prices, provider: NAMES[provider], model, contract: None, cache_hit: false };
            judge.cost(relay.summary().usage.as_ref(), relay.answer().model()).cost
        });
        let mut relay = SseRelay::new();
        let held = self.json.is_some();
        if held {
            relay.answer_mut().gather_content();
        }
        let mut pump: SimPump = Pump::new(relay, cost, self.idle_ms, vec![SECRET.to_owned()]);
        if held {
            pump.hold_until_complete();
        }
        loop {
            let window = self.idle_ms.min(until.saturating_sub(clock.now()));
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
                Step::Send(sent) => {
                    assert!(!held, "a stream held to its end sent before it");
                    assert!(pump.observer().summary().saw_content, "sent before the commit point");
                    let leaves_after = match plan {
                        StreamPlan::ClientLeaves(n) => Some(n),
                        _ => None,
                    };
                    let answer = Answer::Stream { pump: Box::new(pump), rest, sent, leaves_after };
                    return (Exchange::Answer { answer, status: 200, end: None, content_filtered: false }, None);
                }
                Step::Done(ending) => {
                    let judged = self.judge(provider, &written, false).stream(pump.observer(), ending.end);
                    let expected = match judged.end {
                        AttemptEnd::StreamComplete { cost: Some(_) } => Some(written.expected_cost()),
                        _ => None,
                    };
                    self.count_shape(&written, judged.answered_by.is_some());
                    return (judged.exchange(Answer::Whole(ending.out), 200), expected);
                }
                Step::Failed(f) => {
                    let failed =
                        Exchange::Failed { outcome: f.outcome, end: f.end, failure: f.error, retry_after: None };
                    return (failed, None);
                }
            }
        }
    }
}

/// Relays a committed stream to its end (or until the client leaves); returns what the client
/// got and how the attempt ended.
pub async fn relay(clock: &Rc<Clock>, idle_ms: u64, answer: Answer) -> (Vec<u8>, Option<AttemptEnd>, bool) {
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

/// The target ids, `provider/model`.
pub fn target_id(provider: usize, model: usize) -> &'static str {
    IDS[provider][model]
}
