//! The ledger's shell: a request's rows (`gateway_core::ledger`) written to D1
//! (`crate::d1`) after its response and its limiters' acknowledgment of its closes, one batch
//! per request, in `waitUntil`; the cron's pruning;
//! the reads of `/analytics` go through `crate::d1::all_json`. A write that fails is retried
//! twice in the background, then logged and counted (`ledger_write_failed`): it never costs the
//! caller the answer.

use std::cell::Cell;
use std::time::Duration;

use gateway_core::ledger::{self, Row, Value, INSERT, PRUNE, PRUNE_BATCH};
use worker::{Context, Delay, Env};

pub use crate::d1::{all_json, is_bound};

thread_local! {
    /// Batches this isolate failed to write (after its retries), since it started.
    static FAILED_WRITES: Cell<u64> = const { Cell::new(0) };
    /// The ledger's table was seen (it is never dropped by the Worker: once is enough), or when
    /// it was last found missing (a check costs a D1 query: not more than one per interval).
    static SCHEMA: Cell<Schema> = const { Cell::new(Schema::Unknown) };
}

/// The command that creates the ledger's table, for the operator's eyes.
pub const MIGRATE: &str = "npx wrangler d1 migrations apply LEDGER --local (--remote for the deployed Worker)";

/// How long a missing table is believed missing before D1 is asked again.
const SCHEMA_RECHECK_MS: u64 = 10_000;

#[derive(Clone, Copy)]
enum Schema {
    Unknown,
    Present,
    MissingAt(u64),
}

/// Whether this isolate has seen the ledger's table: then [`unavailable_reason`] asks D1 nothing.
pub fn schema_seen() -> bool {
    matches!(SCHEMA.with(Cell::get), Schema::Present)
}

/// Why the ledger cannot be used, said for an operator: the binding, or the migrations.
pub async fn unavailable_reason(env: &Env) -> Option<String> {
    if !is_bound(env) {
        return Some("no D1 binding `LEDGER` (see wrangler.toml)".to_owned());
    }
    let now = worker::Date::now().as_millis();
    match SCHEMA.with(Cell::get) {
        Schema::Present => return None,
        Schema::MissingAt(at) if now.saturating_sub(at) < SCHEMA_RECHECK_MS => return Some(missing_table()),
        _ => {}
    }
    match all_json(env, "SELECT 1 FROM attempts LIMIT 0", &[]).await {
        Ok(_) => {
            SCHEMA.with(|s| s.set(Schema::Present));
            None
        }
        Err(e) if is_missing_table(&e) => {
            SCHEMA.with(|s| s.set(Schema::MissingAt(now)));
            Some(missing_table())
        }
        Err(e) => Some(format!("the ledger (D1 `LEDGER`) could not be read: {e}")),
    }
}

fn missing_table() -> String {
    format!("the ledger's table does not exist: run `{MIGRATE}`")
}

fn is_missing_table(error: &str) -> bool {
    error.contains("no such table")
}

/// A new request id (`x-gateway-request-id`, the rows' `request_id`) for a request that
/// started at `started_ms`.
pub fn new_request_id(started_ms: u64) -> String {
    ledger::request_id(started_ms, (js_sys::Math::random() * 2f64.powi(53)) as u64)
}

/// Writes `rows` after the response, once the request's limiters acknowledged its attempts'
/// closes (`settled`): a row exists only for a charge its limiter knows (nothing when there are
/// no rows).
pub fn write_later(env: &Env, wctx: &Context, rows: Vec<Row>, settled: crate::aig::runtime::Settled) {
    if rows.is_empty() {
        return;
    }
    let env = env.clone();
    wctx.wait_until(async move {
        settled.await;
        write(&env, &rows).await
    });
}

/// Writes one request's rows as one batch (retried: `INSERT OR IGNORE` makes a repeat harmless).
/// Without a `LEDGER` binding (a deployment that removed it) nothing is retried: the isolate
/// says so once, and counts what it could not write.
pub async fn write(env: &Env, rows: &[Row]) {
    if !is_bound(env) {
        let first = FAILED_WRITES.with(|c| {
            c.set(c.get() + 1);
            c.get() == 1
        });
        if first {
            worker::console_error!(
                "{}",
                serde_json::json!({"event": "ledger_unbound", "error": "no D1 binding `LEDGER` (see wrangler.toml): attempts are not recorded"})
            );
        }
        return;
    }
    let mut last = String::new();
    for delay_ms in [0, 250, 1_000] {
        if delay_ms > 0 {
            Delay::from(Duration::from_millis(delay_ms)).await;
        }
        let statements: Vec<(&str, Vec<Value>)> = rows.iter().map(|row| (INSERT, row.params())).collect();
        match crate::d1::batch(env, &statements).await {
            Ok(()) => {
                SCHEMA.with(|s| s.set(Schema::Present));
                return;
            }
            Err(e) => last = e,
        }
        if is_missing_table(&last) {
            break;
        }
    }
    let failed = FAILED_WRITES.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    if is_missing_table(&last) {
        // Every write fails the same way until the migrations are applied: said once per
        // isolate, with the command that fixes it.
        SCHEMA.with(|s| s.set(Schema::MissingAt(worker::Date::now().as_millis())));
        if failed == 1 {
            let line = serde_json::json!({
                "event": "ledger_schema_missing",
                "error": "the ledger's table does not exist: attempts are not recorded",
                "fix": MIGRATE,
            });
            worker::console_error!("{line}");
        }
        return;
    }
    let line = serde_json::json!({
        "event": "ledger_write_failed",
        "rows": rows.len(),
        "request_id": rows.first().map(|r| r.request_id.as_str()),
        "failed_batches_in_isolate": failed,
        "error": last,
    });
    worker::console_error!("{line}");
}

/// The cron's part: deletes the rows of days before the retention window, a bounded batch per
/// statement, up to `max_batches` statements. Returns how many rows went.
pub async fn prune(env: &Env, now_ms: i64, retention_days: u32, max_batches: u32) -> Result<u64, String> {
    let first_kept = ledger::first_kept_day(now_ms, retention_days);
    let mut deleted = 0;
    for _ in 0..max_batches {
        let changes = crate::d1::run(env, PRUNE, &[Value::Int(first_kept)]).await?;
        deleted += changes;
        if changes < u64::from(PRUNE_BATCH) {
            break;
        }
    }
    Ok(deleted)
}

/// Today's callers, `(agent, repository)`, as the ledger saw them (at most `limit` pairs).
pub async fn callers_on(env: &Env, day: i64, limit: u32) -> Result<Vec<(Option<String>, Option<String>)>, String> {
    #[derive(serde::Deserialize)]
    struct Caller {
        agent: Option<String>,
        repository: Option<String>,
    }
    let sql = "SELECT DISTINCT agent, repository FROM attempts WHERE day = ?1 LIMIT ?2";
    let text = all_json(env, sql, &[Value::Int(day), Value::Int(limit.into())]).await?;
    let rows: Vec<Caller> = gateway_core::json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(rows.into_iter().map(|c| (c.agent, c.repository)).collect())
}
