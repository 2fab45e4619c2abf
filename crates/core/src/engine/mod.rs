//! The request engine: the one attempt loop of the whole Worker.
//!
//! Plan → for each target: reserve its limits → send → classify → retry, next target or stop →
//! close the reservation as the books say. The unified route (`/v1/chat/completions`, several
//! targets, fall back to the next) and the native routes (`/{provider}/…`, one target, never
//! another provider) are two configurations of it: what differs is data ([`Target`]s and
//! [`Fallback`]). The engine knows nothing of the Workers runtime: the shell implements
//! [`Runtime`] (the limiter, one attempt, a timer, a clock, a random number), and the simulation
//! tests (`tests/simulation`) implement it with a fake upstream, a fake clock and the real
//! [`crate::account::limits::LimiterState`].
//!
//! The rules it keeps, each proven by the simulation:
//! - one deadline for the whole request: no attempt starts after it, and each attempt's time to
//!   first byte is bounded by what is left of it;
//! - a `Retry-After` is waited for (or, when longer than the policy allows, the target is left);
//! - every reservation is closed exactly once, by [`books`] (`attempt.rs`), except a committed stream's,
//!   which is handed back with the answer for the stream pump to close at its end;
//! - every attempt and every skipped target is named in the trace, in order;
//! - an answer that is not what `response_format` asked for ([`Exchange::Invalid`]) is charged,
//!   never given to the caller, and the next target is tried; when none answers as asked, the
//!   request fails with `invalid_output`, naming each target and why;
//! - a model its provider answered is gone is left for the next target and marked
//!   ([`Runtime::mark_unavailable`]): later reserves for it are refused at once.

pub mod retry;

use self::retry::Next;
use crate::account::limits::{Policy, Refusal};
use crate::attempt::{books, health_of, AigRefusal, AttemptEnd, AttemptOutcome, Books, Health, Meter};
use crate::config::RetryPolicy;
use crate::error::{ErrorKind, GatewayError};
use crate::money::pricing::Usd;

/// One target of a plan, as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// How the trace names it: `provider/model`.
    pub id: &'a str,
    /// Whose limits an attempt reserves.
    pub provider: &'a str,
    pub limits: Policy,
    /// What one attempt may cost at most: reserved before it, charged when its cost is unknown.
    pub worst_case: Usd,
}

impl<'a> Target<'a> {
    /// The model part of `id` (what a reserve asks its provider's limiter about).
    pub fn model(&self) -> &'a str {
        self.id.strip_prefix(self.provider).and_then(|m| m.strip_prefix('/')).unwrap_or(self.id)
    }
}

/// Where a request goes when a target fails in a way another target might not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The next target of the plan (the unified route).
    NextTarget,
    /// Nowhere: the body is in this provider's own format (the native routes).
    SameTargetOnly,
}

/// The rules one request runs under.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub retry: &'a RetryPolicy,
    /// When the request must have its answer started, in the runtime's clock (ms).
    pub deadline_ms: u64,
    /// The longest any one attempt may wait for its response headers.
    pub first_byte_timeout_ms: u64,
    pub fallback: Fallback,
    /// What the 429 says was exhausted, e.g. "route `triage`" or "openai".
    pub subject: &'a str,
}

/// How one attempt ended, as the shell reports it.
#[derive(Debug)]
pub enum Exchange<A, F> {
    /// An answer for the client.
    Answer {
        answer: A,
        status: u16,
        /// How its reservation closes now; `None` for a stream that reached its commit point,
        /// whose reservation goes with the answer and is closed by the pump at the stream's end.
        end: Option<AttemptEnd>,
        /// The provider's content filter blocked it (`finish_reason: content_filter`): another
        /// target is tried when there is one; on the last target the block is the answer.
        content_filtered: bool,
    },
    /// No answer; `failure` is what the client gets if nothing better follows.
    Failed { outcome: AttemptOutcome, end: AttemptEnd, failure: F, retry_after: Option<String> },
    /// An answer that is not what the request's `response_format` asked for
    /// ([`crate::output::Verdict::Invalid`]): closed as `end` says (an answered attempt's
    /// books), never given to the caller; `reason` says why.
    Invalid { end: AttemptEnd, reason: String },
}

/// What the engine needs from its surroundings. One thread (a Worker isolate, or the
/// simulation's executor), so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Runtime {
    type Reservation;
    type Answer;
    type Failure: From<GatewayError>;

    /// Reserves one request of `target`'s rate window and its worst case of its daily budget.
    async fn reserve(&self, target: &Target<'_>) -> Result<Self::Reservation, Refusal>;
    /// Closes a reservation as the books say (off the answer's path: in the background), with
    /// what the attempt said of its provider's health (its circuit breaker counts it).
    fn close(&self, reservation: Self::Reservation, books: Books, health: Health);
    /// Makes attempt number `attempt` (1-based, over the whole request) on `targets[target]`,
    /// waiting at most `first_byte_ms` for its response headers. `charged_before` is what the
    /// request's earlier attempts were charged: an answer says what the whole request cost
    /// (`usage.cost`), and a stream says it before its end. With how it ended comes what was
    /// measured of it, which its line carries.
    async fn attempt(
        &self,
        target: usize,
        attempt: u32,
        first_byte_ms: u64,
        charged_before: Usd,
    ) -> (Exchange<Self::Answer, Self::Failure>, Meter);
    /// The target's provider answered that its model does not exist or is no longer served:
    /// mark it so in the provider's limiter (`LimiterState::mark_unavailable`, with the
    /// provider's message as the reason), so later reserves for it are refused at once.
    fn mark_unavailable(&self, target: &Target<'_>);
    async fn sleep(&self, ms: u64);
    /// Milliseconds, in the clock `Rules::deadline_ms` is in.
    fn now(&self) -> u64;
    /// Uniform in `[0, 1)`: the backoff's jitter.
    fn random(&self) -> f64;
}

/// An answer and where it came from.
#[derive(Debug)]
pub struct Win<A, R> {
    pub answer: A,
    pub target: usize,
    /// A committed stream's reservation, still open: the pump closes it when the stream ends.
    pub open: Option<R>,
}

/// What a request's run did, whatever its result: the decision headers and the log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Each attempt (`provider/model=outcome`) and skipped target (`=skipped:reason`), in order.
    pub trace: Vec<String>,
    pub attempts: u32,
    /// What the closed reservations charged (a still-open stream's is added by the pump).
    pub charged: Usd,
    /// The target of the last attempt made, if any.
    pub last_target: Option<usize>,
    /// Each attempt made, in order (skipped targets are only in the trace): one ledger row each.
    pub lines: Vec<Line>,
}

impl Record {
    /// The attempt whose answer went to the caller, if one did.
    pub fn answered(&self) -> Option<&Line> {
        self.lines.iter().rev().find(|l| l.answered)
    }
}

/// One attempt as the engine saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub target: usize,
    /// How the trace names its outcome (`200`, `429`, `timeout`, …).
    pub outcome: String,
    /// What its reservation was charged; `None` while a committed stream's is still open.
    pub charged: Option<Usd>,
    /// Its answer went to the caller.
    pub answered: bool,
    /// What the runtime measured of it (status, tokens, cost, AI Gateway's headers, times).
    pub meter: Meter,
}

/// Runs `targets` under `rules`: the answer (or the error for the client), and the record.
pub async fn run<R: Runtime>(
    rt: &R,
    targets: &[Target<'_>],
    rules: &Rules<'_>,
) -> (Result<Win<R::Answer, R::Reservation>, R::Failure>, Record) {
    let mut record = Record::default();
    let result = attempts(rt, targets, rules, &mut record).await;
    (result, record)
}

async fn attempts<R: Runtime>(
    rt: &R,
    targets: &[Target<'_>],
    rules: &Rules<'_>,
    run: &mut Record,
) -> Result<Win<R::Answer, R::Reservation>, R::Failure> {
    let mut last: Option<R::Failure> = None;
    let mut refusals: Vec<(&str, Refusal)> = Vec::new();
    let mut scope_refusal: Option<GatewayError> = None;
    // Each answer that was not what was asked: `provider/model: why`.
    let mut invalid: Vec<String> = Vec::new();
    // A content filter's block, passed over for the next target: the answer if none follows
    // (the attempt's index among the lines, to mark it answered).
    let mut blocked: Option<(R::Answer, usize, usize)> = None;
    'targets: for (index, target) in targets.iter().enumerate() {
        let mut tries_here = 0;
        loop {
            let remaining = rules.deadline_ms.saturating_sub(rt.now());
            if remaining == 0 {
                break 'targets;
            }
            let reservation = match rt.reserve(target).await {
                Ok(reservation) => reservation,
                Err(mut refusal) => {
                    run.trace.push(format!("{}=skipped:{}", target.id, refusal_label(&refusal)));
                    if let Some(err) = refusal.ends_request.take() {
                        // The caller's own scope (repository, agent) refused. Over its rate, no
                        // target can help; over its budget, a cheaper target's worst case may
                        // still fit, and if none does, this is the answer.
                        if refusal.rate_limited {
                            return Err(err.into());
                        }
                        scope_refusal.get_or_insert(err);
                        continue 'targets;
                    }
                    refusals.push((target.provider, refusal));
                    match rules.fallback {
                        Fallback::NextTarget => continue 'targets,
                        Fallback::SameTargetOnly => break 'targets,
                    }
                }
            };
            tries_here += 1;
            run.attempts += 1;
            run.last_target = Some(index);
            let first_byte = remaining.min(rules.first_byte_timeout_ms);
            // Closes the attempt's reservation (unless a committed stream keeps it open) and
            // writes its line and its trace entry.
            let close = |run: &mut Record,
                         closing: Option<(R::Reservation, AttemptEnd)>,
                         outcome: String,
                         health: Health,
                         answered,
                         meter| {
                let charged = closing.map(|(reservation, end)| {
                    let books = books(end);
                    let charge = books.charge(target.worst_case);
                    run.charged = run.charged.saturating_add(charge);
                    rt.close(reservation, books, health);
                    charge
                });
                run.trace.push(format!("{}={outcome}", target.id));
                run.lines.push(Line { target: index, outcome, charged, answered, meter });
            };
            let (exchange, meter) = rt.attempt(index, run.attempts, first_byte, run.charged).await;
            match exchange {
                Exchange::Answer { answer, status, end, content_filtered } => {
                    let another = rules.fallback == Fallback::NextTarget && index + 1 < targets.len();
                    if content_filtered && another {
                        let end = end.unwrap_or(AttemptEnd::ContentFiltered { cost: None });
                        let label = outcome_label(AttemptOutcome::ContentFiltered);
                        close(run, Some((reservation, end)), label, Health::Healthy, false, meter);
                        // Kept: if no later target answers, the block is the answer.
                        blocked = Some((answer, index, run.lines.len() - 1));
                        continue 'targets;
                    }
                    let (closing, open) = match end {
                        Some(end) => (Some((reservation, end)), None),
                        None => (None, Some(reservation)),
                    };
                    close(run, closing, status.to_string(), Health::Healthy, true, meter);
                    return Ok(Win { answer, target: index, open });
                }
                Exchange::Invalid { end, reason } => {
                    let label = outcome_label(AttemptOutcome::InvalidOutput);
                    close(run, Some((reservation, end)), label, health_of(AttemptOutcome::InvalidOutput), false, meter);
                    invalid.push(format!("{}: {reason}", target.id));
                    match rules.fallback {
                        Fallback::NextTarget => continue 'targets,
                        Fallback::SameTargetOnly => break 'targets,
                    }
                }
                Exchange::Failed { outcome, end, failure, retry_after } => {
                    close(run, Some((reservation, end)), outcome_label(outcome), health_of(outcome), false, meter);
                    if outcome == AttemptOutcome::ModelUnavailable {
                        rt.mark_unavailable(target);
                    }
                    let wait = retry::retry_after_ms(retry_after.as_deref());
                    let remaining = rules.deadline_ms.saturating_sub(rt.now());
                    match retry::after_failure(outcome, tries_here, wait, remaining, rules.retry, rt.random()) {
                        Next::Stop => return Err(failure),
                        Next::RetrySame { delay_ms } => {
                            last = Some(failure);
                            rt.sleep(delay_ms).await;
                        }
                        Next::NextTarget => {
                            last = Some(failure);
                            match rules.fallback {
                                Fallback::NextTarget => continue 'targets,
                                Fallback::SameTargetOnly => break 'targets,
                            }
                        }
                    }
                }
            }
        }
    }
    // Nothing answered but a content filter's block, which is then the answer (its books are
    // closed already: nothing stays open).
    if let Some((answer, target, line)) = blocked {
        run.lines[line].answered = true;
        run.last_target = Some(target);
        return Ok(Win { answer, target, open: None });
    }
    // Nothing answered: the caller's own limit, when one refused, is what to say; else, when
    // answers came in another format than asked, that they did.
    if let Some(err) = scope_refusal {
        return Err(err.into());
    }
    if !invalid.is_empty() {
        return Err(invalid_output(&invalid).into());
    }
    if run.attempts == 0 && refusals.iter().any(|(_, r)| r.is_limiter_unavailable()) {
        return Err(limiter_unavailable(rules.subject, &refusals).into());
    }
    if run.attempts == 0 && !refusals.is_empty() {
        return Err(limits_exhausted(rules.subject, &refusals).into());
    }
    Err(last.unwrap_or_else(|| {
        if targets.is_empty() {
            GatewayError::new(ErrorKind::Internal, "The route has no targets.").into()
        } else {
            GatewayError::new(ErrorKind::UpstreamTimeout, "The request's deadline passed before any target answered.")
                .into()
        }
    }))
}

/// The 429 when no attempt could be made: every limit that refused, by provider, and the
/// earliest time one of them may lift. When every target's model is marked unavailable, the
/// 502 `model_unavailable`: no limit will lift it, the configuration must change.
pub fn limits_exhausted(subject: &str, refusals: &[(&str, Refusal)]) -> GatewayError {
    let reasons: Vec<String> = refusals.iter().map(|(p, r)| format!("{p}: {}", r.message)).collect();
    let mut err = if refusals.iter().all(|(_, r)| r.model_unavailable) {
        GatewayError::new(
            ErrorKind::ModelUnavailable,
            format!(
                "Every target of {subject} is a model its provider answered is not available — {}.",
                reasons.join("; ")
            ),
        )
    } else {
        GatewayError::new(
            ErrorKind::LimitsExhausted,
            format!("Every target of {subject} is over this gateway's limits — {}.", reasons.join("; ")),
        )
    };
    err.retry_after = refusals.iter().map(|(_, r)| r.retry_after_secs).min().map(|s| s.to_string());
    err
}

/// The 503 when no attempt could be made and a limiter could not be asked: the deployment is at
/// fault (a missing binding, a failing object), and a 429 would tell the caller to slow down for
/// a budget that was never checked. Every refusal is named, the unavailable ones first.
pub fn limiter_unavailable(subject: &str, refusals: &[(&str, Refusal)]) -> GatewayError {
    let (down, limited): (Vec<_>, Vec<_>) = refusals.iter().partition(|(_, r)| r.is_limiter_unavailable());
    let reasons: Vec<String> = down.iter().chain(&limited).map(|(p, r)| format!("{p}: {}", r.message)).collect();
    let mut err = GatewayError::new(
        ErrorKind::LimiterUnavailable,
        format!("No target of {subject} could be checked against this gateway's limits — {}.", reasons.join("; ")),
    );
    err.retry_after = Some("1".into());
    err
}

/// The 502 when no target answered as `response_format` asked: each target and why.
pub fn invalid_output(reasons: &[String]) -> GatewayError {
    GatewayError::new(
        ErrorKind::InvalidOutput,
        format!("No target answered in the format the request's response_format asked for — {}.", reasons.join("; ")),
    )
}

/// How the trace names a refusal of the gateway's own limits.
pub fn refusal_label(r: &Refusal) -> &'static str {
    if let Some(err) = &r.ends_request {
        return err.kind.code();
    }
    if r.circuit_open {
        return "circuit_open";
    }
    if r.model_unavailable {
        return "model_unavailable";
    }
    match (r.rate_limited, r.over_budget) {
        (true, true) => "rate_limited+over_budget",
        (true, false) => "rate_limited",
        (false, true) => "over_budget",
        (false, false) => "limiter_unavailable",
    }
}

/// How the trace names an attempt that failed.
pub fn outcome_label(outcome: AttemptOutcome) -> String {
    match outcome {
        AttemptOutcome::Status(s) => s.to_string(),
        // A spend limit is a budget refusal like the gateway's own: the target is skipped.
        AttemptOutcome::Refused(AigRefusal::SpendLimit) => "skipped:aig_spend_limit".into(),
        AttemptOutcome::Refused(r) => r.label().into(),
        AttemptOutcome::Timeout => "timeout".into(),
        AttemptOutcome::ConnectionError => "unreachable".into(),
        AttemptOutcome::MalformedAnswer => "malformed".into(),
        AttemptOutcome::ContentFiltered => "content_filter".into(),
        AttemptOutcome::StreamCutBeforeContent => "stream_failed".into(),
        AttemptOutcome::InvalidOutput => "invalid_output".into(),
        AttemptOutcome::ModelUnavailable => "model_unavailable".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(message: &str) -> Refusal {
        Refusal { rate_limited: true, ..Refusal::limiter_unavailable(message.into()) }
    }

    /// A limiter that could not be asked is the deployment's fault: a 503 of its own, which names
    /// it before the limits that did refuse, never the 429 that tells a caller to slow down.
    #[test]
    fn an_unreachable_limiter_is_a_503_never_a_429() {
        let down = Refusal::limiter_unavailable("binding `LIMITER` missing".into());
        assert!(down.is_limiter_unavailable() && !limited("x").is_limiter_unavailable());
        assert_eq!(refusal_label(&down), "limiter_unavailable");
        let err = limiter_unavailable("route `triage`", &[("p1", limited("rate limit reached")), ("p2", down)]);
        assert_eq!(
            (err.status(), err.kind.code(), err.kind.openai_type()),
            (503, "limiter_unavailable", "server_error")
        );
        let (first, second) = (err.message.find("p2: binding").unwrap(), err.message.find("p1: rate").unwrap());
        assert!(first < second, "{}", err.message);
        let all_limited = limits_exhausted("route `triage`", &[("p1", limited("rate limit reached"))]);
        assert_eq!(all_limited.status(), 429);
    }
}
