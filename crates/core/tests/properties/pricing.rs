//! `pricing`: decimal USD strings parsed to integer picodollars, and the price table.

use gateway_core::money::pricing::{PerToken, Prices, Usd, SHIPPED_PRICES};
use proptest::prelude::*;

use crate::{cases, hostile_text};

/// The exact value of `whole.frac` in units of 10^-scale, computed in u128 (the reference).
fn reference(whole: &str, frac: &str, scale: u32) -> Option<u64> {
    if frac.len() > scale as usize {
        return None;
    }
    let w: u128 = whole.parse().ok()?;
    let f: u128 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let v = w * 10u128.pow(scale) + f * 10u128.pow(scale - frac.len() as u32);
    u64::try_from(v).ok()
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Every amount prints as a decimal that parses back to exactly itself.
    #[test]
    fn usd_round_trips(pico in any::<u64>()) {
        let usd = Usd(pico);
        prop_assert_eq!(Usd::parse_dollars(&usd.to_string()), Some(usd));
        let json = serde_json::to_string(&usd).unwrap();
        prop_assert_eq!(serde_json::from_str::<Usd>(&json).unwrap(), usd);
    }

    /// Decimals parse exactly (no float anywhere), or not at all (overflow, too many decimals).
    #[test]
    fn decimals_parse_exactly(whole in "[0-9]{1,22}", frac in "[0-9]{0,14}", dot in any::<bool>()) {
        let text = if dot && !frac.is_empty() { format!("{whole}.{frac}") } else { whole.clone() };
        let frac = if dot { frac.as_str() } else { "" };
        prop_assert_eq!(Usd::parse_dollars(&text).map(|u| u.pico()), reference(&whole, frac, 12));
        prop_assert_eq!(PerToken::parse_per_million(&text).map(|p| p.0), reference(&whole, frac, 6));
    }

    #[test]
    fn arbitrary_amounts_never_panic(text in hostile_text(40)) {
        let _ = Usd::parse_dollars(&text);
        let _ = PerToken::parse_per_million(&text);
        let _ = serde_json::from_str::<Usd>(&text);
    }

    /// The price table: any text is refused with a message or read; never a panic.
    #[test]
    fn price_tables_never_panic(text in hostile_text(300), at in any::<usize>(), cut in any::<bool>()) {
        let _ = Prices::from_json(&text);
        // And the shipped table, cut or spliced anywhere.
        let mut i = at % (SHIPPED_PRICES.len() + 1);
        while !SHIPPED_PRICES.is_char_boundary(i) {
            i -= 1;
        }
        let spliced = if cut { SHIPPED_PRICES[..i].to_owned() } else { format!("{}{text}{}", &SHIPPED_PRICES[..i], &SHIPPED_PRICES[i..]) };
        if let Ok(prices) = Prices::from_json(&spliced) {
            for row in prices.rows() {
                let _ = prices.lookup(&row.provider, &row.model);
            }
        }
    }

    /// Costs saturate instead of overflowing, whatever the token counts.
    #[test]
    fn costs_never_overflow(prompt in any::<u64>(), cached in any::<u64>(), completion in any::<u64>()) {
        let prices = Prices::shipped();
        for row in prices.rows() {
            let _ = row.cost(gateway_core::money::pricing::Tokens::from_openai(prompt, cached, completion));
            let _ = row.worst_case(prompt, completion);
        }
    }
}
