//! `AnalyticsRollup`: the Durable Object (SQLite storage) that keeps one gateway's daily
//! rollups — each settled UTC day's cells (`gateway_core::analytics::cells`) as JSON text — so a
//! 30-day view reads 30 rows instead of paging through every log. A day still being read by the
//! scheduled job is kept with `complete = 0` and the page to continue from.
//!
//! It only stores: which days to compute, and how, is decided by the Worker (`rollups.rs`).
//! Writes are idempotent: writing a day twice leaves one row, and a complete day is never
//! replaced by an incomplete one.

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorageValue, State};

/// One stored day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub complete: bool,
    /// The page a later run continues from (when not complete).
    pub next_page: u32,
    /// Log rows counted so far.
    pub logs: u64,
    /// `Cells::to_json`.
    pub cells: String,
}

/// What the Worker asks of the object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RollupOp {
    /// The stored rows of days `from..=to`.
    Get {
        from: i64,
        to: i64,
    },
    Put {
        day: StoredDay,
    },
    /// Forgets days before `before`.
    Prune {
        before: i64,
    },
}

#[derive(Deserialize)]
struct Row {
    day: i64,
    complete: i64,
    next_page: i64,
    logs: i64,
    cells: String,
}

#[durable_object(fetch)]
pub struct AnalyticsRollup {
    state: State,
}

impl DurableObject for AnalyticsRollup {
    fn new(state: State, _env: Env) -> Self {
        AnalyticsRollup { state }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let op: RollupOp = crate::durable::state::request_json(&req).await?;
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS rollup_days (
                day INTEGER PRIMARY KEY,
                complete INTEGER NOT NULL,
                next_page INTEGER NOT NULL,
                logs INTEGER NOT NULL,
                cells TEXT NOT NULL,
                updated_ms INTEGER NOT NULL
            )",
            None,
        )?;
        match op {
            RollupOp::Get { from, to } => {
                let rows: Vec<Row> = sql
                    .exec(
                        "SELECT day, complete, next_page, logs, cells FROM rollup_days WHERE day >= ? AND day <= ? ORDER BY day",
                        vec![SqlStorageValue::from(from), SqlStorageValue::from(to)],
                    )?
                    .to_array()?;
                let days: Vec<StoredDay> = rows
                    .into_iter()
                    .map(|r| StoredDay {
                        day: r.day,
                        complete: r.complete != 0,
                        next_page: u32::try_from(r.next_page).unwrap_or(1),
                        logs: u64::try_from(r.logs).unwrap_or(0),
                        cells: r.cells,
                    })
                    .collect();
                Response::from_json(&days)
            }
            RollupOp::Put { day } => {
                sql.exec(
                    "INSERT INTO rollup_days (day, complete, next_page, logs, cells, updated_ms)
                     VALUES (?, ?, ?, ?, ?, ?)
                     ON CONFLICT(day) DO UPDATE SET complete = excluded.complete, next_page = excluded.next_page,
                        logs = excluded.logs, cells = excluded.cells, updated_ms = excluded.updated_ms
                     WHERE rollup_days.complete = 0 OR excluded.complete = 1",
                    vec![
                        SqlStorageValue::from(day.day),
                        SqlStorageValue::from(i64::from(day.complete)),
                        SqlStorageValue::from(i64::from(day.next_page)),
                        SqlStorageValue::from(i64::try_from(day.logs).unwrap_or(i64::MAX)),
                        SqlStorageValue::from(day.cells),
                        SqlStorageValue::from(worker::Date::now().as_millis() as i64),
                    ],
                )?;
                Response::from_json(&serde_json::json!({"ok": true}))
            }
            RollupOp::Prune { before } => {
                sql.exec("DELETE FROM rollup_days WHERE day < ?", vec![SqlStorageValue::from(before)])?;
                Response::from_json(&serde_json::json!({"ok": true}))
            }
        }
    }
}
