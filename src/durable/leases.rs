//! The isolate's side of the limiters' leases (`gateway_core::account::limits::lease`): one
//! [`Local`] per limiter this isolate has asked, in a table that lives as long as the isolate.
//! Everything that decides (admit, settle, when to report and for how much, when to give the
//! lease back, when a report is lost) is the core's; this file keeps the table and the limiter's
//! last figures, and makes sure a report that was begun is always ended — answered, or kept for
//! the next one when its call failed or was dropped.

use std::cell::RefCell;
use std::collections::HashMap;

use gateway_core::account::breaker::Health;
use gateway_core::account::limits::lease::{LeaseGrant, LeaseSync, Local, Ticket};
use gateway_core::account::pricing::Usd;

struct Slot {
    local: Local,
    /// The limiter's budget left and spend share at its last answer (the lease not counted).
    remaining: Usd,
    used_share: f64,
}

impl Slot {
    /// What a caller is told is left of the budget: the limiter counts this isolate's lease as
    /// used; what is left of it is not.
    fn remaining(&self) -> Usd {
        self.remaining.saturating_add(self.local.room())
    }
}

thread_local! {
    static SLOTS: RefCell<HashMap<String, Slot>> = RefCell::new(HashMap::new());
    /// This isolate's lease id, the same at every limiter (each keeps one lease per id).
    static ISOLATE: String = format!("isolate-{:x}", (js_sys::Math::random() * 9_007_199_254_740_992.0) as u64);
}

fn with<T>(name: &str, f: impl FnOnce(&mut Slot) -> T) -> T {
    SLOTS.with(|slots| {
        let mut slots = slots.borrow_mut();
        // The name is copied once per limiter and isolate, not on every request.
        if let Some(slot) = slots.get_mut(name) {
            return f(slot);
        }
        let mut slot = Slot { local: Local::default(), remaining: Usd::ZERO, used_share: 0.0 };
        let out = f(&mut slot);
        slots.insert(name.to_owned(), slot);
        out
    })
}

/// A request admitted under this isolate's lease of limiter `name`: its ticket, and the budget
/// left and spend share to report.
pub fn admit(name: &str, model: Option<&str>, amount: Usd, now: u64) -> Option<(Ticket, Usd, f64)> {
    with(name, |slot| {
        let ticket = slot.local.admit(model, amount, now)?;
        Some((ticket, slot.remaining(), slot.used_share))
    })
}

/// The limiter's figures from an answer to something else (a settle), kept for local admissions.
pub fn observe(name: &str, remaining: Usd, used_share: f64) {
    with(name, |slot| (slot.remaining, slot.used_share) = (remaining, used_share));
}

pub fn settle(name: &str, ticket: Ticket, actual: Option<Usd>, health: Health) {
    with(name, |slot| slot.local.settle(ticket, actual, health));
}

/// `model` was answered unavailable: not admitted under this isolate's lease of limiter `name`
/// while its mark lasts (the limiter is told too).
pub fn note_unavailable(name: &str, model: &str, now: u64) {
    with(name, |slot| slot.local.note_unavailable(model, now));
}

pub fn cancel(name: &str, ticket: Ticket) {
    with(name, |slot| slot.local.cancel(ticket));
}

/// What a call to limiter `name` carries of this isolate's lease: a report (or none). Ended by
/// [`Report::end`]; one that is dropped (its call failed, or its future was dropped) is ended
/// as unanswered: its figures go into the next report.
pub struct Report {
    name: String,
    sync: Option<LeaseSync>,
}

impl Report {
    pub fn sync(&self) -> Option<&LeaseSync> {
        self.sync.as_ref()
    }

    /// The limiter's answer: the new lease (if a report was sent), its budget left and spend
    /// share. What the caller is told is left of the budget.
    pub fn end(mut self, grant: Option<LeaseGrant>, remaining: Usd, used_share: f64) -> Usd {
        let sync = self.sync.take();
        with(&self.name, |slot| {
            (slot.remaining, slot.used_share) = (remaining, used_share);
            if let Some(sync) = sync {
                slot.local.end_sync(sync.epoch, grant);
            }
            slot.remaining()
        })
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(sync) = self.sync.take() {
            with(&self.name, |slot| slot.local.end_sync(sync.epoch, None));
        }
    }
}

fn report(name: &str, f: impl FnOnce(&mut Local, &str) -> Option<LeaseSync>) -> Report {
    let sync = with(name, |slot| ISOLATE.with(|id| f(&mut slot.local, id)));
    Report { name: name.to_owned(), sync }
}

/// What to tell limiter `name` with a request it is asked anyway (a reservation).
pub fn with_request(name: &str, per_request: Usd, now: u64) -> Report {
    report(name, |local, id| local.report_with_request(id, per_request, now))
}

/// The renewal a request's end makes due, if any.
pub fn renewal(name: &str, per_request: Usd, now: u64) -> Option<Report> {
    Some(report(name, |local, id| local.renewal(id, per_request, now))).filter(|r| r.sync.is_some())
}

/// When to give the lease of `name` back if no request renews it first (see
/// `Local::plan_give_back`); the caller waits until then and calls [`give_back`].
pub fn quiet_until(name: &str, now: u64) -> Option<u64> {
    with(name, |slot| slot.local.plan_give_back(now))
}

/// The give-back [`quiet_until`] planned, if it is still due.
pub fn give_back(name: &str, until: u64, now: u64) -> Option<Report> {
    Some(report(name, |local, id| local.give_back(id, until, now))).filter(|r| r.sync.is_some())
}

/// A report that gives the lease of `name` back, for a question asked of the limiter anyway
/// (`/limits`).
pub fn hand_in(name: &str, now: u64) -> Report {
    report(name, |local, id| local.hand_in(id, now))
}
