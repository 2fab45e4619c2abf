//! Per-provider rate limit and daily budget: the state one Durable Object keeps per provider.
//!
//! Reserve → settle → release, in one place, strongly consistent (the Durable Object runs one
//! operation at a time): a request reserves its *worst-case* cost before it is sent; when it ends
//! it settles with the real cost (or releases on failure). The budget test is
//! `spent + reserved + worst_case ≤ budget`, so concurrent requests can never together overspend;
//! only a request whose real cost exceeds its own worst case (an estimate that was wrong) can push
//! spend past the budget, by at most that request's error. Check-then-record designs race
//! (LiteLLM #34732); AI Gateway's own spend limits are eventually consistent.
//!
//! Budgets are per UTC day and reset at 00:00 UTC. The rate limit is a sliding 60-second window.
//! Reservations that are never settled (a Worker killed mid-request) expire and are charged
//! their worst case, shown apart as charged for requests whose isolate died (`died.rs`).

mod died;
pub mod lease;
pub mod local;
pub mod ops;
pub mod tickets;
pub mod unavailable;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::account::alerts::Alert;
use crate::account::breaker::{Admission, Breaker, BreakerPolicy, BreakerSnapshot};
use crate::attempt::Health;
use crate::money::pricing::Usd;

pub use died::LOST_KEPT;
pub use unavailable::{UnavailableModel, MODEL_UNAVAILABLE_MS};

pub const DAY_MS: u64 = 86_400_000;
pub const WINDOW_MS: u64 = 60_000;
/// A reservation not settled within this time is charged its worst case as a request whose
/// isolate died (longer than a request runs but for a long stream, whose late settle corrects
/// the charge). A deployment may set its own (`RESERVATION_TTL_MS`), within
/// [`RESERVATION_TTL_RANGE_MS`].
pub const RESERVATION_TTL_MS: u64 = 15 * 60_000;
/// The reservation times to live a limiter accepts.
pub const RESERVATION_TTL_RANGE_MS: (u64, u64) = (1_000, DAY_MS);

/// The limits of one provider, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub requests_per_minute: u32,
    /// pUSD per UTC day.
    pub daily_budget: Usd,
    /// The provider's circuit breaker, if it has one.
    #[serde(default)]
    pub breaker: Option<BreakerPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Reservation {
    id: String,
    amount: Usd,
    day: u64,
    expires_at: u64,
    /// Admitted as one of a half-open breaker's probes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    probe: bool,
    /// The second its request was counted in the rate window.
    #[serde(default)]
    second: u64,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub rate_limited: bool,
    pub over_budget: bool,
    /// The provider's circuit breaker is open: it failed too often lately.
    #[serde(default)]
    pub circuit_open: bool,
    /// The provider answered that the target's model is not available (`unavailable.rs`).
    #[serde(default)]
    pub model_unavailable: bool,
    /// Set when no other target can help (a repository's or an agent's own limit): the
    /// request ends with this error. Never sent by a limiter; the shell sets it.
    #[serde(skip)]
    pub ends_request: Option<crate::error::GatewayError>,
    /// Seconds until the refusal may lift (window slot frees, or the next UTC day).
    pub retry_after_secs: u64,
    pub message: String,
}

impl Refusal {
    /// The refusal that stands for a limiter that could not be asked (its binding missing, its
    /// object failing): the request is not sent unchecked, and the caller is told it is the
    /// deployment's fault, not a budget (`ErrorKind::LimiterUnavailable`).
    pub fn limiter_unavailable(message: String) -> Refusal {
        Refusal {
            rate_limited: false,
            over_budget: false,
            circuit_open: false,
            model_unavailable: false,
            ends_request: None,
            retry_after_secs: 1,
            message,
        }
    }

    /// No limit refused: the limiter itself could not be asked.
    pub fn is_limiter_unavailable(&self) -> bool {
        !self.rate_limited
            && !self.over_budget
            && !self.circuit_open
            && !self.model_unavailable
            && self.ends_request.is_none()
    }
}

/// The whole state, serialised as one small JSON document in the Durable Object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterState {
    /// Days since the Unix epoch (UTC) that `spent` belongs to.
    day: u64,
    spent: Usd,
    reservations: Vec<Reservation>,
    /// Admissions within the last minute, counted per second: `(second, count)`, oldest first.
    /// At most 60 entries whatever the load, so the state the Durable Object writes per
    /// operation stays small (one timestamp per request made it grow with the traffic).
    window: VecDeque<(u64, u32)>,
    /// The provider's circuit breaker, and its policy as the last reserve gave it.
    #[serde(default)]
    breaker: Breaker,
    #[serde(default)]
    breaker_policy: Option<BreakerPolicy>,
    /// The daily budget as the last reserve gave it (what the alerts' shares are of).
    #[serde(default)]
    budget: Usd,
    /// Which of [`ALERT_THRESHOLDS`] were already crossed today (bit `i` for threshold `i`).
    #[serde(default)]
    alerted: u8,
    /// Thresholds crossed by the operation under way, for its answer ([`Self::take_crossed`]).
    #[serde(skip)]
    crossed: Vec<u32>,
    /// Isolates' live leases (`lease.rs`), and ended ones (expired or given back), each with
    /// the isolate's tickets (`tickets.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    leases: Vec<lease::Lease>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expired: Vec<lease::Expired>,
    /// Requests admitted under leases today, as reported (operators: how much traffic never
    /// waited for this object).
    #[serde(default)]
    admitted_under_leases: u64,
    /// Models the provider answered are gone, each until its mark ends (`unavailable.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    unavailable: Vec<UnavailableModel>,
    /// Marks made by the operation under way, for its alerts.
    #[serde(skip)]
    newly_unavailable: Vec<UnavailableModel>,
    /// Charged today for requests whose isolate died: their worst cases, and how many (`died.rs`).
    #[serde(default)]
    died: Usd,
    #[serde(default)]
    died_requests: u64,
    /// Today's reservations that expired unsettled, to correct their charge (`died.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    lost: Vec<died::LostReservation>,
}

/// Shares of the daily budget (percent) whose crossing is announced once per day: 50 and 80 by
/// what was spent, 100 when the budget first refuses a request after 80% was spent (reservations
/// keep spend itself just under the budget).
pub const ALERT_THRESHOLDS: [u32; 3] = [50, 80, 100];

/// What `/limits` shows for a provider. Its default is a limiter nobody used (no day named).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub day: String,
    pub spent_usd: Usd,
    pub reserved_usd: Usd,
    pub outstanding_reservations: usize,
    pub requests_last_minute: usize,
    /// What isolates hold on lease (counted as used until they report): budget, admissions,
    /// and how many leases.
    #[serde(default)]
    pub leased_usd: Usd,
    #[serde(default)]
    pub leased_requests: usize,
    #[serde(default)]
    pub leases: usize,
    /// Requests admitted under leases today, as their isolates reported them.
    #[serde(default)]
    pub admitted_under_leases: u64,
    /// Charged today for requests whose isolate died (a reservation expired unsettled, a lease
    /// expired with tickets open): their worst cases, and how many; a late settle corrects it.
    #[serde(default)]
    pub isolate_died_usd: Usd,
    #[serde(default)]
    pub isolate_died_requests: u64,
    /// The circuit breaker, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit: Option<BreakerSnapshot>,
    /// Models the provider answered are not available, while their marks last (a `/healthz`
    /// warning each: [`UnavailableModel::warning`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unavailable_models: Vec<UnavailableModel>,
}

impl LimiterState {
    /// Moves the state to `now`: a new UTC day starts from zero spend; expired reservations and
    /// window entries older than a minute are dropped.
    fn roll(&mut self, now: u64) {
        let today = now / DAY_MS;
        if today != self.day {
            self.day = today;
            self.spent = Usd::ZERO;
            self.alerted = 0;
            // Ended leases of earlier days correct no charge; yesterday's still tell which
            // report of their isolate was the last (a stale one may cross midnight).
            self.expired.retain(|e| e.day + 1 >= today);
            self.admitted_under_leases = 0;
            (self.died, self.died_requests) = (Usd::ZERO, 0);
            // Yesterday's still tell a late settle that its cost was yesterday's.
            self.lost.retain(|l| l.day + 1 >= today);
        }
        self.expire_reservations(now);
        self.expire_leases(now);
        self.unavailable.retain(|m| m.until_ms > now);
        // A second's bucket leaves the window once all of that second is a minute old: requests
        // are counted up to a second too long, never too short (the limit errs on the safe side).
        while self.window.front().is_some_and(|&(second, _)| (second + 1) * 1000 + WINDOW_MS <= now + 1) {
            self.window.pop_front();
        }
    }

    /// Reservations whose time is up: today's charged their worst case (their isolate died,
    /// or their request outlived them: its late settle corrects the charge), yesterday's only
    /// remembered (their cost was yesterday's); a probe's slot freed.
    fn expire_reservations(&mut self, now: u64) {
        let mut i = 0;
        while i < self.reservations.len() {
            if self.reservations[i].expires_at > now {
                i += 1;
                continue;
            }
            let r = self.reservations.swap_remove(i);
            if r.probe {
                self.breaker.probe_lost();
            }
            self.reservation_lost(r.id, r.amount, r.day);
        }
    }

    /// Admissions in the window (reported ones, and expired leases' slots); live leases'
    /// slots are [`Self::leased_requests`].
    fn requests_in_window(&self) -> usize {
        self.window.iter().map(|&(_, n)| n as usize).sum()
    }

    fn reserved_today(&self) -> Usd {
        self.reservations.iter().filter(|r| r.day == self.day).fold(Usd::ZERO, |sum, r| sum.saturating_add(r.amount))
    }

    /// Admits one request costing at most `amount`, or says why not; its reservation lives
    /// [`RESERVATION_TTL_MS`].
    pub fn reserve(&mut self, id: &str, amount: Usd, policy: Policy, now: u64) -> Result<(), Refusal> {
        self.reserve_for(id, amount, policy, RESERVATION_TTL_MS, now)
    }

    /// [`Self::reserve`] with a reservation that lives `ttl_ms` (within [`RESERVATION_TTL_RANGE_MS`]).
    pub fn reserve_for(&mut self, id: &str, amount: Usd, policy: Policy, ttl_ms: u64, now: u64) -> Result<(), Refusal> {
        let ttl_ms = ttl_ms.clamp(RESERVATION_TTL_RANGE_MS.0, RESERVATION_TTL_RANGE_MS.1);
        self.roll(now);
        self.budget = policy.daily_budget;
        let rate_limited = self.requests_in_window() + self.leased_requests() >= policy.requests_per_minute as usize;
        let committed = self.spent.saturating_add(self.reserved_today()).saturating_add(self.leased_today());
        let over_budget = committed.saturating_add(amount) > policy.daily_budget;
        if rate_limited || over_budget {
            let mut reasons = Vec::new();
            let mut retry_after_ms = 0;
            if rate_limited {
                reasons.push(format!("rate limit of {} requests per minute reached", policy.requests_per_minute));
                let frees_at = self.window.front().map_or(now, |&(second, _)| (second + 1) * 1000 + WINDOW_MS);
                retry_after_ms = frees_at.saturating_sub(now);
            }
            // 100% is announced when the budget refuses a request once most of it is spent (80%
            // announced): a refusal of one large worst case on a budget half used is not "used up".
            if over_budget && self.alerted & 0b10 != 0 {
                self.cross(2);
            }
            if over_budget {
                reasons.push(format!(
                    "daily budget of ${} would be exceeded (spent ${}, reserved ${}, this request up to ${})",
                    policy.daily_budget,
                    self.spent,
                    self.reserved_today().saturating_add(self.leased_today()),
                    amount
                ));
                retry_after_ms = retry_after_ms.max((self.day + 1) * DAY_MS - now);
            }
            return Err(Refusal {
                rate_limited,
                over_budget,
                circuit_open: false,
                model_unavailable: false,
                ends_request: None,
                retry_after_secs: retry_after_ms.div_ceil(1000).max(1),
                message: reasons.join("; "),
            });
        }
        self.breaker_policy = policy.breaker;
        let probe = match &policy.breaker {
            None => false,
            Some(breaker) => match self.breaker.admit(breaker, now) {
                Ok(admission) => admission == Admission::Probe,
                Err(open_ms) => {
                    return Err(Refusal {
                        rate_limited: false,
                        over_budget: false,
                        circuit_open: true,
                        model_unavailable: false,
                        ends_request: None,
                        retry_after_secs: open_ms.div_ceil(1000).max(1),
                        message: format!(
                            "its circuit breaker is open after repeated failures (tried again in {} s)",
                            open_ms.div_ceil(1000).max(1)
                        ),
                    })
                }
            },
        };
        let second = now / 1000;
        self.count_in_window(second, 1);
        self.reservations.retain(|r| r.id != id);
        self.reservations.push(Reservation {
            id: id.to_owned(),
            amount,
            day: self.day,
            expires_at: now + ttl_ms,
            probe,
            second,
        });
        Ok(())
    }

    /// Ends a reservation with its real cost. `None` (cost unknown) charges the reserved worst
    /// case. A reservation that already expired was charged its worst case: that charge becomes
    /// `actual`. One the limiter no longer knows (it expired and was forgotten, `died.rs`)
    /// changes nothing: its worst case was charged to its own day. Cost of a request from a
    /// previous UTC day stays with that day.
    pub fn settle(&mut self, id: &str, actual: Option<Usd>, health: Health, now: u64) {
        self.roll(now);
        if let Some(lost) = self.take_lost(id) {
            if lost.day == self.day {
                self.correct_died(lost.amount, Some(actual.unwrap_or(lost.amount)));
            }
            return;
        }
        let Some(reservation) = self.take(id) else { return };
        self.record_health(Some(&reservation), health, now);
        if reservation.day == self.day {
            self.charge(actual.unwrap_or(reservation.amount));
        }
    }

    /// Adds to today's spend, announcing the thresholds it crosses.
    fn charge(&mut self, amount: Usd) {
        self.spent = self.spent.saturating_add(amount);
        let budget = u128::from(self.budget.pico());
        for (i, &threshold) in ALERT_THRESHOLDS[..2].iter().enumerate() {
            if budget > 0 && u128::from(self.spent.pico()) * 100 >= budget * u128::from(threshold) {
                self.cross(i);
            }
        }
    }

    fn cross(&mut self, i: usize) {
        if self.alerted & (1 << i) == 0 {
            self.alerted |= 1 << i;
            self.crossed.push(ALERT_THRESHOLDS[i]);
        }
    }

    /// The thresholds the last operation crossed for the first time today (each once a day).
    pub fn take_crossed(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.crossed)
    }

    /// The alerts of the last operation, for the limiter named `limiter`: thresholds crossed,
    /// and models newly marked unavailable.
    pub fn take_alerts(&mut self, limiter: &str) -> Vec<Alert> {
        let (spent, budget, day) = (self.spent, self.budget, civil_date(self.day));
        let mut alerts: Vec<Alert> = self
            .take_crossed()
            .into_iter()
            .map(|threshold_percent| Alert {
                limiter: limiter.to_owned(),
                threshold_percent,
                spent_usd: spent,
                daily_budget_usd: budget,
                day: day.clone(),
                model_unavailable: None,
            })
            .collect();
        alerts.extend(self.take_unavailable_alerts(limiter));
        alerts
    }

    /// What is left of today's budget: not spent, not reserved, not on lease.
    pub fn remaining(&self) -> Usd {
        self.budget.saturating_sub(self.spent.saturating_add(self.reserved_today()).saturating_add(self.leased_today()))
    }

    /// Today's spend as a share of the budget (0 when it has none yet).
    pub fn used_share(&self) -> f64 {
        if self.budget == Usd::ZERO {
            0.0
        } else {
            self.spent.pico() as f64 / self.budget.pico() as f64
        }
    }

    /// Ends a reservation that cost nothing (the attempt failed before the provider did work);
    /// one that expired meanwhile is no longer charged.
    pub fn release(&mut self, id: &str, health: Health, now: u64) {
        self.roll(now);
        if let Some(lost) = self.take_lost(id) {
            if lost.day == self.day {
                self.correct_died(lost.amount, None);
            }
            return;
        }
        let reservation = self.take(id);
        self.record_health(reservation.as_ref(), health, now);
    }

    /// Takes back a reservation whose attempt never started (another limiter of the same attempt
    /// refused: all or nothing): released, and no longer counted in the rate window.
    pub fn cancel(&mut self, id: &str, now: u64) {
        self.roll(now);
        if let Some(lost) = self.take_lost(id) {
            if lost.day == self.day {
                self.correct_died(lost.amount, None);
            }
            return;
        }
        let Some(r) = self.take(id) else { return };
        if let Some(i) = self.window.iter().position(|&(second, _)| second == r.second) {
            self.window[i].1 -= 1;
            if self.window[i].1 == 0 {
                self.window.remove(i);
            }
        }
        if r.probe {
            self.breaker.probe_lost();
        }
    }

    /// Tells the breaker how an attempt went (an expired reservation's outcome no longer counts:
    /// its probe slot was already freed).
    fn record_health(&mut self, reservation: Option<&Reservation>, health: Health, now: u64) {
        if let (Some(policy), Some(r)) = (&self.breaker_policy, reservation) {
            self.breaker.record(policy, health, r.probe, now);
        }
    }

    fn take(&mut self, id: &str) -> Option<Reservation> {
        let index = self.reservations.iter().position(|r| r.id == id)?;
        Some(self.reservations.swap_remove(index))
    }

    /// The snapshot with the provider's configured breaker, which the state only learns from
    /// its first reserve.
    pub fn snapshot_with(&mut self, breaker: Option<BreakerPolicy>, now: u64) -> Snapshot {
        if breaker.is_some() {
            self.breaker_policy = breaker;
        }
        self.snapshot(now)
    }

    pub fn snapshot(&mut self, now: u64) -> Snapshot {
        self.roll(now);
        Snapshot {
            day: civil_date(self.day),
            spent_usd: self.spent,
            reserved_usd: self.reserved_today(),
            outstanding_reservations: self.reservations.len(),
            requests_last_minute: self.requests_in_window(),
            leased_usd: self.leased_today(),
            leased_requests: self.leased_requests(),
            leases: self.leases.len(),
            admitted_under_leases: self.admitted_under_leases,
            isolate_died_usd: self.died,
            isolate_died_requests: self.died_requests,
            circuit: self.breaker_policy.map(|p| self.breaker.snapshot(&p, now)),
            unavailable_models: self.unavailable.clone(),
        }
    }
}

/// `YYYY-MM-DD` of a day number since the Unix epoch (UTC).
pub fn civil_date(days: u64) -> String {
    crate::time::format_day(days as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000; // 2024-10-04 01:00 UTC

    fn policy(rpm: u32, dollars: u64) -> Policy {
        Policy { requests_per_minute: rpm, daily_budget: Usd::from_dollars(dollars), breaker: None }
    }

    #[test]
    fn reserve_settle_release_account_exactly() {
        let mut s = LimiterState::default();
        let p = policy(100, 10);
        s.reserve("a", Usd::from_dollars(3), p, T0).unwrap();
        s.reserve("b", Usd::from_dollars(3), p, T0).unwrap();
        let snap = s.snapshot(T0);
        assert_eq!(snap.reserved_usd, Usd::from_dollars(6));
        assert_eq!(snap.outstanding_reservations, 2);
        s.settle("a", Some(Usd::from_dollars(1)), Health::Neutral, T0 + 1);
        s.release("b", Health::Neutral, T0 + 2);
        let snap = s.snapshot(T0 + 3);
        assert_eq!(snap.spent_usd, Usd::from_dollars(1));
        assert_eq!(snap.reserved_usd, Usd::ZERO);
        assert_eq!(snap.outstanding_reservations, 0);
    }

    #[test]
    fn budget_counts_reservations_so_concurrency_cannot_overspend() {
        let mut s = LimiterState::default();
        let p = policy(1000, 1);
        let worst = Usd(300_000_000_000); // $0.30
        let admitted = (0..50).filter(|i| s.reserve(&format!("r{i}"), worst, p, T0).is_ok()).count();
        assert_eq!(admitted, 3, "3 × $0.30 fits in $1, a 4th would not");
        let refusal = s.reserve("late", worst, p, T0).unwrap_err();
        assert!(refusal.over_budget && !refusal.rate_limited);
        assert!(refusal.message.contains("daily budget of $1"));
        // Retry-After points at the next UTC midnight.
        assert_eq!(refusal.retry_after_secs, (DAY_MS - 3_600_000) / 1000);
        // Settling everything at the worst case never exceeds the budget.
        for i in 0..3 {
            s.settle(&format!("r{i}"), None, Health::Neutral, T0 + 10);
        }
        assert_eq!(s.snapshot(T0 + 10).spent_usd, Usd(900_000_000_000));
    }

    #[test]
    fn sliding_window_rate_limit_with_retry_after() {
        let mut s = LimiterState::default();
        let p = policy(2, 100);
        s.reserve("1", Usd(1), p, T0).unwrap();
        s.reserve("2", Usd(1), p, T0 + 20_000).unwrap();
        let r = s.reserve("3", Usd(1), p, T0 + 30_000).unwrap_err();
        assert!(r.rate_limited && !r.over_budget);
        assert_eq!(r.retry_after_secs, 31, "the first request's whole second must be a minute old");
        assert!(s.reserve("3", Usd(1), p, T0 + 60_000).is_err(), "counted up to a second too long, never too short");
        assert!(s.reserve("3", Usd(1), p, T0 + 61_000).is_ok(), "the first slot freed after a minute");
    }

    #[test]
    fn the_window_stays_small_under_load() {
        let mut s = LimiterState::default();
        let p = policy(100_000, 1_000_000);
        for i in 0..10_000 {
            s.reserve(&format!("r{i}"), Usd(1), p, T0 + i * 10).unwrap();
            s.release(&format!("r{i}"), Health::Neutral, T0 + i * 10);
        }
        assert!(s.window.len() <= 61, "{}", s.window.len());
        assert_eq!(s.snapshot(T0 + 100_000).requests_last_minute, 6000);
    }

    #[test]
    fn budget_resets_at_utc_midnight() {
        let mut s = LimiterState::default();
        let p = policy(100, 1);
        s.reserve("a", Usd::from_dollars(1), p, T0).unwrap();
        s.settle("a", None, Health::Neutral, T0);
        assert!(s.reserve("b", Usd(1), p, T0 + 1000).is_err());
        let tomorrow = (T0 / DAY_MS + 1) * DAY_MS;
        assert!(s.reserve("b", Usd(1), p, tomorrow).is_ok());
        assert_eq!(s.snapshot(tomorrow).day, "2024-10-05");
        // A request reserved yesterday and settled today is charged to yesterday.
        let mut s = LimiterState::default();
        s.reserve("x", Usd(5), p, tomorrow - 1).unwrap();
        s.settle("x", Some(Usd(5)), Health::Neutral, tomorrow + 1);
        assert_eq!(s.snapshot(tomorrow + 1).spent_usd, Usd::ZERO);
    }

    #[test]
    fn a_cancelled_reservation_gives_its_window_slot_back() {
        let mut s = LimiterState::default();
        let p = policy(1, 100);
        s.reserve("a", Usd(1), p, T0).unwrap();
        assert!(s.reserve("b", Usd(1), p, T0 + 10).unwrap_err().rate_limited);
        s.cancel("a", T0 + 20);
        s.reserve("b", Usd(1), p, T0 + 30).unwrap();
        let snap = s.snapshot(T0 + 40);
        assert_eq!((snap.requests_last_minute, snap.outstanding_reservations, snap.spent_usd), (1, 1, Usd::ZERO));
        s.cancel("nope", T0 + 50); // unknown ids are harmless
    }

    #[test]
    fn each_threshold_is_announced_once_a_day() {
        let mut s = LimiterState::default();
        let p = policy(1000, 10);
        let spend = |s: &mut LimiterState, id: &str, dollars: u64, now: u64| {
            s.reserve(id, Usd::from_dollars(dollars), p, now).unwrap();
            s.settle(id, Some(Usd::from_dollars(dollars)), Health::Neutral, now);
            s.take_crossed()
        };
        // A refusal of a large worst case on a budget barely used is not "used up".
        assert!(s.reserve("big", Usd::from_dollars(11), p, T0).is_err());
        assert_eq!(s.take_crossed(), Vec::<u32>::new());
        assert_eq!(spend(&mut s, "a", 4, T0), Vec::<u32>::new());
        assert_eq!(spend(&mut s, "b", 1, T0), vec![50]);
        assert_eq!(spend(&mut s, "c", 1, T0), Vec::<u32>::new(), "50% only once");
        assert_eq!(spend(&mut s, "d", 3, T0), vec![80]);
        assert_eq!(s.remaining(), Usd::from_dollars(1));
        assert!((s.used_share() - 0.9).abs() < 1e-9);
        // The budget refuses: 100%, once.
        assert!(s.reserve("e", Usd::from_dollars(2), p, T0).is_err());
        assert_eq!(s.take_crossed(), vec![100]);
        assert!(s.reserve("f", Usd::from_dollars(2), p, T0).is_err());
        assert_eq!(s.take_crossed(), Vec::<u32>::new());
        // A new day announces again.
        let tomorrow = (T0 / DAY_MS + 1) * DAY_MS;
        assert_eq!(spend(&mut s, "g", 6, tomorrow), vec![50]);
    }

    #[test]
    fn an_abandoned_reservation_expires_charged_until_its_late_settle() {
        let mut s = LimiterState::default();
        let p = policy(100, 1);
        s.reserve("a", Usd::from_dollars(1), p, T0).unwrap();
        assert!(s.reserve("b", Usd(1), p, T0 + 1).is_err());
        assert!(s.reserve("b", Usd(1), p, T0 + RESERVATION_TTL_MS).is_err(), "expired, charged its worst case");
        // Settling the expired one records its real cost instead.
        s.settle("a", Some(Usd(7)), Health::Neutral, T0 + RESERVATION_TTL_MS + 1);
        assert_eq!(s.snapshot(T0 + RESERVATION_TTL_MS + 2).spent_usd, Usd(7));
        assert!(s.reserve("b", Usd(1), p, T0 + RESERVATION_TTL_MS + 3).is_ok());
    }

    #[test]
    fn a_request_larger_than_the_whole_budget_is_refused() {
        let mut s = LimiterState::default();
        let r = s.reserve("a", Usd::from_dollars(11), policy(100, 10), T0).unwrap_err();
        assert!(r.over_budget);
    }

    #[test]
    fn state_round_trips_as_json() {
        let mut s = LimiterState::default();
        s.reserve("a", Usd(42), policy(5, 1), T0).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        let back: LimiterState = crate::json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(19_723), "2024-01-01");
        assert_eq!(civil_date(20_785), "2026-11-28");
    }
}
