//! The books of one attempt: how every way an attempt can end is accounted, in one table.
//!
//! Before an attempt the engine reserves its worst-case cost; when the attempt ends, its
//! reservation is closed in exactly one of three ways. The rule behind the table: an attempt that
//! provably produced nothing billable is released; one whose real cost we read is settled with
//! it; one that may have been billed for something we cannot see is settled at its worst case
//! (never left to expire uncharged: an expiry would hand the money back to the budget).

use crate::money::pricing::Usd;

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

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptEnd::*;

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
}
