//! The hourly cron (`[triggers] crons`): brings the daily analytics rollups up to date and
//! prunes the ledger's rows older than `LEDGER_RETENTION_DAYS`; each step logs one line.

use worker::Env;

use crate::analytics::now_ms;
use crate::context::Ctx;

/// An hourly run deletes at most this many batches (200,000 rows): a backlog clears over a few
/// runs without any one of them nearing a Worker's limits.
const PRUNE_BATCHES_PER_RUN: u32 = 40;

pub async fn run(env: &Env) {
    let ctx = Ctx::load(env);
    let rolled = crate::analytics::rollups::run(env).await;
    if let Ok(line) = serde_json::to_string(&rolled) {
        worker::console_log!("{line}");
    }
    let retention = ctx.settings.ledger_retention_days;
    let pruned = match crate::ledger::prune(env, now_ms(), retention, PRUNE_BATCHES_PER_RUN).await {
        Ok(deleted) => serde_json::json!({"event": "ledger_pruned", "retention_days": retention, "deleted": deleted}),
        Err(error) => serde_json::json!({"event": "ledger_prune_failed", "error": error}),
    };
    worker::console_log!("{pruned}");
    let expired = match crate::signatures::prune(env, now_ms() as u64).await {
        Ok(deleted) => serde_json::json!({"event": "signatures_pruned", "deleted": deleted}),
        Err(error) => serde_json::json!({"event": "signatures_prune_failed", "error": error}),
    };
    worker::console_log!("{expired}");
}
