//! An answer of the unified route judged as the gateway acts on it: what its attempt cost and
//! how its books close, which model answered, and whether it is what `response_format` asked
//! for. The unified protocol ([`super::unified`]) and the simulation call it alike, so these
//! rules are written once:
//!
//! - the cost is the usage's billed tokens ([`crate::money::usage`]) at the price of the model
//!   that answered ([`Prices::cost_answered`]); 0 from AI Gateway's cache; unknown (charged the
//!   reserved worst case) when the usage or a price is, with a warning;
//! - a content-filtered answer is the filter's outcome (`content_filter`), not checked;
//! - any other answer to a request whose `response_format` asks for JSON is checked
//!   ([`OutputContract`]); one that is not what was asked ends as [`Exchange::Invalid`]:
//!   charged as an answer, never given to the caller.

use crate::aig::answer::{read_completion, Usage};
use crate::attempt::AttemptEnd;
use crate::engine::Exchange;
use crate::error::GatewayError;
use crate::money::pricing::{AnswerCost, Cost, Prices, Tokens, Usd};
use crate::output::{OutputContract, Verdict};
use crate::relay::SseRelay;

/// What an attempt's answer is judged by.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    pub prices: &'a Prices,
    pub provider: &'a str,
    /// The target's model: what was asked for.
    pub model: &'a str,
    /// What `response_format` asked the answer to be, if it asked for JSON.
    pub contract: Option<&'a OutputContract>,
    /// AI Gateway answered from its cache: nothing was billed.
    pub cache_hit: bool,
}

/// An answer, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// How its reservation closes.
    pub end: AttemptEnd,
    /// The provider's content filter blocked it (`finish_reason: content_filter`).
    pub content_filtered: bool,
    /// Its usage, as billed.
    pub tokens: Option<Tokens>,
    /// The model that answered, when the answer named another than the target's (the ledger's
    /// `answered_model`; `x-gateway-model` names it, or the target's model when `None`).
    pub answered_by: Option<String>,
    /// Why it is not what `response_format` asked for: the attempt is [`Exchange::Invalid`].
    pub invalid: Option<String>,
    /// What to log, and what an answer given to the caller says in `x-gateway-warning`: a cost
    /// unknown, a schema check past its bounds. (The request's own warning, a schema the
    /// gateway does not check, is [`OutputContract::warning`].)
    pub warnings: Vec<String>,
}

impl Judged {
    /// The engine's exchange for it: the answer for the caller, or an invalid one.
    pub fn exchange<A, F>(self, answer: A, status: u16) -> Exchange<A, F> {
        match self.invalid {
            Some(reason) => Exchange::Invalid { end: self.end, reason },
            None => Exchange::Answer { answer, status, end: Some(self.end), content_filtered: self.content_filtered },
        }
    }
}

impl Judge<'_> {
    /// The cost of an answer's usage, priced as the model that answered (`answered`: the
    /// answer's `model` field). The cost is what the books settle at, and what `usage.cost`
    /// says (with the request's earlier attempts).
    pub fn cost(&self, usage: Option<&Usage>, answered: Option<&str>) -> AnswerCost {
        let tokens = match usage.map(Usage::tokens) {
            Some(Ok(tokens)) => tokens,
            Some(Err(fault)) => return self.unknown(format!("{}: cost unknown", fault), answered),
            None => return self.unknown("the answer has no usage: cost unknown".to_owned(), answered),
        };
        let mut priced = self.prices.cost_answered(self.provider, self.model, answered, tokens);
        if self.cache_hit {
            priced.cost = Cost { usd: Some(Usd::ZERO), warning: None };
        }
        priced
    }

    fn unknown(&self, why: String, answered: Option<&str>) -> AnswerCost {
        // Which model answered still counts for the record, whatever the cost.
        let answered_by = crate::names::answered_by(self.model, answered);
        let usd = self.cache_hit.then_some(Usd::ZERO);
        let warning = (!self.cache_hit).then(|| format!("{}/{}: {why}", self.provider, self.model));
        AnswerCost { cost: Cost { usd, warning }, answered_by }
    }

    /// A whole (non-streamed) chat completion. A body that is not one is the 502 the caller
    /// gets if nothing better follows (the attempt: a malformed answer, charged its worst case).
    pub fn completion(&self, body: &[u8]) -> Result<Judged, GatewayError> {
        let completion = read_completion(body)?;
        let priced = self.cost(completion.usage.as_ref(), completion.model.as_deref());
        let tokens = completion.usage.and_then(|u| u.tokens().ok());
        let content_filtered = completion.finish_reason.as_deref() == Some("content_filter");
        let verdict = self.contract.filter(|_| !content_filtered).map(|c| c.check_completion(body));
        let end = AttemptEnd::AnswerRead { cost: priced.cost.usd };
        Ok(self.judged(end, priced, tokens, content_filtered, verdict))
    }

    /// A stream that ended before its commit point, or was held to its end (JSON mode: its
    /// relay gathered its content); `end` is how the pump ended it (its cost from
    /// [`Judge::cost`]).
    pub fn stream(&self, relay: &SseRelay, end: AttemptEnd) -> Judged {
        let summary = relay.summary();
        let priced = self.cost(summary.usage.as_ref(), relay.answer().model());
        let content_filtered = !summary.saw_content && summary.finish_reason.as_deref() == Some("content_filter");
        let verdict = self.contract.filter(|_| !content_filtered).map(|c| c.check(&relay.answer().content()));
        self.judged(end, priced, relay.tokens(), content_filtered, verdict)
    }

    fn judged(
        &self,
        end: AttemptEnd,
        priced: AnswerCost,
        tokens: Option<Tokens>,
        content_filtered: bool,
        verdict: Option<Verdict>,
    ) -> Judged {
        let end = match end {
            _ if self.cache_hit => AttemptEnd::CacheHit,
            end if content_filtered => AttemptEnd::ContentFiltered { cost: end.cost() },
            end => end,
        };
        let mut warnings: Vec<String> = priced.cost.warning.into_iter().collect();
        let invalid = match verdict {
            Some(Verdict::Invalid(why)) => Some(why),
            Some(Verdict::Unchecked(why)) => {
                warnings.push(why);
                None
            }
            Some(Verdict::Valid) | None => None,
        };
        Judged { end, content_filtered, tokens, answered_by: priced.answered_by, invalid, warnings }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::pump::{Pump, Step};

    const TABLE: &str = r#"{"unit":"USD per 1,000,000 tokens","models":[
        {"provider":"p","model":"m","input":"0.000001","output":"0.000001","cached_input":null,"source":"s","as_of":"2026-12-06"},
        {"provider":"p","model":"m2","input":"0.000002","output":"0.000002","cached_input":null,"source":"s","as_of":"2026-12-06"}]}"#;

    fn body(model: &str, content: &str, usage: &str, finish: &str) -> Vec<u8> {
        format!(
            r#"{{"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":{}}},"finish_reason":"{finish}"}}],"usage":{usage}}}"#,
            serde_json::to_string(content).unwrap()
        )
        .into_bytes()
    }

    #[test]
    fn a_whole_answer_is_priced_as_billed_by_the_model_that_answered_and_checked_as_asked() {
        let prices = Prices::from_json(TABLE).unwrap();
        let contract = OutputContract::from_response_format(r#"{"type":"json_object"}"#).unwrap().unwrap();
        let judge = Judge { prices: &prices, provider: "p", model: "m", contract: Some(&contract), cache_hit: false };
        // Gemini's thinking only in the total: 21 in, 60 out billed (1 pUSD a token).
        let gemini = r#"{"prompt_tokens":21,"completion_tokens":0,"total_tokens":81,"completion_tokens_details":{"reasoning_tokens":60}}"#;
        let j = judge.completion(&body("m", "{\"a\":1}", gemini, "stop")).unwrap();
        assert_eq!(
            (j.end, j.invalid.as_deref(), j.answered_by.as_deref()),
            (AttemptEnd::AnswerRead { cost: Some(Usd(81)) }, None, None)
        );
        assert_eq!(j.tokens.map(|t| (t.output, t.reasoning)), Some((60, 60)));
        // Another model answered: its price (2 pUSD a token).
        let j = judge.completion(&body("m2", "{}", gemini, "stop")).unwrap();
        assert_eq!((j.end, j.answered_by.as_deref()), (AttemptEnd::AnswerRead { cost: Some(Usd(162)) }, Some("m2")));
        // Prose: charged as answered, invalid.
        let j = judge.completion(&body("m", "Sure! {\"a\":1}", gemini, "stop")).unwrap();
        assert_eq!(j.end, AttemptEnd::AnswerRead { cost: Some(Usd(81)) });
        assert!(j.invalid.unwrap().starts_with("the answer is not JSON"));
        let invalid: Exchange<(), ()> = judge.completion(&body("m", "no", gemini, "stop")).unwrap().exchange((), 200);
        assert!(matches!(invalid, Exchange::Invalid { end: AttemptEnd::AnswerRead { cost: Some(Usd(81)) }, .. }));
        // A content filter's block is its own outcome, not checked.
        let j = judge.completion(&body("m", "", gemini, "content_filter")).unwrap();
        assert_eq!(
            (j.content_filtered, j.invalid, j.end),
            (true, None, AttemptEnd::ContentFiltered { cost: Some(Usd(81)) })
        );
        // Counts that are not counts: cost unknown, with a warning; the answer still judged.
        let j = judge.completion(&body("m", "{}", r#"{"prompt_tokens":-1,"completion_tokens":2}"#, "stop")).unwrap();
        assert_eq!((j.end, j.invalid), (AttemptEnd::AnswerRead { cost: None }, None));
        assert!(j.warnings[0].contains("prompt count is not a non-negative integer"), "{:?}", j.warnings);
        // From the cache: nothing billed, whatever the usage says.
        let cached = Judge { cache_hit: true, ..judge };
        assert_eq!(cached.completion(&body("m", "{}", gemini, "stop")).unwrap().end, AttemptEnd::CacheHit);
        assert!(judge.completion(b"<html>").is_err());
    }

    #[test]
    fn a_held_stream_is_judged_at_its_end() {
        let prices = Prices::from_json(TABLE).unwrap();
        let contract = OutputContract::from_response_format(r#"{"type":"json_object"}"#).unwrap().unwrap();
        let judge = Judge { prices: &prices, provider: "p", model: "m", contract: Some(&contract), cache_hit: false };
        let stream = |content: &str| {
            let piece = |c: &str| {
                format!(
                    "data: {{\"model\":\"m2\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}}}}]}}\n\n",
                    serde_json::to_string(c).unwrap()
                )
            };
            let (a, b) = content.split_at(content.len() / 2);
            [
                piece(a),
                piece(b),
                "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".into(),
                "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n"
                    .into(),
                "data: [DONE]\n\n".into(),
            ]
            .concat()
        };
        for (content, valid) in [("{\"labels\": [\"bug\"]}", true), ("labels: bug", false)] {
            let mut relay = SseRelay::new();
            relay.answer_mut().gather_content();
            let cost = move |r: &SseRelay| judge_cost(r);
            let mut pump = Pump::new(relay, cost, 1000, Vec::new());
            pump.hold_until_complete();
            let Step::Done(ending) = pump.on_chunk(stream(content).as_bytes()) else { panic!() };
            let j = judge.stream(pump.observer(), ending.end);
            assert_eq!(j.end, AttemptEnd::StreamComplete { cost: Some(Usd(14)) }, "priced as m2, which answered");
            assert_eq!((j.invalid.is_none(), j.answered_by.as_deref()), (valid, Some("m2")));
        }
    }

    fn judge_cost(relay: &SseRelay) -> Cost {
        let prices = Prices::from_json(TABLE).unwrap();
        let judge = Judge { prices: &prices, provider: "p", model: "m", contract: None, cache_hit: false };
        judge.cost(relay.summary().usage.as_ref(), relay.answer().model()).cost
    }
}
