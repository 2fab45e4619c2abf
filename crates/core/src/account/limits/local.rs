//! An isolate's side of a limiter's lease (`lease.rs`): every decision it makes about it —
//! admit, settle, when to report what and for how much, when to give the lease back — as plain
//! data; the shell keeps one [`Slot`] per limiter in a table that lives as long as the isolate,
//! and only carries the messages.
//!
//! Each admission is a [`Ticket`] numbered per isolate and limiter: reported to the limiter as
//! it happens ([`Ticket::report`]), and, once settled here, reported settled in batches
//! ([`Local::settle_report`], one batch in flight at a time) until the limiter acknowledges it
//! ([`Local::acknowledged`]: the request's ledger rows wait for that). A renewal carries the
//! whole view: the open tickets and every settle not yet acknowledged.

use super::lease::{LeaseGrant, LeaseSync, LEASE_MARGIN_MS, LEASE_MAX_REQUESTS, LEASE_TTL_MS};
use super::tickets::{TicketReport, TicketSettle, TicketSettles, MAX_SETTLES_PER_REPORT};
use super::DAY_MS;
use crate::attempt::Health;
use crate::money::pricing::Usd;

/// An isolate asks for a lease when it saw [`LEASE_BUSY_REQUESTS`] requests for a limiter within
/// this long (and gives it back when they slow below that).
pub const LEASE_BUSY_MS: u64 = 1_000;
/// See [`LEASE_BUSY_MS`]: 8 requests a second. At that rate the limiter's round trip (two per
/// request: reserve and settle) is felt by the isolate and by the limiter's object; below it, a
/// lease would hold budget for requests that do not come (docs/budgets.md has the figures).
pub const LEASE_BUSY_REQUESTS: usize = 8;
/// A report unanswered for this long is given up (its call was lost without an error).
pub const SYNC_LOST_MS: u64 = LEASE_TTL_MS;

/// A request admitted under a lease: what it holds until it settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    day: u64,
    amount: Usd,
    /// Which report will carry its admission (only an unreported one can be taken back).
    epoch: u64,
    /// Its number, per isolate and limiter.
    n: u64,
}

impl Ticket {
    pub fn amount(&self) -> Usd {
        self.amount
    }

    pub fn number(&self) -> u64 {
        self.n
    }

    /// The report of its admission, for the limiter (`id`: the isolate's lease id).
    pub fn report(&self, id: &str) -> TicketReport {
        TicketReport { id: id.to_owned(), day: self.day, n: self.n, amount: self.amount }
    }
}

/// A renewal on its way to the limiter: what it carries, kept to be sent again if it is lost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sent {
    epoch: u64,
    at_ms: u64,
    admitted: u32,
    spent: Usd,
    healthy: u32,
    failed: u32,
    /// The settles it carried (acknowledged by its answer).
    settled: Vec<u64>,
}

/// A batch of settles on its way to the limiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Batch {
    no: u64,
    at_ms: u64,
    settled: Vec<u64>,
}

/// An isolate's side of one limiter's lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Local {
    /// Admissions and budget as last granted (the limiter's figures).
    requests: u32,
    budget: Usd,
    /// The day the lease and its tickets belong to.
    day: u64,
    /// No admission at or after this time (the isolate's clock).
    until_ms: u64,
    /// When the lease was granted (renewals are due halfway).
    granted_ms: u64,
    /// The lease time to live it asks for (0: the limiter's default).
    ttl_ms: u64,
    /// Since the last report: admissions, settled spend, outcomes.
    admitted: u32,
    spent: Usd,
    healthy: u32,
    failed: u32,
    /// Tickets numbered so far.
    issued: u64,
    /// Tickets whose admission is not decided yet (another limiter of the attempt may still
    /// refuse it): held, but not reported — an attempt not yet admitted was not sent.
    pending: Vec<(u64, Usd)>,
    /// Open tickets: admitted, not settled.
    open: Vec<(u64, Usd)>,
    /// Settled here, not yet acknowledged by the limiter.
    unacked: Vec<TicketSettle>,
    /// The batch of settles on its way, and batches begun so far.
    batch: Option<Batch>,
    batches: u64,
    /// The renewal on its way to the limiter: no admission until it is answered or given up.
    sent: Option<Sent>,
    /// Admissions of the last period, to size the next.
    last_period: u32,
    /// Reports begun so far.
    epoch: u64,
    /// When the limiter's last requests in this isolate arrived (the isolate's clock), the
    /// latest at `seen_at`.
    seen_ms: [u64; LEASE_BUSY_REQUESTS],
    seen_at: usize,
    /// The end of the lease a give-back is planned for (at most one per lease).
    return_planned: Option<u64>,
    /// Models marked unavailable, until when (the isolate's clock): never admitted locally.
    unavailable: Vec<(String, u64)>,
}

impl Local {
    /// A lease that asks for time to live `ttl_ms` (0: the limiter's default).
    pub fn with_ttl(ttl_ms: u64) -> Local {
        Local { ttl_ms, ..Local::default() }
    }

    /// Admits one request for `model` (`None`: a scope's limiter) costing at most `amount`
    /// under the lease, or `None` (the request asks the limiter itself: always, for a model
    /// marked unavailable, which the limiter refuses).
    pub fn admit(&mut self, model: Option<&str>, amount: Usd, now: u64) -> Option<Ticket> {
        self.seen_at = (self.seen_at + 1) % LEASE_BUSY_REQUESTS;
        self.seen_ms[self.seen_at] = now;
        let live = !self.syncing(now) && now < self.until_ms && now / DAY_MS == self.day;
        if !live || self.admitted >= self.requests || amount > self.room() || self.marked(model, now) {
            return None;
        }
        self.admitted += 1;
        self.issued += 1;
        self.pending.push((self.issued, amount));
        Some(Ticket { day: self.day, amount, epoch: self.epoch, n: self.issued })
    }

    /// The attempt of `ticket` is admitted by all of its limiters: the ticket is open (and its
    /// admission is to be reported).
    pub fn confirm(&mut self, ticket: Ticket) {
        if let Some(i) = self.pending.iter().position(|&(n, _)| n == ticket.n) {
            let entry = self.pending.swap_remove(i);
            if ticket.day == self.day {
                self.open.push(entry);
            }
        }
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

    fn close(&mut self, ticket: Ticket) -> bool {
        if let Some(i) = self.pending.iter().position(|&(n, _)| n == ticket.n) {
            self.pending.swap_remove(i);
            return ticket.day == self.day;
        }
        match self.open.iter().position(|&(n, _)| n == ticket.n) {
            Some(i) if ticket.day == self.day => {
                self.open.swap_remove(i);
                true
            }
            _ => false,
        }
    }

    /// Ends a ticket: `actual` spent (`None`: its worst case), `health` for the breaker; its
    /// settle is to be reported. A ticket of an earlier day is its day's: the lease no longer
    /// holds it.
    pub fn settle(&mut self, ticket: Ticket, actual: Option<Usd>, health: Health) {
        if !self.close(ticket) {
            return;
        }
        let actual = actual.unwrap_or(ticket.amount);
        self.spent = self.spent.saturating_add(actual);
        self.unacked.push(TicketSettle { n: ticket.n, amount: ticket.amount, actual });
        match health {
            Health::Healthy => self.healthy += 1,
            Health::Failed => self.failed += 1,
            Health::Neutral => {}
        }
    }

    /// Takes back a ticket whose attempt never started (another limiter refused it): its
    /// admission was never reported (it was pending), and it cost nothing.
    pub fn cancel(&mut self, ticket: Ticket) {
        if self.close(ticket) && ticket.epoch == self.epoch {
            // Reported already (a renewal left meanwhile), the admission stays counted: on the
            // safe side.
            self.admitted = self.admitted.saturating_sub(1);
        }
    }

    /// Whether ticket `n`'s settle is acknowledged by the limiter (or no longer to report: of
    /// another day).
    pub fn acknowledged(&self, n: u64) -> bool {
        !self.unacked.iter().any(|s| s.n == n)
    }

    /// A batch of the settles to report (`None`: none, or a batch is under way: its answer
    /// comes first, unless it was given up after [`SYNC_LOST_MS`]). Ended by
    /// [`Self::end_settle_report`].
    pub fn settle_report(&mut self, id: &str, now: u64) -> Option<(u64, TicketSettles)> {
        if self.batch.as_ref().is_some_and(|b| now.saturating_sub(b.at_ms) < SYNC_LOST_MS) || self.unacked.is_empty() {
            return None;
        }
        self.batches += 1;
        let settles: Vec<TicketSettle> = self.unacked.iter().take(MAX_SETTLES_PER_REPORT).copied().collect();
        let settled = settles.iter().map(|s| s.n).collect();
        self.batch = Some(Batch { no: self.batches, at_ms: now, settled });
        Some((self.batches, TicketSettles { id: id.to_owned(), day: self.day, settles }))
    }

    /// Whether a batch of settles is under way (not given up by `now`).
    pub fn settle_report_under_way(&self, now: u64) -> bool {
        self.batch.as_ref().is_some_and(|b| now.saturating_sub(b.at_ms) < SYNC_LOST_MS)
    }

    /// The answer to batch `no`: `acknowledged` (applied by the limiter), or not (its call
    /// failed: the settles go again, with the next batch or renewal).
    pub fn end_settle_report(&mut self, no: u64, acknowledged: bool) {
        let Some(batch) = self.batch.take_if(|b| b.no == no) else { return };
        if acknowledged {
            self.unacked.retain(|s| !batch.settled.contains(&s.n));
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
    /// isolate's requests have slowed down.
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
    /// quiet leaves nothing held. The caller waits until then and calls [`Self::give_back`].
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
        self.sent.as_ref().map(|s| s.epoch)
    }

    /// Whether the isolate holds anything of the limiter's (a lease, tickets, a report to make).
    pub fn holds_anything(&self) -> bool {
        self.requests > 0
            || self.budget > Usd::ZERO
            || self.admitted > 0
            || self.spent > Usd::ZERO
            || !self.open.is_empty()
            || !self.pending.is_empty()
            || !self.unacked.is_empty()
    }

    /// The most the limiter charges if this isolate dies now: the worst cases of its open
    /// tickets and of those settled here but not acknowledged (pending ones were never reported,
    /// nor sent).
    pub fn at_stake(&self) -> Usd {
        let open = self.open.iter().fold(Usd::ZERO, |sum, &(_, amount)| sum.saturating_add(amount));
        self.unacked.iter().fold(open, |sum, s| sum.saturating_add(s.amount))
    }

    /// When the lease stops admitting, if one is live.
    fn until_ms(&self) -> Option<u64> {
        (self.requests > 0 || self.budget > Usd::ZERO).then_some(self.until_ms)
    }

    /// Nothing in flight under the lease.
    fn idle(&self) -> bool {
        self.open.is_empty() && self.pending.is_empty()
    }

    /// What the open and pending tickets hold.
    fn held(&self) -> Usd {
        self.open.iter().chain(&self.pending).fold(Usd::ZERO, |sum, &(_, amount)| sum.saturating_add(amount))
    }

    /// Whether a renewal is under way; one unanswered for [`SYNC_LOST_MS`] is given up first
    /// (as if its call had failed).
    fn syncing(&mut self, now: u64) -> bool {
        if let Some(epoch) = self.sent.as_ref().filter(|s| now.saturating_sub(s.at_ms) >= SYNC_LOST_MS).map(|s| s.epoch)
        {
            self.end_sync(epoch, None);
        }
        self.sent.is_some()
    }

    /// Starts report number `epoch` (`None` while another is under way): what was done since
    /// the last one, the tickets as the isolate sees them, and a request for `want` admissions
    /// of up to `per_request` each (0: give the lease back). Until [`Self::end_sync`], nothing
    /// is admitted under the lease.
    pub fn begin_sync(&mut self, id: &str, want: u32, per_request: Usd, now: u64) -> Option<LeaseSync> {
        if self.syncing(now) {
            return None;
        }
        self.epoch += 1;
        self.last_period = self.admitted;
        let settled: Vec<TicketSettle> = self.unacked.iter().take(MAX_SETTLES_PER_REPORT).copied().collect();
        let sent = Sent {
            epoch: self.epoch,
            at_ms: now,
            admitted: std::mem::take(&mut self.admitted),
            spent: std::mem::take(&mut self.spent),
            healthy: std::mem::take(&mut self.healthy),
            failed: std::mem::take(&mut self.failed),
            settled: settled.iter().map(|s| s.n).collect(),
        };
        let sync = LeaseSync {
            id: id.to_owned(),
            epoch: sent.epoch,
            day: self.day,
            admitted: sent.admitted,
            // A pending ticket is not in the view: the view covers the tickets below it.
            next: self.pending.iter().map(|&(n, _)| n).min().unwrap_or(self.issued + 1),
            open: self.open.clone(),
            settled,
            healthy: sent.healthy,
            failed: sent.failed,
            want,
            per_request,
            ttl_ms: self.ttl_ms,
        };
        self.sent = Some(sent);
        Some(sync)
    }

    /// How many admissions to ask for: twice what the last period used, at least 4; none (no
    /// lease, or give it back) unless the isolate's last [`LEASE_BUSY_REQUESTS`] requests came
    /// within [`LEASE_BUSY_MS`] and the latest within [`LEASE_TTL_MS`] of `now`.
    pub fn want(&self, now: u64) -> u32 {
        let last = self.seen_ms[self.seen_at];
        let oldest = self.seen_ms[(self.seen_at + 1) % LEASE_BUSY_REQUESTS];
        let busy = oldest > 0 && last.saturating_sub(oldest) < LEASE_BUSY_MS && now.saturating_sub(last) < LEASE_TTL_MS;
        if !busy {
            return 0;
        }
        (self.last_period.max(self.admitted) * 2).clamp(4, LEASE_MAX_REQUESTS)
    }

    /// The limiter's answer to report `epoch`: the new lease. `None`: no answer; the report's
    /// figures go into the next one, its settles stay to be acknowledged, and nothing more is
    /// admitted under the lease (the limiter may have shrunk it) until a report is answered.
    /// An answer to a report already given up is ignored (the limiter ignores that report if
    /// it comes after the next).
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
        self.unacked.retain(|s| !sent.settled.contains(&s.n));
        if grant.day != self.day {
            // A new day: what was in flight is the old day's, and so is any later settle of it.
            (self.day, self.spent, self.admitted) = (grant.day, Usd::ZERO, 0);
            self.open.clear();
            self.pending.clear();
            self.unacked.clear();
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
        self.budget.saturating_sub(self.spent.saturating_add(self.held()))
    }
}

/// An isolate's standing with one limiter: its lease, and the limiter's figures at its last
/// answer (what the budget-remaining header and the budget rules read between answers).
#[derive(Debug, Clone, Default)]
pub struct Slot {
    pub local: Local,
    /// The limiter's budget left and spend share at its last answer (the lease not counted).
    remaining: Usd,
    used_share: f64,
}

impl Slot {
    pub fn new(lease_ttl_ms: u64) -> Slot {
        Slot { local: Local::with_ttl(lease_ttl_ms), remaining: Usd::ZERO, used_share: 0.0 }
    }

    /// The limiter's figures from one of its answers.
    pub fn observe(&mut self, remaining: Usd, used_share: f64) {
        (self.remaining, self.used_share) = (remaining, used_share);
    }

    /// What a caller is told is left of the budget: the limiter counts this isolate's lease as
    /// used; what is left of it is not.
    pub fn remaining(&self) -> Usd {
        self.remaining.saturating_add(self.local.room())
    }

    pub fn used_share(&self) -> f64 {
        self.used_share
    }
}

/// An isolate's leases: one [`Slot`] per limiter it asked, under one lease id (the same at
/// every limiter). The shell keeps one for the isolate's life; the simulation one per isolate.
#[derive(Debug, Clone, Default)]
pub struct LeaseTable {
    isolate: String,
    /// The lease time to live asked for (0: the limiter's default).
    ttl_ms: u64,
    slots: std::collections::HashMap<String, Slot>,
}

/// The next step of getting a ticket's settle acknowledged ([`LeaseTable::flush`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Flush {
    /// Acknowledged (or no longer to report).
    Done,
    /// Send this batch (number `no`), then [`LeaseTable::end_flush`] with how it went.
    Send { no: u64, op: Box<super::ops::Op> },
    /// A batch is under way: wait for it, then ask again.
    Wait,
}

impl LeaseTable {
    pub fn new(isolate: String, lease_ttl_ms: u64) -> LeaseTable {
        LeaseTable { isolate, ttl_ms: lease_ttl_ms, slots: Default::default() }
    }

    pub fn isolate(&self) -> &str {
        &self.isolate
    }

    /// The slot of limiter `name` (made on first use; the name is copied once per limiter).
    pub fn slot(&mut self, name: &str) -> &mut Slot {
        if !self.slots.contains_key(name) {
            self.slots.insert(name.to_owned(), Slot::new(self.ttl_ms));
        }
        self.slots.get_mut(name).expect("inserted above")
    }

    /// The slot and the isolate's id at once (a report names the isolate).
    pub fn slot_and_id(&mut self, name: &str) -> (&mut Slot, &str) {
        self.slot(name);
        let slot = self.slots.get_mut(name).expect("made above");
        (slot, &self.isolate)
    }

    /// What to do next so that ticket `n`'s settle at limiter `name` is acknowledged.
    pub fn flush(&mut self, name: &str, n: u64, now: u64) -> Flush {
        let (slot, id) = self.slot_and_id(name);
        if slot.local.acknowledged(n) {
            return Flush::Done;
        }
        match slot.local.settle_report(id, now) {
            Some((no, settles)) => {
                Flush::Send { no, op: Box::new(super::ops::Op::SettleTickets { settles, name: name.to_owned() }) }
            }
            None => Flush::Wait,
        }
    }

    /// How batch `no` of limiter `name` went: its answer's figures (`None`: no answer).
    pub fn end_flush(&mut self, name: &str, no: u64, answer: Option<&super::ops::LimiterAnswer>) {
        let slot = self.slot(name);
        slot.local.end_settle_report(no, answer.is_some());
        if let Some(answer) = answer {
            slot.observe(answer.remaining.unwrap_or_default(), answer.used_share);
        }
    }
}
