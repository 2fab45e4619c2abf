//! The CSV view, for spreadsheets: one row per group, then a `total` row (labelled
//! `total (partial …)` when a page could not be read, so the gap is visible in the sheet itself).
//! Costs are exact decimals. Text cells that a spreadsheet would run as a formula (`=`, `+`, `-`,
//! `@`) are prefixed with `'`: agent and repository names come from request metadata.

use crate::analytics::metrics::Metrics;
use crate::analytics::report::Report;

const COLUMNS: &[&str] = &[
    "requests",
    "successes",
    "errors",
    "error_rate",
    "cached_requests",
    "cache_hit_rate",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "cost_reported_usd",
    "cost_estimated_usd",
    "estimated_requests",
    "unpriced_requests",
    "cache_savings_usd",
    "latency_p50_ms",
    "latency_p95_ms",
    "attempts_per_answer",
    "fallback_attempts",
    "fallback_cost_usd",
    "answered_by_other_model",
];

/// One text cell, quoted when needed and defused against formula injection.
fn text_cell(s: &str) -> String {
    let defused = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn metric_cells(m: &Metrics) -> Vec<String> {
    vec![
        m.requests.to_string(),
        m.successes.to_string(),
        m.errors().to_string(),
        m.error_rate().to_string(),
        m.cached.to_string(),
        m.cache_hit_rate().to_string(),
        m.tokens_in.to_string(),
        m.tokens_out.to_string(),
        m.cost().to_string(),
        m.cost_reported.to_string(),
        m.cost_estimated.to_string(),
        m.estimated_requests.to_string(),
        m.unpriced_requests.to_string(),
        m.cache_savings.to_string(),
        opt(m.latency.quantile(0.5)),
        opt(m.latency.quantile(0.95)),
        opt(m.attempts_per_answer()),
        m.fallback_attempts.to_string(),
        m.fallback_cost.to_string(),
        m.answered_by_other_model.to_string(),
    ]
}

pub fn render(report: &Report) -> String {
    let dims = &report.group_by;
    let mut out = String::new();
    let header: Vec<&str> = dims.iter().map(|d| d.name()).chain(COLUMNS.iter().copied()).collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for (labels, m) in report.cells.group(dims) {
        let row: Vec<String> = labels.iter().map(|l| text_cell(l)).chain(metric_cells(&m)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    let total_label = if report.status.complete {
        "total".to_owned()
    } else {
        text_cell(&format!("total (partial: {})", report.status.warnings.join("; ")))
    };
    let row: Vec<String> = std::iter::once(total_label)
        .chain((1..dims.len()).map(|_| String::new()))
        .chain(metric_cells(&report.cells.totals()))
        .collect();
    out.push_str(&row.join(","));
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::cells::Dim;
    use crate::analytics::render::json::tests::sample_report;

    #[test]
    fn header_rows_and_total() {
        let report = sample_report(vec![Dim::Repo, Dim::Agent]);
        let text = render(&report);
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert!(lines[0].starts_with("repository,agent,requests,successes,errors,"));
        let n = COLUMNS.len() + 2;
        for line in &lines {
            assert_eq!(line.split(',').count(), n, "{line}");
        }
        assert!(lines.iter().any(|l| l.starts_with("octo-org/<docs>,PRReviewAgent,")));
        let total = lines.last().unwrap();
        assert!(total.starts_with("total,,30,"));
        assert!(total.contains(&report.cells.totals().cost().to_string()));
    }

    #[test]
    fn partial_is_said_in_the_sheet() {
        let mut report = sample_report(vec![Dim::Provider]);
        report.status.complete = false;
        report.status.warnings = vec!["page 3 failed, 500".into()];
        let text = render(&report);
        assert!(text.contains("\"total (partial: page 3 failed, 500)\""), "{text}");
    }

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(text_cell("plain"), "plain");
        assert_eq!(text_cell("a,b"), "\"a,b\"");
        assert_eq!(text_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(text_cell("-1"), "'-1");
    }
}
