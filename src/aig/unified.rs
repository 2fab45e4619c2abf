//! The unified route's protocol (`/v1/chat/completions`): OpenAI Chat Completions on AI
//! Gateway's compat (or REST) endpoint, the body re-addressed to each target's model.

use std::borrow::Cow;

use gateway_core::account::pricing::{Price, Usd};
use gateway_core::aig::answer::{self as up, Usage};
use gateway_core::aig::cache::{self, CallerCache};
use gateway_core::aig::call::{self as gateway, Caller};
use gateway_core::config::{CachePolicy, Settings, Target};
use gateway_core::engine::{books, AttemptEnd};
use gateway_core::error::GatewayError;
use gateway_core::relay::SseRelay;
use gateway_core::request::{ChatRequest, OutputLimit};

use super::runtime::{Outgoing, Protocol, Whole};
use crate::relay::CostFn;

pub struct Unified<'a> {
    pub settings: &'a Settings,
    pub url: &'a str,
    pub chat: &'a ChatRequest<'a>,
    pub targets: &'a [Target],
    /// The price of each target (configuration validation guarantees one).
    pub prices: Vec<&'a Price>,
    /// What one attempt on each target may cost at most (what its reservation holds).
    pub worst_cases: Vec<Usd>,
    pub caller: &'a Caller,
    pub alias: Option<&'a str>,
    pub cache: Option<CachePolicy>,
    pub caller_cache: CallerCache<'a>,
    /// The route's output limit, sent when the request sets none (what its worst case reserved).
    pub output_limit: u64,
}

impl Protocol for Unified<'_> {
    type Observer = SseRelay;
    type Failure = GatewayError;

    fn streamed(&self) -> bool {
        self.chat.stream
    }

    fn outgoing(&self, target: usize, attempt: u32) -> Outgoing<'_> {
        let t = &self.targets[target];
        let limit = OutputLimit::for_target(t.provider(), t.model(), self.output_limit);
        let body = self.chat.rewrite_bounded(&gateway::upstream_model(self.settings.endpoint, t), Some(limit));
        let mut headers = gateway::chat_headers(self.settings, gateway::metadata(self.caller, self.alias, attempt));
        headers.extend(cache::headers(self.cache, self.caller_cache, self.chat.stream, t, &body));
        Outgoing { url: self.url, headers, body: Cow::Owned(body) }
    }

    fn failure(
        &self,
        target: usize,
        status: u16,
        _: Option<String>,
        body: &[u8],
        retry_after: Option<String>,
    ) -> GatewayError {
        up::error_from_upstream(
            status,
            body,
            retry_after,
            self.targets[target].provider(),
            &self.settings.secret_values(),
        )
    }

    fn whole(&self, target: usize, body: &[u8], cache_hit: bool) -> Whole {
        match up::read_completion(body) {
            Ok(c) => {
                let cost = attempt_cost(self.prices[target], c.usage, cache_hit);
                let content_filtered = c.finish_reason.as_deref() == Some("content_filter");
                let end = match (cache_hit, content_filtered) {
                    (true, _) => AttemptEnd::CacheHit,
                    (false, true) => AttemptEnd::ContentFiltered { cost },
                    (false, false) => AttemptEnd::AnswerRead { cost },
                };
                Whole::Answer { end, content_filtered, tokens: c.usage.map(|u| u.tokens()) }
            }
            Err(err) => Whole::Malformed(err),
        }
    }

    fn observer(&self, target: usize, cache_hit: bool, charged_before: Usd) -> (SseRelay, CostFn<SseRelay>) {
        let price = self.prices[target].clone();
        let worst = self.worst_cases[target];
        // The usage event says what the request will have been charged if the stream ends
        // there: the earlier attempts' charges and this one's, as the books will settle it.
        let stamp_price = price.clone();
        let charge = move |usage: &Usage| {
            let end = AttemptEnd::StreamComplete { cost: attempt_cost(&stamp_price, Some(*usage), cache_hit) };
            charged_before.saturating_add(books(end).charge(worst))
        };
        let relay = SseRelay::with_cost(Box::new(charge));
        (relay, Box::new(move |relay: &SseRelay| attempt_cost(&price, relay.summary().usage, cache_hit)))
    }

    fn stream_filtered(&self, relay: &SseRelay) -> bool {
        let s = relay.summary();
        !s.saw_content && s.finish_reason.as_deref() == Some("content_filter")
    }
}

/// The cost of an answered attempt: 0 for a cache hit, the price table's for its usage, `None`
/// (charged at the worst case) when usage is missing or a price component is unknown.
fn attempt_cost(price: &Price, usage: Option<Usage>, cache_hit: bool) -> Option<Usd> {
    if cache_hit {
        return Some(Usd::ZERO);
    }
    let cost = price.cost(usage?.tokens());
    if let Some(warning) = &cost.warning {
        worker::console_warn!("{warning}");
    }
    cost.usd
}
