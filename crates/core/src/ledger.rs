//! The ledger of record: one row per attempt the Worker made, in D1 (`migrations/`).
//!
//! A request's rows are the join of what the engine decided about each attempt (its outcome and
//! what its reservation was charged: [`Line`]) with what the runtime measured of it (status,
//! tokens, cost, AI Gateway's log id, latency: [`Meter`]). They are written after the response,
//! one batch per request; a committed stream's last row is completed when the stream ends
//! ([`Row::finish`]), so the ledger says what the books said, to the picodollar.
//!
//! Units: money in integer picodollars (`Usd`), bound as decimal text (D1 passes numbers through
//! JavaScript doubles; the column's INTEGER affinity stores the text as an exact integer).

use crate::engine::{Line, Record, Target};
use crate::histogram::bucket_index;
use crate::money::pricing::{Tokens, Usd};
use crate::time::day_of;

/// What the runtime measured of one attempt, in the order the attempts were made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meter {
    pub started_ms: u64,
    /// When its answer was read (a whole one), it failed, or (a stream) it reached its commit point.
    pub ended_ms: u64,
    /// Its HTTP status; `None` when nothing answered.
    pub status: Option<u16>,
    pub tokens: Option<Tokens>,
    /// Our price table's cost of those tokens; `None` when unknown.
    pub cost: Option<Usd>,
    pub log_id: Option<String>,
    pub cache: Option<String>,
    /// The model that answered, when the answer named another than the target's
    /// ([`crate::money::pricing::AnswerCost::answered_by`]).
    pub answered_model: Option<String>,
}

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

/// What every row of one request shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub request_id: &'a str,
    pub route: Route,
    pub alias: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub stream: bool,
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

/// The rows of one request: `record.lines` joined with `meters`, one for one, in order.
pub fn rows(req: &RequestFacts<'_>, targets: &[Target<'_>], record: &Record, meters: &[Meter]) -> Vec<Row> {
    record
        .lines
        .iter()
        .zip(meters)
        .enumerate()
        .filter_map(|(i, (line, meter))| Some(row(req, targets.get(line.target)?, i as u32 + 1, line, meter)))
        .collect()
}

fn row(req: &RequestFacts<'_>, target: &Target<'_>, attempt: u32, line: &Line, meter: &Meter) -> Row {
    let model = target.model();
    Row {
        request_id: req.request_id.to_owned(),
        attempt,
        ts_ms: meter.started_ms,
        route: req.route,
        alias: req.alias.map(str::to_owned),
        provider: target.provider.to_owned(),
        model: model.to_owned(),
        answered_model: meter.answered_model.clone(),
        agent: req.agent.map(str::to_owned),
        repository: req.repository.map(str::to_owned),
        outcome: line.outcome.clone(),
        status: meter.status,
        success: line.answered,
        tokens: meter.tokens,
        cost: meter.cost,
        charged: line.charged.unwrap_or(Usd::ZERO),
        open: line.charged.is_none(),
        cache: meter.cache.clone(),
        log_id: meter.log_id.clone(),
        latency_ms: meter.ended_ms.saturating_sub(meter.started_ms),
        stream: req.stream,
    }
}

impl Row {
    /// Completes a committed stream's row at the stream's end: what its reservation was charged,
    /// the usage it reported (if any), and its latency to the last byte. (The model that
    /// answered is known at the commit point, from the stream's first chunks: in the meter.)
    pub fn finish(&mut self, charged: Usd, tokens: Option<Tokens>, cost: Option<Usd>, ended_ms: u64) {
        self.charged = charged;
        self.open = false;
        if tokens.is_some() {
            self.tokens = tokens;
        }
        self.cost = cost;
        self.latency_ms = ended_ms.saturating_sub(self.ts_ms);
    }

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
    use crate::account::limits::Policy;

    fn target<'a>(id: &'a str, provider: &'a str) -> Target<'a> {
        Target {
            id,
            provider,
            limits: Policy { requests_per_minute: 60, daily_budget: Usd(1), breaker: None },
            worst_case: Usd(1_000),
        }
    }

    fn facts() -> RequestFacts<'static> {
        RequestFacts {
            request_id: "r1",
            route: Route::Chat,
            alias: Some("triage"),
            agent: Some("triage-bot"),
            repository: Some("acme/app"),
            stream: true,
        }
    }

    #[test]
    fn one_row_per_attempt_joining_what_the_engine_decided_with_what_was_measured() {
        let targets = [target("gemini/gemini-2.5-flash", "gemini"), target("openai/gpt-4o-mini", "openai")];
        let record = Record {
            trace: vec!["gemini/gemini-2.5-flash=503".into(), "openai/gpt-4o-mini=200".into()],
            attempts: 2,
            charged: Usd(0),
            last_target: Some(1),
            lines: vec![
                Line { target: 0, outcome: "503".into(), charged: Some(Usd::ZERO), answered: false },
                Line { target: 1, outcome: "200".into(), charged: None, answered: true },
            ],
        };
        let meters = [
            Meter { started_ms: 1_000, ended_ms: 1_040, status: Some(503), ..Meter::default() },
            Meter {
                started_ms: 1_050,
                ended_ms: 1_100,
                status: Some(200),
                log_id: Some("log-2".into()),
                cache: Some("MISS".into()),
                answered_model: Some("gpt-4o-mini-2025".into()),
                ..Meter::default()
            },
        ];
        let mut rows = rows(&facts(), &targets, &record, &meters);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].attempt, rows[0].provider.as_str(), rows[0].model.as_str()),
            (1, "gemini", "gemini-2.5-flash")
        );
        assert_eq!((rows[0].latency_ms, rows[0].success, rows[0].open), (40, false, false));
        assert_eq!((rows[1].attempt, rows[1].model.as_str(), rows[1].open), (2, "gpt-4o-mini", true));
        assert_eq!(rows[1].answered_model.as_deref(), Some("gpt-4o-mini-2025"));
        let tokens = Tokens { input: 10, cached_input: 2, output: 5, reasoning: 3 };
        rows[1].finish(Usd(777), Some(tokens), Some(Usd(777)), 1_900);
        assert_eq!((rows[1].charged, rows[1].open, rows[1].latency_ms), (Usd(777), false, 850));
        let p = rows[1].params();
        assert_eq!(p.len(), INSERT.matches('?').count());
        assert_eq!(p[13], Value::Int(12), "tokens_in counts the cached prompt tokens too");
        assert_eq!((&p[14], &p[15]), (&Value::Int(5), &Value::Int(2)));
        assert_eq!((&p[16], &p[17]), (&Value::Text("777".into()), &Value::Text("777".into())));
        assert_eq!(p[19], Value::Text("log-2".into()));
    }

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
