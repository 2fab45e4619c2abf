//! Property tests ("fuzzing" with a budget) for every parser of untrusted bytes in the core.
//!
//! Each parser gets two kinds of input: arbitrary bytes (it must never panic, never hold more
//! than its bound) and structured input generated to reach deep (it must keep its promises: the
//! rewrite changes only `model`, the relay is byte-exact however the network cuts the stream,
//! amounts round-trip exactly...).
//!
//! `make test` runs a few hundred cases per property (seconds); `make fuzz` runs the same
//! properties with `PROPTEST_CASES` in the thousands, in release mode (minutes).

mod analytics;
mod config;
mod headers;
mod leases;
mod native_path;
mod output;
mod pricing;
mod relay;
mod request;
mod route;
mod tenants;
mod tools;
mod upstream;
mod usage;

#[path = "../common/tool_calls.rs"]
mod tool_calls;

use proptest::prelude::*;

/// Cases per property: `PROPTEST_CASES` when set (make fuzz), else `default`.
pub fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    // No regression files written into the source tree: a failure prints its minimal input.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// For properties whose every case is heavy (megabytes): `default` cases, or a thousandth of
/// `PROPTEST_CASES` when that is more.
pub fn heavy_cases(default: u32) -> ProptestConfig {
    let asked = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    ProptestConfig { cases: default.max(asked / 1000), failure_persistence: None, ..ProptestConfig::default() }
}

/// Arbitrary bytes biased towards what parsers branch on: JSON and SSE punctuation, line ends,
/// quotes, escapes, high bytes that break UTF-8.
pub fn hostile_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => any::<u8>(),
        6 => prop::sample::select(b"{}[]\":,\\ \n\rdata:event[DONE]0123456789.-+eEtruefalsnul/%@?&=".to_vec()),
    ];
    prop::collection::vec(byte, 0..max)
}

/// Text made of the same biased alphabet, valid UTF-8 (with some non-ASCII).
pub fn hostile_text(max: usize) -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => any::<char>(),
        6 => prop::sample::select("{}[]\":,\\ \n\r\tabcmodelstream_ptin0123456789.-/%@?&=é😀\u{0}\u{7f}".chars().collect::<Vec<_>>()),
    ];
    prop::collection::vec(ch, 0..max).prop_map(|v| v.into_iter().collect())
}

/// Splits `data` at the given cut points (taken modulo its length), in order.
pub fn split_at_points(data: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    if data.is_empty() {
        return vec![Vec::new()];
    }
    let mut cuts: Vec<usize> = points.iter().map(|p| p % data.len()).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut at = 0;
    for c in cuts {
        if c > at {
            pieces.push(data[at..c].to_vec());
            at = c;
        }
    }
    pieces.push(data[at..].to_vec());
    pieces
}
