//! After a failed attempt: retry the same target, move to the next one, or stop.
//!
//! One retry loop, in the Worker only (AI Gateway is told `cf-aig-max-attempts: 1`), bounded per
//! target and by one total deadline, with full-jitter exponential backoff (AWS architecture blog,
//! "Exponential Backoff and Jitter") that honours `Retry-After` when it is short enough to wait.

use crate::attempt::{classify, AigRefusal, AttemptOutcome, Disposition};
use crate::config::RetryPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait this long, then try the same target again.
    RetrySame { delay_ms: u64 },
    /// Try the next target of the plan.
    NextTarget,
    /// Give up: the request itself is at fault.
    Stop,
}

/// Outcomes worth trying the *same* target again for: transient by nature. An auth failure, a
/// content-filter block, a malformed answer, an answer in another format than asked or a model
/// that is gone would most likely repeat, so those move on. Of AI
/// Gateway's own refusals only the guardrail service being down is transient: a spend limit
/// holds for the day, and its rate limit is waited out on another target, not this one.
fn transient(outcome: AttemptOutcome) -> bool {
    use AttemptOutcome::*;
    matches!(
        outcome,
        Status(408 | 429 | 500 | 502 | 503 | 504 | 529)
            | Refused(AigRefusal::GuardrailUnavailable)
            | Timeout
            | ConnectionError
            | StreamCutBeforeContent
    )
}

/// Decides what follows a failed attempt.
///
/// * `attempt`: 1-based count of attempts already made on this target.
/// * `retry_after_ms`: the upstream's `Retry-After`, if any.
/// * `remaining_ms`: time left before the request's deadline.
/// * `roll`: uniform random in `[0, 1)` for the jitter.
pub fn after_failure(
    outcome: AttemptOutcome,
    attempt: u32,
    retry_after_ms: Option<u64>,
    remaining_ms: u64,
    policy: &RetryPolicy,
    roll: f64,
) -> Next {
    if classify(outcome) == Disposition::FailFast {
        return Next::Stop;
    }
    if !transient(outcome) || attempt >= policy.attempts_per_target {
        return Next::NextTarget;
    }
    if retry_after_ms.is_some_and(|ra| ra > policy.max_retry_after_ms) {
        return Next::NextTarget;
    }
    let ceiling = policy.base_delay_ms.saturating_mul(1u64 << (attempt - 1).min(20)).min(policy.max_delay_ms);
    let jitter = (roll.clamp(0.0, 1.0) * ceiling as f64) as u64;
    let delay_ms = jitter.max(retry_after_ms.unwrap_or(0));
    if delay_ms >= remaining_ms {
        return Next::NextTarget;
    }
    Next::RetrySame { delay_ms }
}

/// Parses `Retry-After` delay-seconds (an HTTP date is treated as absent: AI Gateway and the
/// providers send seconds, and waiting on a clock-skewed date is worse than moving on).
pub fn retry_after_ms(value: Option<&str>) -> Option<u64> {
    let v = value?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    v.parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(|s| (s * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptOutcome::*;

    const P: RetryPolicy =
        RetryPolicy { attempts_per_target: 3, base_delay_ms: 100, max_delay_ms: 1000, max_retry_after_ms: 5000 };

    #[test]
    fn transient_failures_retry_with_full_jitter_then_move_on() {
        assert_eq!(after_failure(Status(503), 1, None, 60_000, &P, 0.5), Next::RetrySame { delay_ms: 50 });
        assert_eq!(after_failure(Status(503), 2, None, 60_000, &P, 0.5), Next::RetrySame { delay_ms: 100 });
        assert_eq!(after_failure(Status(503), 3, None, 60_000, &P, 0.5), Next::NextTarget);
        // The ceiling grows exponentially and is capped.
        let p = RetryPolicy { attempts_per_target: 10, ..P };
        assert_eq!(after_failure(Timeout, 9, None, 60_000, &p, 0.999_999), Next::RetrySame { delay_ms: 999 });
        assert_eq!(after_failure(ConnectionError, 1, None, 60_000, &P, 0.0), Next::RetrySame { delay_ms: 0 });
    }

    #[test]
    fn retry_after_is_honoured_or_skipped() {
        assert_eq!(after_failure(Status(429), 1, Some(2000), 60_000, &P, 0.1), Next::RetrySame { delay_ms: 2000 });
        assert_eq!(after_failure(Status(429), 1, Some(30_000), 60_000, &P, 0.1), Next::NextTarget);
    }

    #[test]
    fn the_deadline_bounds_waiting() {
        assert_eq!(after_failure(Status(500), 1, Some(2000), 1500, &P, 0.1), Next::NextTarget);
    }

    #[test]
    fn non_transient_failures_move_on_and_client_errors_stop() {
        for o in [Status(401), Status(403), ContentFiltered, MalformedAnswer, InvalidOutput, ModelUnavailable] {
            assert_eq!(after_failure(o, 1, None, 60_000, &P, 0.5), Next::NextTarget, "{o:?}");
        }
        for s in [400, 404, 413, 422] {
            assert_eq!(after_failure(Status(s), 1, None, 60_000, &P, 0.5), Next::Stop, "{s}");
        }
    }

    #[test]
    fn aig_refusals_move_on_at_once_stop_or_retry() {
        use AigRefusal::*;
        for r in [SpendLimit, RateLimited, NoCredits, ResponseBlocked] {
            // Even with a short Retry-After, the same target is not asked again.
            assert_eq!(after_failure(Refused(r), 1, Some(100), 60_000, &P, 0.5), Next::NextTarget, "{r:?}");
        }
        for r in [PolicyDenied, PromptBlocked, DlpBlocked] {
            assert_eq!(after_failure(Refused(r), 1, None, 60_000, &P, 0.5), Next::Stop, "{r:?}");
        }
        assert_eq!(
            after_failure(Refused(GuardrailUnavailable), 1, None, 60_000, &P, 0.5),
            Next::RetrySame { delay_ms: 50 }
        );
        assert_eq!(after_failure(Refused(GuardrailUnavailable), 3, None, 60_000, &P, 0.5), Next::NextTarget);
    }

    #[test]
    fn parses_retry_after() {
        assert_eq!(retry_after_ms(Some("7")), Some(7000));
        assert_eq!(retry_after_ms(Some(" 1.5 ")), Some(1500));
        assert_eq!(retry_after_ms(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after_ms(Some("-1")), None);
        assert_eq!(retry_after_ms(None), None);
    }
}
