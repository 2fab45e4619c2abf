//! What must hold after every schedule, and what the schedules came to.

use std::collections::BTreeMap;
use std::fmt;

use gateway_core::aig::answer::read_completion;
use gateway_core::engine;
use gateway_core::error::GatewayError;
use gateway_core::money::pricing::Usd;
use gateway_core::output::{AnswerContent, OutputContract, Verdict};
use gateway_core::relay::SseRelay;

use gateway_core::account::limits::lease::LEASE_TTL_MS;
use gateway_core::account::limits::{MODEL_UNAVAILABLE_MS, RESERVATION_TTL_MS};

use crate::sim::{AttemptLog, Shared, DONE};
use crate::tool_calls::{accumulate_stream, completion_calls, ToolAnswer};
use crate::upstream::{NAMES, SECRET};

/// What one request came to.
pub struct RequestOutcome {
    pub error: Option<GatewayError>,
    pub record: engine::Record,
    pub log: Vec<AttemptLog>,
    pub client: Vec<u8>,
    pub charged: Usd,
    pub worst: Usd,
    pub targets: Vec<&'static str>,
    pub stream: bool,
    pub json: Option<OutputContract>,
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
    /// Per request, per attempt: what its line was charged.
    pub lines: Vec<Vec<Option<Usd>>>,
    pub ends: BTreeMap<&'static str, usize>,
    pub attempts: usize,
    /// Each alert threshold a limiter announced, in order: `(limiter, percent)`.
    pub alerts: Vec<(String, u32)>,
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
            "leased",
            "reserved",
            "lease_sync",
            "admission_answer_lost",
            "limiter_unavailable",
            "isolate_killed",
            "died_charged",
            "InvalidOutput",
            "ModelUnavailable",
            "model_marked",
            "skipped_model_unavailable",
            "answered_by_other",
            "json_answer",
            "ToolStreamChecked",
            "ToolWholeChecked",
            "alert_50",
            "alert_80",
            "alert_100",
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

pub fn retry_gaps(log: &[AttemptLog]) -> Vec<u64> {
    log.windows(2)
        .filter(|w| w[0].target == w[1].target && w[0].retry_after_ms.is_some())
        .map(|w| w[1].start - w[0].end)
        .collect()
}

pub fn check_request(o: &RequestOutcome) {
    // A well-formed error with a status the SDKs map, and no secret in it.
    if let Some(err) = &o.error {
        let status = err.status();
        assert!((400..=599).contains(&status) || status == 200, "status {status}");
        let text = err.to_json();
        let json: serde_json::Value = serde_json::from_str(&text).expect("the error is JSON");
        for field in ["message", "type", "code"] {
            assert!(json["error"].get(field).is_some(), "error without {field}: {json}");
        }
        assert!(!text.contains(SECRET), "a secret in an error: {text}");
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
    // An answer whose usage was read is charged what the upstream billed, at the rate of the
    // model that answered, to the picodollar: the billing rule and the pricing, end to end.
    for (line, log) in o.record.lines.iter().zip(&o.log) {
        // Each line carries what was measured of its own attempt.
        assert_eq!((line.meter.started_ms, line.meter.ended_ms), (log.start, log.end), "{:?}", o.record.trace);
        if let Some(expected) = log.expected {
            assert_eq!(line.charged, Some(expected), "charged as billed: {:?} {:?}", o.record.trace, log);
        }
    }
    check_json_answer(o);
}

/// A request that asked for JSON never gets a 200 whose content is not what it asked for.
fn check_json_answer(o: &RequestOutcome) {
    let (Some(contract), None) = (&o.json, &o.error) else {
        if o.json.is_some() {
            // Failing, it names what each answer was not (or why no answer came).
            let err = o.error.as_ref().expect("an error");
            if err.kind.code() == "invalid_output" {
                assert!(o.record.trace.iter().any(|t| t.ends_with("=invalid_output")), "{:?}", o.record.trace);
            }
        }
        return;
    };
    let verdict = if o.stream {
        let mut relay = SseRelay::new();
        relay.answer_mut().gather_content();
        let mut out = Vec::new();
        relay.push(&o.client, &mut out).expect("the client's stream reads back");
        relay.finish(&mut out).expect("a stream given whole is complete");
        let s = relay.summary();
        if !s.saw_content && s.finish_reason.as_deref() == Some("content_filter") {
            return;
        }
        contract.check(&relay.answer().content())
    } else {
        let completion = read_completion(&o.client).expect("a 200 is a completion");
        if completion.finish_reason.as_deref() == Some("content_filter") {
            return;
        }
        contract.check(&AnswerContent::of_completion(&o.client))
    };
    assert!(
        !matches!(verdict, Verdict::Invalid(_)),
        "a JSON-mode request got a 200 that is not what it asked: {verdict:?}"
    );
}

/// The books, once every lease and reservation had its time (what a dead isolate left open
/// expired). Each limiter's spend is what the closes charged it, to the picodollar, and nothing
/// is charged as died, when no isolate died. When one did: the ledger (the rows of the requests
/// that lived to write them, after their limiters acknowledged their closes) is within the
/// spend; the spend beyond what the closes charged is shown as charged for requests whose
/// isolate died; and that figure is at most what the dead isolates had at stake. No budget,
/// provider's or scope's, is overspent.
pub fn check_books(shared: &Shared, outcomes: &[(usize, RequestOutcome)], kills: bool) {
    let now = shared.clock.now();
    let closed = shared.closed.borrow();
    let mut limiters = shared.limiters.borrow_mut();
    if !kills {
        for (name, limiter) in limiters.iter_mut() {
            let snapshot = limiter.snapshot(now);
            assert_eq!(
                snapshot.outstanding_reservations, 0,
                "{} reservations left open on {name}",
                snapshot.outstanding_reservations
            );
            assert_eq!(snapshot.reserved_usd, Usd::ZERO);
        }
    }
    let later = now + RESERVATION_TTL_MS + LEASE_TTL_MS + 1;
    let charged_to = |name: &str, requests: &mut dyn Iterator<Item = usize>| {
        requests.fold(Usd::ZERO, |sum, r| sum.saturating_add(closed[r].get(name).copied().unwrap_or(Usd::ZERO)))
    };
    let mut died = Usd::ZERO;
    for (name, limiter) in limiters.iter_mut() {
        let snapshot = limiter.snapshot(later);
        // What the expiries charged crosses thresholds the limiter announces with its next
        // operation's answer, as it would the next time a request asked.
        shared.note_alerts(&limiter.take_alerts(name));
        let budget = match NAMES.iter().position(|n| n == name) {
            Some(i) => shared.policies[i].daily_budget,
            None => shared.scope.as_ref().map_or(Usd::ZERO, |s| s.policy.daily_budget),
        };
        assert!(snapshot.spent_usd <= budget, "{name} overspent: {} > {budget}", snapshot.spent_usd);
        let closes = charged_to(name, &mut (0..closed.len()));
        let ledger = charged_to(name, &mut outcomes.iter().map(|(i, _)| *i));
        if !kills {
            assert_eq!(
                snapshot.spent_usd, closes,
                "{name}: what the requests were charged must equal what the limiter recorded"
            );
            assert_eq!(snapshot.isolate_died_usd, Usd::ZERO, "{name}: nothing died, nothing charged as died");
        }
        assert!(ledger <= snapshot.spent_usd, "{name}: the ledger says {ledger}, the limiter {}", snapshot.spent_usd);
        assert!(
            snapshot.spent_usd.saturating_sub(snapshot.isolate_died_usd) <= closes,
            "{name}: spent {} beyond the closes' {closes} and the {} shown as died",
            snapshot.spent_usd,
            snapshot.isolate_died_usd
        );
        died = died.saturating_add(snapshot.isolate_died_usd);
    }
    if died > Usd::ZERO {
        shared.count("died_charged");
    }
    assert!(
        died <= shared.at_stake.get(),
        "charged {died} as died, the dead isolates had {} at stake",
        shared.at_stake.get()
    );
    // Each request's rows say what it was charged, as its provider's and its scope's closes did.
    for (i, o) in outcomes {
        let providers =
            NAMES.iter().fold(Usd::ZERO, |sum, n| sum.saturating_add(closed[*i].get(*n).copied().unwrap_or(Usd::ZERO)));
        assert_eq!(providers, o.charged, "request {i}: its closes and its record");
        if let Some(scope) = &shared.scope {
            let scoped = closed[*i].get(&scope.key()).copied().unwrap_or(Usd::ZERO);
            assert_eq!(scoped, o.charged, "request {i}: the scope was charged what the request was");
        }
    }
}

/// Each limiter announced each threshold at most once (a schedule is within one day), in order:
/// 50% and 80% exactly when the day's spend reached them, and 100% (a refusal once most of the
/// budget is spent) only after 80%.
pub fn check_alerts(shared: &Shared) {
    let now = shared.clock.now();
    let alerts = shared.alerts.borrow();
    let check = |name: &str, spent: Usd, budget: Usd| {
        let got: Vec<u32> = alerts.iter().filter(|(l, _)| l == name).map(|&(_, t)| t).collect();
        let reached = |percent: u32| u128::from(spent.pico()) * 100 >= u128::from(budget.pico()) * u128::from(percent);
        let mut expected: Vec<u32> = [50, 80].into_iter().filter(|&p| budget.pico() > 0 && reached(p)).collect();
        if got.contains(&100) {
            assert!(expected.contains(&80), "{name}: 100% announced before 80%: {got:?}");
            expected.push(100);
        }
        assert_eq!(got, expected, "{name}: alerts at spent {spent} of {budget}");
    };
    for (name, limiter) in shared.limiters.borrow_mut().iter_mut() {
        let budget = match NAMES.iter().position(|n| n == name) {
            Some(i) => shared.policies[i].daily_budget,
            None => match &shared.scope {
                Some(scope) if scope.key() == *name => scope.policy.daily_budget,
                _ => continue,
            },
        };
        check(name, limiter.snapshot(now).spent_usd, budget);
    }
}

/// A model marked unavailable is not admitted again while marked: no reservation for it
/// after its mark and before its mark's end.
pub fn check_marks(shared: &Shared) {
    let marks = shared.marks.borrow();
    for granted in shared.granted.borrow().iter() {
        for mark in marks.iter().filter(|m| m.provider == granted.provider && m.model == granted.model) {
            // Under a lease, a mark made by another isolate reaches this one with its next
            // grant: within a lease's life.
            let from = if granted.leased { mark.until - MODEL_UNAVAILABLE_MS + LEASE_TTL_MS } else { 0 };
            assert!(
                !(mark.seq < granted.seq && granted.at < mark.until && granted.at >= from),
                "{}/{} was admitted at {} while marked unavailable until {}",
                NAMES[granted.provider],
                granted.model,
                granted.at,
                mark.until
            );
        }
    }
}

/// The client of a tool-call answer got the calls the answer made, well-formed, whatever the
/// dialect: from a stream that reached its end (read as the OpenAI SDK reads it), or whole.
pub fn check_tool_calls(shared: &Shared, answer: &ToolAnswer, stream: bool, client: &[u8]) {
    let text = || String::from_utf8_lossy(client).into_owned();
    let got = if stream {
        // A broken stream ends with its error event (checked with every stream); a client
        // that left has no answer to check.
        if !client.ends_with(DONE) {
            return;
        }
        shared.count("ToolStreamChecked");
        accumulate_stream(client)
    } else {
        // A content-filtered answer of the fake upstream carries no calls.
        if client.windows(16).any(|w| w == b"\"content_filter\"") {
            return;
        }
        shared.count("ToolWholeChecked");
        completion_calls(client)
    };
    let got = got.unwrap_or_else(|e| panic!("the client could not read the tool calls ({e}): {}", text()));
    if let Err(e) = answer.check(&got) {
        panic!("the client's tool calls are not the answer's ({e}): {answer:?}\n{}", text());
    }
}
