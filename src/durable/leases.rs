//! The isolate's side of the limiters' leases (`gateway_core::account::limits::lease`): one
//! [`Local`] per limiter this isolate has asked, in a table that lives as long as the isolate.
//! Everything that decides (admit, settle, when to renew, how much to ask for) is the core's;
//! this file keeps the table, and makes sure a report that was begun is always ended — answered,
//! or kept for the next one when its call failed or was dropped.

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
    /// The end of the lease a give-back is waiting for (at most one waits per lease).
    return_planned: Option<u64>,
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
        let mut slot = Slot { local: Local::default(), remaining: Usd::ZERO, used_share: 0.0, return_planned: None };
        let out = f(&mut slot);
        slots.insert(name.to_owned(), slot);
        out
    })
}

/// A request admitted under this isolate's lease of limiter `name`: its ticket, and the budget
/// left and spend share to report (the limiter's last figures, with what the lease has left).
pub fn admit(name: &str, amount: Usd, now: u64) -> Option<(Ticket, Usd, f64)> {
    with(name, |slot| {
        let ticket = slot.local.admit(amount, now)?;
        Some((ticket, slot.remaining.saturating_add(slot.local.room()), slot.used_share))
    })
}

/// What this isolate's lease of `name` has left to spend: with the limiter's `remaining` (which
/// counts the whole lease as used), what the caller is told is left of the budget.
pub fn room(name: &str) -> Usd {
    with(name, |slot| slot.local.room())
}

/// The limiter's figures from an answer to something else (a settle), kept for local admissions.
pub fn observe(name: &str, remaining: Usd, used_share: f64) {
    with(name, |slot| (slot.remaining, slot.used_share) = (remaining, used_share));
}

pub fn settle(name: &str, ticket: Ticket, actual: Option<Usd>, health: Health) {
    with(name, |slot| slot.local.settle(ticket, actual, health));
}

pub fn cancel(name: &str, ticket: Ticket) {
    with(name, |slot| slot.local.cancel(ticket));
}

/// A report under way to limiter `name`. Ended by [`Report::end`]; one that is dropped (its call
/// failed, or its future was dropped) is ended as unanswered: kept for the next report, and
/// nothing admitted under the lease until one is answered.
pub struct Report {
    name: String,
    sync: Option<LeaseSync>,
    sent_ms: u64,
}

impl Report {
    pub fn sync(&self) -> Option<&LeaseSync> {
        self.sync.as_ref()
    }

    /// The limiter's answer: the new lease, and its budget left and spend share.
    pub fn end(mut self, grant: Option<LeaseGrant>, remaining: Usd, used_share: f64) {
        if let Some(sync) = self.sync.take() {
            let sent = self.sent_ms;
            with(&self.name, |slot| {
                (slot.remaining, slot.used_share) = (remaining, used_share);
                slot.local.end_sync(sync, grant, sent);
            });
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(sync) = self.sync.take() {
            let sent = self.sent_ms;
            with(&self.name, |slot| slot.local.end_sync(sync, None, sent));
        }
    }
}

/// What to tell limiter `name` with a request it is asked anyway: what this isolate did under
/// its lease and a request for the next, when the isolate is busy or holds something of the
/// limiter's (and no other report is under way).
pub fn with_request(name: &str, per_request: Usd, now: u64) -> Report {
    let sync = with(name, |slot| {
        let want = slot.local.want(now);
        if want == 0 && !slot.local.holds_anything() {
            return None;
        }
        ISOLATE.with(|id| slot.local.begin_sync(id, want, per_request))
    });
    Report { name: name.to_owned(), sync, sent_ms: now }
}

/// The renewal a request's end makes due (half the lease's life gone, most of it used, or a
/// failed attempt the breaker should hear of), if any: asks for as much as the isolate's
/// traffic wants, or gives the lease back when its requests have stopped.
pub fn renewal(name: &str, per_request: Usd, now: u64) -> Option<Report> {
    let due = with(name, |slot| slot.local.renewal_due(now));
    due.then(|| with_request(name, per_request, now)).filter(|r| r.sync.is_some())
}

/// When this isolate has nothing in flight under its lease of `name` and no give-back waits
/// for this lease's end yet (a renewed lease gets its own): the time to give the lease back if
/// no request renews it first (just before the lease stops admitting), so that an isolate that
/// goes quiet does not leave its lease to be charged in full at expiry. The caller waits until
/// then and calls [`give_back`].
pub fn quiet_until(name: &str) -> Option<u64> {
    with(name, |slot| {
        let until = slot.local.until_ms()?;
        if !slot.local.idle() || slot.local.syncing() || slot.return_planned == Some(until) {
            return None;
        }
        slot.return_planned = Some(until);
        Some(until)
    })
}

/// A report that gives the lease of `name` back (what is in flight stays covered), for a
/// question asked of the limiter anyway (`/limits`); none when the isolate holds nothing of it.
pub fn hand_in(name: &str, now: u64) -> Report {
    let sync = with(name, |slot| {
        if !slot.local.holds_anything() {
            return None;
        }
        ISOLATE.with(|id| slot.local.begin_sync(id, 0, Usd::ZERO))
    });
    Report { name: name.to_owned(), sync, sent_ms: now }
}

/// The give-back [`quiet_until`] planned, if the lease is still the same one (`until`) and
/// still has nothing in flight.
pub fn give_back(name: &str, until: u64, now: u64) -> Option<Report> {
    let still_quiet = with(name, |slot| {
        if slot.return_planned == Some(until) {
            slot.return_planned = None;
        }
        slot.local.until_ms() == Some(until) && slot.local.idle() && !slot.local.syncing()
    });
    if !still_quiet {
        return None;
    }
    let sync = with(name, |slot| ISOLATE.with(|id| slot.local.begin_sync(id, 0, Usd::ZERO)));
    Some(Report { name: name.to_owned(), sync, sent_ms: now })
}
