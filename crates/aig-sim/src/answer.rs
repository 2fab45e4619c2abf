//! The simulated model: deterministic answers and token counts, the same for every wire format.
//!
//! * CONTENT = `Simulated answer from {provider}/{model}: {text of the last user message}`.
//! * Prompt tokens P = Σ over messages of (⌈chars(text)/4⌉ + 4), chars counted as Unicode scalar
//!   values (roughly OpenAI's "4 characters per token" rule plus a per-message overhead).
//! * Completion tokens C = number of whitespace-separated words in CONTENT.
//! * A `max_tokens`-style limit smaller than C keeps the first `limit` words and reports the
//!   finish reason "length" (`max_tokens` for Anthropic, `MAX_TOKENS` for Gemini).
//! * Reasoning tokens R: 0 here; models that think get theirs from [`crate::dialect`].
//!
//! Content is kept as "pieces", one per word with the whitespace that preceded it, so a stream
//! that sends one piece per event concatenates back to CONTENT byte for byte.
//!
//! Some requests get another kind of [`Reply`] (read by the OpenAI format only):
//! * with `tools`, the model calls one or more functions; their arguments are [`sample`]d from
//!   each function's `parameters` schema and stand where CONTENT would (pieces, C, the stream);
//! * with a `json_schema` response format, CONTENT is a JSON value sampled from that schema;
//!   with `json_object`, it is `{"answer": CONTENT}`.

use serde_json::{json, Map, Value};

/// The text of a conversation, reduced to what the simulated model looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// The text of every message (system included), in order; only used for token counting.
    pub texts: Vec<String>,
    /// Text of the last message whose role is the user's.
    pub last_user: String,
}

/// What kind of answer a request asks the simulated model for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reply {
    /// CONTENT, the text answer.
    #[default]
    Text,
    /// A JSON text (structured output) instead of CONTENT.
    Json(String),
    /// `{"answer": CONTENT}` as JSON text (the `json_object` response format).
    JsonObject,
    /// Calls of these functions, in this order (several: parallel calls in one step).
    Calls(Vec<PlannedCall>),
}

impl Reply {
    /// The reply with `JsonObject` turned into its JSON text, for `provider`/`model`.
    pub fn resolve(self, provider: &str, model: &str, conv: &Conversation) -> Reply {
        match self {
            Reply::JsonObject => Reply::Json(json!({"answer": content(provider, model, conv)}).to_string()),
            other => other,
        }
    }

    /// Whether the reply is structured output (what a `structured_output` fault spoils).
    pub fn is_json(&self) -> bool {
        matches!(self, Reply::Json(_) | Reply::JsonObject)
    }
}

/// A function the model decided to call, before the upstream gives it an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCall {
    pub name: String,
    /// A JSON object as compact text.
    pub arguments: String,
}

/// One function call of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// Set by the upstream's dialect (`call_sim…`, `function-call-…`, or empty).
    pub id: String,
    pub name: String,
    /// The arguments text split like CONTENT (one piece per word).
    pub pieces: Vec<String>,
    /// A Gemini 3 thought signature, carried by the first call of a step only.
    pub signature: Option<String>,
}

impl ToolCall {
    pub fn arguments(&self) -> String {
        self.pieces.concat()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Natural end.
    Stop,
    /// Cut at the caller's token limit.
    Length,
    /// Blocked by a (simulated) content filter: no content at all.
    ContentFilter,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Response id, in the style of the wire format (`chatcmpl-7`, `msg_sim000007`).
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Model as echoed in the response (without any provider prefix).
    pub model: String,
    /// CONTENT split into word pieces (see the module comment); empty for function calls.
    pub pieces: Vec<String>,
    pub finish: Finish,
    pub prompt_tokens: u64,
    /// Thinking tokens, reported apart from C (see [`crate::dialect`]).
    pub reasoning_tokens: u64,
    /// The function calls, when the answer is a (parallel) call.
    pub tool_calls: Vec<ToolCall>,
}

/// CONTENT for `provider`/`model`.
fn content(provider: &str, model: &str, conv: &Conversation) -> String {
    format!("Simulated answer from {provider}/{model}: {}", conv.last_user)
}

impl Answer {
    /// The answer of the simulated `provider`/`model` to `conv`, cut at `max_tokens` words.
    pub fn new(
        id: String,
        created: u64,
        provider: &str,
        model: &str,
        conv: &Conversation,
        max_tokens: Option<u64>,
    ) -> Self {
        Self::with_content(id, created, model, &content(provider, model, conv), conv, max_tokens)
    }

    /// The answer of the simulated `provider`/`model` as `reply` asks. Function calls are never
    /// cut by `max_tokens` (their arguments stay valid JSON); their ids are left empty for the
    /// upstream's dialect to set.
    pub fn reply(
        id: String,
        created: u64,
        provider: &str,
        model: &str,
        conv: &Conversation,
        max_tokens: Option<u64>,
        reply: &Reply,
    ) -> Self {
        match reply.clone().resolve(provider, model, conv) {
            Reply::Json(text) => Self::with_content(id, created, model, &text, conv, max_tokens),
            Reply::Calls(calls) => {
                let mut answer = Self::with_content(id, created, model, "", conv, None);
                answer.tool_calls = calls
                    .into_iter()
                    .map(|call| ToolCall {
                        id: String::new(),
                        name: call.name,
                        pieces: split_pieces(&call.arguments),
                        signature: None,
                    })
                    .collect();
                answer
            }
            Reply::Text | Reply::JsonObject => Self::new(id, created, provider, model, conv, max_tokens),
        }
    }

    fn with_content(
        id: String,
        created: u64,
        model: &str,
        content: &str,
        conv: &Conversation,
        max_tokens: Option<u64>,
    ) -> Self {
        let mut pieces = split_pieces(content);
        let mut finish = Finish::Stop;
        if let Some(limit) = max_tokens {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            if limit < pieces.len() {
                pieces.truncate(limit);
                // The whitespace that followed the cut word belongs to no word any more.
                if let Some(last) = pieces.last_mut() {
                    let kept = last.trim_end().len();
                    last.truncate(kept);
                }
                finish = Finish::Length;
            }
        }
        Self {
            id,
            created,
            model: model.to_string(),
            pieces,
            finish,
            prompt_tokens: prompt_tokens(&conv.texts),
            reasoning_tokens: 0,
            tool_calls: Vec::new(),
        }
    }

    /// The same answer, blocked by the content filter.
    pub fn blocked(mut self) -> Self {
        self.pieces.clear();
        self.tool_calls.clear();
        self.finish = Finish::ContentFilter;
        self
    }

    pub fn content(&self) -> String {
        self.pieces.concat()
    }

    /// C: the number of words in the content, or in the arguments of every call.
    pub fn completion_tokens(&self) -> u64 {
        (self.pieces.len() + self.tool_calls.iter().map(|c| c.pieces.len()).sum::<usize>()) as u64
    }

    /// What the upstream bills as output: C plus the thinking tokens.
    pub fn output_tokens(&self) -> u64 {
        self.completion_tokens() + self.reasoning_tokens
    }
}

/// P for a list of message texts.
pub fn prompt_tokens<S: AsRef<str>>(texts: &[S]) -> u64 {
    texts.iter().map(|t| (t.as_ref().chars().count() as u64).div_ceil(4) + 4).sum()
}

/// A value that fits the JSON Schema `schema`, the same every time: `const`, else the first of
/// `enum`, else the first non-null `anyOf`/`oneOf` alternative, else by `type`: an object with
/// every property in `properties` sampled, an array of one sampled `items` (none without
/// `items`), `text` for a string, `minimum` or 1 for numbers, `true`, `null`. A schema without a
/// `type` is an object when it has `properties`, a string otherwise.
pub fn sample(schema: &Value, text: &str) -> Value {
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|values| values.first()) {
        return first.clone();
    }
    let alternatives = ["anyOf", "oneOf"].iter().find_map(|key| schema.get(*key).and_then(Value::as_array));
    if let Some(alternatives) = alternatives {
        let not_null = alternatives.iter().find(|alt| alt.get("type").and_then(Value::as_str) != Some("null"));
        return not_null.map_or(Value::Null, |alt| sample(alt, text));
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).find(|k| *k != "null").unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => {
            let mut object = Map::new();
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    object.insert(name.clone(), sample(property, text));
                }
            }
            Value::Object(object)
        }
        "array" => match schema.get("items").filter(|items| items.is_object()) {
            Some(items) => Value::Array(vec![sample(items, text)]),
            None => Value::Array(Vec::new()),
        },
        "string" => Value::String(text.to_string()),
        "integer" => schema.get("minimum").and_then(Value::as_i64).map_or(Value::from(1), Value::from),
        "number" => schema.get("minimum").filter(|m| m.is_number()).cloned().unwrap_or(Value::from(1)),
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    }
}

/// Splits text into words, each carrying the whitespace before it; whitespace after the last
/// word is appended to it. Concatenating the pieces gives the text back exactly.
pub fn split_pieces(text: &str) -> Vec<String> {
    let mut pieces: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                pieces.push(std::mem::take(&mut current));
                in_word = false;
            }
        } else {
            in_word = true;
        }
        current.push(c);
    }
    if in_word {
        pieces.push(current);
    } else if let Some(last) = pieces.last_mut() {
        last.push_str(&current);
    }
    // Text that is only whitespace has no words and yields no pieces.
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(texts: &[&str], last_user: &str) -> Conversation {
        Conversation { texts: texts.iter().map(|s| s.to_string()).collect(), last_user: last_user.into() }
    }

    #[test]
    fn pieces_concatenate_back() {
        for text in ["a b  c", "  lead", "trail  \n", "one", "x\ty\nz ", ""] {
            let pieces = split_pieces(text);
            assert_eq!(pieces.len(), text.split_whitespace().count(), "{text:?}");
            if !text.trim().is_empty() {
                assert_eq!(pieces.concat(), text);
            }
        }
        assert_eq!(split_pieces("Hi there"), ["Hi", " there"]);
    }

    #[test]
    fn counts_tokens() {
        // "Hello" = 5 chars → 2 + 4; "" → 0 + 4; "héllo wörld" = 11 chars → 3 + 4.
        assert_eq!(prompt_tokens(&["Hello", "", "héllo wörld"]), 6 + 4 + 7);
    }

    #[test]
    fn answers_and_truncates() {
        let c = conv(&["sys", "What is up?"], "What is up?");
        let a = Answer::new("id".into(), 1, "openai", "gpt-4o-mini", &c, None);
        assert_eq!(a.content(), "Simulated answer from openai/gpt-4o-mini: What is up?");
        assert_eq!(a.completion_tokens(), 7);
        assert_eq!(a.finish, Finish::Stop);
        assert_eq!(a.prompt_tokens, 5 + 7);

        let t = Answer::new("id".into(), 1, "openai", "gpt-4o-mini", &c, Some(3));
        assert_eq!(t.content(), "Simulated answer from");
        assert_eq!(t.finish, Finish::Length);
        let same = Answer::new("id".into(), 1, "openai", "gpt-4o-mini", &c, Some(7));
        assert_eq!(same.finish, Finish::Stop);

        let b = a.blocked();
        assert_eq!(b.content(), "");
        assert_eq!(b.completion_tokens(), 0);
    }

    #[test]
    fn replies_with_json_or_function_calls() {
        let c = conv(&["Label it"], "Label it");
        let args = r#"{"label":"Label it"}"#.to_string();
        let calls = Reply::Calls(vec![
            PlannedCall { name: "add_label".into(), arguments: args.clone() },
            PlannedCall { name: "close".into(), arguments: "{}".into() },
        ]);
        let a = Answer::reply("id".into(), 1, "openai", "gpt-4o", &c, Some(1), &calls);
        assert_eq!(a.content(), "");
        assert_eq!(a.tool_calls[0].arguments(), args, "a call is never cut");
        assert_eq!(a.tool_calls[0].pieces, [r#"{"label":"Label"#, r#" it"}"#]);
        assert_eq!((a.tool_calls[1].name.as_str(), a.tool_calls[1].id.as_str()), ("close", ""));
        assert_eq!(a.completion_tokens(), 3);
        assert_eq!(a.finish, Finish::Stop);
        assert!(a.clone().blocked().tool_calls.is_empty());

        let json = Reply::Json(r#"{"a": 1}"#.into());
        let a = Answer::reply("id".into(), 1, "openai", "gpt-4o", &c, None, &json);
        assert_eq!((a.content().as_str(), a.tool_calls.len()), (r#"{"a": 1}"#, 0));
        let a = Answer::reply("id".into(), 1, "openai", "gpt-4o", &c, None, &Reply::JsonObject);
        assert_eq!(a.content(), r#"{"answer":"Simulated answer from openai/gpt-4o: Label it"}"#);
        assert!(Reply::JsonObject.is_json() && !Reply::Text.is_json());
    }

    #[test]
    fn samples_schemas() {
        use serde_json::json;
        let schema = json!({
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": ["bug", "feature"]},
                "why": {"type": "string"},
                "score": {"type": "number", "minimum": 0.5},
                "count": {"type": "integer"},
                "ok": {"type": "boolean"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "none": {"type": "array"},
                "maybe": {"type": ["string", "null"]},
                "either": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 3}]},
                "fixed": {"const": "v1"},
                "nested": {"properties": {"x": {}}}
            }
        });
        assert_eq!(
            sample(&schema, "txt"),
            json!({"label": "bug", "why": "txt", "score": 0.5, "count": 1, "ok": true, "tags": ["txt"], "none": [],
                   "maybe": "txt", "either": 3, "fixed": "v1", "nested": {"x": "txt"}})
        );
        assert_eq!(sample(&json!({"type": "object"}), "t"), json!({}));
        assert_eq!(sample(&json!({"type": "null"}), "t"), Value::Null);
    }
}
