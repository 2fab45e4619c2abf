//! The native routes' protocol (`/{provider}/…`): a provider's own API through AI Gateway, the
//! body forwarded as it came, answers and errors in the provider's own format.

use std::borrow::Cow;
use std::rc::Rc;

use crate::aig::answer as up;
use crate::aig::call;
use crate::attempt::AttemptEnd;
use crate::config::Settings;
use crate::error::{redact, GatewayError};
use crate::money::pricing::{AnswerCost, Cost, Prices, Usd};
use crate::native::shape::Shape;
use crate::native::stream::NativeStream;
use crate::native::usage::{self, NativeUsage};
use crate::protocol::judge::Judged;
use crate::provider::Provider;
use crate::request::caller::Caller;

use super::{Outgoing, Protocol, Reading};
use crate::relay::pump::CostFn;

/// Why a native call produced no answer.
pub enum Failure {
    /// The Worker's own error (OpenAI shape).
    Gateway(GatewayError),
    /// The provider's error answer, passed on in its own shape.
    Provider(ProviderError),
}

impl From<GatewayError> for Failure {
    fn from(err: GatewayError) -> Failure {
        Failure::Gateway(err)
    }
}

/// A provider's error answer: its status, its (redacted, bounded) body, its content type.
pub struct ProviderError {
    pub status: u16,
    pub body: String,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
}

pub struct Native<'a> {
    pub settings: &'a Settings,
    pub url: &'a str,
    pub provider: Provider,
    pub shape: &'a Shape,
    pub body: &'a [u8],
    pub caller: &'a Caller,
    /// The caller's headers passed on (API versions, its own provider key when allowed, cache).
    pub headers: Vec<(&'static str, String)>,
    /// Whether a caller's own provider key is forwarded (then a 401/403 is about that key).
    pub caller_key: bool,
    pub prices: Rc<Prices>,
}

impl Protocol for Native<'_> {
    type Observer = NativeStream;
    type Failure = Failure;

    fn streamed(&self) -> bool {
        self.shape.stream.is_some()
    }

    fn outgoing(&self, _target: usize, attempt: u32) -> Outgoing<'_> {
        let mut headers = call::chat_headers(self.settings, call::metadata(self.caller, Some("native"), attempt));
        // Native calls always go to the gateway's own URL (GATEWAY_ENDPOINT only picks the
        // unified route's endpoint), so only the gateway's credentials apply.
        headers.retain(|(name, _)| !matches!(*name, "authorization" | "cf-aig-gateway-id"));
        headers.extend(self.headers.iter().cloned());
        Outgoing { url: self.url, headers, body: Cow::Borrowed(self.body) }
    }

    fn failure(
        &self,
        _target: usize,
        status: u16,
        content_type: Option<String>,
        body: &[u8],
        retry_after: Option<String>,
    ) -> Failure {
        let secrets = self.settings.secret_values();
        // 401/403 with only the Worker's credentials sent: AI Gateway refused CF_AIG_TOKEN, the
        // operator's problem (502), not the caller's key.
        if matches!(status, 401 | 403) && !self.caller_key {
            return Failure::Gateway(up::error_from_upstream(
                status,
                body,
                retry_after,
                self.provider.slug(),
                &secrets,
            ));
        }
        Failure::Provider(ProviderError {
            status,
            body: redact(&String::from_utf8_lossy(body), &secrets),
            content_type,
            retry_after: retry_after
                .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b" ,:".contains(&b))),
        })
    }

    fn whole(&self, _target: usize, body: Vec<u8>, cache_hit: bool) -> Reading {
        let answer = match usage::read_answer(self.shape.wire, &body) {
            Ok(answer) => answer,
            Err(err) => return Reading::Malformed(err),
        };
        let priced = self.cost(answer.model.as_deref(), answer.usage);
        let end = if cache_hit { AttemptEnd::CacheHit } else { AttemptEnd::AnswerRead { cost: priced.cost.usd } };
        Reading::Judged { body, judged: judged(end, priced, answer.usage), signatures: Vec::new() }
    }

    fn observer(&self, _target: usize, cache_hit: bool, _charged_before: Usd) -> (NativeStream, CostFn<NativeStream>) {
        let framing = self.shape.stream.expect("a streamed shape");
        let (prices, provider, model) = (self.prices.clone(), self.provider, self.shape.model.clone());
        let cost = move |s: &NativeStream| {
            if cache_hit {
                return Cost { usd: Some(Usd::ZERO), warning: None };
            }
            let tally = s.tally();
            usage::cost(&prices, provider, model.as_deref(), tally.model.as_deref(), tally.usage).cost
        };
        (NativeStream::new(self.shape.wire, framing), Box::new(cost))
    }

    fn stream_judged(&self, _target: usize, stream: &NativeStream, end: AttemptEnd, cache_hit: bool) -> Judged {
        let tally = stream.tally();
        let priced = self.cost(tally.model.as_deref(), tally.usage);
        let end = if cache_hit { AttemptEnd::CacheHit } else { end };
        judged(end, priced, tally.usage)
    }

    fn answered_by(&self, _target: usize, named: Option<&str>) -> Option<String> {
        let asked = self.shape.model.as_deref()?;
        crate::names::answered_by(asked, named)
    }
}

impl Native<'_> {
    /// The cost of a native answer, priced as the model that answered.
    fn cost(&self, answered: Option<&str>, usage: Option<NativeUsage>) -> AnswerCost {
        usage::cost(&self.prices, self.provider, self.shape.model.as_deref(), answered, usage)
    }
}

/// A native answer judged: its books' end, usage and the model that answered. Nothing else is
/// asked of a provider's own format (no `response_format`, no filter to fail over from).
fn judged(end: AttemptEnd, priced: AnswerCost, usage: Option<NativeUsage>) -> Judged {
    Judged {
        end,
        content_filtered: false,
        tokens: usage.map(|u| u.tokens),
        answered_by: priced.answered_by,
        invalid: None,
        warnings: priced.cost.warning.into_iter().collect(),
    }
}
