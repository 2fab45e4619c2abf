//! Reading what AI Gateway answered: errors into [`GatewayError`]s with a useful message, and the
//! few fields of a completion the gateway acts on (usage, finish reason).
//!
//! Upstream error bodies come in several shapes (reference §1): the provider's own (OpenAI
//! `{"error":{"message"}}`, Anthropic `{"type":"error","error":{"message"}}`, Gemini
//! `{"error":{"code","message","status"}}` or an array of those) and AI Gateway's runtime error
//! (`{"error":[{"code","message"}],"name":"AiGatewayError",…}`, observed, undocumented — so every
//! field is optional here and anything unrecognised falls back to a short excerpt of the text).

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attempt::{AigRefusal, AttemptOutcome};
use crate::error::{redact, ErrorKind, GatewayError};
use crate::money::usage::{Count, Counts, Details, Thinking, UsageFault};

/// Token usage as OpenAI reports it (the compat endpoint's shape for every provider). Each count
/// is read leniently ([`Count`]): one of the wrong kind makes the usage unpriceable, not the
/// answer unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: Count,
    #[serde(default)]
    pub completion_tokens: Count,
    #[serde(default)]
    pub total_tokens: Count,
    /// `cached_tokens`: prompt tokens served from the provider's prompt cache (counted inside
    /// `prompt_tokens`).
    #[serde(default)]
    pub prompt_tokens_details: Option<Details>,
    /// `reasoning_tokens`: thinking, inside `completion_tokens` (OpenAI) or not (Gemini).
    #[serde(default)]
    pub completion_tokens_details: Option<Details>,
}

impl Usage {
    /// The counts, as [`crate::money::usage`] reads them.
    pub fn counts(&self) -> Counts {
        Counts {
            prompt: self.prompt_tokens,
            cached: self.prompt_tokens_details.map_or(Count::Absent, |d| d.cached_tokens),
            completion: self.completion_tokens,
            total: self.total_tokens,
            reasoning: self.completion_tokens_details.map_or(Count::Absent, |d| d.reasoning_tokens),
        }
    }

    /// The billed token counts the price table takes, or why there are none.
    pub fn tokens(&self) -> Result<crate::money::pricing::Tokens, UsageFault> {
        self.counts().tokens(Thinking::Unsaid)
    }
}

/// What the gateway reads from a non-streamed completion.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completion {
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    /// The model the answer names (its `model` field).
    pub model: Option<String>,
}

#[derive(Deserialize)]
struct CompletionProbe<'a> {
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceProbe<'a>>>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub(crate) struct ChoiceProbe<'a> {
    #[serde(default, borrow)]
    pub(crate) finish_reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) delta: Option<DeltaProbe<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct DeltaProbe<'a> {
    #[serde(default, borrow)]
    pub(crate) content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) refusal: Option<std::borrow::Cow<'a, str>>,
}

/// Reads a 200 answer. A body that is not a JSON object with `choices` breaks AI Gateway's
/// contract: that is a 502 for the caller, not a 200 that its SDK would choke on.
pub fn read_completion(body: &[u8]) -> Result<Completion, GatewayError> {
    let probe: CompletionProbe = serde_json::from_slice(body).map_err(|_| {
        GatewayError::new(ErrorKind::UpstreamMalformed, "AI Gateway answered 200 with a body that is not JSON.")
    })?;
    if probe.error.is_some() {
        return Err(GatewayError::new(ErrorKind::UpstreamMalformed, "AI Gateway answered 200 with an error body."));
    }
    let choices = probe
        .choices
        .ok_or_else(|| GatewayError::new(ErrorKind::UpstreamMalformed, "AI Gateway answered 200 without `choices`."))?;
    Ok(Completion {
        usage: probe.usage,
        finish_reason: choices.into_iter().next().and_then(|c| c.finish_reason).map(|r| r.into_owned()),
        model: probe.model.map(|m| m.chars().take(128).collect()),
    })
}

/// Turns an upstream error answer into the error the caller gets.
///
/// * 401/403 mean AI Gateway refused *the Worker's* credentials (`CF_AIG_TOKEN`): answering 401
///   would make the agent's SDK blame the agent's key, so it becomes a 502 naming the real cause.
/// * Other 4xx/5xx keep their status, so the SDK raises the matching exception; `Retry-After`
///   is passed on.
/// * The message is the upstream's own, redacted of every secret and cut to a sane length.
pub fn error_from_upstream(
    status: u16,
    body: &[u8],
    retry_after: Option<String>,
    provider: &str,
    secrets: &[&str],
) -> GatewayError {
    // Redact the whole body before a message is cut out of it: a secret crossing the cut would
    // otherwise leave its start visible.
    let body = redact(&String::from_utf8_lossy(body), secrets);
    let detail = upstream_message(body.as_bytes());
    let mut err = match status {
        401 | 403 => GatewayError::new(
            ErrorKind::UpstreamAuth,
            format!(
                "AI Gateway refused the gateway's credentials (HTTP {status}: {detail}). \
                 The operator should check CF_AIG_TOKEN and the gateway's authentication setting."
            ),
        ),
        400..=599 => GatewayError::new(
            ErrorKind::Upstream(status),
            format!("{provider} via AI Gateway answered HTTP {status}: {detail}"),
        ),
        _ => {
            GatewayError::new(ErrorKind::UpstreamMalformed, format!("AI Gateway answered an unexpected HTTP {status}."))
        }
    };
    err.retry_after = retry_after.filter(|v| valid_retry_after(v));
    err
}

/// `Retry-After` is delay-seconds or an HTTP date; pass on only what looks like one.
fn valid_retry_after(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b" ,:".contains(&b))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField<'a> {
    One(#[serde(borrow)] MessageHolder<'a>),
    Many(#[serde(borrow)] Vec<MessageHolder<'a>>),
    Text(std::borrow::Cow<'a, str>),
}

#[derive(Deserialize)]
struct MessageHolder<'a> {
    #[serde(default, borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(default, borrow)]
    error: Option<ErrorField<'a>>,
    #[serde(default, borrow)]
    message: Option<std::borrow::Cow<'a, str>>,
}

/// The most specific human message an error body carries.
pub fn upstream_message(body: &[u8]) -> String {
    let from_body = |b: ErrorBody| -> Option<String> {
        let nested = match b.error {
            Some(ErrorField::One(h)) => h.message,
            Some(ErrorField::Many(v)) => v.into_iter().find_map(|h| h.message),
            Some(ErrorField::Text(t)) => Some(t),
            None => None,
        };
        nested.or(b.message).map(|m| m.into_owned())
    };
    // Gemini sometimes wraps the error in an array. (Look at the first byte: serde would happily
    // read an array as a struct's fields in order.)
    let found = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<ErrorBody>>(body).ok().and_then(|v| v.into_iter().find_map(from_body))
    } else {
        serde_json::from_slice::<ErrorBody>(body).ok().and_then(from_body)
    };
    let text = match found {
        Some(m) if !m.trim().is_empty() => m,
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(500).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        String::from("no error message")
    } else {
        cleaned.to_owned()
    }
}

/// The refusals AI Gateway names with a numeric code in its own error shape: code, the statuses
/// it is recognised with, what it is. A provider error that merely shares the status (an
/// OpenAI 429, a 402 of some provider) carries no such code and keeps its own classification.
///
/// Open question (reference §4a): 2016/2017 moved to 424 in the 2026-09 changelog and older
/// pages show other statuses, so those two (an empty status list) are recognised with any 4xx;
/// the rest with the one status the reference gives.
pub const AIG_CODES: &[(u32, &[u16], AigRefusal)] = &[
    (2041, &[429], AigRefusal::SpendLimit),
    (2003, &[429], AigRefusal::RateLimited),
    (2021, &[402], AigRefusal::NoCredits),
    (2016, &[], AigRefusal::PromptBlocked),
    (2017, &[], AigRefusal::ResponseBlocked),
    (7013, &[503], AigRefusal::GuardrailUnavailable),
];

#[derive(Deserialize)]
struct AigErrorBody {
    /// AI Gateway's shape has an *array* here; a provider's has an object (or nothing).
    #[serde(default)]
    error: Option<Vec<AigErrorItem>>,
}

#[derive(Deserialize)]
struct AigErrorItem {
    /// A number as observed; a numeric string is read too, defensively.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// Recognises one of AI Gateway's own refusals in an error answer: by its status and the code in
/// AI Gateway's error shape (`{"error":[{"code":N,"message":…}],…}`), or, for the two that carry
/// no code the reference knows, by the policy message on a 403 and by `cf-aig-dlp` on a 400.
pub fn aig_refusal(status: u16, body: &[u8], dlp_header: bool) -> Option<AigRefusal> {
    // The DLP block's body is not documented (open question): the header is the signal.
    if status == 400 && dlp_header {
        return Some(AigRefusal::DlpBlocked);
    }
    let codes: Vec<u32> = serde_json::from_slice::<AigErrorBody>(body)
        .ok()
        .and_then(|b| b.error)
        .map(|items| {
            items
                .into_iter()
                .filter_map(|i| match i.code? {
                    serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let by_code = codes.iter().find_map(|code| {
        AIG_CODES
            .iter()
            .find(|(c, statuses, _)| {
                c == code && (statuses.contains(&status) || (statuses.is_empty() && (400..500).contains(&status)))
            })
            .map(|(_, _, r)| *r)
    });
    if by_code.is_some() {
        return by_code;
    }
    // Policies (Beta) answer 403 with this message and no documented code; any shape is read.
    if status == 403 && upstream_message(body).to_ascii_lowercase().contains("access denied by policy") {
        return Some(AigRefusal::PolicyDenied);
    }
    None
}

/// The error the caller gets for one of AI Gateway's refusals: its own code, the gateway's
/// message (redacted), and `Retry-After` when one came.
pub fn refusal_error(
    refusal: AigRefusal,
    status: u16,
    body: &[u8],
    retry_after: Option<String>,
    target: &str,
    secrets: &[&str],
) -> GatewayError {
    let body = redact(&String::from_utf8_lossy(body), secrets);
    let detail = upstream_message(body.as_bytes());
    let mut err = GatewayError::new(
        refusal.kind(),
        format!("{} {target} (HTTP {status}: {detail}).", capitalised(says(refusal))),
    );
    err.retry_after = retry_after.filter(|v| valid_retry_after(v));
    err
}

/// What one of AI Gateway's refusals says happened, before the target it happened to.
fn says(refusal: AigRefusal) -> &'static str {
    match refusal {
        AigRefusal::SpendLimit => "a spend limit of AI Gateway is exhausted for",
        AigRefusal::RateLimited => "AI Gateway's own rate limit refused",
        AigRefusal::NoCredits => "AI Gateway has insufficient Unified Billing credits for",
        AigRefusal::PolicyDenied => "an AI Gateway policy denies this request to",
        AigRefusal::PromptBlocked => "AI Gateway's guardrails blocked the prompt sent to",
        AigRefusal::DlpBlocked => "AI Gateway's DLP policy blocked the request to",
        AigRefusal::ResponseBlocked => "AI Gateway's guardrails blocked the response of",
        AigRefusal::GuardrailUnavailable => "AI Gateway's guardrail service was unavailable for",
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// How an error answer ends an attempt, for the classification table: one of AI Gateway's
/// refusals, a model its provider no longer serves ([`model_unavailable`]), or its status.
pub fn outcome_of(status: u16, refusal: Option<AigRefusal>, body: &[u8]) -> AttemptOutcome {
    match refusal {
        Some(r) => AttemptOutcome::Refused(r),
        None if model_unavailable(status, body) => AttemptOutcome::ModelUnavailable,
        None => AttemptOutcome::Status(status),
    }
}

/// Whether an error answer says the model does not exist or is no longer served — a provider
/// that retired it (Gemini: "models/gemini-2.5-flash is not found for API version v1beta", "is no
/// longer available to new users"; OpenAI: code `model_not_found`, "The model `x` does not exist
/// or you do not have access to it"; Anthropic: `not_found_error` with "model: …"; Groq's
/// `model_decommissioned`). Only a 400, 404 or 410 can say so; any other client error of the
/// request keeps failing fast.
pub fn model_unavailable(status: u16, body: &[u8]) -> bool {
    if !matches!(status, 400 | 404 | 410) {
        return false;
    }
    let head = &body[..body.len().min(16 * 1024)];
    let raw = String::from_utf8_lossy(head).to_ascii_lowercase();
    if raw.contains("model_not_found") || raw.contains("model_decommissioned") {
        return true;
    }
    let message = upstream_message(head).to_ascii_lowercase();
    const GONE: [&str; 6] = [
        "does not exist",
        "not found",
        "no longer available",
        "no longer supported",
        "decommissioned",
        "has been deprecated",
    ];
    (message.contains("model") && GONE.iter().any(|g| message.contains(g)))
        || (raw.contains("not_found_error") && message.starts_with("model:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attempt::{classify, Disposition};

    #[test]
    fn reads_usage_and_finish_reason() {
        let c = read_completion(
            br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#,
        )
        .unwrap();
        assert_eq!(
            c.usage,
            Some(Usage {
                prompt_tokens: 12.into(),
                completion_tokens: 9.into(),
                total_tokens: 21.into(),
                ..Usage::default()
            })
        );
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
        assert_eq!(c.model, None);
        let c =
            read_completion(br#"{"model":"gemini-3.5-flash-lite","choices":[],"usage":{"prompt_tokens":-1}}"#).unwrap();
        assert_eq!(c.model.as_deref(), Some("gemini-3.5-flash-lite"));
        assert!(c.usage.unwrap().tokens().is_err(), "a count that is not one: the usage is unknown, the answer read");
    }

    #[test]
    fn cached_prompt_tokens_are_normalised() {
        let u: Usage = crate::json::from_str(
            r#"{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":60}}"#,
        )
        .unwrap();
        assert_eq!(
            u.tokens(),
            Ok(crate::money::pricing::Tokens { input: 40, cached_input: 60, output: 5, reasoning: 0 })
        );
    }

    #[test]
    fn malformed_200s_are_502s() {
        for body in [&b"not json"[..], b"[]", br#"{"id":"x"}"#, br#"{"error":{"message":"x"}}"#] {
            let e = read_completion(body).unwrap_err();
            assert_eq!(e.kind, ErrorKind::UpstreamMalformed);
            assert_eq!(e.status(), 502);
        }
    }

    #[test]
    fn messages_from_every_known_shape() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"error":{"message":"Rate limit reached","type":"requests"}}"#, "Rate limit reached"),
            (br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, "Overloaded"),
            (br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#, "Resource has been exhausted"),
            (br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#, "The model is overloaded."),
            (br#"{"success":false,"result":[],"messages":[],"error":[{"code":2009,"message":"Unauthorized"}],"name":"AiGatewayError","httpCode":401,"internalCode":2009,"message":"Unauthorized"}"#, "Unauthorized"),
            (br#"{"message":"plain"}"#, "plain"),
            (b"<html>Bad gateway</html>", "<html>Bad gateway</html>"),
            (b"", "no error message"),
            (b"line1\r\nline2", "line1  line2"),
        ];
        for (body, expected) in cases {
            assert_eq!(upstream_message(body), *expected, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(upstream_message(&[b'x'; 2000]).len(), 500);
    }

    #[test]
    fn upstream_errors_keep_status_and_never_leak_secrets() {
        let e = error_from_upstream(
            429,
            br#"{"error":{"message":"slow down, token aig-SECRET-1 is busy"}}"#,
            Some("7".into()),
            "google-ai-studio",
            &["aig-SECRET-1"],
        );
        assert_eq!(e.status(), 429);
        assert_eq!(e.retry_after.as_deref(), Some("7"));
        assert!(e.message.contains("slow down"));
        assert!(!e.message.contains("aig-SECRET-1"));
        assert!(e.message.contains("[redacted]"));
    }

    #[test]
    fn gateway_auth_failure_is_the_operators_problem() {
        let e = error_from_upstream(401, br#"{"error":[{"code":2009,"message":"Unauthorized"}]}"#, None, "openai", &[]);
        assert_eq!(e.kind, ErrorKind::UpstreamAuth);
        assert_eq!(e.status(), 502);
        assert!(e.message.contains("CF_AIG_TOKEN"));
    }

    #[test]
    fn odd_statuses_and_retry_after_values() {
        assert_eq!(error_from_upstream(302, b"", None, "p", &[]).kind, ErrorKind::UpstreamMalformed);
        let e = error_from_upstream(503, b"", Some("1\r\nx: y".into()), "p", &[]);
        assert_eq!(e.retry_after, None);
        assert_eq!(e.status(), 503);
    }

    /// Each provider's way of saying a model is gone, as the reference quotes them; and the
    /// client errors that only look alike, which keep failing fast.
    #[test]
    fn a_model_that_is_gone_is_told_from_other_client_errors() {
        let gone: &[(u16, &[u8])] = &[
            (404, br#"{"error":{"code":404,"message":"models/gemini-2.5-flash is not found for API version v1beta, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.","status":"NOT_FOUND"}}"#),
            (404, br#"[{"error":{"code":404,"message":"This model models/gemini-2.5-flash is no longer available to new users. Please update your code to use a newer model for the latest features and improvements.","status":"NOT_FOUND"}}]"#),
            (404, br#"{"error":{"message":"The model `gpt-4-32k` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#),
            (404, br#"{"type":"error","error":{"type":"not_found_error","message":"model: claude-3-sonnet-20240229"}}"#),
            (400, br#"{"error":{"message":"The model `llama3-70b-8192` has been decommissioned and is no longer supported.","type":"invalid_request_error","code":"model_decommissioned"}}"#),
            (410, br#"{"error":{"message":"This model is no longer available."}}"#),
        ];
        for (status, body) in gone {
            assert!(model_unavailable(*status, body), "{}", String::from_utf8_lossy(body));
            assert_eq!(outcome_of(*status, None, body), AttemptOutcome::ModelUnavailable);
        }
        let not_gone: &[(u16, &[u8])] = &[
            (400, br#"{"error":{"message":"Invalid value for 'temperature': must be at most 2."}}"#),
            (404, br#"{"error":{"message":"Requested entity was not found."}}"#),
            (400, br#"{"error":{"message":"Function call is missing a thought_signature in functionCall parts."}}"#),
            (503, br#"{"error":{"message":"The model is overloaded.","code":"model_not_found"}}"#),
            (429, br#"{"error":{"message":"The model `gpt-4o` does not exist"}}"#),
            (404, b"<html>not found</html>"),
        ];
        for (status, body) in not_gone {
            assert!(!model_unavailable(*status, body), "{}", String::from_utf8_lossy(body));
        }
        // AI Gateway's own refusal wins: it is not the provider's word on the model.
        assert_eq!(
            outcome_of(404, Some(AigRefusal::PolicyDenied), gone[0].1),
            AttemptOutcome::Refused(AigRefusal::PolicyDenied)
        );
    }

    fn aig(status: u16, code: u32, message: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "success": false, "result": [], "messages": [],
            "error": [{"code": code, "message": message}],
            "name": "AiGatewayError", "httpCode": status, "internalCode": code, "message": message,
        }))
        .unwrap()
    }

    #[test]
    fn aig_refusals_are_recognised_by_status_and_code() {
        use AigRefusal::*;
        let cases = [
            (429, 2041, SpendLimit),
            (429, 2003, RateLimited),
            (402, 2021, NoCredits),
            (424, 2016, PromptBlocked),
            (400, 2016, PromptBlocked),
            (424, 2017, ResponseBlocked),
            (503, 7013, GuardrailUnavailable),
        ];
        for (status, code, refusal) in cases {
            assert_eq!(aig_refusal(status, &aig(status, code, "m"), false), Some(refusal), "{status} {code}");
        }
        // A numeric string code is read too.
        assert_eq!(aig_refusal(429, br#"{"error":[{"code":"2041","message":"x"}]}"#, false), Some(SpendLimit));
        // A code with a status it does not come with is not that refusal.
        assert_eq!(aig_refusal(500, &aig(500, 2041, "m"), false), None);
        assert_eq!(aig_refusal(503, &aig(503, 2016, "m"), false), None);
        // Policy: a 403 with the policy message (no code known).
        assert_eq!(aig_refusal(403, &aig(403, 2099, "Access denied by policy"), false), Some(PolicyDenied));
        assert_eq!(aig_refusal(403, br#"{"error":{"message":"Access denied by policy"}}"#, false), Some(PolicyDenied));
        // DLP: a 400 with the header, whatever the body.
        assert_eq!(aig_refusal(400, b"blocked", true), Some(DlpBlocked));
        assert_eq!(aig_refusal(400, b"blocked", false), None);
    }

    #[test]
    fn provider_errors_sharing_a_status_are_not_aig_refusals() {
        let provider: &[(u16, &[u8])] = &[
            (429, br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#),
            (429, br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}"#),
            (402, br#"{"error":{"message":"Payment required","code":2021}}"#),
            (403, br#"{"error":{"message":"Permission denied"}}"#),
            (400, br#"{"error":{"message":"bad"}}"#),
            (424, br#"{"error":{"message":"failed dependency"}}"#),
            (503, br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#),
            (401, &aig(401, 2009, "Unauthorized")),
        ];
        for (status, body) in provider {
            assert_eq!(aig_refusal(*status, body, false), None, "{}", String::from_utf8_lossy(body));
            assert_eq!(outcome_of(*status, None, body), AttemptOutcome::Status(*status));
        }
    }

    #[test]
    fn refusals_classify_and_name_what_happened() {
        use AigRefusal::*;
        let rows = [
            (SpendLimit, Disposition::NextTarget, 429, "aig_spend_limit"),
            (RateLimited, Disposition::NextTarget, 429, "aig_rate_limited"),
            (NoCredits, Disposition::NextTarget, 402, "aig_insufficient_credits"),
            (PolicyDenied, Disposition::FailFast, 403, "aig_policy_denied"),
            (PromptBlocked, Disposition::FailFast, 400, "content_blocked"),
            (DlpBlocked, Disposition::FailFast, 400, "content_blocked"),
            (ResponseBlocked, Disposition::NextTarget, 424, "aig_response_blocked"),
            (GuardrailUnavailable, Disposition::NextTarget, 503, "aig_guardrail_unavailable"),
        ];
        for (refusal, disposition, status, code) in rows {
            assert_eq!(classify(AttemptOutcome::Refused(refusal)), disposition, "{refusal:?}");
            let e = refusal_error(
                refusal,
                429,
                &aig(429, 2041, "limit hit for key sk-SECRET-9"),
                Some("30".into()),
                "openai/gpt-4o",
                &["sk-SECRET-9"],
            );
            assert_eq!((e.status(), e.kind.code()), (status, code), "{refusal:?}");
            assert!(e.message.contains("openai/gpt-4o") && e.message.contains("limit hit"), "{}", e.message);
            assert!(!e.message.contains("sk-SECRET-9"));
            assert_eq!(e.retry_after.as_deref(), Some("30"));
        }
    }
}
