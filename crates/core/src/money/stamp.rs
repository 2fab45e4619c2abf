//! What an answer says it cost: `"cost"` (USD, an exact decimal JSON number) inside its `usage`
//! object, OpenRouter's convention, which agents' code already reads. A non-streamed answer gets
//! it beside the `x-gateway-cost-usd` header; a stream gets it in its final usage event, the one
//! place a streamed answer can still say what it cost. Every other byte is left as it came.
//!
//! The amount is what the *request* was charged against the budgets (its failed attempts
//! included), the same figure as the header and the ledger's rows: the books and the responses
//! can then be added up against each other.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::money::pricing::Usd;

#[derive(Deserialize)]
struct Top<'a> {
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

/// `json` with `"cost": <cost>` in its top-level `usage` object (replacing a `cost` already
/// there). `None` when it has no `usage` object (or is not JSON): then it is passed on as it is.
pub fn stamp_usage_cost(json: &[u8], cost: Usd) -> Option<Vec<u8>> {
    let top: Top = serde_json::from_slice(json).ok()?;
    let usage = top.usage?;
    let text = usage.get();
    if !text.starts_with('{') {
        return None; // `"usage": null`, or not an object
    }
    let start = offset_in(json, text)?;
    let fields: BTreeMap<Cow<'_, str>, &RawValue> = crate::json::from_str(text).ok()?;
    let amount = cost.to_string();
    let mut out = Vec::with_capacity(json.len() + amount.len() + 10);
    match fields.get("cost") {
        Some(old) => {
            let at = offset_in(json, old.get())?;
            out.extend_from_slice(&json[..at]);
            out.extend_from_slice(amount.as_bytes());
            out.extend_from_slice(&json[at + old.get().len()..]);
        }
        None => {
            let close = start + text.len() - 1; // the object's `}`
            out.extend_from_slice(&json[..close]);
            if !fields.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"cost\":");
            out.extend_from_slice(amount.as_bytes());
            out.extend_from_slice(&json[close..]);
        }
    }
    Some(out)
}

/// Where `part` (a slice borrowed from `whole`) starts in `whole`.
fn offset_in(whole: &[u8], part: &str) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (offset + part.len() <= whole.len()).then_some(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(json: &str, pico: u64) -> Option<String> {
        stamp_usage_cost(json.as_bytes(), Usd(pico)).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn the_cost_goes_inside_usage_and_nothing_else_moves() {
        let body = "{\"id\":\"c1\", \"choices\":[{\"message\":{\"usage\":1}}],\n \"usage\": {\"prompt_tokens\":5 ,\"completion_tokens\":2} }";
        assert_eq!(
            stamp(body, 1_500_000).unwrap(),
            "{\"id\":\"c1\", \"choices\":[{\"message\":{\"usage\":1}}],\n \"usage\": {\"prompt_tokens\":5 ,\"completion_tokens\":2,\"cost\":0.0000015} }"
        );
    }

    #[test]
    fn an_exact_decimal_that_json_readers_parse_as_a_number() {
        let out = stamp(r#"{"usage":{"total_tokens":7}}"#, 123_456_789_012_345).unwrap();
        assert_eq!(out, r#"{"usage":{"total_tokens":7,"cost":123.456789012345}}"#);
        let v: serde_json::Value = crate::json::from_str(&out).unwrap();
        assert!(v["usage"]["cost"].is_number());
        assert_eq!(stamp(r#"{"usage":{}}"#, 0).unwrap(), r#"{"usage":{"cost":0}}"#);
        assert_eq!(stamp(r#"{"usage":{ }}"#, 0).unwrap(), r#"{"usage":{ "cost":0}}"#);
    }

    #[test]
    fn a_cost_already_there_is_replaced_not_duplicated() {
        let out = stamp(r#"{"usage":{"cost": 9.99, "prompt_tokens":1}}"#, 2_000_000_000).unwrap();
        assert_eq!(out, r#"{"usage":{"cost": 0.002, "prompt_tokens":1}}"#);
    }

    #[test]
    fn without_a_usage_object_nothing_is_stamped() {
        for body in [r#"{"id":"x"}"#, r#"{"usage":null}"#, r#"{"usage":[1]}"#, "not json", r#"{"usage":{"a":1}"#, ""] {
            assert_eq!(stamp(body, 5), None, "{body}");
        }
        // Two `usage` keys could be read either way by the caller's parser: left alone.
        assert_eq!(stamp(r#"{"usage":{"a":1},"usage":{"b":2}}"#, 5), None);
    }

    #[test]
    fn escaped_keys_are_understood() {
        let out = stamp(r#"{"usage":{"co\u0073t":1,"x":2}}"#, 3_000_000_000_000).unwrap();
        assert_eq!(out, r#"{"usage":{"co\u0073t":3,"x":2}}"#);
    }
}
