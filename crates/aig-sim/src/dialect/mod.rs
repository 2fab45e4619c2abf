//! Provider dialects: where an upstream's OpenAI-compatible layer differs from clean OpenAI
//! (reference: `shared/reference/provider-dialects.md`). AI Gateway passes these through, so
//! the simulator produces them by default, each behind a switch of `/__sim/dialects`:
//!
//! | switch | what it turns on (for whom) |
//! |---|---|
//! | `gemini_tool_calls` | Google providers: index-less streamed calls, Gemini's ids, `finish_reason: "stop"` ending a streamed call |
//! | `thought_signatures` | `gemini-3*` models: signatures on answers, the signature rule on history |
//! | `history_rules` | `openai`, `anthropic`: their rules on replayed tool calls ([`history`]) |
//! | `thinking_tokens` | `gemini-2.5*`, `gemini-3*`: thinking tokens, reported apart from C |
//! | `anthropic_ignores_response_format` | `anthropic` on compat/REST: `response_format` ignored, prose answered |

pub mod history;
pub mod signature;

use serde_json::{json, Map, Value};

use crate::answer::Answer;
use crate::ids::SplitMix64;

/// A provider's refusal of a request, in that provider's error shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub body: Value,
}

/// Which dialects are on. All are on by default (what production shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches {
    pub gemini_tool_calls: bool,
    pub thought_signatures: bool,
    pub history_rules: bool,
    pub thinking_tokens: bool,
    pub anthropic_ignores_response_format: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            gemini_tool_calls: true,
            thought_signatures: true,
            history_rules: true,
            thinking_tokens: true,
            anthropic_ignores_response_format: true,
        }
    }
}

type Field = fn(&mut Switches) -> &mut bool;

const FIELDS: [(&str, Field); 5] = [
    ("gemini_tool_calls", |s| &mut s.gemini_tool_calls),
    ("thought_signatures", |s| &mut s.thought_signatures),
    ("history_rules", |s| &mut s.history_rules),
    ("thinking_tokens", |s| &mut s.thinking_tokens),
    ("anthropic_ignores_response_format", |s| &mut s.anthropic_ignores_response_format),
];

impl Switches {
    /// Applies `{"all"?: bool, "<switch>"?: bool, …}`: `all` first, then each switch named.
    /// Nothing changes when the body is invalid.
    pub fn update(&mut self, body: &Value) -> Result<(), String> {
        let object = body.as_object().ok_or("the body must be a JSON object")?;
        let mut next = *self;
        if let Some(all) = object.get("all") {
            let all = all.as_bool().ok_or("all must be a boolean")?;
            for (_, field) in FIELDS {
                *field(&mut next) = all;
            }
        }
        for (key, value) in object.iter().filter(|(k, _)| *k != "all") {
            let (_, field) =
                FIELDS.iter().find(|(name, _)| name == key).ok_or_else(|| format!("unknown dialect switch `{key}`"))?;
            *field(&mut next) = value.as_bool().ok_or_else(|| format!("{key} must be a boolean"))?;
        }
        *self = next;
        Ok(())
    }

    pub fn to_json(self) -> Value {
        let mut copy = self;
        let map: Map<String, Value> =
            FIELDS.iter().map(|(name, field)| (name.to_string(), json!(*field(&mut copy)))).collect();
        Value::Object(map)
    }
}

/// `google-ai-studio` and `google-vertex-ai` (REST `google/…` is logged as the former).
pub fn is_google(provider: &str) -> bool {
    provider == "google-ai-studio" || provider == "google-vertex-ai"
}

/// The model's own name, without an `author/` part (`google/gemini-2.5-pro` → `gemini-2.5-pro`).
fn base_name(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

/// Gemini 2.5 and 3 think before they answer.
pub fn thinks(provider: &str, model: &str) -> bool {
    let name = base_name(model);
    is_google(provider) && (name.starts_with("gemini-2.5") || name.starts_with("gemini-3"))
}

/// Gemini 3 signs its function calls (and requires the signatures back).
pub fn signs(provider: &str, model: &str) -> bool {
    is_google(provider) && base_name(model).starts_with("gemini-3")
}

/// R, the thinking tokens of a thinking model: twice the prompt tokens.
pub fn reasoning_tokens(prompt_tokens: u64) -> u64 {
    2 * prompt_tokens
}

/// How function call ids look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallIds {
    /// `call_simNNNNNN`, then `_1`, `_2`… for further calls of the same step.
    Sim,
    /// Gemini 3: `function-call-<up to 20 digits>`.
    GeminiNumbered,
    /// Gemini 2.x and other Google models: `""`.
    Empty,
}

/// The dialect of one call's upstream: what it does differently from clean OpenAI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub call_ids: CallIds,
    /// `extra_content.{key}.thought_signature` on the first call of a step, when the model signs.
    pub signature_key: Option<&'static str>,
    /// Gemini's streamed tool-call shape (OpenAI format only).
    pub gemini_tool_calls: bool,
    pub thinks: bool,
    /// `response_format` is ignored: the model answers prose.
    pub ignores_response_format: bool,
    pub rules: Rules,
}

/// Which history rules the upstream applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    None,
    OpenAi,
    Anthropic,
    GeminiSignatures,
}

/// The profile of `provider`/`model` (the model that answers) under `switches`. `openai_format`:
/// the request came in OpenAI's format (compat, REST or an OpenAI-format native route), the only
/// one with tool calls, structured output and a replayed history.
pub fn profile(switches: &Switches, provider: &str, model: &str, openai_format: bool) -> Profile {
    let google = is_google(provider) && openai_format;
    let signing = google && switches.thought_signatures && signs(provider, model);
    let call_ids = match (google && switches.gemini_tool_calls, signs(provider, model)) {
        (true, true) => CallIds::GeminiNumbered,
        (true, false) => CallIds::Empty,
        (false, _) => CallIds::Sim,
    };
    let rules = match provider {
        _ if signing => Rules::GeminiSignatures,
        "openai" if openai_format && switches.history_rules => Rules::OpenAi,
        "anthropic" if openai_format && switches.history_rules => Rules::Anthropic,
        _ => Rules::None,
    };
    Profile {
        call_ids,
        // Vertex's OpenAI layer has been seen using its own key; AI Studio uses `google`.
        signature_key: signing.then_some(if provider == "google-vertex-ai" { "vertex" } else { "google" }),
        gemini_tool_calls: google && switches.gemini_tool_calls,
        thinks: switches.thinking_tokens && thinks(provider, model),
        ignores_response_format: provider == "anthropic" && openai_format && switches.anthropic_ignores_response_format,
        rules,
    }
}

impl Profile {
    /// Checks the replayed history against the upstream's rules.
    pub fn check_history(&self, turns: &[history::Turn], model: &str, secret: u64) -> Result<(), Refusal> {
        match self.rules {
            Rules::None => Ok(()),
            Rules::OpenAi => history::check_openai(turns),
            Rules::Anthropic => history::check_anthropic(turns),
            Rules::GeminiSignatures => history::check_gemini_signatures(turns, model, secret),
        }
    }

    /// Gives the answer's calls their ids and signature, and a thinking model its thinking
    /// tokens. `number` is the answer's own number (ids are unique per answer).
    pub fn dress(&self, answer: &mut Answer, number: u64, secret: u64) {
        if self.thinks {
            answer.reasoning_tokens = reasoning_tokens(answer.prompt_tokens);
        }
        for (i, call) in answer.tool_calls.iter_mut().enumerate() {
            call.id = match self.call_ids {
                CallIds::Sim if i == 0 => format!("call_sim{number:06}"),
                CallIds::Sim => format!("call_sim{number:06}_{i}"),
                CallIds::GeminiNumbered => {
                    let digits = SplitMix64::new(number.wrapping_mul(1 << 8).wrapping_add(i as u64)).next_u64();
                    format!("function-call-{digits}")
                }
                CallIds::Empty => String::new(),
            };
        }
        if self.signature_key.is_some() {
            if let Some(first) = answer.tool_calls.first_mut() {
                first.signature = Some(signature::issue(secret, &first.id, &answer.model));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{Conversation, PlannedCall, Reply};

    #[test]
    fn switches_update_and_list() {
        let mut s = Switches::default();
        assert_eq!(s.to_json()["history_rules"], true);
        s.update(&json!({"all": false, "thinking_tokens": true})).unwrap();
        assert_eq!(
            s,
            Switches {
                gemini_tool_calls: false,
                thought_signatures: false,
                history_rules: false,
                thinking_tokens: true,
                anthropic_ignores_response_format: false
            }
        );
        for bad in [json!([]), json!({"all": 1}), json!({"nope": true}), json!({"history_rules": "yes"})] {
            let before = s;
            assert!(s.update(&bad).is_err(), "{bad}");
            assert_eq!(s, before);
        }
    }

    #[test]
    fn profiles() {
        let on = Switches::default();
        let p = profile(&on, "google-ai-studio", "gemini-3-flash-preview", true);
        assert_eq!(
            (p.call_ids, p.signature_key, p.rules),
            (CallIds::GeminiNumbered, Some("google"), Rules::GeminiSignatures)
        );
        assert!(p.gemini_tool_calls && p.thinks);
        let p = profile(&on, "google-vertex-ai", "google/gemini-3-pro", true);
        assert_eq!(p.signature_key, Some("vertex"));
        let p = profile(&on, "google-ai-studio", "gemini-2.5-flash", true);
        assert_eq!((p.call_ids, p.signature_key, p.rules, p.thinks), (CallIds::Empty, None, Rules::None, true));
        let p = profile(&on, "google-ai-studio", "gemini-2.0-flash", true);
        assert!(!p.thinks);
        let p = profile(&on, "google-ai-studio", "gemini-2.5-flash", false);
        assert!(p.thinks && !p.gemini_tool_calls, "native Gemini reports thoughts too");
        assert_eq!(profile(&on, "openai", "gpt-4o", true).rules, Rules::OpenAi);
        assert_eq!(profile(&on, "openai", "gpt-4o", true).call_ids, CallIds::Sim);
        let p = profile(&on, "anthropic", "claude-haiku-4-5", true);
        assert!(p.ignores_response_format && p.rules == Rules::Anthropic);
        assert!(!profile(&on, "anthropic", "claude-haiku-4-5", false).ignores_response_format);
        let off = Switches {
            gemini_tool_calls: false,
            thought_signatures: false,
            history_rules: false,
            thinking_tokens: false,
            anthropic_ignores_response_format: false,
        };
        let p = profile(&off, "google-ai-studio", "gemini-3-flash-preview", true);
        assert_eq!((p.call_ids, p.signature_key, p.rules, p.thinks), (CallIds::Sim, None, Rules::None, false));
    }

    #[test]
    fn dresses_answers() {
        let conv = Conversation { texts: vec!["hello there".into()], last_user: "hello there".into() };
        let calls = Reply::Calls(vec![
            PlannedCall { name: "a".into(), arguments: "{}".into() },
            PlannedCall { name: "b".into(), arguments: "{}".into() },
        ]);
        let answer = Answer::reply("x".into(), 0, "google-ai-studio", "gemini-3-flash", &conv, None, &calls);
        let mut gemini = answer.clone();
        profile(&Switches::default(), "google-ai-studio", "gemini-3-flash", true).dress(&mut gemini, 7, 42);
        assert!(gemini.tool_calls[0].id.starts_with("function-call-"));
        assert_ne!(gemini.tool_calls[0].id, gemini.tool_calls[1].id);
        let sig = gemini.tool_calls[0].signature.clone().unwrap();
        assert!(signature::verify(42, &gemini.tool_calls[0].id, "gemini-3-flash", &sig));
        assert_eq!(gemini.tool_calls[1].signature, None, "only the first call of a step is signed");
        assert_eq!(gemini.reasoning_tokens, 2 * gemini.prompt_tokens);
        let mut clean = answer;
        profile(&Switches::default(), "openai", "gpt-4o", true).dress(&mut clean, 7, 42);
        let ids: Vec<&str> = clean.tool_calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["call_sim000007", "call_sim000007_1"]);
        assert_eq!(clean.reasoning_tokens, 0);
    }
}
