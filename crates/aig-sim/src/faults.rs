//! Scripted upstream faults.
//!
//! Tests queue faults per provider with `POST /__sim/faults`; every inference request for that
//! provider that reaches the (simulated) upstream consumes one use of the fault at the head of
//! the provider's queue, or, if that queue is empty, of the wildcard (`*`) queue. Cache hits
//! never reach the upstream and so consume nothing.

use std::collections::{HashMap, VecDeque};

use serde_json::{json, Value};

use crate::answer::Reply;

/// Provider name that matches every provider.
pub const ANY_PROVIDER: &str = "*";

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After`, and a body) instead of the model's answer;
    /// with `stall`, send the headers and the first half of the body, then nothing more.
    Status { status: u16, retry_after: Option<String>, body: Option<Value>, stall: bool },
    /// Wait, then answer normally.
    Delay { ms: u64 },
    /// Never send response headers.
    Stall,
    /// Send headers and the first content chunk, then nothing more.
    StallAfterFirstChunk,
    /// Send 200 headers, then break the connection.
    CutBeforeFirstChunk,
    /// Send headers and the first content chunk, then break the connection.
    CutAfterFirstChunk,
    /// A stream whose second event is not JSON (non-stream: a 200 body that is not JSON).
    Malformed,
    /// A 200 answer blocked by the content filter.
    ContentFilter,
    /// Send headers and the first content chunk, then these raw bytes (say, an error event),
    /// then end. `{gateway_token}` in them becomes the `cf-aig-authorization` token the request
    /// carried: an upstream that echoes a request header back in its error text.
    EventAfterFirstChunk { data: String },
    /// One of AI Gateway's own refusals (reference §4a), in its own error shape.
    AigRefusal { refusal: AigRefusal, retry_after: Option<String> },
    /// Send the events before the first content event, then end the body cleanly: no content,
    /// no finish, no `[DONE]`.
    EndBeforeFirstChunk,
    /// Send the events up to the first content event, then end the body cleanly: no finish, no
    /// `[DONE]` (a truncation that looks like a clean close).
    EndAfterFirstChunk,
    /// An OpenAI-format answer whose `usage` has no `total_tokens` (thinking reported apart).
    UsageWithoutTotal,
    /// A structured-output request (`json_schema` or `json_object`) answered badly.
    StructuredOutput { answer: BadStructuredOutput },
}

/// How a `structured_output` fault spoils the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadStructuredOutput {
    /// CONTENT, as a provider that ignores `response_format` answers.
    Prose,
    /// The JSON text without its last character.
    Malformed,
    /// Valid JSON of the wrong type: the sampled value inside `[…]`.
    ViolatesSchema,
}

impl BadStructuredOutput {
    const ALL: [(&'static str, BadStructuredOutput); 3] = [
        ("prose", BadStructuredOutput::Prose),
        ("malformed", BadStructuredOutput::Malformed),
        ("violates_schema", BadStructuredOutput::ViolatesSchema),
    ];

    fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, b)| *b == self).map_or("prose", |(n, _)| n)
    }

    /// The spoiled reply (`Json` in, as resolved; anything else is left alone).
    pub fn spoil(self, reply: Reply) -> Reply {
        match (self, reply) {
            (BadStructuredOutput::Prose, Reply::Json(_) | Reply::JsonObject) => Reply::Text,
            (BadStructuredOutput::Malformed, Reply::Json(mut text)) => {
                text.pop();
                Reply::Json(text)
            }
            (BadStructuredOutput::ViolatesSchema, Reply::Json(text)) => Reply::Json(format!("[{text}]")),
            (_, other) => other,
        }
    }
}

/// AI Gateway's own refusals: the gateway, not the provider, says no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AigRefusal {
    SpendLimit,
    RateLimit,
    InsufficientCredits,
    PolicyDenied,
    PromptBlocked,
    DlpBlocked,
    ResponseBlocked,
    GuardrailUnavailable,
}

impl AigRefusal {
    pub const ALL: [AigRefusal; 8] = [
        AigRefusal::SpendLimit,
        AigRefusal::RateLimit,
        AigRefusal::InsufficientCredits,
        AigRefusal::PolicyDenied,
        AigRefusal::PromptBlocked,
        AigRefusal::DlpBlocked,
        AigRefusal::ResponseBlocked,
        AigRefusal::GuardrailUnavailable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AigRefusal::SpendLimit => "spend_limit",
            AigRefusal::RateLimit => "rate_limit",
            AigRefusal::InsufficientCredits => "insufficient_credits",
            AigRefusal::PolicyDenied => "policy_denied",
            AigRefusal::PromptBlocked => "prompt_blocked",
            AigRefusal::DlpBlocked => "dlp_blocked",
            AigRefusal::ResponseBlocked => "response_blocked",
            AigRefusal::GuardrailUnavailable => "guardrail_unavailable",
        }
    }

    /// Status, code and message as AI Gateway sends them. The policy denial's and the DLP
    /// block's codes are not documented: 2050 and 2060 are the simulator's choice.
    pub fn answer(self) -> (u16, u32, &'static str) {
        match self {
            AigRefusal::SpendLimit => (429, 2041, "Spend limit exceeded for this gateway"),
            AigRefusal::RateLimit => (429, 2003, "Rate limited"),
            AigRefusal::InsufficientCredits => (402, 2021, "Insufficient credits"),
            AigRefusal::PolicyDenied => (403, 2050, "Access denied by policy"),
            AigRefusal::PromptBlocked => (424, 2016, "Prompt blocked due to security configurations"),
            AigRefusal::DlpBlocked => (400, 2060, "Request blocked by DLP policy"),
            AigRefusal::ResponseBlocked => (424, 2017, "Response blocked due to security configurations"),
            AigRefusal::GuardrailUnavailable => (503, 7013, "Guardrail service unavailable"),
        }
    }
}

impl Fault {
    /// Reads a fault from its JSON description (`{"kind":"status","status":429,…}`).
    pub fn parse(v: &Value) -> Result<Fault, String> {
        let kind = v.get("kind").and_then(Value::as_str).ok_or("fault.kind must be a string")?;
        Ok(match kind {
            "status" => {
                let status = v
                    .get("status")
                    .and_then(Value::as_u64)
                    .filter(|s| (200..=599).contains(s))
                    .ok_or("fault.status must be an integer between 200 and 599")?;
                let stall = match v.get("stall") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => return Err("fault.stall must be a boolean".into()),
                };
                Fault::Status {
                    status: status as u16,
                    retry_after: retry_after(v)?,
                    body: v.get("body").cloned(),
                    stall,
                }
            }
            "delay" => Fault::Delay {
                ms: v.get("ms").and_then(Value::as_u64).ok_or("fault.ms must be a non-negative integer")?,
            },
            "stall" => Fault::Stall,
            "stall_after_first_chunk" => Fault::StallAfterFirstChunk,
            "cut_before_first_chunk" => Fault::CutBeforeFirstChunk,
            "cut_after_first_chunk" => Fault::CutAfterFirstChunk,
            "malformed" => Fault::Malformed,
            "content_filter" => Fault::ContentFilter,
            "event_after_first_chunk" => Fault::EventAfterFirstChunk {
                data: v.get("data").and_then(Value::as_str).ok_or("fault.data must be a string")?.to_owned(),
            },
            "aig_refusal" => {
                let name = v.get("refusal").and_then(Value::as_str).ok_or("fault.refusal must be a string")?;
                let refusal = AigRefusal::ALL
                    .into_iter()
                    .find(|r| r.name() == name)
                    .ok_or_else(|| format!("unknown fault.refusal `{name}`"))?;
                Fault::AigRefusal { refusal, retry_after: retry_after(v)? }
            }
            "end_before_first_chunk" => Fault::EndBeforeFirstChunk,
            "end_after_first_chunk" => Fault::EndAfterFirstChunk,
            "usage_without_total" => Fault::UsageWithoutTotal,
            "structured_output" => {
                let name = v.get("answer").and_then(Value::as_str).unwrap_or("prose");
                let answer =
                    BadStructuredOutput::ALL.iter().find(|(n, _)| *n == name).map(|(_, b)| *b).ok_or_else(|| {
                        format!("fault.answer must be prose, malformed or violates_schema, not `{name}`")
                    })?;
                Fault::StructuredOutput { answer }
            }
            other => return Err(format!("unknown fault kind `{other}`")),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Status { .. } => "status",
            Fault::Delay { .. } => "delay",
            Fault::Stall => "stall",
            Fault::StallAfterFirstChunk => "stall_after_first_chunk",
            Fault::CutBeforeFirstChunk => "cut_before_first_chunk",
            Fault::CutAfterFirstChunk => "cut_after_first_chunk",
            Fault::Malformed => "malformed",
            Fault::ContentFilter => "content_filter",
            Fault::EventAfterFirstChunk { .. } => "event_after_first_chunk",
            Fault::AigRefusal { .. } => "aig_refusal",
            Fault::EndBeforeFirstChunk => "end_before_first_chunk",
            Fault::EndAfterFirstChunk => "end_after_first_chunk",
            Fault::UsageWithoutTotal => "usage_without_total",
            Fault::StructuredOutput { .. } => "structured_output",
        }
    }

    /// The fault's JSON description, as accepted by [`Fault::parse`].
    pub fn to_json(&self) -> Value {
        match self {
            Fault::Status { status, retry_after, body, stall } => {
                json!({"kind": "status", "status": status, "retry_after": retry_after, "body": body, "stall": stall})
            }
            Fault::Delay { ms } => json!({"kind": "delay", "ms": ms}),
            Fault::EventAfterFirstChunk { data } => json!({"kind": "event_after_first_chunk", "data": data}),
            Fault::AigRefusal { refusal, retry_after } => {
                json!({"kind": "aig_refusal", "refusal": refusal.name(), "retry_after": retry_after})
            }
            Fault::StructuredOutput { answer } => json!({"kind": "structured_output", "answer": answer.name()}),
            other => json!({"kind": other.kind()}),
        }
    }
}

fn retry_after(v: &Value) -> Result<Option<String>, String> {
    let retry_after = match v.get("retry_after") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("fault.retry_after must be a string or number".into()),
    };
    if retry_after.as_deref().is_some_and(|r| hyper::header::HeaderValue::from_str(r).is_err()) {
        return Err("fault.retry_after is not a valid header value".into());
    }
    Ok(retry_after)
}

/// The body of a `status` fault that did not script one: what the upstream would typically say.
/// 529 is Anthropic's "overloaded"; everything else gets an OpenAI-style error object.
pub fn default_status_body(status: u16) -> Value {
    if status == 529 {
        return json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    }
    let (kind, code) = match status {
        429 => ("rate_limit_error", "rate_limited"),
        401 => ("authentication_error", "invalid_api_key"),
        403 => ("permission_error", "forbidden"),
        404 => ("not_found_error", "model_not_found"),
        s if s >= 500 => ("server_error", "server_error"),
        _ => ("invalid_request_error", "invalid_request"),
    };
    json!({"error": {"message": format!("Simulated upstream error {status}"), "type": kind, "code": code}})
}

#[derive(Debug, Clone)]
struct Scripted {
    fault: Fault,
    remaining: u32,
}

/// FIFO queues of scripted faults, one per provider name (plus [`ANY_PROVIDER`]).
#[derive(Debug, Default)]
pub struct FaultQueues {
    queues: HashMap<String, VecDeque<Scripted>>,
}

impl FaultQueues {
    /// Appends `fault`, usable `times` times, to `provider`'s queue; returns the queue length.
    pub fn push(&mut self, provider: &str, times: u32, fault: Fault) -> usize {
        let q = self.queues.entry(provider.to_string()).or_default();
        q.push_back(Scripted { fault, remaining: times });
        q.len()
    }

    /// Consumes one use of the next fault for `provider` (its own queue first, then `*`).
    pub fn take(&mut self, provider: &str) -> Option<Fault> {
        for name in [provider, ANY_PROVIDER] {
            if let Some(q) = self.queues.get_mut(name) {
                if let Some(head) = q.front_mut() {
                    let fault = head.fault.clone();
                    head.remaining = head.remaining.saturating_sub(1);
                    if head.remaining == 0 {
                        q.pop_front();
                    }
                    return Some(fault);
                }
            }
        }
        None
    }

    /// Pending faults: `{provider: [{"times": n, "fault": {...}}]}`.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for (provider, q) in &self.queues {
            if q.is_empty() {
                continue;
            }
            let items: Vec<Value> =
                q.iter().map(|s| json!({"times": s.remaining, "fault": s.fault.to_json()})).collect();
            out.insert(provider.clone(), Value::Array(items));
        }
        Value::Object(out)
    }

    pub fn clear(&mut self) {
        self.queues.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        for kind in [
            "stall",
            "stall_after_first_chunk",
            "cut_before_first_chunk",
            "cut_after_first_chunk",
            "malformed",
            "content_filter",
            "end_before_first_chunk",
            "end_after_first_chunk",
            "usage_without_total",
            "structured_output",
        ] {
            assert_eq!(Fault::parse(&json!({"kind": kind})).unwrap().kind(), kind);
        }
        for name in ["prose", "malformed", "violates_schema"] {
            let f = Fault::parse(&json!({"kind": "structured_output", "answer": name})).unwrap();
            assert_eq!(Fault::parse(&f.to_json()).unwrap(), f);
        }
        assert!(Fault::parse(&json!({"kind": "structured_output", "answer": "nope"})).is_err());
        assert_eq!(
            Fault::parse(&json!({"kind":"status","status":429,"retry_after":2})).unwrap(),
            Fault::Status { status: 429, retry_after: Some("2".into()), body: None, stall: false }
        );
        assert_eq!(
            Fault::parse(&json!({"kind":"status","status":500,"stall":true})).unwrap(),
            Fault::Status { status: 500, retry_after: None, body: None, stall: true }
        );
        assert!(Fault::parse(&json!({"kind":"status","status":500,"stall":"yes"})).is_err());
        assert_eq!(Fault::parse(&json!({"kind":"delay","ms":5})).unwrap(), Fault::Delay { ms: 5 });
        for r in AigRefusal::ALL {
            let f = Fault::parse(&json!({"kind":"aig_refusal","refusal":r.name(),"retry_after":"3"})).unwrap();
            assert_eq!(f, Fault::AigRefusal { refusal: r, retry_after: Some("3".into()) });
            assert_eq!(Fault::parse(&f.to_json()).unwrap(), f);
        }
        let echo = json!({"kind":"event_after_first_chunk","data":"data: {gateway_token}\n\n"});
        assert_eq!(Fault::parse(&echo).unwrap().to_json(), echo);
        for bad in [
            json!({}),
            json!({"kind":"nope"}),
            json!({"kind":"status"}),
            json!({"kind":"status","status":99}),
            json!({"kind":"status","status":429,"retry_after":"a\nb"}),
            json!({"kind":"delay","ms":-1}),
            json!({"kind":"aig_refusal"}),
            json!({"kind":"aig_refusal","refusal":"nope"}),
        ] {
            assert!(Fault::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provider_queue_before_wildcard() {
        let mut q = FaultQueues::default();
        q.push("*", 1, Fault::Stall);
        q.push("openai", 2, Fault::Malformed);
        assert_eq!(q.take("openai"), Some(Fault::Malformed));
        assert_eq!(q.take("anthropic"), Some(Fault::Stall));
        assert_eq!(q.take("openai"), Some(Fault::Malformed));
        assert_eq!(q.take("openai"), None);
    }

    #[test]
    fn spoils_structured_output() {
        let json = || Reply::Json(r#"{"a":1}"#.into());
        assert_eq!(BadStructuredOutput::Prose.spoil(json()), Reply::Text);
        assert_eq!(BadStructuredOutput::Prose.spoil(Reply::JsonObject), Reply::Text);
        assert_eq!(BadStructuredOutput::Malformed.spoil(json()), Reply::Json(r#"{"a":1"#.into()));
        assert_eq!(BadStructuredOutput::ViolatesSchema.spoil(json()), Reply::Json(r#"[{"a":1}]"#.into()));
        assert_eq!(BadStructuredOutput::Malformed.spoil(Reply::Text), Reply::Text);
    }

    #[test]
    fn default_bodies() {
        assert_eq!(default_status_body(429)["error"]["type"], json!("rate_limit_error"));
        assert_eq!(default_status_body(529)["error"]["type"], json!("overloaded_error"));
        assert_eq!(default_status_body(503)["error"]["message"], json!("Simulated upstream error 503"));
    }
}
