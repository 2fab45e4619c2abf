//! Configuration, validated once with messages an operator can act on.
//!
//! Two sources, two types:
//! * [`GatewayConfig`]: routes (aliases → ordered targets) and providers, from the JSON file
//!   `gateway.config.json` compiled into the Worker, or from the `GATEWAY_CONFIG` var when set.
//! * [`Settings`]: the deployment's vars and secrets (`CF_ACCOUNT_ID`, `AI_GATEWAY_ID`, URLs,
//!   limits, `CF_AIG_TOKEN`…), read through a lookup function so this module never sees the runtime.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::gateway::EndpointMode;

/// Compat provider prefixes AI Gateway knows (reference §1). A target outside this list is a typo.
pub const COMPAT_PROVIDERS: &[&str] = &[
    "openai",
    "anthropic",
    "google-ai-studio",
    "google-vertex-ai",
    "workers-ai",
    "groq",
    "mistral",
    "cohere",
    "perplexity",
    "grok",
    "deepseek",
    "cerebras",
    "aws-bedrock",
];

/// Aliases every deployment must define: the agent's code names them.
pub const REQUIRED_ALIASES: &[&str] = &["triage", "review", "default"];

/// A `provider/model` the gateway may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `provider/model`, as written in configuration and sent on the compat endpoint.
    pub id: String,
    split: usize,
}

impl Target {
    /// Parses `provider/model`; the model part may itself contain `/` (`workers-ai/@cf/meta/…`).
    pub fn parse(id: &str) -> Option<Target> {
        let split = id.find('/')?;
        let (provider, model) = (&id[..split], &id[split + 1..]);
        let valid_provider =
            !provider.is_empty() && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let valid_model = !model.is_empty() && !model.chars().any(|c| c.is_control() || c.is_whitespace());
        (valid_provider && valid_model).then(|| Target { id: id.to_owned(), split })
    }

    pub fn provider(&self) -> &str {
        &self.id[..self.split]
    }

    pub fn model(&self) -> &str {
        &self.id[self.split + 1..]
    }
}

/// Per-provider limits (enforced by the resilience layer; declared and validated here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderLimits {
    pub requests_per_minute: u32,
    /// USD per UTC day.
    pub daily_budget_usd: f64,
}

/// An alias: the ordered chain of targets it tries.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub description: Option<String>,
    pub targets: Vec<Target>,
}

/// The validated routing configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    pub providers: BTreeMap<String, ProviderLimits>,
    pub aliases: Vec<Alias>,
    /// Explicit `provider/model` ids to list in `/v1/models` besides the aliases' targets.
    pub extra_models: Vec<Target>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    providers: BTreeMap<String, ProviderLimits>,
    routes: BTreeMap<String, RawRoute>,
    #[serde(default)]
    models: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    description: Option<String>,
    targets: Vec<String>,
}

/// Why a configuration was refused: every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid gateway configuration: {}", self.0.join("; "))
    }
}

impl GatewayConfig {
    pub fn from_json(text: &str) -> Result<GatewayConfig, ConfigError> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| ConfigError(vec![format!("not valid configuration JSON: {e}")]))?;
        let mut problems = Vec::new();

        for (name, limits) in &raw.providers {
            if !COMPAT_PROVIDERS.contains(&name.as_str()) {
                problems.push(format!(
                    "provider `{name}` is not an AI Gateway provider (known: {})",
                    COMPAT_PROVIDERS.join(", ")
                ));
            }
            if !limits.daily_budget_usd.is_finite() || limits.daily_budget_usd < 0.0 {
                problems.push(format!("provider `{name}`: daily_budget_usd must be a non-negative number (USD)"));
            }
        }

        let check_target = |id: &str, context: &str, problems: &mut Vec<String>| -> Option<Target> {
            let Some(target) = Target::parse(id) else {
                problems.push(format!("{context}: `{id}` is not of the form provider/model"));
                return None;
            };
            if !raw.providers.contains_key(target.provider()) {
                problems.push(format!(
                    "{context}: provider `{}` of `{id}` has no entry under `providers` (every provider needs its limits)",
                    target.provider()
                ));
                return None;
            }
            Some(target)
        };

        let mut aliases = Vec::new();
        for (name, route) in &raw.routes {
            if name.is_empty() || name.contains('/') || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                problems.push(format!("route `{name}`: an alias may not be empty or contain `/` or spaces"));
            }
            if route.targets.is_empty() {
                problems.push(format!("route `{name}`: needs at least one target"));
            }
            let targets: Vec<Target> = route
                .targets
                .iter()
                .filter_map(|t| check_target(t, &format!("route `{name}`"), &mut problems))
                .collect();
            aliases.push(Alias { name: name.clone(), description: route.description.clone(), targets });
        }
        for required in REQUIRED_ALIASES {
            if !raw.routes.contains_key(*required) {
                problems.push(format!("route `{required}` is required (the agent calls it by name)"));
            }
        }
        let extra_models = raw.models.iter().filter_map(|m| check_target(m, "models", &mut problems)).collect();

        if problems.is_empty() {
            Ok(GatewayConfig { providers: raw.providers, aliases, extra_models })
        } else {
            Err(ConfigError(problems))
        }
    }

    pub fn alias(&self, name: &str) -> Option<&Alias> {
        self.aliases.iter().find(|a| a.name == name)
    }

    /// Every distinct `provider/model` this configuration can call, in first-seen order.
    pub fn models(&self) -> Vec<&Target> {
        let mut seen: Vec<&Target> = Vec::new();
        for t in self.aliases.iter().flat_map(|a| a.targets.iter()).chain(self.extra_models.iter()) {
            if !seen.iter().any(|s| s.id == t.id) {
                seen.push(t);
            }
        }
        seen
    }
}

/// A secret value: never printed by `Debug`, so it cannot slip into a log line by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        (!value.trim().is_empty()).then(|| Secret(value.trim().to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The deployment: ids, upstream URLs, limits and secrets.
#[derive(Debug, Clone)]
pub struct Settings {
    pub account_id: Option<String>,
    pub gateway_id: Option<String>,
    /// `AI_GATEWAY_URL`, without a trailing slash.
    pub gateway_url: String,
    /// `CF_API_URL`, without a trailing slash.
    pub api_url: String,
    pub endpoint: EndpointMode,
    pub max_body_bytes: usize,
    /// Time allowed until AI Gateway's response headers arrive.
    pub first_byte_timeout_ms: u32,
    /// Longest silence allowed between two chunks of a streamed answer.
    pub stream_idle_timeout_ms: u32,
    pub agent_token: Option<Secret>,
    pub aig_token: Option<Secret>,
    pub api_token: Option<Secret>,
    /// Problems found while reading (bad numbers, unknown modes): reported by `/healthz`.
    pub invalid: Vec<String>,
}

pub const DEFAULT_GATEWAY_URL: &str = "https://gateway.ai.cloudflare.com/v1";
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u32 = 60_000;
pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u32 = 30_000;

impl Settings {
    /// Reads settings through `lookup` (a var or secret by name; `None` when unset).
    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let mut invalid = Vec::new();
        let text = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let url = |name: &str, default: &str, invalid: &mut Vec<String>| match text(name) {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => u.trim_end_matches('/').to_owned(),
            Some(_) => {
                invalid.push(format!("{name} must be an http(s) URL"));
                default.to_owned()
            }
            None => default.to_owned(),
        };
        let number = |name: &str, default: u64, min: u64, max: u64, invalid: &mut Vec<String>| match text(name) {
            Some(v) => match v.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    invalid.push(format!("{name} must be a whole number from {min} to {max}"));
                    default
                }
            },
            None => default,
        };
        let endpoint = match text("GATEWAY_ENDPOINT").as_deref() {
            None | Some("compat") => EndpointMode::Compat,
            Some("rest") => EndpointMode::Rest,
            Some(_) => {
                invalid.push("GATEWAY_ENDPOINT must be `compat` or `rest`".to_owned());
                EndpointMode::Compat
            }
        };
        let account_id = text("CF_ACCOUNT_ID");
        let gateway_id = text("AI_GATEWAY_ID");
        for (name, value) in [("CF_ACCOUNT_ID", &account_id), ("AI_GATEWAY_ID", &gateway_id)] {
            if let Some(v) = value {
                if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                    invalid.push(format!("{name} may contain only letters, digits, `-` and `_`"));
                }
            }
        }
        Settings {
            account_id,
            gateway_id,
            gateway_url: url("AI_GATEWAY_URL", DEFAULT_GATEWAY_URL, &mut invalid),
            api_url: url("CF_API_URL", DEFAULT_API_URL, &mut invalid),
            endpoint,
            max_body_bytes: number(
                "MAX_BODY_BYTES",
                DEFAULT_MAX_BODY_BYTES as u64,
                1024,
                100 * 1024 * 1024,
                &mut invalid,
            ) as usize,
            first_byte_timeout_ms: number(
                "UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
                DEFAULT_FIRST_BYTE_TIMEOUT_MS as u64,
                100,
                900_000,
                &mut invalid,
            ) as u32,
            stream_idle_timeout_ms: number(
                "STREAM_IDLE_TIMEOUT_MS",
                DEFAULT_STREAM_IDLE_TIMEOUT_MS as u64,
                100,
                900_000,
                &mut invalid,
            ) as u32,
            agent_token: lookup("AGENT_TOKEN").and_then(Secret::new),
            aig_token: lookup("CF_AIG_TOKEN").and_then(Secret::new),
            api_token: lookup("CF_API_TOKEN").and_then(Secret::new),
            invalid,
        }
    }

    /// Names of what the chat route needs and does not have.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.agent_token.is_none() {
            missing.push("AGENT_TOKEN");
        }
        if self.account_id.is_none() {
            missing.push("CF_ACCOUNT_ID");
        }
        if self.gateway_id.is_none() {
            missing.push("AI_GATEWAY_ID");
        }
        match self.endpoint {
            EndpointMode::Compat if self.aig_token.is_none() => missing.push("CF_AIG_TOKEN"),
            EndpointMode::Rest if self.api_token.is_none() => missing.push("CF_API_TOKEN"),
            _ => {}
        }
        missing
    }

    /// Every secret's value, for [`crate::error::redact`].
    pub fn secret_values(&self) -> Vec<&str> {
        [&self.agent_token, &self.aig_token, &self.api_token].into_iter().flatten().map(Secret::expose).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SHIPPED: &str = include_str!("../../../gateway.config.json");

    #[test]
    fn shipped_config_is_valid_and_gemini_first() {
        let c = GatewayConfig::from_json(SHIPPED).unwrap();
        for alias in REQUIRED_ALIASES {
            let a = c.alias(alias).unwrap();
            assert_eq!(a.targets[0].id, "google-ai-studio/gemini-2.5-flash", "{alias}");
        }
        assert_eq!(c.providers["google-ai-studio"].requests_per_minute, 100);
        assert_eq!(c.providers["google-ai-studio"].daily_budget_usd, 10.0);
        assert_eq!(c.providers["openai"].daily_budget_usd, 20.0);
        assert_eq!(c.providers["anthropic"].requests_per_minute, 50);
    }

    #[test]
    fn target_splits_at_first_slash() {
        let t = Target::parse("workers-ai/@cf/meta/llama-3.1-8b-instruct").unwrap();
        assert_eq!(t.provider(), "workers-ai");
        assert_eq!(t.model(), "@cf/meta/llama-3.1-8b-instruct");
        for bad in ["gemini", "/m", "p/", "Open AI/x", "p/has space", "p/\u{0}"] {
            assert!(Target::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reports_every_problem() {
        let cfg = r#"{
            "providers": {"openai": {"requests_per_minute": 5, "daily_budget_usd": -1}, "nope": {"requests_per_minute": 1, "daily_budget_usd": 1}},
            "routes": {"triage": {"targets": ["openai/gpt-4o", "anthropic/claude", "bad"]}, "a/b": {"targets": []}}
        }"#;
        let err = GatewayConfig::from_json(cfg).unwrap_err();
        let all = err.to_string();
        for needle in [
            "provider `nope` is not an AI Gateway provider",
            "daily_budget_usd must be a non-negative",
            "provider `anthropic` of `anthropic/claude` has no entry",
            "`bad` is not of the form provider/model",
            "route `a/b`: an alias may not",
            "route `a/b`: needs at least one target",
            "route `review` is required",
            "route `default` is required",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in {all}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = GatewayConfig::from_json(r#"{"providers":{},"routes":{},"rutes":{}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `rutes`"), "{err}");
    }

    #[test]
    fn models_are_distinct_in_order() {
        let c = GatewayConfig::from_json(SHIPPED).unwrap();
        let ids: Vec<&str> = c.models().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids[0], "google-ai-studio/gemini-2.5-flash");
        let mut dedup = ids.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), ids.len());
    }

    fn lookup<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn settings_defaults_and_missing_names() {
        let s = Settings::read(lookup(&[]));
        assert_eq!(s.gateway_url, DEFAULT_GATEWAY_URL);
        assert_eq!(s.api_url, DEFAULT_API_URL);
        assert_eq!(s.endpoint, EndpointMode::Compat);
        assert_eq!(s.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(s.missing(), vec!["AGENT_TOKEN", "CF_ACCOUNT_ID", "AI_GATEWAY_ID", "CF_AIG_TOKEN"]);
        assert!(s.invalid.is_empty());
    }

    #[test]
    fn settings_read_values_and_flag_bad_ones() {
        let s = Settings::read(lookup(&[
            ("AGENT_TOKEN", " agent-secret "),
            ("CF_AIG_TOKEN", "aig-secret"),
            ("CF_ACCOUNT_ID", "acct"),
            ("AI_GATEWAY_ID", "gw"),
            ("AI_GATEWAY_URL", "http://127.0.0.1:8788/v1/"),
            ("MAX_BODY_BYTES", "abc"),
            ("GATEWAY_ENDPOINT", "universal"),
            ("CF_API_URL", "ftp://x"),
        ]));
        assert_eq!(s.agent_token.as_ref().unwrap().expose(), "agent-secret");
        assert_eq!(s.gateway_url, "http://127.0.0.1:8788/v1");
        assert!(s.missing().is_empty());
        assert_eq!(s.invalid.len(), 3, "{:?}", s.invalid);
        assert!(!format!("{s:?}").contains("agent-secret"), "Debug must not print secrets");
        assert_eq!(s.secret_values(), vec!["agent-secret", "aig-secret"]);
    }

    #[test]
    fn rest_mode_needs_the_api_token() {
        let s = Settings::read(lookup(&[
            ("AGENT_TOKEN", "a"),
            ("CF_ACCOUNT_ID", "acct"),
            ("AI_GATEWAY_ID", "gw"),
            ("GATEWAY_ENDPOINT", "rest"),
        ]));
        assert_eq!(s.missing(), vec!["CF_API_TOKEN"]);
    }
}
