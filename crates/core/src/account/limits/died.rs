//! What a limiter charges for requests whose isolate died: shown, never silent.
//!
//! A request is admitted by a reservation (asked of the limiter) or under its isolate's lease
//! (a ticket, reported to the limiter as it is admitted: `tickets.rs`). Either way it ends with
//! a settle; an isolate that dies (evicted, crashed, its process killed) sends none, and what
//! its request was billed upstream is unknown. So when a reservation expires unsettled, or a
//! lease expires with tickets still open, the limiter charges each its **worst case** — the
//! books stay at or above the truth, and never above it by more than the worst cases of the
//! requests that were really in flight — and counts that charge apart, per UTC day: "charged
//! for requests whose isolate died" ([`super::Snapshot::isolate_died_usd`]).
//!
//! A settle that arrives after all (a stream that outlived its reservation's time to live, a
//! lease's settle report delayed past its expiry, an isolate that was only slow) replaces the
//! worst case with the real cost and leaves the figure. The limiter remembers today's expired
//! reservations for that ([`LOST_KEPT`] of them, and yesterday's, whose late settle is
//! yesterday's); the settle of one it forgot changes nothing (its worst case stays charged, and
//! shown).
//!
//! Expired reservations hold nothing: the worst case is charged, so a reservation's time to
//! live ([`super::RESERVATION_TTL_MS`], or the deployment's `RESERVATION_TTL_MS`) decides only
//! when a dead isolate's reservation moves from "reserved" to "charged for requests whose
//! isolate died", not how much of the budget is free.

use serde::{Deserialize, Serialize};

use super::LimiterState;
use crate::money::pricing::Usd;

/// How many of today's expired reservations the limiter remembers, to correct their charge.
pub const LOST_KEPT: usize = 64;

/// A reservation that expired unsettled, charged its worst case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct LostReservation {
    pub(super) id: String,
    pub(super) amount: Usd,
    pub(super) day: u64,
}

impl LimiterState {
    /// Charges `amount` for `requests` requests whose isolate died (their worst cases).
    pub(super) fn charge_died(&mut self, amount: Usd, requests: u32) {
        if requests == 0 && amount == Usd::ZERO {
            return;
        }
        self.charge(amount);
        self.died = self.died.saturating_add(amount);
        self.died_requests = self.died_requests.saturating_add(u64::from(requests));
    }

    /// A request charged its worst case `charged` as died turned out to have cost `actual`
    /// (`None`: nothing, it was released or never started).
    pub(super) fn correct_died(&mut self, charged: Usd, actual: Option<Usd>) {
        self.spent = self.spent.saturating_sub(charged);
        self.died = self.died.saturating_sub(charged);
        self.died_requests = self.died_requests.saturating_sub(1);
        if let Some(actual) = actual {
            self.charge(actual);
        }
    }

    /// A reservation of `day` that expired unsettled: remembered, and charged its worst case
    /// when it is today's.
    pub(super) fn reservation_lost(&mut self, id: String, amount: Usd, day: u64) {
        if day == self.day {
            self.charge_died(amount, 1);
        }
        self.lost.push(LostReservation { id, amount, day });
        if self.lost.len() > LOST_KEPT {
            self.lost.remove(0);
        }
    }

    /// Takes expired reservation `id` (today's or yesterday's), if it is remembered.
    pub(super) fn take_lost(&mut self, id: &str) -> Option<LostReservation> {
        let i = self.lost.iter().position(|l| l.id == id)?;
        Some(self.lost.remove(i))
    }
}

#[cfg(test)]
mod tests {
    use crate::account::limits::{LimiterState, Policy, DAY_MS, RESERVATION_TTL_MS};
    use crate::attempt::Health;
    use crate::money::pricing::Usd;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000;
    const POLICY: Policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(1_000_000), breaker: None };

    #[test]
    fn an_expired_reservation_is_charged_its_worst_case_and_shown() {
        let mut s = LimiterState::default();
        s.reserve("a", Usd(700), POLICY, T0).unwrap();
        s.reserve("b", Usd(300), POLICY, T0).unwrap();
        s.settle("b", Some(Usd(100)), Health::Healthy, T0 + 5);
        let snap = s.snapshot(T0 + RESERVATION_TTL_MS);
        assert_eq!((snap.spent_usd, snap.reserved_usd), (Usd(800), Usd::ZERO));
        assert_eq!((snap.isolate_died_usd, snap.isolate_died_requests), (Usd(700), 1));
        assert_eq!(s.remaining(), Usd(1_000_000 - 800), "no budget came back at the expiry");
    }

    #[test]
    fn a_late_settle_replaces_the_worst_case_with_the_real_cost() {
        let mut s = LimiterState::default();
        for id in ["a", "b", "c"] {
            s.reserve(id, Usd(700), POLICY, T0).unwrap();
        }
        let later = T0 + RESERVATION_TTL_MS + 10;
        s.settle("a", Some(Usd(200)), Health::Healthy, later);
        s.release("b", Health::Neutral, later);
        let snap = s.snapshot(later);
        assert_eq!(snap.spent_usd, Usd(200 + 700), "a at its cost, b nothing, c its worst case");
        assert_eq!((snap.isolate_died_usd, snap.isolate_died_requests), (Usd(700), 1));
        s.cancel("c", later);
        let snap = s.snapshot(later);
        assert_eq!((snap.spent_usd, snap.isolate_died_usd, snap.isolate_died_requests), (Usd(200), Usd::ZERO, 0));
        // Settled twice: the second is an unknown id, which changes nothing.
        s.settle("a", Some(Usd(200)), Health::Healthy, later);
        assert_eq!(s.snapshot(later).spent_usd, Usd(200));
    }

    #[test]
    fn a_reservation_of_yesterday_expires_uncharged_today() {
        let mut s = LimiterState::default();
        let midnight = (T0 / DAY_MS + 1) * DAY_MS;
        s.reserve("a", Usd(700), POLICY, midnight - 1).unwrap();
        let snap = s.snapshot(midnight - 1 + RESERVATION_TTL_MS);
        assert_eq!((snap.spent_usd, snap.isolate_died_usd), (Usd::ZERO, Usd::ZERO));
    }
}
