//! Scripted cases of what the engine decides about each upstream failure, each refusal of AI
//! Gateway, and each limit of the gateway's own: retried on the same target, left for the next,
//! or the answer; with the error a client gets when nothing answers. (They were checked through
//! a live Worker in the end-to-end suite; there, only what needs the runtime remains.) Every
//! schedule is also held to the simulation's invariants (`Schedule::run_and_check`).

use gateway_core::account::limits::Policy;
use gateway_core::attempt::AigRefusal;
use gateway_core::error::GatewayError;
use gateway_core::money::pricing::Usd;

use crate::checks::Report;
use crate::sim::DONE;
use crate::upstream::{Fault, StreamPlan};
use crate::world::Schedule;

use Fault::{Malformed, SlowBody, Status, Timeout, Unreachable};

fn error(report: &Report, request: usize) -> &GatewayError {
    report.errors[request].as_ref().unwrap_or_else(|| panic!("request {request} answered: {:?}", report.traces))
}

fn client_text(report: &Report, request: usize) -> String {
    String::from_utf8_lossy(&report.client_bytes[request]).into_owned()
}

/// The retry policy of the scripts: 2 attempts per target, a `Retry-After` waited up to 5 s.
#[test]
fn each_failure_is_retried_on_its_target_or_left_for_the_next_as_the_table_says() {
    let cases: Vec<(Vec<Fault>, Vec<&str>)> = vec![
        // Transient: the same target again, which answers.
        (vec![Status(503, None)], vec!["p1/m=503", "p1/m=200"]),
        (vec![SlowBody], vec!["p1/m=timeout", "p1/m=200"]),
        // Transient twice: the next target.
        (vec![Status(500, None); 2], vec!["p1/m=500", "p1/m=500", "p2/m=200"]),
        (vec![Status(502, None); 2], vec!["p1/m=502", "p1/m=502", "p2/m=200"]),
        (vec![Status(503, None); 2], vec!["p1/m=503", "p1/m=503", "p2/m=200"]),
        (vec![Status(529, None); 2], vec!["p1/m=529", "p1/m=529", "p2/m=200"]),
        (vec![Timeout; 2], vec!["p1/m=timeout", "p1/m=timeout", "p2/m=200"]),
        (vec![Unreachable; 2], vec!["p1/m=unreachable", "p1/m=unreachable", "p2/m=200"]),
        // A Retry-After longer than the policy waits: the next target at once.
        (vec![Status(429, Some(30_000))], vec!["p1/m=429", "p2/m=200"]),
        // Faults that would repeat: the next target at once.
        (vec![Malformed], vec!["p1/m=malformed", "p2/m=200"]),
        (vec![Fault::ContentFilter], vec!["p1/m=content_filter", "p2/m=200"]),
        // AI Gateway refusing the Worker's credentials: another provider's key may still do.
        (vec![Status(401, None)], vec!["p1/m=401", "p2/m=200"]),
        (vec![Status(403, None)], vec!["p1/m=403", "p2/m=200"]),
    ];
    for (faults, trace) in cases {
        let report = Schedule::scripted_chain(2, false, faults.clone(), vec![]).run_and_check();
        assert_eq!(report.answered, 1, "{faults:?}: {:?}", report.errors);
        assert_eq!(report.traces[0], trace, "{faults:?}");
    }
}

#[test]
fn a_client_error_ends_the_request_at_once() {
    for status in [400, 404, 422] {
        let report = Schedule::scripted_chain(2, false, vec![Status(status, None)], vec![]).run_and_check();
        assert_eq!(report.traces[0], vec![format!("p1/m={status}")]);
        assert_eq!(error(&report, 0).status(), status);
    }
}

/// On the last target, an upstream error is the answer: its status, its `Retry-After`, the
/// gateway's code for it, and one attempt when the `Retry-After` is longer than the policy waits.
/// Without an upstream error, the gateway's own: a 502 or a 504.
#[test]
fn on_the_last_target_an_upstream_error_is_passed_on_with_its_retry_after() {
    for status in [429, 500, 502, 503, 529] {
        let report = Schedule::scripted_chain(1, false, vec![Status(status, Some(7_000))], vec![]).run_and_check();
        assert_eq!(report.traces[0], vec![format!("p1/m={status}")]);
        let err = error(&report, 0);
        assert_eq!(err.status(), status);
        let code = if status == 429 { "upstream_rate_limited" } else { "upstream_error" };
        assert_eq!(err.kind.code(), code);
        let retry_after: f64 = err.retry_after.as_deref().expect("a Retry-After").parse().expect("seconds");
        assert_eq!(retry_after, 7.0);
    }
    // No answer that reads, none in time, or none at all: the gateway's own errors.
    for (faults, status, code) in [
        (vec![Malformed], 502, "upstream_malformed_response"),
        (vec![Timeout; 2], 504, "upstream_timeout"),
        (vec![Unreachable; 2], 502, "upstream_unreachable"),
    ] {
        let report = Schedule::scripted_chain(1, false, faults.clone(), vec![]).run_and_check();
        assert_eq!(report.attempts, faults.len(), "{faults:?}");
        let err = error(&report, 0);
        assert_eq!((err.status(), err.kind.code()), (status, code), "{faults:?}");
    }
}

#[test]
fn when_every_target_fails_the_last_error_is_the_answer() {
    let report = Schedule::scripted_chain(3, false, vec![Status(503, None); 6], vec![]).run_and_check();
    assert_eq!(report.attempts, 6);
    let trace: Vec<String> = ["p1", "p1", "p2", "p2", "p3", "p3"].iter().map(|p| format!("{p}/m=503")).collect();
    assert_eq!(report.traces[0], trace);
    assert_eq!(error(&report, 0).status(), 503);
}

/// AI Gateway refusing the Worker's token everywhere is the operator's to fix: a 502 that names
/// CF_AIG_TOKEN, never the client's 401.
#[test]
fn a_gateway_refusing_the_workers_token_is_a_502_naming_cf_aig_token() {
    let report = Schedule::scripted_chain(2, false, vec![Status(401, None); 2], vec![]).run_and_check();
    assert_eq!(report.traces[0], vec!["p1/m=401", "p2/m=401"]);
    let err = error(&report, 0);
    assert_eq!((err.status(), err.kind.code()), (502, "upstream_auth_failed"));
    assert!(err.message.contains("CF_AIG_TOKEN"), "{}", err.message);
}

/// Before its first content a failing stream is left for the next target unseen (the client
/// gets one whole stream); after it, the stream ends with an error event, never a clean end,
/// and nothing else is tried.
#[test]
fn a_stream_fails_over_unseen_before_its_content_and_ends_with_an_error_after_it() {
    let before: Vec<(Vec<Fault>, Vec<StreamPlan>, Vec<&str>)> = vec![
        (vec![], vec![StreamPlan::CutBefore; 2], vec!["p1/m=stream_failed", "p1/m=stream_failed", "p2/m=200"]),
        (vec![], vec![StreamPlan::StallBefore; 2], vec!["p1/m=timeout", "p1/m=timeout", "p2/m=200"]),
        (vec![Status(503, None); 2], vec![], vec!["p1/m=503", "p1/m=503", "p2/m=200"]),
        (vec![Timeout; 2], vec![], vec!["p1/m=timeout", "p1/m=timeout", "p2/m=200"]),
    ];
    for (faults, plans, trace) in before {
        let report = Schedule::scripted_chain(2, true, faults.clone(), plans.clone()).run_and_check();
        assert_eq!(report.traces[0], trace, "{faults:?} {plans:?}");
        let sent = client_text(&report, 0);
        assert!(sent.ends_with(std::str::from_utf8(DONE).unwrap()), "{sent}");
        assert_eq!(sent.matches("\"role\":\"assistant\"").count(), 1, "one stream only: {sent}");
    }
    for (plan, code) in
        [(StreamPlan::CutAfter, "upstream_malformed_response"), (StreamPlan::StallAfter, "upstream_timeout")]
    {
        let report = Schedule::scripted_chain(2, true, vec![], vec![plan]).run_and_check();
        assert_eq!(report.traces[0], vec!["p1/m=200"], "{plan:?}");
        let sent = client_text(&report, 0);
        let last = sent.trim_end().rsplit("\n\n").next().unwrap_or_default().to_owned();
        assert!(last.starts_with("data: {\"error\"") && last.contains(code), "{plan:?}: {sent}");
        assert!(!sent.contains("data: [DONE]"), "{sent}");
    }
}

/// When every target is refused by AI Gateway, the last refusal is the answer, with its own
/// status and code (and a rate limit's `Retry-After`); a provider's own errors that share a
/// status with them keep their own behaviour.
#[test]
fn when_ai_gateway_refuses_every_target_its_refusal_is_the_answer() {
    let all = |refusal, retry_after| {
        Schedule::scripted_chain(3, false, vec![Fault::Refusal(refusal, retry_after); 3], vec![]).run_and_check()
    };
    let report = all(AigRefusal::SpendLimit, None);
    assert_eq!(
        report.traces[0],
        vec!["p1/m=skipped:aig_spend_limit", "p2/m=skipped:aig_spend_limit", "p3/m=skipped:aig_spend_limit"]
    );
    let err = error(&report, 0);
    assert_eq!((err.status(), err.kind.code(), err.kind.openai_type()), (429, "aig_spend_limit", "rate_limit_error"));
    assert_eq!(report.charged[0], Usd::ZERO);

    let report = all(AigRefusal::RateLimited, Some(7_000));
    assert_eq!(report.traces[0], vec!["p1/m=aig_rate_limited", "p2/m=aig_rate_limited", "p3/m=aig_rate_limited"]);
    let err = error(&report, 0);
    assert_eq!((err.status(), err.kind.code()), (429, "aig_rate_limited"));
    assert_eq!(err.retry_after.as_deref().map(|s| s.parse::<f64>().unwrap()), Some(7.0));

    for (refusal, status, code) in [
        (AigRefusal::NoCredits, 402, "aig_insufficient_credits"),
        (AigRefusal::ResponseBlocked, 424, "aig_response_blocked"),
    ] {
        let report = all(refusal, None);
        assert_eq!(report.attempts, 3, "{refusal:?}");
        let err = error(&report, 0);
        assert_eq!((err.status(), err.kind.code()), (status, code));
    }

    // A provider's own 429 (its shape, not AI Gateway's) is retried on the same target; a
    // provider's 403 everywhere is the Worker's credentials.
    let report = Schedule::scripted_chain(3, false, vec![Status(429, Some(100))], vec![]).run_and_check();
    assert_eq!(report.traces[0], vec!["p1/m=429", "p1/m=200"]);
    let report = Schedule::scripted_chain(2, false, vec![Status(403, None); 2], vec![]).run_and_check();
    assert_eq!(error(&report, 0).kind.code(), "upstream_auth_failed");
}

/// A native route has one target and never another provider: a transient failure is retried on
/// it, its error is the answer, and a refusal (AI Gateway's or the gateway's own limit) ends it.
#[test]
fn a_native_route_retries_its_one_provider_and_never_another() {
    let native = |faults| Schedule::scripted_native(Schedule::generous(), faults).run_and_check();
    let report = native(vec![Status(529, None)]);
    assert_eq!(report.traces[0], vec!["p1/m=529", "p1/m=200"]);
    let report = native(vec![Status(529, None); 2]);
    assert_eq!(report.traces[0], vec!["p1/m=529", "p1/m=529"]);
    assert_eq!(error(&report, 0).status(), 529);
    let report = native(vec![Status(400, None)]);
    assert_eq!((report.attempts, error(&report, 0).status()), (1, 400));

    let report = native(vec![Fault::Refusal(AigRefusal::SpendLimit, None)]);
    assert_eq!(report.traces[0], vec!["p1/m=skipped:aig_spend_limit"]);
    assert_eq!((error(&report, 0).status(), error(&report, 0).kind.code()), (429, "aig_spend_limit"));

    let over_its_rate = Policy { requests_per_minute: 0, ..Schedule::generous() };
    let report = Schedule::scripted_native(over_its_rate, vec![]).run_and_check();
    assert_eq!((report.attempts, report.traces[0].clone()), (0, vec!["p1/m=skipped:rate_limited".to_owned()]));
    let err = error(&report, 0);
    assert_eq!((err.status(), err.kind.code()), (429, "gateway_limits_exhausted"));
    assert!(err.message.contains("rate limit of 0 requests per minute"), "{}", err.message);
}

/// Two providers allowing 2 requests a minute each, 5 requests: the first two go to the first
/// provider, the next two skip it for the second, and the last finds both over their rate: a 429
/// naming each, with when to come back, and no attempt made.
#[test]
fn a_provider_over_its_rate_is_left_for_the_next_then_all_are_a_429() {
    let two_a_minute = Policy { requests_per_minute: 2, ..Schedule::generous() };
    let report = Schedule::scripted_load(two_a_minute, 2, 5, 2_000).run_and_check();
    assert_eq!(report.traces[0], vec!["p1/m=200"]);
    assert_eq!(report.traces[1], vec!["p1/m=200"]);
    for trace in &report.traces[2..4] {
        assert_eq!(trace, &vec!["p1/m=skipped:rate_limited", "p2/m=200"]);
    }
    assert_eq!(report.traces[4], vec!["p1/m=skipped:rate_limited", "p2/m=skipped:rate_limited"]);
    let err = error(&report, 4);
    assert_eq!((err.status(), err.kind.code()), (429, "gateway_limits_exhausted"));
    assert!(err.message.contains("p1:") && err.message.contains("p2:"), "{}", err.message);
    let retry_after: u64 = err.retry_after.as_deref().expect("a Retry-After").parse().unwrap();
    assert!((1..=61).contains(&retry_after), "{retry_after}");
}

/// Twenty requests at once against budgets that hold five worst cases each (of two providers):
/// ten reserve and are answered, the others are refused with a 429 that names the budgets, and
/// the limiters' books show no overspend (`check_books`).
#[test]
fn concurrent_requests_never_overspend_a_tiny_budget() {
    let tiny = Policy { daily_budget: Usd(5_000), ..Schedule::generous() };
    let report = Schedule::scripted_load(tiny, 2, 20, 0).run_and_check();
    assert_eq!(report.answered, 10, "{:?}", report.traces);
    for request in (0..20).filter(|&r| report.errors[r].is_some()) {
        let err = error(&report, request);
        assert_eq!((err.status(), err.kind.code()), (429, "gateway_limits_exhausted"));
        assert!(err.message.contains("daily budget of $"), "{}", err.message);
        assert_eq!(report.traces[request], vec!["p1/m=skipped:over_budget", "p2/m=skipped:over_budget"]);
    }
}

/// One request a second against a budget of five worst cases (each answer settles at half of
/// its): 50% and 80% are announced once, as the spend reaches them, and 100% once, when the
/// budget first refuses a request; nothing is announced twice.
#[test]
fn each_alert_threshold_is_announced_once() {
    let tiny = Policy { daily_budget: Usd(5_000), ..Schedule::generous() };
    let report = Schedule::scripted_load(tiny, 1, 14, 1_000).run_and_check();
    assert_eq!(report.answered, 9, "{:?}", report.traces);
    let announced: Vec<(&str, u32)> = report.alerts.iter().map(|(l, t)| (l.as_str(), *t)).collect();
    assert_eq!(announced, vec![("p1", 50), ("p1", 80), ("p1", 100)]);
}

/// A repository over its budget: every target is tried against it (a cheaper one's worst case
/// may still fit), and when none fits, the repository's own 429, named, with its `Retry-After`.
/// Over its rate, the first refusal ends the request: no other target can help.
#[test]
fn a_repository_over_its_budget_tries_every_target_then_names_itself() {
    let budget = Policy { requests_per_minute: 1000, daily_budget: Usd(1_500), breaker: None };
    let report = Schedule::scripted_scope(budget, &[2_000, 2_000, 1_000], 3).run_and_check();
    let skipped = "skipped:repository_budget_exhausted";
    for request in 0..2 {
        assert_eq!(
            report.traces[request],
            vec![format!("p1/m={skipped}"), format!("p2/m={skipped}"), "p3/m=200".into()]
        );
    }
    assert_eq!(report.traces[2], vec![format!("p1/m={skipped}"), format!("p2/m={skipped}"), format!("p3/m={skipped}")]);
    let err = error(&report, 2);
    assert_eq!((err.status(), err.kind.code()), (429, "repository_budget_exhausted"));
    assert!(err.message.contains("repository `octo/app`") && err.message.contains("daily budget"), "{}", err.message);
    assert!(err.retry_after.is_some());

    let one_a_minute = Policy { requests_per_minute: 1, daily_budget: Usd(1_000_000_000), breaker: None };
    let report = Schedule::scripted_scope(one_a_minute, &[1_000, 1_000], 2).run_and_check();
    assert_eq!(report.traces[0], vec!["p1/m=200"]);
    assert_eq!(report.traces[1], vec![format!("p1/m={skipped}")]);
    let err = error(&report, 1);
    assert_eq!(err.kind.code(), "repository_budget_exhausted");
    assert!(err.message.contains("1 requests per minute"), "{}", err.message);
}
