//! What is counted for a group of log rows, exactly and mergeably: every field is a count, an
//! exact sum (tokens, picodollars) or a histogram, so the metrics of two days add up to the
//! metrics of both, and a 30-day view built from daily rollups equals one built from the rows.

use std::collections::BTreeMap;

use crate::analytics::logs::LogEntry;
use crate::histogram::Histogram;
use crate::money::pricing::{Prices, Tokens, Usd};

/// The counters of one group of log rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Log rows: attempts through AI Gateway.
    pub requests: u64,
    pub successes: u64,
    /// Failed rows by `status_code` (0: the row had none).
    pub errors_by_status: BTreeMap<u16, u64>,
    pub cached: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// The sum of the rows' own `cost` (AI Gateway's estimate).
    pub cost_reported: Usd,
    pub reported_requests: u64,
    /// Our price table's cost for answered, uncached rows that had no `cost`.
    pub cost_estimated: Usd,
    pub estimated_requests: u64,
    /// Answered, uncached rows with neither a `cost` nor a price of ours: their cost is unknown.
    pub unpriced_requests: u64,
    /// What the cache hits would have cost at our prices.
    pub cache_savings: Usd,
    /// Cache hits we could not price (savings unknown for them).
    pub cache_unpriced: u64,
    /// Cross-check over answered, uncached rows that have both a `cost` and a price of ours:
    /// AI Gateway's sum and ours, over the same rows.
    pub compared_aig: Usd,
    pub compared_ours: Usd,
    pub compared_requests: u64,
    /// Rows of attempts after the first (`metadata.attempt` > 1): failover.
    pub fallback_attempts: u64,
    /// Of those, the ones that answered.
    pub fallback_answers: u64,
    /// The cost of those attempts (reported or estimated).
    pub fallback_cost: Usd,
    /// Answers that named another model than the one asked (a retired or redirected model),
    /// priced as the model that answered. Only the ledger knows: AI Gateway's logs name the
    /// model asked.
    pub answered_by_other_model: u64,
    /// `duration`, in ms.
    pub latency: Histogram,
}

impl Metrics {
    /// Counts one log row.
    pub fn add(&mut self, e: &LogEntry, prices: &Prices) {
        self.requests += 1;
        if e.success {
            self.successes += 1;
        } else {
            *self.errors_by_status.entry(e.status.unwrap_or(0)).or_default() += 1;
        }
        if e.cached {
            self.cached += 1;
        }
        self.tokens_in += e.tokens_in.unwrap_or(0);
        self.tokens_out += e.tokens_out.unwrap_or(0);
        if let Some(ms) = e.duration_ms {
            self.latency.record(ms);
        }
        // AI Gateway reports `tokens_in` as the prompt; it does not say how much of it the
        // provider's prompt cache served, so it is priced as uncached input.
        let ours = match (e.tokens_in, e.tokens_out) {
            (None, None) => None,
            (i, o) => {
                prices
                    .cost(
                        &e.provider,
                        &e.model,
                        Tokens { input: i.unwrap_or(0), cached_input: 0, output: o.unwrap_or(0), reasoning: 0 },
                    )
                    .usd
            }
        };
        let row_cost = match e.cost {
            Some(c) => {
                self.cost_reported = self.cost_reported.saturating_add(c);
                self.reported_requests += 1;
                c
            }
            // A cache hit is free, and a failure is not billed.
            None if e.cached || !e.success => Usd::ZERO,
            None => match ours {
                Some(estimate) => {
                    self.cost_estimated = self.cost_estimated.saturating_add(estimate);
                    self.estimated_requests += 1;
                    estimate
                }
                None => {
                    self.unpriced_requests += 1;
                    Usd::ZERO
                }
            },
        };
        if e.cached {
            match ours {
                Some(saved) => self.cache_savings = self.cache_savings.saturating_add(saved),
                None => self.cache_unpriced += 1,
            }
        } else if let (true, Some(aig), Some(ours)) = (e.success, e.cost, ours) {
            self.compared_aig = self.compared_aig.saturating_add(aig);
            self.compared_ours = self.compared_ours.saturating_add(ours);
            self.compared_requests += 1;
        }
        if e.attempt.is_some_and(|a| a > 1) {
            self.fallback_attempts += 1;
            if e.success {
                self.fallback_answers += 1;
            }
            self.fallback_cost = self.fallback_cost.saturating_add(row_cost);
        }
    }

    pub fn merge(&mut self, o: &Metrics) {
        self.requests += o.requests;
        self.successes += o.successes;
        for (status, n) in &o.errors_by_status {
            *self.errors_by_status.entry(*status).or_default() += n;
        }
        self.cached += o.cached;
        self.tokens_in += o.tokens_in;
        self.tokens_out += o.tokens_out;
        self.cost_reported = self.cost_reported.saturating_add(o.cost_reported);
        self.reported_requests += o.reported_requests;
        self.cost_estimated = self.cost_estimated.saturating_add(o.cost_estimated);
        self.estimated_requests += o.estimated_requests;
        self.unpriced_requests += o.unpriced_requests;
        self.cache_savings = self.cache_savings.saturating_add(o.cache_savings);
        self.cache_unpriced += o.cache_unpriced;
        self.compared_aig = self.compared_aig.saturating_add(o.compared_aig);
        self.compared_ours = self.compared_ours.saturating_add(o.compared_ours);
        self.compared_requests += o.compared_requests;
        self.fallback_attempts += o.fallback_attempts;
        self.fallback_answers += o.fallback_answers;
        self.answered_by_other_model += o.answered_by_other_model;
        self.fallback_cost = self.fallback_cost.saturating_add(o.fallback_cost);
        self.latency.merge(&o.latency);
    }

    /// Reported plus estimated.
    pub fn cost(&self) -> Usd {
        self.cost_reported.saturating_add(self.cost_estimated)
    }

    pub fn errors(&self) -> u64 {
        self.requests - self.successes
    }

    /// Share of rows that failed (0 when there are none).
    pub fn error_rate(&self) -> f64 {
        ratio(self.errors(), self.requests)
    }

    pub fn cache_hit_rate(&self) -> f64 {
        ratio(self.cached, self.requests)
    }

    /// Attempts per answered request: 1.0 when every attempt answered; `None` without answers.
    pub fn attempts_per_answer(&self) -> Option<f64> {
        (self.successes > 0).then(|| round6(self.requests as f64 / self.successes as f64))
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round6(part as f64 / whole as f64)
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn entry(provider: &str, model: &str) -> LogEntry {
        LogEntry {
            id: String::new(),
            created_ms: 0,
            provider: provider.into(),
            model: model.into(),
            duration_ms: Some(100),
            success: true,
            cached: false,
            status: Some(200),
            tokens_in: Some(1_000),
            tokens_out: Some(100),
            cost: None,
            agent: None,
            repo: None,
            attempt: None,
            from_worker: true,
        }
    }

    fn usd(s: &str) -> Usd {
        Usd::parse_dollars(s).unwrap()
    }

    #[test]
    fn reported_estimated_unpriced_and_free() {
        let prices = Prices::shipped();
        let mut m = Metrics::default();
        // Reported: AI Gateway's own number wins even where ours differs.
        m.add(&LogEntry { cost: Some(usd("0.01")), ..entry("openai", "gpt-4o") }, &prices);
        // Missing cost, priced: 1000 × 0.15 + 100 × 0.60 per M = 0.00021.
        m.add(&entry("openai", "gpt-4o-mini"), &prices);
        // Missing cost, unpriced.
        m.add(&entry("workers-ai", "@cf/meta/llama-3.1-8b-instruct"), &prices);
        // A failure without cost is free and not "unpriced".
        m.add(
            &LogEntry {
                success: false,
                status: Some(503),
                tokens_in: None,
                tokens_out: None,
                ..entry("openai", "gpt-4o")
            },
            &prices,
        );
        assert_eq!(m.requests, 4);
        assert_eq!(m.successes, 3);
        assert_eq!(m.errors_by_status, BTreeMap::from([(503, 1)]));
        assert_eq!(m.cost_reported, usd("0.01"));
        assert_eq!(m.cost_estimated, usd("0.00021"));
        assert_eq!((m.reported_requests, m.estimated_requests, m.unpriced_requests), (1, 1, 1));
        assert_eq!(m.cost(), usd("0.01021"));
        assert_eq!(m.error_rate(), 0.25);
        assert_eq!(m.attempts_per_answer(), Some(1.333333));
    }

    #[test]
    fn cache_savings_and_cross_check() {
        let prices = Prices::shipped();
        let mut m = Metrics::default();
        // A hit: cost 0, savings = our price of its tokens (1000×2.5 + 100×10 per M = 0.0035).
        m.add(&LogEntry { cached: true, cost: Some(Usd::ZERO), ..entry("openai", "gpt-4o") }, &prices);
        // Compared rows: AI Gateway says 0.0040 where we say 0.0035.
        m.add(&LogEntry { cost: Some(usd("0.004")), ..entry("openai", "gpt-4o") }, &prices);
        // A hit we cannot price.
        m.add(&LogEntry { cached: true, cost: Some(Usd::ZERO), ..entry("workers-ai", "x") }, &prices);
        assert_eq!(m.cache_savings, usd("0.0035"));
        assert_eq!(m.cache_unpriced, 1);
        assert_eq!((m.compared_aig, m.compared_ours, m.compared_requests), (usd("0.004"), usd("0.0035"), 1));
        assert_eq!(m.cache_hit_rate(), 0.666667);
    }

    #[test]
    fn fallbacks() {
        let prices = Prices::shipped();
        let mut m = Metrics::default();
        m.add(
            &LogEntry {
                success: false,
                status: Some(429),
                cost: None,
                tokens_in: None,
                tokens_out: None,
                attempt: Some(1),
                ..entry("google-ai-studio", "gemini-2.5-flash")
            },
            &prices,
        );
        m.add(&LogEntry { cost: Some(usd("0.002")), attempt: Some(2), ..entry("openai", "gpt-4o") }, &prices);
        assert_eq!((m.fallback_attempts, m.fallback_answers, m.fallback_cost), (1, 1, usd("0.002")));
        assert_eq!(m.attempts_per_answer(), Some(2.0));
    }

    #[test]
    fn merge_is_addition() {
        let prices = Prices::shipped();
        let rows: Vec<LogEntry> = (0..40u64)
            .map(|i| LogEntry {
                cached: i % 5 == 0,
                success: i % 7 != 0,
                status: Some(if i % 7 == 0 { 500 } else { 200 }),
                cost: (i % 3 != 0).then(|| Usd(i * 1_000_000)),
                duration_ms: Some(i * 13),
                attempt: Some(1 + (i % 4 == 0) as u32),
                ..entry(
                    if i % 2 == 0 { "openai" } else { "anthropic" },
                    if i % 2 == 0 { "gpt-4o" } else { "claude-haiku-4-5" },
                )
            })
            .collect();
        let mut all = Metrics::default();
        let (mut a, mut b) = (Metrics::default(), Metrics::default());
        for (i, r) in rows.iter().enumerate() {
            all.add(r, &prices);
            if i < 17 {
                a.add(r, &prices)
            } else {
                b.add(r, &prices)
            }
        }
        a.merge(&b);
        assert_eq!(a, all);
    }
}
