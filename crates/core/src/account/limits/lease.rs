//! Per-isolate leases: a busy isolate's requests admitted without waiting for the limiter.
//!
//! An isolate leases a slice of a limiter's rate window and daily budget — `requests` admissions
//! and `budget` of spend, for at most [`LEASE_TTL_MS`] — and admits requests against it locally
//! (`local.rs`), with no round trip on the request's path. Each admission is a numbered ticket,
//! reported to the limiter as it happens and settled by a report of its own (`tickets.rs`); the
//! renewal carries the isolate's view of its tickets and asks for the next lease, off the
//! request's path. The limiter counts a live lease as if all of it were used, so nothing an
//! isolate does under it can break the limits:
//!
//! 1. **Budget**: `spent + reserved + leased ≤ budget` (the limiter's test, with live leases in
//!    it), and a local admission needs `spent + held + worst_case ≤ lease budget` — so the
//!    requests of every isolate together never spend past the budget (a cost above its own
//!    worst case excepted, as for reservations). A ticket's settle moves its cost from the
//!    lease to the spend.
//! 2. **Rate**: a live lease's slots count in the window; when its admissions are reported (a
//!    renewal, a return) they enter the window at the second of the report, and when the lease
//!    expires unreported all of its slots do, at its expiry. Every admission happens before
//!    either, so it stays counted for at least 60 seconds.
//! 3. **A dead isolate** costs what its requests in flight could cost, no more: when its lease
//!    expires unreported the limiter charges the worst cases of its open tickets (admitted,
//!    not reported settled) as requests whose isolate died, and releases the unused rest. With
//!    nothing in flight it costs nothing. An isolate that was only slow corrects the charge
//!    with its settles and its next renewal.
//! 4. **Clocks**: the isolate stops admitting [`LEASE_MARGIN_MS`] before the expiry it computes
//!    from when it *sent* the request for the lease, so before the limiter's own expiry whatever
//!    the clocks of the two say; an admission report dispatched by then arrives before the
//!    expiry unless it is delayed by more than the margin (then it is charged as died on
//!    arrival, and its settle corrects it).
//! 5. **Near a limit** leases shrink, then stop: a lease takes at most a quarter of what is
//!    free of the window and of the budget, and at most [`LEASE_MAX_REQUESTS`]; when that is
//!    fewer than [`LEASE_MIN_REQUESTS`], none is granted and every request asks the limiter
//!    itself (a reservation), so that the last requests before a limit are admitted exactly
//!    as without leases.
//! 6. **Only where it pays**: an isolate asks for a lease only when its requests for the
//!    limiter come at [`LEASE_BUSY_REQUESTS`] within [`LEASE_BUSY_MS`] or faster (`local.rs`),
//!    a rate at which the round trip to the limiter's object is felt; below it (a GitHub
//!    agent's one request a second) every request reserves, exactly as without leases. It gives
//!    the lease back at its next renewal once they slow down, or just before its end.
//!
//! What this costs: one message to the limiter per admission (not awaited), one per batch of
//! settles, one per renewal; against two awaited round trips per request without a lease.
//!
//! While a renewal is under way the isolate admits nothing under its lease (its report is a
//! snapshot): requests meanwhile reserve at the limiter, as without leases. A report that is
//! not answered within [`SYNC_LOST_MS`] is given up: its figures go into the next report.
//! Reports are numbered (`epoch`): the limiter ignores one older than what it already has of
//! the isolate, so a report given up and delivered late never replaces the lease a newer one
//! granted.
//!
//! A request that asks the limiter anyway (a reservation) carries the isolate's report, which
//! is applied *before* the reservation ([`LimiterState::reserve_with_report`]): the isolate's
//! own unused lease does not count against the request, and the next lease is sized by what
//! is left once the request is counted. A UTC day never spans a lease: requests in flight at
//! midnight are charged to their own day, as reservations are. The property tests
//! (`tests/properties/leases.rs`) check all of this over random interleavings of grants,
//! admissions, reports in any order, renewals, expiries, deaths at every point and day changes.

use serde::{Deserialize, Serialize};

use super::tickets::{TicketSettle, Tickets, View};
use super::{LimiterState, Policy, DAY_MS};
use crate::attempt::Health;
use crate::money::pricing::Usd;

pub use super::local::{Local, Slot, Ticket, LEASE_BUSY_MS, LEASE_BUSY_REQUESTS, SYNC_LOST_MS};

/// How long a lease lives unless renewed (a deployment may set its own: `LEASE_TTL_MS`, within
/// [`LEASE_TTL_RANGE_MS`]).
pub const LEASE_TTL_MS: u64 = 10_000;
/// The lease times to live a limiter accepts.
pub const LEASE_TTL_RANGE_MS: (u64, u64) = (2 * LEASE_MARGIN_MS, 10 * 60_000);
/// The isolate stops admitting this long before its computed expiry.
pub const LEASE_MARGIN_MS: u64 = 1_000;
/// A lease never holds more admissions than this.
pub const LEASE_MAX_REQUESTS: u32 = 64;
/// Fewer admissions than this are not worth a lease: none is granted.
pub const LEASE_MIN_REQUESTS: u32 = 4;
/// A lease takes at most 1/`LEASE_SHARE` of what is free (of the window, of the budget).
pub const LEASE_SHARE: u64 = 4;
/// How many ended leases (expired, or given back) the limiter remembers: their tickets, to
/// correct a died charge, and the latest report of each isolate (a bound on its state; a settle
/// of a forgotten one is charged on top: above the truth).
const EXPIRED_KEPT: usize = 256;

/// A live lease, as the limiter keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Lease {
    pub(super) id: String,
    /// The report that granted it.
    #[serde(default)]
    pub(super) epoch: u64,
    /// Admissions granted and not yet reported.
    pub(super) requests: u32,
    /// Budget held for it: what its open tickets and its free rest may still spend.
    pub(super) budget: Usd,
    pub(super) day: u64,
    pub(super) expires_at: u64,
    #[serde(default)]
    pub(super) tickets: Tickets,
}

/// A lease that ended (expired, or given back): kept for its tickets and its report's number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Expired {
    pub(super) id: String,
    pub(super) day: u64,
    /// The last report of the isolate the limiter applied.
    #[serde(default)]
    pub(super) epoch: u64,
    #[serde(default)]
    pub(super) tickets: Tickets,
}

/// What an isolate reports of its lease, and what it asks for next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSync {
    /// The isolate's lease id (one per isolate and limiter, kept across renewals).
    pub id: String,
    /// The report's number, increasing per isolate (0: unnumbered, never taken as stale).
    #[serde(default)]
    pub epoch: u64,
    /// The UTC day the reported figures belong to.
    pub day: u64,
    /// Admissions since the last report.
    pub admitted: u32,
    /// The number of the isolate's next ticket: every ticket below it is in this view.
    #[serde(default)]
    pub next: u64,
    /// Its open tickets: number and worst case.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open: Vec<(u64, Usd)>,
    /// Its settles the limiter has not acknowledged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<TicketSettle>,
    /// How the settled attempts went (the provider's circuit breaker).
    #[serde(default)]
    pub healthy: u32,
    #[serde(default)]
    pub failed: u32,
    /// Admissions wanted for the next period (0: give the lease back).
    pub want: u32,
    /// The worst case of one request, to size the budget by.
    pub per_request: Usd,
    /// The next lease's time to live (0: [`LEASE_TTL_MS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ttl_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The lease as the limiter granted it: absolute figures, replacing what the isolate had.
/// `requests == 0 && budget == 0`: no lease (the limiter keeps none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub requests: u32,
    /// The lease's budget as the isolate counts it: what its open tickets hold, and the rest.
    pub budget: Usd,
    /// Time to live from the limiter's now.
    pub ttl_ms: u64,
    /// The UTC day of the lease (the isolate forgets what it held of an earlier day).
    pub day: u64,
    /// Models marked unavailable, each with the ms its mark has left: the isolate does not
    /// admit them under its lease (it asks the limiter, which refuses them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<(String, u64)>,
}

/// A report applied: what the isolate's open tickets hold as it counts them, and what of that
/// the limiter already charged.
struct Applied {
    held: Usd,
    spent: Usd,
}

impl LimiterState {
    /// Expires leases whose time is up: all of their slots counted at their expiry (whatever
    /// the day: the window spans midnight); today's open tickets charged their worst cases as
    /// requests whose isolate died, the unused rest released.
    pub(super) fn expire_leases(&mut self, now: u64) {
        let mut i = 0;
        while i < self.leases.len() {
            if self.leases[i].expires_at > now {
                i += 1;
                continue;
            }
            let mut lease = self.leases.swap_remove(i);
            self.count_in_window(lease.expires_at / 1000, lease.requests);
            if lease.day == self.day {
                let (amount, requests) = lease.tickets.charge_open();
                self.charge_died(amount, requests);
            }
            let (id, day, epoch, tickets) = (lease.id, lease.day, lease.epoch, lease.tickets);
            self.remember(Expired { id, day, epoch, tickets });
        }
    }

    pub(super) fn remember(&mut self, ended: Expired) {
        self.expired.retain(|e| e.id != ended.id);
        self.expired.push(ended);
        if self.expired.len() > EXPIRED_KEPT {
            self.expired.remove(0);
        }
    }

    /// Budget held by live leases of today.
    pub(super) fn leased_today(&self) -> Usd {
        self.leases.iter().filter(|l| l.day == self.day).fold(Usd::ZERO, |sum, l| sum.saturating_add(l.budget))
    }

    /// What the limiter counts of lease `id` today: its budget while it lives; once it ended,
    /// what it charged its open tickets as died.
    pub fn lease_charge(&self, id: &str) -> Usd {
        let live = self.leases.iter().find(|l| l.id == id && l.day == self.day).map(|l| l.budget);
        let ended = || self.expired.iter().find(|e| e.id == id && e.day == self.day).map(|e| e.tickets.charged());
        live.or_else(ended).unwrap_or(Usd::ZERO)
    }

    /// Admissions held by live leases.
    pub(super) fn leased_requests(&self) -> usize {
        self.leases.iter().map(|l| l.requests as usize).sum()
    }

    /// An isolate's report and request on its own (a renewal, a give-back): applies what it
    /// did under its lease, then grants the next lease, sized by what is free (see the
    /// module's rules).
    pub fn sync_lease(&mut self, sync: &LeaseSync, policy: Policy, now: u64) -> LeaseGrant {
        self.roll(now);
        self.take_policy(policy);
        match self.apply_report(sync, now) {
            Some(applied) => self.grant_lease(sync, applied, policy, now),
            None => self.stale_answer(),
        }
    }

    /// A reservation that carries the isolate's report: the report applied first (the
    /// isolate's old lease no longer counts against the request), then the reservation (living
    /// `ttl_ms`), then the next lease, sized by what is left once the request is counted.
    /// `model` is the target's model: a provider's limiter refuses one marked unavailable at
    /// once (`unavailable.rs`); a scope's limiter is asked with `None`.
    #[allow(clippy::too_many_arguments)]
    pub fn reserve_with_report(
        &mut self,
        id: &str,
        model: Option<&str>,
        amount: Usd,
        policy: Policy,
        sync: Option<&LeaseSync>,
        ttl_ms: u64,
        now: u64,
    ) -> (Result<(), super::Refusal>, Option<LeaseGrant>) {
        self.roll(now);
        self.take_policy(policy);
        let applied = sync.map(|sync| (sync, self.apply_report(sync, now)));
        let result = match model.and_then(|m| self.refuse_unavailable(m, now)) {
            Some(refusal) => Err(refusal),
            None => self.reserve_for(id, amount, policy, ttl_ms, now),
        };
        let grant = applied.map(|(sync, applied)| match applied {
            Some(applied) => self.grant_lease(sync, applied, policy, now),
            None => self.stale_answer(),
        });
        (result, grant)
    }

    fn take_policy(&mut self, policy: Policy) {
        self.budget = policy.daily_budget;
        if policy.breaker.is_some() {
            self.breaker_policy = policy.breaker;
        }
    }

    /// The answer to a stale report: nothing (its isolate gave it up, and ignores this).
    fn stale_answer(&self) -> LeaseGrant {
        LeaseGrant { requests: 0, budget: Usd::ZERO, ttl_ms: 0, day: self.day, unavailable: Vec::new() }
    }

    /// Applies what an isolate reports of its lease (the lease itself ends: the next is
    /// granted by [`Self::grant_lease`]). `None`: the report is stale (the limiter has applied
    /// a later one of the isolate, which carried this one's view again) and changes nothing.
    fn apply_report(&mut self, sync: &LeaseSync, now: u64) -> Option<Applied> {
        let known = self.leases.iter().find(|l| l.id == sync.id).map(|l| l.epoch);
        let known = known.or_else(|| self.expired.iter().find(|e| e.id == sync.id).map(|e| e.epoch));
        if sync.epoch != 0 && known.is_some_and(|epoch| epoch >= sync.epoch) {
            return None;
        }
        let same_day = sync.day == self.day;
        // Reported admissions enter the window now, whatever their day (the window spans
        // midnight).
        self.count_in_window(now / 1000, sync.admitted);
        if same_day {
            self.admitted_under_leases += u64::from(sync.admitted);
        }
        let (mut tickets, _) = self.take_tickets(&sync.id);
        self.leases.retain(|l| l.id != sync.id);
        let applied = if same_day {
            let view = View { next: sync.next, open: &sync.open, settled: &sync.settled };
            let done = self.reconcile(&mut tickets, &view);
            Applied { held: done.held, spent: done.spent }
        } else {
            // Another day's view charges nothing today, and holds nothing of today's budget.
            Applied { held: Usd::ZERO, spent: Usd::ZERO }
        };
        if let Some(p) = &self.breaker_policy {
            for (health, n) in [(Health::Healthy, sync.healthy), (Health::Failed, sync.failed)] {
                for _ in 0..n.min(LEASE_MAX_REQUESTS * 4) {
                    self.breaker.record(p, health, false, now);
                }
            }
        }
        // What the open tickets hold stays covered until the next lease is granted (a
        // reservation made in between must not take its budget).
        let expires_at = self.lease_expiry(sync, now);
        let (id, epoch, day) = (sync.id.clone(), sync.epoch, self.day);
        let budget = applied.held.saturating_sub(applied.spent);
        self.leases.push(Lease { id, epoch, requests: 0, budget, day, expires_at, tickets });
        Some(applied)
    }

    fn lease_expiry(&self, sync: &LeaseSync, now: u64) -> u64 {
        let ttl = if sync.ttl_ms == 0 { LEASE_TTL_MS } else { sync.ttl_ms };
        let ttl = ttl.clamp(LEASE_TTL_RANGE_MS.0, LEASE_TTL_RANGE_MS.1);
        (now + ttl).min((self.day + 1) * DAY_MS)
    }

    /// The next lease of the isolate whose report was just applied: it covers what its open
    /// tickets hold, and `requests` more admissions of up to the report's worst case. The
    /// isolate is granted its budget as it counts it; the limiter holds that less what it
    /// already charged of it (settles that overtook the report).
    fn grant_lease(&mut self, sync: &LeaseSync, applied: Applied, policy: Policy, now: u64) -> LeaseGrant {
        let index = self.leases.iter().position(|l| l.id == sync.id);
        let tickets = index.map(|i| self.leases.swap_remove(i).tickets).unwrap_or_default();
        let hold = applied.held.saturating_sub(applied.spent);
        let requests = self.lease_size(sync, hold, policy);
        let more = Usd(u64::from(requests).saturating_mul(sync.per_request.pico()));
        let granted = applied.held.saturating_add(more);
        let budget = hold.saturating_add(more);
        let expires_at = self.lease_expiry(sync, now);
        let (id, epoch, day) = (sync.id.clone(), sync.epoch, self.day);
        if requests > 0 || budget > Usd::ZERO {
            self.leases.push(Lease { id, epoch, requests, budget, day, expires_at, tickets });
        } else {
            self.remember(Expired { id, day, epoch, tickets });
        }
        LeaseGrant { requests, budget: granted, ttl_ms: expires_at - now, day, unavailable: self.unavailable_for(now) }
    }

    /// How many admissions the next lease holds: at most a quarter of what is free of the
    /// window and of the budget (after what it holds), none when that is too few or when the
    /// breaker is not closed (half-open probes go one by one through the limiter).
    fn lease_size(&self, sync: &LeaseSync, hold: Usd, policy: Policy) -> u32 {
        if self.breaker_policy.is_some() && !self.breaker.is_closed() {
            return 0;
        }
        let used = self.requests_in_window() + self.leased_requests();
        let free_slots = (policy.requests_per_minute as usize).saturating_sub(used) as u64;
        let committed = self.spent.saturating_add(self.reserved_today()).saturating_add(self.leased_today());
        let free_budget = policy.daily_budget.saturating_sub(committed).saturating_sub(hold);
        let by_budget = free_budget.pico().checked_div(sync.per_request.pico()).unwrap_or(u64::MAX);
        let size = (free_slots / LEASE_SHARE).min(by_budget / LEASE_SHARE).min(u64::from(sync.want));
        if size < u64::from(LEASE_MIN_REQUESTS) {
            return 0;
        }
        size.min(u64::from(LEASE_MAX_REQUESTS)) as u32
    }

    /// Counts `n` admissions in the window's bucket for `second` (which may be before the
    /// newest bucket: a lease's expiry is counted when it is noticed).
    pub(super) fn count_in_window(&mut self, second: u64, n: u32) {
        if n == 0 {
            return;
        }
        let at = self.window.iter().rposition(|&(s, _)| s <= second);
        match at {
            Some(i) if self.window[i].0 == second => self.window[i].1 += n,
            Some(i) => self.window.insert(i + 1, (second, n)),
            None => self.window.push_front((second, n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::limits::tickets::{TicketSettle, TicketSettles};
    use crate::account::limits::MODEL_UNAVAILABLE_MS;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000;
    const POLICY: Policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(1_000_000), breaker: None };

    /// A busy isolate's lease: its requests 10 ms apart, then a sync granting it.
    fn leased(limiter: &mut LimiterState) -> Local {
        let mut local = Local::default();
        for i in 0..LEASE_BUSY_REQUESTS as u64 {
            assert_eq!(local.want(T0 + i * 10), 0, "not busy yet");
            assert!(local.admit(None, Usd(1_000), T0 + i * 10).is_none());
        }
        let now = T0 + 10 * LEASE_BUSY_REQUESTS as u64;
        let sync = local.begin_sync("iso", local.want(now), Usd(1_000), now).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, now);
        assert!(grant.requests >= 4, "{grant:?}");
        local.end_sync(sync.epoch, Some(grant));
        local
    }

    const NOW: u64 = T0 + 10 * LEASE_BUSY_REQUESTS as u64;

    fn settle_report(local: &mut Local, limiter: &mut LimiterState, now: u64) {
        let (no, settles) = local.settle_report("iso", now).unwrap();
        limiter.tickets_settled(&settles, now);
        local.end_settle_report(no, true);
    }

    #[test]
    fn a_dead_isolate_is_charged_its_open_tickets_not_its_lease() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let lease = limiter.lease_charge("iso");
        let slots = limiter.snapshot(NOW).leased_requests;
        let a = local.admit(None, Usd(1_000), NOW + 1).unwrap();
        local.confirm(a);
        let b = local.admit(None, Usd(700), NOW + 2).unwrap();
        local.confirm(b);
        limiter.ticket_admitted(&a.report("iso"), NOW + 3);
        limiter.ticket_admitted(&b.report("iso"), NOW + 3);
        // `a` ends and its settle is acknowledged; `b` is in flight when the isolate dies.
        local.settle(a, Some(Usd(300)), Health::Healthy);
        settle_report(&mut local, &mut limiter, NOW + 4);
        let s = limiter.snapshot(NOW + LEASE_TTL_MS + 1);
        assert_eq!((s.spent_usd, s.leased_usd, s.leases), (Usd(300 + 700), Usd::ZERO, 0));
        assert_eq!((s.isolate_died_usd, s.isolate_died_requests), (Usd(700), 1));
        assert!(lease > Usd(1_000), "the lease's unused rest was released");
        assert_eq!(s.requests_last_minute, slots, "its slots enter the window");
    }

    #[test]
    fn a_dead_isolate_with_nothing_in_flight_costs_nothing() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let a = local.admit(None, Usd(1_000), NOW + 1).unwrap();
        local.confirm(a);
        limiter.ticket_admitted(&a.report("iso"), NOW + 2);
        local.settle(a, Some(Usd(400)), Health::Healthy);
        settle_report(&mut local, &mut limiter, NOW + 3);
        let s = limiter.snapshot(NOW + LEASE_TTL_MS + 1);
        assert_eq!((s.spent_usd, s.isolate_died_usd, s.isolate_died_requests), (Usd(400), Usd::ZERO, 0));
    }

    #[test]
    fn a_late_report_corrects_the_died_charge() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let ticket = local.admit(None, Usd(1_000), NOW + 10).unwrap();
        local.confirm(ticket);
        limiter.ticket_admitted(&ticket.report("iso"), NOW + 11);
        local.settle(ticket, Some(Usd(300)), Health::Healthy);
        let late = NOW + LEASE_TTL_MS + 5_000;
        assert_eq!(limiter.snapshot(late).isolate_died_usd, Usd(1_000), "charged at the expiry");
        let sync = local.begin_sync("iso", 0, Usd(1_000), late).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, late);
        local.end_sync(sync.epoch, Some(grant.clone()));
        assert_eq!((grant.requests, grant.budget), (0, Usd::ZERO));
        let s = limiter.snapshot(late);
        assert_eq!((s.spent_usd, s.leased_usd, s.leases, s.isolate_died_usd), (Usd(300), Usd::ZERO, 0, Usd::ZERO));
        assert!(!local.holds_anything());
    }

    #[test]
    fn reports_in_any_order_change_the_books_once() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let a = local.admit(None, Usd(1_000), NOW + 1).unwrap();
        local.confirm(a);
        let b = local.admit(None, Usd(1_000), NOW + 1).unwrap();
        local.confirm(b);
        // `a`'s settle comes before its admission report, and twice.
        local.settle(a, Some(Usd(100)), Health::Healthy);
        let (no, settles) = local.settle_report("iso", NOW + 2).unwrap();
        limiter.tickets_settled(&settles, NOW + 3);
        limiter.tickets_settled(&settles, NOW + 3);
        local.end_settle_report(no, true);
        limiter.ticket_admitted(&a.report("iso"), NOW + 4);
        // A renewal leaves with `b` open; `b` settles and its report overtakes the renewal.
        let sync = local.begin_sync("iso", 4, Usd(1_000), NOW + 5).unwrap();
        local.settle(b, Some(Usd(200)), Health::Healthy);
        let (no, settles) = local.settle_report("iso", NOW + 6).unwrap();
        limiter.tickets_settled(&settles, NOW + 6);
        local.end_settle_report(no, true);
        local.end_sync(sync.epoch, Some(limiter.sync_lease(&sync, POLICY, NOW + 7)));
        limiter.ticket_admitted(&b.report("iso"), NOW + 8);
        // The isolate dies now: nothing of it is open.
        let s = limiter.snapshot(NOW + 8 + 2 * LEASE_TTL_MS);
        assert_eq!((s.spent_usd, s.isolate_died_usd), (Usd(300), Usd::ZERO), "{:?}", limiter.expired);
    }

    #[test]
    fn a_settle_that_overtakes_the_renewal_is_held_once() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let a = local.admit(None, Usd(1_000), NOW + 1).unwrap();
        local.confirm(a);
        limiter.ticket_admitted(&a.report("iso"), NOW + 1);
        let sync = local.begin_sync("iso", 4, Usd(1_000), NOW + 2).unwrap();
        local.settle(a, Some(Usd(250)), Health::Healthy);
        let (no, settles) = local.settle_report("iso", NOW + 3).unwrap();
        limiter.tickets_settled(&settles, NOW + 3);
        local.end_settle_report(no, true);
        let grant = limiter.sync_lease(&sync, POLICY, NOW + 4);
        local.end_sync(sync.epoch, Some(grant.clone()));
        // The isolate counts `a`'s cost against its new lease, as the limiter does: the two
        // hold the same, and nothing twice.
        let s = limiter.snapshot(NOW + 5);
        assert_eq!(s.spent_usd, Usd(250));
        assert_eq!(
            s.leased_usd.saturating_add(s.spent_usd),
            grant.budget,
            "committed = the lease as the isolate counts it"
        );
        assert_eq!(local.room(), grant.budget.saturating_sub(Usd(250)));
    }

    #[test]
    fn an_admission_report_after_its_lease_ended_is_charged_as_died_until_settled() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let a = local.admit(None, Usd(900), NOW + 1).unwrap();
        local.confirm(a);
        let after = NOW + LEASE_TTL_MS + 1;
        limiter.ticket_admitted(&a.report("iso"), after);
        assert_eq!(limiter.snapshot(after).isolate_died_usd, Usd(900));
        limiter.tickets_settled(
            &TicketSettles {
                id: "iso".into(),
                day: T0 / DAY_MS,
                settles: vec![TicketSettle { n: a.number(), amount: Usd(900), actual: Usd(50) }],
            },
            after + 1,
        );
        let s = limiter.snapshot(after + 2);
        assert_eq!((s.spent_usd, s.isolate_died_usd), (Usd(50), Usd::ZERO));
    }

    #[test]
    fn the_limiters_state_stays_small_under_a_busy_lease() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let mut open = std::collections::VecDeque::new();
        for i in 0..10_000u64 {
            let now = NOW + i / 100;
            let Some(ticket) = local.admit(None, Usd(1), now) else {
                let sync = local.begin_sync("iso", 64, Usd(1), now).unwrap();
                local.end_sync(sync.epoch, Some(limiter.sync_lease(&sync, POLICY, now)));
                continue;
            };
            local.confirm(ticket);
            limiter.ticket_admitted(&ticket.report("iso"), now);
            open.push_back(ticket);
            if open.len() > 8 {
                local.settle(open.pop_front().unwrap(), Some(Usd(1)), Health::Healthy);
                if let Some((no, settles)) = local.settle_report("iso", now) {
                    limiter.tickets_settled(&settles, now);
                    local.end_settle_report(no, true);
                }
            }
        }
        let state = serde_json::to_string(&limiter).unwrap();
        assert!(state.len() < 1_000, "{} bytes: {state}", state.len());
    }

    #[test]
    fn an_idle_isolate_gives_its_lease_back_at_the_next_renewal() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let later = NOW + LEASE_TTL_MS / 2 + 1;
        let ticket = local.admit(None, Usd(1_000), T0 + 3_000).unwrap();
        local.confirm(ticket);
        local.settle(ticket, None, Health::Healthy);
        assert_eq!(
            local.clone().renewal("iso", Usd(1_000), later).map(|s| s.want),
            Some(0),
            "requests seconds apart: the lease goes back"
        );
        // Eight requests within a second: busy again.
        for i in 0..LEASE_BUSY_REQUESTS as u64 {
            if let Some(ticket) = local.admit(None, Usd(1_000), T0 + 3_100 + i * 100) {
                local.settle(ticket, None, Health::Healthy);
            }
        }
        assert!(
            local.clone().renewal("iso", Usd(1_000), later).unwrap().want > 0,
            "requests 100 ms apart: it is renewed"
        );
        assert_eq!(local.want(T0 + 3_800 + LEASE_TTL_MS), 0, "none for a lease's life: it goes back");
    }

    #[test]
    fn a_request_a_second_never_takes_a_lease() {
        let mut local = Local::default();
        let mut now = T0;
        for i in 0..10_000u64 {
            // One a second, give or take 400 ms.
            now = T0 + i * 1_000 + (i * 7_919 % 800);
            assert_eq!(local.want(now), 0);
            assert!(local.admit(None, Usd(1_000), now).is_none());
        }
        assert_eq!(local.want(now), 0);
    }

    #[test]
    fn a_reservation_with_a_report_is_not_refused_for_the_isolates_own_lease() {
        // A budget of 32 requests; the isolate's first lease is of 4.
        let policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(32_000), breaker: None };
        let mut limiter = LimiterState::default();
        let mut local = Local::default();
        for i in 0..LEASE_BUSY_REQUESTS as u64 {
            local.admit(None, Usd(1_000), T0 + i);
        }
        let sync = local.report_with_request("iso", Usd(1_000), T0 + 10).unwrap();
        local.end_sync(sync.epoch, Some(limiter.sync_lease(&sync, policy, T0 + 10)));
        assert_eq!(limiter.lease_charge("iso"), Usd(4_000));
        // Everything else is reserved by others, but for one request's worth.
        for n in 0..27 {
            limiter.reserve(&format!("other{n}"), Usd(1_000), policy, T0 + 20).unwrap();
        }
        // A request too large for the lease asks the limiter with its report: the unused lease
        // goes back first, so the request fits.
        assert!(local.admit(None, Usd(5_000), T0 + 30).is_none());
        let sync = local.report_with_request("iso", Usd(5_000), T0 + 30).unwrap();
        let (reserved, grant) = limiter.reserve_with_report("r", None, Usd(5_000), policy, Some(&sync), 0, T0 + 30);
        assert_eq!(reserved, Ok(()));
        assert_eq!(grant.map(|g| g.requests), Some(0), "nothing left to lease");
    }

    /// A model marked at the limiter reaches isolates with their next grant: under the lease
    /// it is not admitted (the limiter, asked instead, refuses it); other models are.
    #[test]
    fn a_model_marked_unavailable_is_not_admitted_under_a_lease() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        assert!(local.admit(Some("gemini-2.5-flash"), Usd(1_000), NOW + 20).is_some());
        limiter.mark_unavailable("gemini-2.5-flash", "is no longer available to new users", NOW + 30);
        let sync = local.begin_sync("iso", 4, Usd(1_000), NOW + 40).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, NOW + 40);
        assert_eq!(grant.unavailable, vec![("gemini-2.5-flash".to_owned(), MODEL_UNAVAILABLE_MS - 10)]);
        local.end_sync(sync.epoch, Some(grant));
        assert!(local.admit(Some("models/gemini-2.5-flash"), Usd(1_000), NOW + 50).is_none());
        assert!(local.admit(Some("gemini-3.5-flash-lite"), Usd(1_000), NOW + 50).is_some());
        assert!(local.admit(None, Usd(1_000), NOW + 50).is_some());
        let (refused, _) =
            limiter.reserve_with_report("r", Some("gemini-2.5-flash"), Usd(1_000), POLICY, None, 0, NOW + 50);
        assert!(refused.unwrap_err().model_unavailable);
        // An isolate that saw the answer itself stops admitting the model at once.
        local.note_unavailable("gemini-3.5-flash-lite", NOW + 60);
        assert!(local.admit(Some("gemini-3.5-flash-lite"), Usd(1_000), NOW + 70).is_none());
    }

    #[test]
    fn a_report_given_up_and_delivered_late_changes_nothing() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let ticket = local.admit(None, Usd(1_000), NOW + 20).unwrap();
        local.confirm(ticket);
        local.settle(ticket, Some(Usd(400)), Health::Healthy);
        let old = local.begin_sync("iso", 4, Usd(1_000), NOW + 30).unwrap();
        // Its call never answers: given up once a lease's life has passed.
        let later = NOW + 30 + SYNC_LOST_MS;
        assert!(local.admit(None, Usd(1_000), later).is_none(), "not admitted while the lease is unknown");
        let new = local.begin_sync("iso", 4, Usd(1_000), later).unwrap();
        assert_eq!((new.admitted, new.settled.len()), (1, 1), "the lost report's figures go again");
        local.end_sync(new.epoch, Some(limiter.sync_lease(&new, POLICY, later)));
        let before = limiter.clone();
        assert_eq!(
            limiter.sync_lease(&old, POLICY, later + 5),
            LeaseGrant { requests: 0, budget: Usd::ZERO, ttl_ms: 0, day: T0 / DAY_MS, unavailable: Vec::new() }
        );
        assert_eq!(limiter, before, "the stale report changed the limiter");
        local.end_sync(
            old.epoch,
            Some(LeaseGrant {
                requests: 64,
                budget: Usd(64_000),
                ttl_ms: 10_000,
                day: T0 / DAY_MS,
                unavailable: Vec::new(),
            }),
        );
        assert!(
            local.admit(None, Usd(1_000), later + 10).is_some(),
            "the stale answer is ignored, the new lease stands"
        );
        assert_eq!(limiter.snapshot(later + 10).spent_usd, Usd(400));
    }

    #[test]
    fn the_lease_time_to_live_is_the_isolates_within_bounds() {
        let mut limiter = LimiterState::default();
        let mut local = Local::with_ttl(3_000);
        for i in 0..LEASE_BUSY_REQUESTS as u64 {
            local.admit(None, Usd(1_000), T0 + i);
        }
        let sync = local.begin_sync("iso", 8, Usd(1_000), T0 + 10).unwrap();
        assert_eq!(limiter.sync_lease(&sync, POLICY, T0 + 10).ttl_ms, 3_000);
        let sync = LeaseSync { epoch: 9, ttl_ms: 1, ..sync };
        assert_eq!(limiter.sync_lease(&sync, POLICY, T0 + 20).ttl_ms, LEASE_TTL_RANGE_MS.0);
    }
}
