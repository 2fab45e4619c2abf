//! `config::GatewayConfig::from_json` (an operator's `GATEWAY_CONFIG` var) and `Settings::read`:
//! text from outside the code, validated once with messages, never a panic.

use gateway_core::config::{GatewayConfig, Settings};
use proptest::prelude::*;

use crate::{cases, hostile_text};

const SHIPPED: &str = include_str!("../../../../gateway.config.json");

/// The shipped configuration with a few spans replaced by hostile text: near-valid input that
/// reaches deep into validation.
fn mutated_shipped() -> impl Strategy<Value = String> {
    prop::collection::vec((any::<usize>(), 0usize..12, hostile_text(12)), 1..5).prop_map(|edits| {
        let mut text = SHIPPED.to_owned();
        for (at, len, with) in edits {
            let mut start = at % (text.len() + 1);
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(start..end, &with);
        }
        text
    })
}

/// The shipped configuration with numbers and names swapped for edge values.
fn edged_shipped() -> impl Strategy<Value = String> {
    let number = prop::sample::select(vec![
        "0",
        "-1",
        "1",
        "4294967295",
        "4294967296",
        "1e3",
        "0.000000000001",
        "0.0000000000001",
        "18446744",
        "1.5",
        "\"10\"",
        "null",
        "99999999999999999999",
    ]);
    (number.clone(), number, prop::sample::select(vec!["openai", "nope", "", "OpenAI", "a/b", "google-ai-studio"]))
        .prop_map(|(rpm, budget, provider)| {
            SHIPPED
                .replacen("\"requests_per_minute\": 100", &format!("\"requests_per_minute\": {rpm}"), 1)
                .replacen("\"daily_budget_usd\": 10", &format!("\"daily_budget_usd\": {budget}"), 1)
                .replacen("\"openai/gpt-4o-mini\"", &format!("\"{provider}/gpt-4o-mini\""), 1)
        })
}

fn check(text: &str) -> Result<(), TestCaseError> {
    match GatewayConfig::from_json(text) {
        Ok(config) => {
            // What validation promises the rest of the gateway.
            for target in config.models() {
                prop_assert!(config.providers.contains_key(target.provider()), "{} has no limits", target.id);
            }
            for required in gateway_core::config::REQUIRED_ALIASES {
                prop_assert!(config.alias(required).is_some());
            }
        }
        Err(e) => prop_assert!(!e.0.is_empty(), "an error without a problem"),
    }
    Ok(())
}

#[test]
fn shipped_configuration_is_valid() {
    GatewayConfig::from_json(SHIPPED).unwrap();
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in hostile_text(400)) {
        check(&text)?;
    }

    #[test]
    fn mutated_configuration_never_panics(text in mutated_shipped()) {
        check(&text)?;
    }

    #[test]
    fn edge_values_are_validated(text in edged_shipped()) {
        check(&text)?;
    }

    /// Vars and secrets: any text, never a panic; a problem is named, never its value.
    #[test]
    fn settings_never_panic(values in prop::collection::vec(hostile_text(40), 12)) {
        let names = [
            "CF_ACCOUNT_ID", "AI_GATEWAY_ID", "AI_GATEWAY_URL", "CF_API_URL", "GATEWAY_ENDPOINT", "MAX_BODY_BYTES",
            "UPSTREAM_FIRST_BYTE_TIMEOUT_MS", "STREAM_IDLE_TIMEOUT_MS", "REQUEST_DEADLINE_MS", "AGENT_TOKEN",
            "CF_AIG_TOKEN", "CF_API_TOKEN",
        ];
        let lookup = |name: &str| names.iter().position(|n| *n == name).map(|i| values[i].clone());
        let settings = Settings::read(lookup);
        let debug = format!("{settings:?}");
        for secret in [&values[9], &values[10], &values[11]] {
            let secret = secret.trim();
            if secret.len() >= 8 {
                prop_assert!(!debug.contains(secret), "a secret in Settings' Debug");
                for problem in &settings.invalid {
                    prop_assert!(!problem.contains(secret), "a secret in a problem");
                }
            }
        }
    }
}
