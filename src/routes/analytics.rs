//! `GET /analytics`: authenticate (AGENT_TOKEN or ANALYTICS_TOKEN) → read the query → a cached
//! view, or compute one (the ledger and its cross-check; or rollups + AI Gateway's logs) →
//! render JSON, CSV or HTML.

use gateway_core::account::budgets::BudgetsToday;
use gateway_core::account::listing::Viewer;
use gateway_core::account::scopes::ScopeFilter;
use gateway_core::analytics::access;
use gateway_core::analytics::plan::settled_days;
use gateway_core::analytics::query::{self, AnalyticsQuery, Format};
use gateway_core::analytics::render;
use gateway_core::analytics::report::{Report, Source as ReportSource};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::subrequests::{Subrequests, ViewReads};
use gateway_core::time;
use worker::{Env, Headers, Response, ResponseBuilder, Result};

use crate::analytics::view::{self, Source};
use crate::analytics::{analytics_settings, now_ms, result_cache, wasm_memory_bytes};
use crate::context::Ctx;
use crate::incoming::Incoming;

pub async fn handle(req: Incoming, env: &Env, ctx: &Ctx) -> Result<Response> {
    match serve(&req, env, ctx).await {
        Ok(response) => Ok(response),
        Err(err) => crate::analytics::refused(&err),
    }
}

async fn serve(req: &Incoming, env: &Env, ctx: &Ctx) -> std::result::Result<Response, GatewayError> {
    let s = &ctx.settings;
    let header = req.header("authorization");
    access::check_reader(header.as_deref(), s)?;

    let now = now_ms();
    let accept = req.header("accept");
    let q = query::parse(req.query().unwrap_or(""), accept.as_deref(), now)?;

    let logs = match (&s.account_id, &s.gateway_id, &s.api_token) {
        (Some(account), Some(gateway), Some(token)) => Some(Source { account, gateway, token: token.expose() }),
        _ => None,
    };
    if q.source == ReportSource::Aig && logs.is_none() {
        return Err(GatewayError::new(
            ErrorKind::Configuration,
            "/analytics?source=aig reads AI Gateway's logs: CF_ACCOUNT_ID, AI_GATEWAY_ID and CF_API_TOKEN \
             (AI Gateway Read) must be set.",
        ));
    }
    let an = analytics_settings(env);
    let cache_key = result_cache::key(&q.cache_key(s.gateway_id.as_deref().unwrap_or("")));
    let caching = q.use_cache && an.cache_ttl_s > 0;
    let mut budget = Subrequests::new(s.subrequest_limit);
    if caching && budget.take_all(1) {
        if let Some((headers, body)) = result_cache::get(&cache_key).await {
            let _ = headers.set("x-analytics-cache", "hit");
            let _ = headers.set(SUBREQUESTS_HEADER, &budget.header());
            return Ok(finish(headers, body));
        }
    }

    // The view's own reads first, then the dashboard's panel, then the cross-check or the logs
    // with what is left (`gateway_core::subrequests`).
    let aig = match (q.source, &logs) {
        (ReportSource::Aig, Some(source)) => Some(source),
        _ => None,
    };
    let reads = ViewReads {
        cache_write: caching,
        schema_check: aig.is_none() && !crate::ledger::schema_seen(),
        ledger_query: aig.is_none(),
        rollups: aig.is_some() && q.use_rollups && !settled_days(q.window, now).is_empty(),
    };
    budget.take(reads.count());
    let budgets = match q.format {
        Format::Html => Some(budgets_today(env, ctx, &mut budget).await),
        Format::Json | Format::Csv => None,
    };
    let mut report = match aig {
        Some(source) => view::compute_aig(env, ctx, &an, &q, source, now, &mut budget).await?,
        None => view::compute_ledger(env, ctx, &an, &q, logs.as_ref(), now, &mut budget).await?,
    };
    report.status.warnings.extend(budget.drain_left_out());
    let body = match q.format {
        Format::Json => render::json::render(&report),
        Format::Csv => render::csv::render(&report),
        Format::Html => render::html::render(&report, &q, budgets.as_ref()),
    };
    let headers = view_headers(&report, &q);
    // A view whose cross-check could have run but failed is not kept: the next one tries again.
    let check_failed = report.source == ReportSource::Ledger
        && report.reconciliation.is_none()
        && logs.is_some()
        && an.cross_check_pages > 0;
    if caching && report.status.complete && !check_failed {
        result_cache::put(&cache_key, &headers, body.as_bytes(), an.cache_ttl_s).await;
    } else if caching {
        budget.give_back(1);
    }
    let _ = headers.set("x-analytics-cache", if caching { "miss" } else { "bypass" });
    let _ = headers.set(SUBREQUESTS_HEADER, &budget.header());
    Ok(finish(headers, body.into_bytes()))
}

/// How many subrequests this answer made, of the limit: `48/50`.
const SUBREQUESTS_HEADER: &str = "x-analytics-subrequests";

/// The dashboard's "Budgets today": what `/limits` shows `AGENT_TOKEN`, unfiltered, within what
/// is left of `budget`. It never fails the page: what cannot be read is a warning in the panel.
async fn budgets_today(env: &Env, ctx: &Ctx, budget: &mut Subrequests) -> BudgetsToday {
    let filter = ScopeFilter::default();
    let today = match ctx.config() {
        Ok(config) => {
            crate::routes::limits::budgets_today(
                env,
                config,
                &filter,
                Viewer::Everyone,
                crate::durable::limiter::Leasing::of(&ctx.settings),
                budget,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match today {
        Ok(today) => today,
        Err(err) => BudgetsToday {
            warnings: vec![format!("the configuration could not be read: {}", err.message)],
            read_at_ms: now_ms(),
            ..BudgetsToday::default()
        },
    }
}

/// Headers that describe the view (kept with it in the cache).
fn view_headers(report: &Report, q: &AnalyticsQuery) -> Headers {
    let h = Headers::new();
    let _ = h.set("content-type", q.format.content_type());
    let _ = h.set("x-analytics-source", report.source.name());
    let _ = h.set("x-analytics-complete", if report.status.complete { "true" } else { "false" });
    let _ = h.set("x-analytics-logs-read", &report.status.logs_read.to_string());
    let _ = h.set("x-analytics-rollup-days", &report.status.rollup_days.to_string());
    match q.format {
        Format::Html => {
            let _ = h.set("content-security-policy", render::html::CSP);
            let _ = h.set("x-content-type-options", "nosniff");
            let _ = h.set("referrer-policy", "no-referrer");
        }
        Format::Csv => {
            let name = format!(
                "analytics-{}-{}.csv",
                &time::format_ms(q.window.from_ms)[..10],
                &time::format_ms(q.window.to_ms)[..10]
            );
            let _ = h.set("content-disposition", &format!("attachment; filename=\"{name}\""));
        }
        Format::Json => {}
    }
    h
}

fn finish(headers: Headers, body: Vec<u8>) -> Response {
    // Costs are the operator's business: no shared cache may keep them.
    let _ = headers.set("cache-control", "private, no-store");
    let _ = headers.set("x-analytics-wasm-memory-bytes", &wasm_memory_bytes().to_string());
    ResponseBuilder::new().with_status(200).with_headers(headers).fixed(body)
}
