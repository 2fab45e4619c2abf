//! What the Worker asks of a limiter, and what the limiter answers: the wire format of its
//! Durable Object's fetch interface, and the one function that applies an operation
//! ([`LimiterState::handle`]; the object itself only stores the state).

use serde::{Deserialize, Serialize};

use super::lease::{LeaseGrant, LeaseSync};
use super::tickets::{TicketReport, TicketSettles};
use super::{LimiterState, Policy, Refusal, Snapshot, RESERVATION_TTL_MS};
use crate::account::alerts::Alert;
use crate::account::breaker::BreakerPolicy;
use crate::attempt::Health;
use crate::money::pricing::Usd;

/// One operation on a limiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Reserve {
        id: String,
        /// The target's model, for a provider's limiter (it refuses one marked unavailable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        amount: Usd,
        policy: Policy,
        /// The limiter's own name (a provider or a scope key), for its alerts.
        #[serde(default)]
        name: String,
        /// The isolate's report on its lease and request for the next: the report applied
        /// before the reservation, the next lease sized after it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<LeaseSync>,
        /// The reservation's time to live (0: [`RESERVATION_TTL_MS`]).
        #[serde(default, skip_serializing_if = "is_zero")]
        ttl_ms: u64,
    },
    /// A lease's renewal or give-back, on its own.
    Sync { sync: LeaseSync, policy: Policy, name: String },
    /// A request admitted under a lease (sent as it happens, not awaited).
    Admitted { ticket: TicketReport },
    /// Settles of tickets admitted under a lease, batched.
    SettleTickets {
        settles: TicketSettles,
        #[serde(default)]
        name: String,
    },
    Settle {
        id: String,
        actual: Option<Usd>,
        #[serde(default)]
        health: Health,
        #[serde(default)]
        name: String,
    },
    Release {
        id: String,
        #[serde(default)]
        health: Health,
    },
    /// The attempt never started (another limiter refused it, or the answer was lost): taken
    /// back, uncounted.
    Cancel { id: String },
    /// The provider answered that `model` does not exist or is no longer served.
    MarkUnavailable { model: String, reason: String, name: String },
    /// Today's state; `breaker` is the provider's configured circuit breaker (shown even before
    /// any attempt has given it to the limiter).
    Snapshot {
        #[serde(default)]
        breaker: Option<BreakerPolicy>,
        /// The asking isolate's report on its lease, applied first: what it spent shows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lease: Option<(LeaseSync, Policy)>,
        #[serde(default)]
        name: String,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Every operation's answer: each fills in what it has (a cancel, nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LimiterAnswer {
    /// A reserve's refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    /// Thresholds of the daily budget the operation crossed (100%: the budget refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<Alert>,
    /// What is left of today's budget after the operation, and today's spend as a share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Usd>,
    #[serde(default)]
    pub used_share: f64,
    /// The lease granted in answer to the isolate's report (none sent: `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseGrant>,
    /// A snapshot's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Snapshot>,
}

impl LimiterState {
    /// Applies `op` at `now` (the limiter's clock): its answer.
    pub fn handle(&mut self, op: Op, now: u64) -> LimiterAnswer {
        match op {
            Op::Reserve { id, model, amount, policy, name, lease, ttl_ms } => {
                let ttl_ms = if ttl_ms == 0 { RESERVATION_TTL_MS } else { ttl_ms };
                let (reserved, lease) =
                    self.reserve_with_report(&id, model.as_deref(), amount, policy, lease.as_ref(), ttl_ms, now);
                LimiterAnswer { refused: reserved.err(), lease, ..self.figures(&name) }
            }
            Op::Sync { sync, policy, name } => {
                let lease = Some(self.sync_lease(&sync, policy, now));
                LimiterAnswer { lease, ..self.figures(&name) }
            }
            Op::Admitted { ticket } => {
                self.ticket_admitted(&ticket, now);
                LimiterAnswer::default()
            }
            Op::SettleTickets { settles, name } => {
                self.tickets_settled(&settles, now);
                self.figures(&name)
            }
            Op::Settle { id, actual, health, name } => {
                self.settle(&id, actual, health, now);
                self.figures(&name)
            }
            Op::Release { id, health } => {
                self.release(&id, health, now);
                LimiterAnswer::default()
            }
            Op::Cancel { id } => {
                self.cancel(&id, now);
                LimiterAnswer::default()
            }
            Op::MarkUnavailable { model, reason, name } => {
                self.mark_unavailable(&model, &reason, now);
                self.figures(&name)
            }
            Op::Snapshot { breaker, lease, name } => {
                let lease = lease.map(|(sync, policy)| self.sync_lease(&sync, policy, now));
                let state = Some(self.snapshot_with(breaker, now));
                LimiterAnswer { lease, state, ..self.figures(&name) }
            }
        }
    }

    /// What every answer that changed the books says: the alerts the operation crossed, the
    /// budget left and the spend share.
    fn figures(&mut self, name: &str) -> LimiterAnswer {
        LimiterAnswer {
            alerts: self.take_alerts(name),
            remaining: Some(self.remaining()),
            used_share: self.used_share(),
            ..LimiterAnswer::default()
        }
    }
}
