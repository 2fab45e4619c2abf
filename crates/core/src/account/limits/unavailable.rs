//! Models a provider answered are gone, remembered in its limiter state.
//!
//! When a provider answers that a model does not exist or is no longer served
//! ([`crate::aig::answer::model_unavailable`]), the attempt moves on to the next target, and the
//! model is marked unavailable in the provider's limiter for [`MODEL_UNAVAILABLE_MS`]: the one
//! strongly consistent place per provider, shared by every isolate, like the circuit breaker.
//! While marked, a reserve for it is refused at once (`skipped:model_unavailable`), so a retired
//! model costs one failed attempt an hour, not one per request. The first mark of a model (not
//! a renewal of one still in force) raises an alert, once; `/limits` shows the marks.
//!
//! Isolates admitting requests under a lease (`lease.rs`) learn the marks with each grant, and
//! ask the limiter (which refuses) rather than admit a marked model locally: a mark made by
//! another isolate reaches them within one lease period ([`super::lease::LEASE_TTL_MS`]).

use serde::{Deserialize, Serialize};

use super::{LimiterState, Refusal};
use crate::account::alerts::Alert;
use crate::names;
use crate::time::format_ms;

/// How long a model stays marked: long enough that a retired model costs one attempt an hour;
/// short enough that a model that was only briefly missing (a provider's rollout) is back soon.
pub const MODEL_UNAVAILABLE_MS: u64 = 60 * 60_000;
/// The most models marked at once per provider (the one whose mark ends first goes first).
pub const MAX_UNAVAILABLE_MODELS: usize = 32;
/// The longest reason kept (the provider's own message, cut).
const MAX_REASON_CHARS: usize = 200;

/// A model marked unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnavailableModel {
    /// Its canonical name ([`crate::names::model`]).
    pub model: String,
    /// Why: what the provider answered (its error message, cut short).
    pub reason: String,
    /// Until when (Unix ms, the limiter's clock).
    pub until_ms: u64,
}

impl UnavailableModel {
    /// What `/healthz` and `/limits` say of it, for `provider`.
    pub fn warning(&self, provider: &str) -> String {
        format!(
            "{provider}/{} answered that it is not available ({}); skipped until {}",
            self.model,
            self.reason,
            format_ms(self.until_ms as i64)
        )
    }
}

impl LimiterState {
    /// Marks `model` unavailable from `now` for [`MODEL_UNAVAILABLE_MS`] (a mark still in force
    /// is renewed). A new mark is announced by [`LimiterState::take_alerts`], once.
    pub fn mark_unavailable(&mut self, model: &str, reason: &str, now: u64) {
        self.roll(now);
        let model = names::model(model);
        let until_ms = now.saturating_add(MODEL_UNAVAILABLE_MS);
        let reason: String = reason.chars().filter(|c| !c.is_control()).take(MAX_REASON_CHARS).collect();
        if let Some(mark) = self.unavailable.iter_mut().find(|m| m.model == model) {
            (mark.until_ms, mark.reason) = (until_ms, reason);
            return;
        }
        if self.unavailable.len() >= MAX_UNAVAILABLE_MODELS {
            if let Some(first) = self.unavailable.iter().enumerate().min_by_key(|(_, m)| m.until_ms).map(|(i, _)| i) {
                self.unavailable.swap_remove(first);
            }
        }
        let mark = UnavailableModel { model, reason, until_ms };
        self.newly_unavailable.push(mark.clone());
        self.unavailable.push(mark);
    }

    /// The refusal of a reserve for `model` while it is marked.
    pub(super) fn refuse_unavailable(&self, model: &str, now: u64) -> Option<Refusal> {
        if self.unavailable.is_empty() {
            return None;
        }
        let canonical = names::model(model);
        let mark = self.unavailable.iter().find(|m| m.model == canonical && m.until_ms > now)?;
        let secs = mark.until_ms.saturating_sub(now).div_ceil(1000).max(1);
        Some(Refusal {
            rate_limited: false,
            over_budget: false,
            circuit_open: false,
            model_unavailable: true,
            ends_request: None,
            retry_after_secs: secs,
            message: format!(
                "its model {} answered that it is not available ({}); skipped for {secs} s more",
                mark.model, mark.reason
            ),
        })
    }

    /// The marks in force, with what is left of each (for a lease's grant: the isolate's clock
    /// is not the limiter's).
    pub(super) fn unavailable_for(&self, now: u64) -> Vec<(String, u64)> {
        self.unavailable.iter().filter(|m| m.until_ms > now).map(|m| (m.model.clone(), m.until_ms - now)).collect()
    }

    /// The alerts of marks made by the last operation.
    pub(super) fn take_unavailable_alerts(&mut self, limiter: &str) -> Vec<Alert> {
        let (spent, budget, day) = (self.spent, self.budget, super::civil_date(self.day));
        std::mem::take(&mut self.newly_unavailable)
            .into_iter()
            .map(|mark| Alert {
                limiter: limiter.to_owned(),
                threshold_percent: 0,
                spent_usd: spent,
                daily_budget_usd: budget,
                day: day.clone(),
                model_unavailable: Some(mark),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::limits::{Policy, DAY_MS};
    use crate::attempt::Health;
    use crate::money::pricing::Usd;

    const T0: u64 = 20_000 * DAY_MS + 3_600_000;
    const POLICY: Policy = Policy { requests_per_minute: 1_000, daily_budget: Usd(1_000_000), breaker: None };

    fn reserve(s: &mut LimiterState, id: &str, model: &str, now: u64) -> Result<(), Refusal> {
        s.reserve_with_report(id, Some(model), Usd(10), POLICY, None, 0, now).0
    }

    #[test]
    fn a_marked_model_is_refused_at_once_until_its_mark_ends() {
        let mut s = LimiterState::default();
        reserve(&mut s, "a", "gemini-2.5-flash", T0).unwrap();
        s.release("a", Health::Neutral, T0 + 5);
        s.mark_unavailable("gemini-2.5-flash", "models/gemini-2.5-flash is not found for API version v1beta", T0 + 5);
        let refusal = reserve(&mut s, "b", "models/gemini-2.5-flash", T0 + 10).unwrap_err();
        assert!(refusal.model_unavailable && !refusal.rate_limited && !refusal.over_budget);
        assert_eq!(refusal.retry_after_secs, (MODEL_UNAVAILABLE_MS - 5).div_ceil(1000));
        assert!(refusal.message.contains("not found for API version"), "{}", refusal.message);
        // Nothing was admitted: the rate window and the budget are untouched.
        assert_eq!(s.snapshot(T0 + 10).requests_last_minute, 1);
        // Other models of the provider are admitted.
        reserve(&mut s, "c", "gemini-3.5-flash-lite", T0 + 10).unwrap();
        // The scope limiters (no model) are never refused for one.
        assert!(s.reserve_with_report("d", None, Usd(1), POLICY, None, 0, T0 + 10).0.is_ok());
        // After the mark, the model is tried again.
        reserve(&mut s, "e", "gemini-2.5-flash", T0 + 5 + MODEL_UNAVAILABLE_MS).unwrap();
    }

    #[test]
    fn a_new_mark_is_announced_once_and_shown_until_it_ends() {
        let mut s = LimiterState::default();
        s.mark_unavailable("gpt-4-32k", "The model `gpt-4-32k` does not exist", T0);
        let alerts = s.take_alerts("openai");
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].message().contains("model `gpt-4-32k`"), "{}", alerts[0].message());
        s.mark_unavailable("gpt-4-32k", "again", T0 + 1_000);
        assert!(s.take_alerts("openai").is_empty(), "a renewal is not announced again");
        let snap = s.snapshot(T0 + 2_000);
        assert_eq!(snap.unavailable_models.len(), 1);
        assert_eq!(snap.unavailable_models[0].until_ms, T0 + 1_000 + MODEL_UNAVAILABLE_MS);
        assert!(snap.unavailable_models[0].warning("openai").starts_with("openai/gpt-4-32k answered"));
        assert!(s.snapshot(T0 + 1_000 + MODEL_UNAVAILABLE_MS).unavailable_models.is_empty());
        // Once it ended, a new mark is announced again.
        s.mark_unavailable("gpt-4-32k", "gone", T0 + 2 * MODEL_UNAVAILABLE_MS);
        assert_eq!(s.take_alerts("openai").len(), 1);
    }

    #[test]
    fn marks_are_bounded_and_survive_the_state_round_trip() {
        let mut s = LimiterState::default();
        for i in 0..MAX_UNAVAILABLE_MODELS + 5 {
            s.mark_unavailable(&format!("m{i}"), &"x".repeat(10_000), T0 + i as u64);
        }
        let snap = s.snapshot(T0 + 100);
        assert_eq!(snap.unavailable_models.len(), MAX_UNAVAILABLE_MODELS);
        assert!(snap.unavailable_models.iter().all(|m| m.reason.chars().count() <= MAX_REASON_CHARS));
        assert!(!snap.unavailable_models.iter().any(|m| m.model == "m0"), "the earliest to end went first");
        let text = serde_json::to_string(&s).unwrap();
        let mut back: LimiterState = crate::json::from_str(&text).unwrap();
        assert!(reserve(&mut back, "r", "m36", T0 + 200).unwrap_err().model_unavailable);
    }
}
