//! Reading a chat request without owning it, and rewriting only what the gateway must change.
//!
//! The agent's request body is forwarded byte for byte, except for `model` (rewritten to the
//! target's `provider/model`) and, for streams, `stream_options.include_usage` (forced on so the
//! final usage is known). Only the top-level fields the gateway needs are read; every other value
//! stays an unparsed `RawValue` slice of the input, so a 32 KB prompt is scanned once and never
//! copied into a tree.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ErrorKind, GatewayError};
use crate::json::edit::{members, Edits};
use crate::output::OutputContract;
use crate::tools::{contains_token, ToolFamily, ToolHistory};

/// The fields of a chat completion request the gateway acts on, with where they sit in the body.
#[derive(Debug)]
pub struct ChatRequest<'a> {
    body: &'a [u8],
    pub model: Cow<'a, str>,
    pub stream: bool,
    /// Whether the caller itself asked for the usage chunk.
    pub include_usage: bool,
    /// `max_completion_tokens`, or else `max_tokens`.
    pub max_output_tokens: Option<u64>,
    /// Byte length of `messages`: the prompt's size, cheap to have.
    pub messages_bytes: usize,
    /// Byte length of `tools` and `functions` (they count as prompt tokens too).
    pub tools_bytes: usize,
    /// What `response_format` asks the answer to be, when it asks for JSON (read only when the
    /// field is there: [`crate::output`]).
    pub response_format: Option<OutputContract>,
    model_span: Range<usize>,
    stream_options_span: Option<Range<usize>>,
    /// Where a `max_tokens: null` / `max_completion_tokens: null` sits: a limit the gateway sets
    /// replaces it in place rather than adding a second key.
    null_limit_spans: Vec<(&'static str, Range<usize>)>,
    /// Offset of the top-level object's closing `}`.
    close_brace: usize,
    /// The tool calls and results of `messages`, when it has any (read once, here).
    tool_history: Option<ToolHistory<'a>>,
}

impl<'a> ChatRequest<'a> {
    /// Parses the top level of a chat request. Fails with a 400 that says what is wrong.
    pub fn parse(body: &'a [u8]) -> Result<Self, GatewayError> {
        let text = std::str::from_utf8(body).map_err(|_| invalid_json("The request body is not valid UTF-8."))?;
        let fields = TopLevel::parse(text)?;

        let mut model = None;
        let mut stream = false;
        let mut include_usage = false;
        let mut max_tokens = None;
        let mut max_completion_tokens = None;
        let mut messages_bytes = None;
        let mut tools_bytes = 0;
        let mut stream_options_span = None;
        let mut null_limit_spans = Vec::new();
        let mut tool_history = None;
        let mut response_format = None;

        for (key, raw) in &fields.entries {
            let value = raw.get();
            match key.as_ref() {
                "model" => {
                    let name: Cow<'a, str> = parse_field(value, "model", "a string")?;
                    model = Some((name, span_of(text, value)));
                }
                "stream" => stream = parse_field::<Option<bool>>(value, "stream", "a boolean")?.unwrap_or(false),
                "stream_options" => {
                    let opts: Option<StreamOptions> = parse_field(value, "stream_options", "an object")?;
                    include_usage = opts.and_then(|o| o.include_usage).unwrap_or(false);
                    // Kept even when `null`: the rewrite replaces it in place, never appends a
                    // second `stream_options` that parsers could read either way.
                    stream_options_span = Some(span_of(text, value));
                }
                "max_tokens" => {
                    max_tokens = parse_field(value, "max_tokens", "a non-negative integer")?;
                    if max_tokens.is_none() {
                        null_limit_spans.push((MAX_TOKENS, span_of(text, value)));
                    }
                }
                "max_completion_tokens" => {
                    max_completion_tokens = parse_field(value, "max_completion_tokens", "a non-negative integer")?;
                    if max_completion_tokens.is_none() {
                        null_limit_spans.push((MAX_COMPLETION_TOKENS, span_of(text, value)));
                    }
                }
                "tools" | "functions" if value != "null" && value != "[]" => tools_bytes += value.len(),
                "response_format" => response_format = OutputContract::from_response_format(value)?,
                "messages" => {
                    let trimmed = value.trim_start();
                    if !trimmed.starts_with('[') || trimmed[1..].trim_start().starts_with(']') {
                        return Err(invalid_request("`messages` must be a non-empty array."));
                    }
                    messages_bytes = Some(value.len());
                    // Only a history that mentions tools is read further: a plain chat pays
                    // one scan of its bytes for this, and no parse.
                    let bytes = value.as_bytes();
                    if contains_token(bytes, b"\"tool") || contains_token(bytes, b"\"extra_content\"") {
                        tool_history = ToolHistory::read(body, raw)?;
                    }
                }
                _ => {}
            }
        }

        let (model, model_span) = model
            .ok_or_else(|| invalid_request("`model` is required: an alias such as `triage`, or `provider/model`."))?;
        if model.trim().is_empty() {
            return Err(invalid_request("`model` must not be empty."));
        }
        let messages_bytes = messages_bytes.ok_or_else(|| invalid_request("`messages` is required."))?;

        Ok(ChatRequest {
            body,
            model,
            stream,
            include_usage,
            max_output_tokens: max_completion_tokens.or(max_tokens),
            messages_bytes,
            tools_bytes,
            response_format,
            model_span,
            stream_options_span,
            null_limit_spans,
            close_brace: fields.close_brace,
            tool_history,
        })
    }

    /// The request's tool history, when its messages have tool calls or results: the shell asks
    /// it which calls' signatures to look up ([`ToolHistory::unsigned_first_calls`]).
    pub fn tool_history(&self) -> Option<&ToolHistory<'a>> {
        self.tool_history.as_ref()
    }

    /// Whether the request offers tools (for routing rules).
    pub fn has_tools(&self) -> bool {
        self.tools_bytes > 0
    }

    /// Estimated prompt tokens: prompt bytes / `bytes_per_token`, rounded up. A tokenizer-free
    /// estimate; with 3 bytes per token it over-counts English and code a little, the safe side
    /// for routing by size and for reserving budget.
    pub fn estimated_prompt_tokens(&self, bytes_per_token: u64) -> u64 {
        ((self.messages_bytes + self.tools_bytes) as u64).div_ceil(bytes_per_token.max(1))
    }

    /// The body to send upstream: the original bytes with `model` replaced and, for a stream,
    /// `stream_options.include_usage` set.
    pub fn rewrite(&self, upstream_model: &str) -> Vec<u8> {
        self.rewrite_bounded(upstream_model, None)
    }

    /// [`rewrite`](Self::rewrite), and when the caller set no output limit, `limit` set (so the
    /// worst case reserved for the attempt is a real bound). A caller's own limit, larger or
    /// smaller, is never touched. A `null` limit is replaced in place (keeping the caller's key);
    /// otherwise the field the target accepts is added. The tool history is sent as it came.
    pub fn rewrite_bounded(&self, upstream_model: &str, limit: Option<OutputLimit>) -> Vec<u8> {
        self.edits(upstream_model, limit).apply(self.body)
    }

    /// The body for one attempt on a target of `family`: [`rewrite_bounded`](Self::rewrite_bounded)
    /// and, in the same one pass, the tool history made acceptable to that target
    /// ([`ToolHistory::edits`]; `signature_of` is the caller's signature memory). Called before
    /// each attempt, so a failover re-derives it for the next target. A request without tool
    /// history costs nothing more than `rewrite_bounded`.
    pub fn rewrite_for(
        &self,
        upstream_model: &str,
        limit: Option<OutputLimit>,
        family: ToolFamily,
        signature_of: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<u8> {
        let mut edits = self.edits(upstream_model, limit);
        if let Some(history) = &self.tool_history {
            history.edits(self.body, family, signature_of, &mut edits);
        }
        edits.apply(self.body)
    }

    fn edits(&self, upstream_model: &str, limit: Option<OutputLimit>) -> Edits {
        let mut edits = Edits::new();
        edits.replace(self.model_span.clone(), serde_json::to_string(upstream_model).unwrap_or_default());
        if let (Some(limit), None) = (limit, self.max_output_tokens) {
            let in_place =
                self.null_limit_spans.iter().find(|(k, _)| *k == limit.field).or_else(|| self.null_limit_spans.first());
            match in_place {
                Some((_, span)) => edits.replace(span.clone(), limit.tokens.to_string()),
                None => edits.insert(self.close_brace, format!(",\"{}\":{}", limit.field, limit.tokens)),
            }
        }
        if self.stream && !self.include_usage {
            match &self.stream_options_span {
                Some(span) => edits.replace(span.clone(), self.stream_options_with_usage(span.clone())),
                None => edits.insert(self.close_brace, ",\"stream_options\":{\"include_usage\":true}"),
            }
        }
        edits
    }

    /// `stream_options` as given, with `include_usage` forced to `true` and other keys kept.
    fn stream_options_with_usage(&self, span: Range<usize>) -> String {
        let original = std::str::from_utf8(&self.body[span]).unwrap_or("{}");
        let mut out = String::from("{\"include_usage\":true");
        if let Ok(entries) = crate::json::from_str::<Vec<(String, Box<RawValue>)>>(&object_as_pairs(original)) {
            for (k, v) in entries.iter().filter(|(k, _)| k != "include_usage") {
                out.push(',');
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                out.push_str(v.get());
            }
        }
        out.push('}');
        out
    }
}

const MAX_TOKENS: &str = "max_tokens";
const MAX_COMPLETION_TOKENS: &str = "max_completion_tokens";

/// An output limit the gateway sets on a request that has none: how many tokens, in which field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimit {
    pub field: &'static str,
    pub tokens: u64,
}

impl OutputLimit {
    /// `tokens` in the field `provider/model` accepts: OpenAI's reasoning models (the o1, o3,
    /// o4 and gpt-5 families, on OpenAI or Azure OpenAI) refuse `max_tokens` and take
    /// `max_completion_tokens`; everything else (AI Gateway's compat endpoint translates it for
    /// the other providers) takes `max_tokens`.
    pub fn for_target(provider: &str, model: &str, tokens: u64) -> OutputLimit {
        let field = if is_openai_reasoning(provider, model) { MAX_COMPLETION_TOKENS } else { MAX_TOKENS };
        OutputLimit { field, tokens }
    }
}

fn is_openai_reasoning(provider: &str, model: &str) -> bool {
    if !matches!(provider, "openai" | "azure-openai") {
        return false;
    }
    // A fine-tune is `ft:<base>:…`. (An Azure deployment named otherwise cannot be told apart.)
    let model = model.to_ascii_lowercase();
    let model = model.strip_prefix("ft:").unwrap_or(&model);
    ["o1", "o3", "o4", "gpt-5"]
        .iter()
        .any(|f| model.strip_prefix(f).is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', ':'])))
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

/// Re-expresses a JSON object as an array of `[key, value]` pairs so serde can read it as a Vec
/// without a map type (keeps key order, costs nothing for the 1–2 keys `stream_options` has).
fn object_as_pairs(object: &str) -> String {
    match TopLevel::parse(object) {
        Ok(top) => {
            let mut s = String::from("[");
            for (i, (k, v)) in top.entries.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push('[');
                s.push_str(&serde_json::to_string(k.as_ref()).unwrap_or_default());
                s.push(',');
                s.push_str(v.get());
                s.push(']');
            }
            s.push(']');
            s
        }
        Err(_) => String::from("[]"),
    }
}

/// The top-level members of a JSON object, each value left unparsed, in order.
struct TopLevel<'a> {
    entries: Vec<(Cow<'a, str>, &'a RawValue)>,
    close_brace: usize,
}

impl<'a> TopLevel<'a> {
    fn parse(text: &'a str) -> Result<Self, GatewayError> {
        // Duplicate keys are ambiguous: parsers disagree on which one wins, so the gateway could
        // route on one `model` while AI Gateway bills another. `members` refuses them.
        let entries = members(text).map_err(|e| {
            if e.is_data() && e.to_string().starts_with("duplicate key") {
                invalid_request(&format!("The request body has a {e}."))
            } else if e.is_data() {
                invalid_json("The request body must be a JSON object.")
            } else {
                invalid_json(&format!("The request body is not valid JSON: {e}."))
            }
        })?;
        let close_brace = text.trim_end().len() - 1;
        Ok(TopLevel { entries, close_brace })
    }
}

/// Where a `RawValue` (a slice of `text`) sits in `text`.
fn span_of(text: &str, value: &str) -> Range<usize> {
    let start = value.as_ptr() as usize - text.as_ptr() as usize;
    start..start + value.len()
}

fn parse_field<'a, T: Deserialize<'a>>(value: &'a str, name: &str, expected: &str) -> Result<T, GatewayError> {
    crate::json::from_str(value).map_err(|_| invalid_request(&format!("`{name}` must be {expected}.")))
}

fn invalid_json(message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidJson, message)
}

fn invalid_request(message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(body: &str) -> Result<ChatRequest<'_>, GatewayError> {
        ChatRequest::parse(body.as_bytes())
    }

    #[test]
    fn reads_the_fields_it_needs() {
        let body = r#"{"model":"triage","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":64}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.model, "triage");
        assert!(r.stream);
        assert!(!r.include_usage);
        assert_eq!(r.max_output_tokens, Some(64));
        assert_eq!(r.messages_bytes, r#"[{"role":"user","content":"hi"}]"#.len());
    }

    #[test]
    fn estimates_the_prompt_and_sees_tools() {
        let r = parse(r#"{"model":"m","messages":[{"content":"123456789"}],"tools":[{"type":"function"}]}"#).unwrap();
        assert!(r.has_tools());
        let bytes = r#"[{"content":"123456789"}]"#.len() + r#"[{"type":"function"}]"#.len();
        assert_eq!(r.estimated_prompt_tokens(3), (bytes as u64).div_ceil(3));
        let r = parse(r#"{"model":"m","messages":[1],"tools":[],"functions":null}"#).unwrap();
        assert!(!r.has_tools());
    }

    #[test]
    fn response_format_is_read_only_when_it_asks_for_json() {
        assert_eq!(parse(r#"{"model":"m","messages":[1]}"#).unwrap().response_format, None);
        assert_eq!(
            parse(r#"{"model":"m","messages":[1],"response_format":{"type":"text"}}"#).unwrap().response_format,
            None
        );
        let r = parse(r#"{"model":"m","messages":[1],"response_format":{"type":"json_object"}}"#).unwrap();
        assert_eq!(r.response_format, Some(OutputContract::JsonObject));
        let err = parse(r#"{"model":"m","messages":[1],"response_format":"json"}"#).unwrap_err();
        assert!(err.message.contains("`response_format`"), "{}", err.message);
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let r = parse(r#"{"model":"m","messages":[1],"max_tokens":10,"max_completion_tokens":20}"#).unwrap();
        assert_eq!(r.max_output_tokens, Some(20));
    }

    #[test]
    fn rewrite_changes_only_model_for_non_streams() {
        let body = r#"{ "temperature" : 0.2, "model" : "triage", "messages":[{"role":"user","content":"h\u00e9"}], "x":{"model":"keep"} }"#;
        let out = parse(body).unwrap().rewrite("google-ai-studio/gemini-2.5-flash");
        let expected = body.replace(r#""model" : "triage""#, r#""model" : "google-ai-studio/gemini-2.5-flash""#);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn rewrite_adds_include_usage_to_streams() {
        let body = r#"{"model":"triage","messages":[{"role":"user","content":"hi"}],"stream":true}"#;
        let out = parse(body).unwrap().rewrite("openai/gpt-4o-mini");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["model"], "openai/gpt-4o-mini");
        assert_eq!(v["stream_options"], json!({"include_usage": true}));
        assert_eq!(v["messages"], json!([{"role":"user","content":"hi"}]));
        // Everything before the insertion is byte-identical.
        assert!(String::from_utf8(out).unwrap().starts_with(r#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options""#));
    }

    #[test]
    fn rewrite_keeps_other_stream_options() {
        let body =
            r#"{"model":"triage","messages":[1],"stream":true,"stream_options":{"include_usage":false,"x":[1,2]}}"#;
        let v: Value = serde_json::from_slice(&parse(body).unwrap().rewrite("a/b")).unwrap();
        assert_eq!(v["stream_options"], json!({"include_usage": true, "x": [1, 2]}));
    }

    #[test]
    fn rewrite_leaves_stream_options_alone_when_usage_already_asked() {
        let body = r#"{"model":"triage","messages":[1],"stream":true,"stream_options":{"include_usage":true}}"#;
        let r = parse(body).unwrap();
        assert!(r.include_usage);
        assert_eq!(String::from_utf8(r.rewrite("a/b")).unwrap(), body.replace("\"triage\"", "\"a/b\""));
    }

    #[test]
    fn model_with_escapes_is_read_and_replaced_whole() {
        let body = r#"{"model":"tri\u0061ge","messages":[1]}"#;
        let r = parse(body).unwrap();
        assert_eq!(r.model, "triage");
        assert_eq!(String::from_utf8(r.rewrite("a/b")).unwrap(), r#"{"model":"a/b","messages":[1]}"#);
    }

    #[test]
    fn rejects_bad_bodies_with_clear_errors() {
        let cases: &[(&str, ErrorKind, &str)] = &[
            ("", ErrorKind::InvalidJson, "not valid JSON"),
            ("{", ErrorKind::InvalidJson, "not valid JSON"),
            ("[1,2]", ErrorKind::InvalidJson, "JSON object"),
            ("\"model\"", ErrorKind::InvalidJson, "JSON object"),
            (r#"{"model":"a"} x"#, ErrorKind::InvalidJson, "not valid JSON"),
            (r#"{"messages":[1]}"#, ErrorKind::InvalidRequest, "`model` is required"),
            (r#"{"model":"","messages":[1]}"#, ErrorKind::InvalidRequest, "must not be empty"),
            (r#"{"model":7,"messages":[1]}"#, ErrorKind::InvalidRequest, "`model` must be a string"),
            (r#"{"model":"a"}"#, ErrorKind::InvalidRequest, "`messages` is required"),
            (r#"{"model":"a","messages":[]}"#, ErrorKind::InvalidRequest, "non-empty array"),
            (r#"{"model":"a","messages":{}}"#, ErrorKind::InvalidRequest, "non-empty array"),
            (r#"{"model":"a","messages":[1],"stream":"yes"}"#, ErrorKind::InvalidRequest, "`stream` must be a boolean"),
            (r#"{"model":"a","messages":[1],"max_tokens":-1}"#, ErrorKind::InvalidRequest, "`max_tokens`"),
            (r#"{"model":"a","model":"b","messages":[1]}"#, ErrorKind::InvalidRequest, "duplicate key `model`"),
        ];
        for (body, kind, needle) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.kind, *kind, "{body}: {}", err.message);
            assert!(err.message.contains(needle), "{body}: {}", err.message);
        }
        let err = ChatRequest::parse(&[0x7b, 0xff, 0x7d]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidJson);
    }

    #[test]
    fn null_stream_fields_are_defaults() {
        let r = parse(r#"{"model":"a","messages":[1],"stream":null,"stream_options":null}"#).unwrap();
        assert!(!r.stream);
        assert!(!r.include_usage);
    }

    #[test]
    fn null_stream_options_are_replaced_not_duplicated() {
        let body = r#"{"stream_options":null,"model":"a","messages":[1],"stream":true}"#;
        let out = parse(body).unwrap().rewrite("x/y");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"stream_options":{"include_usage":true},"model":"x/y","messages":[1],"stream":true}"#
        );
    }

    #[test]
    fn trailing_whitespace_is_fine_for_insertion() {
        let body = "{\"model\":\"a\",\"messages\":[1],\"stream\":true}\n  ";
        let v: Value = serde_json::from_slice(&parse(body).unwrap().rewrite("x/y")).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn a_missing_output_limit_is_set_in_the_field_the_target_takes() {
        let limit = |p, m| Some(OutputLimit::for_target(p, m, 777));
        let body = r#"{"model":"triage","messages":[1]}"#;
        let out = |b: &str, l| String::from_utf8(parse(b).unwrap().rewrite_bounded("x/y", l)).unwrap();
        assert_eq!(out(body, limit("openai", "gpt-4o")), r#"{"model":"x/y","messages":[1],"max_tokens":777}"#);
        assert_eq!(
            out(body, limit("anthropic", "claude-sonnet-4-5")),
            r#"{"model":"x/y","messages":[1],"max_tokens":777}"#
        );
        for m in ["o1", "o3-mini", "o4-mini-2025-04-16", "gpt-5", "gpt-5-mini", "gpt-5.1", "ft:o4-mini:org::x"] {
            assert_eq!(
                out(body, limit("openai", m)),
                r#"{"model":"x/y","messages":[1],"max_completion_tokens":777}"#,
                "{m}"
            );
        }
        for m in ["gpt-4o", "gpt-4.1", "o10", "gpt-50", "omni"] {
            assert_eq!(OutputLimit::for_target("openai", m, 1).field, "max_tokens", "{m}");
        }
        assert_eq!(OutputLimit::for_target("azure-openai", "o3", 1).field, "max_completion_tokens");
        assert_eq!(OutputLimit::for_target("google-ai-studio", "o3", 1).field, "max_tokens");
        // The caller's own limit, larger or smaller, is kept as given.
        for b in [
            r#"{"model":"t","messages":[1],"max_tokens":99999}"#,
            r#"{"model":"t","max_completion_tokens":5,"messages":[1]}"#,
        ] {
            assert_eq!(out(b, limit("openai", "o3")), b.replace("\"t\"", "\"x/y\""));
        }
        // A null limit is replaced in place; a stream gets both its usage and the limit.
        assert_eq!(
            out(r#"{"model":"t","max_tokens":null,"messages":[1]}"#, limit("openai", "o3")),
            r#"{"model":"x/y","max_tokens":777,"messages":[1]}"#
        );
        assert_eq!(
            out(r#"{"model":"t","messages":[1],"stream":true}"#, limit("openai", "gpt-4o")),
            r#"{"model":"x/y","messages":[1],"stream":true,"max_tokens":777,"stream_options":{"include_usage":true}}"#
        );
        assert_eq!(out(body, None), r#"{"model":"x/y","messages":[1]}"#);
    }
}

/// The tool history as the request reads it and each target is sent it.
#[cfg(test)]
#[path = "tool_history_tests.rs"]
mod tool_history_tests;
