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
//! snapshot): requests meanwhile reserve at the limiter, as without leases. A report that is
//! not answered within [`SYNC_LOST_MS`] is given up: its figures go into the next report (if
//! the limiter did apply it, they are counted twice: on the safe side). Reports are numbered
//! (`epoch`): the limiter ignores one older than what it already has of the isolate, so a
//! report given up and delivered late never replaces the lease a newer one granted.
//!
//! A request that asks the limiter anyway (a reservation) carries the isolate's report, which
//! is applied *before* the reservation ([`LimiterState::reserve_with_report`]): the isolate's
//! own unused lease does not count against the request, and the next lease is sized by what
//! is left once the request is counted. A UTC day never
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
/// A report unanswered for this long is given up (its call was lost without an error).
pub const SYNC_LOST_MS: u64 = LEASE_TTL_MS;
/// How many ended leases (expired unreported, or given back) the limiter remembers: to correct
/// an expiry's full charge, and to know the latest report of each isolate (a bound on its
/// state; a report of a forgotten one leaves the full charge standing).
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
    /// Budget granted and not yet reported spent (what is in flight, and what is free).
    pub(super) budget: Usd,
    pub(super) day: u64,
    pub(super) expires_at: u64,
}

/// A lease that ended: expired unreported (charged in full, kept to correct the charge), or
/// given back (`charged` zero: kept for its report's number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Expired {
    id: String,
    charged: Usd,
    pub(super) day: u64,
    /// The last report of the isolate the limiter applied.
    #[serde(default)]
    epoch: u64,
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
    /// Models marked unavailable, each with the ms its mark has left: the isolate does not
    /// admit them under its lease (it asks the limiter, which refuses them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable: Vec<(String, u64)>,
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
            let charged = if lease.day == self.day { lease.budget } else { Usd::ZERO };
            if charged > Usd::ZERO {
                self.charge(charged);
            }
            self.remember(Expired { id: lease.id, charged, day: lease.day, epoch: lease.epoch });
        }
    }

    fn remember(&mut self, ended: Expired) {
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

    /// An isolate's report and request on its own (a renewal, a give-back): applies what it
    /// did under its lease, then grants the next lease, sized by what is free (see the
    /// module's rules).
    pub fn sync_lease(&mut self, sync: &LeaseSync, policy: Policy, now: u64) -> LeaseGrant {
        self.roll(now);
        self.take_policy(policy);
        match self.apply_report(sync, now) {
            Some(carried) => self.grant_lease(sync, carried, policy, now),
            None => self.stale_answer(),
        }
    }

    /// A reservation that carries the isolate's report: the report applied first (the
    /// isolate's old lease no longer counts against the request), then the reservation, then
    /// the next lease, sized by what is left once the request is counted. `model` is the
    /// target's model: a provider's limiter refuses one marked unavailable at once
    /// (`unavailable.rs`); a scope's limiter is asked with `None`.
    pub fn reserve_with_report(
        &mut self,
        id: &str,
        model: Option<&str>,
        amount: Usd,
        policy: Policy,
        sync: Option<&LeaseSync>,
        now: u64,
    ) -> (Result<(), super::Refusal>, Option<LeaseGrant>) {
        self.roll(now);
        self.take_policy(policy);
        let applied = sync.map(|sync| (sync, self.apply_report(sync, now)));
        let result = match model.and_then(|m| self.refuse_unavailable(m, now)) {
            Some(refusal) => Err(refusal),
            None => self.reserve(id, amount, policy, now),
        };
        let grant = applied.map(|(sync, carried)| match carried {
            Some(carried) => self.grant_lease(sync, carried, policy, now),
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
    /// granted by [`Self::grant_lease`]); what stays in flight under it, to be covered by the
    /// next lease. `None`: the report is stale (the limiter has applied a later one of the
    /// isolate, which carried this one's figures again) and changes nothing.
    fn apply_report(&mut self, sync: &LeaseSync, now: u64) -> Option<Usd> {
        let known = self.leases.iter().find(|l| l.id == sync.id).map(|l| l.epoch);
        let known = known.or_else(|| self.expired.iter().find(|e| e.id == sync.id).map(|e| e.epoch));
        if sync.epoch != 0 && known.is_some_and(|epoch| epoch >= sync.epoch) {
            return None;
        }
        let same_day = sync.day == self.day;
        // Reported admissions enter the window now, whatever their day (the window spans
        // midnight); reported spend is charged when it is today's.
        self.count_in_window(now / 1000, sync.admitted);
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
                // Charged in full at expiry (or nothing, given back): now what it really spent;
                // what is still in flight is carried into the next lease.
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
        let carried = if same_day { sync.held } else { Usd::ZERO };
        // What is in flight stays covered until the next lease is granted (a reservation made
        // in between must not take its budget).
        if carried > Usd::ZERO {
            let expires_at = (now + LEASE_TTL_MS).min((self.day + 1) * DAY_MS);
            let (id, epoch, day) = (sync.id.clone(), sync.epoch, self.day);
            self.leases.push(Lease { id, epoch, requests: 0, budget: carried, day, expires_at });
        }
        Some(carried)
    }

    /// The next lease of the isolate whose report was just applied: it covers what `carried`
    /// is still in flight, and `requests` more admissions of up to the report's worst case.
    fn grant_lease(&mut self, sync: &LeaseSync, carried: Usd, policy: Policy, now: u64) -> LeaseGrant {
        self.leases.retain(|l| l.id != sync.id);
        let requests = self.lease_size(sync, carried, policy);
        let budget = carried.saturating_add(Usd(u64::from(requests).saturating_mul(sync.per_request.pico())));
        let expires_at = (now + LEASE_TTL_MS).min((self.day + 1) * DAY_MS);
        let (id, epoch, day) = (sync.id.clone(), sync.epoch, self.day);
        if requests > 0 || budget > Usd::ZERO {
            self.leases.push(Lease { id, epoch, requests, budget, day, expires_at });
        } else {
            self.remember(Expired { id, charged: Usd::ZERO, day, epoch });
        }
        LeaseGrant { requests, budget, ttl_ms: expires_at - now, day, unavailable: self.unavailable_for(now) }
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
    epoch: u64,
}

impl Ticket {
    pub fn amount(&self) -> Usd {
        self.amount
    }
}

/// A report on its way to the limiter: what it carries, kept to be sent again if it is lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sent {
    epoch: u64,
    at_ms: u64,
    admitted: u32,
    spent: Usd,
    healthy: u32,
    failed: u32,
}

/// An isolate's side of one limiter's lease: every decision it makes about it (admit, when to
/// report and for how much, when to give the lease back); the shell only carries the reports.
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
    /// The report on its way to the limiter: no admission until it is answered or given up.
    sent: Option<Sent>,
    /// Admissions of the last period, to size the next.
    last_period: u32,
    /// Reports begun so far.
    epoch: u64,
    /// When the limiter's last two requests in this isolate arrived (the isolate's clock).
    seen_ms: [u64; 2],
    /// The end of the lease a give-back is planned for (at most one per lease).
    return_planned: Option<u64>,
    /// Models marked unavailable, until when (the isolate's clock): never admitted locally.
    unavailable: Vec<(String, u64)>,
}

impl Local {
    /// Admits one request for `model` (`None`: a scope's limiter) costing at most `amount`
    /// under the lease, or `None` (the request asks the limiter itself: always, for a model
    /// marked unavailable, which the limiter refuses).
    pub fn admit(&mut self, model: Option<&str>, amount: Usd, now: u64) -> Option<Ticket> {
        self.seen_ms = [self.seen_ms[1], now];
        let live = !self.syncing(now) && now < self.until_ms && now / DAY_MS == self.day;
        if !live || self.admitted >= self.requests || amount > self.room() || self.marked(model, now) {
            return None;
        }
        self.admitted += 1;
        self.held = self.held.saturating_add(amount);
        Some(Ticket { day: self.day, amount, epoch: self.epoch })
    }

    /// Notes that `model` was answered unavailable here (the limiter is told apart): not
    /// admitted under the lease for [`super::MODEL_UNAVAILABLE_MS`], or until a grant says.
    pub fn note_unavailable(&mut self, model: &str, now: u64) {
        let model = crate::names::model(model);
        self.unavailable.retain(|(m, _)| *m != model);
        self.unavailable.push((model, now.saturating_add(super::MODEL_UNAVAILABLE_MS)));
    }

    fn marked(&self, model: Option<&str>, now: u64) -> bool {
        let Some(model) = model.filter(|_| !self.unavailable.is_empty()) else { return false };
        let model = crate::names::model(model);
        self.unavailable.iter().any(|(m, until)| *m == model && now < *until)
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

    /// What to report with a request that asks the limiter anyway (a reservation): what was
    /// done under the lease and a request for the next, when the isolate is busy or holds
    /// something of the limiter's, and no other report is under way.
    pub fn report_with_request(&mut self, id: &str, per_request: Usd, now: u64) -> Option<LeaseSync> {
        let want = self.want(now);
        if want == 0 && !self.holds_anything() {
            return None;
        }
        self.begin_sync(id, want, per_request, now)
    }

    /// The renewal a request's end makes due, if any: past half the lease's life, or more
    /// than three quarters of it used, or an attempt failed (the breaker should hear of it
    /// soon). It asks for as much as the traffic wants, or gives the lease back when the
    /// isolate's requests have stopped.
    pub fn renewal(&mut self, id: &str, per_request: Usd, now: u64) -> Option<LeaseSync> {
        if self.syncing(now) || self.until_ms().is_none() {
            return None;
        }
        let half = self.granted_ms + (self.until_ms.saturating_sub(self.granted_ms)) / 2;
        let due = now >= half || self.admitted * 4 >= self.requests * 3 || self.failed > 0;
        if !due {
            return None;
        }
        self.report_with_request(id, per_request, now)
    }

    /// When the isolate has nothing in flight under its lease and no give-back is planned
    /// for this lease yet (a renewed lease gets its own): the time to give it back if no
    /// request renews it first (just before it stops admitting), so that an isolate that goes
    /// quiet does not leave its lease to be charged in full at expiry. The caller waits until
    /// then and calls [`Self::give_back`].
    pub fn plan_give_back(&mut self, now: u64) -> Option<u64> {
        let until = self.until_ms()?;
        if !self.idle() || self.syncing(now) || self.return_planned == Some(until) {
            return None;
        }
        self.return_planned = Some(until);
        Some(until)
    }

    /// The give-back [`Self::plan_give_back`] planned for the lease ending at `until`, if it is
    /// still that lease and still has nothing in flight.
    pub fn give_back(&mut self, id: &str, until: u64, now: u64) -> Option<LeaseSync> {
        if self.return_planned == Some(until) {
            self.return_planned = None;
        }
        if self.until_ms() != Some(until) || !self.idle() || self.syncing(now) {
            return None;
        }
        self.begin_sync(id, 0, Usd::ZERO, now)
    }

    /// A report that gives the lease back (what is in flight stays covered), for a question
    /// asked of the limiter anyway (`/limits`); none when the isolate holds nothing of it.
    pub fn hand_in(&mut self, id: &str, now: u64) -> Option<LeaseSync> {
        if !self.holds_anything() {
            return None;
        }
        self.begin_sync(id, 0, Usd::ZERO, now)
    }

    /// The number of the report under way, if one is (and was not given up by `now`).
    pub fn report_under_way(&mut self, now: u64) -> Option<u64> {
        self.syncing(now);
        self.sent.map(|s| s.epoch)
    }

    /// Whether the isolate holds anything of the limiter's (a lease, or a report to make).
    pub fn holds_anything(&self) -> bool {
        self.requests > 0 || self.budget > Usd::ZERO || self.admitted > 0 || self.spent > Usd::ZERO
    }

    /// When the lease stops admitting, if one is live.
    fn until_ms(&self) -> Option<u64> {
        (self.requests > 0 || self.budget > Usd::ZERO).then_some(self.until_ms)
    }

    /// Nothing in flight under the lease.
    fn idle(&self) -> bool {
        self.held == Usd::ZERO
    }

    /// Whether a report is under way; one unanswered for [`SYNC_LOST_MS`] is given up first
    /// (as if its call had failed).
    fn syncing(&mut self, now: u64) -> bool {
        if let Some(sent) = self.sent.filter(|s| now.saturating_sub(s.at_ms) >= SYNC_LOST_MS) {
            self.end_sync(sent.epoch, None);
        }
        self.sent.is_some()
    }

    /// Starts report number `epoch` (`None` while another is under way): what was done since
    /// the last one, and a request for `want` admissions of up to `per_request` each (0: give
    /// the lease back). Until [`Self::end_sync`], nothing is admitted under the lease.
    pub fn begin_sync(&mut self, id: &str, want: u32, per_request: Usd, now: u64) -> Option<LeaseSync> {
        if self.syncing(now) {
            return None;
        }
        self.epoch += 1;
        self.last_period = self.admitted;
        let sent = Sent {
            epoch: self.epoch,
            at_ms: now,
            admitted: std::mem::take(&mut self.admitted),
            spent: std::mem::take(&mut self.spent),
            healthy: std::mem::take(&mut self.healthy),
            failed: std::mem::take(&mut self.failed),
        };
        self.sent = Some(sent);
        Some(LeaseSync {
            id: id.to_owned(),
            epoch: sent.epoch,
            day: self.day,
            admitted: sent.admitted,
            spent: sent.spent,
            held: self.held,
            healthy: sent.healthy,
            failed: sent.failed,
            want,
            per_request,
        })
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

    /// The limiter's answer to report `epoch`: the new lease. `None`: no answer; the report's
    /// figures go into the next one (if the limiter did apply it, they are counted twice: on
    /// the safe side), and nothing more is admitted under the lease (the limiter may have
    /// shrunk it) until a report is answered. An answer to a report already given up is
    /// ignored (the limiter ignores that report if it comes after the next).
    pub fn end_sync(&mut self, epoch: u64, answer: Option<LeaseGrant>) {
        let Some(sent) = self.sent.take_if(|s| s.epoch == epoch) else { return };
        let Some(grant) = answer else {
            self.admitted += sent.admitted;
            self.spent = self.spent.saturating_add(sent.spent);
            self.healthy += sent.healthy;
            self.failed += sent.failed;
            self.requests = 0;
            return;
        };
        if grant.day != self.day {
            // A new day: what was in flight is the old day's, and so is any later settle of it.
            (self.day, self.held, self.spent, self.admitted) = (grant.day, Usd::ZERO, Usd::ZERO, 0);
        }
        self.requests = grant.requests;
        self.budget = grant.budget;
        self.granted_ms = sent.at_ms;
        self.unavailable =
            grant.unavailable.into_iter().map(|(m, left)| (m, sent.at_ms.saturating_add(left))).collect();
        self.until_ms = (sent.at_ms + grant.ttl_ms).saturating_sub(LEASE_MARGIN_MS);
    }

    /// What the lease has left to spend (for the budget-remaining header).
    pub fn room(&self) -> Usd {
        self.budget.saturating_sub(self.spent.saturating_add(self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::limits::MODEL_UNAVAILABLE_MS;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000;
    const POLICY: Policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(1_000_000), breaker: None };

    /// A busy isolate's lease: two requests 10 ms apart, then a sync granting it.
    fn leased(limiter: &mut LimiterState) -> Local {
        let mut local = Local::default();
        assert!(local.admit(None, Usd(1_000), T0).is_none());
        assert_eq!(local.want(T0), 0, "one request is not busy");
        assert!(local.admit(None, Usd(1_000), T0 + 10).is_none());
        let sync = local.begin_sync("iso", local.want(T0 + 10), Usd(1_000), T0 + 10).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, T0 + 10);
        assert!(grant.requests >= 4, "{grant:?}");
        local.end_sync(sync.epoch, Some(grant));
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
        let ticket = local.admit(None, Usd(1_000), T0 + 20).unwrap();
        local.settle(ticket, Some(Usd(300)), Health::Healthy);
        let late = T0 + 10 + LEASE_TTL_MS + 5_000;
        let sync = local.begin_sync("iso", 0, Usd(1_000), late).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, late);
        local.end_sync(sync.epoch, Some(grant.clone()));
        assert_eq!(
            grant,
            LeaseGrant {
                requests: 0,
                budget: Usd::ZERO,
                ttl_ms: LEASE_TTL_MS,
                day: T0 / DAY_MS,
                unavailable: Vec::new()
            }
        );
        let s = limiter.snapshot(late);
        assert_eq!((s.spent_usd, s.leased_usd, s.leases), (Usd(300), Usd::ZERO, 0));
        assert!(!local.holds_anything());
    }

    #[test]
    fn an_idle_isolate_gives_its_lease_back_at_the_next_renewal() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let later = T0 + 10 + LEASE_TTL_MS / 2 + 1;
        let ticket = local.admit(None, Usd(1_000), T0 + 3_000).unwrap();
        local.settle(ticket, None, Health::Healthy);
        assert_eq!(
            local.clone().renewal("iso", Usd(1_000), later).map(|s| s.want),
            Some(0),
            "requests seconds apart: the lease goes back"
        );
        let ticket = local.admit(None, Usd(1_000), T0 + 3_100).unwrap();
        local.settle(ticket, None, Health::Healthy);
        assert!(
            local.clone().renewal("iso", Usd(1_000), later).unwrap().want > 0,
            "requests 100 ms apart: it is renewed"
        );
        assert_eq!(local.want(T0 + 3_100 + LEASE_TTL_MS), 0, "none for a lease's life: it goes back");
    }

    #[test]
    fn a_reservation_with_a_report_is_not_refused_for_the_isolates_own_lease() {
        // A budget of 32 requests; the isolate's first lease is of 4.
        let policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(32_000), breaker: None };
        let mut limiter = LimiterState::default();
        let mut local = Local::default();
        local.admit(None, Usd(1_000), T0);
        local.admit(None, Usd(1_000), T0 + 10);
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
        let (reserved, grant) = limiter.reserve_with_report("r", None, Usd(5_000), policy, Some(&sync), T0 + 30);
        assert_eq!(reserved, Ok(()));
        assert_eq!(grant.map(|g| g.requests), Some(0), "nothing left to lease");
    }

    /// A model marked at the limiter reaches isolates with their next grant: under the lease
    /// it is not admitted (the limiter, asked instead, refuses it); other models are.
    #[test]
    fn a_model_marked_unavailable_is_not_admitted_under_a_lease() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        assert!(local.admit(Some("gemini-2.5-flash"), Usd(1_000), T0 + 20).is_some());
        limiter.mark_unavailable("gemini-2.5-flash", "is no longer available to new users", T0 + 30);
        let sync = local.begin_sync("iso", 4, Usd(1_000), T0 + 40).unwrap();
        let grant = limiter.sync_lease(&sync, POLICY, T0 + 40);
        assert_eq!(grant.unavailable, vec![("gemini-2.5-flash".to_owned(), MODEL_UNAVAILABLE_MS - 10)]);
        local.end_sync(sync.epoch, Some(grant));
        assert!(local.admit(Some("models/gemini-2.5-flash"), Usd(1_000), T0 + 50).is_none());
        assert!(local.admit(Some("gemini-3.5-flash-lite"), Usd(1_000), T0 + 50).is_some());
        assert!(local.admit(None, Usd(1_000), T0 + 50).is_some());
        let (refused, _) =
            limiter.reserve_with_report("r", Some("gemini-2.5-flash"), Usd(1_000), POLICY, None, T0 + 50);
        assert!(refused.unwrap_err().model_unavailable);
        // An isolate that saw the answer itself stops admitting the model at once.
        local.note_unavailable("gemini-3.5-flash-lite", T0 + 60);
        assert!(local.admit(Some("gemini-3.5-flash-lite"), Usd(1_000), T0 + 70).is_none());
    }

    #[test]
    fn a_report_given_up_and_delivered_late_changes_nothing() {
        let mut limiter = LimiterState::default();
        let mut local = leased(&mut limiter);
        let ticket = local.admit(None, Usd(1_000), T0 + 20).unwrap();
        local.settle(ticket, Some(Usd(400)), Health::Healthy);
        let old = local.begin_sync("iso", 4, Usd(1_000), T0 + 30).unwrap();
        // Its call never answers: given up once a lease's life has passed.
        let later = T0 + 30 + SYNC_LOST_MS;
        assert!(local.admit(None, Usd(1_000), later).is_none(), "not admitted while the lease is unknown");
        let new = local.begin_sync("iso", 4, Usd(1_000), later).unwrap();
        assert_eq!((new.admitted, new.spent), (1, Usd(400)), "the lost report's figures go again");
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
}
