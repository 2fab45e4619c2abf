//! Daily rollups: the client of the `AnalyticsRollup` Durable Object, and the scheduled job that
//! fills it.
//!
//! The job is incremental and idempotent: each run looks at the last `ANALYTICS_ROLLUP_DAYS`
//! settled days, skips the complete ones, and reads the others (newest first) within a page
//! budget, saving progress so the next run continues where this one stopped. Running it twice
//! changes nothing; a missed run is caught up by the next.

use std::collections::BTreeMap;

use gateway_core::analytics::cells::Cells;
use gateway_core::analytics::logs::LogsEndpoint;
use gateway_core::analytics::plan::{day_window, days_to_roll_up};
use gateway_core::time;
use serde::Serialize;
use worker::{Env, Method, Request, RequestInit, Stub};

use crate::analytics::logs_client::LogsClient;
use crate::analytics::rollup_object::{RollupOp, StoredDay};
use crate::analytics::{analytics_settings, now_ms};
use crate::context::Ctx;

pub const BINDING: &str = "ROLLUPS";
/// Rollups older than this are forgotten.
const RETENTION_DAYS: i64 = 400;

/// The rollup store of one gateway.
pub struct Rollups {
    stub: Stub,
}

impl Rollups {
    /// `None` when the `ROLLUPS` binding is missing (rollups are then simply not used).
    pub fn open(env: &Env, gateway: &str) -> Option<Rollups> {
        let stub = env.durable_object(BINDING).and_then(|ns| ns.id_from_name(gateway)?.get_stub()).ok()?;
        Some(Rollups { stub })
    }

    async fn call(&self, op: &RollupOp) -> worker::Result<String> {
        let mut init = RequestInit::new();
        init.with_method(Method::Post).with_body(Some(serde_json::to_string(op)?.into()));
        let mut response = self.stub.fetch_with_request(Request::new_with_init("https://rollups/op", &init)?).await?;
        if response.status_code() != 200 {
            return Err(worker::Error::RustError(format!("rollup store answered {}", response.status_code())));
        }
        response.text().await
    }

    /// Stored days in `from..=to`, by day.
    pub async fn get(&self, from: i64, to: i64) -> worker::Result<BTreeMap<i64, StoredDay>> {
        let text = self.call(&RollupOp::Get { from, to }).await?;
        let days: Vec<StoredDay> = gateway_core::json::from_str(&text)?;
        Ok(days.into_iter().map(|d| (d.day, d)).collect())
    }

    pub async fn put(&self, day: StoredDay) -> worker::Result<()> {
        self.call(&RollupOp::Put { day }).await.map(|_| ())
    }

    pub async fn prune(&self, before: i64) -> worker::Result<()> {
        self.call(&RollupOp::Prune { before }).await.map(|_| ())
    }
}

/// What one scheduled run did (logged as one JSON line).
#[derive(Debug, Default, Serialize)]
pub struct RollupRun {
    event: &'static str,
    /// Days already complete before this run.
    days_complete: usize,
    /// Days completed by this run.
    days_written: Vec<String>,
    /// Days still incomplete after it (budget spent, or a failure).
    days_pending: Vec<String>,
    log_rows: u64,
    page_requests: u32,
    error: Option<String>,
}

/// The scheduled job.
pub async fn run(env: &Env) -> RollupRun {
    let mut out = RollupRun { event: "analytics_rollup", ..RollupRun::default() };
    let ctx = Ctx::load(env);
    let s = &ctx.settings;
    let an = analytics_settings(env);
    let (Some(account), Some(gateway), Some(token)) = (&s.account_id, &s.gateway_id, &s.api_token) else {
        out.error = Some("CF_ACCOUNT_ID, AI_GATEWAY_ID and CF_API_TOKEN are needed to roll up logs".into());
        return out;
    };
    let Some(store) = Rollups::open(env, gateway) else {
        out.error = Some(format!("no `{BINDING}` Durable Object binding: rollups are off"));
        return out;
    };
    let days = days_to_roll_up(now_ms(), an.rollup_days);
    let (Some(&newest), Some(&oldest)) = (days.first(), days.last()) else { return out };
    let mut stored = match store.get(oldest, newest).await {
        Ok(s) => s,
        Err(e) => {
            out.error = Some(format!("rollup store: {e}"));
            return out;
        }
    };
    let secrets = ctx.secrets();
    // The run's own page budget (ANALYTICS_ROLLUP_MAX_PAGES) bounds it, below.
    let unbounded = std::cell::Cell::new(u32::MAX);
    let client = LogsClient {
        endpoint: LogsEndpoint::new(&s.api_url, account, gateway),
        token: token.expose(),
        parallel: an.parallel_pages,
        requests_left: &unbounded,
    };
    let mut budget = an.rollup_max_pages;
    for day in days {
        let previous = stored.remove(&day);
        if previous.as_ref().is_some_and(|d| d.complete) {
            out.days_complete += 1;
            continue;
        }
        if budget == 0 || out.error.is_some() {
            out.days_pending.push(time::format_day(day));
            continue;
        }
        let (mut cells, start_page, logs_before) = match previous.map(|p| (Cells::from_json(&p.cells), p)) {
            Some((Ok(cells), p)) => (cells, p.next_page, p.logs),
            // Unreadable progress: start the day again.
            _ => (Cells::default(), 1, 0),
        };
        let window = day_window(day);
        let read = client.read(window, start_page, Some(budget), &mut |e| cells.add(e, window, &ctx.prices)).await;
        budget = budget.saturating_sub(read.requests);
        out.page_requests += read.requests;
        out.log_rows += read.pager.rows_read();
        if let Some(why) = read.pager.inconsistency() {
            // The day's logs changed under us (deleted): keep nothing, read it whole next time.
            out.error = Some(format!("{}: {why}", time::format_day(day)));
            out.days_pending.push(time::format_day(day));
            continue;
        }
        let complete = read.complete();
        let record = StoredDay {
            day,
            complete,
            next_page: read.pager.next_page(),
            logs: logs_before + read.pager.rows_read(),
            cells: cells.to_json(),
        };
        if let Err(e) = store.put(record).await {
            out.error = Some(format!("rollup store: {e}"));
        } else if complete {
            out.days_written.push(time::format_day(day));
        } else {
            out.days_pending.push(time::format_day(day));
        }
        if let Some(failure) = read.failure {
            out.error = Some(failure.describe(&secrets));
        }
    }
    let _ = store.prune(time::day_of(now_ms()) - RETENTION_DAYS).await;
    // Days were visited newest first: oldest first reads better.
    out.days_written.reverse();
    out.days_pending.reverse();
    out
}
