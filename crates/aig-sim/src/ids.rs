//! Identifiers and the simulator's pseudo-random numbers.
//!
//! Log ids look like AI Gateway's (`01JADMCQQQBWH3NXZ5GCRN98DP`): 26 characters of Crockford
//! base32, the first 10 encoding the millisecond timestamp and the other 16 eighty random-looking
//! bits, exactly like a ULID. Randomness comes from SplitMix64, a tiny, well-known generator that
//! is good enough for test data and keeps seeded synthetic logs reproducible without a rand crate.

use std::sync::atomic::{AtomicU64, Ordering};

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// SplitMix64 (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0). The modulo bias is irrelevant for test data.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks one element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A ULID-shaped id from a millisecond timestamp and 80 bits taken from `rand`.
pub fn ulid(ms: i64, rand: u128) -> String {
    let value = (u128::from(ms.max(0) as u64 & 0xFFFF_FFFF_FFFF) << 80) | (rand & ((1 << 80) - 1));
    (0..26).map(|i| CROCKFORD[((value >> (125 - 5 * i)) & 31) as usize] as char).collect()
}

/// Hands out fresh, unique log ids. Uniqueness does not rely on the randomness: a counter is mixed
/// into the random part, and SplitMix64's output function is a bijection of its state.
#[derive(Debug)]
pub struct IdGen {
    seed: u64,
    counter: AtomicU64,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        Self { seed, counter: AtomicU64::new(0) }
    }

    pub fn log_id(&self, ms: i64) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let hi = SplitMix64::new(self.seed ^ n.rotate_left(32)).next_u64();
        // The low 64 bits are a bijection of the counter, so two ids never collide.
        let lo = SplitMix64::new(self.seed).next_u64() ^ SplitMix64::new(n).next_u64();
        ulid(ms, (u128::from(hi) << 64) | u128::from(lo))
    }

    /// A small, increasing number for `chatcmpl-<n>` / `msg_<n>` ids.
    pub fn next_number(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ulid_shape_and_time_prefix() {
        let id = ulid(1_729_000_000_000, u128::MAX);
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|c| CROCKFORD.contains(&c)));
        // Later timestamps sort later, as with real ULIDs.
        assert!(ulid(1_729_000_000_001, 0) > ulid(1_729_000_000_000, u128::MAX));
        assert_eq!(ulid(0, 0), "00000000000000000000000000");
    }

    #[test]
    fn log_ids_are_unique() {
        let g = IdGen::new(7);
        let ids: HashSet<_> = (0..10_000).map(|_| g.log_id(1_000)).collect();
        assert_eq!(ids.len(), 10_000);
    }

    #[test]
    fn splitmix_is_deterministic() {
        let (mut a, mut b) = (SplitMix64::new(42), SplitMix64::new(42));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        // First output for seed 0 from the reference implementation.
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        let u = SplitMix64::new(1).unit();
        assert!((0.0..1.0).contains(&u));
    }
}
