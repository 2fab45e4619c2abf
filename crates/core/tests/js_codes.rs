//! The codes the Worker's JavaScript helpers and its Rust shell exchange are numbers on both
//! sides (`js/relay.mjs` ↔ `src/relay/mod.rs`, `js/upstream.mjs` ↔ `src/aig/fetch.rs`): this test
//! reads both files of each pair and fails when a name is missing on one side or a value differs.

use std::collections::BTreeMap;

fn read(path: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::fs::read_to_string(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `const A = 0, B = 1;` declarations of a JavaScript file: the upper-case names and their values.
fn js_codes(text: &str) -> BTreeMap<String, f64> {
    let mut codes = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("const ")) {
        let list = line.trim_start_matches("const ").trim_end_matches(';');
        for part in list.split(',') {
            let Some((name, value)) = part.split_once('=') else { continue };
            let name = name.trim();
            let is_code = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if let (true, Ok(value)) = (is_code, value.trim().parse::<f64>()) {
                codes.insert(name.to_owned(), value);
            }
        }
    }
    codes
}

/// `const A: u32 = 0;` declarations of a Rust file at the top level, by name.
fn rust_codes(text: &str) -> BTreeMap<String, f64> {
    let mut codes = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("const ")) {
        let Some((head, value)) = line.trim_start_matches("const ").trim_end_matches(';').split_once('=') else {
            continue;
        };
        let name = head.split(':').next().unwrap_or("").trim();
        if let Ok(value) = value.trim().parse::<f64>() {
            codes.insert(name.to_owned(), value);
        }
    }
    codes
}

#[test]
fn the_relays_event_kinds_are_the_same_on_both_sides() {
    let js = js_codes(&read("js/relay.mjs"));
    let rust = rust_codes(&read("src/relay/mod.rs"));
    assert_eq!(js.len(), 6, "js/relay.mjs: {js:?}");
    assert_eq!(js, rust, "js/relay.mjs and src/relay/mod.rs disagree");
}

#[test]
fn the_upstream_calls_codes_are_the_same_on_both_sides() {
    let js = js_codes(&read("js/upstream.mjs"));
    let rust = rust_codes(&read("src/aig/fetch.rs"));
    assert_eq!(js.len(), 7, "js/upstream.mjs: {js:?}");
    assert_eq!(js, rust, "js/upstream.mjs and src/aig/fetch.rs disagree");
}
