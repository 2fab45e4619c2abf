//! The deployment's settings: vars and secrets, read once through a lookup function (the
//! runtime's `env.var`), validated with messages an operator can act on.

use std::borrow::Cow;

use crate::request::authenticate::{AgentTokens, Identity};
use crate::request::tokens::ScopedTokens;
use crate::secret::Secret;
use crate::subrequests;

/// Which AI Gateway endpoint serves chat completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// `{AI_GATEWAY_URL}/{account}/{gateway}/compat/chat/completions`, `cf-aig-authorization`
    /// with `CF_AIG_TOKEN`, provider keys stored in the gateway (BYOK). The default.
    Compat,
    /// `{CF_API_URL}/accounts/{account}/ai/v1/chat/completions` with `cf-aig-gateway-id`,
    /// authorised by `CF_API_TOKEN` (the endpoint Cloudflare now recommends; reference §0).
    Rest,
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
    /// Total time for a request, every retry and fallback included (until its answer starts).
    pub request_deadline_ms: u32,
    /// `LEDGER_RETENTION_DAYS`: how many days of ledger rows the cron keeps (today included).
    pub ledger_retention_days: u32,
    /// `SUBREQUEST_LIMIT`: most subrequests one `/analytics` or `/limits` answer makes (the
    /// platform's limit per request; [`crate::subrequests`] plans the reads within it).
    pub subrequest_limit: u32,
    pub agent_token: Option<Secret>,
    /// `AGENT_TOKENS`: scoped tokens, known by their hashes (none when unset or invalid).
    pub agent_tokens: ScopedTokens,
    pub aig_token: Option<Secret>,
    pub api_token: Option<Secret>,
    /// Bearer token of the admin routes (`/admin/gateways`); unset: those routes are off.
    pub admin_token: Option<Secret>,
    /// `ANALYTICS_TOKEN`: reads `/analytics` (as `AGENT_TOKEN` does) and nothing else.
    pub analytics_token: Option<Secret>,
    /// `ALLOW_CALLER_PROVIDER_KEYS`: native routes may forward a caller's own provider-key
    /// headers (never the agent token). Off by default: keys live in the gateway (BYOK).
    pub allow_caller_provider_keys: bool,
    /// `LIMITER_LEASES`: busy isolates admit under leases of the limiters' windows and budgets
    /// (`account/limits/lease.rs`) instead of asking the limiter for every request. On by
    /// default; `false` makes every request reserve at the limiter (the benchmark's baseline).
    pub limiter_leases: bool,
    /// `LEASE_TTL_MS`: how long a lease lives unless renewed (`account/limits/lease.rs`).
    pub lease_ttl_ms: u64,
    /// `RESERVATION_TTL_MS`: how long a reservation lives before it is charged its worst case
    /// as a request whose isolate died (`account/limits/died.rs`).
    pub reservation_ttl_ms: u64,
    /// Problems found while reading (bad numbers, unknown modes): reported by `/healthz`.
    pub invalid: Vec<String>,
    /// `GATEWAY_TEST_PANIC_PATH`, for tests only: a request to exactly this path panics the
    /// wasm, so that a test can check the next request is served (the module is reinstantiated).
    /// Unset (the default, and in `wrangler.toml`), nothing panics: only a test's Worker
    /// configuration sets it (tests/e2e/test_panic_recovery.py).
    pub test_panic_path: Option<String>,
    /// The scoped token one request presented, in that request's copy of the settings
    /// ([`Settings::for_identity`]), so that it is redacted like the configured secrets.
    pub request_secret: Option<Secret>,
}

pub const DEFAULT_GATEWAY_URL: &str = "https://gateway.ai.cloudflare.com/v1";
pub const DEFAULT_API_URL: &str = "https://api.cloudflare.com/client/v4";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_FIRST_BYTE_TIMEOUT_MS: u32 = 60_000;
pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u32 = 30_000;
pub const DEFAULT_REQUEST_DEADLINE_MS: u32 = 120_000;

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
        let mut flag = |name: &str, default: bool| match text(name).as_deref() {
            None => default,
            Some("true") => true,
            Some("false") => false,
            Some(_) => {
                invalid.push(format!("{name} must be `true` or `false`"));
                default
            }
        };
        let allow_caller_provider_keys = flag("ALLOW_CALLER_PROVIDER_KEYS", false);
        let limiter_leases = flag("LIMITER_LEASES", true);
        let agent_token = lookup("AGENT_TOKEN").and_then(Secret::new);
        let agent_tokens = match text("AGENT_TOKENS") {
            None => ScopedTokens::default(),
            Some(json) => ScopedTokens::parse(&json).unwrap_or_else(|problem| {
                // Off as a whole: a token the operator meant to scope must not pass as another.
                invalid.push(format!("{problem}: no scoped token is accepted"));
                ScopedTokens::default()
            }),
        };
        let scoped = |t: &Option<Secret>| t.as_ref().is_some_and(|t| agent_tokens.find(t.expose()).is_some());
        if scoped(&agent_token) {
            invalid.push("AGENT_TOKENS lists AGENT_TOKEN itself (that token is taken as the scoped one)".to_owned());
        }
        let mut admin_token = lookup("ADMIN_TOKEN").and_then(Secret::new);
        if admin_token.is_some() && (admin_token == agent_token || scoped(&admin_token)) {
            // An agent must not be able to reconfigure the gateway with its own token.
            invalid.push(
                "ADMIN_TOKEN must differ from AGENT_TOKEN and from every AGENT_TOKENS token (the admin routes stay off)"
                    .to_owned(),
            );
            admin_token = None;
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
            request_deadline_ms: number(
                "REQUEST_DEADLINE_MS",
                DEFAULT_REQUEST_DEADLINE_MS as u64,
                100,
                900_000,
                &mut invalid,
            ) as u32,
            ledger_retention_days: number("LEDGER_RETENTION_DAYS", 90, 1, 36_500, &mut invalid) as u32,
            subrequest_limit: number(
                "SUBREQUEST_LIMIT",
                u64::from(subrequests::DEFAULT_LIMIT),
                u64::from(subrequests::MIN_LIMIT),
                u64::from(subrequests::MAX_LIMIT),
                &mut invalid,
            ) as u32,
            agent_token,
            agent_tokens,
            aig_token: lookup("CF_AIG_TOKEN").and_then(Secret::new),
            api_token: lookup("CF_API_TOKEN").and_then(Secret::new),
            admin_token,
            analytics_token: lookup("ANALYTICS_TOKEN").and_then(Secret::new),
            allow_caller_provider_keys,
            limiter_leases,
            lease_ttl_ms: number(
                "LEASE_TTL_MS",
                crate::account::limits::lease::LEASE_TTL_MS,
                crate::account::limits::lease::LEASE_TTL_RANGE_MS.0,
                crate::account::limits::lease::LEASE_TTL_RANGE_MS.1,
                &mut invalid,
            ),
            reservation_ttl_ms: number(
                "RESERVATION_TTL_MS",
                crate::account::limits::RESERVATION_TTL_MS,
                crate::account::limits::RESERVATION_TTL_RANGE_MS.0,
                crate::account::limits::RESERVATION_TTL_RANGE_MS.1,
                &mut invalid,
            ),
            invalid,
            test_panic_path: text("GATEWAY_TEST_PANIC_PATH").filter(|p| p.starts_with('/')),
            request_secret: None,
        }
    }

    /// Names of what the chat route needs and does not have.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.agent_token.is_none() && self.agent_tokens.is_empty() {
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

    /// The tokens agents may call with.
    pub fn agent_tokens(&self) -> AgentTokens<'_> {
        AgentTokens { agent_token: self.agent_token.as_ref().map(Secret::expose), scoped: &self.agent_tokens }
    }

    /// The settings one request runs with: these, or for a scoped token a copy that also knows
    /// the token as presented, so that every redaction (error texts, relayed error bodies, stream
    /// faults) removes it as it removes `AGENT_TOKEN`.
    pub fn for_identity(&self, identity: &Identity<'_>) -> Cow<'_, Settings> {
        match identity.presented_secret() {
            None => Cow::Borrowed(self),
            Some(secret) => Cow::Owned(Settings { request_secret: Some(secret.clone()), ..self.clone() }),
        }
    }

    /// Every secret's value, for [`crate::error::redact`].
    pub fn secret_values(&self) -> Vec<&str> {
        [
            &self.agent_token,
            &self.aig_token,
            &self.api_token,
            &self.admin_token,
            &self.analytics_token,
            &self.request_secret,
        ]
        .into_iter()
        .flatten()
        .map(Secret::expose)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Settings {
        Settings::read(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn the_subrequest_limit_is_the_free_plans_unless_set() {
        assert_eq!(read(&[]).subrequest_limit, 50);
        assert_eq!(read(&[("SUBREQUEST_LIMIT", "1000")]).subrequest_limit, 1000);
        let low = read(&[("SUBREQUEST_LIMIT", "3")]);
        assert_eq!(low.subrequest_limit, 50);
        assert_eq!(low.invalid, vec!["SUBREQUEST_LIMIT must be a whole number from 10 to 10000".to_owned()]);
    }

    /// A deployment may hand out scoped tokens only: nothing is missing, AGENT_TOKEN is no token.
    #[test]
    fn scoped_tokens_alone_are_a_configuration() {
        use crate::request::tokens::token_hash;
        let map = format!(r#"{{"{}": {{"agent": "ReviewAgent"}}}}"#, token_hash("agt-review"));
        let s = read(&[("AGENT_TOKENS", &map), ("CF_ACCOUNT_ID", "a"), ("AI_GATEWAY_ID", "g"), ("CF_AIG_TOKEN", "t")]);
        assert!(s.missing().is_empty() && s.invalid.is_empty(), "{:?} {:?}", s.missing(), s.invalid);
        let tokens = s.agent_tokens();
        assert!(tokens.check_bearer(Some("Bearer agt-review")).is_ok());
        assert_eq!(tokens.check_bearer(Some("Bearer agt-shared")).unwrap_err().status(), 401);
    }

    /// A map that does not parse (here a raw token where its hash belongs) is named, never shown,
    /// and turns every scoped token off: a token meant to be scoped must not pass as another.
    #[test]
    fn an_invalid_token_map_is_named_and_accepts_no_scoped_token() {
        let raw = "agt-raw-token-stored-by-mistake";
        let map = format!(r#"{{"{raw}": {{"agent": "ReviewAgent"}}}}"#);
        let s = read(&[("AGENT_TOKEN", "agt-shared"), ("AGENT_TOKENS", &map)]);
        let [problem] = s.invalid.as_slice() else { panic!("{:?}", s.invalid) };
        assert!(problem.starts_with("AGENT_TOKENS") && problem.contains("not a SHA-256"), "{problem}");
        assert!(problem.ends_with("no scoped token is accepted") && !problem.contains(raw), "{problem}");
        let tokens = s.agent_tokens();
        assert_eq!(tokens.check_bearer(Some(&format!("Bearer {raw}"))).unwrap_err().status(), 401);
        assert!(tokens.check_bearer(Some("Bearer agt-shared")).is_ok());
    }

    #[test]
    fn the_limiters_times_to_live_are_settings_within_bounds() {
        let s = read(&[]);
        assert_eq!((s.lease_ttl_ms, s.reservation_ttl_ms), (10_000, 900_000));
        let s = read(&[("LEASE_TTL_MS", "3000"), ("RESERVATION_TTL_MS", "8000")]);
        assert_eq!((s.lease_ttl_ms, s.reservation_ttl_ms), (3_000, 8_000));
        let s = read(&[("LEASE_TTL_MS", "10"), ("RESERVATION_TTL_MS", "0")]);
        assert_eq!((s.lease_ttl_ms, s.reservation_ttl_ms), (10_000, 900_000));
        assert_eq!(s.invalid.len(), 2, "{:?}", s.invalid);
    }

    #[test]
    fn limiter_leases_are_on_unless_turned_off() {
        assert!(read(&[]).limiter_leases);
        assert!(read(&[("LIMITER_LEASES", "true")]).limiter_leases);
        assert!(!read(&[("LIMITER_LEASES", "false")]).limiter_leases);
        let odd = read(&[("LIMITER_LEASES", "off")]);
        assert!(odd.limiter_leases, "an unreadable value keeps the default");
        assert_eq!(odd.invalid, vec!["LIMITER_LEASES must be `true` or `false`".to_owned()]);
    }
}
