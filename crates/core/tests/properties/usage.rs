//! `account::usage`: the billed output of any usage an answer reports — consistent counts in
//! every shape providers report thinking in, and hostile ones (negative, fractional, strings,
//! huge, inconsistent) — read without a panic, never below what any count says was billed.

use gateway_core::aig::answer::Usage;
use gateway_core::money::usage::Count;
use gateway_core::native::usage::read_answer;
use gateway_core::provider::Wire;
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::cases;

/// A count as an answer may carry one: mostly honest, sometimes not a count at all.
fn count() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u64..100_000).prop_map(|n| json!(n)),
        1 => any::<u64>().prop_map(|n| json!(n)),
        1 => (-100_000i64..0).prop_map(|n| json!(n)),
        1 => any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        1 => Just(json!("12")),
        1 => Just(Value::Null),
        1 => Just(json!([1])),
    ]
}

fn maybe(v: Value, present: bool) -> Option<Value> {
    present.then_some(v)
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Consistent counts, in each shape: the billed output is the output, and the reasoning
    /// figure is the thinking, whatever the shape says of it.
    #[test]
    fn every_shape_bills_its_output(prompt in 0u64..1_000_000, text in 0u64..100_000, thinking in 0u64..100_000, shape in 0u8..5) {
        let output = text + thinking;
        let usage = match shape {
            // OpenAI: reasoning inside completion_tokens.
            0 => json!({"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output, "completion_tokens_details": {"reasoning_tokens": thinking}}),
            // Gemini through compat: thinking apart, in the total.
            1 => json!({"prompt_tokens": prompt, "completion_tokens": text, "total_tokens": prompt + output, "completion_tokens_details": {"reasoning_tokens": thinking}}),
            // Gemini through compat: thinking in the total only.
            2 => json!({"prompt_tokens": prompt, "completion_tokens": text, "total_tokens": prompt + output}),
            // No total: reasoning apart.
            3 => json!({"prompt_tokens": prompt, "completion_tokens": text, "completion_tokens_details": {"reasoning_tokens": thinking}}),
            // No thinking reported at all.
            _ => json!({"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}),
        };
        let u: Usage = serde_json::from_value(usage.clone()).unwrap();
        let t = u.tokens().unwrap();
        prop_assert_eq!((t.prompt(), t.output), (prompt, output), "{}", usage);
        if matches!(shape, 0 | 1 | 3) {
            prop_assert_eq!(t.reasoning, thinking, "{}", usage);
        }
        // Gemini's own format: thoughts beside candidates.
        let gemini = json!({"usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": text, "thoughtsTokenCount": thinking, "totalTokenCount": prompt + output}});
        let native = read_answer(Wire::Gemini, gemini.to_string().as_bytes()).unwrap().usage.unwrap();
        prop_assert_eq!((native.tokens.prompt(), native.tokens.output, native.tokens.reasoning), (prompt, output, thinking));
    }

    /// Any counts at all: read without a panic; when they make a usage, it bills at least every
    /// count's reading of the output, and never a negative or wrapped-around figure.
    #[test]
    fn any_counts_are_read_safely(
        fields in (count(), count(), count(), count(), count()),
        present in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
    ) {
        let (p, c, t, r, k) = fields;
        let mut usage = serde_json::Map::new();
        for (name, value) in [("prompt_tokens", maybe(p, present.0)), ("completion_tokens", maybe(c, present.1)), ("total_tokens", maybe(t, present.2))] {
            if let Some(v) = value {
                usage.insert(name.into(), v);
            }
        }
        if let Some(v) = maybe(r, present.3) {
            usage.insert("completion_tokens_details".into(), json!({"reasoning_tokens": v}));
        }
        if let Some(v) = maybe(k, present.4) {
            usage.insert("prompt_tokens_details".into(), json!({"cached_tokens": v}));
        }
        let body = json!({"choices": [], "usage": usage});
        let completion = gateway_core::aig::answer::read_completion(body.to_string().as_bytes()).unwrap();
        let u = completion.usage.unwrap();
        if let Ok(tokens) = u.tokens() {
            let known = |c: Count| c.known();
            let (prompt, completion, total) = (known(u.prompt_tokens).unwrap_or(0), known(u.completion_tokens), known(u.total_tokens));
            prop_assert!(tokens.output >= completion.unwrap_or(0));
            prop_assert!(tokens.output >= total.map_or(0, |t| t.saturating_sub(prompt)));
            prop_assert!(tokens.cached_input <= prompt && tokens.prompt() == prompt);
            prop_assert!(tokens.reasoning <= tokens.output);
            if let Some(r) = u.completion_tokens_details.and_then(|d| d.reasoning_tokens.known()) {
                prop_assert!(tokens.reasoning >= r.min(tokens.output));
            }
        }
        for wire in [Wire::OpenAi, Wire::Anthropic, Wire::Gemini, Wire::Bedrock] {
            let _ = read_answer(wire, body.to_string().as_bytes());
        }
    }
}
