//! Computing a view. `source=ledger`: one grouped query of the ledger, then (when AI Gateway's
//! Logs API is configured) the cross-check of the ledger against its logs. `source=aig`: rollups
//! for the settled whole days they cover, the logs for the rest, into one set of cells
//! (`gateway_core::analytics::plan` decides the split).

use std::cell::Cell;

use gateway_core::analytics::cells::Cells;
use gateway_core::analytics::ledger::{self, GroupQuery, GROUP_SQL, MAX_GROUP_ROWS};
use gateway_core::analytics::logs::{LogEntry, LogsEndpoint, Window};
use gateway_core::analytics::plan::{plan, settled_days};
use gateway_core::analytics::query::AnalyticsQuery;
use gateway_core::analytics::reconcile::{self, Reconciliation};
use gateway_core::analytics::report::{ReadStatus, Report, Source as ReportSource};
use gateway_core::analytics::settings::AnalyticsSettings;
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::ledger::Value;
use gateway_core::subrequests::{logs_cut_note, plan_cross_check, plan_log_reads, CrossCheckPlan, Subrequests};
use worker::Env;

use crate::analytics::logs_client::LogsClient;
use crate::analytics::rollups::Rollups;
use crate::context::Ctx;
use crate::ledger as d1;

pub struct Source<'a> {
    pub account: &'a str,
    pub gateway: &'a str,
    pub token: &'a str,
}

/// The report for `query` from the ledger. AI Gateway's logs (`logs`, when configured) are only
/// the cross-check: without them, or when they cannot be read, the report is the same, with a
/// warning.
pub async fn compute_ledger(
    env: &Env,
    ctx: &Ctx,
    an: &AnalyticsSettings,
    query: &AnalyticsQuery,
    logs: Option<&Source<'_>>,
    now_ms: i64,
    budget: &mut Subrequests,
) -> Result<Report, GatewayError> {
    if let Some(reason) = d1::unavailable_reason(env).await {
        return Err(GatewayError::new(
            ErrorKind::LedgerUnavailable,
            format!("/analytics reads the ledger, but {reason}."),
        ));
    }
    let unreadable = |e: String| GatewayError::new(ErrorKind::Internal, format!("The ledger could not be read: {e}"));
    let params = ints(&GroupQuery { window: query.window }.params());
    let rows = d1::all_json(env, GROUP_SQL, &params).await.map_err(unreadable)?;
    let read = ledger::read_groups(&rows, &ctx.prices).map_err(unreadable)?;
    let mut status = ReadStatus { complete: !read.truncated, ledger_attempts: read.attempts, ..ReadStatus::default() };
    if read.truncated {
        status.warnings.push(format!(
            "the range has more than {MAX_GROUP_ROWS} groups of attempts: only the first were counted; ask for a shorter range"
        ));
    }
    let (reconciliation, skipped) = match (an.cross_check_pages, logs) {
        (0, _) => (None, Some("turned off (ANALYTICS_CROSS_CHECK_PAGES=0)".to_owned())),
        (_, None) => (None, Some("CF_ACCOUNT_ID, AI_GATEWAY_ID and CF_API_TOKEN are not all set".to_owned())),
        (pages, Some(source)) => match plan_cross_check(budget, pages) {
            None => (None, Some("the subrequest limit (SUBREQUEST_LIMIT) left no room for it".to_owned())),
            Some(plan) => {
                let (requests_left, queried) = (Cell::new(plan.log_requests), Cell::new(false));
                let checked = cross_check(
                    env,
                    ctx,
                    an,
                    source,
                    query.window,
                    &plan,
                    (&requests_left, &queried),
                    now_ms,
                    &mut status,
                )
                .await;
                budget.give_back(requests_left.get() + u32::from(!queried.get()));
                match checked {
                    Ok((r, cut)) => {
                        if cut {
                            budget.leave_out(plan.note(pages));
                        }
                        (Some(r), None)
                    }
                    Err(why) => (None, Some(why)),
                }
            }
        },
    };
    if let Some(why) = &skipped {
        status.warnings.push(format!("the cross-check with AI Gateway's logs did not run: {why}"));
    }
    Ok(Report {
        source: ReportSource::Ledger,
        window: query.window,
        group_by: query.group_by.clone(),
        cells: read.cells,
        status,
        drift_threshold_bp: an.drift_threshold_bp,
        reconciliation,
        reconciliation_skipped: skipped,
    })
}

/// The ledger joined with AI Gateway's logs of `range`: at most `plan.pages` pages of logs
/// (the newest when the range has more), then the ledger's attempts of the time they cover;
/// and whether the plan's pages left logs of the range unread (the subrequest limit cut it).
/// `spent`: the log requests it may still make, and whether it made the ledger's query.
#[allow(clippy::too_many_arguments)]
async fn cross_check(
    env: &Env,
    ctx: &Ctx,
    an: &AnalyticsSettings,
    source: &Source<'_>,
    range: Window,
    plan: &CrossCheckPlan,
    (requests_left, queried): (&Cell<u32>, &Cell<bool>),
    now_ms: i64,
    status: &mut ReadStatus,
) -> Result<(Reconciliation, bool), String> {
    let pages = plan.pages;
    let mut cut = false;
    let secrets = ctx.secrets();
    let client = LogsClient {
        endpoint: LogsEndpoint::new(&ctx.settings.api_url, source.account, source.gateway),
        token: source.token,
        parallel: an.parallel_pages,
        requests_left,
    };
    // Page 1 says how many there are.
    let mut logs: Vec<LogEntry> = Vec::new();
    let first = client.read(range, 1, Some(1), &mut |e| logs.push(e.clone())).await;
    status.log_pages += first.pager.pages_read();
    if let Some(failure) = first.failure {
        return Err(failure.describe(&secrets));
    }
    let mut covered_from = range.from_ms;
    if !first.pager.is_done() {
        let budget = pages.max(2) - 1;
        let start = reconcile::first_page(first.pager.total().unwrap_or(0), budget).max(2);
        // The newest pages start past page 2 only when the range has more than the pages read.
        cut = plan.cut && start > 2;
        if start > 2 {
            // Only the newest pages: the join covers the time from their oldest log on (its
            // millisecond may continue on the page before, hence + 1).
            logs.clear();
        }
        let rest = client.read(range, start, Some(budget), &mut |e| logs.push(e.clone())).await;
        status.log_pages += rest.pager.pages_read();
        if let Some(failure) = rest.failure {
            return Err(failure.describe(&secrets));
        }
        cut |= rest.out_of_requests;
        if start > 2 {
            covered_from = logs.first().map_or(range.to_ms, |e| e.created_ms + 1);
        }
    }
    status.logs_read = logs.len() as u64;
    let windows = reconcile::join_windows(range, covered_from, now_ms);
    let params = ints(&reconcile::attempts_params(windows.ledger));
    queried.set(true);
    let rows = d1::all_json(env, reconcile::ATTEMPTS_SQL, &params).await?;
    let (attempts, truncated) = reconcile::read_attempts(&rows)?;
    if truncated {
        status.warnings.push(format!(
            "the cross-check read the first {} ledger attempts only: missing rows are not reported",
            reconcile::MAX_JOIN_ROWS
        ));
    }
    Ok((reconcile::reconcile(&logs, &attempts, windows, !truncated, an.drift_threshold_bp), cut))
}

fn ints(params: &[i64]) -> Vec<Value> {
    params.iter().map(|p| Value::Int(*p)).collect()
}

/// The report for `query` from AI Gateway's logs, or the error to answer when nothing at all
/// could be read.
pub async fn compute_aig(
    env: &Env,
    ctx: &Ctx,
    an: &AnalyticsSettings,
    query: &AnalyticsQuery,
    source: &Source<'_>,
    now_ms: i64,
    budget: &mut Subrequests,
) -> Result<Report, GatewayError> {
    let mut cells = Cells::default();
    let mut status = ReadStatus { complete: true, ..ReadStatus::default() };

    // Rollups for the settled whole days of the range (if any, and if asked).
    let days = if query.use_rollups { settled_days(query.window, now_ms) } else { Vec::new() };
    let mut rolled_up = Vec::new();
    if let (Some(&first), Some(&last)) = (days.first(), days.last()) {
        if let Some(store) = Rollups::open(env, source.gateway) {
            match store.get(first, last).await {
                Ok(stored) => {
                    for day in stored.values().filter(|d| d.complete) {
                        match Cells::from_json(&day.cells) {
                            Ok(day_cells) => {
                                cells.merge(&day_cells);
                                rolled_up.push(day.day);
                            }
                            Err(e) => worker::console_error!("rollup of day {}: {e}; reading its logs", day.day),
                        }
                    }
                }
                Err(e) => worker::console_error!("rollup store unavailable ({e}); reading the logs"),
            }
        }
    }
    let read_plan = plan(query.window, &rolled_up);
    status.rollup_days = read_plan.rollup_days.len() as u32;

    let secrets = ctx.secrets();
    let requests_left = Cell::new(plan_log_reads(budget));
    let client = LogsClient {
        endpoint: LogsEndpoint::new(&ctx.settings.api_url, source.account, source.gateway),
        token: source.token,
        parallel: an.parallel_pages,
        requests_left: &requests_left,
    };
    for window in &read_plan.windows {
        let read = client.read(*window, 1, None, &mut |e| cells.add(e, *window, &ctx.prices)).await;
        status.logs_read += read.pager.rows_read();
        status.log_pages += read.pager.pages_read();
        if let Some(why) = read.pager.inconsistency() {
            status.complete = false;
            status.warnings.push(why.to_owned());
        }
        if let Some(failure) = read.failure {
            // Nothing read at all: an error, not an empty report.
            if status.logs_read == 0 && status.rollup_days == 0 {
                return Err(failure.to_error(&secrets));
            }
            status.complete = false;
            let read_so_far = match read.pager.total() {
                Some(total) => format!("{} of {total} logs of that window read", read.pager.rows_read()),
                None => format!("{} logs of that window read", read.pager.rows_read()),
            };
            status.warnings.push(format!(
                "stopped at page {}: {} ({read_so_far})",
                read.pager.next_page(),
                failure.describe(&secrets)
            ));
            break;
        }
        if read.out_of_requests {
            status.complete = false;
            budget.leave_out(logs_cut_note(status.log_pages, status.logs_read, read.pager.total()));
            break;
        }
    }
    budget.give_back(requests_left.get());
    Ok(Report {
        source: ReportSource::Aig,
        window: query.window,
        group_by: query.group_by.clone(),
        cells,
        status,
        drift_threshold_bp: an.drift_threshold_bp,
        reconciliation: None,
        reconciliation_skipped: None,
    })
}
