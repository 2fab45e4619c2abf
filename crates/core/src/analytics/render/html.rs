//! The HTML dashboard: one self-contained page (inline CSS and SVG; no script, font or image
//! from anywhere), so it renders offline and under `default-src 'none'`.
//!
//! What an operator reads first: cost per provider per day (a stacked bar chart), then tables
//! per provider, model, agent and repository, cache savings, error rates, the cross-check of AI
//! Gateway's cost against our price table, and a banner when the result is partial. Every number
//! in a table carries its exact value in `data-value` (costs to the picodollar), so tests can
//! check the page against the JSON.

use std::fmt::Write;

use crate::account::budgets::BudgetsToday;
use crate::analytics::cells::Dim;
use crate::analytics::metrics::Metrics;
use crate::analytics::query::{AnalyticsQuery, Format};
use crate::analytics::render::{percent, thousands, usd_for_display};
use crate::analytics::report::{hundredths, Report, Source};
use crate::money::pricing::Usd;
use crate::time::{self, MS_PER_DAY};

/// The `Content-Security-Policy` the page is served with.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; \
                       base-uri 'none'; frame-ancestors 'none'";

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours per provider (their brands, roughly); others take the palette in turn.
fn colour(provider: &str, index: usize) -> &'static str {
    match provider {
        "google-ai-studio" | "google-vertex-ai" => "#4285f4",
        "openai" => "#10a37f",
        "anthropic" => "#d97757",
        "workers-ai" => "#8e44ad",
        _ => ["#6366f1", "#eab308", "#ec4899", "#14b8a6", "#64748b", "#0ea5e9"][index % 6],
    }
}

const STYLE: &str = r#"
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--warn:#b45309;--bad:#b91c1c;--ok:#047857}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Helvetica,Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:24px 28px 40px}
header{display:flex;flex-wrap:wrap;align-items:flex-end;justify-content:space-between;gap:12px;margin-bottom:18px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:0 0 12px}
.sub{color:var(--muted)}
form{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
input,select,button{font:inherit;padding:5px 8px;border:1px solid var(--line);border-radius:6px;background:#fff;color:var(--ink)}
button{background:var(--ink);color:#fff;border-color:var(--ink);cursor:pointer}
a{color:#2563eb;text-decoration:none}
.banner{border-radius:8px;padding:10px 14px;margin:0 0 14px;border:1px solid}
.banner.partial{background:#fef2f2;border-color:#fecaca;color:var(--bad)}
.banner.drift{background:#fffbeb;border-color:#fde68a;color:var(--warn)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(175px,1fr));gap:12px;margin-bottom:16px}
.card,section{background:var(--card);border:1px solid var(--line);border-radius:10px}
.card{padding:12px 14px}
.card .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.card .value{font-size:24px;font-weight:650;margin-top:2px;font-variant-numeric:tabular-nums}
.card .note{color:var(--muted);font-size:12px}
section{padding:16px 18px;margin-bottom:16px;overflow-x:auto}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
.grid2 section{margin-bottom:0}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:5px 7px;border-bottom:1px solid var(--line);white-space:nowrap;font-size:12.5px}
th{font-size:12px;color:var(--muted);font-weight:600;text-align:right;background:#f1f5f9}
th:first-child,td:first-child,th.t,td.t{text-align:left}
td{text-align:right}
tr:last-child td{border-bottom:0}
tbody tr:nth-child(even){background:#fafcff}
tfoot td{font-weight:650;border-top:2px solid var(--line)}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;vertical-align:baseline}
.legend{display:flex;flex-wrap:wrap;gap:14px;margin-top:6px;color:var(--muted)}
.bad{color:var(--bad);font-weight:600}
.ok{color:var(--ok)}
.est{color:var(--warn)}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;fill:#475569}
footer{color:var(--muted);font-size:12px;margin-top:8px}
"#;

/// A table cell holding a number: shown rounded, exact in `data-value`.
pub(crate) fn num_td(out: &mut String, field: &str, exact: &str, shown: &str, class: &str) {
    let _ = write!(out, r#"<td data-field="{field}" data-value="{}""#, esc(exact));
    if !class.is_empty() {
        let _ = write!(out, r#" class="{class}""#);
    }
    let _ = write!(out, ">{}</td>", esc(shown));
}

fn opt_ms(v: Option<u64>) -> (String, String) {
    match v {
        Some(ms) if ms >= 10_000 => (ms.to_string(), format!("{} s", thousands((ms + 500) / 1000))),
        Some(ms) if ms >= 1_000 => (ms.to_string(), format!("{}.{} s", ms / 1000, (ms % 1000 + 50) / 100 % 10)),
        Some(ms) => (ms.to_string(), format!("{ms} ms")),
        None => (String::new(), "—".to_owned()),
    }
}

/// The columns of a group table; a compact table (two side by side) shows the first six.
const GROUP_HEADERS: &[&str] = &[
    "Requests",
    "Cost",
    "Error rate",
    "Cache hits",
    "Cache savings",
    "p95",
    "Estimated",
    "Tokens in",
    "Tokens out",
    "p50",
    "Attempts/answer",
];
const COMPACT_COLUMNS: usize = 5;

fn metric_tds(out: &mut String, m: &Metrics, columns: usize) {
    let (p50, p50_shown) = opt_ms(m.latency.quantile(0.5));
    let (p95, p95_shown) = opt_ms(m.latency.quantile(0.95));
    let apa = m.attempts_per_answer();
    let est_class = if m.cost_estimated > Usd::ZERO { "est" } else { "" };
    let rate_class = if m.error_rate() >= 0.1 { "bad" } else { "" };
    let cells: [(&str, String, String, &str); 11] = [
        // ‡ : some answers named another model than the one asked (a retired or redirected
        // model), and were priced as it.
        (
            "requests",
            m.requests.to_string(),
            format!("{}{}", thousands(m.requests), if m.answered_by_other_model > 0 { "‡" } else { "" }),
            "",
        ),
        // † : some rows have no cost at all (no price known); they count as $0.
        (
            "cost",
            m.cost().to_string(),
            format!("{}{}", usd_for_display(m.cost()), if m.unpriced_requests > 0 { "†" } else { "" }),
            "",
        ),
        ("error_rate", m.error_rate().to_string(), percent(m.error_rate()), rate_class),
        ("cached_requests", m.cached.to_string(), thousands(m.cached), ""),
        (
            "cache_savings",
            m.cache_savings.to_string(),
            format!("{}{}", usd_for_display(m.cache_savings), if m.cache_unpriced > 0 { "†" } else { "" }),
            "ok",
        ),
        ("latency_p95_ms", p95, p95_shown, ""),
        ("cost_estimated", m.cost_estimated.to_string(), usd_for_display(m.cost_estimated), est_class),
        ("tokens_in", m.tokens_in.to_string(), thousands(m.tokens_in), ""),
        ("tokens_out", m.tokens_out.to_string(), thousands(m.tokens_out), ""),
        ("latency_p50_ms", p50, p50_shown, ""),
        (
            "attempts_per_answer",
            apa.map(|a| a.to_string()).unwrap_or_default(),
            apa.map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into()),
            "",
        ),
    ];
    for (field, exact, shown, class) in cells.iter().take(columns) {
        num_td(out, field, exact, shown, class);
    }
}

/// A table of metrics per group, biggest cost first, with a totals row.
fn group_table(out: &mut String, id: &str, title: &str, dims: &[Dim], report: &Report, compact: bool) {
    let columns = if compact { COMPACT_COLUMNS } else { GROUP_HEADERS.len() };
    let mut groups = report.cells.group(dims);
    // Labels are unique, so an unstable sort is deterministic (and smaller in wasm).
    groups.sort_unstable_by(|a, b| b.1.cost().cmp(&a.1.cost()).then_with(|| a.0.cmp(&b.0)));
    let _ = write!(out, r#"<section id="{id}"><h2>{}</h2><table data-group="{id}"><thead><tr>"#, esc(title));
    for d in dims {
        let _ = write!(out, r#"<th class="t">{}</th>"#, esc(&capitalise(d.name())));
    }
    for h in GROUP_HEADERS.iter().take(columns) {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    if groups.is_empty() {
        let _ =
            write!(out, r#"<tr><td colspan="{}" class="sub">Nothing in this range.</td></tr>"#, dims.len() + columns);
    }
    for (labels, m) in &groups {
        let _ = write!(out, r#"<tr data-key="{}">"#, esc(&labels.join("|")));
        for (i, l) in labels.iter().enumerate() {
            let swatch = if dims[i] == Dim::Provider {
                let idx = providers(report).iter().position(|p| p == l).unwrap_or(0);
                format!(r#"<span class="swatch" style="background:{}"></span>"#, colour(l, idx))
            } else {
                String::new()
            };
            let _ = write!(out, r#"<td class="t">{swatch}{}</td>"#, esc(l));
        }
        metric_tds(out, m, columns);
        out.push_str("</tr>");
    }
    out.push_str("</tbody><tfoot><tr data-key=\"total\">");
    let _ = write!(out, "<td>Total</td>");
    for _ in 1..dims.len() {
        out.push_str("<td></td>");
    }
    metric_tds(out, &report.cells.totals(), columns);
    out.push_str("</tr></tfoot></table></section>");
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Providers in the report, biggest cost first (so colours and stacking are stable).
fn providers(report: &Report) -> Vec<String> {
    let mut p = report.cells.group(&[Dim::Provider]);
    p.sort_unstable_by(|a, b| b.1.cost().cmp(&a.1.cost()).then_with(|| a.0.cmp(&b.0)));
    p.into_iter().map(|(k, _)| k[0].clone()).collect()
}

/// A round tick step (1, 2 or 5 × 10^k) giving at most four steps up to `max`, and the number of
/// steps.
fn axis_steps(max: f64) -> (f64, u32) {
    if max <= 0.0 {
        return (1.0, 4);
    }
    let raw = max / 4.0;
    let base = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|f| f * base).find(|v| *v >= raw * 0.999_999).unwrap_or(10.0 * base);
    (step, ((max / step) - 1e-9).ceil().max(1.0) as u32)
}

fn axis_label(v: f64) -> String {
    if v == 0.0 {
        "$0".into()
    } else if v >= 100.0 {
        format!("${v:.0}")
    } else if v >= 1.0 {
        format!("${v:.2}")
    } else {
        let s = format!("{v:.6}");
        format!("${}", s.trim_end_matches('0'))
    }
}

/// Cost per provider per day: stacked bars, one per UTC day of the range.
fn chart(out: &mut String, report: &Report) {
    let first_day = time::day_of(report.window.from_ms);
    let last_day = time::day_of(report.window.to_ms - 1);
    let days: Vec<i64> = (first_day..=last_day).collect();
    let order = providers(report);
    let cells = report.cells.group(&[Dim::Day, Dim::Provider]);
    let cost_of = |day: &str, provider: &str| {
        cells.iter().find(|(k, _)| k[0] == day && k[1] == provider).map(|(_, m)| m.cost()).unwrap_or(Usd::ZERO)
    };
    let day_totals: Vec<Usd> = days
        .iter()
        .map(|d| {
            let label = time::format_day(*d);
            order.iter().fold(Usd::ZERO, |acc, p| acc.saturating_add(cost_of(&label, p)))
        })
        .collect();
    let max = day_totals.iter().map(|u| u.as_f64()).fold(0.0, f64::max);
    let (step, steps) = axis_steps(max);
    let top = step * f64::from(steps);
    let (w, h, left, right, top_pad, bottom) = (960.0, 300.0, 70.0, 12.0, 14.0, 34.0);
    let plot_w = w - left - right;
    let plot_h = h - top_pad - bottom;
    let band = plot_w / days.len().max(1) as f64;
    let bar = (band * 0.72).max(1.0);
    let _ = write!(
        out,
        r#"<svg id="cost-chart" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Cost per provider per day" xmlns="http://www.w3.org/2000/svg">"#
    );
    for i in 0..=steps {
        let v = step * f64::from(i);
        let y = top_pad + plot_h - plot_h * f64::from(i) / f64::from(steps);
        let _ = write!(
            out,
            r##"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{}" stroke-width="1"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            w - right,
            if i == 0 { "#94a3b8" } else { "#e2e8f0" },
            left - 8.0,
            y + 4.0,
            esc(&axis_label(v))
        );
    }
    let label_every = days.len().div_ceil(16).max(1);
    for (i, d) in days.iter().enumerate() {
        let label = time::format_day(*d);
        let x = left + band * i as f64 + (band - bar) / 2.0;
        let mut y = top_pad + plot_h;
        for (pi, p) in order.iter().enumerate() {
            let cost = cost_of(&label, p);
            if cost == Usd::ZERO {
                continue;
            }
            let bh = plot_h * cost.as_f64() / top;
            y -= bh;
            let _ = write!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.2}" fill="{}" data-day="{label}" data-provider="{}" data-cost="{cost}"><title>{} · {} · {}</title></rect>"#,
                colour(p, pi),
                esc(p),
                esc(&label),
                esc(p),
                usd_for_display(cost)
            );
        }
        if i % label_every == 0 {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                h - bottom + 16.0,
                esc(&label[5..])
            );
        }
    }
    if max == 0.0 {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">No cost in this range</text>"#,
            left + plot_w / 2.0,
            top_pad + plot_h / 2.0
        );
    }
    out.push_str("</svg><div class=\"legend\">");
    for (i, p) in order.iter().enumerate() {
        let _ =
            write!(out, r#"<span><span class="swatch" style="background:{}"></span>{}</span>"#, colour(p, i), esc(p));
    }
    out.push_str("</div>");
}

fn card(out: &mut String, id: &str, label: &str, exact: &str, value: &str, note: &str) {
    let _ = write!(
        out,
        r#"<div class="card" id="{id}"><div class="label">{}</div><div class="value" data-value="{}">{}</div><div class="note">{}</div></div>"#,
        esc(label),
        esc(exact),
        esc(value),
        note
    );
}

fn short_range(ms: i64) -> String {
    let t = time::format_ms(ms);
    format!("{} {}", &t[..10], &t[11..16])
}

/// The ledger against AI Gateway's logs: what was compared, and every row that disagrees
/// (listed up to the examples kept; counted in full).
fn reconciliation(out: &mut String, report: &Report) {
    out.push_str("<h2>Cross-check: the ledger vs AI Gateway's logs, by log id</h2>");
    let Some(r) = &report.reconciliation else {
        let why = report.reconciliation_skipped.as_deref().unwrap_or("not asked for");
        let _ = write!(out, r#"<p class="sub" id="reconcile-summary">Did not run: {}</p>"#, esc(why));
        return;
    };
    let window = r.windows.map(|w| {
        format!(
            " Logs of {} → {} read; rows without a partner count from {} to {} (clock margin, logs still arriving).",
            short_range(w.covered.from_ms),
            short_range(w.covered.to_ms),
            short_range(w.checked.from_ms),
            short_range(w.checked.to_ms)
        )
    });
    let _ = write!(
        out,
        r#"<p class="sub" id="reconcile-summary">{} AI Gateway logs ({} from other callers of the gateway) and {} ledger attempts; {} matched.{}{}</p>"#,
        thousands(r.aig_logs),
        thousands(r.other_callers),
        thousands(r.ledger_attempts),
        thousands(r.matched),
        esc(&window.unwrap_or_default()),
        if r.complete { "" } else { " A side was cut by its bound: missing rows are not reported." }
    );
    let mut table = |id: &str, title: &str, count: u64, rows: Vec<(String, i64, String, String)>| {
        let class = if count > 0 { "bad" } else { "ok" };
        let _ = write!(
            out,
            r#"<p><strong>{}</strong>: <span class="{class}" data-field="{id}" data-value="{count}">{}</span></p>"#,
            esc(title),
            thousands(count)
        );
        if rows.is_empty() {
            return;
        }
        let _ = write!(
            out,
            r#"<table data-group="{id}"><thead><tr><th class="t">Log id</th><th class="t">When</th><th class="t">Provider</th><th class="t">Model</th></tr></thead><tbody>"#
        );
        for (log_id, at, provider, model) in rows {
            let _ = write!(
                out,
                r#"<tr data-key="{}"><td class="t">{}</td><td class="t">{}</td><td class="t">{}</td><td class="t">{}</td></tr>"#,
                esc(&log_id),
                esc(&log_id),
                esc(&time::format_ms(at)),
                esc(&provider),
                esc(&model)
            );
        }
        out.push_str("</tbody></table>");
    };
    let rows = |l: &crate::analytics::reconcile::Listed<crate::analytics::reconcile::Missing>| {
        l.examples.iter().map(|m| (m.log_id.clone(), m.at_ms, m.provider.clone(), m.model.clone())).collect()
    };
    table("missing-in-aig", "Attempts missing in AI Gateway's logs", r.missing_in_aig.count, rows(&r.missing_in_aig));
    table("missing-in-ledger", "Logs missing in the ledger", r.missing_in_ledger.count, rows(&r.missing_in_ledger));
    let t = &r.token_mismatches;
    let _ = write!(
        out,
        r#"<p><strong>Token counts that differ</strong>: <span class="{}" data-field="token-mismatches" data-value="{}">{}</span></p>"#,
        if t.count > 0 { "bad" } else { "ok" },
        t.count,
        thousands(t.count)
    );
    if !t.examples.is_empty() {
        out.push_str(r#"<table data-group="token-mismatches"><thead><tr><th class="t">Log id</th><th class="t">Provider</th><th class="t">Model</th><th>Ledger in</th><th>Ledger out</th><th>AI Gateway in</th><th>AI Gateway out</th></tr></thead><tbody>"#);
        let n = |v: Option<u64>| {
            (v.map(|v| v.to_string()).unwrap_or_default(), v.map(thousands).unwrap_or_else(|| "—".into()))
        };
        for m in &t.examples {
            let _ = write!(
                out,
                r#"<tr data-key="{}"><td class="t">{}</td><td class="t">{}</td><td class="t">{}</td>"#,
                esc(&m.log_id),
                esc(&m.log_id),
                esc(&m.provider),
                esc(&m.model)
            );
            for (field, v) in
                [("ledger_in", m.ledger.0), ("ledger_out", m.ledger.1), ("aig_in", m.aig.0), ("aig_out", m.aig.1)]
            {
                let (exact, shown) = n(v);
                num_td(out, field, &exact, &shown, "");
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
}

/// The whole page; with `budgets`, the "Budgets today" panel after the headline numbers.
pub fn render(report: &Report, query: &AnalyticsQuery, budgets: Option<&BudgetsToday>) -> String {
    let totals = report.cells.totals();
    let cross = report.cross_check();
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light">"#);
    out.push_str("<title>AI cost · agent-gateway</title><style>");
    out.push_str(STYLE);
    out.push_str(super::budgets::STYLE);
    out.push_str("</style></head><body><main>");

    // Header: range, source, and the form to change the view (plain GET, no script).
    let days = (report.window.to_ms - report.window.from_ms) as f64 / MS_PER_DAY as f64;
    let ledger = report.source == Source::Ledger;
    let read = if ledger {
        format!(
            "{} attempts from the ledger · {} AI Gateway logs cross-checked",
            thousands(report.status.ledger_attempts),
            thousands(report.status.logs_read)
        )
    } else {
        format!("{} logs read · {} days from rollups", thousands(report.status.logs_read), report.status.rollup_days)
    };
    let _ = write!(
        out,
        r#"<header><div><h1>{}</h1><div class="sub" id="range">{} → {} UTC ({days:.1} days) · {read}</div></div>"#,
        if ledger { "AI cost (ledger)" } else { "AI Gateway cost" },
        short_range(report.window.from_ms),
        short_range(report.window.to_ms),
    );
    let group_value: Vec<&str> = query.group_by.iter().map(|d| d.name()).collect();
    let group_value = group_value.join(",");
    let _ = write!(
        out,
        r#"<form method="get" action="/analytics"><input type="hidden" name="format" value="html"><input type="hidden" name="source" value="{}"><label>From <input name="from" size="24" value="{}"></label><label>To <input name="to" size="24" value="{}"></label><label>Group <select name="group_by">"#,
        report.source.name(),
        esc(&time::format_ms(report.window.from_ms)),
        esc(&time::format_ms(report.window.to_ms))
    );
    for option in
        ["provider", "model", "agent", "repository", "day", "provider,day", "model,day", "agent,day", "repository,day"]
    {
        let selected = if option == group_value { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{option}"{selected}>{option}</option>"#);
    }
    let _ = write!(
        out,
        r#"</select></label><button type="submit">Show</button><a href="{}">JSON</a><a href="{}">CSV</a></form></header>"#,
        esc(&format!("/analytics{}", query.link(Format::Json))),
        esc(&format!("/analytics{}", query.link(Format::Csv)))
    );

    if !report.status.complete {
        let _ = write!(
            out,
            r#"<div class="banner partial" id="partial" role="alert"><strong>Partial result.</strong> Not every log could be read, so these totals cover only the {} logs that were: {}</div>"#,
            thousands(report.status.logs_read),
            esc(&report.status.warnings.join("; "))
        );
    }
    let flagged: Vec<String> =
        cross.iter().filter(|c| c.flagged).map(|c| format!("{}/{}", c.provider, c.model)).collect();
    if !flagged.is_empty() {
        let _ = write!(
            out,
            r#"<div class="banner drift" id="drift"><strong>Cost drift.</strong> AI Gateway's cost differs from {} by more than {}% for {}. See the cross-check below.</div>"#,
            if ledger { "the ledger's" } else { "our price table" },
            hundredths(report.drift_threshold_bp as i64),
            esc(&flagged.join(", "))
        );
    }
    if let Some(r) = &report.reconciliation {
        let (a, l, t) = (r.missing_in_aig.count, r.missing_in_ledger.count, r.token_mismatches.count);
        if a + l + t > 0 {
            let _ = write!(
                out,
                r#"<div class="banner drift" id="disagreement"><strong>The ledger and AI Gateway disagree.</strong> {} attempts missing in AI Gateway's logs, {} logs missing in the ledger, {} with other token counts. See the cross-check below.</div>"#,
                thousands(a),
                thousands(l),
                thousands(t)
            );
        }
    }
    if let Some(why) = &report.reconciliation_skipped {
        let _ = write!(
            out,
            r#"<div class="banner drift" id="cross-check-skipped"><strong>No cross-check.</strong> The ledger's numbers are complete, but they could not be checked against AI Gateway's logs: {}</div>"#,
            esc(why)
        );
    }

    // Headline numbers.
    out.push_str(r#"<div class="cards">"#);
    let est_note = if totals.cost_estimated > Usd::ZERO {
        format!(
            r#"reported {} + <span class="est">estimated {}</span>"#,
            usd_for_display(totals.cost_reported),
            usd_for_display(totals.cost_estimated)
        )
    } else {
        if ledger { "as charged, from the ledger" } else { "as reported by AI Gateway" }.to_owned()
    };
    card(&mut out, "total-cost", "Total cost", &totals.cost().to_string(), &usd_for_display(totals.cost()), &est_note);
    card(
        &mut out,
        "total-requests",
        "Requests",
        &totals.requests.to_string(),
        &thousands(totals.requests),
        &format!("{} answered", thousands(totals.successes)),
    );
    card(
        &mut out,
        "error-rate",
        "Error rate",
        &totals.error_rate().to_string(),
        &percent(totals.error_rate()),
        &format!("{} failed attempts", thousands(totals.errors())),
    );
    card(
        &mut out,
        "cache-savings",
        "Cache savings",
        &totals.cache_savings.to_string(),
        &usd_for_display(totals.cache_savings),
        &format!("{} hits ({})", thousands(totals.cached), percent(totals.cache_hit_rate())),
    );
    let p50 = totals.latency.quantile(0.5);
    let p95 = totals.latency.quantile(0.95);
    card(
        &mut out,
        "latency",
        "Latency p50 / p95",
        &format!(
            "{}/{}",
            p50.map(|v| v.to_string()).unwrap_or_default(),
            p95.map(|v| v.to_string()).unwrap_or_default()
        ),
        &format!("{} / {}", opt_ms(p50).1, opt_ms(p95).1),
        if ledger { "attempt start to end" } else { "AI Gateway duration" },
    );
    card(
        &mut out,
        "fallbacks",
        "Attempts per answer",
        &totals.attempts_per_answer().map(|a| a.to_string()).unwrap_or_default(),
        &totals.attempts_per_answer().map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into()),
        &format!(
            "{} fallback attempts cost {}",
            thousands(totals.fallback_attempts),
            usd_for_display(totals.fallback_cost)
        ),
    );
    out.push_str("</div>");

    if let Some(b) = budgets {
        super::budgets::panel(&mut out, b);
    }
    out.push_str(r#"<section id="chart"><h2>Cost per provider per day</h2>"#);
    chart(&mut out, report);
    out.push_str("</section>");

    group_table(&mut out, "by-provider", "By provider", &[Dim::Provider], report, false);
    group_table(&mut out, "by-model", "By model", &[Dim::Model], report, false);
    out.push_str(r#"<div class="grid2">"#);
    group_table(&mut out, "by-agent", "By agent", &[Dim::Agent], report, true);
    group_table(&mut out, "by-repository", "By repository", &[Dim::Repo], report, true);
    out.push_str("</div><div style=\"height:16px\"></div>");
    let standard = [[Dim::Provider], [Dim::Model], [Dim::Agent], [Dim::Repo]];
    if !standard.iter().any(|s| s.as_slice() == query.group_by.as_slice()) {
        let names: Vec<String> = query.group_by.iter().map(|d| capitalise(d.name())).collect();
        group_table(&mut out, "by-requested", &format!("By {}", names.join(" × ")), &query.group_by, report, false);
    }

    // Errors by status, per provider.
    let by_provider = report.cells.group(&[Dim::Provider]);
    let mut statuses: Vec<u16> = totals.errors_by_status.keys().copied().collect();
    statuses.sort_unstable();
    out.push_str(
        r#"<section id="errors"><h2>Errors by status</h2><table data-group="errors"><thead><tr><th>Provider</th>"#,
    );
    for s in &statuses {
        let _ = write!(out, "<th>{}</th>", if *s == 0 { "none".to_owned() } else { s.to_string() });
    }
    out.push_str("<th>Error rate</th></tr></thead><tbody>");
    for (k, m) in &by_provider {
        let _ = write!(out, r#"<tr data-key="{}"><td>{}</td>"#, esc(&k[0]), esc(&k[0]));
        for s in &statuses {
            let n = m.errors_by_status.get(s).copied().unwrap_or(0);
            num_td(&mut out, &format!("status_{s}"), &n.to_string(), &thousands(n), "");
        }
        num_td(&mut out, "error_rate", &m.error_rate().to_string(), &percent(m.error_rate()), "");
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></section>");

    // Cross-check.
    out.push_str(r#"<section id="cross-check">"#);
    if ledger {
        reconciliation(&mut out, report);
    }
    let _ = write!(
        out,
        r#"<h2>Cost cross-check: AI Gateway vs {}</h2><p class="sub">Answered, uncached {} that AI Gateway priced and we can price; flagged above {}% drift.</p><table data-group="cross-check"><thead><tr><th>Provider</th><th class="t">Model</th><th>Requests</th><th>AI Gateway</th><th>Ours</th><th>Drift</th><th></th></tr></thead><tbody>"#,
        if ledger { "the ledger" } else { "our price table" },
        if ledger { "attempts found in both, joined by log id," } else { "requests" },
        hundredths(report.drift_threshold_bp as i64)
    );
    if cross.is_empty() {
        out.push_str(r#"<tr><td colspan="7" class="sub">Nothing to compare in this range.</td></tr>"#);
    }
    for c in &cross {
        let _ = write!(
            out,
            r#"<tr data-key="{}/{}"><td>{}</td><td class="t">{}</td>"#,
            esc(&c.provider),
            esc(&c.model),
            esc(&c.provider),
            esc(&c.model)
        );
        num_td(&mut out, "requests", &c.requests.to_string(), &thousands(c.requests), "");
        num_td(&mut out, "aig_cost", &c.aig_cost.to_string(), &usd_for_display(c.aig_cost), "");
        num_td(&mut out, "our_cost", &c.our_cost.to_string(), &usd_for_display(c.our_cost), "");
        let drift = c.drift_bp.map(hundredths);
        num_td(
            &mut out,
            "drift_percent",
            drift.as_deref().unwrap_or(""),
            &drift.as_ref().map(|d| format!("{d}%")).unwrap_or_else(|| "—".into()),
            if c.flagged { "bad" } else { "" },
        );
        let _ = write!(
            out,
            r#"<td data-field="flagged" data-value="{}">{}</td></tr>"#,
            c.flagged,
            if c.flagged { "⚠ drift" } else { "ok" }
        );
    }
    out.push_str("</tbody></table></section>");

    let about = if ledger {
        "Costs in USD: what each attempt was charged, from the Worker's ledger (our price table applied to the usage the provider reported). Cache savings are the cache hits' usage at our prices. † Some answers had no price of ours (e.g. Workers AI). ‡ Some answers came from another model than the one asked (a retired or redirected model), priced as the model that answered."
    } else {
        "Costs in USD. “Reported” is AI Gateway's own estimate per log; where a log has none, our price table's estimate is used and marked <span class=\"est\">estimated</span>. Cache savings price cache hits at our table. † Some requests had no price anywhere (e.g. Workers AI) and count as $0."
    };
    let _ = write!(
        out,
        r#"<footer>{about} Latency quantiles are within 1.6%. Days are UTC. <a href="{}">JSON</a> · <a href="{}">CSV</a></footer>"#,
        esc(&format!("/analytics{}", query.link(Format::Json))),
        esc(&format!("/analytics{}", query.link(Format::Csv)))
    );
    out.push_str("</main></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::query;
    use crate::analytics::render::json::tests::sample_report;

    fn page(dims: Vec<Dim>) -> (Report, String) {
        let report = sample_report(dims);
        let q = query::parse("from=1970-01-01&to=1970-01-03", None, 0).unwrap();
        let html = render(&report, &q, None);
        (report, html)
    }

    #[test]
    fn self_contained_and_escaped() {
        let (_, html) = page(vec![Dim::Provider]);
        assert!(html.starts_with("<!doctype html>"));
        for forbidden in ["<script", "src=", "@import", "url(", "http://", "https://"] {
            // The SVG namespace is an identifier, not a fetch.
            let cleaned = html.replace("http://www.w3.org/2000/svg", "");
            assert!(!cleaned.contains(forbidden), "{forbidden}");
        }
        assert!(html.contains("octo-org/&lt;docs&gt;"));
        assert!(!html.contains("octo-org/<docs>"));
    }

    #[test]
    fn numbers_match_the_report() {
        let (report, html) = page(vec![Dim::Provider]);
        let totals = report.cells.totals();
        assert!(html.contains(&format!(
            r#"id="total-cost"><div class="label">Total cost</div><div class="value" data-value="{}">"#,
            totals.cost()
        )));
        for (k, m) in report.cells.group(&[Dim::Provider]) {
            assert!(html.contains(&format!(r#"<tr data-key="{}">"#, k[0])));
            assert!(html.contains(&format!(r#"data-field="cost" data-value="{}""#, m.cost())));
        }
        // One bar segment per (day, provider) with a cost.
        let segments =
            report.cells.group(&[Dim::Day, Dim::Provider]).iter().filter(|(_, m)| m.cost() > Usd::ZERO).count();
        assert_eq!(html.matches("<rect ").count(), segments);
    }

    #[test]
    fn partial_and_drift_banners() {
        let mut report = sample_report(vec![Dim::Provider]);
        report.status.complete = false;
        report.status.warnings = vec!["page 4 <failed>".into()];
        report.drift_threshold_bp = 0;
        let q = query::parse("", None, 0).unwrap();
        let html = render(&report, &q, None);
        assert!(html.contains(r#"id="partial""#));
        assert!(html.contains("page 4 &lt;failed&gt;"));
        let (_, clean) = page(vec![Dim::Provider]);
        assert!(!clean.contains(r#"id="partial""#));
    }

    #[test]
    fn budgets_panel_only_when_given() {
        use crate::account::budgets::{BudgetsToday, ScopeToday};
        let report = sample_report(vec![Dim::Provider]);
        let q = query::parse("from=1970-01-01&to=1970-01-03", None, 0).unwrap();
        assert!(!render(&report, &q, None).contains(r#"id="budgets""#));
        let b = BudgetsToday {
            scopes: vec![ScopeToday {
                scope: "repository",
                name: "o/<script>x</script>".into(),
                requests_per_minute: None,
                daily_budget_usd: Usd::from_dollars(2),
                today: None,
            }],
            warnings: vec!["the limiter of repository:o/<script>x</script> could not be read".into()],
            ..BudgetsToday::default()
        };
        let html = render(&report, &q, Some(&b));
        let (cards, panel, chart) =
            (html.find(r#"class="cards""#), html.find(r#"id="budgets""#), html.find(r#"id="chart""#));
        assert!(cards < panel && panel < chart, "the panel sits between the headline numbers and the chart");
        assert!(!html.contains("<script"));
        assert!(html.contains(r#"data-key="repository:o/&lt;script&gt;x&lt;/script&gt;""#));
    }

    #[test]
    fn axis() {
        assert_eq!(axis_steps(0.0), (1.0, 4));
        assert_eq!(axis_steps(7.3), (2.0, 4));
        assert_eq!(axis_steps(2.3), (1.0, 3));
        assert_eq!(axis_steps(4.0), (1.0, 4));
        let (step, steps) = axis_steps(0.031);
        assert!((step - 0.01).abs() < 1e-12 && steps == 4);
        assert_eq!(axis_label(0.0125), "$0.0125");
        assert_eq!(axis_label(12.5), "$12.50");
    }

    #[test]
    fn ledger_dashboard_flags_the_disagreements() {
        use crate::analytics::render::json::tests::ledger_report;
        let report = ledger_report();
        let q = query::parse("from=1970-01-01&to=1970-01-03", None, 0).unwrap();
        let html = render(&report, &q, None);
        assert!(html.contains("AI cost (ledger)"));
        assert!(html.contains(r#"id="disagreement""#));
        assert!(html.contains(r#"id="drift""#));
        assert!(html.contains(r#"data-field="missing-in-aig" data-value="1""#));
        assert!(html.contains(r#"<tr data-key="log-&lt;a&gt;">"#));
        assert!(html.contains(r#"data-field="token-mismatches" data-value="1""#));
        assert!(html.contains(r#"name="source" value="ledger""#));
        let mut skipped = report;
        skipped.reconciliation = None;
        skipped.reconciliation_skipped = Some("the Cloudflare API could not be reached".into());
        let html = render(&skipped, &q, None);
        assert!(html.contains(r#"id="cross-check-skipped""#));
        assert!(!html.contains(r#"id="disagreement""#));
    }
}
