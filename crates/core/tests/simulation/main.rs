//! Deterministic simulation of the request engine (`gateway_core::engine`) and the stream pump
//! (`gateway_core::relay::pump`): thousands of random fault schedules, each replayable by seed.
//!
//! The world is fake where the runtime is (a clock that jumps to the next timer, an upstream
//! that fails on a script, limiter calls that yield and sometimes lose their answers, closes
//! that land later, isolates that die) and real where the decisions are: the engine, the retry
//! policy, the books, the pump over the real SSE relay, the core's admission across a provider
//! and a scope (`account/admission.rs`, driven by `limiters.rs` as the Worker's shell drives
//! it: leases, reservations, reports), and the real `LimiterState` behind every limiter. Several
//! requests run at once in one to three isolates, their steps interleaved by the executor,
//! sharing the limiters.
//!
//! After each schedule: every request ended in an answer or a well-formed error (but those
//! whose isolate died); no attempt started after the deadline and every answer started before
//! it; every `Retry-After` was waited for; nothing reached a client before the commit point, and
//! no attempt followed it; a stream broken after it ended with an error event, never a clean
//! end; no secret reached a client; the trace names every attempt; no reservation is left open;
//! what the requests were charged equals what every limiter recorded, to the picodollar, when
//! no isolate died — and when one did, the limiters charged beyond it only what they show as
//! charged for requests whose isolate died, at most what the dead isolates had at stake; no
//! budget was overspent — the providers' nor, when the requests share a repository scope
//! admitted all or nothing beside them, the scope's; circuit breakers and provider outages come
//! and go on the way; and an answer of tool calls, in OpenAI's dialect or Gemini's (index-less,
//! parallel, split, signed on a trailing delta, "stop"), reaches its client through the real
//! relay as the calls it made, well-formed for the OpenAI SDK's accumulator, streamed or whole;
//! each limiter announced each alert threshold once, as its spend reached it (100%: at the
//! first refusal after 80%).
//!
//! Beside the random schedules, scripted ones pin down single decisions (here, and in
//! `failures_and_limits.rs`: each upstream failure, refusal and limit).
//!
//! `SIM_SCHEDULES` sets how many schedules run (`make fuzz` runs many more); `SIM_SEED` replays
//! one: a failure prints `SIM_SEED=… cargo test -p gateway-core --test simulation`.

mod checks;
mod executor;
mod failures_and_limits;
mod limiters;
mod sim;
#[path = "../common/tool_calls.rs"]
mod tool_calls;
mod upstream;
mod world;

use gateway_core::attempt::AigRefusal;
use gateway_core::money::pricing::Usd;
use upstream::{Content, Named, Shape, UsageShape, DEAR, LABELS, SECRET, UNPRICED};
use world::Schedule;

fn schedules() -> u64 {
    std::env::var("SIM_SCHEDULES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000)
}

fn check(seed: u64) {
    let outcome = std::panic::catch_unwind(|| Schedule::generate(seed).run_and_check());
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!("schedule failed: {message}\nreplay with: SIM_SEED={seed} cargo test -p gateway-core --test simulation");
    }
}

#[test]
fn random_fault_schedules_keep_every_invariant() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|v| v.parse().ok()) {
        check(seed);
        return;
    }
    let n = schedules();
    let mut stats = checks::Stats::default();
    for seed in 0..n {
        check(seed);
        stats.add(&Schedule::generate(seed).run_and_check());
    }
    println!("simulated {n} schedules: {stats}");
    // The schedules must reach every kind of ending, or they prove less than they claim.
    stats.assert_coverage();
}

#[test]
fn a_provider_that_fails_is_left_for_the_next_and_the_books_balance() {
    let report = Schedule::scripted_failover().run_and_check();
    assert_eq!(report.answered, 1);
    assert_eq!(report.traces[0], vec!["p1/m=503", "p1/m=503", "p2/m=200"]);
}

/// A provider down for 5 s behind its circuit breaker (opens at 3 failures, 2 s cool-down, one
/// probe): requests stop waiting on it once it opens — straight to the next provider, the down
/// one named `skipped:circuit_open` — a probe goes to it after each cool-down, and once a probe
/// answers, requests return to it.
#[test]
fn a_provider_that_is_down_is_skipped_then_probed_then_trusted_again() {
    let report = Schedule::scripted_outage(5_000, 2_000, 40, 250).run_and_check();
    assert_eq!(report.answered, 40);
    let traces: Vec<String> = report.traces.iter().map(|t| t.join(", ")).collect();
    // The first request pays for the outage (two tries, then the next provider); the second
    // trips the breaker with its first failure (3 of 3), so its retry is refused at once.
    assert_eq!(traces[0], "p1/m=503, p1/m=503, p2/m=200");
    assert_eq!(traces[1], "p1/m=503, p1/m=skipped:circuit_open, p2/m=200");
    let skipped = traces.iter().filter(|t| t.as_str() == "p1/m=skipped:circuit_open, p2/m=200").count();
    assert!(skipped >= 15, "{traces:#?}");
    // While it is open, no time is spent on it: a skipped request makes one attempt.
    for t in report.traces.iter().filter(|t| t[0] == "p1/m=skipped:circuit_open") {
        assert_eq!(t.iter().filter(|e| !e.contains("=skipped:")).count(), 1, "{t:?}");
    }
    // During the outage, it was tried only by the first two requests and by one probe per
    // cool-down.
    let outage_tries: usize = traces[..20].iter().map(|t| t.matches("p1/m=503").count()).sum();
    assert!(outage_tries <= 3 + 2, "{traces:#?}");
    // One probe per cool-down (2.5 s, 4.75 s: still down); the first after it recovers (7 s)
    // answers, and everything goes back to it.
    let probes: Vec<usize> = (2..40).filter(|&i| traces[i].starts_with("p1/m=503")).collect();
    assert_eq!(probes, vec![10, 19], "{traces:#?}");
    assert!(traces[28..].iter().all(|t| t == "p1/m=200"), "{traces:#?}");
}

#[test]
fn retry_after_is_waited_for_exactly() {
    let report = Schedule::scripted_retry_after(700).run_and_check();
    assert_eq!(report.traces[0], vec!["p1/m=429", "p1/m=200"]);
    assert!(report.gaps[0][0] >= 700, "{:?}", report.gaps);
}

#[test]
fn every_target_over_its_limits_is_a_429_naming_each() {
    let report = Schedule::scripted_all_limited().run_and_check();
    let err = report.errors[0].as_ref().expect("an error");
    assert_eq!(err.status(), 429);
    assert!(err.message.contains("p1:") && err.message.contains("p2:"), "{}", err.message);
    assert!(err.retry_after.is_some());
    assert_eq!(report.traces[0], vec!["p1/m=skipped:rate_limited", "p2/m=skipped:over_budget"]);
}

/// A content filter's block moves on to the next target; when no later target can answer (here:
/// over its budget), the block is the answer, a 200 that says so, never an error with status 200.
#[test]
fn a_content_filter_block_is_the_answer_when_no_later_target_can_give_one() {
    let report = Schedule::scripted_filtered_then_limited().run_and_check();
    assert_eq!(report.answered, 1);
    assert!(report.errors[0].is_none());
    assert_eq!(report.traces[0], vec!["p1/m=content_filter", "p2/m=skipped:over_budget"]);
    let sent = String::from_utf8(report.client_bytes[0].clone()).unwrap();
    assert!(sent.contains("\"finish_reason\":\"content_filter\""), "{sent}");
}

#[test]
fn a_secret_echoed_mid_stream_never_reaches_the_client() {
    let report = Schedule::scripted_secret_echo().run_and_check();
    let sent = String::from_utf8(report.client_bytes[0].clone()).unwrap();
    assert!(sent.contains("data: {\"error\""), "{sent}");
    assert!(!sent.contains(SECRET), "{sent}");
}

#[test]
fn a_client_that_leaves_mid_stream_is_charged_the_worst_case() {
    let report = Schedule::scripted_client_leaves().run_and_check();
    assert_eq!(report.charged[0], report.worst_cases[0]);
}

#[test]
fn aig_refusals_skip_move_on_stop_or_retry_as_the_table_says() {
    let trace = |r, ra| Schedule::scripted_refusal(r, ra).run_and_check();
    // Spend limit: that target is skipped at once, never retried; the next one answers.
    let report = trace(AigRefusal::SpendLimit, None);
    assert_eq!(report.traces[0], vec!["p1/m=skipped:aig_spend_limit", "p2/m=200"]);
    // Gateway rate limit: the next target at once, even with a short Retry-After.
    let report = trace(AigRefusal::RateLimited, Some(300));
    assert_eq!(report.traces[0], vec!["p1/m=aig_rate_limited", "p2/m=200"]);
    assert!(report.gaps[0].is_empty(), "{:?}", report.gaps);
    for (r, label) in
        [(AigRefusal::NoCredits, "aig_insufficient_credits"), (AigRefusal::ResponseBlocked, "aig_response_blocked")]
    {
        assert_eq!(trace(r, None).traces[0], vec![format!("p1/m={label}"), "p2/m=200".into()]);
    }
    // Policy and content blocks fail fast, with their own codes.
    for (r, status, code) in [
        (AigRefusal::PolicyDenied, 403, "aig_policy_denied"),
        (AigRefusal::PromptBlocked, 400, "content_blocked"),
        (AigRefusal::DlpBlocked, 400, "content_blocked"),
    ] {
        let report = trace(r, None);
        assert_eq!(report.traces[0].len(), 1, "{:?}", report.traces[0]);
        let err = report.errors[0].as_ref().expect("an error");
        assert_eq!((err.status(), err.kind.code()), (status, code));
        assert!(!err.message.contains(SECRET));
    }
    // The guardrail service being down is transient: the same target again.
    let report = trace(AigRefusal::GuardrailUnavailable, None);
    assert_eq!(report.traces[0], vec!["p1/m=aig_guardrail_unavailable", "p1/m=200"]);
}

const PROSE: Shape = Shape { content: Content::Prose, usage: UsageShape::Plain, named: Named::Asked };
const WRONG: Shape = Shape { content: Content::WrongJson, usage: UsageShape::Plain, named: Named::Asked };
const VALID: Shape = Shape { content: Content::Valid, usage: UsageShape::Plain, named: Named::Asked };

/// A JSON-mode request whose first target answers prose is answered by the second, whole or
/// streamed (held to its end); both attempts are charged what they cost (500 pUSD each: the
/// sim's tokens for a worst case of 1000).
#[test]
fn an_answer_that_is_not_what_was_asked_fails_over_and_is_charged() {
    for stream in [false, true] {
        let report = Schedule::scripted_json(LABELS, stream, vec![PROSE, VALID]).run_and_check();
        assert_eq!(report.answered, 1, "stream {stream}");
        assert_eq!(report.traces[0], vec!["p1/m=invalid_output", "p2/m=200"], "stream {stream}");
        assert_eq!(report.lines[0], vec![Some(Usd(500)), Some(Usd(500))], "stream {stream}");
        assert_eq!(report.charged[0], Usd(1000));
        assert!(stream || String::from_utf8_lossy(&report.client_bytes[0]).contains("needs-triage"));
    }
}

/// When no target answers as asked, the request fails with `invalid_output`, naming each target
/// and why; the attempts are charged all the same.
#[test]
fn when_no_target_answers_as_asked_the_error_names_each_and_why() {
    for stream in [false, true] {
        let report = Schedule::scripted_json(LABELS, stream, vec![PROSE, WRONG]).run_and_check();
        let err = report.errors[0].as_ref().expect("an error");
        assert_eq!((err.status(), err.kind.code()), (502, "invalid_output"));
        assert!(err.message.contains("p1/m: the answer is not JSON"), "{}", err.message);
        assert!(
            err.message
                .contains("p2/m: the answer does not match its schema: `$` misses the required property `labels`"),
            "{}",
            err.message
        );
        assert_eq!(report.traces[0], vec!["p1/m=invalid_output", "p2/m=invalid_output"]);
        assert_eq!(report.charged[0], Usd(1000));
    }
    // `json_object` asks for an object, not a schema: JSON of another shape is what was asked.
    let report = Schedule::scripted_json(upstream::JSON_OBJECT, false, vec![WRONG]).run_and_check();
    assert_eq!(report.traces[0], vec!["p1/m=200"]);
}

/// Thinking is billed as output in every shape a usage reports it, at the rate of the model
/// that answered (the check inside the simulation compares each charge with the upstream's own
/// arithmetic; here, the figures).
#[test]
fn reasoning_and_another_model_are_billed_as_the_provider_bills_them() {
    for usage in
        [UsageShape::GeminiThinking, UsageShape::GeminiTotalOnly, UsageShape::OpenAiThinking, UsageShape::NoTotal]
    {
        for stream in [false, true] {
            let shape = Shape { usage, ..VALID };
            assert_eq!(Schedule::scripted_shape(stream, shape).run_and_check().charged[0], Usd(500), "{usage:?}");
        }
    }
    let priced = |named| Schedule::scripted_shape(false, Shape { named, ..VALID }).run_and_check().charged[0];
    assert_eq!(priced(Named::Dated), Usd(500), "a dated snapshot is the model asked");
    assert_eq!(priced(Named::Other(DEAR)), Usd(1000), "another model, at its own rate");
    assert_eq!(priced(Named::Other(UNPRICED)), Usd(500), "another model without a price: the asked one's");
}

/// A model its provider retired is left for the next target and marked: the next requests skip
/// it at once, without an attempt. On a native route (no other target) the provider's own 404
/// is the answer, then the gateway's `model_unavailable`.
#[test]
fn a_retired_model_is_left_then_skipped_while_marked() {
    let report = Schedule::scripted_retired(3, false).run_and_check();
    assert_eq!(report.answered, 3);
    assert_eq!(report.traces[0], vec!["p1/old=model_unavailable", "p2/m=200"]);
    for trace in &report.traces[1..] {
        assert_eq!(trace, &vec!["p1/old=skipped:model_unavailable", "p2/m=200"]);
    }
    let report = Schedule::scripted_retired(2, true).run_and_check();
    let first = report.errors[0].as_ref().expect("an error");
    assert_eq!(first.status(), 404, "{}", first.message);
    let second = report.errors[1].as_ref().expect("an error");
    assert_eq!((second.status(), second.kind.code()), (502, "model_unavailable"));
    assert!(second.message.contains("no longer available"), "{}", second.message);
    assert_eq!(report.traces[1], vec!["p1/old=skipped:model_unavailable"]);
}
