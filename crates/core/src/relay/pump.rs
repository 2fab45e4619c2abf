//! The stream pump: one discipline for every wire format, as a state machine the shell feeds.
//!
//! The shell does the I/O (it reads upstream chunks within the idle deadline and writes what it
//! is told to the client); the pump decides. Before the commit point (the first content) nothing
//! is sent, so a failure there fails the *attempt*, silently, and the engine may retry. After
//! it, a failure ends the stream with the format's own error event (the caller's SDK raises,
//! instead of taking a cut answer for a complete one), or, for a format that cannot carry one,
//! a broken body. Every error text that leaves is redacted of the configured secrets: an
//! upstream error event can echo a request header back, the gateway token included.
//!
//! Every way a stream ends maps to an [`AttemptEnd`], which the books close the reservation by;
//! the caller going away mid-stream is one of them ([`Pump::on_client_gone`]).
//!
//! A stream whose answer must be checked before the caller sees it (`response_format` asks for
//! JSON) is held to its end ([`Pump::hold_until_complete`]): its commit point is the end of the
//! answer, so it ends as a whole answer (`Step::Done` before any `Send`) or fails its attempt,
//! and the engine's failover holds for it as for a whole answer. A held stream that fails after
//! content arrived is settled as one that failed after its commit point: it was billed.

use super::{Observer, StreamFault};

/// The most bytes a stream held to its end keeps: far past any model's output limit in SSE.
pub const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;
use crate::attempt::AttemptEnd;
use crate::attempt::AttemptOutcome;
use crate::error::{redact, ErrorKind, GatewayError};
use crate::money::pricing::{Cost, Usd};

/// What the shell does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to send yet: read on.
    Wait,
    /// Send these bytes to the client (the first `Send` is the commit point).
    Send(Vec<u8>),
    /// The stream is over.
    Done(Ending),
    /// It failed before the commit point: nothing was sent, the attempt failed.
    Failed(OpenFailure),
}

/// How a stream ended after (or without ever needing) its commit point.
#[derive(Debug, PartialEq, Eq)]
pub struct Ending {
    /// The last bytes for the client: the rest of the stream, or the format's error event.
    pub out: Vec<u8>,
    /// How the attempt ended, for the books.
    pub end: AttemptEnd,
    /// The failure that ended it, if any (already redacted).
    pub fault: Option<GatewayError>,
    /// The format cannot carry an error event: break the client's body instead of closing it.
    pub cut: bool,
    /// The stream is complete but the upstream body has not ended: read its end in the
    /// background (cancelling it costs more than reading it, and frees nothing sooner).
    pub drain: bool,
    /// A copy of everything sent, when one was asked for and fit.
    pub copy: Option<Vec<u8>>,
}

/// A stream that failed before its commit point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFailure {
    pub outcome: AttemptOutcome,
    pub end: AttemptEnd,
    pub error: GatewayError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Opening,
    Relaying,
    Ended,
}

/// Prices what an observer saw once its stream is complete: the cost, or why it is unknown.
pub type CostFn<O> = Box<dyn Fn(&O) -> Cost>;

/// One stream being relayed. `cost` prices what the observer saw (its final usage); it is asked
/// only once the stream is complete.
pub struct Pump<O, C> {
    observer: O,
    cost: C,
    /// Why the cost of the stream's end is unknown, once it was priced.
    cost_warning: Option<String>,
    idle_ms: u64,
    secrets: Vec<String>,
    phase: Phase,
    held: Vec<u8>,
    capture: Option<(Vec<u8>, usize)>,
    /// Hold everything until the stream's end (JSON mode).
    hold: bool,
}

impl<O: Observer, C: Fn(&O) -> Cost> Pump<O, C> {
    /// `idle_ms` is only named in the stall's message; the shell keeps the timer.
    pub fn new(observer: O, cost: C, idle_ms: u64, secrets: Vec<String>) -> Self {
        Pump {
            observer,
            cost,
            cost_warning: None,
            idle_ms,
            secrets,
            phase: Phase::Opening,
            held: Vec::new(),
            capture: None,
            hold: false,
        }
    }

    /// Holds the stream until its end: nothing is sent before it (the shell waits for the
    /// stream's end, not its first content, within the request's deadline).
    pub fn hold_until_complete(&mut self) {
        self.hold = true;
    }

    pub fn observer(&self) -> &O {
        &self.observer
    }

    pub fn into_observer(self) -> O {
        self.observer
    }

    /// Keeps a copy of what is sent, up to `limit` bytes (beyond it, no copy).
    pub fn capture(&mut self, limit: usize) {
        self.capture = Some((Vec::new(), limit));
    }

    /// Whether the stream has ended (every later event is ignored).
    pub fn ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// An upstream chunk arrived.
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Step {
        if self.phase == Phase::Ended {
            return Step::Wait;
        }
        let mut out = std::mem::take(&mut self.held);
        if let Err(fault) = self.observer.push(chunk, &mut out) {
            return self.fault(fault, out);
        }
        if self.observer.complete() {
            // The proper end: flush what the observer still holds and stop, upstream or not.
            if let Err(fault) = self.observer.finish(&mut out) {
                return self.fault(fault, out);
            }
            let cost = self.priced();
            return self.done(out, AttemptEnd::StreamComplete { cost }, None, true);
        }
        match self.phase {
            Phase::Opening if self.hold && out.len() > MAX_HELD_BYTES => self.fault(StreamFault::TooLongToHold, out),
            Phase::Opening if self.hold || !self.observer.committed() => {
                self.held = out;
                Step::Wait
            }
            _ if out.is_empty() => Step::Wait,
            _ => {
                self.phase = Phase::Relaying;
                self.record(&out);
                Step::Send(out)
            }
        }
    }

    /// The upstream body ended cleanly.
    pub fn on_end(&mut self) -> Step {
        if self.phase == Phase::Ended {
            return Step::Wait;
        }
        let mut out = std::mem::take(&mut self.held);
        match self.observer.finish(&mut out) {
            Ok(()) => {
                let cost = self.priced();
                self.done(out, AttemptEnd::StreamComplete { cost }, None, false)
            }
            Err(fault) => self.fault(fault, out),
        }
    }

    /// Nothing arrived within the idle deadline.
    pub fn on_stall(&mut self) -> Step {
        let err = GatewayError::new(
            ErrorKind::UpstreamTimeout,
            match self.phase {
                Phase::Opening => format!("The upstream stalled before its first token ({} ms).", self.idle_ms),
                _ => format!("The upstream stream stalled for {} ms; the answer is incomplete.", self.idle_ms),
            },
        );
        let final_cost = self.final_cost();
        self.fail(
            AttemptOutcome::Timeout,
            AttemptEnd::StreamStalledBeforeCommit,
            AttemptEnd::StreamStalledAfterCommit { final_cost },
            err,
            Vec::new(),
        )
    }

    /// Reading the upstream body failed (the connection broke).
    pub fn on_broken(&mut self) -> Step {
        let out = std::mem::take(&mut self.held);
        self.fault(StreamFault::Truncated, out)
    }

    /// The client went away. `None` when the stream had already ended (its books are closed).
    pub fn on_client_gone(&mut self) -> Option<AttemptEnd> {
        if self.phase == Phase::Ended {
            return None;
        }
        self.phase = Phase::Ended;
        Some(AttemptEnd::ClientGone { final_cost: self.final_cost() })
    }

    /// How the attempt would end if the client were gone now (what a body nobody pulls any more
    /// is settled as, by a task that cannot reach the pump).
    pub fn if_client_left(&self) -> AttemptEnd {
        let final_cost = self.observer.billed_in_full().then(|| (self.cost)(&self.observer).usd);
        AttemptEnd::ClientGone { final_cost }
    }

    /// Why the cost of the stream's end is unknown (a price or the usage missing), once its end
    /// was priced: what the shell logs when the stream's books close.
    pub fn cost_warning(&self) -> Option<&str> {
        self.cost_warning.as_deref()
    }

    /// The cost of the stream's final usage, once it has arrived (what the provider bills).
    fn final_cost(&mut self) -> Option<Option<Usd>> {
        self.observer.billed_in_full().then(|| self.priced())
    }

    /// The cost of what the observer saw, its warning kept.
    fn priced(&mut self) -> Option<Usd> {
        let cost = (self.cost)(&self.observer);
        self.cost_warning = cost.warning;
        cost.usd
    }

    fn fault(&mut self, fault: StreamFault, out: Vec<u8>) -> Step {
        let text = redact(&fault.describe(), &self.secret_refs());
        let err = GatewayError::new(ErrorKind::UpstreamMalformed, text);
        let final_cost = self.final_cost();
        self.fail(
            AttemptOutcome::StreamCutBeforeContent,
            AttemptEnd::StreamCutBeforeCommit,
            AttemptEnd::StreamCutAfterCommit { final_cost },
            err,
            out,
        )
    }

    fn fail(
        &mut self,
        outcome: AttemptOutcome,
        before: AttemptEnd,
        after: AttemptEnd,
        err: GatewayError,
        out: Vec<u8>,
    ) -> Step {
        if self.phase == Phase::Opening {
            // Nothing was sent: what the observer completed before the fault is dropped with it.
            // Held to its end, it may have had content: then it was billed.
            self.phase = Phase::Ended;
            let end = if self.hold && self.observer.committed() { after } else { before };
            return Step::Failed(OpenFailure { outcome, end, error: err });
        }
        let mut out = out;
        let event = self.observer.error_event(&err);
        let cut = event.is_none();
        out.extend_from_slice(event.as_deref().unwrap_or_default());
        self.done(out, after, Some(err), false).with_cut(cut)
    }

    fn done(&mut self, out: Vec<u8>, end: AttemptEnd, fault: Option<GatewayError>, upstream_open: bool) -> Step {
        self.phase = Phase::Ended;
        self.record(&out);
        let copy = self.capture.take().map(|(copy, _)| copy).filter(|_| fault.is_none());
        Step::Done(Ending { out, end, fault, cut: false, drain: upstream_open, copy })
    }

    fn record(&mut self, bytes: &[u8]) {
        if let Some((copy, limit)) = &mut self.capture {
            if copy.len() + bytes.len() > *limit {
                self.capture = None;
            } else {
                copy.extend_from_slice(bytes);
            }
        }
    }

    fn secret_refs(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }
}

impl Step {
    fn with_cut(self, cut: bool) -> Step {
        match self {
            Step::Done(ending) => Step::Done(Ending { cut, ..ending }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::SseRelay;

    const SECRET: &str = "aig-SECRET-TOKEN";

    fn pump() -> Pump<SseRelay, impl Fn(&SseRelay) -> Cost> {
        let cost = |r: &SseRelay| {
            let usd = r.summary().usage.and_then(|u| u.total_tokens.known()).map(Usd);
            Cost { usd, warning: usd.is_none().then(|| "no usage".to_owned()) }
        };
        Pump::new(SseRelay::new(), cost, 30_000, vec![SECRET.to_owned()])
    }

    const ROLE: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
    const HELLO: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"}}]}\n\n";
    const USAGE: &[u8] =
        b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n";
    const DONE: &[u8] = b"data: [DONE]\n\n";

    fn sent(step: Step) -> Vec<u8> {
        match step {
            Step::Send(bytes) => bytes,
            other => panic!("expected Send, got {other:?}"),
        }
    }

    fn ending(step: Step) -> Ending {
        match step {
            Step::Done(ending) => ending,
            other => panic!("expected Done, got {other:?}"),
        }
    }

    #[test]
    fn holds_until_the_first_content_then_relays_and_settles_the_usage() {
        let mut p = pump();
        assert_eq!(p.on_chunk(ROLE), Step::Wait);
        assert_eq!(sent(p.on_chunk(HELLO)), [ROLE, HELLO].concat());
        assert_eq!(sent(p.on_chunk(USAGE)), USAGE);
        let end = ending(p.on_chunk(DONE));
        assert_eq!(end.out, DONE);
        assert_eq!(end.end, AttemptEnd::StreamComplete { cost: Some(Usd(7)) });
        assert!(end.drain, "the upstream body's own end is still to be read");
        assert_eq!(p.cost_warning(), None);
        assert_eq!(p.on_client_gone(), None, "an ended stream's books are already closed");
    }

    /// A stream whose cost cannot be known says why, for the shell to log once at its end.
    #[test]
    fn an_unknown_cost_keeps_its_warning() {
        let mut p = pump();
        sent(p.on_chunk(&[ROLE, HELLO].concat()));
        assert_eq!(p.cost_warning(), None, "not priced before its end");
        assert_eq!(ending(p.on_chunk(DONE)).end, AttemptEnd::StreamComplete { cost: None });
        assert_eq!(p.cost_warning(), Some("no usage"));
    }

    #[test]
    fn a_fault_before_content_fails_the_attempt_quietly() {
        let mut p = pump();
        assert_eq!(p.on_chunk(ROLE), Step::Wait);
        let Step::Failed(f) = p.on_end() else { panic!() };
        assert_eq!(f.outcome, AttemptOutcome::StreamCutBeforeContent);
        assert_eq!(f.end, AttemptEnd::StreamCutBeforeCommit);
        let mut p = pump();
        let Step::Failed(f) = p.on_stall() else { panic!() };
        assert_eq!((f.outcome, f.end), (AttemptOutcome::Timeout, AttemptEnd::StreamStalledBeforeCommit));
    }

    #[test]
    fn a_fault_after_content_ends_with_a_redacted_error_event() {
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        let echo = format!("event: error\ndata: {{\"error\":{{\"message\":\"bad header cf-aig-authorization: Bearer {SECRET}\"}}}}\n\n");
        let end = ending(p.on_chunk(echo.as_bytes()));
        let text = String::from_utf8(end.out).unwrap();
        assert!(text.starts_with("data: {\"error\""), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        assert_eq!(end.end, AttemptEnd::StreamCutAfterCommit { final_cost: None });
        assert!(!end.cut && !end.drain);
        assert!(!end.fault.unwrap().message.contains(SECRET));
    }

    #[test]
    fn stalls_and_breaks_after_content_are_charged_their_worst_case() {
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        let end = ending(p.on_stall());
        assert_eq!(end.end, AttemptEnd::StreamStalledAfterCommit { final_cost: None });
        assert_eq!(end.fault.as_ref().unwrap().kind, ErrorKind::UpstreamTimeout);
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        assert_eq!(ending(p.on_broken()).end, AttemptEnd::StreamCutAfterCommit { final_cost: None });
    }

    /// After the final usage (it follows the finish reason), a stall, a break or a caller leaving
    /// settles at that usage's cost: what the stream already told the caller it cost.
    #[test]
    fn after_the_final_usage_every_ending_settles_at_its_cost() {
        const FINISH: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        let after_usage = |p: &mut Pump<SseRelay, _>| {
            sent(p.on_chunk(HELLO));
            sent(p.on_chunk(FINISH));
            sent(p.on_chunk(USAGE));
        };
        let settled = Some(Some(Usd(7)));
        let mut p = pump();
        after_usage(&mut p);
        assert_eq!(ending(p.on_stall()).end, AttemptEnd::StreamStalledAfterCommit { final_cost: settled });
        let mut p = pump();
        after_usage(&mut p);
        assert_eq!(ending(p.on_broken()).end, AttemptEnd::StreamCutAfterCommit { final_cost: settled });
        let mut p = pump();
        after_usage(&mut p);
        assert_eq!(p.on_client_gone(), Some(AttemptEnd::ClientGone { final_cost: settled }));
        // A usage event without a finish reason before it is not known to be the last.
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        sent(p.on_chunk(USAGE));
        assert_eq!(p.on_client_gone(), Some(AttemptEnd::ClientGone { final_cost: None }));
    }

    /// A stream whose body ends without its end (no `[DONE]`, no finish reason) is a truncation:
    /// before the commit point the attempt fails quietly (the next target is tried, and the
    /// provider's breaker counts a failure); after it the client gets the error event, and the
    /// breaker counts a failure too. One that had its finish reason and final usage but no
    /// `[DONE]` ends the same way, settled at that usage.
    #[test]
    fn a_stream_that_ends_without_its_end_is_a_truncation_and_a_failure() {
        use crate::attempt::{classify, health_of, health_of_stream, Disposition, Health};
        let mut p = pump();
        assert_eq!(p.on_chunk(ROLE), Step::Wait);
        let Step::Failed(f) = p.on_end() else { panic!("a cut before content fails the attempt") };
        assert_eq!(classify(f.outcome), Disposition::NextTarget);
        assert_eq!(health_of(f.outcome), Health::Failed);
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        let end = ending(p.on_end());
        assert!(String::from_utf8(end.out).unwrap().starts_with("data: {\"error\""));
        assert_eq!(end.end, AttemptEnd::StreamCutAfterCommit { final_cost: None });
        assert_eq!(health_of_stream(end.end), Health::Failed);
        const FINISH: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        sent(p.on_chunk(&[FINISH, USAGE].concat()));
        let end = ending(p.on_end());
        assert!(end.fault.is_some(), "no [DONE]: not taken for complete");
        assert_eq!(end.end, AttemptEnd::StreamCutAfterCommit { final_cost: Some(Some(Usd(7))) });
    }

    #[test]
    fn the_client_leaving_is_settled_never_forgotten() {
        let mut p = pump();
        sent(p.on_chunk(HELLO));
        assert_eq!(p.on_client_gone(), Some(AttemptEnd::ClientGone { final_cost: None }));
        assert_eq!(p.on_chunk(USAGE), Step::Wait, "nothing after the end");
        // Before the commit point too: the request was sent, the provider may bill it.
        let mut p = pump();
        assert_eq!(p.on_client_gone(), Some(AttemptEnd::ClientGone { final_cost: None }));
    }

    #[test]
    fn a_whole_stream_in_one_chunk_ends_without_a_commit() {
        let mut p = pump();
        let all = [ROLE, HELLO, USAGE, DONE].concat();
        let end = ending(p.on_chunk(&all));
        assert_eq!(end.out, all);
        assert_eq!(end.end, AttemptEnd::StreamComplete { cost: Some(Usd(7)) });
    }

    /// Held to its end, a stream sends nothing before it and ends as a whole answer; a failure
    /// after content fails the attempt, settled as billed; a stream past the hold's bound fails.
    #[test]
    fn a_held_stream_is_a_whole_answer_or_a_failed_attempt() {
        let mut p = pump();
        p.hold_until_complete();
        assert_eq!(p.on_chunk(ROLE), Step::Wait);
        assert_eq!(p.on_chunk(HELLO), Step::Wait, "content does not commit a held stream");
        assert_eq!(p.on_chunk(USAGE), Step::Wait);
        let end = ending(p.on_chunk(DONE));
        assert_eq!(end.out, [ROLE, HELLO, USAGE, DONE].concat());
        assert_eq!(end.end, AttemptEnd::StreamComplete { cost: Some(Usd(7)) });
        let mut p = pump();
        p.hold_until_complete();
        assert_eq!(p.on_chunk(HELLO), Step::Wait);
        let Step::Failed(f) = p.on_broken() else { panic!() };
        assert_eq!(
            (f.outcome, f.end),
            (AttemptOutcome::StreamCutBeforeContent, AttemptEnd::StreamCutAfterCommit { final_cost: None })
        );
        let mut p = pump();
        p.hold_until_complete();
        let Step::Failed(f) = p.on_stall() else { panic!() };
        assert_eq!(f.end, AttemptEnd::StreamStalledBeforeCommit, "nothing came: nothing was billed");
        let mut p = pump();
        p.hold_until_complete();
        let mut step = Step::Wait;
        let big =
            [b"data: {\"choices\":[{\"delta\":{\"content\":\"".as_slice(), &vec![b'a'; 512 * 1024], b"\"}}]}\n\n"]
                .concat();
        for _ in 0..(MAX_HELD_BYTES / big.len() + 2) {
            step = p.on_chunk(&big);
            if step != Step::Wait {
                break;
            }
        }
        let Step::Failed(f) = step else { panic!("{step:?}") };
        assert!(f.error.message.contains("holds to check"), "{}", f.error.message);
        assert_eq!(f.end, AttemptEnd::StreamCutAfterCommit { final_cost: None });
    }

    #[test]
    fn the_copy_is_everything_sent_and_only_for_a_clean_end() {
        let mut p = pump();
        p.capture(1 << 20);
        sent(p.on_chunk(HELLO));
        let end = ending(p.on_chunk(&[USAGE, DONE].concat()));
        assert_eq!(end.copy.unwrap(), [HELLO, USAGE, DONE].concat());
        let mut p = pump();
        p.capture(1 << 20);
        sent(p.on_chunk(HELLO));
        assert_eq!(ending(p.on_end()).copy, None, "a truncated stream is not kept");
    }
}
