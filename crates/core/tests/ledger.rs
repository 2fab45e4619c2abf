//! The ledger's SQL on real SQLite (D1 is SQLite): the migrations in `migrations/` as
//! `wrangler d1 migrations apply` runs them, then the Worker's INSERT and PRUNE exactly as it
//! binds them.

use gateway_core::ledger::{first_kept_day, Route, Row, Value, INSERT, PRUNE, PRUNE_BATCH};
use gateway_core::money::pricing::{Tokens, Usd};
use rusqlite::{params_from_iter, Connection};

fn migrated() -> Connection {
    let db = Connection::open_in_memory().unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        db.execute_batch(&std::fs::read_to_string(&file).unwrap()).unwrap();
    }
    db
}

fn bind(row: &Row) -> Vec<rusqlite::types::Value> {
    row.params()
        .into_iter()
        .map(|v| match v {
            Value::Null => rusqlite::types::Value::Null,
            Value::Int(i) => rusqlite::types::Value::Integer(i),
            Value::Text(t) => rusqlite::types::Value::Text(t),
        })
        .collect()
}

fn row(request: &str, attempt: u32, ts_ms: u64, charged: Usd) -> Row {
    Row {
        request_id: request.into(),
        attempt,
        ts_ms,
        route: Route::Chat,
        alias: Some("review".into()),
        provider: "gemini".into(),
        model: "gemini-2.5-pro".into(),
        answered_model: None,
        agent: Some("reviewer".into()),
        repository: Some("acme/app".into()),
        outcome: "200".into(),
        status: Some(200),
        success: true,
        tokens: Some(Tokens { input: 900, cached_input: 100, output: 50, reasoning: 0 }),
        cost: Some(charged),
        charged,
        open: false,
        cache: Some("MISS".into()),
        log_id: Some(format!("log-{request}-{attempt}")),
        latency_ms: 1234,
        stream: false,
    }
}

#[test]
fn rows_round_trip_with_money_exact_as_integers() {
    let db = migrated();
    // Above 2^53 picodollars (≈ $9,007): a JavaScript double would round it; text does not.
    let big = Usd((1u64 << 53) + 1);
    for r in [row("a", 1, 1_000, big), row("a", 2, 2_000, Usd(3)), row("b", 1, 3_000, Usd(1))] {
        db.execute(INSERT, params_from_iter(bind(&r))).unwrap();
    }
    let (kind, sum): (String, String) = db
        .query_row("SELECT typeof(charged_pico), CAST(SUM(charged_pico) AS TEXT) FROM attempts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kind, "integer", "picodollars bound as text are stored as integers");
    assert_eq!(sum, ((1u64 << 53) + 1 + 3 + 1).to_string());
    let (tin, tcached, bucket): (i64, i64, i64) = db
        .query_row("SELECT tokens_in, tokens_cached, latency_bucket FROM attempts WHERE request_id = 'b'", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((tin, tcached), (1000, 100));
    assert!(bucket > 64, "a latency past 64 ms is in a log-linear bucket");
}

#[test]
fn a_batch_written_twice_adds_nothing_twice() {
    let db = migrated();
    let r = row("a", 1, 1_000, Usd(5));
    db.execute(INSERT, params_from_iter(bind(&r))).unwrap();
    assert_eq!(db.execute(INSERT, params_from_iter(bind(&r))).unwrap(), 0);
    let n: i64 = db.query_row("SELECT COUNT(*) FROM attempts", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}

#[test]
fn pruning_deletes_only_days_before_the_first_kept_one_in_bounded_batches() {
    let db = migrated();
    let day = 86_400_000u64;
    let old = PRUNE_BATCH as u64 + 10;
    for i in 0..old {
        db.execute(INSERT, params_from_iter(bind(&row(&format!("old{i}"), 1, 10 * day + i, Usd(1))))).unwrap();
    }
    db.execute(INSERT, params_from_iter(bind(&row("kept", 1, 12 * day, Usd(1))))).unwrap();
    let first = first_kept_day((12 * day) as i64 + 5, 2);
    assert_eq!(first, 11);
    assert_eq!(db.execute(PRUNE, [first]).unwrap(), PRUNE_BATCH as usize, "one statement deletes one batch");
    assert_eq!(db.execute(PRUNE, [first]).unwrap(), 10);
    assert_eq!(db.execute(PRUNE, [first]).unwrap(), 0);
    let left: String = db.query_row("SELECT group_concat(request_id) FROM attempts", [], |r| r.get(0)).unwrap();
    assert_eq!(left, "kept");
}
