//! One error type for everything the gateway itself answers, rendered in the OpenAI error shape
//! (`{"error":{"message","type","code"}}`) so that the agent's OpenAI SDK raises the matching
//! exception (`BadRequestError` for 400, `AuthenticationError` for 401, `RateLimitError` for 429…).

use serde::Serialize;

/// The closed set of things that can go wrong, each with its HTTP status and OpenAI `type`/`code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The body is not valid JSON, or a field has the wrong type.
    InvalidJson,
    /// A well-formed request the gateway will not forward (missing field, bad header value…).
    InvalidRequest,
    /// `model` names neither a configured alias nor a configured `provider/model`.
    ModelNotFound,
    /// `Content-Type` is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than `MAX_BODY_BYTES`.
    PayloadTooLarge,
    /// Missing or wrong `Authorization: Bearer <AGENT_TOKEN>`.
    Unauthorized,
    /// No such route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The Worker is not configured well enough to serve (a missing secret, an invalid config).
    Configuration,
    /// AI Gateway (or the provider behind it) answered with an error status; the status is kept.
    Upstream(u16),
    /// AI Gateway refused the Worker's own credentials: an operator problem, not the caller's.
    UpstreamAuth,
    /// AI Gateway answered something that is not what its contract says (e.g. a 200 with no JSON).
    UpstreamMalformed,
    /// AI Gateway could not be reached at all.
    UpstreamUnreachable,
    /// No first byte from AI Gateway within the time-to-first-byte deadline.
    UpstreamTimeout,
    /// A bug or runtime failure inside the Worker.
    Internal,
    /// Every target was skipped by the gateway's own rate limits or daily budgets.
    LimitsExhausted,
    /// A limiter (a Durable Object) could not be asked: its binding is missing or the object
    /// failed. A fault of the deployment, not a budget: never spent without a check.
    LimiterUnavailable,
    /// The ledger (D1) cannot be read: its binding is missing or its schema was never applied.
    LedgerUnavailable,
    /// An idempotency key in use by a different or still-running request.
    Conflict,
    /// AI Gateway's spend limit (code 2041) refused every target tried.
    AigSpendLimit,
    /// AI Gateway's own rate limit (code 2003) refused every target tried.
    AigRateLimited,
    /// AI Gateway has not enough Unified Billing credits (code 2021) for any target tried.
    AigNoCredits,
    /// An AI Gateway policy denies this request ("Access denied by policy"): asking again will not help.
    AigPolicyDenied,
    /// AI Gateway's guardrails (code 2016) or DLP blocked the prompt. 400, not AI Gateway's 424:
    /// the request's content is at fault, on every provider, and SDKs raise `BadRequestError`.
    ContentBlocked,
    /// AI Gateway's guardrails blocked every answer (code 2017); 424 as AI Gateway says.
    AigResponseBlocked,
    /// AI Gateway's guardrail service was unavailable (code 7013).
    AigGuardrailUnavailable,
    /// The caller's repository (or its owner's total) is over its own daily budget or rate.
    RepositoryBudgetExhausted,
    /// The calling agent (`x-agent-name`) is over its own daily budget or rate.
    AgentBudgetExhausted,
    /// A scoped token (`AGENT_TOKENS`) was sent with an `x-agent-name` other than its agent, or a
    /// repository outside its patterns (or none when it is bound to some).
    TokenScopeMismatch,
    /// No target answered in the format `response_format` asked for (each one's reason named).
    InvalidOutput,
    /// Every target is a model its provider answered it no longer serves (marked for a while).
    ModelUnavailable,
}

impl ErrorKind {
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidJson | ErrorKind::InvalidRequest => 400,
            ErrorKind::ModelNotFound | ErrorKind::NotFound => 404,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unauthorized => 401,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Configuration | ErrorKind::Internal => 500,
            ErrorKind::Upstream(status) => status,
            ErrorKind::UpstreamAuth
            | ErrorKind::UpstreamMalformed
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::InvalidOutput
            | ErrorKind::ModelUnavailable => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::LimitsExhausted | ErrorKind::RepositoryBudgetExhausted | ErrorKind::AgentBudgetExhausted => 429,
            ErrorKind::Conflict => 409,
            ErrorKind::AigSpendLimit | ErrorKind::AigRateLimited => 429,
            ErrorKind::AigNoCredits => 402,
            ErrorKind::AigPolicyDenied | ErrorKind::TokenScopeMismatch => 403,
            ErrorKind::ContentBlocked => 400,
            ErrorKind::AigResponseBlocked => 424,
            ErrorKind::AigGuardrailUnavailable | ErrorKind::LimiterUnavailable | ErrorKind::LedgerUnavailable => 503,
        }
    }

    /// The OpenAI `error.type`.
    pub fn openai_type(self) -> &'static str {
        match self {
            ErrorKind::Unauthorized => "authentication_error",
            ErrorKind::Configuration
            | ErrorKind::Internal
            | ErrorKind::LimiterUnavailable
            | ErrorKind::LedgerUnavailable => "server_error",
            ErrorKind::Upstream(429)
            | ErrorKind::LimitsExhausted
            | ErrorKind::RepositoryBudgetExhausted
            | ErrorKind::AgentBudgetExhausted
            | ErrorKind::AigSpendLimit
            | ErrorKind::AigRateLimited => "rate_limit_error",
            ErrorKind::AigPolicyDenied | ErrorKind::TokenScopeMismatch => "permission_error",
            ErrorKind::AigNoCredits | ErrorKind::AigResponseBlocked | ErrorKind::AigGuardrailUnavailable => {
                "upstream_error"
            }
            ErrorKind::Upstream(s) if s < 500 => "invalid_request_error",
            ErrorKind::Upstream(_)
            | ErrorKind::UpstreamAuth
            | ErrorKind::UpstreamMalformed
            | ErrorKind::UpstreamUnreachable
            | ErrorKind::UpstreamTimeout
            | ErrorKind::InvalidOutput
            | ErrorKind::ModelUnavailable => "upstream_error",
            _ => "invalid_request_error",
        }
    }

    /// The OpenAI `error.code`: a stable, machine-readable name.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidJson => "invalid_json",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unauthorized => "invalid_api_key",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MethodNotAllowed => "method_not_allowed",
            ErrorKind::Configuration => "gateway_misconfigured",
            ErrorKind::Internal => "internal_error",
            ErrorKind::Upstream(429) => "upstream_rate_limited",
            ErrorKind::Upstream(_) => "upstream_error",
            ErrorKind::UpstreamAuth => "upstream_auth_failed",
            ErrorKind::UpstreamMalformed => "upstream_malformed_response",
            ErrorKind::UpstreamUnreachable => "upstream_unreachable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::LimitsExhausted => "gateway_limits_exhausted",
            ErrorKind::LimiterUnavailable => "limiter_unavailable",
            ErrorKind::LedgerUnavailable => "ledger_unavailable",
            ErrorKind::Conflict => "idempotency_conflict",
            ErrorKind::AigSpendLimit => "aig_spend_limit",
            ErrorKind::AigRateLimited => "aig_rate_limited",
            ErrorKind::AigNoCredits => "aig_insufficient_credits",
            ErrorKind::AigPolicyDenied => "aig_policy_denied",
            ErrorKind::ContentBlocked => "content_blocked",
            ErrorKind::AigResponseBlocked => "aig_response_blocked",
            ErrorKind::AigGuardrailUnavailable => "aig_guardrail_unavailable",
            ErrorKind::RepositoryBudgetExhausted => "repository_budget_exhausted",
            ErrorKind::AgentBudgetExhausted => "agent_budget_exhausted",
            ErrorKind::TokenScopeMismatch => "token_scope_mismatch",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::ModelUnavailable => "model_unavailable",
        }
    }
}

/// An error the gateway answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub message: String,
    /// `Retry-After` to pass on (seconds, as the upstream or the limiter gave it).
    pub retry_after: Option<String>,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        GatewayError { kind, message: message.into(), retry_after: None }
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The body in the OpenAI error shape.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            code: &'a str,
            param: Option<&'a str>,
        }
        serde_json::to_string(&Body {
            error: Inner { message: &self.message, kind: self.kind.openai_type(), code: self.kind.code(), param: None },
        })
        .unwrap_or_else(|_| {
            String::from(
                r#"{"error":{"message":"internal error","type":"server_error","code":"internal_error","param":null}}"#,
            )
        })
    }

    /// The same error as one SSE event, for a stream that already started: the OpenAI SDKs raise
    /// `APIError` when a `data:` event carries an `error` object, so the client never mistakes a
    /// broken stream for a complete answer.
    pub fn to_sse_event(&self) -> String {
        format!("data: {}\n\n", self.to_json())
    }
}

/// Replaces every occurrence of each secret in `text` by `[redacted]`.
///
/// Upstream error bodies are relayed to the caller; if AI Gateway (or anything between) ever echoed
/// one of our credentials back, it must not reach the caller or a log line. Secrets shorter than 8
/// bytes are still redacted (an empty one is skipped: it would match everywhere).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(secret) {
            out = out.replace(secret, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_shape() {
        let e = GatewayError::new(ErrorKind::ModelNotFound, "no model \"x\"");
        let v: serde_json::Value = crate::json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["message"], "no model \"x\"");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(e.status(), 404);
    }

    #[test]
    fn statuses_match_what_sdks_expect() {
        assert_eq!(ErrorKind::Unauthorized.status(), 401);
        assert_eq!(ErrorKind::PayloadTooLarge.status(), 413);
        assert_eq!(ErrorKind::UnsupportedMediaType.status(), 415);
        assert_eq!(ErrorKind::MethodNotAllowed.status(), 405);
        assert_eq!(ErrorKind::Upstream(429).status(), 429);
        assert_eq!(ErrorKind::Upstream(429).openai_type(), "rate_limit_error");
        assert_eq!(ErrorKind::Upstream(503).openai_type(), "upstream_error");
        assert_eq!(ErrorKind::UpstreamTimeout.status(), 504);
        assert_eq!(ErrorKind::UpstreamAuth.status(), 502);
        assert_eq!(
            (ErrorKind::AigSpendLimit.status(), ErrorKind::AigSpendLimit.openai_type()),
            (429, "rate_limit_error")
        );
        assert_eq!((ErrorKind::ContentBlocked.status(), ErrorKind::ContentBlocked.code()), (400, "content_blocked"));
        assert_eq!(
            (ErrorKind::AigPolicyDenied.status(), ErrorKind::AigPolicyDenied.code()),
            (403, "aig_policy_denied")
        );
        assert_eq!(ErrorKind::AigNoCredits.status(), 402);
        assert_eq!(
            (ErrorKind::TokenScopeMismatch.status(), ErrorKind::TokenScopeMismatch.openai_type()),
            (403, "permission_error")
        );
        assert_eq!(ErrorKind::TokenScopeMismatch.code(), "token_scope_mismatch");
        assert_eq!(ErrorKind::AigGuardrailUnavailable.status(), 503);
        for (kind, code) in
            [(ErrorKind::InvalidOutput, "invalid_output"), (ErrorKind::ModelUnavailable, "model_unavailable")]
        {
            assert_eq!((kind.status(), kind.openai_type(), kind.code()), (502, "upstream_error", code));
        }
    }

    #[test]
    fn sse_event_is_one_data_event() {
        let e = GatewayError::new(ErrorKind::UpstreamMalformed, "cut");
        let ev = e.to_sse_event();
        assert!(ev.starts_with("data: {\"error\":"));
        assert!(ev.ends_with("\n\n"));
        assert_eq!(ev.matches('\n').count(), 2);
    }

    #[test]
    fn redacts_every_secret() {
        let s = redact("token abc12345 and xyz98765 and abc12345", &["abc12345", "xyz98765", ""]);
        assert_eq!(s, "token [redacted] and [redacted] and [redacted]");
    }
}
