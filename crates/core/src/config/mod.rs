//! Configuration, validated once with messages an operator can act on.
//!
//! Two sources, two types:
//! * [`GatewayConfig`]: routes (aliases → ordered targets) and providers, from the JSON file
//!   `gateway.config.json` compiled into the Worker, or from the `GATEWAY_CONFIG` var when set.
//! * [`Settings`] (`settings.rs`): the deployment's vars and secrets (`CF_ACCOUNT_ID`,
//!   `AI_GATEWAY_ID`, URLs, limits, `CF_AIG_TOKEN`…), read through a lookup function so this
//!   module never sees the runtime.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::account::breaker::BreakerPolicy;
use crate::account::limits::Policy;
use crate::account::scopes::{RawScopes, Scopes};
use crate::money::pricing::{Prices, Usd};

mod settings;

pub use settings::*;

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

/// A `provider/model` the gateway may call: what a route's targets are, and what `/v1/models` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelId {
    /// `provider/model`, as written in configuration and sent on the compat endpoint.
    pub id: String,
    split: usize,
}

impl ModelId {
    /// Parses `provider/model`; the model part may itself contain `/` (`workers-ai/@cf/meta/…`).
    pub fn parse(id: &str) -> Option<ModelId> {
        let split = id.find('/')?;
        let (provider, model) = (&id[..split], &id[split + 1..]);
        let valid_provider =
            !provider.is_empty() && provider.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let valid_model = !model.is_empty() && !model.chars().any(|c| c.is_control() || c.is_whitespace());
        (valid_provider && valid_model).then(|| ModelId { id: id.to_owned(), split })
    }

    pub fn provider(&self) -> &str {
        &self.id[..self.split]
    }

    pub fn model(&self) -> &str {
        &self.id[self.split + 1..]
    }
}

/// A provider's `circuit_breaker`, as written in the configuration.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreaker {
    /// Outcomes counted over this many seconds.
    #[serde(default = "default_window_seconds")]
    window_seconds: u64,
    /// At least this many attempts in the window before it may open.
    #[serde(default = "default_min_attempts")]
    min_attempts: u32,
    /// The share of failed attempts (5xx, timeouts, connection errors) that opens it, 0 < r ≤ 1.
    #[serde(default = "default_failure_ratio")]
    failure_ratio: f64,
    /// How long it stays open before probing.
    #[serde(default = "default_cooldown_seconds")]
    cooldown_seconds: u64,
    /// Probes let through at once after the cool-down; this many healthy ones close it.
    #[serde(default = "default_probes")]
    probes: u32,
}

fn default_window_seconds() -> u64 {
    60
}
fn default_min_attempts() -> u32 {
    10
}
fn default_failure_ratio() -> f64 {
    0.5
}
fn default_cooldown_seconds() -> u64 {
    30
}
fn default_probes() -> u32 {
    2
}

impl RawBreaker {
    fn policy(self, provider: &str, problems: &mut Vec<String>) -> Option<BreakerPolicy> {
        let ok = self.window_seconds >= 1
            && self.window_seconds <= 3600
            && self.min_attempts >= 1
            && self.failure_ratio >= 0.001
            && self.failure_ratio <= 1.0
            && self.cooldown_seconds >= 1
            && self.cooldown_seconds <= 3600
            && (1..=100).contains(&self.probes);
        if !ok {
            problems.push(format!(
                "provider `{provider}`: circuit_breaker needs window_seconds and cooldown_seconds 1 to 3600, \
                 min_attempts ≥ 1, 0.001 ≤ failure_ratio ≤ 1 and probes 1 to 100"
            ));
            return None;
        }
        Some(BreakerPolicy {
            window_ms: self.window_seconds * 1000,
            min_attempts: self.min_attempts,
            failure_permille: (self.failure_ratio * 1000.0).round() as u32,
            cooldown_ms: self.cooldown_seconds * 1000,
            probes: self.probes,
        })
    }
}

/// When a rule applies. Every condition given must hold; an empty condition always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// Estimated prompt tokens at least this many.
    #[serde(default)]
    pub min_input_tokens: Option<u64>,
    /// Estimated prompt tokens at most this many.
    #[serde(default)]
    pub max_input_tokens: Option<u64>,
    /// The request offers tools (or not).
    #[serde(default)]
    pub has_tools: Option<bool>,
    /// `x-agent-name` is one of these.
    #[serde(default)]
    pub agent: Option<Vec<String>>,
    /// The request streams (or not).
    #[serde(default)]
    pub stream: Option<bool>,
    /// The route's primary provider (its first target's, without rules) has used more than this
    /// share of its daily budget today (0 < share ≤ 1): move to a cheaper chain before it is gone.
    #[serde(default, deserialize_with = "share_permille")]
    pub budget_used_above: Option<u32>,
}

/// A share (`0.8`) as permille (`800`).
fn share_permille<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let share: Option<f64> = Option::deserialize(d)?;
    match share {
        None => Ok(None),
        Some(s) if s > 0.0 && s <= 1.0 => Ok(Some((s * 1000.0).round() as u32)),
        Some(s) => Err(serde::de::Error::custom(format!("budget_used_above must be above 0 and at most 1, not {s}"))),
    }
}

/// What a request looks like to the routing rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub input_tokens: u64,
    pub has_tools: bool,
    pub agent: Option<&'a str>,
    pub stream: bool,
    /// Each provider's share of its daily budget used today (permille), as last heard.
    pub budget_used: Option<&'a BTreeMap<String, u32>>,
}

impl Condition {
    /// Whether the condition holds for a request; `primary` is the route's primary provider.
    pub fn matches(&self, f: &RequestFacts, primary: Option<&str>) -> bool {
        let used = |p: &str| f.budget_used.and_then(|m| m.get(p)).copied().unwrap_or(0);
        self.budget_used_above.is_none_or(|limit| primary.is_some_and(|p| used(p) > limit))
            && self.min_input_tokens.is_none_or(|n| f.input_tokens >= n)
            && self.max_input_tokens.is_none_or(|n| f.input_tokens <= n)
            && self.has_tools.is_none_or(|t| f.has_tools == t)
            && self.stream.is_none_or(|s| f.stream == s)
            && self.agent.as_ref().is_none_or(|names| f.agent.is_some_and(|a| names.iter().any(|n| n == a)))
    }
}

/// A conditional chain: the first rule whose condition holds gives the targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub when: Condition,
    pub targets: Vec<ModelId>,
}

/// One arm of a percentage split (an A/B test): chosen with probability weight / total.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub weight: u32,
    pub targets: Vec<ModelId>,
}

/// Whether and how answers of a route may come from AI Gateway's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePolicy {
    /// `cf-aig-cache-ttl` (AI Gateway accepts 60 s to one month).
    pub ttl_seconds: u32,
    /// Only cache when the caller scopes the entry (`x-gateway-cache-scope`, e.g.
    /// `owner/repo@<head sha>`): a review of a new commit then never meets an old one.
    #[serde(default)]
    pub require_scope: bool,
}

/// The largest output limit a route may set: far above any model's, low enough that a worst
/// case (tokens × price in picodollars) cannot overflow.
pub const MAX_OUTPUT_TOKENS_LIMIT: u64 = 10_000_000;

/// An alias: rules first, else a weighted choice among arms (one arm = a plain chain). Each chain
/// is ordered: the first target, then its fallbacks.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub description: Option<String>,
    pub rules: Vec<Rule>,
    pub arms: Vec<Arm>,
    pub cache: Option<CachePolicy>,
    /// The output limit sent when a request sets none (and so the bound its worst case is
    /// reserved for); `None`: `estimates.max_output_tokens`.
    pub max_output_tokens: Option<u64>,
}

impl Alias {
    /// The chain for a request: the first matching rule's, else the arm that `roll` (uniform in
    /// `[0, 1)`) falls in.
    pub fn chain(&self, facts: &RequestFacts, roll: f64) -> &[ModelId] {
        let primary = self.arms.first().and_then(|a| a.targets.first()).map(ModelId::provider);
        if let Some(rule) = self.rules.iter().find(|r| r.when.matches(facts, primary)) {
            return &rule.targets;
        }
        let total: u64 = self.arms.iter().map(|a| u64::from(a.weight)).sum();
        let mut point = (roll.clamp(0.0, 1.0) * total as f64) as u64;
        for arm in &self.arms {
            if point < u64::from(arm.weight) {
                return &arm.targets;
            }
            point -= u64::from(arm.weight);
        }
        self.arms.last().map(|a| a.targets.as_slice()).unwrap_or(&[])
    }

    /// Every target the alias can use, rules and arms alike.
    pub fn all_targets(&self) -> impl Iterator<Item = &ModelId> {
        self.rules.iter().flat_map(|r| r.targets.iter()).chain(self.arms.iter().flat_map(|a| a.targets.iter()))
    }
}

/// Retries of one target before moving to the next (full-jitter exponential backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per target, the first included (1 = no retry).
    pub attempts_per_target: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// A `Retry-After` longer than this is not waited for: the next target is tried instead.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts_per_target: 2, base_delay_ms: 250, max_delay_ms: 4_000, max_retry_after_ms: 10_000 }
    }
}

/// Estimates used before an answer is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Estimates {
    /// Output tokens reserved when the request sets no `max_tokens`.
    pub max_output_tokens: u64,
    /// Prompt bytes per token for the prompt estimate (3 over-counts English and code a little,
    /// which is the safe side for a budget).
    pub prompt_bytes_per_token: u64,
}

impl Default for Estimates {
    fn default() -> Self {
        Estimates { max_output_tokens: 4_096, prompt_bytes_per_token: 3 }
    }
}

/// The validated routing configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    pub providers: BTreeMap<String, Policy>,
    pub aliases: Vec<Alias>,
    /// Explicit `provider/model` ids to list in `/v1/models` besides the aliases' targets.
    pub extra_models: Vec<ModelId>,
    pub retry: RetryPolicy,
    pub estimates: Estimates,
    /// Budgets and rate limits per repository, owner and agent (`scopes`), besides the providers'.
    pub scopes: Scopes,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig<'a> {
    #[serde(borrow)]
    providers: BTreeMap<String, RawLimits<'a>>,
    routes: BTreeMap<String, RawRoute>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    retry: RetryPolicy,
    #[serde(default)]
    estimates: Estimates,
    #[serde(default, borrow)]
    scopes: RawScopes<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits<'a> {
    requests_per_minute: u32,
    /// Read as the number's own text so that 0.1 stays exactly 0.1.
    #[serde(borrow)]
    daily_budget_usd: &'a RawValue,
    #[serde(default)]
    circuit_breaker: Option<RawBreaker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    targets: Option<Vec<String>>,
    #[serde(default)]
    split: Option<Vec<RawArm>>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    cache: Option<CachePolicy>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArm {
    weight: u32,
    targets: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    when: Condition,
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
        Self::from_json_with_prices(text, &Prices::shipped())
    }

    /// Validates a configuration against a price table: every target an alias can reach must have
    /// a price, or its provider's budget could not be enforced.
    pub fn from_json_with_prices(text: &str, prices: &Prices) -> Result<GatewayConfig, ConfigError> {
        let raw: RawConfig =
            crate::json::from_str(text).map_err(|e| ConfigError(vec![format!("not valid configuration JSON: {e}")]))?;
        let mut problems = Vec::new();

        let mut providers = BTreeMap::new();
        for (name, limits) in &raw.providers {
            // Native-only providers (azure-openai) may have limits too: native routes use them.
            if !COMPAT_PROVIDERS.contains(&name.as_str()) && !crate::provider::SLUGS.contains(&name.as_str()) {
                problems.push(format!(
                    "provider `{name}` is not an AI Gateway provider (known: {})",
                    COMPAT_PROVIDERS.join(", ")
                ));
            }
            if limits.requests_per_minute == 0 {
                problems.push(format!("provider `{name}`: requests_per_minute must be at least 1"));
            }
            // A number, or a decimal string ("0.001"): either way its own digits, parsed exactly.
            let text = limits.daily_budget_usd.get();
            let text = crate::json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned());
            let breaker = limits.circuit_breaker.and_then(|b| b.policy(name, &mut problems));
            match Usd::parse_dollars(&text) {
                Some(budget) if budget > Usd::ZERO => {
                    providers.insert(
                        name.clone(),
                        Policy { requests_per_minute: limits.requests_per_minute, daily_budget: budget, breaker },
                    );
                }
                _ => problems.push(format!(
                    "provider `{name}`: daily_budget_usd must be a positive amount of USD (at most 12 decimals)"
                )),
            }
        }
        let r = raw.retry;
        if r.attempts_per_target == 0 || r.attempts_per_target > 5 || r.max_delay_ms < r.base_delay_ms {
            problems.push("retry: attempts_per_target must be 1 to 5, and max_delay_ms ≥ base_delay_ms".to_owned());
        }
        if raw.estimates.prompt_bytes_per_token == 0 || raw.estimates.max_output_tokens == 0 {
            problems.push("estimates: max_output_tokens and prompt_bytes_per_token must be at least 1".to_owned());
        }

        let check_target = |id: &str, context: &str, problems: &mut Vec<String>| -> Option<ModelId> {
            let Some(target) = ModelId::parse(id) else {
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
            if prices.lookup(target.provider(), target.model()).is_none() {
                problems.push(format!(
                    "{context}: `{id}` has no price in prices.json, so its provider's budget could not be enforced"
                ));
                return None;
            }
            Some(target)
        };
        let chain = |ids: &[String], context: &str, problems: &mut Vec<String>| -> Vec<ModelId> {
            if ids.is_empty() {
                problems.push(format!("{context}: needs at least one target"));
            }
            ids.iter().filter_map(|t| check_target(t, context, problems)).collect()
        };

        let mut aliases = Vec::new();
        for (name, route) in &raw.routes {
            let context = format!("route `{name}`");
            if name.is_empty() || name.contains('/') || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
                problems.push(format!("{context}: an alias may not be empty or contain `/` or spaces"));
            }
            let arms = match (&route.targets, &route.split) {
                (Some(targets), None) => vec![Arm { weight: 1, targets: chain(targets, &context, &mut problems) }],
                (None, Some(split)) => {
                    if split.is_empty() || split.iter().all(|a| a.weight == 0) {
                        problems.push(format!("{context}: split needs at least one arm with a positive weight"));
                    }
                    split
                        .iter()
                        .enumerate()
                        .map(|(i, a)| Arm {
                            weight: a.weight,
                            targets: chain(&a.targets, &format!("{context} split arm {i}"), &mut problems),
                        })
                        .collect()
                }
                _ => {
                    problems.push(format!("{context}: give exactly one of `targets` or `split`"));
                    Vec::new()
                }
            };
            let rules = route
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| Rule {
                    when: r.when.clone(),
                    targets: chain(&r.targets, &format!("{context} rule {i}"), &mut problems),
                })
                .collect();
            if let Some(cache) = route.cache {
                if !(60..=2_592_000).contains(&cache.ttl_seconds) {
                    problems.push(format!("{context}: cache.ttl_seconds must be 60 to 2592000 (AI Gateway's range)"));
                }
            }
            if route.max_output_tokens.is_some_and(|n| n == 0 || n > MAX_OUTPUT_TOKENS_LIMIT) {
                problems.push(format!("{context}: max_output_tokens must be 1 to {MAX_OUTPUT_TOKENS_LIMIT}"));
            }
            aliases.push(Alias {
                name: name.clone(),
                description: route.description.clone(),
                rules,
                arms,
                cache: route.cache,
                max_output_tokens: route.max_output_tokens,
            });
        }
        for required in REQUIRED_ALIASES {
            if !raw.routes.contains_key(*required) {
                problems.push(format!("route `{required}` is required (the agent calls it by name)"));
            }
        }
        let extra_models = raw.models.iter().filter_map(|m| check_target(m, "models", &mut problems)).collect();
        let scopes = raw.scopes.read(&mut problems);

        if problems.is_empty() {
            Ok(GatewayConfig { providers, aliases, extra_models, retry: raw.retry, estimates: raw.estimates, scopes })
        } else {
            Err(ConfigError(problems))
        }
    }

    pub fn alias(&self, name: &str) -> Option<&Alias> {
        self.aliases.iter().find(|a| a.name == name)
    }

    /// The output limit a request on `alias` (`None`: an explicit `provider/model`) gets when it
    /// sets none: the route's `max_output_tokens`, else `estimates.max_output_tokens`.
    pub fn max_output_tokens(&self, alias: Option<&str>) -> u64 {
        alias.and_then(|a| self.alias(a)).and_then(|a| a.max_output_tokens).unwrap_or(self.estimates.max_output_tokens)
    }

    /// Every distinct `provider/model` this configuration can call, in first-seen order.
    pub fn models(&self) -> Vec<&ModelId> {
        let mut seen: Vec<&ModelId> = Vec::new();
        for t in self.aliases.iter().flat_map(|a| a.all_targets()).chain(self.extra_models.iter()) {
            if !seen.iter().any(|s| s.id == t.id) {
                seen.push(t);
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SHIPPED: &str = include_str!("../../../../gateway.config.json");

    #[test]
    fn shipped_config_is_valid_and_gemini_first() {
        let c = GatewayConfig::from_json(SHIPPED).unwrap();
        for alias in REQUIRED_ALIASES {
            let a = c.alias(alias).unwrap();
            let chain = a.chain(&RequestFacts::default(), 0.5);
            assert_eq!(chain[0].id, "google-ai-studio/gemini-3.5-flash-lite", "{alias}");
            assert_eq!(chain[1].provider(), "openai", "{alias}");
            assert_eq!(chain[2].provider(), "anthropic", "{alias}");
        }
        assert_eq!(c.providers["google-ai-studio"].requests_per_minute, 100);
        assert_eq!(c.providers["google-ai-studio"].daily_budget, Usd::from_dollars(10));
        assert_eq!(c.providers["openai"].daily_budget, Usd::from_dollars(20));
        assert_eq!(c.providers["anthropic"].daily_budget, Usd::from_dollars(20));
        assert_eq!(c.providers["openai"].requests_per_minute, 50);
        assert_eq!(c.providers["anthropic"].requests_per_minute, 50);
        let breaker = c.providers["google-ai-studio"].breaker.expect("a circuit breaker");
        assert_eq!(
            breaker,
            BreakerPolicy {
                window_ms: 60_000,
                min_attempts: 10,
                failure_permille: 500,
                cooldown_ms: 30_000,
                probes: 2
            }
        );
        assert_eq!(c.providers["workers-ai"].breaker, None);
    }

    #[test]
    fn circuit_breakers_take_defaults_and_refuse_nonsense() {
        let defaults = SHIPPED.replacen(
            "\"circuit_breaker\": {\"window_seconds\": 60, \"min_attempts\": 10, \"failure_ratio\": 0.5, \"cooldown_seconds\": 30, \"probes\": 2}",
            "\"circuit_breaker\": {\"cooldown_seconds\": 5}",
            1,
        );
        let c = GatewayConfig::from_json(&defaults).unwrap();
        let b = c.providers["google-ai-studio"].breaker.unwrap();
        assert_eq!(
            (b.window_ms, b.min_attempts, b.failure_permille, b.cooldown_ms, b.probes),
            (60_000, 10, 500, 5_000, 2)
        );
        for bad in
            ["{\"failure_ratio\": 0}", "{\"failure_ratio\": 1.5}", "{\"probes\": 0}", "{\"cooldown_seconds\": 0}"]
        {
            let text = SHIPPED.replacen(
                "\"circuit_breaker\": {\"window_seconds\": 60, \"min_attempts\": 10, \"failure_ratio\": 0.5, \"cooldown_seconds\": 30, \"probes\": 2}",
                &format!("\"circuit_breaker\": {bad}"),
                1,
            );
            let err = GatewayConfig::from_json(&text).unwrap_err();
            assert!(err.to_string().contains("circuit_breaker"), "{bad}: {err}");
        }
    }

    #[test]
    fn target_splits_at_first_slash() {
        let t = ModelId::parse("workers-ai/@cf/meta/llama-3.1-8b-instruct").unwrap();
        assert_eq!(t.provider(), "workers-ai");
        assert_eq!(t.model(), "@cf/meta/llama-3.1-8b-instruct");
        for bad in ["gemini", "/m", "p/", "Open AI/x", "p/has space", "p/\u{0}"] {
            assert!(ModelId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reports_every_problem() {
        let cfg = r#"{
            "providers": {"openai": {"requests_per_minute": 0, "daily_budget_usd": -1}, "nope": {"requests_per_minute": 1, "daily_budget_usd": 1}},
            "routes": {"triage": {"targets": ["openai/gpt-4o", "anthropic/claude", "bad", "openai/gpt-unpriced"]}, "a/b": {"targets": []},
                       "c": {"targets": ["openai/gpt-4o"], "split": []}, "d": {"split": [{"weight": 0, "targets": ["openai/gpt-4o"]}], "cache": {"ttl_seconds": 5}}}
        }"#;
        let err = GatewayConfig::from_json(cfg).unwrap_err();
        let all = err.to_string();
        for needle in [
            "provider `nope` is not an AI Gateway provider",
            "daily_budget_usd must be a positive amount",
            "requests_per_minute must be at least 1",
            "`openai/gpt-unpriced` has no price",
            "route `c`: give exactly one of `targets` or `split`",
            "route `d`: split needs at least one arm with a positive weight",
            "route `d`: cache.ttl_seconds must be 60 to 2592000",
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
    fn routes_may_bound_their_output() {
        let c = GatewayConfig::from_json(SHIPPED).unwrap();
        assert_eq!(c.max_output_tokens(Some("triage")), 1024);
        assert_eq!(c.max_output_tokens(Some("review")), 8192);
        assert_eq!(c.max_output_tokens(Some("default")), c.estimates.max_output_tokens);
        assert_eq!(c.max_output_tokens(None), c.estimates.max_output_tokens);
        assert_eq!(c.max_output_tokens(Some("no-such-route")), c.estimates.max_output_tokens);
        for bad in ["0", "10000001"] {
            let cfg = SHIPPED.replace("\"max_output_tokens\": 1024", &format!("\"max_output_tokens\": {bad}"));
            let err = GatewayConfig::from_json(&cfg).unwrap_err().to_string();
            assert!(err.contains("route `triage`: max_output_tokens must be 1 to 10000000"), "{err}");
        }
        let cfg = SHIPPED.replace("\"max_output_tokens\": 1024", "\"max_output_tokens\": -5");
        assert!(GatewayConfig::from_json(&cfg).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = GatewayConfig::from_json(r#"{"providers":{},"routes":{},"rutes":{}}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `rutes`"), "{err}");
    }

    #[test]
    fn budgets_are_exact_decimals() {
        let cfg = SHIPPED.replace("\"daily_budget_usd\": 10", "\"daily_budget_usd\": 0.1");
        let c = GatewayConfig::from_json(&cfg).unwrap();
        assert_eq!(c.providers["google-ai-studio"].daily_budget, Usd::parse_dollars("0.1").unwrap());
        let cfg = SHIPPED.replace("\"daily_budget_usd\": 10", "\"daily_budget_usd\": \"0.001\"");
        let c = GatewayConfig::from_json(&cfg).unwrap();
        assert_eq!(c.providers["google-ai-studio"].daily_budget, Usd(1_000_000_000));
    }

    fn route_config(route: &str) -> GatewayConfig {
        let cfg = format!(
            r#"{{"providers": {{"google-ai-studio": {{"requests_per_minute": 1, "daily_budget_usd": 1}},
                               "openai": {{"requests_per_minute": 1, "daily_budget_usd": 1}}}},
                "routes": {{"triage": {route}, "review": {{"targets": ["openai/gpt-4o"]}}, "default": {{"targets": ["openai/gpt-4o"]}}}}}}"#
        );
        GatewayConfig::from_json(&cfg).unwrap()
    }

    #[test]
    fn a_rule_moves_to_a_cheaper_chain_once_the_primary_providers_budget_is_mostly_used() {
        let c = route_config(
            r#"{"targets": ["google-ai-studio/gemini-2.5-flash", "openai/gpt-4o-mini"],
                "rules": [{"when": {"budget_used_above": 0.8}, "targets": ["openai/gpt-4o-mini"]}]}"#,
        );
        let a = c.alias("triage").unwrap();
        let used = |permille: u32| BTreeMap::from([("google-ai-studio".to_owned(), permille)]);
        let first = |m: &BTreeMap<String, u32>| {
            a.chain(&RequestFacts { budget_used: Some(m), ..Default::default() }, 0.5)[0].id.clone()
        };
        assert_eq!(first(&used(500)), "google-ai-studio/gemini-2.5-flash");
        assert_eq!(first(&used(800)), "google-ai-studio/gemini-2.5-flash", "above, not at");
        assert_eq!(first(&used(801)), "openai/gpt-4o-mini");
        assert_eq!(a.chain(&RequestFacts::default(), 0.5)[0].provider(), "google-ai-studio", "unknown: 0");
        let bad = r#"{"targets": ["openai/gpt-4o-mini"], "rules": [{"when": {"budget_used_above": 1.5}, "targets": ["openai/gpt-4o"]}]}"#;
        let cfg = format!(
            r#"{{"providers": {{"openai": {{"requests_per_minute": 1, "daily_budget_usd": 1}}}},
                "routes": {{"triage": {bad}, "review": {{"targets": ["openai/gpt-4o"]}}, "default": {{"targets": ["openai/gpt-4o"]}}}}}}"#
        );
        assert!(GatewayConfig::from_json(&cfg).unwrap_err().to_string().contains("budget_used_above"));
    }

    #[test]
    fn weighted_split_follows_the_roll() {
        let c = route_config(
            r#"{"split": [{"weight": 80, "targets": ["google-ai-studio/gemini-2.5-flash", "openai/gpt-4o-mini"]},
                          {"weight": 20, "targets": ["openai/gpt-4o-mini", "google-ai-studio/gemini-2.5-flash"]}]}"#,
        );
        let a = c.alias("triage").unwrap();
        let f = RequestFacts::default();
        assert_eq!(a.chain(&f, 0.0)[0].provider(), "google-ai-studio");
        assert_eq!(a.chain(&f, 0.79)[0].provider(), "google-ai-studio");
        assert_eq!(a.chain(&f, 0.80)[0].provider(), "openai");
        assert_eq!(a.chain(&f, 0.999)[0].provider(), "openai");
        let gemini = (0..1000).filter(|i| a.chain(&f, *i as f64 / 1000.0)[0].provider() == "google-ai-studio").count();
        assert_eq!(gemini, 800);
    }

    #[test]
    fn first_matching_rule_wins() {
        let c = route_config(
            r#"{"targets": ["google-ai-studio/gemini-2.5-flash"],
                "rules": [{"when": {"min_input_tokens": 1000}, "targets": ["openai/gpt-4o"]},
                          {"when": {"has_tools": true, "agent": ["PRReviewAgent"]}, "targets": ["openai/gpt-4o-mini"]}]}"#,
        );
        let a = c.alias("triage").unwrap();
        let chain = |f: RequestFacts| a.chain(&f, 0.0)[0].id.clone();
        assert_eq!(chain(RequestFacts::default()), "google-ai-studio/gemini-2.5-flash");
        assert_eq!(chain(RequestFacts { input_tokens: 1000, ..Default::default() }), "openai/gpt-4o");
        let tools = RequestFacts { has_tools: true, agent: Some("PRReviewAgent"), ..Default::default() };
        assert_eq!(chain(tools), "openai/gpt-4o-mini");
        let other_agent = RequestFacts { has_tools: true, agent: Some("TriagingAgent"), ..Default::default() };
        assert_eq!(chain(other_agent), "google-ai-studio/gemini-2.5-flash");
        assert_eq!(c.models().len(), 3);
    }

    #[test]
    fn models_are_distinct_in_order() {
        let c = GatewayConfig::from_json(SHIPPED).unwrap();
        let ids: Vec<&str> = c.models().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids[0], "google-ai-studio/gemini-3.5-flash-lite");
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
    fn scoped_tokens_are_read_and_checked() {
        use crate::request::authenticate::Identity;
        use crate::request::tokens::token_hash;
        let map = format!(r#"{{"{}": {{"agent": "ReviewAgent", "repositories": ["acme/*"]}}}}"#, token_hash("tok-r"));
        let ids = [("CF_ACCOUNT_ID", "acct"), ("AI_GATEWAY_ID", "gw"), ("CF_AIG_TOKEN", "aig")];
        // Scoped tokens alone are enough to serve.
        let s = Settings::read(lookup(&[ids[0], ids[1], ids[2], ("AGENT_TOKENS", map.as_str())]));
        assert!(s.missing().is_empty() && s.invalid.is_empty(), "{:?} {:?}", s.missing(), s.invalid);
        let identity = s.agent_tokens().check_bearer(Some("Bearer tok-r")).unwrap();
        // The request's settings know the presented token, to redact it; the deployment's do not.
        assert!(!s.secret_values().contains(&"tok-r"));
        assert!(s.for_identity(&identity).secret_values().contains(&"tok-r"));
        assert!(matches!(s.for_identity(&Identity::Agent), std::borrow::Cow::Borrowed(_)));

        // Invalid: named, never shown; no scoped token accepted; AGENT_TOKEN still is.
        let bad = map.replace("acme/*", "acme/**");
        let s =
            Settings::read(lookup(&[ids[0], ids[1], ids[2], ("AGENT_TOKEN", "agt"), ("AGENT_TOKENS", bad.as_str())]));
        assert_eq!(s.invalid.len(), 1, "{:?}", s.invalid);
        assert!(s.invalid[0].starts_with("AGENT_TOKENS") && !s.invalid[0].contains(&token_hash("tok-r")));
        assert!(s.agent_tokens.is_empty());
        assert_eq!(s.agent_tokens().check_bearer(Some("Bearer tok-r")).unwrap_err().status(), 401);
        assert!(s.agent_tokens().check_bearer(Some("Bearer agt")).is_ok());
        let s = Settings::read(lookup(&[("AGENT_TOKENS", "{not json")]));
        assert!(s.missing().contains(&"AGENT_TOKEN"));
        assert!(s.invalid[0].contains("not valid JSON"), "{:?}", s.invalid);

        // ADMIN_TOKEN must not be an agent's token of either kind.
        let s = Settings::read(lookup(&[("AGENT_TOKENS", map.as_str()), ("ADMIN_TOKEN", "tok-r")]));
        assert!(s.admin_token.is_none());
        assert!(s.invalid.iter().any(|p| p.starts_with("ADMIN_TOKEN")), "{:?}", s.invalid);
        let s = Settings::read(lookup(&[("AGENT_TOKENS", map.as_str()), ("AGENT_TOKEN", "tok-r")]));
        assert!(s.invalid.iter().any(|p| p.contains("lists AGENT_TOKEN itself")), "{:?}", s.invalid);
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

    #[test]
    fn the_test_panic_path_is_off_unless_set_to_a_path() {
        assert_eq!(Settings::read(lookup(&[])).test_panic_path, None);
        assert_eq!(Settings::read(lookup(&[("GATEWAY_TEST_PANIC_PATH", " ")])).test_panic_path, None);
        assert_eq!(Settings::read(lookup(&[("GATEWAY_TEST_PANIC_PATH", "panic")])).test_panic_path, None);
        let set = Settings::read(lookup(&[("GATEWAY_TEST_PANIC_PATH", "/__test/panic")]));
        assert_eq!(set.test_panic_path.as_deref(), Some("/__test/panic"));
    }
}
