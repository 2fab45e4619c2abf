//! What a provider bills for an answer, from the counts it reports: one rule for every format.
//!
//! Providers do not count thinking alike (reference §2). OpenAI counts its reasoning inside
//! `completion_tokens`; Gemini's OpenAI-compatible layer may leave it out of `completion_tokens`
//! and report it in `completion_tokens_details.reasoning_tokens`, so that
//! `prompt_tokens + completion_tokens < total_tokens` (`completion_tokens: 0`,
//! `reasoning_tokens: 60`, `total_tokens: 81`); Gemini's own format reports `thoughtsTokenCount`
//! beside `candidatesTokenCount`; Anthropic's `output_tokens` already includes thinking. Every
//! provider bills thinking as output. So the billed output is
//!
//! ```text
//! output = max(completion + thinking counted apart, total − prompt)
//! ```
//!
//! where thinking counted apart is the reported reasoning when the format counts it apart
//! ([`Thinking::Apart`]: Gemini's own), or, where the format does not say ([`Thinking::Unsaid`]:
//! the OpenAI shape, where it may be either), when it cannot be inside the completion count
//! (it is larger) or there is no total to tell (the higher reading: the budget's safe side);
//! otherwise nothing (the total says). The reasoning figure kept beside the output is the
//! reported reasoning, or what the total says was billed beyond the completion count, whichever
//! is larger: never more than the output.
//!
//! Counts that do not add up never make a charge negative: `total − prompt` stops at zero (a
//! total below the prompt is ignored), sums saturate, and cached tokens count at most the whole
//! prompt. A count that is not a non-negative integer (negative, fractional, a string, beyond
//! 2^64) makes the usage unreadable ([`UsageFault`]): the cost is then unknown, and the attempt
//! is charged its reserved worst case, with a warning — never a guess, never a panic.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::money::pricing::Tokens;

/// One token count as an answer reports it, read leniently: a value of the wrong kind does not
/// make the whole answer unreadable, only its usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Count {
    /// Not there, or `null`.
    #[default]
    Absent,
    Known(u64),
    /// There, but not a non-negative integer.
    Invalid,
}

impl Count {
    pub fn known(self) -> Option<u64> {
        match self {
            Count::Known(n) => Some(n),
            _ => None,
        }
    }
}

impl From<u64> for Count {
    fn from(n: u64) -> Count {
        Count::Known(n)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a token count")
    }
    fn visit_u64<E>(self, n: u64) -> Result<Count, E> {
        Ok(Count::Known(n))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Count, E> {
        Ok(u64::try_from(n).map_or(Count::Invalid, Count::Known))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Count, E> {
        Ok(Count::Invalid)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
        Ok(Count::Invalid)
    }
    fn visit_str<E>(self, _: &str) -> Result<Count, E> {
        Ok(Count::Invalid)
    }
    fn visit_unit<E>(self) -> Result<Count, E> {
        Ok(Count::Absent)
    }
    fn visit_none<E>(self) -> Result<Count, E> {
        Ok(Count::Absent)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Count, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Count::Invalid)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
        while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
        Ok(Count::Invalid)
    }
}

/// The `*_tokens_details` objects: the cached part of the prompt, the reasoning part of the
/// output (`prompt_tokens_details`/`input_tokens_details`, `completion_tokens_details`/
/// `output_tokens_details`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Details {
    #[serde(default)]
    pub cached_tokens: Count,
    #[serde(default)]
    pub reasoning_tokens: Count,
}

/// How a format counts thinking beside its completion count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thinking {
    /// The format does not say (the OpenAI shape): the total tells; without one, the reported
    /// reasoning is added.
    Unsaid,
    /// Apart from the completion count (Gemini's `thoughtsTokenCount`): always added.
    Apart,
}

/// The counts of one answer, in OpenAI's terms: `prompt` includes `cached`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub prompt: Count,
    pub cached: Count,
    pub completion: Count,
    pub total: Count,
    pub reasoning: Count,
}

/// Why an answer's usage cannot be priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageFault {
    /// This count is there but is not a non-negative integer.
    NotACount(&'static str),
    /// Neither a prompt, a completion nor a total count.
    NoCounts,
}

impl fmt::Display for UsageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageFault::NotACount(field) => write!(f, "the usage's {field} count is not a non-negative integer"),
            UsageFault::NoCounts => f.write_str("the usage has no token counts"),
        }
    }
}

impl Counts {
    /// What was billed, by the rule of the module's note.
    pub fn tokens(&self, thinking: Thinking) -> Result<Tokens, UsageFault> {
        let read = |count: Count, field: &'static str| match count {
            Count::Invalid => Err(UsageFault::NotACount(field)),
            other => Ok(other.known()),
        };
        let prompt = read(self.prompt, "prompt")?;
        let cached = read(self.cached, "cached")?;
        let completion = read(self.completion, "completion")?;
        let total = read(self.total, "total")?;
        let reasoning = read(self.reasoning, "reasoning")?;
        if prompt.is_none() && completion.is_none() && total.is_none() {
            return Err(UsageFault::NoCounts);
        }
        let (prompt, completion, reasoning) = (prompt.unwrap_or(0), completion.unwrap_or(0), reasoning.unwrap_or(0));
        let apart = match thinking {
            Thinking::Apart => reasoning,
            Thinking::Unsaid if total.is_none() || reasoning > completion => reasoning,
            Thinking::Unsaid => 0,
        };
        let by_total = total.map_or(0, |total| total.saturating_sub(prompt));
        let output = completion.saturating_add(apart).max(by_total);
        let mut tokens = Tokens::from_openai(prompt, cached.unwrap_or(0), output);
        tokens.reasoning = reasoning.max(output.saturating_sub(completion));
        Ok(tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Count::*;

    fn counts(prompt: Count, completion: Count, total: Count, reasoning: Count) -> Counts {
        Counts { prompt, cached: Absent, completion, total, reasoning }
    }

    fn billed(c: Counts, thinking: Thinking) -> (u64, u64, u64) {
        let t = c.tokens(thinking).unwrap();
        (t.prompt(), t.output, t.reasoning)
    }

    /// Each usage shape the reference lists, and what is billed as output.
    #[test]
    fn every_shape_of_the_reference() {
        let rows: &[(Counts, Thinking, (u64, u64, u64))] = &[
            // OpenAI: reasoning inside completion_tokens; the total agrees.
            (counts(Known(20), Known(100), Known(120), Known(60)), Thinking::Unsaid, (20, 100, 60)),
            // Gemini through compat: completion 0, reasoning 60, total 81 (router-for-me #5733).
            (counts(Known(21), Known(0), Known(81), Known(60)), Thinking::Unsaid, (21, 60, 60)),
            // Gemini through compat with the thinking only in the total.
            (counts(Known(21), Known(5), Known(81), Absent), Thinking::Unsaid, (21, 60, 55)),
            // No total, reasoning reported apart: added.
            (counts(Known(21), Known(10), Absent, Known(60)), Thinking::Unsaid, (21, 70, 60)),
            // No thinking at all.
            (counts(Known(12), Known(9), Known(21), Absent), Thinking::Unsaid, (12, 9, 0)),
            // Gemini native: thoughts beside candidates, with or without a total.
            (counts(Known(20), Known(5), Known(32), Known(7)), Thinking::Apart, (20, 12, 7)),
            (counts(Known(20), Known(5), Absent, Known(7)), Thinking::Apart, (20, 12, 7)),
            // A Gemini total that leaves the thoughts out does not lower the bill.
            (counts(Known(20), Known(5), Known(25), Known(7)), Thinking::Apart, (20, 12, 7)),
            // Reported reasoning larger than the completion count cannot be inside it.
            (counts(Known(10), Known(5), Known(20), Known(60)), Thinking::Unsaid, (10, 65, 60)),
            // Anthropic: output includes thinking, no total, no reasoning count.
            (counts(Known(8), Known(40), Absent, Absent), Thinking::Unsaid, (8, 40, 0)),
        ];
        for (c, thinking, expected) in rows {
            assert_eq!(billed(*c, *thinking), *expected, "{c:?} {thinking:?}");
        }
    }

    #[test]
    fn counts_that_do_not_add_up_never_charge_negative_or_overflow() {
        // A total below the prompt is ignored.
        assert_eq!(billed(counts(Known(100), Known(7), Known(50), Absent), Thinking::Unsaid), (100, 7, 0));
        // Only a total: the output is what it says beyond the prompt.
        assert_eq!(billed(counts(Known(10), Absent, Known(15), Absent), Thinking::Unsaid), (10, 5, 5));
        // Sums saturate.
        let huge = counts(Known(u64::MAX), Known(u64::MAX), Absent, Known(u64::MAX));
        assert_eq!(billed(huge, Thinking::Apart), (u64::MAX, u64::MAX, u64::MAX));
        // Cached tokens count at most the whole prompt.
        let c = Counts { cached: Known(500), ..counts(Known(100), Known(1), Absent, Absent) };
        let t = c.tokens(Thinking::Unsaid).unwrap();
        assert_eq!((t.input, t.cached_input), (0, 100));
    }

    #[test]
    fn missing_or_invalid_counts_are_a_fault_not_a_guess() {
        assert_eq!(Counts::default().tokens(Thinking::Unsaid), Err(UsageFault::NoCounts));
        let c = counts(Invalid, Known(1), Known(2), Absent);
        assert_eq!(c.tokens(Thinking::Unsaid), Err(UsageFault::NotACount("prompt")));
        let c = counts(Known(1), Known(1), Known(2), Invalid);
        assert_eq!(
            c.tokens(Thinking::Unsaid).unwrap_err().to_string(),
            "the usage's reasoning count is not a non-negative integer"
        );
        // A prompt alone (Anthropic's first stream event) is a usage of no output yet.
        assert_eq!(billed(counts(Known(9), Absent, Absent, Absent), Thinking::Unsaid), (9, 0, 0));
    }

    #[test]
    fn counts_read_leniently() {
        let read = |json: &str| crate::json::from_str::<Count>(json).unwrap();
        assert_eq!(read("7"), Known(7));
        assert_eq!(read("0"), Known(0));
        assert_eq!(read("null"), Absent);
        for bad in ["-1", "1.5", "1.0", "1e3", "\"7\"", "true", "[1]", "{\"a\":1}", "18446744073709551616"] {
            assert_eq!(read(bad), Invalid, "{bad}");
        }
        let d: Details = crate::json::from_str(r#"{"cached_tokens":-3,"audio_tokens":1}"#).unwrap();
        assert_eq!(d, Details { cached_tokens: Invalid, reasoning_tokens: Absent });
    }
}
