//! A computed view: the cells of a range, how they were read (complete or not, from which
//! source), and the cross-check of AI Gateway's cost against our price table. The renderers
//! (JSON, CSV, HTML) only format a `Report`.

use crate::analytics::cells::{Cells, Dim};
use crate::analytics::logs::Window;
use crate::analytics::reconcile::Reconciliation;
use crate::money::pricing::Usd;

/// How the cells were obtained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStatus {
    /// False when a page could not be read (or the logs changed while read): the totals then
    /// cover only what `logs_read` says, and `warnings` say why.
    pub complete: bool,
    pub warnings: Vec<String>,
    /// Log rows read from the Logs API for this view.
    pub logs_read: u64,
    pub log_pages: u32,
    /// Whole days taken from rollups.
    pub rollup_days: u32,
    /// Attempts counted from the ledger (`source=ledger`).
    pub ledger_attempts: u64,
}

/// Where a view's numbers come from (`source=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Worker's own ledger (D1): every attempt, what it was charged.
    Ledger,
    /// AI Gateway's Logs API (Legacy Logs), with rollups.
    Aig,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Ledger => "ledger",
            Source::Aig => "aig",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub source: Source,
    pub window: Window,
    pub group_by: Vec<Dim>,
    pub cells: Cells,
    pub status: ReadStatus,
    pub drift_threshold_bp: u64,
    /// `source=ledger`: the join with AI Gateway's logs, or why it did not run.
    pub reconciliation: Option<Reconciliation>,
    pub reconciliation_skipped: Option<String>,
}

/// AI Gateway's cost beside ours for one provider/model, over the same answered, uncached rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossCheck {
    pub provider: String,
    pub model: String,
    pub requests: u64,
    pub aig_cost: Usd,
    pub our_cost: Usd,
    /// `(aig - ours) / ours`, in hundredths of a percent; `None` when ours is 0.
    pub drift_bp: Option<i64>,
    pub flagged: bool,
}

impl CrossCheck {
    /// AI Gateway's `aig` beside our `ours` over the same `requests`, flagged when they differ
    /// by more than `threshold_bp` hundredths of a percent of ours.
    pub fn new(provider: String, model: String, requests: u64, aig: Usd, ours: Usd, threshold_bp: u64) -> CrossCheck {
        let (a, o) = (u128::from(aig.0), u128::from(ours.0));
        let diff = a.abs_diff(o);
        let drift_bp = (o > 0).then(|| {
            let bp = i64::try_from((diff * 10_000 + o / 2) / o).unwrap_or(i64::MAX);
            if a >= o {
                bp
            } else {
                -bp
            }
        });
        // Exact: |aig - ours| / ours > threshold, in integers.
        let flagged = if o == 0 { a > 0 } else { diff * 10_000 > u128::from(threshold_bp) * o };
        CrossCheck { provider, model, requests, aig_cost: aig, our_cost: ours, drift_bp, flagged }
    }
}

impl Report {
    /// One row per provider/model that has rows to compare: from the logs' own `cost` beside our
    /// price table (`source=aig`), or from the join of the ledger with AI Gateway's logs.
    pub fn cross_check(&self) -> Vec<CrossCheck> {
        if self.source == Source::Ledger {
            return self.reconciliation.as_ref().map(|r| r.drift.clone()).unwrap_or_default();
        }
        let mut rows = Vec::new();
        for (key, m) in self.cells.group(&[Dim::Provider, Dim::Model]) {
            if m.compared_requests == 0 {
                continue;
            }
            let model = key[1].split_once('/').map_or(key[1].as_str(), |(_, m)| m).to_owned();
            rows.push(CrossCheck::new(
                key[0].clone(),
                model,
                m.compared_requests,
                m.compared_aig,
                m.compared_ours,
                self.drift_threshold_bp,
            ));
        }
        rows
    }
}

/// Hundredths as a decimal (`250` → `2.5`, `-5` → `-0.05`), exactly.
pub fn hundredths(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    match a % 100 {
        0 => format!("{sign}{}", a / 100),
        f if f % 10 == 0 => format!("{sign}{}.{}", a / 100, f / 10),
        f => format!("{sign}{}.{f:02}", a / 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::logs::LogEntry;
    use crate::analytics::metrics::tests::entry;
    use crate::money::pricing::Prices;

    #[test]
    fn drift_is_flagged_above_the_threshold_only() {
        let prices = Prices::shipped();
        let window = Window { from_ms: 0, to_ms: 10 };
        let mut cells = Cells::default();
        // gpt-4o: ours 0.0035 per row; AI Gateway says 0.00385 (+10 %).
        for _ in 0..3 {
            cells.add(
                &LogEntry { created_ms: 1, cost: Some(Usd(3_850_000_000)), ..entry("openai", "gpt-4o") },
                window,
                &prices,
            );
        }
        // gpt-4o-mini: ours 0.00021; AI Gateway agrees.
        cells.add(
            &LogEntry { created_ms: 1, cost: Some(Usd(210_000_000)), ..entry("openai", "gpt-4o-mini") },
            window,
            &prices,
        );
        // claude-haiku-4-5: ours 1000×1 + 100×5 per M = 0.0015; AI Gateway 0.00147 (-2 %).
        cells.add(
            &LogEntry { created_ms: 1, cost: Some(Usd(1_470_000_000)), ..entry("anthropic", "claude-haiku-4-5") },
            window,
            &prices,
        );
        // Unpriced by us: nothing to compare.
        cells.add(&LogEntry { created_ms: 1, cost: Some(Usd(5)), ..entry("workers-ai", "llama") }, window, &prices);
        let report = Report {
            source: Source::Aig,
            window,
            group_by: vec![Dim::Provider],
            cells,
            status: ReadStatus::default(),
            drift_threshold_bp: 500,
            reconciliation: None,
            reconciliation_skipped: None,
        };
        let rows = report.cross_check();
        assert_eq!(rows.len(), 3);
        let get = |m: &str| rows.iter().find(|r| r.model == m).unwrap();
        assert_eq!((get("gpt-4o").drift_bp, get("gpt-4o").flagged, get("gpt-4o").requests), (Some(1000), true, 3));
        assert_eq!((get("gpt-4o-mini").drift_bp, get("gpt-4o-mini").flagged), (Some(0), false));
        assert_eq!((get("claude-haiku-4-5").drift_bp, get("claude-haiku-4-5").flagged), (Some(-200), false));
        assert_eq!(get("gpt-4o").our_cost, Usd::parse_dollars("0.0105").unwrap());
        let strict = Report { drift_threshold_bp: 100, ..report };
        assert!(strict.cross_check().iter().find(|r| r.model == "claude-haiku-4-5").unwrap().flagged);
    }

    #[test]
    fn hundredths_are_exact() {
        assert_eq!(hundredths(250), "2.5");
        assert_eq!(hundredths(500), "5");
        assert_eq!(hundredths(-5), "-0.05");
        assert_eq!(hundredths(1234), "12.34");
        assert_eq!(hundredths(0), "0");
    }
}
