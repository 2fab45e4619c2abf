//! Per-isolate leases: most requests admitted without asking the limiter's Durable Object.
//!
//! An isolate leases a slice of a limiter's rate window and daily budget — `requests` admissions
//! and `budget` of spend, for at most [`LEASE_TTL_MS`] — and admits requests against it locally
//! ([`Local`]), with no I/O. It reports what it did (admissions, spend, what is still in flight)
//! when it renews the lease, off the request's path, and gives it back when it goes idle. The
//! limiter counts a live lease as if all of it were used, so nothing an isolate does under it
//! can break the limits:
//!
//! 1. **Budget**: `spent + reserved + leased ≤ budget` (the limiter's test, with live leases in
//!    it), and a local admission needs `spent + held + worst_case ≤ lease budget` — so the
//!    requests of every isolate together never spend past the budget (a cost above its own
//!    worst case excepted, as for reservations).
//! 2. **Rate**: a live lease's slots count in the window; when its admissions are reported (a
//!    renewal, a return) they enter the window at the second of the report, and when the lease
//!    expires unreported all of its slots do, at its expiry. Every admission happens before
//!    either, so it stays counted for at least 60 seconds.
//! 3. **A dead isolate** strands at most its lease: at expiry the limiter charges the lease's
//!    whole budget (what it spent unreported, and what its killed requests may have been
//!    billed, are unknown: the books stay at or above the truth) and counts all its slots. An
//!    isolate that was only idle past its expiry corrects the charge with its next report (the
//!    limiter remembers today's expiries); one that goes quiet gives its lease back before
//!    it expires (rule 6), so a full charge is the mark of an isolate that died holding it.
//! 4. **Clocks**: the isolate stops admitting [`LEASE_MARGIN_MS`] before the expiry it computes
//!    from when it *sent* the request for the lease, so before the limiter's own expiry whatever
//!    the clocks of the two say.
//! 5. **Near a limit** leases shrink, then stop: a lease takes at most a quarter of what is
//!    free of the window and of the budget, and at most [`LEASE_MAX_REQUESTS`]; when that is
//!    fewer than [`LEASE_MIN_REQUESTS`], none is granted and every request asks the limiter
//!    itself (a reservation), so that the last requests before a limit are admitted exactly
//!    as without leases.
//!
//! 6. **Only when busy**: an isolate asks for a lease only when it sees requests for the
//!    limiter less than [`LEASE_BUSY_MS`] apart, and gives it back at its next renewal once
//!    they stop, so that a lone request, or an agent's burst followed by silence, leaves
//!    little held by isolates the platform then evicts.
//!
//! While a renewal is under way the isolate admits nothing under its lease (its report is a
//! snapshot): requests meanwhile reserve at the limiter, as without leases. A UTC day never
//! spans a lease: requests in flight at midnight are charged to their own day, as reservations
//! are. The property tests (`tests/properties/leases.rs`) check all of this over random
//! interleavings of grants, admissions, settles, renewals, expiries, deaths and day changes.

use serde::{Deserialize, Serialize};

use super::{LimiterState, Policy, DAY_MS};
use crate::account::breaker::Health;
use crate::account::pricing::Usd;

/// How long a lease lives unless renewed.
pub const LEASE_TTL_MS: u64 = 10_000;
/// The isolate stops admitting this long before its computed expiry.
pub const LEASE_MARGIN_MS: u64 = 1_000;
/// A lease never holds more admissions than this.
pub const LEASE_MAX_REQUESTS: u32 = 64;
/// Fewer admissions than this are not worth a lease: none is granted.
pub const LEASE_MIN_REQUESTS: u32 = 4;
/// A lease takes at most 1/`LEASE_SHARE` of what is free (of the window, of the budget).
pub const LEASE_SHARE: u64 = 4;
/// An isolate asks for a lease when its requests for a limiter come closer together than this.
pub const LEASE_BUSY_MS: u64 = 1_000;
/// How many of today's expired leases the limiter remembers, to correct their charge (a
/// bound on its state; a report of a forgotten one leaves the full charge standing).
const EXPIRED_KEPT: usize = 256;

/// A live lease, as the limiter keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Lease {
    pub(super) id: String,
    /// Admissions granted and not yet reported.
    pub(super) requests: u32,
    /// Budget granted and not yet reported spent (what is in flight, and what is free).
    pub(super) budget: Usd,
    pub(super) day: u64,
    pub(super) expires_at: u64,
}

/// A lease that expired unreported, charged in full, kept (today) to correct the charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Expired {
    id: String,
    charged: Usd,
    day: u64,
}

/// What an isolate reports of its lease, and what it asks for next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSync {
    /// The isolate's lease id (one per isolate and limiter, kept across renewals).
    pub id: String,
    /// The UTC day the reported figures belong to.
    pub day: u64,
    /// Admissions since the last report.
    pub admitted: u32,
    /// Spend settled since the last report.
    pub spent: Usd,
    /// Worst cases of the requests still in flight under the lease.
    pub held: Usd,
    /// How the settled attempts went (the provider's circuit breaker).
    #[serde(default)]
    pub healthy: u32,
    #[serde(default)]
    pub failed: u32,
    /// Admissions wanted for the next period (0: give the lease back).
    pub want: u32,
    /// The worst case of one request, to size the budget by.
    pub per_request: Usd,
}

/// The lease as the limiter granted it: absolute figures, replacing what the isolate had.
/// `requests == 0 && budget == 0`: no lease (the limiter keeps none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseGrant {
    pub requests: u32,
    pub budget: Usd,
    /// Time to live from the limiter's now.
    pub ttl_ms: u64,
    /// The UTC day of the lease (the isolate forgets what it held of an earlier day).
    pub day: u64,
}

impl LimiterState {
    /// Expires leases whose time is up: all of their slots counted at their expiry (whatever
    /// the day: the window spans midnight), and today's charged in full.
    pub(super) fn expire_leases(&mut self, now: u64) {
        let mut i = 0;
        while i < self.leases.len() {
            if self.leases[i].expires_at > now {
                i += 1;
                continue;
            }
            let lease = self.leases.swap_remove(i);
            self.count_in_window(lease.expires_at / 1000, lease.requests);
            if lease.day == self.day {
                self.charge(lease.budget);
                self.expired.retain(|e| e.id != lease.id);
                self.expired.push(Expired { id: lease.id, charged: lease.budget, day: lease.day });
                if self.expired.len() > EXPIRED_KEPT {
                    self.expired.remove(0);
                }
            }
        }
    }

    /// Budget held by live leases of today.
    pub(super) fn leased_today(&self) -> Usd {
        self.leases.iter().filter(|l| l.day == self.day).fold(Usd::ZERO, |sum, l| sum.saturating_add(l.budget))
    }

    /// What the limiter counts of lease `id` today: its budget while it lives, its full charge
    /// once it expired (until a report corrects it).
    pub fn lease_charge(&self, id: &str) -> Usd {
        let live = self.leases.iter().find(|l| l.id == id && l.day == self.day).map(|l| l.budget);
        let expired = || self.expired.iter().find(|e| e.id == id && e.day == self.day).map(|e| e.charged);
        live.or_else(expired).unwrap_or(Usd::ZERO)
    }

    /// Admissions held by live leases.
    pub(super) fn leased_requests(&self) -> usize {
        self.leases.iter().map(|l| l.requests as usize).sum()
    }

    /// An isolate's report and request: applies what it did under its lease, then grants the
    /// next lease, sized by what is free (see the module's rules).
    pub fn sync_lease(&mut self, sync: &LeaseSync, policy: Policy, now: u64) -> LeaseGrant {
        self.roll(now);
        self.budget = policy.daily_budget;
        if policy.breaker.is_some() {
            self.breaker_policy = policy.breaker;
        }
        let same_day = sync.day == self.day;
        let second = now / 1000;
        // What stays in flight under the isolate's lease, and must stay covered.
        let carried = if same_day { sync.held } else { Usd::ZERO };
        // Reported admissions enter the window now, whatever their day (the window spans
        // midnight); reported spend is charged when it is today's.
        self.count_in_window(second, sync.admitted);
        if same_day {
            self.admitted_under_leases += u64::from(sync.admitted);
        }
        if let Some(i) = self.leases.iter().position(|l| l.id == sync.id) {
            self.leases.swap_remove(i);
            if same_day {
                self.charge(sync.spent);
            }
        } else if let Some(i) = self.expired.iter().position(|e| e.id == sync.id) {
            let expired = self.expired.remove(i);
            if same_day && expired.day == self.day {
                // Charged in full at expiry: now what it really spent; what is still in flight
                // is carried into the next lease below.
                self.spent = self.spent.saturating_sub(expired.charged);
                self.charge(sync.spent);
            }
        }
        // Otherwise the limiter knows no such lease today (none was granted since the isolate's
        // last report, or it expired and was forgotten): a full charge covers what the report
        // says, and what is in flight is covered again by the next lease (twice until it
        // settles: on the safe side).
        if let Some(p) = &self.breaker_policy {
            for (health, n) in [(Health::Healthy, sync.healthy), (Health::Failed, sync.failed)] {
                for _ in 0..n.min(LEASE_MAX_REQUESTS * 4) {
                    self.breaker.record(p, health, false, now);
                }
            }
        }
        let requests = self.lease_size(sync, carried, policy);
        let budget = carried.saturating_add(Usd(u64::from(requests).saturating_mul(sync.per_request.pico())));
        let expires_at = (now + LEASE_TTL_MS).min((self.day + 1) * DAY_MS);
        if requests > 0 || budget > Usd::ZERO {
            self.leases.push(Lease { id: sync.id.clone(), requests, budget, day: self.day, expires_at });
        }
        LeaseGrant { requests, budget, ttl_ms: expires_at - now, day: self.day }
    }

    /// How many admissions the next lease holds: at most a quarter of what is free of the
    /// window and of the budget (after what it carries), none when that is too few or
    /// when the breaker is not closed (half-open probes go one by one through the limiter).
    fn lease_size(&self, sync: &LeaseSync, carried: Usd, policy: Policy) -> u32 {
        if self.breaker_policy.is_some() && !self.breaker.is_closed() {
            return 0;
        }
        let used = self.requests_in_window() + self.leased_requests();
        let free_slots = (policy.requests_per_minute as usize).saturating_sub(used) as u64;
        let committed = self.spent.saturating_add(self.reserved_today()).saturating_add(self.leased_today());
        let free_budget = policy.daily_budget.saturating_sub(committed).saturating_sub(carried);
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

/// A request admitted under a lease: what it holds until it settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    day: u64,
    amount: Usd,
    /// Which report will carry its admission (only an unreported one can be taken back).
    epoch: u32,
}

impl Ticket {
    pub fn amount(&self) -> Usd {
        self.amount
    }
}

/// An isolate's side of one limiter's lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// Admissions and budget as last granted (the limiter's figures).
    requests: u32,
    budget: Usd,
    /// The day the lease and `held` belong to.
    day: u64,
    /// No admission at or after this time (the isolate's clock).
    until_ms: u64,
    /// When the lease was granted (renewals are due halfway).
    granted_ms: u64,
    /// Since the last report: admissions, settled spend, outcomes.
    admitted: u32,
    spent: Usd,
    healthy: u32,
    failed: u32,
    /// Worst cases of the tickets in flight.
    held: Usd,
    /// A report is on its way to the limiter: no admission until it answers.
    syncing: bool,
    /// Admissions of the last period, to size the next.
    last_period: u32,
    /// Reports begun so far.
    epoch: u32,
    /// When the limiter's last two requests in this isolate arrived (the isolate's clock).
    seen_ms: [u64; 2],
}

impl Local {
    /// Admits one request costing at most `amount` under the lease, or `None` (the request
    /// asks the limiter itself).
    pub fn admit(&mut self, amount: Usd, now: u64) -> Option<Ticket> {
        self.seen_ms = [self.seen_ms[1], now];
        let live = !self.syncing && now < self.until_ms && now / DAY_MS == self.day;
        let room = self.budget.saturating_sub(self.spent.saturating_add(self.held));
        if !live || self.admitted >= self.requests || amount > room {
            return None;
        }
        self.admitted += 1;
        self.held = self.held.saturating_add(amount);
        Some(Ticket { day: self.day, amount, epoch: self.epoch })
    }

    /// Ends a ticket: `actual` spent (`None`: its worst case), `health` for the breaker. A
    /// ticket of an earlier day is its day's: the lease no longer holds it.
    pub fn settle(&mut self, ticket: Ticket, actual: Option<Usd>, health: Health) {
        if ticket.day != self.day {
            return;
        }
        self.held = self.held.saturating_sub(ticket.amount);
        self.spent = self.spent.saturating_add(actual.unwrap_or(ticket.amount));
        match health {
            Health::Healthy => self.healthy += 1,
            Health::Failed => self.failed += 1,
            Health::Neutral => {}
        }
    }

    /// Takes back a ticket whose attempt never started (another limiter refused it).
    pub fn cancel(&mut self, ticket: Ticket) {
        if ticket.day == self.day {
            self.held = self.held.saturating_sub(ticket.amount);
            // Already reported, the admission stays counted: on the safe side.
            if ticket.epoch == self.epoch {
                self.admitted = self.admitted.saturating_sub(1);
            }
        }
    }

    /// Whether a renewal is due: the lease is past half its life, or more than three quarters
    /// used, or an attempt failed (the breaker should know soon). Only with a live lease.
    pub fn renewal_due(&self, now: u64) -> bool {
        if self.syncing || (self.requests == 0 && self.budget == Usd::ZERO) {
            return false;
        }
        let half = self.granted_ms + (self.until_ms.saturating_sub(self.granted_ms)) / 2;
        now >= half || self.admitted * 4 >= self.requests * 3 || self.failed > 0
    }

    /// Whether the isolate holds anything of the limiter's (a lease, or a report to make).
    pub fn holds_anything(&self) -> bool {
        self.requests > 0 || self.budget > Usd::ZERO || self.admitted > 0 || self.spent > Usd::ZERO
    }

    /// When the lease stops admitting, if one is live.
    pub fn until_ms(&self) -> Option<u64> {
        (self.requests > 0 || self.budget > Usd::ZERO).then_some(self.until_ms)
    }

    /// Nothing in flight under the lease.
    pub fn idle(&self) -> bool {
        self.held == Usd::ZERO
    }

    pub fn syncing(&self) -> bool {
        self.syncing
    }

    /// Starts a report (`None` while another is under way): what was done since the last one,
    /// and a request for `want` admissions of up to `per_request` each (0: give it back). Until
    /// [`Self::end_sync`], nothing is admitted under the lease.
    pub fn begin_sync(&mut self, id: &str, want: u32, per_request: Usd) -> Option<LeaseSync> {
        if self.syncing {
            return None;
        }
        self.syncing = true;
        self.epoch = self.epoch.wrapping_add(1);
        self.last_period = self.admitted;
        let sync = LeaseSync {
            id: id.to_owned(),
            day: self.day,
            admitted: std::mem::take(&mut self.admitted),
            spent: std::mem::take(&mut self.spent),
            held: self.held,
            healthy: std::mem::take(&mut self.healthy),
            failed: std::mem::take(&mut self.failed),
            want,
            per_request,
        };
        Some(sync)
    }

    /// How many admissions to ask for: twice what the last period used, at least 4; none (no
    /// lease, or give it back) unless the last two requests came within [`LEASE_BUSY_MS`] and
    /// the latest within [`LEASE_TTL_MS`] of `now`.
    pub fn want(&self, now: u64) -> u32 {
        let [before, last] = self.seen_ms;
        let busy = before > 0 && last.saturating_sub(before) < LEASE_BUSY_MS && now.saturating_sub(last) < LEASE_TTL_MS;
        if !busy {
            return 0;
        }
        (self.last_period.max(self.admitted) * 2).clamp(4, LEASE_MAX_REQUESTS)
    }

    /// The limiter's answer to `sync`, sent at `sent_ms` (the isolate's clock): the new lease.
    /// `None`: no answer; the report is kept for the next one (if the limiter did apply it,
    /// it is counted twice: on the safe side), and nothing more is admitted under the lease
    /// (the limiter may have shrunk it) until a report is answered.
    pub fn end_sync(&mut self, sync: LeaseSync, answer: Option<LeaseGrant>, sent_ms: u64) {
        self.syncing = false;
        let Some(grant) = answer else {
            self.admitted += sync.admitted;
            self.spent = self.spent.saturating_add(sync.spent);
            self.healthy += sync.healthy;
            self.failed += sync.failed;
            self.requests = 0;
            return;
        };
        if grant.day != self.day {
            // A new day: what was in flight is the old day's, and so is any later settle of it.
            (self.day, self.held, self.spent, self.admitted) = (grant.day, Usd::ZERO, Usd::ZERO, 0);
        }
        self.requests = grant.requests;
        self.budget = grant.budget;
        self.granted_ms = sent_ms;
        self.until_ms = (sent_ms + grant.ttl_ms).saturating_sub(LEASE_MARGIN_MS);
    }

    /// What the lease has left to spend (for the budget-remaining header).
    pub fn room(&self) -> Usd {
        self.budget.saturating_sub(self.spent.saturating_add(self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000;
    const POLICY: Policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(1_000_000), breaker: None };

    /// A busy isolate's lease: two requests 10 ms apart, then a sync granting it.
    fn leased(limiter: &mut LimiterState) -> Local {
        let mut local = Local::default();
        assert!(local.admit(Usd(1_000), T0).is_none());
        assert_eq!(local.want(T0), 0, "one request is not busy");
        assert!(local.admit(Usd(1_000), T0 + 10).is_none());
        let sync = local.begin_sync("iso", local.want(T0 + 10), Usd(1_000)).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, T0 + 10);
        assert!(grant.requests >= 4, "{grant:?}");
        local.end_sync(sync, Some(grant), T0 + 10);
        local
    }

    #[test]
    fn an_unreported_lease_is_charged_in_full_at_expiry() {
        let mut limiter = LimiterState::default();
        let local = leased(&mut limiter);
        let budget = limiter.lease_charge("iso");
        assert!(budget > Usd::ZERO);
        let s = limiter.snapshot(T0 + 10 + LEASE_TTL_MS + 1);
        assert_eq!((s.spent_usd, s.leased_usd, s.leases), (budget, Usd::ZERO, 0));
        assert_eq!(s.requests_last_minute, local.requests as usize, "its slots enter the window");
    }

    #[test]
    fn a_late_report_corrects_the_full_charge() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let ticket = local.admit(Usd(1_000), T0 + 20).unwrap();
        local.settle(ticket, Some(Usd(300)), Health::Healthy);
        let late = T0 + 10 + LEASE_TTL_MS + 5_000;
        let sync = local.begin_sync("iso", 0, Usd(1_000)).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, late);
        local.end_sync(sync, Some(grant.clone()), late);
        assert_eq!(grant, LeaseGrant { requests: 0, budget: Usd::ZERO, ttl_ms: LEASE_TTL_MS, day: T0 / DAY_MS });
        let s = limiter.snapshot(late);
        assert_eq!((s.spent_usd, s.leased_usd, s.leases), (Usd(300), Usd::ZERO, 0));
        assert!(!local.holds_anything());
    }

    #[test]
    fn an_idle_isolate_gives_its_lease_back_at_the_next_renewal() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let later = T0 + 10 + LEASE_TTL_MS / 2 + 1;
        let ticket = local.admit(Usd(1_000), T0 + 3_000).unwrap();
        local.settle(ticket, None, Health::Healthy);
        assert!(local.renewal_due(later));
        assert_eq!(local.want(later), 0, "requests seconds apart: the lease goes back");
        let ticket = local.admit(Usd(1_000), T0 + 3_100).unwrap();
        local.settle(ticket, None, Health::Healthy);
        assert!(local.want(later) > 0, "requests 100 ms apart: it is renewed");
        assert_eq!(local.want(T0 + 3_100 + LEASE_TTL_MS), 0, "none for a lease's life: it goes back");
    }
}
