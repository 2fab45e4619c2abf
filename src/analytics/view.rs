//! Computing a view: rollups for the settled whole days they cover, the logs for the rest, into
//! one set of cells (`gateway_core::analytics::plan` decides the split).

use gateway_core::analytics::cells::Cells;
use gateway_core::analytics::logs::LogsEndpoint;
use gateway_core::analytics::plan::{plan, settled_days};
use gateway_core::analytics::query::AnalyticsQuery;
use gateway_core::analytics::report::{ReadStatus, Report};
use gateway_core::analytics::settings::AnalyticsSettings;
use gateway_core::error::GatewayError;
use worker::Env;

use crate::analytics::logs_client::LogsClient;
use crate::analytics::rollups::Rollups;
use crate::context::Ctx;

pub struct Source<'a> {
    pub account: &'a str,
    pub gateway: &'a str,
    pub token: &'a str,
}

/// The report for `query`, or the error to answer when nothing at all could be read.
pub async fn compute(
    env: &Env,
    ctx: &Ctx,
    an: &AnalyticsSettings,
    query: &AnalyticsQuery,
    source: &Source<'_>,
    now_ms: i64,
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
    let client = LogsClient {
        endpoint: LogsEndpoint::new(&ctx.settings.api_url, source.account, source.gateway),
        token: source.token,
        prices: &ctx.prices,
        parallel: an.parallel_pages,
    };
    for window in &read_plan.windows {
        let read = client.read(*window, 1, None, &mut cells).await;
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
    }
    Ok(Report {
        window: query.window,
        group_by: query.group_by.clone(),
        cells,
        status,
        drift_threshold_bp: an.drift_threshold_bp,
    })
}
