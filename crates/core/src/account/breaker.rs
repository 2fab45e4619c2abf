//! A provider's circuit breaker: when its recent attempts fail past a threshold, it is skipped
//! for a cool-down (`skipped:circuit_open` in the trace, no time spent waiting on it), then
//! probed by a few requests before it is trusted again.
//!
//! It lives in the provider's limiter state (`limits.rs`), so it costs no extra hop: the reserve
//! that admits an attempt also asks the breaker, and the settle or release that ends it reports
//! how the provider behaved ([`Health`]).
//!
//! - **Closed**: outcomes are counted per second over `window_ms`. Once at least `min_attempts`
//!   are in the window and failures reach `failure_permille` of them, it opens.
//! - **Open** until `cooldown_ms` has passed: every reserve is refused with `circuit_open`.
//! - **Half-open**: up to `probes` attempts are let through at once. A probe that fails opens it
//!   again for another cool-down; `probes` healthy ones close it (with an empty window).
//!   Probes whose reservation expires unsettled free their slot.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::attempt::Health;

/// When a provider's breaker opens and how it recovers (`circuit_breaker` in a provider's
/// configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerPolicy {
    pub window_ms: u64,
    pub min_attempts: u32,
    /// Failures per thousand attempts of the window at or above which it opens.
    pub failure_permille: u32,
    pub cooldown_ms: u64,
    pub probes: u32,
}

/// The breaker's state (kept with the provider's limiter state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    /// Outcomes in the window, per second: `(second, attempts, failures)`, oldest first.
    window: VecDeque<(u64, u32, u32)>,
    /// Open until this time (ms since the epoch); 0 when not open.
    open_until: u64,
    /// Half-open: probes admitted and not yet back, and healthy ones so far.
    half_open: bool,
    probes_out: u32,
    probes_ok: u32,
}

/// Whether an attempt is admitted, and as what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Normal,
    /// One of the half-open state's probes: its outcome decides.
    Probe,
}

/// What `/limits` shows of a breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    /// `closed`, `open` or `half_open`.
    pub state: String,
    pub attempts_in_window: u32,
    pub failures_in_window: u32,
    /// Seconds until an open breaker lets probes through.
    pub open_for_secs: u64,
}

impl Breaker {
    fn roll(&mut self, p: &BreakerPolicy, now: u64) {
        while self.window.front().is_some_and(|&(second, _, _)| (second + 1) * 1000 + p.window_ms <= now) {
            self.window.pop_front();
        }
    }

    /// Admits an attempt, or says for how many ms more the breaker stays open.
    pub fn admit(&mut self, p: &BreakerPolicy, now: u64) -> Result<Admission, u64> {
        if self.open_until > now {
            return Err(self.open_until - now);
        }
        if self.open_until != 0 {
            // The cool-down is over: probe.
            (self.open_until, self.half_open, self.probes_out, self.probes_ok) = (0, true, 0, 0);
        }
        if !self.half_open {
            return Ok(Admission::Normal);
        }
        if self.probes_out + self.probes_ok < p.probes.max(1) {
            self.probes_out += 1;
            return Ok(Admission::Probe);
        }
        // Every probe is out: wait for them (a short wait, said as one second).
        Err(1_000)
    }

    /// Records how an admitted attempt went.
    pub fn record(&mut self, p: &BreakerPolicy, health: Health, probe: bool, now: u64) {
        if probe && self.half_open {
            self.probes_out = self.probes_out.saturating_sub(1);
            match health {
                Health::Failed => self.open(p, now),
                Health::Healthy => {
                    self.probes_ok += 1;
                    if self.probes_ok >= p.probes.max(1) {
                        *self = Breaker::default();
                    }
                }
                Health::Neutral => {}
            }
            return;
        }
        if self.half_open || self.open_until > now || health == Health::Neutral {
            return; // an attempt admitted before the breaker opened says nothing new
        }
        self.roll(p, now);
        let second = now / 1000;
        let failed = u32::from(health == Health::Failed);
        match self.window.back_mut() {
            Some((s, n, f)) if *s == second => {
                *n += 1;
                *f += failed;
            }
            _ => self.window.push_back((second, 1, failed)),
        }
        let (attempts, failures) = self.counts();
        if attempts >= p.min_attempts.max(1)
            && u64::from(failures) * 1000 >= u64::from(p.failure_permille) * u64::from(attempts)
        {
            self.open(p, now);
        }
    }

    /// Neither open nor probing: attempts go through without asking it one by one.
    pub fn is_closed(&self) -> bool {
        self.open_until == 0 && !self.half_open
    }

    /// A probe's reservation expired unsettled: its slot is free again.
    pub fn probe_lost(&mut self) {
        self.probes_out = self.probes_out.saturating_sub(1);
    }

    fn open(&mut self, p: &BreakerPolicy, now: u64) {
        *self = Breaker { open_until: now + p.cooldown_ms.max(1), ..Breaker::default() };
    }

    fn counts(&self) -> (u32, u32) {
        self.window.iter().fold((0, 0), |(n, f), &(_, a, b)| (n + a, f + b))
    }

    pub fn snapshot(&mut self, p: &BreakerPolicy, now: u64) -> BreakerSnapshot {
        self.roll(p, now);
        let (attempts, failures) = self.counts();
        let state = match (self.open_until > now, self.half_open || self.open_until != 0) {
            (true, _) => "open",
            (false, true) => "half_open",
            (false, false) => "closed",
        };
        BreakerSnapshot {
            state: state.to_owned(),
            attempts_in_window: attempts,
            failures_in_window: failures,
            open_for_secs: self.open_until.saturating_sub(now).div_ceil(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BreakerPolicy =
        BreakerPolicy { window_ms: 60_000, min_attempts: 4, failure_permille: 500, cooldown_ms: 30_000, probes: 2 };
    const T0: u64 = 1_000_000_000_000;

    fn attempt(b: &mut Breaker, health: Health, now: u64) -> Result<Admission, u64> {
        let admitted = b.admit(&P, now)?;
        b.record(&P, health, admitted == Admission::Probe, now);
        Ok(admitted)
    }

    #[test]
    fn opens_at_the_threshold_with_enough_attempts_only() {
        let mut b = Breaker::default();
        for i in 0..3 {
            assert_eq!(attempt(&mut b, Health::Failed, T0 + i), Ok(Admission::Normal));
        }
        assert_eq!(b.snapshot(&P, T0).state, "closed", "3 failures are fewer than min_attempts");
        attempt(&mut b, Health::Failed, T0 + 3).unwrap();
        assert_eq!(b.admit(&P, T0 + 4), Err(30_000 - 1), "open: refused for the rest of the cool-down");
        assert_eq!(b.snapshot(&P, T0 + 4).state, "open");
    }

    #[test]
    fn a_healthy_majority_keeps_it_closed_and_neutral_outcomes_do_not_count() {
        let mut b = Breaker::default();
        for i in 0..100 {
            let health = if i % 3 == 1 { Health::Failed } else { Health::Healthy };
            attempt(&mut b, health, T0 + i * 100).unwrap();
            attempt(&mut b, Health::Neutral, T0 + i * 100).unwrap();
        }
        let s = b.snapshot(&P, T0 + 10_000);
        assert_eq!((s.state.as_str(), s.attempts_in_window), ("closed", 100));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let mut b = Breaker::default();
        for i in 0..3 {
            attempt(&mut b, Health::Failed, T0 + i).unwrap();
        }
        // A minute later those three are gone: one more failure is 1 of 1, under min_attempts.
        attempt(&mut b, Health::Failed, T0 + 61_000).unwrap();
        assert_eq!(b.snapshot(&P, T0 + 61_000).state, "closed");
    }

    #[test]
    fn after_the_cool_down_probes_decide() {
        let mut b = Breaker::default();
        for i in 0..4 {
            attempt(&mut b, Health::Failed, T0 + i).unwrap();
        }
        let later = T0 + 3 + 30_000;
        // Two probes at once, no third while they are out.
        assert_eq!(b.admit(&P, later), Ok(Admission::Probe));
        assert_eq!(b.admit(&P, later), Ok(Admission::Probe));
        assert!(b.admit(&P, later).is_err());
        assert_eq!(b.snapshot(&P, later).state, "half_open");
        b.record(&P, Health::Healthy, true, later + 10);
        b.record(&P, Health::Healthy, true, later + 20);
        assert_eq!(b.snapshot(&P, later + 20).state, "closed");
        assert_eq!(b.admit(&P, later + 21), Ok(Admission::Normal));
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let mut b = Breaker::default();
        for i in 0..4 {
            attempt(&mut b, Health::Failed, T0 + i).unwrap();
        }
        let later = T0 + 3 + 30_000;
        assert_eq!(attempt(&mut b, Health::Failed, later), Ok(Admission::Probe));
        assert_eq!(b.admit(&P, later + 1), Err(30_000 - 1));
        // A lost probe frees its slot instead of wedging the half-open state.
        let mut b = Breaker::default();
        for i in 0..4 {
            attempt(&mut b, Health::Failed, T0 + i).unwrap();
        }
        b.admit(&P, later).unwrap();
        b.admit(&P, later).unwrap();
        b.probe_lost();
        assert_eq!(b.admit(&P, later + 5), Ok(Admission::Probe));
    }
}
