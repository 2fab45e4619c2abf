//! The simulation's shell around the limiters, doing what the Worker's does: the calls the
//! core's admission asks for (`gateway_core::account::admission`), each a round trip during
//! which other requests move, in any order, some answers lost; the admission reports and
//! take-backs sent and not waited for; closes in the background of the request's isolate, their
//! settles acknowledged before the request's rows count as written; leases renewed and given
//! back; isolates that die with whatever they were doing.
//!
//! What each close charged each limiter is noted when the engine closes it (`Shared::closed`),
//! so that the books can be checked against it, whether its isolate lived or not.

use std::rc::Rc;

use gateway_core::account::admission::{Admission, Admitted, Options, Renewal};
use gateway_core::account::limits::local::{Flush, LeaseTable};
use gateway_core::account::limits::ops::{LimiterAnswer, Op};
use gateway_core::account::limits::Refusal;
use gateway_core::attempt::Books;
use gateway_core::attempt::Health;
use gateway_core::engine::Target;
use gateway_core::money::pricing::Usd;

use crate::sim::{Granted, Shared};

/// One isolate: its leases, and the worst cases of its reservations not yet acknowledged
/// settled (what its death may cost, with its leases' stake).
pub struct Isolate {
    pub table: std::cell::RefCell<LeaseTable>,
    pub reserved: std::cell::Cell<Usd>,
}

impl Isolate {
    pub fn new(n: usize) -> Isolate {
        Isolate {
            table: std::cell::RefCell::new(LeaseTable::new(format!("isolate-{n}"), 0)),
            reserved: Default::default(),
        }
    }

    /// The most the limiters may charge if it dies now.
    pub fn at_stake(&self, limiters: &[String]) -> Usd {
        let mut table = self.table.borrow_mut();
        limiters.iter().fold(self.reserved.get(), |sum, name| sum.saturating_add(table.slot(name).local.at_stake()))
    }
}

/// An attempt admitted.
pub struct Held {
    pub admitted: Admitted,
}

impl Shared {
    /// One call to limiter `name`: a round trip, during which other tasks move. With `lossy`,
    /// its answer may be lost, the operation applied or not.
    pub async fn call(&self, name: &str, op: Op, lossy: bool) -> Result<LimiterAnswer, String> {
        self.clock.yield_now().await;
        let roll = if lossy { self.faults.borrow_mut().below(100) } else { 100 };
        if roll < 3 {
            return Err("the call failed on its way".to_owned());
        }
        let answer = self.limiters.borrow_mut().entry(name.to_owned()).or_default().handle(op, self.clock.now());
        // The thresholds it crossed are posted whatever becomes of the answer: the limiter
        // announces each once, and the shell posts what it hears.
        self.note_alerts(&answer.alerts);
        if roll < 6 {
            return Err("its answer was lost".to_owned());
        }
        Ok(answer)
    }

    /// A message that left its isolate: it reaches the limiter within a few ms, whatever
    /// becomes of the isolate.
    fn dispatch(self: &Rc<Self>, name: String, op: Op) {
        let (shared, delay) = (self.clone(), self.faults.borrow_mut().below(4));
        self.clock.spawn(async move {
            shared.clock.sleep(delay).await;
            let now = shared.clock.now();
            let answer = shared.limiters.borrow_mut().entry(name).or_default().handle(op, now);
            shared.note_alerts(&answer.alerts);
        });
    }

    /// Admits one attempt on `target` in isolate `iso` by the provider's limiter and the
    /// scope's: the core's admission, its calls made with their answers in any order.
    pub async fn admit(self: &Rc<Self>, iso: usize, target: &Target<'_>, provider: usize) -> Result<Held, Refusal> {
        let scopes: Vec<_> = self.scope.iter().cloned().collect();
        let options = Options { leases: self.leases, reservation_ttl_ms: 0 };
        let model = target.model();
        let mut admission = Admission::new(target.provider, model, target.limits, &scopes, target.worst_case, options);
        let isolate = &self.isolates[iso];
        let mut calls = admission.begin(&mut isolate.table.borrow_mut(), self.next_seq(), self.clock.now());
        // Each call may be granted, whatever becomes of this task: at stake until decided.
        let asked = Usd(target.worst_case.pico().saturating_mul(calls.len() as u64));
        isolate.reserved.set(isolate.reserved.get().saturating_add(asked));
        // The calls go at once: their answers come in any order.
        for i in (1..calls.len()).rev() {
            let j = self.faults.borrow_mut().below(i as u64 + 1) as usize;
            calls.swap(i, j);
        }
        for call in calls {
            let reply = self.call(&call.limiter, call.op, self.lossy).await;
            if reply.is_err() {
                self.count("admission_answer_lost");
            }
            admission.reply(call.part, reply, &mut isolate.table.borrow_mut());
        }
        let now = self.clock.now();
        let decided = admission.decide(&mut isolate.table.borrow_mut(), now);
        isolate.reserved.set(isolate.reserved.get().saturating_sub(asked));
        for (name, op) in decided.dispatch {
            self.dispatch(name, op);
        }
        match decided.result {
            Err(refusal) => {
                match () {
                    _ if refusal.model_unavailable => self.count("skipped_model_unavailable"),
                    _ if refusal.ends_request.is_some() => self.count("scope_refused"),
                    _ if refusal.is_limiter_unavailable() => self.count("limiter_unavailable"),
                    _ => self.count("refused"),
                }
                Err(refusal)
            }
            Ok(admitted) => {
                let leased = admitted.under_lease(target.provider);
                self.count(if leased { "leased" } else { "reserved" });
                let seq = self.next_seq();
                let model = model.to_owned();
                self.granted.borrow_mut().push(Granted { provider, model, seq, at: now, leased });
                let reserved = Usd(admitted.amount().pico().saturating_mul(admitted.reservations() as u64));
                isolate.reserved.set(isolate.reserved.get().saturating_add(reserved));
                Ok(Held { admitted })
            }
        }
    }

    /// Closes an admission as the books say, in the background of its isolate (`delay` ms
    /// later); request `request`'s rows wait until every limiter acknowledged it.
    pub fn close(self: &Rc<Self>, iso: usize, request: usize, held: Held, books: Books, health: Health, delay: u64) {
        let (amount, charge) = (held.admitted.amount(), books.charge(held.admitted.amount()));
        let closing = held.admitted.close(books, health, &mut self.isolates[iso].table.borrow_mut(), self.clock.now());
        let names = closing.settles.iter().map(|(name, _, _)| name).chain(closing.tickets.iter().map(|(name, _)| name));
        for name in names {
            let mut closed = self.closed.borrow_mut();
            let e = closed[request].entry(name.clone()).or_insert(Usd::ZERO);
            *e = e.saturating_add(charge);
        }
        self.pending.borrow_mut()[request] += 1;
        let shared = self.clone();
        self.clock.spawn_in(iso, async move {
            shared.clock.sleep(delay).await;
            for (name, op, policy) in closing.settles {
                // A settle is idempotent (a second finds nothing): sent until it is answered.
                while shared.call(&name, op.clone(), shared.lossy).await.is_err() {}
                let isolate = &shared.isolates[iso];
                isolate.reserved.set(isolate.reserved.get().saturating_sub(amount));
                if policy.is_some() {
                    shared.plan_give_back(iso, &name, policy);
                }
            }
            for renewal in closing.renewals {
                shared.renew(iso, renewal).await;
            }
            for (name, n) in closing.tickets {
                shared.flush(iso, &name, n).await;
            }
            for (name, policy, until) in closing.quiet {
                shared.give_back_at(iso, name, policy, until);
            }
            shared.pending.borrow_mut()[request] -= 1;
        });
    }

    /// Gets ticket `n`'s settle at limiter `name` acknowledged: batches, one at a time.
    async fn flush(&self, iso: usize, name: &str, n: u64) {
        loop {
            let step = self.isolates[iso].table.borrow_mut().flush(name, n, self.clock.now());
            match step {
                Flush::Done => return,
                Flush::Send { no, op } => {
                    let answer = self.call(name, *op, self.lossy).await;
                    self.isolates[iso].table.borrow_mut().end_flush(name, no, answer.as_ref().ok());
                }
                Flush::Wait => self.clock.sleep(1).await,
            }
        }
    }

    async fn renew(&self, iso: usize, renewal: Renewal) {
        self.count("lease_sync");
        let answer = self.call(&renewal.limiter, renewal.op(), self.lossy).await;
        self.isolates[iso].table.borrow_mut().end_sync(&renewal, answer.as_ref().ok());
    }

    fn plan_give_back(self: &Rc<Self>, iso: usize, name: &str, policy: Option<gateway_core::account::limits::Policy>) {
        let Some(policy) = policy else { return };
        let until = self.isolates[iso].table.borrow_mut().plan_give_back(name, self.clock.now());
        if let Some(until) = until {
            self.give_back_at(iso, name.to_owned(), policy, until);
        }
    }

    fn give_back_at(
        self: &Rc<Self>,
        iso: usize,
        name: String,
        policy: gateway_core::account::limits::Policy,
        until: u64,
    ) {
        let shared = self.clone();
        self.clock.spawn_in(iso, async move {
            shared.clock.sleep(until.saturating_sub(shared.clock.now())).await;
            let renewal = shared.isolates[iso].table.borrow_mut().give_back(&name, policy, until, shared.clock.now());
            if let Some(renewal) = renewal {
                shared.renew(iso, renewal).await;
            }
        });
    }

    /// Kills isolate `iso` at `at`: what it had at stake is noted, and its tasks stop.
    pub fn kill_at(self: &Rc<Self>, iso: usize, at: u64) {
        let shared = self.clone();
        self.clock.spawn(async move {
            shared.clock.sleep(at.saturating_sub(shared.clock.now())).await;
            let names: Vec<String> = shared.limiters.borrow().keys().cloned().collect();
            let stake = shared.isolates[iso].at_stake(&names);
            shared.at_stake.set(shared.at_stake.get().saturating_add(stake));
            shared.count("isolate_killed");
            shared.clock.kill(iso);
        });
    }
}
