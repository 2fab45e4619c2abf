//! The finest grain of aggregation: one [`Metrics`] per (UTC day, provider, model, agent,
//! repository). Any grouping the route offers (one or two of provider, model, agent, repository,
//! day) is a projection of these cells, so logs are read once whatever is asked; and a day's cells
//! are what a rollup stores.
//!
//! Memory is bounded by the number of distinct cells, not of rows. Agent and repository names
//! come from request metadata, which other callers may fill freely: past [`MAX_CELLS`] cells, new
//! agents and repositories are counted under `(other)` rather than growing without end.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analytics::logs::{LogEntry, Window};
use crate::analytics::metrics::Metrics;
use crate::histogram::Histogram;
use crate::money::pricing::{Prices, Usd};
use crate::time;

/// Most cells kept before agents and repositories fold into `(other)`.
pub const MAX_CELLS: usize = 20_000;
/// The label of rows without an agent or repository.
pub const NONE_LABEL: &str = "(none)";
pub const OTHER_LABEL: &str = "(other)";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub day: i64,
    pub provider: String,
    pub model: String,
    pub agent: Option<String>,
    pub repo: Option<String>,
}

/// A dimension to group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dim {
    Provider,
    Model,
    Agent,
    Repo,
    Day,
}

impl Dim {
    pub const ALL: [Dim; 5] = [Dim::Provider, Dim::Model, Dim::Agent, Dim::Repo, Dim::Day];

    /// The name used in `group_by`, JSON keys and CSV headers.
    pub fn name(self) -> &'static str {
        match self {
            Dim::Provider => "provider",
            Dim::Model => "model",
            Dim::Agent => "agent",
            Dim::Repo => "repository",
            Dim::Day => "day",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        match s.trim() {
            "provider" => Some(Dim::Provider),
            "model" => Some(Dim::Model),
            "agent" => Some(Dim::Agent),
            "repository" | "repo" => Some(Dim::Repo),
            "day" => Some(Dim::Day),
            _ => None,
        }
    }

    /// This dimension's value for a cell. Models are `provider/model`: the same model name may be
    /// served by two providers at different prices.
    pub fn label(self, key: &CellKey) -> String {
        match self {
            Dim::Provider => key.provider.clone(),
            Dim::Model => format!("{}/{}", key.provider, key.model),
            Dim::Agent => key.agent.clone().unwrap_or_else(|| NONE_LABEL.to_owned()),
            Dim::Repo => key.repo.clone().unwrap_or_else(|| NONE_LABEL.to_owned()),
            Dim::Day => time::format_day(key.day),
        }
    }
}

/// Metrics per cell, for rows inside a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells {
    map: BTreeMap<CellKey, Metrics>,
    /// Rows ignored because they were outside the window asked for.
    pub outside: u64,
    /// Rows whose agent or repository was folded into `(other)`.
    pub folded: u64,
}

impl Cells {
    /// Counts a row, if it falls in `window` (the API's date filters are not trusted blindly: a
    /// row outside the window would be counted twice when windows and rollups are combined).
    pub fn add(&mut self, e: &LogEntry, window: Window, prices: &Prices) {
        if !window.contains(e.created_ms) {
            self.outside += 1;
            return;
        }
        let key = CellKey {
            day: time::day_of(e.created_ms),
            provider: e.provider.clone(),
            model: e.model.clone(),
            agent: e.agent.clone(),
            repo: e.repo.clone(),
        };
        self.cell(key, 1).add(e, prices);
    }

    /// The cell of `key` for `rows` more rows, folding its agent and repository into `(other)`
    /// when the cells are full.
    pub fn cell(&mut self, mut key: CellKey, rows: u64) -> &mut Metrics {
        if self.map.len() >= MAX_CELLS && !self.map.contains_key(&key) {
            key.agent = key.agent.map(|_| OTHER_LABEL.to_owned());
            key.repo = key.repo.map(|_| OTHER_LABEL.to_owned());
            self.folded += rows;
        }
        self.map.entry(key).or_default()
    }

    pub fn merge(&mut self, other: &Cells) {
        for (k, m) in &other.map {
            match self.map.get_mut(k) {
                Some(mine) => mine.merge(m),
                None => {
                    self.map.insert(k.clone(), m.clone());
                }
            }
        }
        self.outside += other.outside;
        self.folded += other.folded;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&CellKey, &Metrics)> {
        self.map.iter()
    }

    pub fn totals(&self) -> Metrics {
        let mut t = Metrics::default();
        for m in self.map.values() {
            t.merge(m);
        }
        t
    }

    /// Metrics per value of `dims` (in that order), sorted by the labels (days chronologically).
    pub fn group(&self, dims: &[Dim]) -> Vec<(Vec<String>, Metrics)> {
        let mut groups: BTreeMap<Vec<String>, Metrics> = BTreeMap::new();
        for (k, m) in &self.map {
            let labels: Vec<String> = dims.iter().map(|d| d.label(k)).collect();
            groups.entry(labels).or_default().merge(m);
        }
        groups.into_iter().collect()
    }

    /// The cells of one day, for a rollup.
    pub fn to_json(&self) -> String {
        let stored: Vec<StoredCell<'_>> = self.map.iter().map(|(k, m)| StoredCell::new(k, m)).collect();
        serde_json::to_string(&stored).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Cells stored by [`Cells::to_json`].
    pub fn from_json(text: &str) -> Result<Cells, String> {
        let stored: Vec<StoredCell<'_>> =
            crate::json::from_str(text).map_err(|e| format!("stored rollup cells are unreadable: {e}"))?;
        let mut cells = Cells::default();
        for s in stored {
            let (k, m) = s.into_cell().ok_or("stored rollup cells hold an impossible histogram")?;
            match cells.map.get_mut(&k) {
                Some(mine) => mine.merge(&m),
                None => {
                    cells.map.insert(k, m);
                }
            }
        }
        Ok(cells)
    }
}

/// A cell as stored in a rollup: money in integer picodollars (JSON integers are exact in
/// serde_json; they never pass through a float).
#[derive(Serialize, Deserialize)]
struct StoredCell<'a> {
    d: i64,
    #[serde(borrow)]
    p: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    m: std::borrow::Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    a: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    r: Option<std::borrow::Cow<'a, str>>,
    /// requests, successes, cached, tokens_in, tokens_out, reported_requests, estimated_requests,
    /// unpriced_requests, cache_unpriced, compared_requests, fallback_attempts, fallback_answers
    n: [u64; 12],
    /// cost_reported, cost_estimated, cache_savings, compared_aig, compared_ours, fallback_cost
    usd: [u64; 6],
    e: Vec<(u16, u64)>,
    l: Vec<(u16, u64)>,
    /// answered_by_other_model (absent when 0, as in cells stored before it was counted)
    #[serde(default, skip_serializing_if = "is_zero")]
    o: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl<'a> StoredCell<'a> {
    fn new(k: &'a CellKey, m: &Metrics) -> StoredCell<'a> {
        StoredCell {
            d: k.day,
            p: k.provider.as_str().into(),
            m: k.model.as_str().into(),
            a: k.agent.as_deref().map(Into::into),
            r: k.repo.as_deref().map(Into::into),
            n: [
                m.requests,
                m.successes,
                m.cached,
                m.tokens_in,
                m.tokens_out,
                m.reported_requests,
                m.estimated_requests,
                m.unpriced_requests,
                m.cache_unpriced,
                m.compared_requests,
                m.fallback_attempts,
                m.fallback_answers,
            ],
            usd: [
                m.cost_reported.0,
                m.cost_estimated.0,
                m.cache_savings.0,
                m.compared_aig.0,
                m.compared_ours.0,
                m.fallback_cost.0,
            ],
            e: m.errors_by_status.iter().map(|(s, n)| (*s, *n)).collect(),
            l: m.latency.to_pairs(),
            o: m.answered_by_other_model,
        }
    }

    fn into_cell(self) -> Option<(CellKey, Metrics)> {
        let [requests, successes, cached, tokens_in, tokens_out, reported_requests, estimated_requests, unpriced_requests, cache_unpriced, compared_requests, fallback_attempts, fallback_answers] =
            self.n;
        let [cost_reported, cost_estimated, cache_savings, compared_aig, compared_ours, fallback_cost] =
            self.usd.map(Usd);
        let key = CellKey {
            day: self.d,
            provider: self.p.into_owned(),
            model: self.m.into_owned(),
            agent: self.a.map(|a| a.into_owned()),
            repo: self.r.map(|r| r.into_owned()),
        };
        let metrics = Metrics {
            requests,
            successes,
            errors_by_status: self.e.into_iter().collect(),
            cached,
            tokens_in,
            tokens_out,
            cost_reported,
            reported_requests,
            cost_estimated,
            estimated_requests,
            unpriced_requests,
            cache_savings,
            cache_unpriced,
            compared_aig,
            compared_ours,
            compared_requests,
            fallback_attempts,
            fallback_answers,
            fallback_cost,
            answered_by_other_model: self.o,
            latency: Histogram::from_pairs(&self.l)?,
        };
        Some((key, metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::metrics::tests::entry;

    const DAY: i64 = time::MS_PER_DAY;

    fn rows() -> Vec<LogEntry> {
        (0..300i64)
            .map(|i| LogEntry {
                created_ms: 20_000 * DAY + i * 3_600_000 / 2,
                agent: (i % 4 != 0).then(|| ["TriagingAgent", "PRReviewAgent"][(i % 2) as usize].to_owned()),
                repo: Some(format!("o/r{}", i % 3)),
                cached: i % 6 == 0,
                cost: (i % 5 != 0).then_some(Usd(i as u64 * 7_000_000)),
                duration_ms: Some(i as u64 * 11),
                success: i % 9 != 0,
                ..entry(["openai", "anthropic"][(i % 2) as usize], ["gpt-4o", "claude-haiku-4-5"][(i % 2) as usize])
            })
            .collect()
    }

    #[test]
    fn groupings_are_projections_with_the_same_totals() {
        let prices = Prices::shipped();
        let window = Window { from_ms: 20_000 * DAY, to_ms: 20_010 * DAY };
        let mut cells = Cells::default();
        for r in rows() {
            cells.add(&r, window, &prices);
        }
        let totals = cells.totals();
        assert_eq!(totals.requests, 300);
        for dims in [
            vec![Dim::Provider],
            vec![Dim::Day],
            vec![Dim::Agent],
            vec![Dim::Provider, Dim::Day],
            vec![Dim::Repo, Dim::Model],
        ] {
            let mut sum = Metrics::default();
            for (_, m) in cells.group(&dims) {
                sum.merge(&m);
            }
            assert_eq!(sum, totals, "{dims:?}");
        }
        let by_agent = cells.group(&[Dim::Agent]);
        let labels: Vec<&str> = by_agent.iter().map(|(k, _)| k[0].as_str()).collect();
        assert_eq!(labels, ["(none)", "PRReviewAgent", "TriagingAgent"]);
        let by_day = cells.group(&[Dim::Day]);
        assert_eq!(by_day.len(), 7);
        assert!(by_day.windows(2).all(|w| w[0].0 < w[1].0), "chronological");
        assert_eq!(cells.group(&[Dim::Model])[0].0, ["anthropic/claude-haiku-4-5"]);
    }

    #[test]
    fn rows_outside_the_window_are_not_counted() {
        let prices = Prices::shipped();
        let window = Window { from_ms: 20_001 * DAY, to_ms: 20_002 * DAY };
        let mut cells = Cells::default();
        for r in rows() {
            cells.add(&r, window, &prices);
        }
        assert_eq!(cells.totals().requests, 48);
        assert_eq!(cells.outside, 252);
    }

    #[test]
    fn rollup_storage_round_trips_and_days_merge() {
        let prices = Prices::shipped();
        let all_window = Window { from_ms: 20_000 * DAY, to_ms: 20_010 * DAY };
        let mut whole = Cells::default();
        let mut by_day: Vec<Cells> = Vec::new();
        for r in rows() {
            whole.add(&r, all_window, &prices);
        }
        for d in 20_000..20_010 {
            let w = Window { from_ms: d * DAY, to_ms: (d + 1) * DAY };
            let mut c = Cells::default();
            for r in rows() {
                c.add(&r, w, &prices);
            }
            by_day.push(Cells::from_json(&c.to_json()).unwrap());
        }
        let mut merged = Cells::default();
        for c in &by_day {
            let mut c = c.clone();
            c.outside = 0;
            merged.merge(&c);
        }
        assert_eq!(merged.map, whole.map);
        assert!(Cells::from_json("{").is_err());
        // A cell stored before answers from another model were counted reads as none; one that
        // has some keeps them.
        let old = r#"[{"d":1,"p":"p","m":"m","n":[1,1,0,0,0,1,0,0,0,0,0,0],"usd":[0,0,0,0,0,0],"e":[],"l":[[3,1]]}]"#;
        let cells = Cells::from_json(old).unwrap();
        assert_eq!(cells.totals().answered_by_other_model, 0);
        let mut flagged = cells.clone();
        flagged.map.values_mut().for_each(|m| m.answered_by_other_model = 1);
        assert_eq!(Cells::from_json(&flagged.to_json()).unwrap().totals().answered_by_other_model, 1);
        assert!(Cells::from_json(
            r#"[{"d":1,"p":"p","m":"m","n":[0,0,0,0,0,0,0,0,0,0,0,0],"usd":[0,0,0,0,0,0],"e":[],"l":[[65000,1]]}]"#
        )
        .is_err());
    }

    #[test]
    fn cardinality_is_bounded() {
        let prices = Prices::shipped();
        let window = Window { from_ms: 0, to_ms: DAY };
        let mut cells = Cells::default();
        for i in 0..(MAX_CELLS + 500) {
            let e = LogEntry { created_ms: 1, agent: Some(format!("agent-{i}")), ..entry("openai", "gpt-4o") };
            cells.add(&e, window, &prices);
        }
        assert_eq!(cells.len(), MAX_CELLS + 1);
        assert_eq!(cells.folded, 500);
        assert_eq!(cells.totals().requests, (MAX_CELLS + 500) as u64);
        assert!(cells.group(&[Dim::Agent]).iter().any(|(k, m)| k[0] == OTHER_LABEL && m.requests == 500));
    }
}
