//! The simulated world: providers with the real limiter state, a scripted or random upstream,
//! requests running the real engine, and the checks after each schedule.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use gateway_core::account::breaker::BreakerPolicy;
use gateway_core::account::limits::{Policy, DAY_MS};
use gateway_core::account::scopes::{Scope, ScopeKind};
use gateway_core::attempt::AigRefusal;
use gateway_core::attempt::{books, health_of_stream};
use gateway_core::config::RetryPolicy;
use gateway_core::engine::{self, Fallback, Rules, Target};
use gateway_core::money::pricing::Usd;

use crate::checks::{
    check_alerts, check_books, check_marks, check_request, check_tool_calls, retry_gaps, Report, RequestOutcome,
};
use crate::executor::{Clock, Task};
use crate::limiters::Isolate;
use crate::sim::{end_kind, relay, target_id, Answer, Shared, Sim};
use crate::tool_calls::{AnswerCall, Dialect, IdForm, ToolAnswer};
use crate::upstream::{contract, prices, Fault, RequestUpstream, Rng, Shape, StreamPlan, JSON_OBJECT, LABELS, NAMES};

/// Somewhere in the middle of a UTC day, so that no schedule crosses midnight.
pub const START_MS: u64 = 20_000 * DAY_MS + 3_600_000;

pub struct RequestSpec {
    /// `(provider, model, worst case)` of each target.
    targets: Vec<(usize, usize, Usd)>,
    stream: bool,
    /// The `response_format` of a request that asks for JSON.
    json: Option<&'static str>,
    fallback: Fallback,
    start_ms: u64,
    deadline_ms: u64,
    faults: VecDeque<Fault>,
    plans: VecDeque<StreamPlan>,
    shapes: VecDeque<Shape>,
    /// Draws faults at random once the scripts run out (`None`: answer cleanly).
    random: Option<Rng>,
    /// The answer is these tool calls, in a provider's dialect (else text).
    tools: Option<ToolAnswer>,
    /// The isolate it runs in.
    isolate: usize,
}

impl RequestSpec {
    /// The same request, answering cleanly unless given faults.
    fn clone_for_burst(&self) -> RequestSpec {
        RequestSpec {
            targets: self.targets.clone(),
            faults: VecDeque::new(),
            plans: VecDeque::new(),
            shapes: VecDeque::new(),
            random: None,
            tools: None,
            ..*self
        }
    }
}

/// One schedule: providers, policy, and requests that run at once.
pub struct Schedule {
    policies: Vec<Policy>,
    retry: RetryPolicy,
    first_byte_ms: u64,
    idle_ms: u64,
    requests: Vec<RequestSpec>,
    /// `(provider, from, until)`: down in that span (absolute ms).
    outages: Vec<(usize, u64, u64)>,
    /// `(provider, model, from)`: the model retired from then on (absolute ms).
    retired: Vec<(usize, usize, u64)>,
    /// The repository scope's limits, if every request falls under one.
    scope: Option<Policy>,
    /// How many isolates run the requests; whether they admit under leases; whether limiter
    /// calls lose answers; which isolates die, and when (ms after the start).
    isolates: usize,
    leases: bool,
    lossy: bool,
    kills: Vec<(usize, u64)>,
    /// Seeds the limiter calls' faults and delays.
    seed: u64,
}

impl Schedule {
    pub fn generate(seed: u64) -> Schedule {
        let mut rng = Rng(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xA5A5);
        let providers = rng.range(1, 3) as usize;
        let policies = (0..providers)
            .map(|_| Policy {
                requests_per_minute: [1, 2, 4, 1000][rng.below(4) as usize],
                daily_budget: Usd([50_000, 200_000, 1_000_000_000][rng.below(3) as usize]),
                // Half the providers have a breaker, tight enough to open within a schedule.
                breaker: rng.chance(50).then(|| BreakerPolicy {
                    window_ms: 10_000,
                    min_attempts: rng.range(1, 4) as u32,
                    failure_permille: [300, 500, 1000][rng.below(3) as usize],
                    cooldown_ms: rng.range(50, 2000),
                    probes: rng.range(1, 2) as u32,
                }),
            })
            .collect();
        let retry = RetryPolicy {
            attempts_per_target: rng.range(1, 3) as u32,
            base_delay_ms: rng.range(5, 100),
            max_delay_ms: 1000,
            max_retry_after_ms: [0, 500, 5000][rng.below(3) as usize],
        };
        let first_byte_ms = rng.range(50, 800);
        let idle_ms = rng.range(20, 400);
        let requests = (0..rng.range(1, 6))
            .map(|_| {
                let native = rng.chance(25);
                let n = if native { 1 } else { rng.range(1, 3) as usize };
                let targets = (0..n)
                    .map(|_| {
                        let provider = rng.below(providers as u64) as usize;
                        (provider, usize::from(rng.chance(30)), Usd(rng.range(1_000, 40_000)))
                    })
                    .collect();
                // Some requests ask for JSON (the unified route only).
                let json = (!native && rng.chance(30)).then(|| if rng.chance(70) { LABELS } else { JSON_OBJECT });
                RequestSpec {
                    targets,
                    stream: rng.chance(50),
                    json,
                    fallback: if native { Fallback::SameTargetOnly } else { Fallback::NextTarget },
                    start_ms: rng.range(0, 50),
                    deadline_ms: rng.range(100, 4000),
                    faults: VecDeque::new(),
                    plans: VecDeque::new(),
                    shapes: VecDeque::new(),
                    random: Some(Rng(rng.next())),
                    // Some requests that do not ask for JSON are answered with tool calls.
                    tools: (json.is_none() && rng.chance(15)).then(|| tool_answer(&mut rng)),
                    isolate: 0,
                }
            })
            .collect();
        // Sometimes a provider is down for a while, whatever the requests' own faults.
        let outages = if rng.chance(30) {
            let from = rng.range(0, 500);
            vec![(rng.below(providers as u64) as usize, START_MS + from, START_MS + from + rng.range(100, 3000))]
        } else {
            Vec::new()
        };
        // Sometimes every request is of one repository with limits of its own.
        let scope = rng.chance(30).then(|| Policy {
            requests_per_minute: [1, 3, 1000][rng.below(3) as usize],
            daily_budget: Usd([30_000, 100_000, 1_000_000_000][rng.below(3) as usize]),
            breaker: None,
        });
        // Sometimes a provider retires its `old` model in the middle of the schedule.
        let retired = if rng.chance(30) {
            vec![(rng.below(providers as u64) as usize, 1, START_MS + rng.range(0, 300))]
        } else {
            Vec::new()
        };
        let mut schedule = Schedule {
            policies,
            retry,
            first_byte_ms,
            idle_ms,
            requests,
            outages,
            retired,
            scope,
            isolates: 1,
            leases: true,
            lossy: false,
            kills: Vec::new(),
            seed,
        };
        // Several isolates; sometimes a burst busy enough for leases, calls to the limiters
        // that lose answers, isolates that die mid-schedule.
        schedule.isolates = rng.range(1, 3) as usize;
        schedule.leases = rng.chance(80);
        schedule.lossy = rng.chance(20);
        let isolates = schedule.isolates as u64;
        for spec in &mut schedule.requests {
            spec.isolate = rng.below(isolates) as usize;
        }
        if rng.chance(30) {
            let template = schedule.requests[0].clone_for_burst();
            let (isolate, count) = (rng.below(isolates) as usize, rng.range(8, 16));
            for _ in 0..count {
                let mut spec = template.clone_for_burst();
                (spec.isolate, spec.start_ms, spec.random) = (isolate, rng.range(0, 400), Some(Rng(rng.next())));
                schedule.requests.push(spec);
            }
        }
        if rng.chance(25) {
            schedule.kills.push((rng.below(isolates) as usize, rng.range(0, 1_500)));
        }
        schedule
    }

    fn scripted(
        policies: Vec<Policy>,
        targets: Vec<(usize, usize, Usd)>,
        stream: bool,
        faults: Vec<Fault>,
        plans: Vec<StreamPlan>,
    ) -> Schedule {
        Schedule {
            policies,
            retry: RetryPolicy {
                attempts_per_target: 2,
                base_delay_ms: 50,
                max_delay_ms: 1000,
                max_retry_after_ms: 5000,
            },
            first_byte_ms: 500,
            idle_ms: 200,
            requests: vec![RequestSpec {
                targets,
                stream,
                json: None,
                fallback: Fallback::NextTarget,
                start_ms: 0,
                deadline_ms: 10_000,
                faults: faults.into(),
                plans: plans.into(),
                shapes: VecDeque::new(),
                random: None,
                tools: None,
                isolate: 0,
            }],
            outages: Vec::new(),
            retired: Vec::new(),
            scope: None,
            isolates: 1,
            leases: true,
            lossy: false,
            kills: Vec::new(),
            seed: 7,
        }
    }

    /// Limits no script reaches: 1000 requests a minute, 1000 USD a day, no breaker.
    pub fn generous() -> Policy {
        Policy { requests_per_minute: 1000, daily_budget: Usd(1_000_000_000), breaker: None }
    }

    /// Two generous providers, one request for `p1/m` then `p2/m`, each worth 1000 pUSD at worst.
    fn two_targets(stream: bool, faults: Vec<Fault>) -> Schedule {
        Self::scripted(
            vec![Self::generous(), Self::generous()],
            vec![(0, 0, Usd(1000)), (1, 0, Usd(1000))],
            stream,
            faults,
            vec![],
        )
    }

    /// `providers` generous providers, and one request for `p1/m`, `p2/m`, … in turn (each worth
    /// 1000 pUSD at worst), whose attempts go as `faults` say and its streams as `plans` do.
    pub fn scripted_chain(providers: usize, stream: bool, faults: Vec<Fault>, plans: Vec<StreamPlan>) -> Schedule {
        let targets = (0..providers).map(|p| (p, 0, Usd(1000))).collect();
        Self::scripted(vec![Self::generous(); providers], targets, stream, faults, plans)
    }

    /// One request on a native route: `p1/m` alone, never another provider; `p1` under `policy`.
    pub fn scripted_native(policy: Policy, faults: Vec<Fault>) -> Schedule {
        let mut schedule = Self::scripted(vec![policy], vec![(0, 0, Usd(1000))], false, faults, vec![]);
        schedule.requests[0].fallback = Fallback::SameTargetOnly;
        schedule
    }

    /// `count` requests for `p1/m`, `p2/m`, … (each worth 1000 pUSD at worst), one every
    /// `every_ms` (0: all at once), each of the `providers` under `policy`.
    pub fn scripted_load(policy: Policy, providers: usize, count: usize, every_ms: u64) -> Schedule {
        let targets = (0..providers).map(|p| (p, 0, Usd(1000))).collect();
        let mut schedule = Self::scripted(vec![policy; providers], targets, false, vec![], vec![]);
        schedule.repeat(count, every_ms);
        schedule
    }

    /// `count` requests, one a second, for `p1/m`, `p2/m`, … with these worst cases, all of one
    /// repository whose limits are `scope`; the providers are generous.
    pub fn scripted_scope(scope: Policy, worst_cases: &[u64], count: usize) -> Schedule {
        let targets = worst_cases.iter().enumerate().map(|(p, &w)| (p, 0, Usd(w))).collect();
        let mut schedule = Self::scripted(vec![Self::generous(); worst_cases.len()], targets, false, vec![], vec![]);
        schedule.repeat(count, 1_000);
        schedule.scope = Some(scope);
        schedule
    }

    /// A provider down from the start for `outage_ms`, then well, behind a circuit breaker
    /// (opens at 3 failures of 3, cool-down `cooldown_ms`, one probe); a second provider always
    /// well. `count` requests, one every `every_ms`, each trying the first, then the second.
    pub fn scripted_outage(outage_ms: u64, cooldown_ms: u64, count: usize, every_ms: u64) -> Schedule {
        let breaker =
            BreakerPolicy { window_ms: 60_000, min_attempts: 3, failure_permille: 1000, cooldown_ms, probes: 1 };
        let mut schedule = Self::two_targets(false, vec![]);
        schedule.policies[0] = Policy { breaker: Some(breaker), ..Self::generous() };
        schedule.repeat(count, every_ms);
        schedule.outages = vec![(0, START_MS, START_MS + outage_ms)];
        schedule
    }

    /// The one request `count` times, one every `every_ms`, answering cleanly.
    fn repeat(&mut self, count: usize, every_ms: u64) {
        let template = self.requests.pop().expect("one request");
        self.requests = (0..count)
            .map(|i| RequestSpec {
                start_ms: i as u64 * every_ms,
                faults: VecDeque::new(),
                plans: VecDeque::new(),
                shapes: VecDeque::new(),
                random: None,
                tools: None,
                targets: template.targets.clone(),
                ..template
            })
            .collect();
    }

    pub fn scripted_failover() -> Schedule {
        Self::two_targets(false, vec![Fault::Status(503, None), Fault::Status(503, None), Fault::Answer])
    }

    /// Two targets; the first answers with AI Gateway's `refusal`, then everything answers.
    pub fn scripted_refusal(refusal: AigRefusal, retry_after_ms: Option<u64>) -> Schedule {
        Self::two_targets(false, vec![Fault::Refusal(refusal, retry_after_ms), Fault::Answer, Fault::Answer])
    }

    pub fn scripted_retry_after(ms: u64) -> Schedule {
        Self::scripted(
            vec![Self::generous()],
            vec![(0, 0, Usd(1000))],
            false,
            vec![Fault::Status(429, Some(ms))],
            vec![],
        )
    }

    pub fn scripted_all_limited() -> Schedule {
        let limited = Policy { requests_per_minute: 0, daily_budget: Usd(1_000_000), breaker: None };
        let broke = Policy { requests_per_minute: 1000, daily_budget: Usd(10), breaker: None };
        Self::scripted(vec![limited, broke], vec![(0, 0, Usd(1000)), (1, 0, Usd(1000))], false, vec![], vec![])
    }

    /// The first target's content filter blocks the answer; the second is over its budget.
    pub fn scripted_filtered_then_limited() -> Schedule {
        let broke = Policy { requests_per_minute: 1000, daily_budget: Usd(10), breaker: None };
        let targets = vec![(0, 0, Usd(1000)), (1, 0, Usd(1000))];
        Self::scripted(vec![Self::generous(), broke], targets, false, vec![Fault::ContentFilter], vec![])
    }

    pub fn scripted_secret_echo() -> Schedule {
        Self::scripted(vec![Self::generous()], vec![(0, 0, Usd(1000))], true, vec![], vec![StreamPlan::SecretEcho])
    }

    pub fn scripted_client_leaves() -> Schedule {
        Self::scripted(vec![Self::generous()], vec![(0, 0, Usd(1000))], true, vec![], vec![StreamPlan::ClientLeaves(0)])
    }

    /// A request for `p1/m` then `p2/m` that asks for JSON (`format`), whose answers have
    /// `shapes` in turn.
    pub fn scripted_json(format: &'static str, stream: bool, shapes: Vec<Shape>) -> Schedule {
        let mut schedule = Self::two_targets(stream, vec![]);
        schedule.requests[0].json = Some(format);
        schedule.requests[0].shapes = shapes.into();
        schedule
    }

    /// One request for `p1/m` alone, whose answer has `shape`.
    pub fn scripted_shape(stream: bool, shape: Shape) -> Schedule {
        let mut schedule = Self::scripted(vec![Self::generous()], vec![(0, 0, Usd(1000))], stream, vec![], vec![]);
        schedule.requests[0].shapes = VecDeque::from([shape]);
        schedule
    }

    /// `p1/old` retired from the start; `count` requests, one a second, for `p1/old` then
    /// `p2/m` (or, `native`, `p1/old` alone).
    pub fn scripted_retired(count: usize, native: bool) -> Schedule {
        let targets = if native { vec![(0, 1, Usd(1000))] } else { vec![(0, 1, Usd(1000)), (1, 0, Usd(1000))] };
        let mut schedule = Self::scripted(vec![Self::generous(), Self::generous()], targets, false, vec![], vec![]);
        if native {
            schedule.requests[0].fallback = Fallback::SameTargetOnly;
        }
        schedule.repeat(count, 1_000);
        schedule.retired = vec![(0, 1, START_MS)];
        schedule
    }

    /// Runs every request at once, then checks the invariants; the report says what happened.
    pub fn run_and_check(self) -> Report {
        let clock = Clock::starting_at(START_MS);
        let count = self.requests.len();
        let shared = Rc::new(Shared {
            clock: clock.clone(),
            limiters: RefCell::new(HashMap::new()),
            policies: self.policies.clone(),
            prices: prices(),
            ends: RefCell::default(),
            outages: self.outages.clone(),
            retired: self.retired.clone(),
            scope: self.scope.map(|policy| Scope { kind: ScopeKind::Repository, name: "octo/app".into(), policy }),
            seq: Cell::new(0),
            marks: RefCell::default(),
            granted: RefCell::default(),
            isolates: (0..self.isolates).map(Isolate::new).collect(),
            leases: self.leases,
            lossy: self.lossy,
            faults: RefCell::new(Rng(self.seed ^ 0x5EED)),
            pending: RefCell::new(vec![0; count]),
            closed: RefCell::new(vec![Default::default(); count]),
            at_stake: Cell::new(Usd::ZERO),
            alerts: RefCell::default(),
        });
        for &(isolate, at) in &self.kills {
            shared.kill_at(isolate, START_MS + at);
        }
        let outcomes: Rc<RefCell<Vec<Option<RequestOutcome>>>> =
            Rc::new(RefCell::new((0..count).map(|_| None).collect()));
        let mut tasks: Vec<(Option<usize>, Task)> = Vec::new();
        for (i, spec) in self.requests.into_iter().enumerate() {
            let (shared, outcomes, clock) = (shared.clone(), outcomes.clone(), clock.clone());
            let (retry, first_byte_ms, idle_ms) = (self.retry, self.first_byte_ms, self.idle_ms);
            let isolate = spec.isolate;
            tasks.push((
                Some(isolate),
                Box::pin(async move {
                    clock.sleep(spec.start_ms).await;
                    let deadline = clock.now() + spec.deadline_ms;
                    let tools = spec.tools.clone();
                    let sim = Sim {
                        shared: shared.clone(),
                        isolate,
                        request: i,
                        targets: spec.targets.clone(),
                        stream: spec.stream,
                        json: spec.json.map(contract),
                        tools: spec.tools,
                        tool_events: std::cell::OnceCell::new(),
                        idle_ms,
                        deadline,
                        upstream: RefCell::new(RequestUpstream {
                            faults: spec.faults,
                            plans: spec.plans,
                            shapes: spec.shapes,
                            random: spec.random.clone(),
                        }),
                        log: RefCell::default(),
                        rng: RefCell::new(Rng(spec.random.map_or(7, |mut r| r.next()))),
                    };
                    let targets: Vec<Target> = spec
                        .targets
                        .iter()
                        .map(|&(p, m, worst)| Target {
                            id: target_id(p, m),
                            provider: NAMES[p],
                            limits: shared.policies[p],
                            worst_case: worst,
                        })
                        .collect();
                    let rules = Rules {
                        retry: &retry,
                        deadline_ms: deadline,
                        first_byte_timeout_ms: first_byte_ms,
                        fallback: spec.fallback,
                        subject: "the route",
                    };
                    let (result, record) = engine::run(&sim, &targets, &rules).await;
                    let answered_at = clock.now();
                    assert!(
                        answered_at <= deadline,
                        "the answer started at {answered_at}, after the deadline {deadline}"
                    );
                    // One line per attempt (the ledger's rows), and they add up to what was charged:
                    // only a committed stream's (the last) is still open.
                    assert_eq!(record.lines.len() as u32, record.attempts, "one line per attempt");
                    let lined = record.lines.iter().filter_map(|l| l.charged).fold(Usd::ZERO, Usd::saturating_add);
                    assert_eq!(lined, record.charged, "the lines add up to what the record charged");
                    let open = record.lines.iter().filter(|l| l.charged.is_none()).count();
                    assert!(open <= 1 && record.lines.iter().rev().skip(1).all(|l| l.charged.is_some()));
                    let mut charged = record.charged;
                    let mut client = Vec::new();
                    let error = match result {
                        Ok(win) => {
                            match (win.answer, win.open) {
                                (Answer::Whole(bytes), None) => client = bytes,
                                (stream @ Answer::Stream { .. }, Some(held)) => {
                                    assert!(
                                        sim.json.is_none(),
                                        "a JSON-mode stream is held to its end, never committed"
                                    );
                                    let (sent, end, _clean) = relay(&clock, idle_ms, stream).await;
                                    client = sent;
                                    let end = end.expect("a stream ends once");
                                    shared.count(end_kind(&end));
                                    let b = books(end);
                                    charged = charged.saturating_add(b.charge(targets[win.target].worst_case));
                                    let delay = sim.rng.borrow_mut().below(5);
                                    shared.close(isolate, i, held, b, health_of_stream(end), delay);
                                }
                                _ => panic!("a whole answer has no open reservation, a stream always has one"),
                            }
                            None
                        }
                        Err(err) => Some(err),
                    };
                    if let (Some(tools), None) = (&tools, &error) {
                        check_tool_calls(&shared, tools, spec.stream, &client);
                    }
                    // The request's rows are written once every limiter acknowledged its closes.
                    while shared.pending.borrow()[i] > 0 {
                        clock.sleep(1).await;
                    }
                    let log = sim.log.borrow().clone();
                    outcomes.borrow_mut()[i] = Some(RequestOutcome {
                        error,
                        record,
                        log,
                        client,
                        charged,
                        worst: targets.iter().map(|t| t.worst_case).fold(Usd::ZERO, |a, b| a.saturating_add(b)),
                        targets: targets.iter().map(|t| t.id).collect(),
                        stream: spec.stream,
                        json: sim.json.clone(),
                    });
                }) as Task,
            ));
        }
        clock.run(tasks);
        // A request whose isolate died has no outcome (nor rows).
        let outcomes: Vec<(usize, RequestOutcome)> =
            outcomes.take().into_iter().enumerate().filter_map(|(i, o)| o.map(|o| (i, o))).collect();
        if self.kills.is_empty() {
            assert_eq!(outcomes.len(), count, "every request finished");
        }
        check_books(&shared, &outcomes, !self.kills.is_empty());
        check_marks(&shared);
        check_alerts(&shared);
        let mut report = Report { ends: shared.ends.take(), alerts: shared.alerts.take(), ..Report::default() };
        for (_, o) in outcomes {
            check_request(&o);
            report.attempts += o.log.len();
            report.answered += usize::from(o.error.is_none());
            report.gaps.push(retry_gaps(&o.log));
            report.traces.push(o.record.trace.clone());
            report.lines.push(o.record.lines.iter().map(|l| l.charged).collect());
            report.client_bytes.push(o.client);
            report.charged.push(o.charged);
            report.worst_cases.push(o.worst);
            report.errors.push(o.error);
        }
        report
    }
}

/// A tool-call answer in one of the dialects the providers answer in through AI Gateway.
fn tool_answer(rng: &mut Rng) -> ToolAnswer {
    let dialect = match rng.below(4) {
        0 => Dialect::OpenAi,
        _ => Dialect::Gemini { split: rng.chance(50), repeat_id: rng.chance(50), trailing_signature: rng.chance(50) },
    };
    let calls = (0..rng.range(1, 3))
        .map(|k| AnswerCall {
            id: match (dialect, rng.below(6)) {
                (Dialect::OpenAi, _) | (_, 0..=2) => IdForm::Given(format!("call_{}{k}", rng.below(1_000_000))),
                (_, 3) => IdForm::Empty,
                (_, 4) => IdForm::Missing,
                _ => IdForm::SameAsPrevious,
            },
            name: ["read_file", "search", "label"][rng.below(3) as usize].to_owned(),
            arguments: format!("{{\"q\":\"{}\",\"n\":{}}}", "ab\\\"c".repeat(rng.below(3) as usize), rng.below(100)),
            splits: (0..rng.below(3)).map(|_| rng.below(40) as usize).collect(),
        })
        .collect();
    let signature = (dialect != Dialect::OpenAi && rng.chance(70)).then(|| format!("c2ln{}==", rng.below(1 << 20)));
    ToolAnswer { id: format!("chatcmpl-{}", rng.below(1 << 30)), calls, signature, dialect }
}
