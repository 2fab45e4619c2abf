//! `leases`: the limiter's per-isolate leases (`account/limits/lease.rs`, `local.rs`,
//! `tickets.rs`) over random interleavings of requests (admitted under a lease, or reserved at
//! the limiter), upstream calls, settles, cancels, renewals, returns, answers processed late or
//! lost, reports given up and delivered after newer ones, admission and settle reports delivered
//! in any order and twice, time passing (leases and reservations expiring, midnight), isolates
//! dying at every point of a request's life and new ones starting.
//!
//! A model keeps the truth — what every admitted request really cost, what is still in flight,
//! when each admission happened — and after every step checks what the limiter promises:
//!
//! - **no overspend**: spent + the worst case of everything in flight ≤ the daily budget;
//! - **books ≥ truth**: the limiter's committed total (spent + reserved + leased) ≥ that truth;
//! - **rate**: every admission is counted by the limiter for 60 seconds after it happened, and
//!   no 60-second span holds more admissions than the limit;
//!
//! and at the end, once every live isolate has settled, reported and given its lease back and
//! every lease and reservation has expired:
//!
//! - **the books balance**: the limiter's spend is the truth, to the picodollar, plus what it
//!   charged for requests whose isolate died (`isolate_died_usd`), which is zero when no
//!   isolate died — whatever answers were lost or came late;
//! - **a dead isolate costs at most what it had in flight**: that figure is at most the worst
//!   cases of the dead isolates' requests admitted and not acknowledged settled at their death
//!   (so nothing, for one that died with nothing in flight), and the books are above the truth
//!   by no more than it.
//!
//! An admission report reaches the limiter whenever its request's upstream call was made (the
//! assumption the design states): the model delivers every report sent, and delivers all
//! admission reports before time moves on (within the lease's margin).

use gateway_core::account::limits::lease::{LeaseGrant, LeaseSync, Local, Ticket, LEASE_TTL_MS};
use gateway_core::account::limits::tickets::{TicketReport, TicketSettles};
use gateway_core::account::limits::{LimiterState, Policy, DAY_MS, LOST_KEPT, WINDOW_MS};
use gateway_core::attempt::Health;
use gateway_core::money::pricing::Usd;
use proptest::prelude::*;

use crate::cases;

/// Reservations live this long here: shorter than the requests may run, so that late settles
/// of expired reservations are exercised.
const RESERVATION_TTL_MS: u64 = 30_000;

#[derive(Debug, Clone)]
enum Step {
    /// A request of worst case `worst` (pUSD); `now`: its lease request is answered at once;
    /// `refused`: another limiter of the attempt refused it (all or nothing: taken back).
    Request {
        iso: usize,
        worst: u64,
        now: bool,
        refused: bool,
    },
    /// `count` requests of one isolate at once (busy: it asks for a lease).
    Burst {
        iso: usize,
        count: usize,
        worst: u64,
    },
    /// An admitted request's upstream call is made: from now on it may be billed.
    Call {
        iso: usize,
        pick: usize,
    },
    /// Ends one in-flight request: `permille` of its worst case (> 1000: cost unknown).
    Settle {
        iso: usize,
        pick: usize,
        permille: u32,
        failed: bool,
    },
    /// A reservation taken back later (its cancel reaches the limiter).
    Cancel {
        iso: usize,
        pick: usize,
    },
    /// The isolate sends a batch of its settles.
    Report {
        iso: usize,
    },
    /// A message on its way reaches the limiter (`applied`), and its answer the isolate
    /// (`answered`); or the call fails on the way (neither).
    Deliver {
        pick: usize,
        applied: bool,
        answered: bool,
    },
    /// A message the limiter applied reaches it again.
    Again {
        pick: usize,
    },
    Renew {
        iso: usize,
    },
    Return {
        iso: usize,
    },
    /// The limiter handles the isolate's pending renewal.
    Process {
        iso: usize,
    },
    /// A renewal whose isolate stopped waiting for it reaches the limiter after all.
    Stray {
        pick: usize,
    },
    /// Its answer arrives (processing it first if need be), or is lost.
    Arrive {
        iso: usize,
        lost: bool,
    },
    Advance {
        ms: u64,
    },
    Kill {
        iso: usize,
    },
    Start {
        iso: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let iso = 0..3usize;
    prop_oneof![
        6 => (iso.clone(), 1..40u64, any::<bool>(), prop::bool::weighted(0.1))
            .prop_map(|(iso, w, now, refused)| Step::Request { iso, worst: w * 1_000, now, refused }),
        2 => (iso.clone(), 4..12usize, 1..20u64).prop_map(|(iso, count, w)| Step::Burst { iso, count, worst: w * 1_000 }),
        3 => (iso.clone(), any::<usize>()).prop_map(|(iso, pick)| Step::Call { iso, pick }),
        4 => (iso.clone(), any::<usize>(), 0..1100u32, prop::bool::weighted(0.1))
            .prop_map(|(iso, pick, permille, failed)| Step::Settle { iso, pick, permille, failed }),
        1 => (iso.clone(), any::<usize>()).prop_map(|(iso, pick)| Step::Cancel { iso, pick }),
        3 => iso.clone().prop_map(|iso| Step::Report { iso }),
        5 => (any::<usize>(), prop::bool::weighted(0.95), prop::bool::weighted(0.9))
            .prop_map(|(pick, applied, answered)| Step::Deliver { pick, applied, answered }),
        1 => any::<usize>().prop_map(|pick| Step::Again { pick }),
        2 => iso.clone().prop_map(|iso| Step::Renew { iso }),
        1 => iso.clone().prop_map(|iso| Step::Return { iso }),
        2 => iso.clone().prop_map(|iso| Step::Process { iso }),
        1 => any::<usize>().prop_map(|pick| Step::Stray { pick }),
        2 => (iso.clone(), prop::bool::weighted(0.05)).prop_map(|(iso, lost)| Step::Arrive { iso, lost }),
        3 => prop_oneof![4 => 0..200u64, 2 => 0..3_000u64, 1 => 5_000..12_000u64, 1 => 25_000..40_000u64]
            .prop_map(|ms| Step::Advance { ms }),
        1 => iso.clone().prop_map(|iso| Step::Kill { iso }),
        1 => iso.prop_map(|iso| Step::Start { iso }),
    ]
}

enum InFlight {
    Leased(Ticket),
    Reserved(String),
}

struct Request {
    held: InFlight,
    worst: Usd,
    day: u64,
    /// Its admission's id (in `World::admissions`).
    at: u64,
    /// Its upstream call was made: it may be billed.
    called: bool,
    /// A reservation's expiry (the limiter's clock).
    expires: u64,
}

struct Pending {
    sync: LeaseSync,
    answer: Option<LeaseGrant>,
}

/// A message from an isolate to the limiter, not awaited by a request.
#[derive(Clone)]
enum Mail {
    Admitted(TicketReport),
    /// A batch of settles from isolate `iso` (its batch number `no`).
    Settles {
        iso: usize,
        isolate: String,
        no: u64,
        settles: TicketSettles,
    },
}

struct Isolate {
    id: String,
    local: Local,
    alive: bool,
    requests: Vec<Request>,
    pending: Option<Pending>,
}

struct World {
    now: u64,
    /// Time stays within 14 minutes of this.
    start: u64,
    /// The limiter's clock minus the isolates' (within the leases' margin).
    skew: i64,
    policy: Policy,
    limiter: LimiterState,
    isolates: Vec<Isolate>,
    next_id: u64,
    /// Admission times (cancelled ones removed), with an id to remove them by.
    admissions: Vec<(u64, u64)>,
    /// Real spend per day.
    spent: std::collections::HashMap<u64, Usd>,
    /// Reservations of dead isolates, held by the limiter until they expire (their requests
    /// may have been billed their worst case).
    orphans: Vec<Request>,
    /// Messages on their way to the limiter, and those it applied (to deliver again).
    mail: Vec<Mail>,
    delivered: Vec<Mail>,
    /// Renewals sent and no longer waited for, not yet processed.
    strays: Vec<LeaseSync>,
    /// What today's dead isolates had at stake at their death: the most the limiter may charge
    /// for them.
    at_stake: Usd,
    /// Reservations that expired before their settle (today's and yesterday's): beyond
    /// [`LOST_KEPT`], the limiter forgets the earliest, and their late settle leaves the worst
    /// case charged (above the truth, within the figure shown).
    lost: usize,
}

impl World {
    fn new(rpm: u32, budget: u64, start: u64, skew: i64) -> World {
        let policy = Policy { requests_per_minute: rpm, daily_budget: Usd(budget), breaker: None };
        let mut w = World {
            now: start,
            start,
            skew,
            policy,
            limiter: LimiterState::default(),
            isolates: Vec::new(),
            next_id: 0,
            admissions: Vec::new(),
            spent: Default::default(),
            orphans: Vec::new(),
            mail: Vec::new(),
            delivered: Vec::new(),
            strays: Vec::new(),
            at_stake: Usd::ZERO,
            lost: 0,
        };
        for _ in 0..3 {
            let iso = w.isolate();
            w.isolates.push(iso);
        }
        w
    }

    fn isolate(&mut self) -> Isolate {
        self.next_id += 1;
        Isolate {
            id: format!("iso-{}", self.next_id),
            local: Local::default(),
            alive: true,
            requests: Vec::new(),
            pending: None,
        }
    }

    /// The limiter's now.
    fn at_limiter(&self) -> u64 {
        self.now.saturating_add_signed(self.skew)
    }

    /// Days are the limiter's: its clock decides which day a reservation or a lease counts on.
    fn today(&self) -> u64 {
        self.at_limiter() / DAY_MS
    }

    fn spend(&mut self, day: u64, amount: Usd) {
        let e = self.spent.entry(day).or_insert(Usd::ZERO);
        *e = e.saturating_add(amount);
    }

    /// The isolate's renewal that stopped being waited for: it may still reach the limiter.
    fn abandon(&mut self, p: Pending) {
        if p.answer.is_none() {
            self.strays.push(p.sync);
        }
    }

    /// The model's pending renewal, if its isolate gave it up meanwhile (unanswered too long).
    fn notice_given_up(&mut self, i: usize) {
        let now = self.now;
        let iso = &mut self.isolates[i];
        let waited = iso.pending.as_ref().map(|p| p.sync.epoch);
        if waited.is_some() && iso.local.report_under_way(now) != waited {
            let p = iso.pending.take().unwrap();
            self.abandon(p);
        }
    }

    fn begin(&mut self, i: usize, want: u32, per_request: Usd) {
        self.notice_given_up(i);
        let now = self.now;
        let iso = &mut self.isolates[i];
        if let Some(sync) = iso.local.begin_sync(&iso.id, want, per_request, now) {
            iso.pending = Some(Pending { sync, answer: None });
        }
    }

    fn process(&mut self, i: usize) {
        let (policy, now) = (self.policy, self.at_limiter());
        if let Some(p) = &mut self.isolates[i].pending {
            if p.answer.is_none() {
                p.answer = Some(self.limiter.sync_lease(&p.sync, policy, now));
            }
        }
    }

    fn arrive(&mut self, i: usize, lost: bool) {
        self.notice_given_up(i);
        if !lost {
            self.process(i);
        }
        let Some(p) = self.isolates[i].pending.take() else { return };
        let answer = if lost { None } else { p.answer.clone() };
        self.isolates[i].local.end_sync(p.sync.epoch, answer);
        if lost {
            self.abandon(p);
        }
    }

    fn apply_mail(&mut self, mail: &Mail) {
        let now = self.at_limiter();
        match mail {
            Mail::Admitted(report) => self.limiter.ticket_admitted(report, now),
            Mail::Settles { settles, .. } => self.limiter.tickets_settled(settles, now),
        }
    }

    /// Every admission report on its way reaches the limiter (before time moves past the
    /// leases' margin).
    fn deliver_admissions(&mut self) {
        let (admissions, rest): (Vec<Mail>, Vec<Mail>) =
            std::mem::take(&mut self.mail).into_iter().partition(|m| matches!(m, Mail::Admitted(_)));
        self.mail = rest;
        for mail in admissions {
            self.apply_mail(&mail);
            self.delivered.push(mail);
        }
    }

    fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let (now, limiter_now) = (self.now, self.at_limiter());
        match *step {
            Step::Request { iso: i, worst, now: at_once, refused } => {
                if !self.isolates[i].alive {
                    return Ok(());
                }
                let worst = Usd(worst);
                let day = self.today();
                let held = if let Some(ticket) = self.isolates[i].local.admit(None, worst, now) {
                    if refused {
                        self.isolates[i].local.cancel(ticket);
                        None
                    } else {
                        // Admitted: its admission is reported before its upstream call is made.
                        self.isolates[i].local.confirm(ticket);
                        self.mail.push(Mail::Admitted(ticket.report(&self.isolates[i].id)));
                        Some(InFlight::Leased(ticket))
                    }
                } else {
                    self.next_id += 1;
                    let id = format!("r{}", self.next_id);
                    // The request's own call to the limiter also carries the isolate's report
                    // and asks for a lease, when the isolate is busy or holds something.
                    self.notice_given_up(i);
                    let iso = &mut self.isolates[i];
                    let sync = iso.local.report_with_request(&iso.id, worst, now);
                    let (reserved, grant) = self.limiter.reserve_with_report(
                        &id,
                        None,
                        worst,
                        self.policy,
                        sync.as_ref(),
                        RESERVATION_TTL_MS,
                        limiter_now,
                    );
                    if let Some(sync) = sync {
                        iso.pending = Some(Pending { sync, answer: grant });
                    }
                    if at_once {
                        self.arrive(i, false);
                    }
                    match reserved {
                        Ok(()) if refused => {
                            self.limiter.cancel(&id, limiter_now);
                            None
                        }
                        Ok(()) => Some(InFlight::Reserved(id)),
                        Err(_) => None,
                    }
                };
                if let Some(held) = held {
                    self.next_id += 1;
                    let admission = self.next_id;
                    let in_window = self.admissions.iter().filter(|&&(t, _)| t + WINDOW_MS > now).count();
                    prop_assert!(
                        in_window < self.policy.requests_per_minute as usize,
                        "admission {} within a minute of {} others (limit {})",
                        admission,
                        in_window,
                        self.policy.requests_per_minute
                    );
                    self.admissions.push((now, admission));
                    let expires = limiter_now + RESERVATION_TTL_MS;
                    self.isolates[i].requests.push(Request { held, worst, day, at: admission, called: false, expires });
                }
            }
            Step::Burst { iso, count, worst } => {
                for k in 0..count {
                    self.apply(&Step::Request { iso, worst, now: k % 3 == 0, refused: false })?;
                    self.check()?;
                }
            }
            Step::Call { iso: i, pick } => {
                let iso = &mut self.isolates[i];
                if iso.alive && !iso.requests.is_empty() {
                    let n = iso.requests.len();
                    iso.requests[pick % n].called = true;
                }
            }
            Step::Settle { iso: i, pick, permille, failed } => {
                let iso = &mut self.isolates[i];
                if !iso.alive || iso.requests.is_empty() {
                    return Ok(());
                }
                let r = iso.requests.swap_remove(pick % iso.requests.len());
                let actual = (permille <= 1000).then(|| Usd(r.worst.pico() * u64::from(permille) / 1000));
                let health = if failed { Health::Failed } else { Health::Healthy };
                match r.held {
                    InFlight::Leased(ticket) => iso.local.settle(ticket, actual, health),
                    InFlight::Reserved(id) => {
                        self.lost += usize::from(limiter_now >= r.expires);
                        self.limiter.settle(&id, actual, health, limiter_now)
                    }
                }
                self.spend(r.day, actual.unwrap_or(r.worst));
            }
            Step::Cancel { iso: i, pick } => {
                let iso = &mut self.isolates[i];
                let reserved: Vec<usize> = (0..iso.requests.len())
                    .filter(|&k| matches!(iso.requests[k].held, InFlight::Reserved(_)) && !iso.requests[k].called)
                    .collect();
                if !iso.alive || reserved.is_empty() {
                    return Ok(());
                }
                let r = iso.requests.swap_remove(reserved[pick % reserved.len()]);
                if let InFlight::Reserved(id) = r.held {
                    self.limiter.cancel(&id, limiter_now);
                }
                self.admissions.retain(|&(_, a)| a != r.at);
            }
            Step::Report { iso: i } => {
                let iso = &mut self.isolates[i];
                if iso.alive {
                    if let Some((no, settles)) = iso.local.settle_report(&iso.id, now) {
                        self.mail.push(Mail::Settles { iso: i, isolate: iso.id.clone(), no, settles });
                    }
                }
            }
            Step::Deliver { pick, applied, answered } => {
                if self.mail.is_empty() {
                    return Ok(());
                }
                let mail = self.mail.remove(pick % self.mail.len());
                // An admission report is always delivered (the stated assumption).
                let applied = applied || matches!(mail, Mail::Admitted(_));
                if applied {
                    self.apply_mail(&mail);
                    self.delivered.push(mail.clone());
                }
                if let Mail::Settles { iso, isolate, no, .. } = mail {
                    let iso = &mut self.isolates[iso];
                    if iso.alive && iso.id == isolate {
                        iso.local.end_settle_report(no, applied && answered);
                    }
                }
            }
            Step::Again { pick } => {
                if !self.delivered.is_empty() {
                    let mail = self.delivered[pick % self.delivered.len()].clone();
                    self.apply_mail(&mail);
                }
            }
            Step::Renew { iso: i } => {
                if self.isolates[i].alive {
                    // As a request's end does it when due; otherwise asked anyway.
                    self.notice_given_up(i);
                    let iso = &mut self.isolates[i];
                    if let Some(sync) = iso.local.renewal(&iso.id, Usd(20_000), now) {
                        iso.pending = Some(Pending { sync, answer: None });
                    } else {
                        let want = iso.local.want(now);
                        self.begin(i, want, Usd(20_000));
                    }
                }
            }
            Step::Return { iso: i } => {
                if self.isolates[i].alive {
                    self.begin(i, 0, Usd(20_000));
                }
            }
            Step::Process { iso: i } => self.process(i),
            Step::Stray { pick } => {
                if !self.strays.is_empty() {
                    let sync = self.strays.remove(pick % self.strays.len());
                    self.limiter.sync_lease(&sync, self.policy, limiter_now);
                }
            }
            Step::Arrive { iso: i, lost } => {
                if self.isolates[i].alive {
                    self.arrive(i, lost);
                }
            }
            Step::Advance { ms } => {
                if self.now + ms > self.start + 14 * 60_000 {
                    return Ok(());
                }
                self.deliver_admissions();
                let before = self.today();
                self.now += ms;
                if self.today() != before {
                    // Yesterday's lost reservations are still remembered (and count).
                    self.at_stake = Usd::ZERO;
                }
            }
            Step::Kill { iso: i } => {
                let today = self.today();
                let iso = &mut self.isolates[i];
                if !iso.alive {
                    return Ok(());
                }
                iso.alive = false;
                let pending = iso.pending.take();
                let requests = std::mem::take(&mut iso.requests);
                let mut stake = iso.local.at_stake();
                // Its renewal, if it was sent, may still reach the limiter.
                if let Some(p) = pending {
                    self.abandon(p);
                }
                for r in requests {
                    match r.held {
                        // Under its lease: billed its worst case if its upstream call was
                        // made, nothing if not.
                        InFlight::Leased(_) => {
                            if r.called && r.day == today {
                                self.spend(r.day, r.worst);
                            }
                        }
                        InFlight::Reserved(_) => {
                            if r.day == today {
                                stake = stake.saturating_add(r.worst);
                            }
                            self.orphans.push(r);
                        }
                    }
                }
                self.at_stake = self.at_stake.saturating_add(stake);
            }
            Step::Start { iso: i } => {
                if !self.isolates[i].alive {
                    self.isolates[i] = self.isolate();
                }
            }
        }
        Ok(())
    }

    /// What may still be spent by what is in flight today (worst cases).
    fn in_flight_today(&self) -> Usd {
        let today = self.today();
        self.isolates
            .iter()
            .flat_map(|i| i.requests.iter())
            .chain(self.orphans.iter())
            .filter(|r| r.day == today)
            .fold(Usd::ZERO, |sum, r| sum.saturating_add(r.worst))
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        let now = self.now;
        let snap = self.limiter.snapshot(self.at_limiter());
        let truth = self.spent.get(&self.today()).copied().unwrap_or(Usd::ZERO).saturating_add(self.in_flight_today());
        prop_assert!(truth <= self.policy.daily_budget, "overspent: {truth} of {}", self.policy.daily_budget);
        let committed = snap.spent_usd.saturating_add(snap.reserved_usd).saturating_add(snap.leased_usd);
        prop_assert!(committed >= truth, "books below the truth: {committed} < {truth} ({snap:?})");
        let recent = self.admissions.iter().filter(|&&(t, _)| t + WINDOW_MS > now).count();
        let counted = snap.requests_last_minute + snap.leased_requests;
        prop_assert!(counted >= recent, "{recent} admissions in the last minute, the limiter counts {counted}");
        Ok(())
    }

    /// Every live isolate settles, reports and gives its lease back; every message arrives;
    /// every lease and reservation expires.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        for i in 0..self.isolates.len() {
            if !self.isolates[i].alive {
                continue;
            }
            self.arrive(i, false);
            while !self.isolates[i].requests.is_empty() {
                self.apply(&Step::Settle { iso: i, pick: 0, permille: 500, failed: false })?;
            }
            self.begin(i, 0, Usd(20_000));
            self.arrive(i, false);
            self.check()?;
        }
        while !self.mail.is_empty() {
            self.apply(&Step::Deliver { pick: 0, applied: true, answered: true })?;
        }
        let day = self.today();
        // The orphans' requests were billed their worst case (the most they could be).
        for r in std::mem::take(&mut self.orphans) {
            self.lost += 1;
            self.spend(r.day, r.worst);
        }
        self.now += LEASE_TTL_MS.max(RESERVATION_TTL_MS) + 1;
        if self.today() != day {
            return Ok(()); // the books were checked step by step; today's are empty
        }
        let snap = self.limiter.snapshot(self.at_limiter());
        prop_assert_eq!((snap.leases, snap.outstanding_reservations), (0, 0), "everything given back or expired");
        let truth = self.spent.get(&day).copied().unwrap_or(Usd::ZERO);
        prop_assert!(snap.spent_usd >= truth, "spend lost: {} < {truth}", snap.spent_usd);
        let forgotten = self.lost > LOST_KEPT;
        prop_assert!(
            snap.isolate_died_usd <= self.at_stake || forgotten,
            "charged {} for dead isolates, which had {} at stake",
            snap.isolate_died_usd,
            self.at_stake
        );
        prop_assert!(
            snap.spent_usd.saturating_sub(truth) <= snap.isolate_died_usd,
            "charged {} over the truth, {} of it shown",
            snap.spent_usd.saturating_sub(truth),
            snap.isolate_died_usd
        );
        if self.at_stake == Usd::ZERO && !forgotten {
            prop_assert_eq!(snap.spent_usd, truth, "the books balance");
            prop_assert_eq!(snap.isolate_died_usd, Usd::ZERO);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(cases(512))]

    /// The limits hold whatever isolates do with their leases, and the books balance.
    #[test]
    fn leases_keep_the_limits(
        rpm in prop_oneof![1..8u32, 8..400u32],
        budget_steps in 1..200u64,
        before_midnight in 0..1_200_000u64,
        skew in -900..900i64,
        steps in prop::collection::vec(step(), 1..300),
    ) {
        let start = 20_000 * DAY_MS + DAY_MS - before_midnight;
        let mut world = World::new(rpm, budget_steps * 10_000, start, skew);
        for s in &steps {
            world.apply(s)?;
            world.check()?;
        }
        world.finish()?;
    }

    /// Under steady traffic most requests are admitted without asking the limiter.
    #[test]
    fn leases_take_most_requests_off_the_limiter(isolates in 1..4usize, gap_ms in 1..40u64) {
        let policy = Policy { requests_per_minute: 100_000, daily_budget: Usd::from_dollars(1_000), breaker: None };
        let mut limiter = LimiterState::default();
        let mut locals: Vec<Local> = (0..isolates).map(|_| Local::default()).collect();
        let mut now = 20_000 * DAY_MS + 3_600_000;
        let (mut asked, mut local_admissions, total) = (0, 0, 2_000);
        for n in 0..total {
            let iso = format!("iso{}", n % isolates);
            let local = &mut locals[n % isolates];
            let worst = Usd(1_000_000);
            match local.admit(None, worst, now) {
                Some(ticket) => {
                    local_admissions += 1;
                    local.confirm(ticket);
                    limiter.ticket_admitted(&ticket.report(&iso), now);
                    local.settle(ticket, Some(Usd(10)), Health::Healthy);
                    if let Some((no, settles)) = local.settle_report(&iso, now) {
                        limiter.tickets_settled(&settles, now);
                        local.end_settle_report(no, true);
                    }
                }
                None => {
                    asked += 1;
                    let sync = local.report_with_request(&iso, worst, now);
                    let (reserved, grant) = limiter.reserve_with_report(&format!("r{n}"), None, worst, policy, sync.as_ref(), 0, now);
                    reserved.unwrap();
                    limiter.settle(&format!("r{n}"), Some(Usd(10)), Health::Healthy, now);
                    if let (Some(sync), Some(grant)) = (sync, grant) {
                        local.end_sync(sync.epoch, Some(grant));
                    }
                }
            }
            if let Some(sync) = local.renewal(&iso, worst, now) {
                asked += 1;
                let grant = limiter.sync_lease(&sync, policy, now);
                local.end_sync(sync.epoch, Some(grant));
            }
            now += gap_ms;
        }
        prop_assert!(asked * 5 < total, "{asked} of {total} requests asked the limiter");
        // Everything reported and given back: the books say what was spent.
        for (i, local) in locals.iter_mut().enumerate() {
            if let Some(sync) = local.hand_in(&format!("iso{i}"), now) {
                let grant = limiter.sync_lease(&sync, policy, now);
                local.end_sync(sync.epoch, Some(grant));
            }
        }
        let snap = limiter.snapshot(now);
        prop_assert_eq!(snap.spent_usd, Usd(10 * total as u64));
        prop_assert_eq!(snap.admitted_under_leases, local_admissions, "every local admission reported");
    }
}
