//! The vocabulary of one attempt, below everything that makes, judges, charges or reports one:
//! how it ended as far as money goes ([`AttemptEnd`]) and how its reservation closes
//! ([`Books`], [`books`]); its outcome as the classification table sees it ([`AttemptOutcome`],
//! with AI Gateway's own refusals, [`AigRefusal`]) and what to do next ([`classify`]); and what
//! it said of its provider's health, for the circuit breaker ([`Health`]); what the runtime
//! measured of it ([`Meter`]).
//!
//! The books: before an attempt its worst-case cost is reserved; when the attempt ends, its
//! reservation is closed in exactly one of three ways. The rule behind the table: an attempt that
//! provably produced nothing billable is released; one whose real cost we read is settled with
//! it; one that may have been billed for something we cannot see is settled at its worst case
//! (never left to expire uncharged: an expiry would hand the money back to the budget).

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::money::pricing::{Tokens, Usd};

/// What the runtime measured of one attempt (its ledger row's measurements).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meter {
    pub started_ms: u64,
    /// When its answer was read (a whole one), it failed, or (a stream) it reached its commit point.
    pub ended_ms: u64,
    /// Its HTTP status; `None` when nothing answered.
    pub status: Option<u16>,
    pub tokens: Option<Tokens>,
    /// Our price table's cost of those tokens; `None` when unknown.
    pub cost: Option<Usd>,
    pub log_id: Option<String>,
    pub cache: Option<String>,
    /// The model that answered, when the answer named another than the target's
    /// ([`crate::money::pricing::AnswerCost::answered_by`]).
    pub answered_model: Option<String>,
}

/// How an attempt ended, as far as money goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// No response at all: a timeout before the first byte, a connection error.
    NoResponse,
    /// An error status from AI Gateway or the provider (nothing was generated).
    ErrorStatus,
    /// A whole answer was read; its cost (`None`: a price component or the usage is unknown).
    AnswerRead { cost: Option<Usd> },
    /// A 200 whose body broke off or could not be read: it may have been billed.
    AnswerUnreadable,
    /// AI Gateway answered from its cache: nothing was billed by the provider.
    CacheHit,
    /// The provider's content filter blocked the answer; the tokens it read are billed.
    ContentFiltered { cost: Option<Usd> },
    /// A stream that failed (cut, malformed, upstream error event) before its first content.
    StreamCutBeforeCommit,
    /// A stream silent past the idle deadline before its first content.
    StreamStalledBeforeCommit,
    /// A stream that reached its proper end; its cost from the final usage.
    StreamComplete { cost: Option<Usd> },
    /// A stream that failed after content was relayed: billed for what we cannot see, unless
    /// its final usage had already arrived (`final_cost`: then that usage is all that was billed).
    StreamCutAfterCommit { final_cost: Option<Option<Usd>> },
    /// A stream silent past the idle deadline after content was relayed (`final_cost` as above).
    StreamStalledAfterCommit { final_cost: Option<Option<Usd>> },
    /// The caller went away mid-stream. `final_cost` holds the cost read when the stream's final
    /// usage had already arrived (it is then provably all that was billed).
    ClientGone { final_cost: Option<Option<Usd>> },
}

/// What closing a reservation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Books {
    /// Hand the reservation back: nothing was spent.
    Release,
    /// Charge this much.
    Settle(Usd),
    /// Charge the reserved worst case: something was spent that cannot be known.
    SettleWorstCase,
}

/// The accounting table.
pub fn books(end: AttemptEnd) -> Books {
    use AttemptEnd::*;
    let cost_or_worst = |cost: Option<Usd>| cost.map_or(Books::SettleWorstCase, Books::Settle);
    match end {
        NoResponse | ErrorStatus | StreamCutBeforeCommit | StreamStalledBeforeCommit => Books::Release,
        CacheHit => Books::Settle(Usd::ZERO),
        AnswerRead { cost } | ContentFiltered { cost } | StreamComplete { cost } => cost_or_worst(cost),
        AnswerUnreadable => Books::SettleWorstCase,
        StreamCutAfterCommit { final_cost } | StreamStalledAfterCommit { final_cost } | ClientGone { final_cost } => {
            final_cost.map_or(Books::SettleWorstCase, cost_or_worst)
        }
    }
}

impl AttemptEnd {
    /// Our price table's cost of what the attempt used, when it was read (0 for a cache hit).
    pub fn cost(self) -> Option<Usd> {
        use AttemptEnd::*;
        match self {
            AnswerRead { cost } | ContentFiltered { cost } | StreamComplete { cost } => cost,
            StreamCutAfterCommit { final_cost }
            | StreamStalledAfterCommit { final_cost }
            | ClientGone { final_cost } => final_cost.flatten(),
            CacheHit => Some(Usd::ZERO),
            NoResponse | ErrorStatus | AnswerUnreadable | StreamCutBeforeCommit | StreamStalledBeforeCommit => None,
        }
    }
}

impl Books {
    /// What this charges against a reservation of `worst_case`.
    pub fn charge(self, worst_case: Usd) -> Usd {
        match self {
            Books::Release => Usd::ZERO,
            Books::Settle(cost) => cost,
            Books::SettleWorstCase => worst_case,
        }
    }

    /// The amount to tell the limiter when settling (`None` for a release; `Some(None)` is the
    /// limiter's "unknown: charge the worst case").
    pub fn settle_amount(self) -> Option<Option<Usd>> {
        match self {
            Books::Release => None,
            Books::Settle(cost) => Some(Some(cost)),
            Books::SettleWorstCase => Some(None),
        }
    }
}

/// One of AI Gateway's own refusals (reference §4a): the gateway, not the provider, said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AigRefusal {
    /// 429, code 2041: a spend limit of the gateway is exhausted (today, for this target).
    SpendLimit,
    /// 429, code 2003: the gateway's own rate limit.
    RateLimited,
    /// 402, code 2021: not enough Unified Billing credits (a BYOK target may still answer).
    NoCredits,
    /// 403 "Access denied by policy": a Policy denies this caller or model, on every provider.
    PolicyDenied,
    /// Code 2016: Guardrails blocked the prompt; every provider gets the same prompt.
    PromptBlocked,
    /// 400 with a `cf-aig-dlp` header: a DLP policy blocked the request.
    DlpBlocked,
    /// Code 2017: Guardrails blocked the response; another model may answer acceptably.
    ResponseBlocked,
    /// 503, code 7013: the guardrail service is down (Block rules configured). Transient.
    GuardrailUnavailable,
}

impl AigRefusal {
    /// How the trace and the error code name it.
    pub fn label(self) -> &'static str {
        self.kind().code()
    }

    pub fn kind(self) -> ErrorKind {
        match self {
            AigRefusal::SpendLimit => ErrorKind::AigSpendLimit,
            AigRefusal::RateLimited => ErrorKind::AigRateLimited,
            AigRefusal::NoCredits => ErrorKind::AigNoCredits,
            AigRefusal::PolicyDenied => ErrorKind::AigPolicyDenied,
            AigRefusal::PromptBlocked | AigRefusal::DlpBlocked => ErrorKind::ContentBlocked,
            AigRefusal::ResponseBlocked => ErrorKind::AigResponseBlocked,
            AigRefusal::GuardrailUnavailable => ErrorKind::AigGuardrailUnavailable,
        }
    }
}

/// What to do after an attempt failed: written as data, one row per class of outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Another target may well succeed: try the next one in the plan.
    NextTarget,
    /// The request itself is at fault; another provider would refuse it too.
    FailFast,
}

/// How an attempt ended, as the classification table sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Status(u16),
    /// AI Gateway itself refused (its own error code), whatever the status.
    Refused(AigRefusal),
    Timeout,
    ConnectionError,
    MalformedAnswer,
    ContentFiltered,
    StreamCutBeforeContent,
    /// The answer is not what the request's `response_format` asked for ([`crate::output`]).
    InvalidOutput,
    /// The provider answered that the model does not exist or is no longer served.
    ModelUnavailable,
}

/// The classification table. Keys are independent per provider, so an auth failure on one
/// provider still leaves the others worth trying; a 400 is the request's own fault.
pub fn classify(outcome: AttemptOutcome) -> Disposition {
    use AttemptOutcome::*;
    match outcome {
        Status(408 | 409 | 425 | 429) => Disposition::NextTarget,
        Status(401..=403) => Disposition::NextTarget,
        Status(500..=599) => Disposition::NextTarget,
        Status(_) => Disposition::FailFast,
        Refused(
            AigRefusal::SpendLimit
            | AigRefusal::RateLimited
            | AigRefusal::NoCredits
            | AigRefusal::ResponseBlocked
            | AigRefusal::GuardrailUnavailable,
        ) => Disposition::NextTarget,
        // The same caller, model list and prompt meet the same policy and guardrails everywhere.
        Refused(AigRefusal::PolicyDenied | AigRefusal::PromptBlocked | AigRefusal::DlpBlocked) => Disposition::FailFast,
        Timeout | ConnectionError | MalformedAnswer | ContentFiltered | StreamCutBeforeContent => {
            Disposition::NextTarget
        }
        // Another model may answer as asked; a model that is gone is gone on this target only.
        InvalidOutput | ModelUnavailable => Disposition::NextTarget,
    }
}

/// What an attempt said about its provider's health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// It answered (an answer, a content-filter block, a cache hit).
    Healthy,
    /// A 5xx, a timeout, a connection error, a broken or malformed answer.
    Failed,
    /// Says nothing of the provider: the caller's error (4xx), its own rate limit, AI Gateway's
    /// refusals, a caller that went away.
    #[default]
    Neutral,
}

/// How a failed attempt reflects on its provider.
pub fn health_of(outcome: AttemptOutcome) -> Health {
    match outcome {
        AttemptOutcome::Status(s) if s >= 500 => Health::Failed,
        AttemptOutcome::Status(_) => Health::Neutral,
        AttemptOutcome::Timeout
        | AttemptOutcome::ConnectionError
        | AttemptOutcome::MalformedAnswer
        | AttemptOutcome::StreamCutBeforeContent => Health::Failed,
        // AI Gateway's own refusals (spend limit, policy, guardrails, its guardrail service)
        // are not the provider's doing.
        AttemptOutcome::Refused(_) => Health::Neutral,
        // It answered, in another format than asked: the provider is up.
        AttemptOutcome::ContentFiltered | AttemptOutcome::InvalidOutput => Health::Healthy,
        // The model is gone, the provider is not: its other models answer.
        AttemptOutcome::ModelUnavailable => Health::Neutral,
    }
}

/// How a committed stream's end reflects on its provider.
pub fn health_of_stream(end: AttemptEnd) -> Health {
    match end {
        AttemptEnd::StreamComplete { .. } => Health::Healthy,
        AttemptEnd::StreamCutAfterCommit { .. } | AttemptEnd::StreamStalledAfterCommit { .. } => Health::Failed,
        _ => Health::Neutral,
    }
}

/// How a committed stream's end closes its attempt: the end its books read (a stream from AI
/// Gateway's cache was billed nothing, however it ended: settled at 0), their close, and what
/// the stream said of its provider's health (its own end, cached or not).
pub fn settle_stream(end: AttemptEnd, cache_hit: bool) -> (AttemptEnd, Books, Health) {
    let booked = if cache_hit { AttemptEnd::CacheHit } else { end };
    (booked, books(booked), health_of_stream(end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptEnd::*;

    #[test]
    fn a_cached_stream_is_released_however_it_ended_and_its_health_is_its_own() {
        let cut = StreamCutAfterCommit { final_cost: None };
        assert_eq!(settle_stream(cut, false), (cut, Books::SettleWorstCase, Health::Failed));
        assert_eq!(settle_stream(cut, true), (CacheHit, Books::Settle(Usd::ZERO), Health::Failed));
        let done = StreamComplete { cost: Some(C) };
        assert_eq!(settle_stream(done, false), (done, Books::Settle(C), Health::Healthy));
    }

    const C: Usd = Usd(1_234);
    const W: Usd = Usd(9_999);

    /// The table, row by row: (how the attempt ended, what the books do, what it charges).
    #[test]
    fn every_row_of_the_table() {
        let rows: &[(AttemptEnd, Books, Usd)] = &[
            (NoResponse, Books::Release, Usd::ZERO),
            (ErrorStatus, Books::Release, Usd::ZERO),
            (AnswerRead { cost: Some(C) }, Books::Settle(C), C),
            (AnswerRead { cost: None }, Books::SettleWorstCase, W),
            (AnswerUnreadable, Books::SettleWorstCase, W),
            (CacheHit, Books::Settle(Usd::ZERO), Usd::ZERO),
            (ContentFiltered { cost: Some(C) }, Books::Settle(C), C),
            (ContentFiltered { cost: None }, Books::SettleWorstCase, W),
            (StreamCutBeforeCommit, Books::Release, Usd::ZERO),
            (StreamStalledBeforeCommit, Books::Release, Usd::ZERO),
            (StreamComplete { cost: Some(C) }, Books::Settle(C), C),
            (StreamComplete { cost: None }, Books::SettleWorstCase, W),
            (StreamCutAfterCommit { final_cost: None }, Books::SettleWorstCase, W),
            (StreamStalledAfterCommit { final_cost: None }, Books::SettleWorstCase, W),
            // Cut or stalled after the final usage arrived: that usage is all that was billed.
            (StreamCutAfterCommit { final_cost: Some(Some(C)) }, Books::Settle(C), C),
            (StreamStalledAfterCommit { final_cost: Some(Some(C)) }, Books::Settle(C), C),
            (StreamCutAfterCommit { final_cost: Some(None) }, Books::SettleWorstCase, W),
            // The caller left before the final usage: the provider may have gone on generating.
            (ClientGone { final_cost: None }, Books::SettleWorstCase, W),
            // The caller left after the final usage arrived: that usage is all there is.
            (ClientGone { final_cost: Some(Some(C)) }, Books::Settle(C), C),
            (ClientGone { final_cost: Some(None) }, Books::SettleWorstCase, W),
        ];
        for &(end, expected, charge) in rows {
            assert_eq!(books(end), expected, "{end:?}");
            assert_eq!(books(end).charge(W), charge, "{end:?}");
        }
    }

    #[test]
    fn a_released_attempt_is_never_settled() {
        assert_eq!(Books::Release.settle_amount(), None);
        assert_eq!(Books::Settle(C).settle_amount(), Some(Some(C)));
        assert_eq!(Books::SettleWorstCase.settle_amount(), Some(None));
    }

    #[test]
    fn classification_table() {
        use AttemptOutcome::*;
        for s in [429, 500, 502, 503, 504, 529, 408, 401, 403] {
            assert_eq!(classify(Status(s)), Disposition::NextTarget, "{s}");
        }
        for s in [400, 404, 413, 422] {
            assert_eq!(classify(Status(s)), Disposition::FailFast, "{s}");
        }
        for o in [
            Timeout,
            ConnectionError,
            MalformedAnswer,
            ContentFiltered,
            StreamCutBeforeContent,
            InvalidOutput,
            ModelUnavailable,
        ] {
            assert_eq!(classify(o), Disposition::NextTarget, "{o:?}");
        }
    }

    #[test]
    fn how_outcomes_reflect_on_the_provider() {
        assert_eq!(health_of(AttemptOutcome::Status(503)), Health::Failed);
        assert_eq!(health_of(AttemptOutcome::Status(429)), Health::Neutral);
        assert_eq!(health_of(AttemptOutcome::Status(400)), Health::Neutral);
        assert_eq!(health_of(AttemptOutcome::Timeout), Health::Failed);
        assert_eq!(health_of(AttemptOutcome::ConnectionError), Health::Failed);
        assert_eq!(health_of(AttemptOutcome::Refused(AigRefusal::SpendLimit)), Health::Neutral);
        assert_eq!(health_of_stream(AttemptEnd::StreamComplete { cost: None }), Health::Healthy);
        // A truncated stream (no `[DONE]`) fails its provider before the commit point and after.
        assert_eq!(health_of(AttemptOutcome::StreamCutBeforeContent), Health::Failed);
        assert_eq!(health_of_stream(AttemptEnd::StreamCutAfterCommit { final_cost: None }), Health::Failed);
        assert_eq!(health_of_stream(AttemptEnd::StreamCutAfterCommit { final_cost: Some(None) }), Health::Failed);
        assert_eq!(health_of_stream(AttemptEnd::ClientGone { final_cost: None }), Health::Neutral);
    }
}
