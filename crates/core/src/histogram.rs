//! Latency quantiles in bounded memory: a log-linear histogram.
//!
//! Values below 64 ms each have their own bucket (exact). Above, every power of two is split into
//! 32 equal buckets, so a bucket `[lo, lo + w)` has `w ≤ lo / 32`; a quantile is reported as its
//! bucket's midpoint, which is within **1/64 (1.6 %)** of the true order statistic. The buckets
//! are stored sparsely: at most ~1,900 exist for any `u64`, and real latencies touch a few dozen,
//! so memory does not grow with the number of logs, and two histograms merge by adding counts
//! (days from rollups merge into a month).

use std::collections::BTreeMap;

const LINEAR: u64 = 64;
const SUB_BITS: u32 = 5; // 32 sub-buckets per power of two

/// Bucket index of a value.
fn bucket(v: u64) -> u16 {
    if v < LINEAR {
        return v as u16;
    }
    let e = 63 - v.leading_zeros(); // 6..=63
    let sub = (v >> (e - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (LINEAR + u64::from(e - 6) * (1 << SUB_BITS) + sub) as u16
}

/// The bucket a value falls in (what the ledger stores beside each latency, so that SQL can
/// group by it and the histogram be rebuilt exactly).
pub fn bucket_index(v: u64) -> u16 {
    bucket(v)
}

/// `[low, high]` of the values in a bucket.
fn bounds(b: u16) -> (u64, u64) {
    let b = u64::from(b);
    if b < LINEAR {
        return (b, b);
    }
    let e = (b - LINEAR) / (1 << SUB_BITS) + 6;
    let sub = (b - LINEAR) % (1 << SUB_BITS);
    let width = 1u64 << (e - u64::from(SUB_BITS));
    let low = ((1 << SUB_BITS) + sub) * width;
    (low, low + (width - 1))
}

/// Counts of values per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u16, u64>,
    total: u64,
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        *self.counts.entry(bucket(value)).or_default() += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (b, n) in &other.counts {
            *self.counts.entry(*b).or_default() += n;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The nearest-rank `q` quantile (`0 < q ≤ 1`), as its bucket's midpoint; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (b, n) in &self.counts {
            seen += n;
            if seen >= rank {
                let (lo, hi) = bounds(*b);
                return Some(lo + (hi - lo) / 2);
            }
        }
        None
    }

    /// `(bucket, count)` pairs, for storage.
    pub fn to_pairs(&self) -> Vec<(u16, u64)> {
        self.counts.iter().map(|(b, n)| (*b, *n)).collect()
    }

    /// From stored pairs; `None` if a bucket index cannot exist.
    pub fn from_pairs(pairs: &[(u16, u64)]) -> Option<Histogram> {
        let mut h = Histogram::default();
        for &(b, n) in pairs {
            if u64::from(b) >= LINEAR + 58 * (1 << SUB_BITS) {
                return None;
            }
            *h.counts.entry(b).or_default() += n;
            h.total += n;
        }
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_once() {
        let mut previous_high = None;
        for b in 0..(LINEAR + 58 * 32) as u16 {
            let (lo, hi) = bounds(b);
            assert!(lo <= hi);
            if let Some(p) = previous_high {
                assert_eq!(lo, p + 1, "bucket {b} starts right after the previous one");
            }
            assert_eq!(bucket(lo), b);
            assert_eq!(bucket(hi), b);
            previous_high = Some(hi);
        }
        assert_eq!(previous_high, Some(u64::MAX));
    }

    #[test]
    fn relative_error_is_bounded() {
        for v in (0..200_000u64).chain([1 << 40, u64::MAX / 3, u64::MAX]) {
            let (lo, hi) = bounds(bucket(v));
            let mid = lo + (hi - lo) / 2;
            let err = mid.abs_diff(v) as f64;
            assert!(err <= v as f64 / 64.0 + 0.5, "{v}: midpoint {mid}");
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100 {
            h.record(v * 10);
        }
        // Exact: p50 = 500, p95 = 950; within 1/64.
        let p50 = h.quantile(0.5).unwrap();
        let p95 = h.quantile(0.95).unwrap();
        assert!(p50.abs_diff(500) <= 500 / 64, "{p50}");
        assert!(p95.abs_diff(950) <= 950 / 64, "{p95}");
        let mut small = Histogram::default();
        for v in [3, 1, 2] {
            small.record(v);
        }
        assert_eq!(small.quantile(0.5), Some(2));
        assert_eq!(small.quantile(1.0), Some(3));
    }

    #[test]
    fn merge_equals_recording_everything() {
        let (mut a, mut b, mut all) = (Histogram::default(), Histogram::default(), Histogram::default());
        for v in 0..5_000u64 {
            let x = v * 37 % 20_011;
            if v % 3 == 0 {
                a.record(x)
            } else {
                b.record(x)
            }
            all.record(x);
        }
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(Histogram::from_pairs(&a.to_pairs()), Some(all));
        assert_eq!(Histogram::from_pairs(&[(60_000, 1)]), None);
    }
}
