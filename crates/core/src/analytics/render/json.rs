//! The JSON view: a stable, documented schema (`schema_version` 1). Money is exact: every cost
//! is a JSON number with the exact decimal digits (no float round trip); rates are plain numbers.
//!
//! ```text
//! {
//!   "object": "analytics", "schema_version": 1,
//!   "from": RFC 3339, "to": RFC 3339,            half-open range [from, to), UTC
//!   "group_by": ["provider"],                    one or two of provider, model, agent, repository, day
//!   "complete": true, "warnings": [..],          complete=false: a page failed; totals cover what was read
//!   "source": {"name": "ledger"|"aig", "ledger_attempts", "logs_read", "log_pages", "rollup_days",
//!              "outside_range_ignored", "folded_labels"},
//!   "totals": METRICS,
//!   "groups": [ {"key": {"provider": "openai"}, ...METRICS} ],   sorted by key (days chronologically)
//!   "cross_check": {"against": "aig_logs"|"price_table", "threshold_percent",
//!                   "rows": [{"provider", "model", "requests", "aig_cost", "our_cost", "drift_percent", "flagged"}],
//!                   source=ledger only: "ran", "skipped", "flagged", "complete",
//!                   "window": {"from", "to", "checked_from", "checked_to"},
//!                   "logs_read", "ledger_attempts", "matched", "other_callers",
//!                   "missing_in_aig" | "missing_in_ledger": {"count", "examples": [{"log_id", "at", "provider", "model"}]},
//!                   "token_mismatches": {"count", "examples": [{"log_id", "provider", "model",
//!                                        "ledger": {"tokens_in", "tokens_out"}, "aig": {..}}]}}
//! }
//! METRICS = {"requests", "successes", "errors", "errors_by_status": {"429": n, "none": n},
//!   "error_rate", "cached_requests", "cache_hit_rate", "tokens_in", "tokens_out",
//!   "cost", "cost_reported", "cost_estimated", "estimated_requests", "unpriced_requests",
//!   "cache_savings", "cache_unpriced_requests",
//!   "latency_ms": {"p50", "p95", "samples"},
//!   "attempts_per_answer", "fallback_attempts", "fallback_answers", "fallback_cost",
//!   "answered_by_other_model"}                  answers that named another model than asked (ledger only)
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analytics::metrics::Metrics;
use crate::analytics::reconcile::{self, Reconciliation};
use crate::analytics::report::{hundredths, Report, Source as ReportSource};
use crate::money::pricing::Usd;
use crate::time;

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
    name: &'static str,
    ledger_attempts: u64,
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
    answered_by_other_model: u64,
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
            answered_by_other_model: m.answered_by_other_model,
        }
    }
}

#[derive(Serialize)]
struct Cross {
    /// `price_table` (source=aig: each log's cost beside our prices) or `aig_logs` (source=ledger:
    /// the ledger joined with AI Gateway's logs by log id).
    against: &'static str,
    threshold_percent: serde_json::Number,
    rows: Vec<CrossRow>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    join: Option<Join>,
}

/// The ledger's join with AI Gateway's logs (`source=ledger`).
#[derive(Serialize)]
struct Join {
    ran: bool,
    /// Why it did not run (no credentials, the Logs API unreachable, …).
    skipped: Option<String>,
    flagged: bool,
    complete: bool,
    /// The time AI Gateway's logs were read for, and where a row without partner is missing.
    window: Option<JoinWindow>,
    logs_read: u64,
    ledger_attempts: u64,
    matched: u64,
    other_callers: u64,
    missing_in_aig: Listed<MissingRow>,
    missing_in_ledger: Listed<MissingRow>,
    token_mismatches: Listed<Mismatch>,
}

#[derive(Serialize)]
struct JoinWindow {
    from: String,
    to: String,
    checked_from: String,
    checked_to: String,
}

#[derive(Serialize)]
struct Listed<T> {
    count: u64,
    examples: Vec<T>,
}

#[derive(Serialize)]
struct MissingRow {
    log_id: String,
    at: String,
    provider: String,
    model: String,
}

#[derive(Serialize)]
struct Tokens {
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
}

#[derive(Serialize)]
struct Mismatch {
    log_id: String,
    provider: String,
    model: String,
    ledger: Tokens,
    aig: Tokens,
}

fn missing(l: &reconcile::Listed<reconcile::Missing>) -> Listed<MissingRow> {
    Listed {
        count: l.count,
        examples: l
            .examples
            .iter()
            .map(|m| MissingRow {
                log_id: m.log_id.clone(),
                at: time::format_ms(m.at_ms),
                provider: m.provider.clone(),
                model: m.model.clone(),
            })
            .collect(),
    }
}

fn join(report: &Report) -> Option<Join> {
    if report.source != ReportSource::Ledger {
        return None;
    }
    let empty = Reconciliation::default();
    let r = report.reconciliation.as_ref().unwrap_or(&empty);
    Some(Join {
        ran: report.reconciliation.is_some(),
        skipped: report.reconciliation_skipped.clone(),
        flagged: r.flagged(),
        complete: r.complete,
        window: r.windows.map(|w| JoinWindow {
            from: time::format_ms(w.covered.from_ms),
            to: time::format_ms(w.covered.to_ms),
            checked_from: time::format_ms(w.checked.from_ms),
            checked_to: time::format_ms(w.checked.to_ms),
        }),
        logs_read: r.aig_logs,
        ledger_attempts: r.ledger_attempts,
        matched: r.matched,
        other_callers: r.other_callers,
        missing_in_aig: missing(&r.missing_in_aig),
        missing_in_ledger: missing(&r.missing_in_ledger),
        token_mismatches: Listed {
            count: r.token_mismatches.count,
            examples: r
                .token_mismatches
                .examples
                .iter()
                .map(|m| Mismatch {
                    log_id: m.log_id.clone(),
                    provider: m.provider.clone(),
                    model: m.model.clone(),
                    ledger: Tokens { tokens_in: m.ledger.0, tokens_out: m.ledger.1 },
                    aig: Tokens { tokens_in: m.aig.0, tokens_out: m.aig.1 },
                })
                .collect(),
        },
    })
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
            name: report.source.name(),
            ledger_attempts: report.status.ledger_attempts,
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
            against: if report.source == ReportSource::Ledger { "aig_logs" } else { "price_table" },
            join: join(report),
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
    use crate::analytics::cells::{Cells, Dim};
    use crate::analytics::logs::{LogEntry, Window};
    use crate::analytics::metrics::tests::entry;
    use crate::analytics::report::{ReadStatus, Source};
    use crate::money::pricing::Prices;

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
            source: Source::Aig,
            window,
            group_by: dims,
            cells,
            status: ReadStatus { complete: true, logs_read: 30, log_pages: 1, ..ReadStatus::default() },
            drift_threshold_bp: 500,
            reconciliation: None,
            reconciliation_skipped: None,
        }
    }

    #[test]
    fn schema_and_exact_money() {
        let report = sample_report(vec![Dim::Provider, Dim::Day]);
        let text = render(&report);
        let v: serde_json::Value = crate::json::from_str(&text).unwrap();
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

    /// A ledger view whose join found one of each disagreement.
    pub fn ledger_report() -> Report {
        use crate::analytics::reconcile::{join_windows, Listed, Missing, TokenMismatch};
        let mut r = sample_report(vec![Dim::Provider]);
        r.source = Source::Ledger;
        r.status.ledger_attempts = 30;
        let windows = join_windows(r.window, r.window.from_ms, r.window.to_ms + time::MS_PER_DAY);
        let missing = |id: &str| Listed {
            count: 1,
            examples: vec![Missing { log_id: id.into(), at_ms: 5, provider: "openai".into(), model: "gpt-4o".into() }],
        };
        r.reconciliation = Some(Reconciliation {
            windows: Some(windows),
            aig_logs: 29,
            ledger_attempts: 29,
            matched: 28,
            missing_in_aig: missing("log-<a>"),
            missing_in_ledger: missing("log-b"),
            token_mismatches: Listed {
                count: 1,
                examples: vec![TokenMismatch {
                    log_id: "log-c".into(),
                    provider: "openai".into(),
                    model: "gpt-4o".into(),
                    ledger: (Some(10), Some(5)),
                    aig: (Some(10), None),
                }],
            },
            drift: vec![crate::analytics::report::CrossCheck::new(
                "openai".into(),
                "gpt-4o".into(),
                3,
                Usd(110),
                Usd(100),
                500,
            )],
            complete: true,
            ..Reconciliation::default()
        });
        r
    }

    #[test]
    fn ledger_view_carries_the_join() {
        let v: serde_json::Value = crate::json::from_str(&render(&ledger_report())).unwrap();
        assert_eq!(v["source"]["name"], "ledger");
        assert_eq!(v["source"]["ledger_attempts"], 30);
        let c = &v["cross_check"];
        assert_eq!(
            (c["against"].as_str(), c["ran"].as_bool(), c["flagged"].as_bool()),
            (Some("aig_logs"), Some(true), Some(true))
        );
        assert_eq!(c["missing_in_aig"]["count"], 1);
        assert_eq!(c["missing_in_aig"]["examples"][0]["log_id"], "log-<a>");
        assert_eq!(c["missing_in_ledger"]["examples"][0]["at"], "1970-01-01T00:00:00.005Z");
        assert_eq!(
            c["token_mismatches"]["examples"][0]["aig"],
            serde_json::json!({"tokens_in": 10, "tokens_out": null})
        );
        assert_eq!(c["rows"][0]["drift_percent"], 10);
        assert_eq!(c["rows"][0]["flagged"], true);
        // Not run: said so, the rest of the view intact.
        let mut skipped = ledger_report();
        skipped.reconciliation = None;
        skipped.reconciliation_skipped = Some("CF_API_TOKEN is not set".into());
        let v: serde_json::Value = crate::json::from_str(&render(&skipped)).unwrap();
        assert_eq!(
            (v["cross_check"]["ran"].as_bool(), v["cross_check"]["skipped"].as_str()),
            (Some(false), Some("CF_API_TOKEN is not set"))
        );
        assert_eq!(v["cross_check"]["rows"], serde_json::json!([]));
        assert_eq!(v["totals"]["requests"], 30);
        // The logs' view has none of the join's fields.
        let aig: serde_json::Value = crate::json::from_str(&render(&sample_report(vec![Dim::Provider]))).unwrap();
        assert_eq!(aig["cross_check"]["against"], "price_table");
        assert!(aig["cross_check"].get("ran").is_none());
    }
}
