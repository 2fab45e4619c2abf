//! The cross-check of the ledger against AI Gateway's logs, joined by log id (AI Gateway's log
//! `id` is the `cf-aig-log-id` the Worker saw, the ledger's `log_id`): attempts missing on either
//! side, token counts that differ, and per provider and model AI Gateway's cost beside ours.
//!
//! Bounded: AI Gateway's side is at most [`AnalyticsSettings::cross_check_pages`] pages of the
//! range (50 logs each), the newest ones when the range holds more; the ledger's side is the
//! attempts of the time those pages cover (plus a margin), at most [`MAX_JOIN_ROWS`].
//!
//! The two clocks differ (the Worker stamps an attempt when it starts it, AI Gateway a log when
//! the request arrives), and AI Gateway writes a log a moment after the answer. So a row counts
//! as missing only inside the *checked* window: the covered time less [`MARGIN_MS`] at both
//! ends, and nothing newer than [`SETTLE_MS`] ago. Both sides are read over the margin, so a row
//! near an edge still finds its partner.
//!
//! [`AnalyticsSettings::cross_check_pages`]: crate::analytics::settings::AnalyticsSettings

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::analytics::logs::{LogEntry, Window, PER_PAGE};
use crate::analytics::plan::SETTLE_MS;
use crate::analytics::report::CrossCheck;
use crate::money::pricing::Usd;
use crate::names;
use crate::time;

/// How far the two clocks (and the log's arrival) may be apart.
pub const MARGIN_MS: i64 = 2 * 60_000;
/// Most ledger attempts read for one join.
pub const MAX_JOIN_ROWS: u32 = 20_000;
/// Examples listed per kind of disagreement (all are counted).
pub const MAX_EXAMPLES: usize = 20;

/// The ledger's side: every attempt with a log id in a time range. `?1..?2`: first and last UTC
/// day; `?3..?4`: the half-open range in Unix ms; `?5`: the row limit.
pub const ATTEMPTS_SQL: &str = "\
SELECT log_id, ts_ms, provider, model, success,
       COALESCE(UPPER(cache) = 'HIT', 0) AS cache_hit,
       tokens_in, tokens_out,
       CAST(cost_pico AS TEXT) AS cost_pico
FROM attempts
WHERE log_id IS NOT NULL AND day BETWEEN ?1 AND ?2 AND ts_ms >= ?3 AND ts_ms < ?4
ORDER BY ts_ms
LIMIT ?5";

/// The parameters of [`ATTEMPTS_SQL`] for the ledger's window.
pub fn attempts_params(window: Window) -> [i64; 5] {
    [
        time::day_of(window.from_ms),
        time::day_of(window.to_ms - 1),
        window.from_ms,
        window.to_ms,
        i64::from(MAX_JOIN_ROWS) + 1,
    ]
}

/// One row of [`ATTEMPTS_SQL`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LedgerAttempt {
    pub log_id: String,
    pub ts_ms: i64,
    pub provider: String,
    pub model: String,
    pub success: i64,
    pub cache_hit: i64,
    #[serde(default)]
    pub tokens_in: Option<u64>,
    #[serde(default)]
    pub tokens_out: Option<u64>,
    #[serde(default)]
    pub cost_pico: Option<String>,
}

/// The rows of [`ATTEMPTS_SQL`] (D1's `results`, as JSON), and whether the limit cut them.
pub fn read_attempts(results_json: &str) -> Result<(Vec<LedgerAttempt>, bool), String> {
    let mut rows: Vec<LedgerAttempt> = crate::json::from_str(results_json)
        .map_err(|e| format!("the ledger's attempts are not the expected columns ({e})"))?;
    let truncated = rows.len() > MAX_JOIN_ROWS as usize;
    rows.truncate(MAX_JOIN_ROWS as usize);
    Ok((rows, truncated))
}

/// The first page to read so that at most `budget` pages, the newest, cover a range of `total`
/// logs (pages are oldest first).
pub fn first_page(total: u64, budget: u32) -> u32 {
    let last = total.div_ceil(u64::from(PER_PAGE)).min(u64::from(u32::MAX)) as u32;
    last.saturating_sub(budget.max(1)).saturating_add(1).max(1)
}

/// Where the join looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    /// The time AI Gateway's logs were read for (from the oldest log read, when not all were).
    pub covered: Window,
    /// The ledger's attempts read: `covered` widened by the margin.
    pub ledger: Window,
    /// Where a row without a partner counts as missing (may be empty).
    pub checked: Window,
}

/// The windows of a join over `range`, whose logs were read from `covered_from_ms` on.
pub fn join_windows(range: Window, covered_from_ms: i64, now_ms: i64) -> JoinWindows {
    let covered = Window { from_ms: covered_from_ms.max(range.from_ms), to_ms: range.to_ms };
    let ledger = Window { from_ms: covered.from_ms - MARGIN_MS, to_ms: covered.to_ms + MARGIN_MS };
    let from = covered.from_ms + MARGIN_MS;
    let to = covered.to_ms.min(now_ms - SETTLE_MS) - MARGIN_MS;
    JoinWindows { covered, ledger, checked: Window { from_ms: from, to_ms: to.max(from) } }
}

/// A row one side has and the other has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub log_id: String,
    pub at_ms: i64,
    pub provider: String,
    pub model: String,
}

/// A log whose token counts differ between the two sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMismatch {
    pub log_id: String,
    pub provider: String,
    pub model: String,
    /// (in, out) as the ledger has them, and as AI Gateway logged them.
    pub ledger: (Option<u64>, Option<u64>),
    pub aig: (Option<u64>, Option<u64>),
}

/// Rows of one kind, all counted, the first [`MAX_EXAMPLES`] (oldest first) listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub count: u64,
    pub examples: Vec<T>,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed { count: 0, examples: Vec::new() }
    }
}

impl<T> Listed<T> {
    fn push(&mut self, item: T) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(item);
        }
    }
}

/// The outcome of the join.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciliation {
    pub windows: Option<JoinWindows>,
    /// AI Gateway's logs read, and of those the ones another caller of the gateway sent (no
    /// ledger row expected).
    pub aig_logs: u64,
    pub other_callers: u64,
    pub ledger_attempts: u64,
    pub matched: u64,
    pub missing_in_aig: Listed<Missing>,
    pub missing_in_ledger: Listed<Missing>,
    pub token_mismatches: Listed<TokenMismatch>,
    /// Per provider and model, over matched answered uncached rows priced on both sides.
    pub drift: Vec<CrossCheck>,
    /// False when a side was cut by its bound (then "missing" is not reported).
    pub complete: bool,
}

impl Reconciliation {
    /// Whether anything disagrees.
    pub fn flagged(&self) -> bool {
        self.missing_in_aig.count > 0
            || self.missing_in_ledger.count > 0
            || self.token_mismatches.count > 0
            || self.drift.iter().any(|d| d.flagged)
    }
}

/// Joins `aig` (logs read over `windows.covered`) with `ledger` (attempts over `windows.ledger`).
/// `complete`: neither side was cut by its bound.
pub fn reconcile(
    aig: &[LogEntry],
    ledger: &[LedgerAttempt],
    windows: JoinWindows,
    complete: bool,
    threshold_bp: u64,
) -> Reconciliation {
    let mut out = Reconciliation {
        windows: Some(windows),
        aig_logs: aig.len() as u64,
        ledger_attempts: ledger.len() as u64,
        complete,
        ..Reconciliation::default()
    };
    let mut by_id: HashMap<&str, (&LedgerAttempt, bool)> =
        ledger.iter().map(|a| (a.log_id.as_str(), (a, false))).collect();
    // (provider, model) → (requests, AI Gateway's cost, ours).
    let mut drift: BTreeMap<(String, String), (u64, Usd, Usd)> = BTreeMap::new();
    for log in aig {
        if !log.from_worker {
            out.other_callers += 1;
        }
        let Some((attempt, seen)) = by_id.get_mut(log.id.as_str()) else {
            if log.from_worker && complete && windows.checked.contains(log.created_ms) {
                out.missing_in_ledger.push(Missing {
                    log_id: log.id.clone(),
                    at_ms: log.created_ms,
                    provider: log.provider.clone(),
                    model: log.model.clone(),
                });
            }
            continue;
        };
        *seen = true;
        out.matched += 1;
        let provider = names::provider(&attempt.provider);
        let model = names::model(&attempt.model);
        let ours = (attempt.tokens_in, attempt.tokens_out);
        let theirs = (log.tokens_in, log.tokens_out);
        let known = |t: (Option<u64>, Option<u64>)| (t.0.unwrap_or(0), t.1.unwrap_or(0));
        if known(ours) != known(theirs) {
            out.token_mismatches.push(TokenMismatch {
                log_id: log.id.clone(),
                provider: provider.clone(),
                model: model.clone(),
                ledger: ours,
                aig: theirs,
            });
        }
        let our_cost = attempt.cost_pico.as_deref().and_then(|c| c.trim().parse::<u64>().ok()).map(Usd);
        let answered = attempt.success != 0 && log.success && attempt.cache_hit == 0 && !log.cached;
        if let (true, Some(aig_cost), Some(our_cost)) = (answered, log.cost, our_cost) {
            let slot = drift.entry((provider, model)).or_insert((0, Usd::ZERO, Usd::ZERO));
            slot.0 += 1;
            slot.1 = slot.1.saturating_add(aig_cost);
            slot.2 = slot.2.saturating_add(our_cost);
        }
    }
    if complete {
        for a in ledger {
            let matched = by_id.get(a.log_id.as_str()).is_some_and(|(_, seen)| *seen);
            if !matched && windows.checked.contains(a.ts_ms) {
                out.missing_in_aig.push(Missing {
                    log_id: a.log_id.clone(),
                    at_ms: a.ts_ms,
                    provider: names::provider(&a.provider),
                    model: names::model(&a.model),
                });
            }
        }
    }
    out.drift =
        drift.into_iter().map(|((p, m), (n, aig, ours))| CrossCheck::new(p, m, n, aig, ours, threshold_bp)).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::ledger::tests::{attempt, insert, ledger_db, query_as_d1, Attempt};
    use crate::analytics::metrics::tests::entry;

    const T0: i64 = 20_400 * time::MS_PER_DAY + 3_600_000;
    const NOW: i64 = T0 + 3_600_000;

    fn log(i: i64, at: i64) -> LogEntry {
        LogEntry {
            id: format!("log-{i}"),
            created_ms: at + 15,
            cost: Some(Usd(3_500_000_000)),
            ..entry("openai", "gpt-4o")
        }
    }

    #[test]
    fn pages_and_windows() {
        assert_eq!(first_page(0, 20), 1);
        assert_eq!(first_page(1_000, 20), 1);
        assert_eq!(first_page(1_001, 20), 2);
        assert_eq!(first_page(10_000, 20), 181);
        let range = Window { from_ms: T0, to_ms: NOW };
        let w = join_windows(range, T0, NOW);
        assert_eq!(w.covered, range);
        assert_eq!(w.ledger, Window { from_ms: T0 - MARGIN_MS, to_ms: NOW + MARGIN_MS });
        assert_eq!(w.checked, Window { from_ms: T0 + MARGIN_MS, to_ms: NOW - SETTLE_MS - MARGIN_MS });
        // A short, recent range checks nothing for missing rows.
        let recent = join_windows(Window { from_ms: NOW - 60_000, to_ms: NOW }, 0, NOW);
        assert_eq!(recent.checked.from_ms, recent.checked.to_ms);
    }

    #[test]
    fn the_join_finds_every_kind_of_disagreement() {
        // The ledger, on real SQLite: ten attempts a minute apart from T0 + 5 min.
        let db = ledger_db();
        let at = |i: i64| T0 + 5 * 60_000 + i * 60_000;
        for i in 0..10 {
            let a = match i {
                // The ledger counted other tokens than AI Gateway did.
                3 => Attempt { tokens_out: Some(150), cost_pico: Some(4_000_000_000), ..attempt(i, at(i)) },
                // Written under AI Gateway's new spelling of the model: still one model.
                4 => Attempt { model: "openai/gpt-4o-2024-08-06", ..attempt(i, at(i)) },
                _ => attempt(i, at(i)),
            };
            insert(&db, &a);
        }
        // Outside the checked window (in the margin): read, but never "missing".
        insert(&db, &attempt(50, T0 + 30_000));
        let range = Window { from_ms: T0, to_ms: NOW };
        let windows = join_windows(range, T0, NOW);
        let (ledger, truncated) =
            read_attempts(&query_as_d1(&db, ATTEMPTS_SQL, &attempts_params(windows.ledger))).unwrap();
        assert_eq!((ledger.len(), truncated), (11, false));

        // AI Gateway: every attempt but #7; #9's cost is 20 % higher; one log nobody recorded
        // (agent-gateway sent it); one from another caller of the gateway.
        let mut aig: Vec<LogEntry> = (0..10)
            .filter(|i| *i != 7)
            .map(|i| match i {
                9 => LogEntry { cost: Some(Usd(4_200_000_000)), ..log(i, at(i)) },
                _ => log(i, at(i)),
            })
            .collect();
        aig.push(log(77, at(7) + 5));
        aig.push(LogEntry { from_worker: false, ..log(88, at(8)) });
        let r = reconcile(&aig, &ledger, windows, !truncated, 500);
        assert_eq!((r.aig_logs, r.ledger_attempts, r.matched, r.other_callers), (11, 11, 9, 1));
        let ids = |l: &Listed<Missing>| l.examples.iter().map(|m| m.log_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&r.missing_in_aig), ["log-7"]);
        assert_eq!(ids(&r.missing_in_ledger), ["log-77"]);
        assert_eq!(r.token_mismatches.count, 1);
        let m = &r.token_mismatches.examples[0];
        assert_eq!((m.log_id.as_str(), m.ledger, m.aig), ("log-3", (Some(1_000), Some(150)), (Some(1_000), Some(100))));
        // gpt-4o over 9 compared rows (#0..#9 less #7; #50 is not in AI Gateway's logs).
        let [d] = &r.drift[..] else { panic!("{:?}", r.drift) };
        assert_eq!((d.provider.as_str(), d.model.as_str(), d.requests), ("openai", "gpt-4o", 9));
        assert_eq!(d.aig_cost, Usd(3_500_000_000 * 8 + 4_200_000_000));
        assert_eq!(d.our_cost, Usd(3_500_000_000 * 8 + 4_000_000_000));
        assert_eq!((d.drift_bp, d.flagged), (Some(63), false));
        let strict = reconcile(&aig, &ledger, windows, true, 50);
        assert!(strict.drift[0].flagged);
        assert!(r.flagged());

        // A side cut by its bound: disagreements of tokens and cost still, "missing" not.
        let cut = reconcile(&aig, &ledger, windows, false, 500);
        assert_eq!((cut.missing_in_aig.count, cut.missing_in_ledger.count, cut.token_mismatches.count), (0, 0, 1));
        // All agree: nothing flagged.
        let clean: Vec<LogEntry> = (0..10).filter(|i| ![3, 7, 9].contains(i)).map(|i| log(i, at(i))).collect();
        let agreeing: Vec<LedgerAttempt> =
            ledger.iter().filter(|a| !["log-3", "log-9", "log-7"].contains(&a.log_id.as_str())).cloned().collect();
        assert!(!reconcile(&clean, &agreeing, windows, true, 500).flagged());
    }

    #[test]
    fn unreadable_attempts_are_errors() {
        assert!(read_attempts("[{\"log_id\":1}]").is_err());
        assert_eq!(read_attempts("[]").unwrap(), (vec![], false));
    }
}
