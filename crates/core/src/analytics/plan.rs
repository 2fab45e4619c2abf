//! Which days come from rollups and which time windows must be read from the logs.
//!
//! A day can be rolled up once it is over and settled (logs are written a moment after the
//! request; [`SETTLE_MS`] leaves room for that). A view uses a day's rollup when the whole day is
//! inside its range; everything else (the partial first and last days, today, days not rolled up
//! yet) is read from the logs, in as few windows as possible.

use crate::analytics::logs::Window;
use crate::time::{self, MS_PER_DAY};

/// How long after a day ends before it is considered final.
pub const SETTLE_MS: i64 = 10 * 60_000;

/// Whole days inside `window` that are settled at `now_ms`, oldest first.
pub fn settled_days(window: Window, now_ms: i64) -> Vec<i64> {
    let first = window.from_ms.div_euclid(MS_PER_DAY) + i64::from(window.from_ms.rem_euclid(MS_PER_DAY) != 0);
    let last_end = window.to_ms.min(now_ms - SETTLE_MS).div_euclid(MS_PER_DAY); // exclusive
    (first..last_end).collect()
}

/// Days a scheduled rollup should hold: the last `keep_days` settled days, newest first (the
/// default view is the last week, so recent days matter most when a run cannot do them all).
pub fn days_to_roll_up(now_ms: i64, keep_days: u32) -> Vec<i64> {
    let newest = (now_ms - SETTLE_MS).div_euclid(MS_PER_DAY) - 1;
    (0..i64::from(keep_days)).map(|i| newest - i).collect()
}

/// The plan of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    /// Days taken from rollups.
    pub rollup_days: Vec<i64>,
    /// Windows read from the logs, oldest first.
    pub windows: Vec<Window>,
}

/// Splits `window` into the given rolled-up days and the log windows between them. `rolled_up`
/// must only hold whole days inside `window` (see [`settled_days`]).
pub fn plan(window: Window, rolled_up: &[i64]) -> ReadPlan {
    let mut days: Vec<i64> = rolled_up
        .iter()
        .copied()
        .filter(|d| window.from_ms <= d * MS_PER_DAY && (d + 1) * MS_PER_DAY <= window.to_ms)
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut windows = Vec::new();
    let mut cursor = window.from_ms;
    for d in &days {
        let start = d * MS_PER_DAY;
        if cursor < start {
            windows.push(Window { from_ms: cursor, to_ms: start });
        }
        cursor = start + MS_PER_DAY;
    }
    if cursor < window.to_ms {
        windows.push(Window { from_ms: cursor, to_ms: window.to_ms });
    }
    ReadPlan { rollup_days: days, windows }
}

/// The window of one day.
pub fn day_window(day: i64) -> Window {
    Window { from_ms: day * MS_PER_DAY, to_ms: (day + 1) * MS_PER_DAY }
}

/// `2026-08-20` labels, for log lines.
pub fn day_labels(days: &[i64]) -> Vec<String> {
    days.iter().map(|d| time::format_day(*d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = MS_PER_DAY;

    #[test]
    fn settled_days_are_whole_and_over() {
        let now = 100 * D + 5 * 60_000; // 00:05 on day 100: day 99 not settled yet
        let w = Window { from_ms: 90 * D + 1, to_ms: now };
        assert_eq!(settled_days(w, now), (91..99).collect::<Vec<_>>());
        let later = 100 * D + 11 * 60_000;
        assert_eq!(settled_days(w, later), (91..100).collect::<Vec<_>>());
        assert_eq!(settled_days(Window { from_ms: 95 * D, to_ms: 95 * D + 5 }, later), Vec::<i64>::new());
    }

    #[test]
    fn rollup_days_newest_first() {
        assert_eq!(days_to_roll_up(100 * D + 11 * 60_000, 3), vec![99, 98, 97]);
        assert_eq!(days_to_roll_up(100 * D + 60_000, 2), vec![98, 97]);
    }

    #[test]
    fn plans_cover_the_range_exactly_once() {
        let w = Window { from_ms: 10 * D + 500, to_ms: 20 * D + 700 };
        let p = plan(w, &[15, 11, 12, 14, 30, 10]);
        assert_eq!(p.rollup_days, vec![11, 12, 14, 15]);
        assert_eq!(
            p.windows,
            vec![
                Window { from_ms: 10 * D + 500, to_ms: 11 * D },
                Window { from_ms: 13 * D, to_ms: 14 * D },
                Window { from_ms: 16 * D, to_ms: 20 * D + 700 },
            ]
        );
        // Covered length = window length.
        let covered: i64 = p.windows.iter().map(|w| w.to_ms - w.from_ms).sum::<i64>() + 4 * D;
        assert_eq!(covered, w.to_ms - w.from_ms);
        assert_eq!(plan(w, &[]).windows, vec![w]);
        let whole = Window { from_ms: 3 * D, to_ms: 5 * D };
        assert_eq!(plan(whole, &[3, 4]), ReadPlan { rollup_days: vec![3, 4], windows: vec![] });
    }
}
