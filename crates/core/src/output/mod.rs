//! JSON guaranteed, or a clear error: what a request's `response_format` asks the answer to be,
//! and whether an answer is it.
//!
//! AI Gateway's compat endpoint does not promise to carry `response_format` to every provider
//! (reference §4: the schema not reaching Gemini, prose after a failover, `strict` dropped), so
//! the gateway checks what comes back. An answer that is not what was asked is its own outcome
//! (`invalid_output`): charged what it cost, never given to the caller, and the next target is
//! tried; when no target answers as asked, the request fails with `invalid_output` (502) naming
//! each target and why.
//!
//! | `response_format` | the answer's `choices[0].message.content` must be |
//! |---|---|
//! | `{"type":"json_object"}` | a JSON object |
//! | `{"type":"json_schema","json_schema":{…}}` without `schema` | JSON |
//! | `{"type":"json_schema","json_schema":{"schema":…}}` | JSON valid against the schema (the subset of [`schema`]) |
//! | the same, with a schema the gateway cannot check | JSON (the schema unchecked, and a warning says why) |
//! | `{"type":"text"}`, another type, none | anything (not checked) |
//!
//! `strict` does not change the check: the gateway's promise is the caller's schema, whatever the
//! provider was told. An answer that carries tool calls or a refusal instead of content is not
//! checked (the caller's SDK reads those apart). A streamed answer is held to its end (its
//! commit point is the end of the answer) and checked there, so the same failover holds.

pub mod schema;
mod validate;

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

pub use schema::Schema;
pub use validate::{MAX_CHECK_DEPTH, MAX_CHECK_STEPS};

use crate::error::{ErrorKind, GatewayError};
use validate::Stop;

/// The most bytes of content checked: far past any model's output limit. A longer answer fails
/// its check (it cannot be shown to be what was asked).
pub const MAX_CHECKED_CONTENT_BYTES: usize = 1024 * 1024;

/// What the answer must be.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputContract {
    /// `json_object`: a JSON object.
    JsonObject,
    /// `json_schema` without a schema: JSON.
    Json,
    /// `json_schema`: JSON valid against the schema (but for its keywords not checked).
    Schema(Box<Schema>),
    /// `json_schema` whose schema the gateway cannot check: JSON, and `why` not the schema.
    JsonOnly { why: String },
}

/// Whether an answer is what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// Not what was asked: why (`the answer is not JSON (…)`, `` `$` misses the required property `labels` ``).
    Invalid(String),
    /// Accepted without a check of its schema, which went past the gateway's bounds: why.
    Unchecked(String),
}

#[derive(Deserialize)]
struct FormatProbe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    json_schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct JsonSchemaProbe<'a> {
    #[serde(default, borrow)]
    schema: Option<&'a RawValue>,
}

impl OutputContract {
    /// Reads a request's `response_format` (its raw JSON). `None`: nothing to check. A value
    /// that is not a `response_format` at all is a 400 that says what is wrong.
    pub fn from_response_format(raw: &str) -> Result<Option<OutputContract>, GatewayError> {
        let invalid = |m: &str| GatewayError::new(ErrorKind::InvalidRequest, m);
        if raw.trim() == "null" {
            return Ok(None);
        }
        let format: FormatProbe = crate::json::from_str(raw)
            .map_err(|_| invalid("`response_format` must be an object with a string `type`."))?;
        match format.kind.as_ref() {
            "json_object" => Ok(Some(OutputContract::JsonObject)),
            "json_schema" => {
                let Some(field) = format.json_schema.filter(|f| f.get().trim_start().starts_with('{')) else {
                    return Err(invalid(
                        "`response_format.json_schema` must be an object when `type` is `json_schema`.",
                    ));
                };
                let probe: JsonSchemaProbe = crate::json::from_str(field.get())
                    .map_err(|_| invalid("`response_format.json_schema.schema` must be a JSON Schema."))?;
                match probe.schema.filter(|s| s.get() != "null") {
                    None => Ok(Some(OutputContract::Json)),
                    Some(schema) => Ok(Some(OutputContract::compile(schema.get()))),
                }
            }
            // `text`, and types the gateway does not know: the provider decides.
            _ => Ok(None),
        }
    }

    /// The contract of a `json_schema` whose schema is `text` (its raw JSON), bounded.
    fn compile(text: &str) -> OutputContract {
        if text.len() > schema::MAX_SCHEMA_BYTES {
            let why = format!("the schema is larger than the {} bytes the gateway checks", schema::MAX_SCHEMA_BYTES);
            return OutputContract::JsonOnly { why };
        }
        let compiled = crate::json::from_str::<Value>(text)
            .map_err(|e| format!("the schema could not be read ({e})"))
            .and_then(|value| Schema::compile(&value));
        match compiled {
            Ok(schema) => OutputContract::Schema(Box::new(schema)),
            Err(why) => OutputContract::JsonOnly { why: format!("the schema is not checked: {why}") },
        }
    }

    /// The warning every answer to this request carries, if any: why its schema (or part of
    /// it) is not checked.
    pub fn warning(&self) -> Option<String> {
        match self {
            OutputContract::JsonOnly { why } => Some(format!("response_format: only JSON is checked; {why}")),
            OutputContract::Schema(s) if !s.unchecked_keywords().is_empty() => Some(format!(
                "response_format: the schema's {} not checked",
                s.unchecked_keywords().iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
                    + if s.unchecked_keywords().len() > 1 { " are" } else { " is" }
            )),
            _ => None,
        }
    }

    /// Checks an answer's content: a whole completion's, or a stream's held to its end as its
    /// relay gathered it (`relay::StreamAnswer::content`).
    pub fn check(&self, answer: &AnswerContent<'_>) -> Verdict {
        let content = match &answer.content {
            Some(c) if !c.trim().is_empty() => c,
            // Tool calls or a refusal instead of content are the answer: not content to check.
            _ if answer.tool_calls || answer.refusal => return Verdict::Valid,
            _ => return Verdict::Invalid("the answer has no content".to_owned()),
        };
        if answer.oversized || content.len() > MAX_CHECKED_CONTENT_BYTES {
            return Verdict::Invalid(format!(
                "the answer's content is longer than the {MAX_CHECKED_CONTENT_BYTES} bytes the gateway checks"
            ));
        }
        let value: Value = match crate::json::from_str(content) {
            Ok(value) => value,
            Err(e) => return Verdict::Invalid(format!("the answer is not JSON ({e})")),
        };
        match self {
            OutputContract::JsonObject if !value.is_object() => {
                Verdict::Invalid("the answer is JSON but not an object".to_owned())
            }
            OutputContract::Schema(schema) => match schema.check(&value) {
                Ok(()) => Verdict::Valid,
                Err(Stop::Invalid(why)) => Verdict::Invalid(format!("the answer does not match its schema: {why}")),
                Err(Stop::TooCostly(why)) => {
                    Verdict::Unchecked(format!("response_format: the answer's schema was not checked: {why}"))
                }
            },
            _ => Verdict::Valid,
        }
    }

    /// Checks a whole (non-streamed) chat completion.
    pub fn check_completion(&self, body: &[u8]) -> Verdict {
        self.check(&AnswerContent::of_completion(body))
    }
}

/// What an answer said, as far as its format goes: its first choice's content, and whether it
/// made tool calls or refused instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerContent<'a> {
    pub content: Option<Cow<'a, str>>,
    pub tool_calls: bool,
    pub refusal: bool,
    /// The content was longer than the gateway keeps.
    pub oversized: bool,
}

#[derive(Deserialize)]
struct CompletionProbe<'a> {
    #[serde(default, borrow)]
    choices: Vec<ChoiceProbe<'a>>,
}

#[derive(Deserialize)]
struct ChoiceProbe<'a> {
    #[serde(default, borrow)]
    message: Option<MessageProbe<'a>>,
}

#[derive(Deserialize)]
struct MessageProbe<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<&'a RawValue>,
}

/// A present, non-empty value: not `null`, `""` or `[]`.
fn present(raw: Option<&RawValue>) -> bool {
    raw.is_some_and(|r| !matches!(r.get().trim(), "null" | "\"\"" | "[]"))
}

impl<'a> AnswerContent<'a> {
    /// The first choice of a chat completion (a body that is not one has no content).
    pub fn of_completion(body: &'a [u8]) -> AnswerContent<'a> {
        let Ok(probe) = serde_json::from_slice::<CompletionProbe>(body) else { return AnswerContent::default() };
        let Some(message) = probe.choices.into_iter().next().and_then(|c| c.message) else {
            return AnswerContent::default();
        };
        let content = message.content.and_then(|raw| crate::json::from_str::<Cow<'a, str>>(raw.get()).ok());
        AnswerContent {
            content,
            tool_calls: present(message.tool_calls),
            refusal: present(message.refusal),
            oversized: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract(format: &str) -> OutputContract {
        OutputContract::from_response_format(format).unwrap().unwrap()
    }

    fn completion(content: &str) -> Vec<u8> {
        serde_json::to_vec(
            &serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}),
        )
        .unwrap()
    }

    const LABELS: &str = r#"{"type":"json_schema","json_schema":{"name":"labels","strict":true,"schema":{"type":"object","properties":{"labels":{"type":"array","items":{"type":"string"}}},"required":["labels"],"additionalProperties":false}}}"#;

    #[test]
    fn response_formats_read_into_contracts() {
        assert_eq!(OutputContract::from_response_format("null").unwrap(), None);
        assert_eq!(OutputContract::from_response_format(r#"{"type":"text"}"#).unwrap(), None);
        assert_eq!(OutputContract::from_response_format(r#"{"type":"grammar","grammar":"x"}"#).unwrap(), None);
        assert_eq!(contract(r#"{"type":"json_object"}"#), OutputContract::JsonObject);
        assert_eq!(contract(r#"{"type":"json_schema","json_schema":{"name":"x"}}"#), OutputContract::Json);
        assert!(matches!(contract(LABELS), OutputContract::Schema(_)));
        for bad in [
            "1",
            "\"json_object\"",
            "{}",
            r#"{"type":7}"#,
            r#"{"type":"json_schema"}"#,
            r#"{"type":"json_schema","json_schema":[1]}"#,
        ] {
            let err = OutputContract::from_response_format(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn schemas_the_gateway_cannot_check_are_accepted_with_a_warning() {
        let c = contract(
            r#"{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","not":{"required":["a"]}}}}"#,
        );
        assert!(matches!(&c, OutputContract::JsonOnly { why } if why.contains("`#/not`")), "{c:?}");
        assert!(c.warning().unwrap().contains("only JSON is checked"));
        assert_eq!(c.check_completion(&completion("{\"a\":1}")), Verdict::Valid);
        assert!(matches!(c.check_completion(&completion("sure!")), Verdict::Invalid(_)));
        let huge = format!(
            r#"{{"type":"json_schema","json_schema":{{"name":"x","schema":{{"description":"{}"}}}}}}"#,
            "x".repeat(schema::MAX_SCHEMA_BYTES)
        );
        assert!(contract(&huge).warning().unwrap().contains("larger than"));
        let pattern = contract(
            r#"{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"^a","format":"email"}}}"#,
        );
        assert_eq!(pattern.warning().unwrap(), "response_format: the schema's `format` and `pattern` are not checked");
        assert_eq!(pattern.check_completion(&completion("\"zzz\"")), Verdict::Valid);
    }

    #[test]
    fn answers_are_checked_as_asked() {
        let labels = contract(LABELS);
        assert_eq!(labels.check_completion(&completion(r#"{"labels":["bug"]}"#)), Verdict::Valid);
        let Verdict::Invalid(why) = labels.check_completion(&completion("Here are the labels: bug")) else { panic!() };
        assert!(why.starts_with("the answer is not JSON"), "{why}");
        let Verdict::Invalid(why) = labels.check_completion(&completion(r#"{"label":"bug"}"#)) else { panic!() };
        assert_eq!(why, "the answer does not match its schema: `$` misses the required property `labels`");
        let fenced = "```json\n{\"labels\":[]}\n```";
        assert!(matches!(labels.check_completion(&completion(fenced)), Verdict::Invalid(_)));
        let object = contract(r#"{"type":"json_object"}"#);
        assert_eq!(object.check_completion(&completion(" {\"a\": 1}\n")), Verdict::Valid);
        assert_eq!(
            object.check_completion(&completion("[1]")),
            Verdict::Invalid("the answer is JSON but not an object".into())
        );
        assert_eq!(object.check_completion(&completion("")), Verdict::Invalid("the answer has no content".into()));
        assert_eq!(object.check_completion(b"not a completion"), Verdict::Invalid("the answer has no content".into()));
        // Tool calls or a refusal instead of content are not checked.
        let tools = br#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#;
        assert_eq!(labels.check_completion(tools), Verdict::Valid);
        let refusal = br#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."}}]}"#;
        assert_eq!(labels.check_completion(refusal), Verdict::Valid);
        // Content beyond what the gateway checks fails its check.
        let long = format!("\"{}\"", "a".repeat(MAX_CHECKED_CONTENT_BYTES));
        assert!(
            matches!(contract(r#"{"type":"json_schema","json_schema":{"name":"x"}}"#).check_completion(&completion(&long)), Verdict::Invalid(w) if w.contains("longer"))
        );
        // An answer nested past serde_json's own limit is not JSON the gateway can read.
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(object.check_completion(&completion(&deep)), Verdict::Invalid(w) if w.contains("not JSON")));
    }
}
