//! Wire formats of the simulated upstreams.
//!
//! Each format reads its request into a [`ChatRequest`] (the conversation plus the few knobs the
//! simulated model honours) and renders an [`Answer`] as a whole body or as a [`StreamPlan`].
//! The OpenAI format is shared by the compat endpoint, the REST endpoint and the `openai` and
//! `workers-ai` native routes; Anthropic Messages and Gemini have their own modules.

pub mod anthropic;
pub mod converse;
pub mod gemini;
pub mod openai;

use serde_json::Value;

use crate::answer::{Answer, Conversation, Reply};
use crate::dialect::history::Turn;
use crate::stream::StreamPlan;

/// What a request asks of the simulated model, whatever its wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRequest {
    /// The `model` field of the body (for Gemini: the model in the path).
    pub model: String,
    pub conv: Conversation,
    pub stream: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// `max_tokens` / `max_completion_tokens` / `maxOutputTokens`.
    pub max_tokens: Option<u64>,
    /// Text, structured output or function calls (only the OpenAI format asks for the latter two).
    pub reply: Reply,
    /// The replayed tool-call history (OpenAI format only; empty for the others).
    pub history: Vec<Turn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenAi,
    Anthropic,
    /// Gemini `generateContent`; streams are SSE with `?alt=sse`, otherwise a JSON array.
    Gemini {
        sse: bool,
    },
    /// AWS Bedrock Converse (never streamed here).
    Converse,
}

/// A 200 body that is not JSON, for the `malformed` fault on non-streamed answers.
pub const MALFORMED_BODY: &str = r#"{"id":"x","choices":[{"message":{"content":"bro"#;

impl Format {
    /// The response id in this format's style, from a fresh number.
    pub fn answer_id(self, n: u64) -> String {
        match self {
            Format::OpenAi => format!("chatcmpl-{n}"),
            Format::Anthropic => format!("msg_sim{n:06}"),
            Format::Gemini { .. } => format!("sim-{n}"),
            Format::Converse => format!("bedrock-{n}"),
        }
    }

    /// The whole (non-streamed) answer body; `style` only shapes the OpenAI format.
    pub fn full_body(self, answer: &Answer, style: openai::Style) -> Value {
        match self {
            Format::OpenAi => openai::completion(answer, style),
            Format::Anthropic => anthropic::message(answer),
            Format::Gemini { .. } => gemini::response(answer),
            Format::Converse => converse::response(answer),
        }
    }

    /// The streamed answer.
    pub fn stream_plan(self, answer: &Answer, include_usage: bool, style: openai::Style) -> StreamPlan {
        match self {
            Format::OpenAi => openai::stream_plan(answer, include_usage, style),
            Format::Anthropic => anthropic::stream_plan(answer),
            Format::Gemini { sse } => gemini::stream_plan(answer, sse),
            // Converse requests never stream (see `converse::parse_request`).
            Format::Converse => StreamPlan::split_body(converse::response(answer).to_string().as_bytes()),
        }
    }

    pub fn stream_content_type(self) -> &'static str {
        match self {
            Format::Gemini { sse: false } | Format::Converse => "application/json",
            _ => "text/event-stream",
        }
    }
}

/// Text of a message `content` that is either a string or an array of parts; text parts
/// (`{"type":"text","text":…}`) are joined with a single space and other parts (images,
/// tool results, …) are ignored. `null`/absent is empty text.
pub(crate) fn content_text(content: Option<&Value>, what: &str) -> Result<String, String> {
    match content {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for part in parts {
                let obj = part.as_object().ok_or_else(|| format!("{what}: every content part must be an object"))?;
                if obj.get("type").and_then(Value::as_str) == Some("text") {
                    let text = obj
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{what}: a text part needs a string `text`"))?;
                    texts.push(text);
                }
            }
            Ok(texts.join(" "))
        }
        Some(_) => Err(format!("{what}: content must be a string or an array")),
    }
}

/// A positive integer field, if present.
pub(crate) fn positive_int(body: &Value, field: &str) -> Result<Option<u64>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!("{field} must be a positive integer")),
        },
    }
}

/// A boolean field, `false` when absent.
pub(crate) fn flag(body: &Value, field: &str) -> Result<bool, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{field} must be a boolean")),
    }
}

/// Server-sent event framing: `data: …\n\n`, or with an `event:` line.
pub(crate) fn sse(event: Option<&str>, data: &str) -> bytes::Bytes {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n").into(),
        None => format!("data: {data}\n\n").into(),
    }
}
