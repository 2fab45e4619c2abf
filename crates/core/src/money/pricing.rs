//! What a request costs, exactly.
//!
//! Money is integer picodollars ([`Usd`]): 1 USD = 10^12 pUSD. Prices are written in
//! `prices.json` as decimal strings in **USD per million tokens** and parsed without floating
//! point, so 0.30 USD/M is exactly 300,000 pUSD per token and no sum ever drifts. A model that is
//! not in the table has cost `None` with a warning: never a guess (LiteLLM #6133), never a unit
//! slip (Bifrost #5243, 100×).

use std::fmt;

use serde::Deserialize;

/// The price table compiled into the gateway.
pub const SHIPPED_PRICES: &str = include_str!("../../../../prices.json");

/// An exact amount of US dollars, in picodollars.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(pub u64);

/// pUSD in one USD.
pub const PICO: u64 = 1_000_000_000_000;

impl Usd {
    pub const ZERO: Usd = Usd(0);

    pub fn pico(self) -> u64 {
        self.0
    }

    pub fn from_dollars(dollars: u64) -> Usd {
        Usd(dollars.saturating_mul(PICO))
    }

    /// Parses a non-negative decimal amount of dollars (`"10"`, `"0.0025"`), exactly; at most 12
    /// decimals.
    pub fn parse_dollars(text: &str) -> Option<Usd> {
        parse_decimal(text, 12).map(Usd)
    }

    pub fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }

    /// As an `f64`, for charts only: never for sums or comparisons.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / PICO as f64
    }
}

/// Exact decimal dollars, shortest form: `0.0000015`, `12`, `0`.
impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / PICO;
        let frac = self.0 % PICO;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:012}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl serde::Serialize for Usd {
    /// A JSON number literal with the exact decimal digits (not an f64 round trip).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Usd {
    /// Reads the exact decimal written by `Serialize` (JSON only: the number's own digits). Not
    /// inside internally tagged or flattened types, which serde buffers before reading.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let raw: Box<serde_json::value::RawValue> = serde::Deserialize::deserialize(d)?;
        Usd::parse_dollars(raw.get())
            .ok_or_else(|| serde::de::Error::custom(format_args!("{} is not a decimal amount of USD", raw.get())))
    }
}

/// A price per token, in pUSD: USD per million tokens × 10^6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerToken(pub u64);

impl PerToken {
    /// Parses "USD per million tokens" text: 1 USD/M = 10^6 pUSD per token, so six decimals fit.
    pub fn parse_per_million(text: &str) -> Option<PerToken> {
        parse_decimal(text, 6).map(PerToken)
    }

    pub fn times(self, tokens: u64) -> Usd {
        Usd(self.0.saturating_mul(tokens))
    }
}

/// `text` as an integer count of 10^-`scale` units, or `None` if it is not a plain non-negative
/// decimal with at most `scale` decimals.
fn parse_decimal(text: &str, scale: u32) -> Option<u64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > scale as usize || (text.contains('.') && frac.is_empty()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let frac_value: u64 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    let frac_scaled = frac_value.checked_mul(10u64.pow(scale - frac.len() as u32))?;
    whole.checked_mul(10u64.pow(scale))?.checked_add(frac_scaled)
}

/// Tokens of one request, normalised: OpenAI counts cached prompt tokens inside `prompt_tokens`;
/// here `input` excludes them. Read from an answer's counts by [`crate::money::usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Uncached prompt tokens.
    pub input: u64,
    /// Prompt tokens read from the provider's prompt cache.
    pub cached_input: u64,
    /// Output tokens as billed: thinking included, however the provider counted it.
    pub output: u64,
    /// Of `output`, the thinking: as reported, or what the total says was billed beyond the
    /// completion count; 0 where a format reports none (Anthropic's output includes it unsaid).
    pub reasoning: u64,
}

impl Tokens {
    /// From OpenAI-style counts, where `prompt` includes `cached` (at most all of it), and
    /// `output` is the billed output ([`crate::money::usage::Counts::tokens`]).
    pub fn from_openai(prompt: u64, cached: u64, output: u64) -> Tokens {
        let cached = cached.min(prompt);
        Tokens { input: prompt - cached, cached_input: cached, output, reasoning: 0 }
    }

    pub fn prompt(&self) -> u64 {
        self.input + self.cached_input
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongContext {
    pub threshold_tokens: u64,
    pub input: PerToken,
    pub output: PerToken,
}

/// One row of the price table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub provider: String,
    pub model: String,
    pub input: PerToken,
    pub output: PerToken,
    pub cached_input: Option<PerToken>,
    pub long_context: Option<LongContext>,
    pub source: String,
    pub as_of: String,
}

/// A cost, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cost {
    pub usd: Option<Usd>,
    pub warning: Option<String>,
}

/// The cost of an answer, priced as the model that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerCost {
    pub cost: Cost,
    /// The model that answered, when the answer named another than the one asked for (its
    /// canonical name, [`crate::names::model`]): the ledger's `answered_model`, the response's
    /// `x-gateway-model`. `None`: the model asked for answered.
    pub answered_by: Option<String>,
}

impl Price {
    /// The cost of `tokens` at this price.
    pub fn cost(&self, tokens: Tokens) -> Cost {
        let (input, output) = self.rates_for(tokens.prompt());
        let cached = match (tokens.cached_input, self.cached_input) {
            (0, _) => Usd::ZERO,
            (n, Some(p)) => p.times(n),
            (_, None) => {
                return Cost {
                    usd: None,
                    warning: Some(format!(
                        "no cached-input price for {}/{}: cost unknown for a request with cached tokens",
                        self.provider, self.model
                    )),
                }
            }
        };
        Cost {
            usd: Some(input.times(tokens.input).saturating_add(output.times(tokens.output)).saturating_add(cached)),
            warning: None,
        }
    }

    /// The most a request can cost: every prompt token uncached (a cached token never costs
    /// more than an uncached one), `max_output` tokens out.
    ///
    /// `max_output` is the output cap the Worker sends (the request's own, else the route's),
    /// and it is what the provider counts thinking against: OpenAI's reasoning models bound
    /// their reasoning by `max_completion_tokens`, Anthropic's `max_tokens` includes the
    /// thinking budget, and Gemini's `maxOutputTokens` (what AI Gateway's compat endpoint maps
    /// `max_tokens` to) bounds thoughts with the answer. Where a provider's thinking exceeds the
    /// cap (not documented of Gemini's OpenAI-compatible layer: unverified), or an answer comes
    /// from a dearer model than the one asked ([`Prices::cost_answered`]), the cost exceeds
    /// this bound: the books then settle at the cost, past the reservation by that excess.
    pub fn worst_case(&self, prompt: u64, max_output: u64) -> Usd {
        let (input, output) = self.rates_for(prompt);
        input.times(prompt).saturating_add(output.times(max_output))
    }

    /// Input and output rates for a request with `prompt` tokens (long-context tiers apply to
    /// the whole request).
    fn rates_for(&self, prompt: u64) -> (PerToken, PerToken) {
        match &self.long_context {
            Some(lc) if prompt > lc.threshold_tokens => (lc.input, lc.output),
            _ => (self.input, self.output),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    unit: String,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
    models: Vec<RawPrice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    provider: String,
    model: String,
    input: String,
    output: String,
    cached_input: Option<String>,
    #[serde(default)]
    long_context: Option<RawLongContext>,
    source: String,
    as_of: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLongContext {
    threshold_tokens: u64,
    input: String,
    output: String,
}

/// The price table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prices {
    rows: Vec<Price>,
}

impl Prices {
    pub fn shipped() -> Prices {
        Prices::from_json(SHIPPED_PRICES).unwrap_or(Prices { rows: Vec::new() })
    }

    pub fn from_json(text: &str) -> Result<Prices, String> {
        let raw: RawTable = crate::json::from_str(text).map_err(|e| format!("price table: {e}"))?;
        if raw.unit != "USD per 1,000,000 tokens" {
            return Err(format!("price table: unit must be \"USD per 1,000,000 tokens\", not {:?}", raw.unit));
        }
        let price = |field: &str, value: &str, row: &str| {
            PerToken::parse_per_million(value).ok_or_else(|| {
                format!("price table: {row}: {field} {value:?} is not a decimal USD amount (≤ 6 decimals)")
            })
        };
        let mut rows: Vec<Price> = Vec::new();
        for r in raw.models {
            let id = format!("{}/{}", r.provider, r.model);
            if rows.iter().any(|p| p.provider == r.provider && p.model == r.model) {
                return Err(format!("price table: {id} appears twice"));
            }
            if r.source.trim().is_empty() || r.as_of.len() != 10 {
                return Err(format!("price table: {id} needs a source and an as_of date (YYYY-MM-DD)"));
            }
            rows.push(Price {
                input: price("input", &r.input, &id)?,
                output: price("output", &r.output, &id)?,
                cached_input: r.cached_input.as_deref().map(|c| price("cached_input", c, &id)).transpose()?,
                long_context: r
                    .long_context
                    .map(|lc| -> Result<LongContext, String> {
                        Ok(LongContext {
                            threshold_tokens: lc.threshold_tokens,
                            input: price("long_context.input", &lc.input, &id)?,
                            output: price("long_context.output", &lc.output, &id)?,
                        })
                    })
                    .transpose()?,
                provider: r.provider,
                model: r.model,
                source: r.source,
                as_of: r.as_of,
            });
        }
        Ok(Prices { rows })
    }

    pub fn rows(&self) -> &[Price] {
        &self.rows
    }

    /// The price of `provider`/`model`. Providers report dated snapshots
    /// (`claude-haiku-4-5-20251001`, `gpt-4o-2024-08-06`): a trailing date is ignored when the
    /// exact name is not listed.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&Price> {
        let find = |m: &str| self.rows.iter().find(|p| p.provider == provider && p.model == m);
        find(model).or_else(|| strip_date_suffix(model).and_then(find))
    }

    /// The cost of a request, or `None` with a warning when the model is not priced.
    pub fn cost(&self, provider: &str, model: &str, tokens: Tokens) -> Cost {
        match self.lookup(provider, model) {
            Some(price) => price.cost(tokens),
            None => Cost { usd: None, warning: Some(format!("no price for {provider}/{model}: cost unknown")) },
        }
    }

    /// The cost of an answer to a request for `provider`/`asked` whose `model` field named
    /// `answered`. A provider may answer with another model than the one asked for (a retired
    /// model's requests routed to its successor, billed at the successor's rate: reference §2):
    /// the answer is then priced as the model that answered when the table has it, else as the
    /// model asked for, with a warning. A dated snapshot or another spelling of the model asked
    /// for is that model ([`crate::names::same_model`]).
    ///
    /// The worst case reserved before the attempt was the asked model's: an answer from a
    /// dearer model can cost more than it, and is charged what it cost all the same.
    pub fn cost_answered(&self, provider: &str, asked: &str, answered: Option<&str>, tokens: Tokens) -> AnswerCost {
        let Some(name) = crate::names::answered_by(asked, answered) else {
            let price = self.lookup(provider, asked).or_else(|| answered.and_then(|a| self.lookup(provider, a)));
            let cost = price.map_or_else(|| self.cost(provider, asked, tokens), |p| p.cost(tokens));
            return AnswerCost { cost, answered_by: None };
        };
        let cost = match self.lookup(provider, &name) {
            Some(price) => price.cost(tokens),
            None => {
                let mut cost = self.cost(provider, asked, tokens);
                let note = format!("{provider}/{asked} was answered by {name}, which has no price: priced as {asked}");
                cost.warning = Some(match cost.warning {
                    Some(w) => format!("{note}; {w}"),
                    None => note,
                });
                cost
            }
        };
        AnswerCost { cost, answered_by: Some(name) }
    }
}

/// `name` without a trailing `-YYYYMMDD` or `-YYYY-MM-DD`.
fn strip_date_suffix(name: &str) -> Option<&str> {
    let undated = crate::names::without_date(name);
    (undated.len() != name.len()).then_some(undated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(PerToken::parse_per_million("0.30"), Some(PerToken(300_000)));
        assert_eq!(PerToken::parse_per_million("2.5"), Some(PerToken(2_500_000)));
        assert_eq!(PerToken::parse_per_million("0.075"), Some(PerToken(75_000)));
        assert_eq!(PerToken::parse_per_million("10"), Some(PerToken(10_000_000)));
        assert_eq!(PerToken::parse_per_million("0.000001"), Some(PerToken(1)));
        for bad in ["", "-1", "1.", ".5", "1e3", "0.0000001", "1,5", "abc", "1.2.3"] {
            assert_eq!(PerToken::parse_per_million(bad), None, "{bad}");
        }
        assert_eq!(Usd::parse_dollars("10"), Some(Usd::from_dollars(10)));
        assert_eq!(Usd::parse_dollars("0.000000000001"), Some(Usd(1)));
    }

    #[test]
    fn display_is_exact_and_short() {
        assert_eq!(Usd(0).to_string(), "0");
        assert_eq!(Usd::from_dollars(12).to_string(), "12");
        assert_eq!(Usd(1).to_string(), "0.000000000001");
        assert_eq!(Usd(1_500_000).to_string(), "0.0000015");
        assert_eq!(serde_json::to_string(&Usd(123_450_000_000)).unwrap(), "0.12345");
    }

    #[test]
    fn shipped_table_loads_with_sources() {
        let p = Prices::shipped();
        assert!(p.rows().len() >= 5);
        assert!(p.rows().iter().all(|r| r.source.starts_with("https://")));
        let flash = p.lookup("google-ai-studio", "gemini-2.5-flash").unwrap();
        assert_eq!(flash.input, PerToken(300_000));
        assert_eq!(flash.output, PerToken(2_500_000));
        // The shipped routes' first target, read from Google's pages on its as_of date.
        let lite = p.lookup("google-ai-studio", "gemini-3.5-flash-lite").unwrap();
        assert_eq!(
            (lite.input, lite.output, lite.cached_input),
            (PerToken(300_000), PerToken(2_500_000), Some(PerToken(30_000)))
        );
        assert!(p.rows().iter().all(|r| r.provider != "google-ai-studio" || r.source.contains("ai.google.dev")));
    }

    #[test]
    fn cost_in_usd_per_million_tokens() {
        let p = Prices::shipped();
        // 1M input + 1M output tokens of gemini-2.5-flash = 0.30 + 2.50 USD, exactly.
        let c = p.cost(
            "google-ai-studio",
            "gemini-2.5-flash",
            Tokens { input: 1_000_000, cached_input: 0, output: 1_000_000, reasoning: 0 },
        );
        assert_eq!(c.usd, Some(Usd::parse_dollars("2.80").unwrap()));
        // The reference's example log row: 412 in, 188 out → 0.0005936 USD.
        let c = p.cost(
            "google-ai-studio",
            "gemini-2.5-flash",
            Tokens { input: 412, cached_input: 0, output: 188, reasoning: 0 },
        );
        assert_eq!(c.usd.unwrap().to_string(), "0.0005936");
        // gpt-4o-mini with cached tokens: OpenAI counts them inside prompt_tokens.
        let t = Tokens::from_openai(1000, 400, 100);
        assert_eq!(t, Tokens { input: 600, cached_input: 400, output: 100, reasoning: 0 });
        let c = p.cost("openai", "gpt-4o-mini", t);
        // 600×0.15 + 400×0.075 + 100×0.60 per million = 0.00018 USD
        assert_eq!(c.usd.unwrap().to_string(), "0.00018");
    }

    #[test]
    fn unknown_is_null_with_a_warning_never_a_guess() {
        let p = Prices::shipped();
        let c = p.cost("openai", "gpt-9", Tokens { input: 10, cached_input: 0, output: 10, reasoning: 0 });
        assert_eq!(c.usd, None);
        assert!(c.warning.unwrap().contains("openai/gpt-9"));
        let c = p.cost("anthropic", "claude-haiku-4-5", Tokens { input: 10, cached_input: 5, output: 1, reasoning: 0 });
        assert_eq!(c.usd, None, "cached tokens without a cached price");
        assert!(c.warning.is_some());
    }

    #[test]
    fn dated_snapshots_and_long_context() {
        let p = Prices::shipped();
        assert!(p.lookup("anthropic", "claude-haiku-4-5-20251001").is_some());
        assert!(p.lookup("openai", "gpt-4o-2024-08-06").is_some());
        assert!(p.lookup("openai", "gpt-4o-mini-2024-07-18").is_some());
        assert!(p.lookup("openai", "gpt-4o-realtime").is_none());
        // Multi-byte characters near the end are not a date, and must not split a character.
        assert!(p.lookup("openai", "gpt-4o-mini\u{6ce11}-01-01").is_none());
        let sonnet = p.lookup("anthropic", "claude-sonnet-4-5").unwrap();
        let small = sonnet.cost(Tokens { input: 200_000, cached_input: 0, output: 0, reasoning: 0 }).usd.unwrap();
        let large = sonnet.cost(Tokens { input: 200_001, cached_input: 0, output: 0, reasoning: 0 }).usd.unwrap();
        assert_eq!(small.to_string(), "0.6");
        assert_eq!(large.to_string(), "1.200006");
        assert!(
            sonnet.worst_case(1000, 1000)
                >= sonnet.cost(Tokens { input: 1000, cached_input: 0, output: 1000, reasoning: 0 }).usd.unwrap()
        );
    }

    /// An answer from another model than asked is priced as the model that answered when the
    /// table has it, else as the one asked, with a warning; a dated snapshot or another
    /// spelling of the asked model is the asked model.
    #[test]
    fn an_answer_from_another_model_is_priced_as_that_model() {
        let p = Prices::shipped();
        let t = Tokens { input: 1_000_000, cached_input: 0, output: 1_000_000, reasoning: 0 };
        let asked = p.cost("openai", "gpt-4o", t).usd;
        let same = p.cost_answered("openai", "gpt-4o", Some("gpt-4o-2024-08-06"), t);
        assert_eq!((same.cost.usd, same.answered_by), (asked, None));
        assert_eq!(p.cost_answered("openai", "gpt-4o", None, t).cost.usd, asked);
        let other = p.cost_answered("openai", "gpt-4o", Some("gpt-4o-mini-2024-07-18"), t);
        assert_eq!(other.cost.usd, p.cost("openai", "gpt-4o-mini", t).usd);
        assert_eq!(other.answered_by.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(other.cost.warning, None);
        let unpriced = p.cost_answered("openai", "gpt-4o", Some("gpt-9-turbo"), t);
        assert_eq!(unpriced.cost.usd, asked);
        assert_eq!(unpriced.answered_by.as_deref(), Some("gpt-9-turbo"));
        assert!(unpriced.cost.warning.unwrap().contains("answered by gpt-9-turbo, which has no price"));
        // What an answer names is cut to a safe header value.
        let odd = p.cost_answered("openai", "gpt-4o", Some("evil\r\nx-header: 1"), t);
        assert_eq!(odd.answered_by.as_deref(), Some("evilx-header:1"));
    }

    #[test]
    fn table_validation() {
        let bad_unit = r#"{"unit":"USD per token","models":[]}"#;
        assert!(Prices::from_json(bad_unit).unwrap_err().contains("unit"));
        let float_slip = r#"{"unit":"USD per 1,000,000 tokens","models":[{"provider":"p","model":"m","input":"0.1234567","output":"1","cached_input":null,"source":"s","as_of":"2026-01-01"}]}"#;
        assert!(Prices::from_json(float_slip).unwrap_err().contains("input"));
        let dup = r#"{"unit":"USD per 1,000,000 tokens","models":[
            {"provider":"p","model":"m","input":"1","output":"1","cached_input":null,"source":"s","as_of":"2026-01-01"},
            {"provider":"p","model":"m","input":"1","output":"1","cached_input":null,"source":"s","as_of":"2026-01-01"}]}"#;
        assert!(Prices::from_json(dup).unwrap_err().contains("twice"));
    }
}
