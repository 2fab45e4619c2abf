//! Retired and redirected models (`POST /__sim/models`), and the 404 each provider answers for a
//! retired one (reference: provider-dialects §2).
//!
//! A redirected model answers as the model it is redirected to: the response's `model`, the log
//! row's model and the usage are that model's. A retired model answers 404 in the provider's own
//! shape. None of either by default: tests switch them on.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::dialect::{is_google, Refusal};
use crate::formats::Format;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelRules {
    retired: BTreeSet<String>,
    redirects: BTreeMap<String, String>,
}

/// What becomes of a request for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// This model answers (the one asked for, or the one it is redirected to).
    Answer(String),
    Retired,
}

impl ModelRules {
    /// `{"retired"?: ["model", …], "redirects"?: {"from": "to", …}}`; a field left out is empty.
    /// Models are named as the log row names them (no provider prefix).
    pub fn parse(body: &Value) -> Result<Self, String> {
        let object = body.as_object().ok_or("the body must be a JSON object")?;
        if let Some(key) = object.keys().find(|k| *k != "retired" && *k != "redirects") {
            return Err(format!("unknown field `{key}`"));
        }
        let mut rules = ModelRules::default();
        match object.get("retired") {
            None | Some(Value::Null) => {}
            Some(Value::Array(models)) => {
                for model in models {
                    let name =
                        model.as_str().filter(|m| !m.is_empty()).ok_or("retired must be a list of model names")?;
                    rules.retired.insert(name.to_string());
                }
            }
            Some(_) => return Err("retired must be a list of model names".into()),
        }
        match object.get("redirects") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (from, to) in map {
                    let to = to.as_str().filter(|t| !t.is_empty() && !from.is_empty());
                    let to = to.ok_or("redirects must map model names to model names")?;
                    rules.redirects.insert(from.clone(), to.to_string());
                }
            }
            Some(_) => return Err("redirects must be an object of model name to model name".into()),
        }
        Ok(rules)
    }

    pub fn to_json(&self) -> Value {
        json!({"retired": self.retired, "redirects": self.redirects})
    }

    /// A redirect wins over retirement; redirects do not chain.
    pub fn resolve(&self, model: &str) -> Resolution {
        match self.redirects.get(model) {
            Some(to) => Resolution::Answer(to.clone()),
            None if self.retired.contains(model) => Resolution::Retired,
            None => Resolution::Answer(model.to_string()),
        }
    }
}

/// The 404 a provider answers for a retired `model`, in its shape on this route: Google's own
/// text (wrapped in an array by its OpenAI-compatible layer, bare on `generateContent`), OpenAI's
/// deprecation text, Anthropic's `not_found_error`, Bedrock's end-of-life message.
pub fn retired(provider: &str, format: Format, model: &str) -> Refusal {
    let body = match (provider, format) {
        (p, _) if is_google(p) => {
            let error = json!({"error": {"code": 404, "status": "NOT_FOUND", "message": format!(
                "This model models/{model} is no longer available to new users. Please update your code to use a newer model for the latest features and improvements."
            )}});
            if matches!(format, Format::Gemini { .. }) {
                error
            } else {
                json!([error])
            }
        }
        ("anthropic", _) | (_, Format::Anthropic) if provider != "aws-bedrock" => {
            json!({"type": "error", "error": {"type": "not_found_error", "message": format!("model: {model}")}})
        }
        ("aws-bedrock", _) => {
            json!({"message": "This model version has reached the end of its life. Please refer to the AWS documentation for more details."})
        }
        _ => json!({"error": {
            "message": format!("The model `{model}` has been deprecated, learn more here: https://platform.openai.com/docs/deprecations"),
            "type": "invalid_request_error", "param": null, "code": "model_not_found"}}),
    };
    Refusal { status: 404, body }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves() {
        let rules = ModelRules::parse(&json!({"retired": ["gemini-2.5-flash", "gpt-4o"],
            "redirects": {"gemini-2.5-flash": "gemini-3.5-flash-lite"}}))
        .unwrap();
        assert_eq!(rules.resolve("gemini-2.5-flash"), Resolution::Answer("gemini-3.5-flash-lite".into()));
        assert_eq!(rules.resolve("gpt-4o"), Resolution::Retired);
        assert_eq!(rules.resolve("gpt-4o-mini"), Resolution::Answer("gpt-4o-mini".into()));
        assert_eq!(ModelRules::parse(&json!({})).unwrap(), ModelRules::default());
        assert_eq!(ModelRules::parse(&rules.to_json()).unwrap(), rules);
        for bad in [
            json!([]),
            json!({"retired": "x"}),
            json!({"retired": [""]}),
            json!({"redirects": {"a": 1}}),
            json!({"x": 1}),
        ] {
            assert!(ModelRules::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retired_shapes() {
        let compat = retired("google-ai-studio", Format::OpenAi, "gemini-2.5-flash");
        assert_eq!(compat.status, 404);
        assert!(compat.body[0]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("This model models/gemini-2.5-flash is no longer available to new users."));
        let native = retired("google-ai-studio", Format::Gemini { sse: false }, "gemini-2.5-flash");
        assert_eq!(native.body["error"]["status"], "NOT_FOUND");
        assert_eq!(retired("anthropic", Format::OpenAi, "claude-3").body["error"]["type"], "not_found_error");
        assert_eq!(retired("openai", Format::OpenAi, "gpt-4").body["error"]["code"], "model_not_found");
        assert!(retired("aws-bedrock", Format::Anthropic, "anthropic.claude").body["message"].is_string());
        assert_eq!(retired("groq", Format::OpenAi, "llama").body["error"]["code"], "model_not_found");
    }
}
