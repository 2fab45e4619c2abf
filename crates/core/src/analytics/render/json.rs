//! The JSON view: a stable, documented schema (`schema_version` 1). Money is exact: every cost
//! is a JSON number with the exact decimal digits (no float round trip); rates are plain numbers.
//!
//! ```text
//! {
//!   "object": "analytics", "schema_version": 1,
//!   "from": RFC 3339, "to": RFC 3339,            half-open range [from, to), UTC
//!   "group_by": ["provider"],                    one or two of provider, model, agent, repository, day
//!   "complete": true, "warnings": [..],          complete=false: a page failed; totals cover what was read
//!   "source": {"logs_read", "log_pages", "rollup_days", "outside_range_ignored", "folded_labels"},
//!   "totals": METRICS,
//!   "groups": [ {"key": {"provider": "openai"}, ...METRICS} ],   sorted by key (days chronologically)
//!   "cross_check": {"threshold_percent", "rows": [{"provider", "model", "requests",
//!                   "aig_cost", "our_cost", "drift_percent", "flagged"}]}
//! }
//! METRICS = {"requests", "successes", "errors", "errors_by_status": {"429": n, "none": n},
//!   "error_rate", "cached_requests", "cache_hit_rate", "tokens_in", "tokens_out",
//!   "cost", "cost_reported", "cost_estimated", "estimated_requests", "unpriced_requests",
//!   "cache_savings", "cache_unpriced_requests",
//!   "latency_ms": {"p50", "p95", "samples"},
//!   "attempts_per_answer", "fallback_attempts", "fallback_answers", "fallback_cost"}
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::account::pricing::Usd;
use crate::analytics::metrics::Metrics;
use crate::analytics::report::{hundredths, Report};
use crate::analytics::time;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Body<'a> {
    object: &'static str,
    schema_version: u32,
    from: String,
    to: String,
    group_by: Vec<&'static str>,
    complete: bool,
    warnings: &'a [String],
    source: Source,
    totals: MetricsJson,
    groups: Vec<MetricsJson>,
    cross_check: Cross,
}

#[derive(Serialize)]
struct Source {
    logs_read: u64,
    log_pages: u32,
    rollup_days: u32,
    outside_range_ignored: u64,
    folded_labels: u64,
}

#[derive(Serialize)]
struct Latency {
    p50: Option<u64>,
    p95: Option<u64>,
    samples: u64,
}

#[derive(Serialize)]
struct MetricsJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<BTreeMap<&'static str, String>>,
    requests: u64,
    successes: u64,
    errors: u64,
    errors_by_status: BTreeMap<String, u64>,
    error_rate: f64,
    cached_requests: u64,
    cache_hit_rate: f64,
    tokens_in: u64,
    tokens_out: u64,
    cost: Usd,
    cost_reported: Usd,
    cost_estimated: Usd,
    estimated_requests: u64,
    unpriced_requests: u64,
    cache_savings: Usd,
    cache_unpriced_requests: u64,
    latency_ms: Latency,
    attempts_per_answer: Option<f64>,
    fallback_attempts: u64,
    fallback_answers: u64,
    fallback_cost: Usd,
}

impl MetricsJson {
    fn new(key: Option<BTreeMap<&'static str, String>>, m: &Metrics) -> MetricsJson {
        MetricsJson {
            key,
            requests: m.requests,
            successes: m.successes,
            errors: m.errors(),
            errors_by_status: m
                .errors_by_status
                .iter()
                .map(|(s, n)| (if *s == 0 { "none".to_owned() } else { s.to_string() }, *n))
                .collect(),
            error_rate: m.error_rate(),
            cached_requests: m.cached,
            cache_hit_rate: m.cache_hit_rate(),
            tokens_in: m.tokens_in,
            tokens_out: m.tokens_out,
            cost: m.cost(),
            cost_reported: m.cost_reported,
            cost_estimated: m.cost_estimated,
            estimated_requests: m.estimated_requests,
            unpriced_requests: m.unpriced_requests,
            cache_savings: m.cache_savings,
            cache_unpriced_requests: m.cache_unpriced,
            latency_ms: Latency {
                p50: m.latency.quantile(0.5),
                p95: m.latency.quantile(0.95),
                samples: m.latency.count(),
            },
            attempts_per_answer: m.attempts_per_answer(),
            fallback_attempts: m.fallback_attempts,
            fallback_answers: m.fallback_answers,
            fallback_cost: m.fallback_cost,
        }
    }
}

#[derive(Serialize)]
struct Cross {
    threshold_percent: serde_json::Number,
    rows: Vec<CrossRow>,
}

#[derive(Serialize)]
struct CrossRow {
    provider: String,
    model: String,
    requests: u64,
    aig_cost: Usd,
    our_cost: Usd,
    drift_percent: Option<serde_json::Number>,
    flagged: bool,
}

fn number(hundredths_value: i64) -> serde_json::Number {
    hundredths(hundredths_value).parse().unwrap_or_else(|_| serde_json::Number::from(0))
}

pub fn render(report: &Report) -> String {
    let dims = &report.group_by;
    let body = Body {
        object: "analytics",
        schema_version: SCHEMA_VERSION,
        from: time::format_ms(report.window.from_ms),
        to: time::format_ms(report.window.to_ms),
        group_by: dims.iter().map(|d| d.name()).collect(),
        complete: report.status.complete,
        warnings: &report.status.warnings,
        source: Source {
            logs_read: report.status.logs_read,
            log_pages: report.status.log_pages,
            rollup_days: report.status.rollup_days,
            outside_range_ignored: report.cells.outside,
            folded_labels: report.cells.folded,
        },
        totals: MetricsJson::new(None, &report.cells.totals()),
        groups: report
            .cells
            .group(dims)
            .iter()
            .map(|(labels, m)| {
                let key = dims.iter().map(|d| d.name()).zip(labels.iter().cloned()).collect();
                MetricsJson::new(Some(key), m)
            })
            .collect(),
        cross_check: Cross {
            threshold_percent: number(report.drift_threshold_bp as i64),
            rows: report
                .cross_check()
                .into_iter()
                .map(|c| CrossRow {
                    provider: c.provider,
                    model: c.model,
                    requests: c.requests,
                    aig_cost: c.aig_cost,
                    our_cost: c.our_cost,
                    drift_percent: c.drift_bp.map(number),
                    flagged: c.flagged,
                })
                .collect(),
        },
    };
    serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::account::pricing::Prices;
    use crate::analytics::cells::{Cells, Dim};
    use crate::analytics::logs::{LogEntry, Window};
    use crate::analytics::metrics::tests::entry;
    use crate::analytics::report::ReadStatus;

    pub fn sample_report(dims: Vec<Dim>) -> Report {
        let prices = Prices::shipped();
        let window = Window { from_ms: 0, to_ms: 3 * time::MS_PER_DAY };
        let mut cells = Cells::default();
        for i in 0..30i64 {
            let e = LogEntry {
                created_ms: i * 7_200_000,
                cost: (i % 4 != 0).then_some(Usd(1_234_567_891)),
                success: i % 10 != 9,
                status: Some(if i % 10 == 9 { 429 } else { 200 }),
                cached: i % 7 == 0,
                agent: Some(["TriagingAgent", "PRReviewAgent"][(i % 2) as usize].into()),
                repo: (i % 3 == 0).then(|| "octo-org/<docs>".to_owned()),
                ..entry(
                    ["openai", "google-ai-studio"][(i % 2) as usize],
                    ["gpt-4o", "gemini-2.5-flash"][(i % 2) as usize],
                )
            };
            cells.add(&e, window, &prices);
        }
        Report {
            window,
            group_by: dims,
            cells,
            status: ReadStatus { complete: true, warnings: vec![], logs_read: 30, log_pages: 1, rollup_days: 0 },
            drift_threshold_bp: 500,
        }
    }

    #[test]
    fn schema_and_exact_money() {
        let report = sample_report(vec![Dim::Provider, Dim::Day]);
        let text = render(&report);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["object"], "analytics");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["group_by"], serde_json::json!(["provider", "day"]));
        assert_eq!(v["from"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["totals"]["requests"], 30);
        assert_eq!(v["totals"]["errors_by_status"]["429"], 3);
        assert_eq!(v["groups"][0]["key"], serde_json::json!({"provider": "google-ai-studio", "day": "1970-01-01"}));
        // Exact decimal digits in the text, not a float's.
        let totals = report.cells.totals();
        assert!(text.contains(&format!("\"cost\":{}", totals.cost())), "{text}");
        assert!(text.contains("\"threshold_percent\":5"));
        let sum: u64 = v["groups"].as_array().unwrap().iter().map(|g| g["requests"].as_u64().unwrap()).sum();
        assert_eq!(sum, 30);
        assert!(v["totals"].get("key").is_none());
    }
}
