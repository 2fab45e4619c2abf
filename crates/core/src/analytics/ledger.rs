//! `/analytics` from the ledger (`migrations/0001_ledger.sql`, table `attempts`): the SQL, and
//! its rows turned into the same [`Cells`] the Logs API path fills, so the JSON, CSV and
//! dashboard are the same.
//!
//! The range is grouped in SQL, so any range is one query whose answer grows with the number of
//! distinct (day, provider, model, agent, repository, outcome) combinations, never with the
//! number of attempts. Latency comes back per group as `bucket:count` pairs of the analytics
//! histogram (the ledger stores each attempt's bucket), so quantiles are the same as from logs.
//! Sums come back as TEXT: D1 hands numbers to JavaScript as doubles, and a sum of picodollars
//! can pass 2^53. Cache hits are also grouped by their token counts (a hit repeats a cached
//! answer, so hits share few distinct counts): what each would have cost is then our price of
//! exactly its usage, the long-context tier included, as the logs path prices it.
//!
//! The shell binds the parameters of [`GroupQuery::params`] in order and hands the rows over as
//! JSON (D1's `results` array, untouched), parsed by [`read_groups`]. `cargo test` runs this
//! exact SQL against SQLite with the migrations applied.

use serde::Deserialize;

use crate::analytics::cells::{CellKey, Cells};
use crate::analytics::logs::{clean_label, repo_label, Window};
use crate::analytics::metrics::Metrics;
use crate::histogram::Histogram;
use crate::money::pricing::{Prices, Tokens, Usd};
use crate::names;
use crate::time;

/// Most group rows one view reads. A range with more distinct combinations is answered from the
/// first ones with a warning (`complete: false`): narrow the range or the grouping.
pub const MAX_GROUP_ROWS: u32 = 50_000;

/// The grouped view of a range. `?1..?2`: first and last UTC day (the index); `?3..?4`: the
/// half-open range in Unix ms; `?5`: the row limit.
pub const GROUP_SQL: &str = "\
SELECT day, provider, model, agent, repository, success, status, cache_hit, fallback, hit_in, hit_out,
       CAST(SUM(cnt) AS TEXT) AS attempts,
       CAST(SUM(tin) AS TEXT) AS tokens_in,
       CAST(SUM(tout) AS TEXT) AS tokens_out,
       CAST(SUM(charged) AS TEXT) AS charged_pico,
       CAST(SUM(cost) AS TEXT) AS cost_pico,
       CAST(SUM(unpriced) AS TEXT) AS unpriced,
       CAST(SUM(other) AS TEXT) AS answered_by_other,
       group_concat(latency_bucket || ':' || cnt, ',') AS latency
FROM (
  SELECT day, provider, model, agent, repository, success, status,
         COALESCE(UPPER(cache) = 'HIT', 0) AS cache_hit,
         (attempt > 1) AS fallback,
         CASE WHEN UPPER(cache) = 'HIT' THEN COALESCE(tokens_in, 0) END AS hit_in,
         CASE WHEN UPPER(cache) = 'HIT' THEN COALESCE(tokens_out, 0) END AS hit_out,
         latency_bucket,
         COUNT(*) AS cnt,
         SUM(COALESCE(tokens_in, 0)) AS tin,
         SUM(COALESCE(tokens_out, 0)) AS tout,
         SUM(charged_pico) AS charged,
         SUM(COALESCE(cost_pico, 0)) AS cost,
         SUM(cost_pico IS NULL) AS unpriced,
         SUM(answered_model IS NOT NULL) AS other
  FROM attempts
  WHERE day BETWEEN ?1 AND ?2 AND ts_ms >= ?3 AND ts_ms < ?4
  GROUP BY day, provider, model, agent, repository, success, status, cache_hit, fallback, hit_in, hit_out,
           latency_bucket
)
GROUP BY day, provider, model, agent, repository, success, status, cache_hit, fallback, hit_in, hit_out
LIMIT ?5";

/// The parameters of [`GROUP_SQL`] for a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupQuery {
    pub window: Window,
}

impl GroupQuery {
    /// `?1..?5`, in order (all integers; D1 binds JavaScript numbers, exact below 2^53).
    pub fn params(&self) -> [i64; 5] {
        [
            time::day_of(self.window.from_ms),
            time::day_of(self.window.to_ms - 1),
            self.window.from_ms,
            self.window.to_ms,
            i64::from(MAX_GROUP_ROWS) + 1,
        ]
    }
}

/// One row of [`GROUP_SQL`], as D1 returns it (column names as keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GroupRow {
    pub day: i64,
    pub provider: String,
    pub model: String,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub repository: Option<String>,
    pub success: i64,
    #[serde(default)]
    pub status: Option<i64>,
    pub cache_hit: i64,
    pub fallback: i64,
    /// A cache hit's tokens in and out (NULL for other attempts).
    #[serde(default)]
    pub hit_in: Option<u64>,
    #[serde(default)]
    pub hit_out: Option<u64>,
    pub attempts: String,
    pub tokens_in: String,
    pub tokens_out: String,
    pub charged_pico: String,
    pub cost_pico: String,
    pub unpriced: String,
    /// Attempts answered by another model than asked (`answered_model` set).
    #[serde(default)]
    pub answered_by_other: Option<String>,
    #[serde(default)]
    pub latency: Option<String>,
}

/// What the ledger's rows of a range add up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerRead {
    pub cells: Cells,
    /// Attempts counted.
    pub attempts: u64,
    /// Group rows read.
    pub groups: u64,
    /// More groups than [`MAX_GROUP_ROWS`]: the rest were not read.
    pub truncated: bool,
}

fn count(what: &str, text: &str) -> Result<u64, String> {
    text.trim().parse::<u64>().map_err(|_| format!("ledger `{what}` is not a whole number: {:?}", short(text)))
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `bucket:count,bucket:count`.
fn latency(text: Option<&str>) -> Result<Histogram, String> {
    let mut pairs = Vec::new();
    for part in text.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
        let parsed =
            part.split_once(':').and_then(|(b, n)| Some((b.trim().parse::<u16>().ok()?, n.trim().parse().ok()?)));
        pairs.push(parsed.ok_or_else(|| format!("ledger latency {:?} is not bucket:count", short(part)))?);
    }
    Histogram::from_pairs(&pairs).ok_or_else(|| "ledger latency names a bucket that cannot exist".to_owned())
}

/// The metrics of one group row. How each field is filled from the ledger — our own books:
///
/// | field | from the ledger |
/// |---|---|
/// | `requests` | attempts (rows) |
/// | `successes`, `errors_by_status` | `success`; failures by `status` (none: 0) |
/// | `cached` | `cache` = HIT |
/// | `tokens_in`, `tokens_out` | their sums (unknown counts as 0) |
/// | `cost_reported` | `charged_pico`: what the budget was charged, the books' cost (`cost` in the JSON) |
/// | `reported_requests` | every attempt (each row carries its charge) |
/// | `cost_estimated`, `estimated_requests` | 0: nothing is estimated, the ledger recorded it |
/// | `unpriced_requests` | answered, uncached attempts whose `cost_pico` is NULL (no price of ours) |
/// | `cache_savings`, `cache_unpriced` | hits: our price of their tokens (a hit's `cost_pico` is 0: it cost nothing), and those we cannot price |
/// | `compared_*` | 0: AI Gateway's cost is not in the ledger; the join by log id ([`crate::analytics::reconcile`]) compares them |
/// | `fallback_attempts`, `fallback_answers`, `fallback_cost` | `attempt` > 1; of those answered; their `charged_pico` |
/// | `answered_by_other_model` | attempts whose `answered_model` is set: the answer named another model than asked |
/// | `latency` | `latency_bucket` counts (`latency_ms`: attempt start to its end) |
pub fn metrics_of(row: &GroupRow, prices: &Prices) -> Result<Metrics, String> {
    let attempts = count("attempts", &row.attempts)?;
    let charged = Usd(count("charged_pico", &row.charged_pico)?);
    count("cost_pico", &row.cost_pico)?;
    let unpriced = count("unpriced", &row.unpriced)?;
    let success = row.success != 0;
    let hit = row.cache_hit != 0;
    let fallback = row.fallback != 0;
    let latency = latency(row.latency.as_deref())?;
    if latency.count() != attempts {
        return Err(format!("ledger latency counts {} attempts of {attempts}", latency.count()));
    }
    // Priced as the logs path prices a hit: its prompt as uncached input.
    let saved = match (hit, row.hit_in, row.hit_out) {
        (true, Some(input), Some(output)) => prices
            .cost(
                &names::provider(&row.provider),
                &names::model(&row.model),
                Tokens { input, cached_input: 0, output, reasoning: 0 },
            )
            .usd
            .map(|one| Usd(one.0.saturating_mul(attempts))),
        _ => None,
    };
    let mut m = Metrics {
        requests: attempts,
        successes: if success { attempts } else { 0 },
        cached: if hit { attempts } else { 0 },
        tokens_in: count("tokens_in", &row.tokens_in)?,
        tokens_out: count("tokens_out", &row.tokens_out)?,
        cost_reported: charged,
        reported_requests: attempts,
        unpriced_requests: if success && !hit { unpriced } else { 0 },
        cache_savings: saved.unwrap_or(Usd::ZERO),
        cache_unpriced: if hit && saved.is_none() { attempts } else { 0 },
        fallback_attempts: if fallback { attempts } else { 0 },
        fallback_answers: if fallback && success { attempts } else { 0 },
        fallback_cost: if fallback { charged } else { Usd::ZERO },
        answered_by_other_model: match &row.answered_by_other {
            Some(n) => count("answered_by_other", n)?,
            None => 0,
        },
        latency,
        ..Metrics::default()
    };
    if !success {
        let status = row.status.and_then(|s| u16::try_from(s).ok()).unwrap_or(0);
        m.errors_by_status.insert(status, attempts);
    }
    Ok(m)
}

/// The rows of [`GROUP_SQL`] (D1's `results`, as JSON) counted into cells. Provider and model
/// names are made canonical here ([`names`]), so two spellings of one model are one cell.
pub fn read_groups(results_json: &str, prices: &Prices) -> Result<LedgerRead, String> {
    let rows: Vec<GroupRow> = crate::json::from_str(results_json)
        .map_err(|e| format!("the ledger's rows are not the expected columns ({e})"))?;
    let mut out = LedgerRead::default();
    for (i, row) in rows.iter().enumerate() {
        if i >= MAX_GROUP_ROWS as usize {
            out.truncated = true;
            break;
        }
        let m = metrics_of(row, prices)?;
        let key = CellKey {
            day: row.day,
            provider: names::provider(&row.provider),
            model: names::model(&row.model),
            agent: row.agent.as_deref().and_then(clean_label),
            repo: row.repository.as_deref().and_then(repo_label),
        };
        out.attempts += m.requests;
        out.groups += 1;
        out.cells.cell(key, m.requests).merge(&m);
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analytics::cells::Dim;
    use rusqlite::types::ValueRef;

    /// A fresh in-memory SQLite with every migration of `migrations/` applied, in name order.
    pub fn ledger_db() -> rusqlite::Connection {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        assert!(!files.is_empty());
        let db = rusqlite::Connection::open_in_memory().unwrap();
        for f in files {
            db.execute_batch(&std::fs::read_to_string(f).unwrap()).unwrap();
        }
        db
    }

    /// An attempt as the write path records it.
    #[derive(Clone)]
    pub struct Attempt {
        pub request_id: String,
        pub attempt: i64,
        pub ts_ms: i64,
        pub provider: &'static str,
        pub model: &'static str,
        /// The model the answer named, when another than `model`.
        pub answered_model: Option<&'static str>,
        pub agent: Option<&'static str>,
        pub repository: Option<&'static str>,
        pub status: Option<i64>,
        pub success: bool,
        pub tokens_in: Option<i64>,
        pub tokens_out: Option<i64>,
        pub cost_pico: Option<i64>,
        pub charged_pico: i64,
        pub cache: Option<&'static str>,
        pub log_id: Option<String>,
        pub latency_ms: i64,
    }

    pub fn attempt(i: i64, ts_ms: i64) -> Attempt {
        Attempt {
            request_id: format!("req-{i}"),
            attempt: 1,
            ts_ms,
            provider: "openai",
            model: "gpt-4o",
            answered_model: None,
            agent: Some("TriagingAgent"),
            repository: Some("octo-org/docs"),
            status: Some(200),
            success: true,
            tokens_in: Some(1_000),
            tokens_out: Some(100),
            cost_pico: Some(3_500_000_000),
            charged_pico: 3_500_000_000,
            cache: Some("MISS"),
            log_id: Some(format!("log-{i}")),
            latency_ms: 120,
        }
    }

    /// Writes `a` exactly as the Worker's write path does: its `Row`, bound to its `INSERT`.
    pub fn insert(db: &rusqlite::Connection, a: &Attempt) {
        use crate::ledger::{Route, Row, Value, INSERT};
        let row = Row {
            request_id: a.request_id.clone(),
            attempt: a.attempt as u32,
            ts_ms: a.ts_ms as u64,
            route: Route::Chat,
            alias: Some("triage".into()),
            provider: a.provider.into(),
            model: a.model.into(),
            answered_model: a.answered_model.map(Into::into),
            agent: a.agent.map(Into::into),
            repository: a.repository.map(Into::into),
            outcome: a.status.map_or("unreachable".to_owned(), |s| s.to_string()),
            status: a.status.map(|s| s as u16),
            success: a.success,
            tokens: a.tokens_in.map(|i| Tokens {
                input: i as u64,
                cached_input: 0,
                output: a.tokens_out.unwrap_or(0) as u64,
                reasoning: 0,
            }),
            cost: a.cost_pico.map(|c| Usd(c as u64)),
            charged: Usd(a.charged_pico as u64),
            open: false,
            cache: a.cache.map(Into::into),
            log_id: a.log_id.clone(),
            latency_ms: a.latency_ms as u64,
            stream: false,
        };
        let params: Vec<rusqlite::types::Value> = row
            .params()
            .into_iter()
            .map(|v| match v {
                Value::Null => rusqlite::types::Value::Null,
                Value::Int(i) => rusqlite::types::Value::Integer(i),
                Value::Text(t) => rusqlite::types::Value::Text(t),
            })
            .collect();
        db.execute(INSERT, rusqlite::params_from_iter(params)).unwrap();
    }

    /// Runs `sql` with `params` and returns its rows as D1 does: a JSON array of objects keyed by
    /// column name (integers as numbers, text as strings, NULL as null).
    pub fn query_as_d1(db: &rusqlite::Connection, sql: &str, params: &[i64]) -> String {
        let mut stmt = db.prepare(sql).unwrap();
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = match row.get_ref(i).unwrap() {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(n) => serde_json::Value::from(n),
                    ValueRef::Real(f) => serde_json::Value::from(f),
                    ValueRef::Text(t) => serde_json::Value::from(std::str::from_utf8(t).unwrap()),
                    ValueRef::Blob(_) => panic!("no blobs in the ledger"),
                };
                obj.insert(name.clone(), v);
            }
            out.push(serde_json::Value::Object(obj));
        }
        serde_json::to_string(&out).unwrap()
    }

    const DAY: i64 = time::MS_PER_DAY;

    fn read(db: &rusqlite::Connection, window: Window) -> LedgerRead {
        let q = GroupQuery { window };
        read_groups(&query_as_d1(db, GROUP_SQL, &q.params()), &Prices::shipped()).unwrap()
    }

    #[test]
    fn the_sql_on_sqlite_fills_every_metric() {
        let db = ledger_db();
        let t0 = 20_400 * DAY + 3_600_000;
        // An answered attempt, two spellings of one model (the second answered by another model,
        // a redirect: flagged).
        insert(&db, &attempt(1, t0));
        let redirected = Attempt { answered_model: Some("gpt-4.1"), ..attempt(2, t0 + 1) };
        insert(&db, &Attempt { model: "openai/gpt-4o-2024-08-06", latency_ms: 130, ..redirected });
        // A failed first attempt, its fallback answered.
        insert(
            &db,
            &Attempt {
                provider: "google-ai-studio",
                model: "gemini-2.5-flash",
                status: Some(503),
                success: false,
                tokens_in: None,
                tokens_out: None,
                cost_pico: None,
                charged_pico: 0,
                latency_ms: 40,
                ..attempt(3, t0 + 2)
            },
        );
        insert(
            &db,
            &Attempt { request_id: "req-3".into(), attempt: 2, charged_pico: 3_600_000_000, ..attempt(4, t0 + 3) },
        );
        // Nothing answered at all: no status, no log id.
        insert(
            &db,
            &Attempt {
                status: None,
                success: false,
                tokens_in: None,
                tokens_out: None,
                cost_pico: None,
                charged_pico: 0,
                log_id: None,
                ..attempt(5, t0 + 4)
            },
        );
        // Cache hits: free (cost 0, as the write path records them), their savings our price
        // of their usage (1000 in, 100 out of gpt-4o: 0.0035), or unknown.
        insert(
            &db,
            &Attempt { cache: Some("HIT"), charged_pico: 0, cost_pico: Some(0), agent: None, ..attempt(6, t0 + 5) },
        );
        insert(
            &db,
            &Attempt { cache: Some("HIT"), charged_pico: 0, cost_pico: Some(0), agent: None, ..attempt(16, t0 + 5) },
        );
        insert(
            &db,
            &Attempt {
                cache: Some("HIT"),
                provider: "workers-ai",
                model: "@cf/meta/llama-3.1-8b-instruct",
                charged_pico: 0,
                cost_pico: Some(0),
                ..attempt(26, t0 + 5)
            },
        );
        // Unpriced by us (Workers AI): charged what the engine charged, counted as unpriced.
        insert(
            &db,
            &Attempt {
                provider: "workers-ai",
                model: "@cf/meta/llama-3.1-8b-instruct",
                cost_pico: None,
                charged_pico: 7,
                ..attempt(7, t0 + 6)
            },
        );
        // Outside the range: the next day, and the day before.
        insert(&db, &attempt(8, t0 + DAY));
        insert(&db, &attempt(9, t0 - DAY));

        let window = Window { from_ms: 20_400 * DAY, to_ms: 20_401 * DAY };
        let read = read(&db, window);
        assert_eq!((read.attempts, read.truncated), (9, false));
        let t = read.cells.totals();
        assert_eq!(t.requests, 9);
        assert_eq!(t.successes, 7);
        assert_eq!(t.errors_by_status, [(0, 1), (503, 1)].into_iter().collect());
        assert_eq!(t.cached, 3);
        assert_eq!(t.answered_by_other_model, 1, "the answer from another model is flagged");
        assert_eq!(t.tokens_in, 7_000);
        assert_eq!(t.tokens_out, 700);
        assert_eq!(t.cost(), Usd(3_500_000_000 * 2 + 3_600_000_000 + 7));
        assert_eq!((t.cost_estimated, t.estimated_requests), (Usd::ZERO, 0));
        assert_eq!(t.unpriced_requests, 1);
        assert_eq!((t.cache_savings, t.cache_unpriced), (Usd(2 * 3_500_000_000), 1));
        assert_eq!((t.fallback_attempts, t.fallback_answers, t.fallback_cost), (1, 1, Usd(3_600_000_000)));
        assert_eq!(t.attempts_per_answer(), Some(1.285714));
        assert_eq!(t.latency.count(), 9);
        assert_eq!(t.latency.quantile(0.01), Some(40));
        // One model, whatever its spelling.
        let models: Vec<String> = read.cells.group(&[Dim::Model]).into_iter().map(|(k, _)| k[0].clone()).collect();
        assert_eq!(
            models,
            ["google-ai-studio/gemini-2.5-flash", "openai/gpt-4o", "workers-ai/@cf/meta/llama-3.1-8b-instruct"]
        );
        let agents: Vec<String> = read.cells.group(&[Dim::Agent]).into_iter().map(|(k, _)| k[0].clone()).collect();
        assert_eq!(agents, ["(none)", "TriagingAgent"]);
        // The range is half-open and exact to the millisecond.
        let edge = Window { from_ms: t0 + 1, to_ms: t0 + 3 };
        assert_eq!(super::tests::read(&db, edge).attempts, 2);
    }

    #[test]
    fn sums_beyond_two_to_the_53_stay_exact() {
        let db = ledger_db();
        let t0 = 20_400 * DAY;
        let big = (1i64 << 53) + 1; // not a double
        for i in 0..3 {
            insert(&db, &Attempt { charged_pico: big, cost_pico: Some(big), ..attempt(i, t0 + i) });
        }
        let read = read(&db, Window { from_ms: t0, to_ms: t0 + DAY });
        assert_eq!(read.cells.totals().cost(), Usd(3 * big as u64));
    }

    #[test]
    fn grouped_equals_counted_one_by_one() {
        // Many attempts over days, agents, outcomes and latencies: the SQL's groups add up to
        // exactly what counting each row would give.
        let db = ledger_db();
        let t0 = 20_400 * DAY;
        let mut by_hand = Metrics::default();
        for i in 0..500i64 {
            let success = i % 7 != 0;
            let a = Attempt {
                agent: [Some("A"), Some("B"), None][(i % 3) as usize],
                attempt: 1 + i64::from(i % 5 == 0),
                success,
                status: if success { Some(200) } else { Some([429, 500, 503][(i % 3) as usize]) },
                cache: if i % 6 == 0 { Some("HIT") } else { Some("MISS") },
                charged_pico: if i % 6 == 0 || !success { 0 } else { 1_000 + i },
                cost_pico: (i % 11 != 0).then_some(2_000 + i),
                latency_ms: i * 37 % 5_000,
                ..attempt(i, t0 + i * 600_000)
            };
            insert(&db, &a);
            by_hand.requests += 1;
            by_hand.latency.record(a.latency_ms as u64);
        }
        let read = read(&db, Window { from_ms: t0, to_ms: t0 + 4 * DAY });
        let t = read.cells.totals();
        assert_eq!(t.requests, 500);
        assert_eq!(t.latency, by_hand.latency);
        assert!(read.groups < 500, "grouped: {}", read.groups);
        let sum_by_day: u64 = read.cells.group(&[Dim::Day]).iter().map(|(_, m)| m.requests).sum();
        assert_eq!(sum_by_day, 500);
    }

    #[test]
    fn one_repository_whatever_the_spelling_of_old_rows() {
        let db = ledger_db();
        let t0 = 20_400 * DAY;
        for (i, repo) in ["octo-org/docs", "Octo-Org/Docs", "OCTO-ORG/DOCS", "octo-org/api"].into_iter().enumerate() {
            let i = i as i64;
            insert(&db, &Attempt { repository: Some(repo), latency_ms: 10 + i, ..attempt(i, t0 + i) });
        }
        let read = read(&db, Window { from_ms: t0, to_ms: t0 + DAY });
        let repos: Vec<(String, u64)> =
            read.cells.group(&[Dim::Repo]).into_iter().map(|(k, m)| (k[0].clone(), m.requests)).collect();
        assert_eq!(repos, [("octo-org/api".to_owned(), 1), ("octo-org/docs".to_owned(), 3)]);
        assert_eq!(read.cells.group(&[Dim::Repo])[1].1.latency.count(), 3);
    }

    #[test]
    fn unreadable_rows_are_errors_not_zeros() {
        let p = Prices::shipped();
        assert!(read_groups("{}", &p).is_err());
        assert!(read_groups(r#"[{"day":1}]"#, &p).is_err());
        let row = r#"{"day":1,"provider":"p","model":"m","success":1,"cache_hit":0,"fallback":0,
            "attempts":"2","tokens_in":"0","tokens_out":"0","charged_pico":"0","cost_pico":"0","unpriced":"0",
            "latency":"LAT"}"#;
        for (lat, ok) in
            [("\"3:2\"", true), ("\"3:1,4:1\"", true), ("\"3:1\"", false), ("\"x\"", false), ("\"60000:2\"", false)]
        {
            let text = format!("[{}]", row.replace("\"LAT\"", lat));
            assert_eq!(read_groups(&text, &p).is_ok(), ok, "{lat}");
        }
        assert!(
            read_groups(&format!("[{}]", row.replace("\"LAT\"", "\"3:2\"").replace("\"2\"", "\"-2\"")), &p).is_err()
        );
        assert_eq!(read_groups("[]", &p).unwrap(), LedgerRead::default());
    }
}
