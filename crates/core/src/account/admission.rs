//! How one attempt is admitted by all of its limiters: one decision of the core.
//!
//! An attempt is admitted by its provider's limiter and by the limiter of every scope it falls
//! under (`scopes.rs`: repository, owner, agent), all or nothing. For each, the isolate admits
//! it under its lease when it can (`limits/local.rs`: no I/O, a numbered ticket) or asks the
//! limiter (a reservation, carrying the isolate's lease report). [`Admission::begin`] says which
//! calls to make — the shell makes them all at once (Durable Object fetches), the simulation
//! with its requests interleaved — and [`Admission::reply`] takes each answer, or that it was
//! lost. Then [`Admission::decide`] says what is kept, what is given back, what the caller is
//! told and what is reported:
//!
//! - a scope's refusal wins: the request ends with the scope's 429 (another provider would not
//!   help: the scope's money is across providers);
//! - else a limiter whose answer was lost refuses: fail closed (spending without a budget
//!   check is what the limiter exists to prevent), [`Refusal::limiter_unavailable`], which the
//!   engine turns into a 503 `limiter_unavailable` when no target could be tried;
//! - else the provider's refusal: the engine moves on to the next target;
//! - refused, everything granted is taken back: a ticket here, a reservation by a cancel — and
//!   one whose answer was lost too (the limiter may have granted it);
//! - admitted, each ticket's admission is reported to its limiter: dispatched before the
//!   attempt's upstream call and never awaited by the request (`limits/tickets.rs`).
//!
//! [`Admitted::close`] ends what was admitted as the books say (`books.rs`): tickets settled
//! here (their settle reported in batches, acknowledged before the request's ledger rows are
//! written), reservations settled or released at their limiters, renewals made due.

use crate::account::alerts::Alert;
use crate::account::limits::lease::{LeaseSync, Ticket};
use crate::account::limits::local::LeaseTable;
use crate::account::limits::ops::{LimiterAnswer, Op};
use crate::account::limits::{Policy, Refusal};
use crate::account::scopes::Scope;
use crate::attempt::Books;
use crate::attempt::Health;
use crate::money::pricing::Usd;

/// One limiter of an attempt.
#[derive(Debug, Clone)]
struct Part {
    /// The limiter's name: the provider, or a scope's key.
    name: String,
    /// The target's model, for the provider's limiter.
    model: Option<String>,
    policy: Policy,
    /// The scope, for a scope's limiter.
    scope: Option<Scope>,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    Leased(Ticket),
    /// Asked: a reservation `id`, with the lease report numbered `epoch` if one went along.
    Asking {
        id: String,
        epoch: Option<u64>,
    },
    Granted {
        id: String,
    },
    Refused(Refusal),
    /// Its answer was lost: it may have been granted.
    Lost {
        id: String,
        why: String,
    },
}

/// How admissions are made.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Busy isolates admit under leases (`LIMITER_LEASES`).
    pub leases: bool,
    /// A reservation's time to live (0: the limiter's default).
    pub reservation_ttl_ms: u64,
}

/// One call the shell makes for an admission: `op` to limiter `limiter`; its answer goes back
/// with [`Admission::reply`] as part `part`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub part: usize,
    pub limiter: String,
    pub op: Op,
}

/// One attempt's admission, under way.
#[derive(Debug, Clone)]
pub struct Admission {
    parts: Vec<Part>,
    amount: Usd,
    options: Options,
    /// From the provider's limiter: its alerts, and the budget left and spend share.
    alerts: Vec<Alert>,
    remaining: Option<Usd>,
    used_share: Option<f64>,
}

/// What an admission came to.
#[derive(Debug)]
pub struct Decided {
    pub result: Result<Admitted, Refusal>,
    /// Operations to send at once and not wait for on the request's path (in `waitUntil`):
    /// the tickets' admission reports — before the attempt's upstream call — and the
    /// take-backs of a refused admission.
    pub dispatch: Vec<(String, Op)>,
    /// Alerts the limiters' answers carried (thresholds crossed).
    pub alerts: Vec<Alert>,
    /// The provider's budget left and spend share after this admission (`None`: its limiter
    /// did not answer).
    pub remaining: Option<Usd>,
    pub used_share: Option<f64>,
    /// The provider's limiter refused the target's model as unavailable: until when (the
    /// isolate's clock), and why.
    pub unavailable: Option<(u64, String)>,
}

/// An attempt admitted by all of its limiters, to be closed once ([`Admitted::close`]).
#[derive(Debug)]
pub struct Admitted {
    held: Vec<Held>,
    amount: Usd,
}

#[derive(Debug)]
enum Held {
    Leased { limiter: String, policy: Policy, ticket: Ticket },
    Reserved { limiter: String, policy: Policy, id: String, leases: bool },
}

/// What closing an admission asks of the shell.
#[derive(Debug, Default)]
pub struct Closing {
    /// Settles and releases of reservations: `(limiter, op, policy)`; with a policy (leases
    /// on), the answer's figures go to the isolate's slot ([`LeaseTable::slot`]) and the lease
    /// the reserve may have brought is planned to be given back ([`LeaseTable::plan_give_back`]).
    pub settles: Vec<(String, Op, Option<Policy>)>,
    /// Tickets settled here, `(limiter, number)`: their settles to report until acknowledged
    /// ([`LeaseTable::flush`]) before the request's ledger rows are written.
    pub tickets: Vec<(String, u64)>,
    /// Renewals made due, begun: each is sent and ended with its answer ([`LeaseTable::end_sync`]).
    pub renewals: Vec<Renewal>,
    /// Leases left with nothing in flight: `(limiter, policy, until)`, to give back at `until`
    /// ([`LeaseTable::give_back`]) unless a request renews them first.
    pub quiet: Vec<(String, Policy, u64)>,
}

/// A lease report to send on its own (a renewal, a give-back, a hand-in).
#[derive(Debug, Clone, PartialEq)]
pub struct Renewal {
    pub limiter: String,
    pub policy: Policy,
    pub sync: LeaseSync,
}

impl Renewal {
    pub fn op(&self) -> Op {
        Op::Sync { sync: self.sync.clone(), policy: self.policy, name: self.limiter.clone() }
    }
}

impl Admission {
    /// The admission of one attempt on `provider`'s `model` costing at most `amount`, by the
    /// provider's limiter and `scopes`'.
    pub fn new(
        provider: &str,
        model: &str,
        policy: Policy,
        scopes: &[Scope],
        amount: Usd,
        options: Options,
    ) -> Admission {
        let first = Part {
            name: provider.to_owned(),
            model: Some(model.to_owned()),
            policy,
            scope: None,
            state: State::Asking { id: String::new(), epoch: None },
        };
        let scoped = scopes.iter().map(|s| Part {
            name: s.key(),
            model: None,
            policy: s.policy,
            scope: Some(s.clone()),
            state: State::Asking { id: String::new(), epoch: None },
        });
        let parts = std::iter::once(first).chain(scoped).collect();
        Admission { parts, amount, options, alerts: Vec::new(), remaining: None, used_share: None }
    }

    /// Admits under the isolate's leases where it can (no I/O); the calls the other limiters
    /// need (`noise`: a random number, so that reservation ids differ between isolates).
    pub fn begin(&mut self, table: &mut LeaseTable, noise: u64, now: u64) -> Vec<Call> {
        let mut calls = Vec::new();
        for (i, part) in self.parts.iter_mut().enumerate() {
            if self.options.leases {
                if let Some(ticket) = table.slot(&part.name).local.admit(part.model.as_deref(), self.amount, now) {
                    part.state = State::Leased(ticket);
                    continue;
                }
            }
            // Asked anyway: the request carries the isolate's report and a request for a lease.
            let lease = if self.options.leases {
                let (slot, isolate) = table.slot_and_id(&part.name);
                slot.local.report_with_request(isolate, self.amount, now)
            } else {
                None
            };
            let id = format!("{now:x}-{noise:x}-{i}");
            part.state = State::Asking { id: id.clone(), epoch: lease.as_ref().map(|l| l.epoch) };
            let op = Op::Reserve {
                id,
                model: part.model.clone(),
                amount: self.amount,
                policy: part.policy,
                name: part.name.clone(),
                lease,
                ttl_ms: self.options.reservation_ttl_ms,
            };
            calls.push(Call { part: i, limiter: part.name.clone(), op });
        }
        calls
    }

    /// The answer to the call for `part` (`Err`: it was lost, and why).
    pub fn reply(&mut self, part: usize, reply: Result<LimiterAnswer, String>, table: &mut LeaseTable) {
        let Some(p) = self.parts.get_mut(part) else { return };
        let State::Asking { id, epoch } = &p.state else { return };
        let (id, epoch) = (id.clone(), *epoch);
        let slot = self.options.leases.then(|| table.slot(&p.name));
        match reply {
            Ok(answer) => {
                let mut remaining = answer.remaining.unwrap_or_default();
                if let Some(slot) = slot {
                    slot.observe(remaining, answer.used_share);
                    if let Some(epoch) = epoch {
                        slot.local.end_sync(epoch, answer.lease);
                    }
                    remaining = slot.remaining();
                }
                if part == 0 {
                    (self.remaining, self.used_share) = (Some(remaining), Some(answer.used_share));
                }
                self.alerts.extend(answer.alerts);
                p.state = match answer.refused {
                    None => State::Granted { id },
                    Some(refusal) => State::Refused(refusal),
                };
            }
            Err(why) => {
                // The report is kept for the next one.
                if let (Some(slot), Some(epoch)) = (slot, epoch) {
                    slot.local.end_sync(epoch, None);
                }
                p.state = State::Lost { id, why };
            }
        }
    }

    /// Every call answered (or lost): the decision.
    pub fn decide(mut self, table: &mut LeaseTable, now: u64) -> Decided {
        let mut refused: Option<Refusal> = None;
        let mut unavailable = None;
        for (i, part) in self.parts.iter().enumerate() {
            let refusal = match &part.state {
                State::Refused(refusal) => refusal.clone(),
                State::Lost { why, .. } => {
                    Refusal::limiter_unavailable(format!("the limiter for {} could not be asked: {why}", part.name))
                }
                State::Asking { .. } => {
                    Refusal::limiter_unavailable(format!("the limiter for {} was not asked", part.name))
                }
                State::Leased(_) | State::Granted { .. } => continue,
            };
            if i == 0 && refusal.model_unavailable {
                unavailable =
                    Some((now.saturating_add(refusal.retry_after_secs.saturating_mul(1000)), refusal.message.clone()));
            }
            let lost = refusal.is_limiter_unavailable();
            refused = match (refused, &part.scope) {
                // A scope's own refusal ends the request; the first one stands.
                (Some(r), _) if r.ends_request.is_some() => Some(r),
                (_, Some(scope)) if !lost => Some(Refusal { ends_request: Some(scope.refused(&refusal)), ..refusal }),
                // A limiter that could not be asked outweighs the provider's refusal.
                (Some(r), _) if !lost => Some(r),
                _ => Some(refusal),
            };
        }
        let mut dispatch = Vec::new();
        let leases = self.options.leases;
        let result = match refused {
            Some(refusal) => {
                // All or nothing: what was granted is taken back, rate-window slot included.
                for part in self.parts.drain(..) {
                    match part.state {
                        State::Leased(ticket) => table.slot(&part.name).local.cancel(ticket),
                        State::Granted { id } | State::Lost { id, .. } | State::Asking { id, .. } if !id.is_empty() => {
                            dispatch.push((part.name, Op::Cancel { id }))
                        }
                        _ => {}
                    }
                }
                Err(refusal)
            }
            None => {
                let mut held = Vec::with_capacity(self.parts.len());
                for part in self.parts.drain(..) {
                    let Part { name, policy, state, .. } = part;
                    match state {
                        State::Leased(ticket) => {
                            table.slot(&name).local.confirm(ticket);
                            let report = ticket.report(table.isolate());
                            dispatch.push((name.clone(), Op::Admitted { ticket: report }));
                            held.push(Held::Leased { limiter: name, policy, ticket });
                        }
                        State::Granted { id } => held.push(Held::Reserved { limiter: name, policy, id, leases }),
                        _ => {}
                    }
                }
                Ok(Admitted { held, amount: self.amount })
            }
        };
        Decided {
            result,
            dispatch,
            alerts: self.alerts,
            remaining: self.remaining,
            used_share: self.used_share,
            unavailable,
        }
    }

    /// An admission given up before its decision (the request went away): its tickets taken
    /// back, its reports kept for the next one; the take-backs of what may have been granted,
    /// to send.
    pub fn abandon(self, table: &mut LeaseTable) -> Vec<(String, Op)> {
        let mut cancels = Vec::new();
        for part in self.parts {
            match part.state {
                State::Leased(ticket) => table.slot(&part.name).local.cancel(ticket),
                State::Asking { id, epoch } => {
                    if let Some(epoch) = epoch {
                        table.slot(&part.name).local.end_sync(epoch, None);
                    }
                    if !id.is_empty() {
                        cancels.push((part.name, Op::Cancel { id }));
                    }
                }
                State::Granted { id } | State::Lost { id, .. } => cancels.push((part.name, Op::Cancel { id })),
                State::Refused(_) => {}
            }
        }
        cancels
    }
}

impl Admitted {
    /// What the attempt reserved of every limiter (its worst case).
    pub fn amount(&self) -> Usd {
        self.amount
    }

    /// Whether limiter `limiter` admitted it under the isolate's lease.
    pub fn under_lease(&self, limiter: &str) -> bool {
        self.held.iter().any(|h| matches!(h, Held::Leased { limiter: l, .. } if l == limiter))
    }

    /// How many limiters hold it as a reservation.
    pub fn reservations(&self) -> usize {
        self.held.iter().filter(|h| matches!(h, Held::Reserved { .. })).count()
    }

    /// Ends the admission as the books say, in every limiter that holds it: released, settled
    /// with a cost, or settled at the worst case it reserved; `health` is what the attempt said
    /// of the provider (its breaker; scopes have none). Tickets are settled here, and the
    /// renewals they make due begun; the rest is for the shell to send ([`Closing`]).
    pub fn close(self, books: Books, health: Health, table: &mut LeaseTable, now: u64) -> Closing {
        let charge = books.charge(self.amount);
        let mut closing = Closing::default();
        for held in self.held {
            match held {
                Held::Leased { limiter, policy, ticket } => {
                    let slot = table.slot(&limiter);
                    slot.local.settle(ticket, Some(charge), health);
                    closing.tickets.push((limiter.clone(), ticket.number()));
                    let (slot, isolate) = table.slot_and_id(&limiter);
                    match slot.local.renewal(isolate, ticket.amount(), now) {
                        Some(sync) => closing.renewals.push(Renewal { limiter, policy, sync }),
                        None => {
                            if let Some(until) = slot.local.plan_give_back(now) {
                                closing.quiet.push((limiter, policy, until));
                            }
                        }
                    }
                }
                Held::Reserved { limiter, policy, id, leases } => {
                    let op = match books {
                        Books::Release => Op::Release { id, health },
                        // The amount is said even at the worst case, so that a reservation
                        // that expired meanwhile is corrected to it.
                        _ => Op::Settle { id, actual: Some(charge), health, name: limiter.clone() },
                    };
                    closing.settles.push((limiter, op, leases.then_some(policy)));
                }
            }
        }
        closing
    }

    /// An admission dropped without its close (its request went away mid-attempt): what its
    /// attempt was billed is unknown, so everything is settled at its worst case — tickets
    /// here (reported with the next batch or renewal), reservations by the settles returned,
    /// to send.
    pub fn abandon(self, table: &mut LeaseTable) -> Vec<(String, Op)> {
        let mut settles = Vec::new();
        for held in self.held {
            match held {
                Held::Leased { limiter, ticket, .. } => {
                    table.slot(&limiter).local.settle(ticket, None, Health::Neutral)
                }
                Held::Reserved { limiter, id, .. } => {
                    let op =
                        Op::Settle { id, actual: Some(self.amount), health: Health::Neutral, name: limiter.clone() };
                    settles.push((limiter, op));
                }
            }
        }
        settles
    }
}

impl LeaseTable {
    /// The lease the settle of a reservation may have brought, given back at its end unless a
    /// request renews it first: `until`, if one is to be planned.
    pub fn plan_give_back(&mut self, limiter: &str, now: u64) -> Option<u64> {
        self.slot(limiter).local.plan_give_back(now)
    }

    /// The give-back planned for limiter `limiter`'s lease ending at `until`, if it is still due.
    pub fn give_back(&mut self, limiter: &str, policy: Policy, until: u64, now: u64) -> Option<Renewal> {
        let (slot, isolate) = self.slot_and_id(limiter);
        let sync = slot.local.give_back(isolate, until, now)?;
        Some(Renewal { limiter: limiter.to_owned(), policy, sync })
    }

    /// A report that gives the lease of `limiter` back, for a question asked of it anyway
    /// (`/limits`).
    pub fn hand_in(&mut self, limiter: &str, policy: Policy, now: u64) -> Option<Renewal> {
        let (slot, isolate) = self.slot_and_id(limiter);
        let sync = slot.local.hand_in(isolate, now)?;
        Some(Renewal { limiter: limiter.to_owned(), policy, sync })
    }

    /// The answer to a renewal (`None`: lost; its figures go into the next report).
    pub fn end_sync(&mut self, renewal: &Renewal, answer: Option<&LimiterAnswer>) {
        let slot = self.slot(&renewal.limiter);
        match answer {
            Some(answer) => {
                slot.observe(answer.remaining.unwrap_or_default(), answer.used_share);
                slot.local.end_sync(renewal.sync.epoch, answer.lease.clone());
            }
            None => slot.local.end_sync(renewal.sync.epoch, None),
        }
    }

    /// The model `model` was answered unavailable: not admitted under the lease of `limiter`.
    pub fn note_unavailable(&mut self, limiter: &str, model: &str, now: u64) {
        self.slot(limiter).local.note_unavailable(model, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::limits::lease::LEASE_BUSY_REQUESTS;
    use crate::account::limits::local::Flush;
    use crate::account::limits::{LimiterState, DAY_MS};
    use crate::account::scopes::ScopeKind;
    use crate::error::ErrorKind;
    use std::collections::HashMap;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000;
    const POLICY: Policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(1_000_000), breaker: None };
    const ON: Options = Options { leases: true, reservation_ttl_ms: 0 };

    fn repo(budget: u64) -> Scope {
        Scope {
            kind: ScopeKind::Repository,
            name: "octo/app".into(),
            policy: Policy { requests_per_minute: u32::MAX, daily_budget: Usd(budget), breaker: None },
        }
    }

    /// Runs one admission against `limiters` (by name), answering every call at once, but the
    /// parts in `lost`.
    fn admit(
        limiters: &mut HashMap<String, LimiterState>,
        table: &mut LeaseTable,
        scopes: &[Scope],
        lost: &[usize],
        now: u64,
    ) -> Decided {
        let mut admission = Admission::new("p", "m", POLICY, scopes, Usd(1_000), ON);
        for call in admission.begin(table, 7, now) {
            let limiter = limiters.entry(call.limiter.clone()).or_default();
            let answer = limiter.handle(call.op, now);
            let reply = if lost.contains(&call.part) { Err("timed out".to_owned()) } else { Ok(answer) };
            admission.reply(call.part, reply, table);
        }
        admission.decide(table, now)
    }

    fn send(limiters: &mut HashMap<String, LimiterState>, ops: Vec<(String, Op)>, now: u64) {
        for (name, op) in ops {
            limiters.entry(name).or_default().handle(op, now);
        }
    }

    #[test]
    fn a_scopes_refusal_ends_the_request_and_what_was_granted_is_taken_back() {
        let mut limiters: HashMap<String, LimiterState> = HashMap::new();
        let mut table = LeaseTable::new("iso".into(), 0);
        let decided = admit(&mut limiters, &mut table, &[repo(10)], &[], T0);
        let refusal = decided.result.unwrap_err();
        assert!(refusal.over_budget);
        assert_eq!(refusal.ends_request.map(|e| e.kind), Some(ErrorKind::RepositoryBudgetExhausted));
        assert_eq!(decided.dispatch.len(), 1, "the provider's reservation is cancelled");
        send(&mut limiters, decided.dispatch, T0 + 1);
        let provider = limiters.get_mut("p").unwrap().snapshot(T0 + 2);
        assert_eq!((provider.outstanding_reservations, provider.requests_last_minute), (0, 0));
        assert_eq!(decided.remaining, Some(Usd(1_000_000 - 1_000)), "the provider's figures as it answered");
    }

    #[test]
    fn a_lost_answer_fails_closed_and_its_reservation_is_taken_back() {
        let mut limiters: HashMap<String, LimiterState> = HashMap::new();
        let mut table = LeaseTable::new("iso".into(), 0);
        let decided = admit(&mut limiters, &mut table, &[repo(1_000_000)], &[1], T0);
        let refusal = decided.result.unwrap_err();
        assert!(refusal.is_limiter_unavailable() && refusal.message.contains("repository:octo/app"), "{refusal:?}");
        assert_eq!(decided.dispatch.len(), 2, "both cancelled: the lost one may have been granted");
        send(&mut limiters, decided.dispatch, T0 + 1);
        for limiter in limiters.values_mut() {
            assert_eq!(limiter.snapshot(T0 + 2).outstanding_reservations, 0);
        }
        // A lost answer outweighs the provider's refusal: the deployment's fault, said as such.
        let mut limiters: HashMap<String, LimiterState> = HashMap::new();
        let tight = Policy { daily_budget: Usd(10), ..POLICY };
        let mut admission = Admission::new("p", "m", tight, &[repo(1_000_000)], Usd(1_000), ON);
        for call in admission.begin(&mut table, 7, T0) {
            let answer = limiters.entry(call.limiter.clone()).or_default().handle(call.op, T0);
            admission.reply(call.part, if call.part == 1 { Err("no".into()) } else { Ok(answer) }, &mut table);
        }
        assert!(admission.decide(&mut table, T0).result.unwrap_err().is_limiter_unavailable());
    }

    #[test]
    fn a_busy_isolate_admits_under_its_leases_and_reports_each_admission() {
        let mut limiters: HashMap<String, LimiterState> = HashMap::new();
        let mut table = LeaseTable::new("iso".into(), 0);
        let scopes = [repo(1_000_000)];
        let mut now = T0;
        let mut held = Vec::new();
        for _ in 0..LEASE_BUSY_REQUESTS + 2 {
            now += 10;
            let decided = admit(&mut limiters, &mut table, &scopes, &[], now);
            send(&mut limiters, decided.dispatch, now);
            held.push(decided.result.unwrap());
        }
        let leased = held.iter().filter(|a| a.held.iter().all(|h| matches!(h, Held::Leased { .. }))).count();
        assert!(leased >= 1, "{held:?}");
        // Every admission ends; the settles are reported and acknowledged.
        for admitted in held {
            let closing = admitted.close(Books::Settle(Usd(100)), Health::Healthy, &mut table, now);
            for (name, op, _) in closing.settles {
                limiters.get_mut(&name).unwrap().handle(op, now);
            }
            for renewal in closing.renewals {
                let answer = limiters.get_mut(&renewal.limiter).unwrap().handle(renewal.op(), now);
                table.end_sync(&renewal, Some(&answer));
            }
            for (name, n) in closing.tickets {
                loop {
                    match table.flush(&name, n, now) {
                        Flush::Done => break,
                        Flush::Send { no, op } => {
                            let answer = limiters.get_mut(&name).unwrap().handle(*op, now);
                            table.end_flush(&name, no, Some(&answer));
                        }
                        Flush::Wait => unreachable!("one batch at a time, each answered at once"),
                    }
                }
            }
        }
        // The isolate dies: nothing was in flight, nothing more is charged.
        for (name, limiter) in limiters.iter_mut() {
            let s = limiter.snapshot(now + 3 * 60_000);
            assert_eq!(s.spent_usd, Usd(100 * (LEASE_BUSY_REQUESTS as u64 + 2)), "{name}");
            assert_eq!(s.isolate_died_usd, Usd::ZERO, "{name}");
        }
    }

    #[test]
    fn an_abandoned_admission_takes_back_its_tickets_and_reservations() {
        let mut limiters: HashMap<String, LimiterState> = HashMap::new();
        let mut table = LeaseTable::new("iso".into(), 0);
        let mut admission = Admission::new("p", "m", POLICY, &[], Usd(1_000), ON);
        let calls = admission.begin(&mut table, 7, T0);
        for call in calls {
            limiters.entry(call.limiter).or_default().handle(call.op, T0);
        }
        send(&mut limiters, admission.abandon(&mut table), T0 + 1);
        let s = limiters.get_mut("p").unwrap().snapshot(T0 + 20 * 60_000);
        assert_eq!((s.spent_usd, s.isolate_died_usd), (Usd::ZERO, Usd::ZERO));
    }
}
