//! Tickets: the requests an isolate admits under its lease, as the limiter knows them.
//!
//! Every admission under a lease is reported to the limiter as it happens ([`TicketReport`]:
//! dispatched before the attempt's upstream call is made, never awaited by the request), and
//! every settle too, batched while one batch is in flight ([`TicketSettles`], acknowledged: a
//! request's ledger rows wait for it); a lease's renewal or give-back carries the isolate's whole
//! view (its open tickets and the settles not yet acknowledged: `LeaseSync`). The limiter keeps,
//! per isolate, the tickets that are open (admitted, not reported settled), so that when a lease
//! expires unreported it charges exactly those, each at its worst case, as requests whose
//! isolate died (`died.rs`), and releases the lease's unused rest.
//!
//! Tickets are numbered per isolate and limiter, so the messages may come in any order, twice,
//! or late, and change the books once:
//! - a settle before its admission report settles the ticket; the report then changes nothing;
//! - a duplicate (a batch resent after its answer was lost, a settle also carried by a renewal)
//!   finds the ticket settled;
//! - a renewal's view older than a settle that overtook it (the isolate settled a ticket after
//!   its renewal left) does not reopen it: the limiter keeps what it settled until a view of the
//!   isolate no longer mentions the ticket (built after the settle was acknowledged);
//! - an admission report that arrives after its lease expired is charged as died at once (its
//!   settle corrects it).
//!
//! What is assumed: an admission report dispatched before the attempt's upstream call reaches
//! the limiter whenever that call reached the provider (both leave the isolate in that order;
//! one that fails while the isolate lives is carried again by its settle and the next renewal).
//! If the isolate dies after the upstream call was made and its report is lost, the limiter
//! never learns of the request: at the lease's expiry its worst case is released with the rest,
//! and the books are below the truth by what that one request was billed (at most its worst
//! case), as the budget may be.

use serde::{Deserialize, Serialize};

use super::lease::Expired;
use super::LimiterState;
use crate::money::pricing::Usd;

/// The most tickets a limiter tracks per isolate, open and settled: an admission beyond it is
/// charged as died at once, untracked (its settle is then charged on top: above the truth).
const MAX_TRACKED: usize = 1_024;
/// The most settles one message applies.
pub const MAX_SETTLES_PER_REPORT: usize = 1_024;

/// An admission under a lease, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketReport {
    /// The isolate's lease id.
    pub id: String,
    /// The UTC day the ticket belongs to.
    pub day: u64,
    /// Its number, per isolate and limiter (1, 2, …; never reused).
    pub n: u64,
    /// Its worst case.
    pub amount: Usd,
}

/// A ticket's settle: its number, worst case and real cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSettle {
    pub n: u64,
    pub amount: Usd,
    pub actual: Usd,
}

/// Settles of an isolate's tickets, batched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSettles {
    pub id: String,
    pub day: u64,
    pub settles: Vec<TicketSettle>,
}

/// One isolate's tickets at the limiter (today's). Kept small and quick to write, since the
/// limiter's whole state is written with every operation: a settled ticket is forgotten once
/// every ticket below it is known ([`Tickets::compact`]), and tickets are stored as arrays of
/// integers (amounts in picodollars).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Tickets {
    /// Every ticket numbered below this is known: the open ones are in `open`, the others
    /// settled (or never started).
    #[serde(default)]
    floor: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    open: Vec<Open>,
    /// Reported settled at or above `floor`, with their real cost (pUSD).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    settled: Vec<(u64, u64)>,
}

/// An open ticket: its number, its worst case (pUSD), and whether that was charged as died (its
/// lease ended with it open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Open(u64, u64, bool);

impl Open {
    fn n(&self) -> u64 {
        self.0
    }

    fn amount(&self) -> Usd {
        Usd(self.1)
    }
}

/// What a settle found.
enum Found {
    /// The ticket was open: its worst case, and whether that was charged as died.
    Open { amount: Usd, charged: bool },
    /// Not reported admitted yet: settled first.
    Early,
    /// Already settled (or below the floor: done).
    Again,
}

impl Tickets {
    pub(super) fn is_empty(&self) -> bool {
        self.open.is_empty() && self.settled.is_empty()
    }

    fn knows(&self, n: u64) -> bool {
        n < self.floor || self.open.iter().any(|o| o.n() == n) || self.settled.iter().any(|&(s, _)| s == n)
    }

    /// An admission report: opened (true), or known already.
    fn admit(&mut self, n: u64, amount: Usd, charged: bool) -> bool {
        if self.knows(n) {
            return false;
        }
        self.open.push(Open(n, amount.pico(), charged));
        self.compact();
        true
    }

    fn settle(&mut self, n: u64, actual: Usd) -> Found {
        if let Some(i) = self.open.iter().position(|o| o.n() == n) {
            let Open(_, amount, charged) = self.open.swap_remove(i);
            self.note_settled(n, actual);
            return Found::Open { amount: Usd(amount), charged };
        }
        if self.knows(n) {
            return Found::Again;
        }
        self.note_settled(n, actual);
        Found::Early
    }

    fn note_settled(&mut self, n: u64, actual: Usd) {
        self.settled.push((n, actual.pico()));
        if self.settled.len() > MAX_TRACKED {
            self.settled.remove(0);
        }
        self.compact();
    }

    /// Moves the floor past every ticket known in a row from it, forgetting the settled ones:
    /// below the floor, a ticket not open is settled, whatever an older view says.
    fn compact(&mut self) {
        if self.floor == 0 {
            // No view applied yet: what is below the first ticket is not known.
            return;
        }
        loop {
            let floor = self.floor;
            if let Some(i) = self.settled.iter().position(|&(n, _)| n == floor) {
                self.settled.swap_remove(i);
            } else if !self.open.iter().any(|o| o.n() == floor) {
                return;
            }
            self.floor += 1;
        }
    }

    fn full(&self) -> bool {
        self.open.len() >= MAX_TRACKED
    }

    /// The open tickets not charged yet, charged now (their lease ended with them open): their
    /// worst cases and how many.
    pub(super) fn charge_open(&mut self) -> (Usd, u32) {
        let mut total = (Usd::ZERO, 0);
        for o in self.open.iter_mut().filter(|o| !o.2) {
            o.2 = true;
            total = (total.0.saturating_add(o.amount()), total.1 + 1);
        }
        total
    }

    /// What the open tickets charged as died come to.
    pub(super) fn charged(&self) -> Usd {
        self.open.iter().filter(|o| o.2).fold(Usd::ZERO, |sum, o| sum.saturating_add(o.amount()))
    }
}

/// An isolate's view of its tickets, as its renewal reports it.
pub(super) struct View<'a> {
    /// The number its next ticket will have: every ticket below it is in the view.
    pub(super) next: u64,
    pub(super) open: &'a [(u64, Usd)],
    pub(super) settled: &'a [TicketSettle],
}

/// What a view came to: what the isolate's open tickets hold of its next lease as it counts
/// them, and how much of that the limiter already charged (settles that overtook the view).
pub(super) struct Reconciled {
    pub(super) held: Usd,
    pub(super) spent: Usd,
}

impl LimiterState {
    /// An admission under lease `report.id`: opened; charged as died at once when the lease is
    /// no longer live.
    pub fn ticket_admitted(&mut self, report: &TicketReport, now: u64) {
        self.roll(now);
        if report.day != self.day {
            return;
        }
        let (mut tickets, live) = self.take_tickets(&report.id);
        // Beyond what is tracked, or after its lease ended: charged as died at once.
        if tickets.full() || (tickets.admit(report.n, report.amount, !live) && !live) {
            self.charge_died(report.amount, 1);
        }
        self.put_tickets(&report.id, tickets);
    }

    /// Settles of lease `settles.id`'s tickets: each charged its real cost once (a ticket
    /// charged as died is corrected); a live lease holds what was charged no longer.
    pub fn tickets_settled(&mut self, settles: &TicketSettles, now: u64) {
        self.roll(now);
        if settles.day != self.day {
            return;
        }
        let (mut tickets, _) = self.take_tickets(&settles.id);
        let mut charged = Usd::ZERO;
        for s in settles.settles.iter().take(MAX_SETTLES_PER_REPORT) {
            charged = charged.saturating_add(self.settle_ticket(&mut tickets, s));
        }
        if let Some(lease) = self.leases.iter_mut().find(|l| l.id == settles.id) {
            lease.budget = lease.budget.saturating_sub(charged);
        }
        self.put_tickets(&settles.id, tickets);
    }

    /// One settle; what it charged that a live lease held (a correction of a died charge was
    /// held by no lease).
    fn settle_ticket(&mut self, tickets: &mut Tickets, s: &TicketSettle) -> Usd {
        match tickets.settle(s.n, s.actual) {
            Found::Open { amount, charged: true } => {
                self.correct_died(amount, Some(s.actual));
                Usd::ZERO
            }
            Found::Open { charged: false, .. } | Found::Early => {
                self.charge(s.actual);
                s.actual
            }
            Found::Again => Usd::ZERO,
        }
    }

    /// Applies a renewal's view to the isolate's tickets (see the module's rules).
    pub(super) fn reconcile(&mut self, tickets: &mut Tickets, view: &View<'_>) -> Reconciled {
        for s in view.settled.iter().take(MAX_SETTLES_PER_REPORT) {
            self.settle_ticket(tickets, s);
        }
        let mut done = Reconciled { held: Usd::ZERO, spent: Usd::ZERO };
        for &(n, amount) in view.open.iter().take(MAX_TRACKED) {
            done.held = done.held.saturating_add(amount);
            if let Some(&(_, actual)) = tickets.settled.iter().find(|&&(s, _)| s == n) {
                // Its settle overtook the view: charged already.
                done.spent = done.spent.saturating_add(Usd(actual));
            } else if let Some(o) = tickets.open.iter_mut().find(|o| o.n() == n) {
                if o.2 {
                    o.2 = false;
                    self.correct_died(o.amount(), None);
                }
            } else if n >= tickets.floor {
                tickets.open.push(Open(n, amount.pico(), false));
            }
            // Below the floor and not open: settled, and forgotten. What it cost is no longer
            // known: the next lease holds its whole worst case (the safe side) until it ends.
        }
        let listed = |n: u64| view.open.iter().any(|&(o, _)| o == n);
        // Open below `next` and not in the view: settled (the view's settles were applied
        // above) — the isolate reports no other way for a ticket to end.
        tickets.open.retain(|o| o.n() >= view.next || listed(o.n()));
        tickets.settled.retain(|&(n, _)| n >= view.next || listed(n) || view.settled.iter().any(|s| s.n == n));
        tickets.floor = tickets.floor.max(view.next);
        tickets.compact();
        done
    }

    /// Takes lease `id`'s tickets out of its record (live or ended, today's), and whether the
    /// lease is live; an isolate the limiter does not know has none.
    pub(super) fn take_tickets(&mut self, id: &str) -> (Tickets, bool) {
        if let Some(lease) = self.leases.iter_mut().find(|l| l.id == id && l.day == self.day) {
            return (std::mem::take(&mut lease.tickets), true);
        }
        match self.expired.iter_mut().find(|e| e.id == id && e.day == self.day) {
            Some(ended) => (std::mem::take(&mut ended.tickets), false),
            None => (Tickets::default(), false),
        }
    }

    /// Puts tickets back where [`Self::take_tickets`] took them (a new ended record for an
    /// isolate the limiter did not know).
    pub(super) fn put_tickets(&mut self, id: &str, tickets: Tickets) {
        let day = self.day;
        if let Some(lease) = self.leases.iter_mut().find(|l| l.id == id && l.day == day) {
            lease.tickets = tickets;
        } else if let Some(ended) = self.expired.iter_mut().find(|e| e.id == id && e.day == day) {
            ended.tickets = tickets;
        } else if !tickets.is_empty() {
            self.remember(Expired { id: id.to_owned(), day, epoch: 0, tickets });
        }
    }
}
