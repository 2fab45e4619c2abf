//! The ledger of record: one row per attempt the Worker made, in D1 (`migrations/`).
//!
//! A request's rows are a projection of its outcome ([`crate::outcome::RequestOutcome::rows`]):
//! each attempt's line, with what the engine decided of it (its outcome, what its reservation was
//! charged) and what the runtime measured of it (status, tokens, cost, AI Gateway's log id,
//! latency). They are written after the response, one batch per request; a committed stream's are
//! written at its end, its own row completed, so the ledger says what the books said, to the
//! picodollar.
//!
//! Units: money in integer picodollars (`Usd`), bound as decimal text (D1 passes numbers through
//! JavaScript doubles; the column's INTEGER affinity stores the text as an exact integer).

use crate::histogram::bucket_index;
use crate::money::pricing::{Tokens, Usd};
use crate::time::day_of;

/// Which route made the attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/v1/chat/completions`.
    Chat,
    /// `/{provider}/…`.
    Native,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::Chat => "chat",
            Route::Native => "native",
        }
    }
}

/// One row of the `attempts` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub request_id: String,
    pub attempt: u32,
    pub ts_ms: u64,
    pub route: Route,
    pub alias: Option<String>,
    pub provider: String,
    /// The model asked for, as the configuration names it.
    pub model: String,
    /// The model that answered, when the answer named another than `model`: its cost is that
    /// model's. Column `answered_model TEXT` (NULL: `model` answered).
    pub answered_model: Option<String>,
    pub agent: Option<String>,
    pub repository: Option<String>,
    pub outcome: String,
    pub status: Option<u16>,
    pub success: bool,
    /// Its usage; `tokens.reasoning` (of the output, the thinking) goes in column
    /// `tokens_reasoning INTEGER` (NULL when the usage is unknown).
    pub tokens: Option<Tokens>,
    pub cost: Option<Usd>,
    pub charged: Usd,
    /// The row's charge is not known yet: a committed stream's, completed by [`Row::finish`].
    pub open: bool,
    pub cache: Option<String>,
    pub log_id: Option<String>,
    pub latency_ms: u64,
    pub stream: bool,
}

/// A request id: the time it started and 64 random bits, in hex (sortable by time).
pub fn request_id(now_ms: u64, random: u64) -> String {
    format!("{now_ms:012x}{random:016x}")
}

impl Row {
    /// The values of [`INSERT`]'s placeholders, in order.
    pub fn params(&self) -> Vec<Value> {
        use Value::{Int, Null, Text};
        let text = |v: &Option<String>| v.clone().map_or(Null, Text);
        let int = |v: Option<u64>| v.map_or(Null, |v| Int(v as i64));
        let pico = |v: Usd| Text(v.pico().to_string());
        vec![
            Text(self.request_id.clone()),
            Int(self.attempt.into()),
            Int(self.ts_ms as i64),
            Int(day_of(self.ts_ms as i64)),
            Text(self.route.name().to_owned()),
            text(&self.alias),
            Text(self.provider.clone()),
            Text(self.model.clone()),
            text(&self.agent),
            text(&self.repository),
            Text(self.outcome.clone()),
            int(self.status.map(u64::from)),
            Int(self.success.into()),
            int(self.tokens.map(|t| t.prompt())),
            int(self.tokens.map(|t| t.output)),
            int(self.tokens.map(|t| t.cached_input)),
            self.cost.map_or(Null, pico),
            pico(self.charged),
            text(&self.cache),
            text(&self.log_id),
            Int(self.latency_ms as i64),
            Int(bucket_index(self.latency_ms).into()),
            Int(self.stream.into()),
            int(self.tokens.map(|t| t.reasoning)),
            text(&self.answered_model),
        ]
    }
}

/// A value bound to a placeholder. Integers stay below 2^53 (times, counts), so a JavaScript
/// number carries them exactly; money goes as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// One row. `OR IGNORE`: a batch written again after an unclear failure adds nothing twice.
pub const INSERT: &str = "INSERT OR IGNORE INTO attempts (request_id, attempt, ts_ms, day, route, alias, provider, \
     model, agent, repository, outcome, status, success, tokens_in, tokens_out, tokens_cached, cost_pico, \
     charged_pico, cache, log_id, latency_ms, latency_bucket, stream, tokens_reasoning, answered_model) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, \
     ?24, ?25)";

/// Most rows one pruning statement deletes: a statement stays well inside D1's time limit
/// whatever the table's size, and the cron repeats it while it deletes a full batch.
pub const PRUNE_BATCH: u32 = 5_000;

/// Deletes up to [`PRUNE_BATCH`] rows of days before `?1` (a UTC day number).
pub const PRUNE: &str = "DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts WHERE day < ?1 LIMIT 5000)";

/// The first day kept when `retention_days` days are kept, today (`now_ms`) included.
pub fn first_kept_day(now_ms: i64, retention_days: u32) -> i64 {
    day_of(now_ms) - i64::from(retention_days.max(1)) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_sort_by_time() {
        let (a, b) = (request_id(1_700_000_000_000, u64::MAX), request_id(1_700_000_000_001, 0));
        assert!(a < b);
        assert_eq!(a.len(), 28);
    }

    #[test]
    fn retention_keeps_today_and_the_days_before() {
        let day = 86_400_000;
        assert_eq!(first_kept_day(20 * day + 5, 1), 20);
        assert_eq!(first_kept_day(20 * day + 5, 7), 14);
        assert_eq!(first_kept_day(20 * day, 0), 20, "0 keeps today");
        assert!(PRUNE.contains(&PRUNE_BATCH.to_string()));
    }
}
