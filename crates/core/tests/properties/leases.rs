//! `leases`: the limiter's per-isolate leases (`account/limits/lease.rs`) over random
//! interleavings of requests (admitted under a lease, or reserved at the limiter), settles,
//! cancels, renewals, returns, answers processed late or lost, reports given up and delivered
//! after newer ones (out of order), time passing (leases expiring, midnight), isolates dying and
//! new ones starting.
//!
//! A model keeps the truth — what every admitted request really cost, what is still in flight,
//! when each admission happened — and after every step checks what the limiter promises:
//!
//! - **no overspend**: spent + the worst case of everything in flight ≤ the daily budget;
//! - **strict books**: the limiter's committed total (spent + reserved + leased) ≥ that truth;
//! - **rate**: every admission is counted by the limiter for 60 seconds after it happened, and
//!   no 60-second span holds more admissions than the limit;
//! - at the end, once every live isolate has settled and given its lease back and every lease
//!   has expired: the limiter's spend equals the truth exactly, unless isolates died (then it
//!   is above it by at most the leases they held) or answers were lost (above it).

use gateway_core::account::breaker::Health;
use gateway_core::account::limits::lease::{LeaseGrant, LeaseSync, Local, Ticket, LEASE_TTL_MS};
use gateway_core::account::limits::{LimiterState, Policy, DAY_MS, WINDOW_MS};
use gateway_core::account::pricing::Usd;
use proptest::prelude::*;

use crate::cases;

#[derive(Debug, Clone)]
enum Step {
    /// A request of worst case `worst` (pUSD); `now`: its lease request is answered at once.
    Request {
        iso: usize,
        worst: u64,
        now: bool,
    },
    /// Ends one in-flight request: `permille` of its worst case (> 1000: cost unknown).
    Settle {
        iso: usize,
        pick: usize,
        permille: u32,
        failed: bool,
    },
    Cancel {
        iso: usize,
        pick: usize,
    },
    Renew {
        iso: usize,
    },
    Return {
        iso: usize,
    },
    /// The limiter handles the isolate's pending report.
    Process {
        iso: usize,
    },
    /// A report whose isolate stopped waiting for it (its answer lost, given up, or the
    /// isolate dead) reaches the limiter after all, possibly after newer ones.
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
        6 => (iso.clone(), 1..40u64, any::<bool>()).prop_map(|(iso, w, now)| Step::Request { iso, worst: w * 1_000, now }),
        4 => (iso.clone(), any::<usize>(), 0..1100u32, prop::bool::weighted(0.1))
            .prop_map(|(iso, pick, permille, failed)| Step::Settle { iso, pick, permille, failed }),
        1 => (iso.clone(), any::<usize>()).prop_map(|(iso, pick)| Step::Cancel { iso, pick }),
        2 => iso.clone().prop_map(|iso| Step::Renew { iso }),
        1 => iso.clone().prop_map(|iso| Step::Return { iso }),
        2 => iso.clone().prop_map(|iso| Step::Process { iso }),
        1 => any::<usize>().prop_map(|pick| Step::Stray { pick }),
        2 => (iso.clone(), prop::bool::weighted(0.05)).prop_map(|(iso, lost)| Step::Arrive { iso, lost }),
        3 => prop_oneof![0..200u64, 0..3_000u64, 5_000..12_000u64].prop_map(|ms| Step::Advance { ms }),
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
}

struct Pending {
    sync: LeaseSync,
    answer: Option<LeaseGrant>,
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
    /// Time stays within 14 minutes of this: longer requests outlive their reservations.
    start: u64,
    /// The limiter's clock minus the isolates' (within the leases' margin).
    skew: i64,
    policy: Policy,
    limiter: LimiterState,
    isolates: Vec<Isolate>,
    next_id: u64,
    /// Admission times (cancelled ones removed), with an id to remove them by.
    admissions: Vec<(u64, u64)>,
    /// Real spend per day, and what every admission of today may still cost.
    spent: std::collections::HashMap<u64, Usd>,
    /// Requests of dead isolates still held by the limiter (reservations until they expire).
    orphans: Vec<Request>,
    lost_answers: bool,
    /// Reports sent and no longer waited for, not yet processed.
    strays: Vec<LeaseSync>,
    /// Leases dead isolates held at their death (today's), which the limiter charges in full.
    stranded: Usd,
    deaths_today: bool,
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
            lost_answers: false,
            strays: Vec::new(),
            stranded: Usd::ZERO,
            deaths_today: false,
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

    /// The isolate's report that stopped being waited for: it may still reach the limiter,
    /// and its figures may be counted twice (so the books may end above the truth).
    fn abandon(&mut self, p: Pending) {
        self.lost_answers = true;
        if p.answer.is_none() {
            self.strays.push(p.sync);
        }
    }

    /// The model's pending report, if its isolate gave it up meanwhile (unanswered too long).
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

    fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        let (now, limiter_now) = (self.now, self.at_limiter());
        match *step {
            Step::Request { iso: i, worst, now: at_once } => {
                if !self.isolates[i].alive {
                    return Ok(());
                }
                let worst = Usd(worst);
                let day = self.today();
                let held = if let Some(ticket) = self.isolates[i].local.admit(None, worst, now) {
                    Some(InFlight::Leased(ticket))
                } else {
                    self.next_id += 1;
                    let id = format!("r{}", self.next_id);
                    // The request's own call to the limiter also carries the isolate's report
                    // and asks for a lease, when the isolate is busy or holds something.
                    self.notice_given_up(i);
                    let iso = &mut self.isolates[i];
                    let sync = iso.local.report_with_request(&iso.id, worst, now);
                    let (reserved, grant) =
                        self.limiter.reserve_with_report(&id, None, worst, self.policy, sync.as_ref(), limiter_now);
                    if let Some(sync) = sync {
                        iso.pending = Some(Pending { sync, answer: grant });
                    }
                    if at_once {
                        self.arrive(i, false);
                    }
                    reserved.is_ok().then_some(InFlight::Reserved(id))
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
                    self.isolates[i].requests.push(Request { held, worst, day, at: admission });
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
                    InFlight::Reserved(id) => self.limiter.settle(&id, actual, health, limiter_now),
                }
                self.spend(r.day, actual.unwrap_or(r.worst));
            }
            Step::Cancel { iso: i, pick } => {
                let iso = &mut self.isolates[i];
                if !iso.alive || iso.requests.is_empty() {
                    return Ok(());
                }
                let r = iso.requests.swap_remove(pick % iso.requests.len());
                match r.held {
                    InFlight::Leased(ticket) => iso.local.cancel(ticket),
                    InFlight::Reserved(id) => self.limiter.cancel(&id, limiter_now),
                }
                self.admissions.retain(|&(_, a)| a != r.at);
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
                    // A lease granted to no one waiting: charged in full at its expiry.
                    self.lost_answers = true;
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
                let before = self.today();
                self.now += ms;
                if self.today() != before {
                    self.deaths_today = false;
                    self.stranded = Usd::ZERO;
                    self.lost_answers = false;
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
                let leased = self.limiter.lease_charge(&iso.id);
                let requests = std::mem::take(&mut iso.requests);
                // Its report, if it was sent, may still reach the limiter.
                if let Some(p) = pending {
                    self.abandon(p);
                }
                self.stranded = self.stranded.saturating_add(leased);
                self.deaths_today = true;
                for r in requests {
                    match r.held {
                        // Under its lease, as if the provider billed each its worst case.
                        InFlight::Leased(_) => {
                            if r.day == today {
                                self.spend(r.day, r.worst);
                            }
                        }
                        InFlight::Reserved(_) => self.orphans.push(r),
                    }
                }
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

    /// Every live isolate settles and gives its lease back, every lease expires.
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
        let day = self.today();
        self.now += LEASE_TTL_MS + 1;
        if self.today() != day {
            return Ok(()); // the books were checked step by step; today's are empty
        }
        let snap = self.limiter.snapshot(self.at_limiter());
        prop_assert_eq!(snap.leases, 0, "every lease given back or expired");
        let truth = self.spent.get(&day).copied().unwrap_or(Usd::ZERO);
        prop_assert!(snap.spent_usd >= truth, "reported spend lost: {} < {truth}", snap.spent_usd);
        let over = snap.spent_usd.saturating_sub(truth);
        if !self.lost_answers {
            prop_assert!(over <= self.stranded, "charged {over} over the truth, dead isolates held {}", self.stranded);
            if !self.deaths_today {
                prop_assert_eq!(snap.spent_usd, truth, "the books balance");
            }
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
        steps in prop::collection::vec(step(), 1..250),
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
    fn leases_take_most_requests_off_the_limiter(isolates in 1..4usize, gap_ms in 1..50u64) {
        let policy = Policy { requests_per_minute: 100_000, daily_budget: Usd::from_dollars(1_000), breaker: None };
        let mut limiter = LimiterState::default();
        let mut locals: Vec<Local> = (0..isolates).map(|_| Local::default()).collect();
        let mut now = 20_000 * DAY_MS + 3_600_000;
        let (mut asked, mut local_admissions, total) = (0, 0, 2_000);
        for n in 0..total {
            let local = &mut locals[n % isolates];
            let worst = Usd(1_000_000);
            match local.admit(None, worst, now) {
                Some(ticket) => {
                    local_admissions += 1;
                    local.settle(ticket, Some(Usd(10)), Health::Healthy)
                }
                None => {
                    asked += 1;
                    let sync = local.report_with_request(&format!("iso{}", n % isolates), worst, now);
                    let (reserved, grant) = limiter.reserve_with_report(&format!("r{n}"), None, worst, policy, sync.as_ref(), now);
                    reserved.unwrap();
                    limiter.settle(&format!("r{n}"), Some(Usd(10)), Health::Healthy, now);
                    if let (Some(sync), Some(grant)) = (sync, grant) {
                        local.end_sync(sync.epoch, Some(grant));
                    }
                }
            }
            if let Some(sync) = local.renewal(&format!("iso{}", n % isolates), worst, now) {
                asked += 1;
                let grant = limiter.sync_lease(&sync, policy, now);
                local.end_sync(sync.epoch, Some(grant));
            }
            now += gap_ms;
        }
        prop_assert!(asked * 5 < total, "{asked} of {total} requests asked the limiter");
        // Everything reported and given back: the books say what was spent.
        for (i, local) in locals.iter_mut().enumerate() {
            let sync = local.hand_in(&format!("iso{i}"), now).unwrap();
            let grant = limiter.sync_lease(&sync, policy, now);
            local.end_sync(sync.epoch, Some(grant));
        }
        let snap = limiter.snapshot(now);
        prop_assert_eq!(snap.spent_usd, Usd(10 * total as u64));
        prop_assert_eq!(snap.admitted_under_leases, local_admissions, "every local admission reported");
    }
}
