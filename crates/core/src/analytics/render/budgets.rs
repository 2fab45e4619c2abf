//! The dashboard's "Budgets today" panel: each provider and each scope that spent today, its
//! spend, reservations, what it charged for requests whose isolate died, and daily budget, the
//! share used as a bar (amber from 80%, red from 100%), and a provider's circuit breaker. Amounts are exact in `data-value` (the same digits
//! as `/limits`); the bar's width is the only float.

use std::fmt::Write;

use crate::account::budgets::{used_bp, BudgetsToday};
use crate::account::limits::Snapshot;
use crate::analytics::render::html::{esc, num_td};
use crate::analytics::render::{thousands, usd_for_display};
use crate::money::pricing::Usd;
use crate::time;

/// The panel's own styles (appended to the page's).
pub const STYLE: &str = r#"
.meter{display:inline-block;width:140px;height:9px;background:#e2e8f0;border-radius:5px;overflow:hidden;vertical-align:middle;margin-right:8px}
.meter span{display:block;float:left;height:100%}
.meter .spent{background:var(--ok)}
.meter .held{background:#94a3b8}
tr.warn .meter .spent{background:var(--warn)}
tr.over .meter .spent{background:var(--bad)}
tr.warn td.used{color:var(--warn);font-weight:600}
tr.over td.used{color:var(--bad);font-weight:600}
"#;

/// From this share of its budget (basis points) a row is amber; from the second, red.
pub const WARN_BP: u64 = 8_000;
pub const OVER_BP: u64 = 10_000;

/// `80.0%` from basis points, rounded down like the share itself.
fn percent_bp(bp: u64) -> String {
    format!("{}.{}%", thousands(bp / 100), bp % 100 / 10)
}

/// A bar's width in percent of the meter, at most 100.
fn width(bp: u64) -> f64 {
    bp.min(OVER_BP) as f64 / 100.0
}

struct Row<'a> {
    kind: &'static str,
    name: &'a str,
    budget: Usd,
    rpm: Option<u32>,
    today: Option<&'a Snapshot>,
}

fn row(out: &mut String, r: &Row<'_>) {
    let key = format!("{}:{}", r.kind, r.name);
    let Some(t) = r.today else {
        let _ = write!(
            out,
            r#"<tr data-key="{}" class="unread"><td class="t">{}</td><td class="t">{}</td><td>—</td><td>—</td><td>—</td>"#,
            esc(&key),
            r.kind,
            esc(r.name)
        );
        num_td(out, "daily_budget_usd", &r.budget.to_string(), &usd_for_display(r.budget), "");
        out.push_str(r#"<td class="t used bad" data-field="used_bp" data-value="">could not be read</td><td>—</td><td class="t">—</td></tr>"#);
        return;
    };
    let used = used_bp(t.spent_usd, r.budget);
    let held = used_bp(t.spent_usd.saturating_add(t.reserved_usd), r.budget);
    let class = match used {
        Some(bp) if bp >= OVER_BP => " class=\"over\"",
        Some(bp) if bp >= WARN_BP => " class=\"warn\"",
        _ => "",
    };
    let _ = write!(
        out,
        r#"<tr data-key="{}"{class}><td class="t">{}</td><td class="t">{}</td>"#,
        esc(&key),
        r.kind,
        esc(r.name)
    );
    num_td(out, "spent_usd", &t.spent_usd.to_string(), &usd_for_display(t.spent_usd), "");
    num_td(out, "reserved_usd", &t.reserved_usd.to_string(), &usd_for_display(t.reserved_usd), "");
    // Charged at their worst cases for requests whose isolate died (part of the spend), shown
    // apart: what the ledger has no rows for.
    let _ = write!(
        out,
        r#"<td data-field="isolate_died_usd" data-value="{}" title="{} requests">{}</td>"#,
        esc(&t.isolate_died_usd.to_string()),
        t.isolate_died_requests,
        esc(&usd_for_display(t.isolate_died_usd))
    );
    num_td(out, "daily_budget_usd", &r.budget.to_string(), &usd_for_display(r.budget), "");
    match (used, held) {
        (Some(bp), Some(held_bp)) => {
            let spent_w = width(bp);
            let held_w = (width(held_bp) - spent_w).max(0.0);
            let _ = write!(
                out,
                r#"<td class="t used" data-field="used_bp" data-value="{bp}"><span class="meter" role="img" aria-label="{} of the daily budget used"><span class="spent" style="width:{spent_w:.2}%"></span><span class="held" style="width:{held_w:.2}%"></span></span>{}</td>"#,
                percent_bp(bp),
                percent_bp(bp)
            );
        }
        _ => out.push_str(r#"<td class="t used" data-field="used_bp" data-value="">—</td>"#),
    }
    let requests = match r.rpm {
        Some(rpm) => format!("{} / {}", thousands(t.requests_last_minute as u64), thousands(u64::from(rpm))),
        None => thousands(t.requests_last_minute as u64),
    };
    num_td(out, "requests_last_minute", &t.requests_last_minute.to_string(), &requests, "");
    match &t.circuit {
        Some(c) => {
            let (class, shown) = match c.state.as_str() {
                "closed" => ("ok", "closed".to_owned()),
                "open" => ("bad", format!("open ({} s left)", c.open_for_secs)),
                other => ("est", other.replace('_', "-")),
            };
            let _ = write!(
                out,
                r#"<td class="t {class}" data-field="circuit" data-value="{}" title="{} failures of {} attempts in the window">{}</td>"#,
                esc(&c.state),
                c.failures_in_window,
                c.attempts_in_window,
                esc(&shown)
            );
        }
        None => out.push_str(r#"<td class="t sub" data-field="circuit" data-value="">—</td>"#),
    }
    out.push_str("</tr>");
}

/// The panel.
pub fn panel(out: &mut String, b: &BudgetsToday) {
    let at = time::format_ms(b.read_at_ms);
    let _ = write!(
        out,
        r#"<section id="budgets"><h2>Budgets today</h2><p class="sub">UTC day {}, read at {} UTC from the limiters (whatever the range above). Spent and reserved against each daily budget; of the spend, what was charged at its worst case for requests whose isolate died (no ledger rows); the bar is amber from {}%, red from {}%.</p>"#,
        esc(&at[..10]),
        esc(&at[11..19]),
        WARN_BP / 100,
        OVER_BP / 100
    );
    if !b.warnings.is_empty() {
        let _ = write!(
            out,
            r#"<div class="banner drift" id="budgets-warning" role="alert"><strong>Not everything could be read.</strong> {}</div>"#,
            esc(&b.warnings.join("; "))
        );
    }
    out.push_str(r#"<table data-group="budgets"><thead><tr><th class="t">Limiter</th><th class="t">Name</th><th>Spent</th><th>Reserved</th><th title="charged at their worst cases for requests whose isolate died">Isolate died</th><th>Daily budget</th><th class="t">Used</th><th>Requests last minute</th><th class="t">Circuit</th></tr></thead><tbody>"#);
    if b.providers.is_empty() && b.scopes.is_empty() {
        out.push_str(r#"<tr><td colspan="9" class="sub">No limiter to show.</td></tr>"#);
    }
    for p in &b.providers {
        let budget = p.daily_budget_usd;
        let r = Row {
            kind: "provider",
            name: &p.provider,
            budget,
            rpm: Some(p.requests_per_minute),
            today: p.today.as_ref(),
        };
        row(out, &r);
    }
    for s in &b.scopes {
        let r = Row {
            kind: s.scope,
            name: &s.name,
            budget: s.daily_budget_usd,
            rpm: s.requests_per_minute,
            today: s.today.as_ref(),
        };
        row(out, &r);
    }
    if b.scopes.is_empty() {
        out.push_str(
            r#"<tr><td colspan="9" class="sub">No repository, owner or agent budget has callers today.</td></tr>"#,
        );
    }
    out.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::breaker::BreakerSnapshot;
    use crate::account::budgets::{ProviderToday, ScopeToday};

    fn usd(s: &str) -> Usd {
        Usd::parse_dollars(s).unwrap()
    }

    fn snap(spent: &str, reserved: &str) -> Snapshot {
        Snapshot {
            day: "2026-12-02".into(),
            spent_usd: usd(spent),
            reserved_usd: usd(reserved),
            requests_last_minute: 3,
            ..Snapshot::default()
        }
    }

    fn budgets() -> BudgetsToday {
        let mut gemini = snap("1.234567891234", "0.5");
        (gemini.isolate_died_usd, gemini.isolate_died_requests) = (usd("0.25"), 3);
        gemini.circuit = Some(BreakerSnapshot {
            state: "open".into(),
            attempts_in_window: 12,
            failures_in_window: 9,
            open_for_secs: 17,
        });
        BudgetsToday {
            providers: vec![
                ProviderToday {
                    provider: "google-ai-studio".into(),
                    requests_per_minute: 100,
                    daily_budget_usd: usd("10"),
                    today: Some(gemini),
                },
                ProviderToday {
                    provider: "openai".into(),
                    requests_per_minute: 50,
                    daily_budget_usd: usd("20"),
                    today: None,
                },
            ],
            scopes: vec![
                ScopeToday {
                    scope: "repository",
                    name: "octo-org/<script>alert(1)</script>".into(),
                    requests_per_minute: None,
                    daily_budget_usd: usd("2"),
                    today: Some(snap("1.6", "0")),
                },
                ScopeToday {
                    scope: "agent",
                    name: "Review\"Agent'".into(),
                    requests_per_minute: Some(30),
                    daily_budget_usd: usd("2"),
                    today: Some(snap("2.000000000001", "0")),
                },
                ScopeToday {
                    scope: "owner",
                    name: "octo-org".into(),
                    requests_per_minute: None,
                    daily_budget_usd: usd("40"),
                    today: Some(snap("1.599999", "0.000001")),
                },
            ],
            warnings: vec!["the limiter of openai could not be read (<boom>)".into()],
            read_at_ms: 1_796_193_612_345,
        }
    }

    fn rendered() -> String {
        let mut out = String::new();
        panel(&mut out, &budgets());
        out
    }

    /// The `<tr …>` of `key`, up to its end.
    fn tr<'a>(html: &'a str, key: &str) -> &'a str {
        let start = html.find(&format!(r#"<tr data-key="{key}""#)).unwrap_or_else(|| panic!("no row {key}"));
        let len = html[start..].find("</tr>").unwrap();
        &html[start..start + len]
    }

    #[test]
    fn exact_money_and_shares() {
        let html = rendered();
        let gemini = tr(&html, "provider:google-ai-studio");
        assert!(gemini.contains(r#"data-field="spent_usd" data-value="1.234567891234">$1.23<"#), "{gemini}");
        assert!(gemini.contains(r#"data-field="reserved_usd" data-value="0.5">$0.5000<"#));
        assert!(
            gemini.contains(r#"data-field="isolate_died_usd" data-value="0.25" title="3 requests">$0.2500<"#),
            "{gemini}"
        );
        assert!(gemini.contains(r#"data-field="daily_budget_usd" data-value="10">$10.00<"#));
        assert!(gemini.contains(r#"data-field="used_bp" data-value="1234">"#));
        assert!(gemini
            .contains(r#"<span class="spent" style="width:12.34%"></span><span class="held" style="width:5.00%">"#));
        assert!(gemini.contains(">12.3%</td>"));
        assert!(gemini.contains(">3 / 100</td>"));
        assert!(!gemini.contains("class=\"warn\"") && !gemini.contains("class=\"over\""));
        // 80% exactly is amber; just under the budget is not yet red.
        let repo = tr(&html, "repository:octo-org/&lt;script&gt;alert(1)&lt;/script&gt;");
        assert!(repo.contains(r#"class="warn""#) && repo.contains(">80.0%</td>"), "{repo}");
        assert!(repo.contains(r#"data-value="1.6">$1.60<"#));
        // A picodollar over the budget is red, and the bar stops at the meter's end.
        let agent = tr(&html, "agent:Review&quot;Agent&#39;");
        assert!(agent.contains(r#"class="over""#) && agent.contains(">100.0%</td>"), "{agent}");
        assert!(agent.contains(r#"data-value="2.000000000001">$2.00<"#));
        assert!(agent.contains(r#"style="width:100.00%"></span><span class="held" style="width:0.00%">"#));
        assert!(agent.contains(">3 / 30</td>"));
        // Rounded down: 3.99999…% shows as 3.9%, never rounded up into the next band.
        let owner = tr(&html, "owner:octo-org");
        assert!(owner.contains(r#"data-value="399">"#) && owner.contains(">3.9%</td>"), "{owner}");
        assert!(owner.contains(r#"data-value="1.599999">$1.60<"#));
        assert!(owner.contains(r#"data-value="0.000001">$0.0000<"#));
        assert!(owner.contains(">3</td>"));
    }

    #[test]
    fn circuit_and_unreadable_limiters() {
        let html = rendered();
        let gemini = tr(&html, "provider:google-ai-studio");
        assert!(gemini.contains(r#"data-field="circuit" data-value="open""#));
        assert!(gemini.contains(">open (17 s left)</td>"));
        assert!(gemini.contains(r#"title="9 failures of 12 attempts in the window""#));
        let openai = tr(&html, "provider:openai");
        assert!(openai.contains(r#"class="unread""#) && openai.contains("could not be read"));
        assert!(openai.contains(r#"data-field="daily_budget_usd" data-value="20">$20.00<"#));
        assert!(html.contains(r#"id="budgets-warning""#));
        assert!(html.contains("the limiter of openai could not be read (&lt;boom&gt;)"));
        assert!(html.contains("UTC day 2026-12-02, read at 06:40:12 UTC"));
        assert!(html.contains("amber from 80%, red from 100%."));
    }

    #[test]
    fn names_are_escaped() {
        let html = rendered();
        assert!(!html.contains("<script"));
        assert!(!html.contains("<boom>"));
        assert!(!html.contains("Review\"Agent"));
        assert!(html.contains(r#"<td class="t">octo-org/&lt;script&gt;alert(1)&lt;/script&gt;</td>"#));
    }

    #[test]
    fn empty_and_clean() {
        let mut out = String::new();
        panel(&mut out, &BudgetsToday::default());
        assert!(out.contains("No limiter to show."));
        assert!(!out.contains("budgets-warning"));
        let mut b = budgets();
        b.scopes.clear();
        let mut out = String::new();
        panel(&mut out, &b);
        assert!(out.contains("No repository, owner or agent budget has callers today."));
    }
}
