//! The unified route's protocol (`/v1/chat/completions`): OpenAI Chat Completions on AI
//! Gateway's compat (or REST) endpoint, the body re-addressed to each target's model and its
//! tool history made valid for that target; answers normalised for OpenAI clients and judged
//! (`crate::protocol::judge`: cost, the model that answered, `response_format`).

use std::borrow::Cow;
use std::rc::Rc;

use crate::aig::answer::{self as up, Usage};
use crate::aig::cache::{self, CallerCache};
use crate::aig::call;
use crate::attempt::{books, AttemptEnd};
use crate::config::{CachePolicy, ModelId, Settings};
use crate::error::GatewayError;
use crate::money::pricing::{Prices, Usd};
use crate::names;
use crate::protocol::judge::{Judge, Judged};
use crate::relay::SseRelay;
use crate::request::caller::Caller;
use crate::request::{ChatRequest, OutputLimit};
use crate::tools::memory::{lookup_for, Remembered};
use crate::tools::{normalise_completion, ToolFamily};

use super::{Outgoing, Protocol, Reading};
use crate::relay::pump::CostFn;

pub struct Unified<'a> {
    pub settings: &'a Settings,
    pub url: &'a str,
    pub chat: &'a ChatRequest<'a>,
    pub targets: &'a [ModelId],
    pub prices: Rc<Prices>,
    /// What one attempt on each target may cost at most (what its reservation holds).
    pub worst_cases: Vec<Usd>,
    pub caller: &'a Caller,
    pub alias: Option<&'a str>,
    pub cache: Option<CachePolicy>,
    pub caller_cache: CallerCache<'a>,
    /// The route's output limit, sent when the request sets none (what its worst case reserved).
    pub output_limit: u64,
    /// Thought signatures this gateway relayed to the caller earlier, for the calls of its
    /// history that came back without one (the signature memory).
    pub remembered: Vec<Remembered>,
}

impl Unified<'_> {
    fn judge(&self, target: usize, cache_hit: bool) -> Judge<'_> {
        let t = &self.targets[target];
        Judge {
            prices: &self.prices,
            provider: t.provider(),
            model: t.model(),
            contract: self.chat.response_format.as_ref(),
            cache_hit,
        }
    }
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
        let family = ToolFamily::of(t.provider(), t.model());
        let signature_of = lookup_for(&self.remembered, t.provider(), t.model());
        let model = call::upstream_model(self.settings.endpoint, t);
        let body = self.chat.rewrite_for(&model, Some(limit), family, &signature_of);
        let mut headers = call::chat_headers(self.settings, call::metadata(self.caller, self.alias, attempt));
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

    fn whole(&self, target: usize, body: Vec<u8>, cache_hit: bool) -> Reading {
        // Tool calls as OpenAI clients read them, whichever provider wrote them.
        let normalised = normalise_completion(&body);
        let signatures = normalised.signatures;
        let body = match normalised.body {
            Cow::Borrowed(_) => body,
            Cow::Owned(fixed) => fixed,
        };
        match self.judge(target, cache_hit).completion(&body) {
            Ok(judged) => Reading::Judged { body, judged, signatures },
            Err(err) => Reading::Malformed(err),
        }
    }

    fn observer(&self, target: usize, cache_hit: bool, charged_before: Usd) -> (SseRelay, CostFn<SseRelay>) {
        let worst = self.worst_cases[target];
        let t = &self.targets[target];
        let (prices, provider, model) = (self.prices.clone(), t.provider().to_owned(), t.model().to_owned());
        let price = move |usage: Option<&Usage>, answered: Option<&str>| {
            let judge = Judge { prices: &prices, provider: &provider, model: &model, contract: None, cache_hit };
            judge.cost(usage, answered).cost
        };
        let stamp = price.clone();
        // The usage event says what the request will have been charged if the stream ends
        // there: the earlier attempts' charges and this one's, as the books will settle it.
        let charge = move |usage: &Usage, answered: Option<&str>| {
            let end = AttemptEnd::StreamComplete { cost: stamp(Some(usage), answered).usd };
            charged_before.saturating_add(books(end).charge(worst))
        };
        let mut relay = SseRelay::with_cost(Box::new(charge));
        if self.held() {
            relay.answer_mut().gather_content();
        }
        let cost = move |relay: &SseRelay| price(relay.summary().usage.as_ref(), relay.answer().model());
        (relay, Box::new(cost))
    }

    fn held(&self) -> bool {
        self.chat.stream && self.chat.response_format.is_some()
    }

    fn stream_judged(&self, target: usize, relay: &SseRelay, end: AttemptEnd, cache_hit: bool) -> Judged {
        self.judge(target, cache_hit).stream(relay, end)
    }

    fn answered_by(&self, target: usize, named: Option<&str>) -> Option<String> {
        names::answered_by(self.targets[target].model(), named)
    }
}
