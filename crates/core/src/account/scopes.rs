//! Budgets and rate limits that follow the caller: per repository (`x-github-repository`, with a
//! default for repositories not listed and an optional total per owner) and per agent
//! (`x-agent-name`), each a daily USD budget and requests per minute, in addition to the
//! provider's.
//!
//! Each scope is a limiter of its own (the same `LimiterState` in the same Durable Object class,
//! keyed by [`Scope::key`]), reserved and settled exactly like the provider's: before each
//! attempt the request reserves its worst case in *every* scope it falls under, all or nothing
//! (the shell releases what it got when any refuses), and the attempt's books close them all the
//! same way. A scope's refusal ends the request with its own 429 — another provider would not
//! help, the scope's money is across providers — and other repositories are unaffected.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::account::limits::{Policy, Refusal};
use crate::error::{ErrorKind, GatewayError};
use crate::money::pricing::Usd;
use crate::request::caller::{canonical_repository, valid_agent, valid_repository};

/// What a scope is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKind {
    Repository,
    Owner,
    Agent,
}

impl ScopeKind {
    pub fn name(self) -> &'static str {
        match self {
            ScopeKind::Repository => "repository",
            ScopeKind::Owner => "owner",
            ScopeKind::Agent => "agent",
        }
    }
}

/// One scope a request falls under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: ScopeKind,
    /// `owner/name`, `owner`, or the agent's name.
    pub name: String,
    pub policy: Policy,
}

impl Scope {
    /// The limiter's name (its Durable Object's): never the same as a provider's.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.name(), self.name)
    }

    /// The 429 when this scope refused: its own code, the scope and the limit named, and
    /// `Retry-After` until it may lift (the next UTC day for a budget).
    pub fn refused(&self, refusal: &Refusal) -> GatewayError {
        let kind = match self.kind {
            ScopeKind::Repository | ScopeKind::Owner => ErrorKind::RepositoryBudgetExhausted,
            ScopeKind::Agent => ErrorKind::AgentBudgetExhausted,
        };
        let limit = if refusal.over_budget {
            format!("its daily budget of ${}", self.policy.daily_budget)
        } else {
            format!("its limit of {} requests per minute", self.policy.requests_per_minute)
        };
        let mut err = GatewayError::new(
            kind,
            format!("The {} `{}` is over {limit} on this gateway ({}).", self.kind.name(), self.name, refusal.message),
        );
        err.retry_after = Some(refusal.retry_after_secs.to_string());
        err
    }
}

/// A scope's limits as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeLimits {
    pub daily_budget: Usd,
    /// `None`: no rate limit of its own.
    pub requests_per_minute: Option<u32>,
}

impl ScopeLimits {
    fn policy(self) -> Policy {
        Policy {
            requests_per_minute: self.requests_per_minute.unwrap_or(u32::MAX),
            daily_budget: self.daily_budget,
            breaker: None,
        }
    }
}

/// `scopes` in `gateway.config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    /// By `owner/name`; `default` applies to every repository not listed (each its own budget).
    pub repositories: BTreeMap<String, ScopeLimits>,
    /// A total per owner, over all of its repositories.
    pub owners: BTreeMap<String, ScopeLimits>,
    /// By agent name; `default` applies to every agent not listed.
    pub agents: BTreeMap<String, ScopeLimits>,
}

/// The key of the limits every name not listed gets.
pub const DEFAULT: &str = "default";

impl Scopes {
    pub fn is_empty(&self) -> bool {
        self.repositories.is_empty() && self.owners.is_empty() && self.agents.is_empty()
    }

    /// Every scope a request from `agent` about `repository` falls under, in a fixed order. The
    /// repository and its owner are named in their canonical spelling, however `repository` is
    /// spelled (a ledger row written before names were canonical is the same scope).
    pub fn of(&self, agent: Option<&str>, repository: Option<&str>) -> Vec<Scope> {
        let mut scopes = Vec::new();
        if let Some(repo) = repository.map(canonical_repository) {
            if let Some(limits) = pick(&self.repositories, &repo, true) {
                scopes.push(Scope { kind: ScopeKind::Repository, name: repo.clone(), policy: limits.policy() });
            }
            let owner = repo.split('/').next().unwrap_or(&repo);
            scopes.extend(self.owner(owner));
        }
        if let Some(agent) = agent {
            if let Some(limits) = pick(&self.agents, agent, true) {
                scopes.push(Scope { kind: ScopeKind::Agent, name: agent.to_owned(), policy: limits.policy() });
            }
        }
        scopes
    }

    /// The total of `owner` (canonical spelling), when it has one.
    pub fn owner(&self, owner: &str) -> Option<Scope> {
        let limits = pick(&self.owners, owner, false)?;
        Some(Scope { kind: ScopeKind::Owner, name: owner.to_owned(), policy: limits.policy() })
    }
}

/// The limits of `name` in `map`, or (with `default`) those every name not listed gets.
fn pick(map: &BTreeMap<String, ScopeLimits>, name: &str, default: bool) -> Option<ScopeLimits> {
    map.get(name).or_else(|| default.then(|| map.get(DEFAULT)).flatten()).copied()
}

/// `/limits?repository=…&agent=…`: which scopes to show (none: all the reader may see). The
/// repository is validated as `x-github-repository` is and kept canonical; the agent as
/// `x-agent-name` is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeFilter {
    pub repository: Option<String>,
    pub agent: Option<String>,
}

impl ScopeFilter {
    pub fn parse(query: &str) -> Result<ScopeFilter, GatewayError> {
        let mut filter = ScopeFilter::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = crate::percent::decode_query_component(value)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| GatewayError::new(ErrorKind::InvalidRequest, format!("`{key}` needs a value")))?;
            let invalid = |what: &str| GatewayError::new(ErrorKind::InvalidRequest, format!("`{key}` must be {what}."));
            match key {
                "repository" if valid_repository(&value) => filter.repository = Some(canonical_repository(&value)),
                "repository" => return Err(invalid("`owner/name` (GitHub's characters only)")),
                "agent" if valid_agent(&value) => filter.agent = Some(value),
                "agent" => return Err(invalid("1-64 letters, digits, `.`, `_` or `-`")),
                _ => {
                    return Err(GatewayError::new(
                        ErrorKind::InvalidRequest,
                        "/limits takes `repository` and `agent` (exact names) and nothing else.",
                    ))
                }
            }
        }
        Ok(filter)
    }

    /// Whether the filter keeps `scope`: a repository filter keeps that repository and its
    /// owner, an agent filter that agent; both keep both.
    pub fn keeps(&self, scope: &Scope) -> bool {
        let wanted = match scope.kind {
            ScopeKind::Repository => self.repository.as_deref().is_none_or(|r| r == scope.name),
            ScopeKind::Owner => {
                self.repository.as_deref().is_none_or(|r| r.split('/').next() == Some(scope.name.as_str()))
            }
            ScopeKind::Agent => self.agent.as_deref().is_none_or(|a| a == scope.name),
        };
        let other_filter = match scope.kind {
            ScopeKind::Agent => self.repository.is_some() && self.agent.is_none(),
            _ => self.agent.is_some() && self.repository.is_none(),
        };
        wanted && !other_filter
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScopes<'a> {
    #[serde(default, borrow)]
    repositories: BTreeMap<String, RawScopeLimits<'a>>,
    #[serde(default, borrow)]
    owners: BTreeMap<String, RawScopeLimits<'a>>,
    #[serde(default, borrow)]
    agents: BTreeMap<String, RawScopeLimits<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScopeLimits<'a> {
    #[serde(borrow)]
    daily_budget_usd: &'a RawValue,
    #[serde(default)]
    requests_per_minute: Option<u32>,
}

impl RawScopes<'_> {
    pub(crate) fn read(&self, problems: &mut Vec<String>) -> Scopes {
        // Repository and owner names are GitHub's: canonical, so that the configuration's
        // spelling is the scope's. Agent names are kept as written.
        let read = |group: &str, raw: &BTreeMap<String, RawScopeLimits<'_>>, problems: &mut Vec<String>| {
            let github_names = group != "agents";
            let mut out = BTreeMap::new();
            for (written, limits) in raw {
                let name = if github_names { canonical_repository(written) } else { written.clone() };
                if out.contains_key(&name) {
                    problems.push(format!(
                        "scopes.{group}.{written}: names `{name}` again (GitHub names are one whatever their case)"
                    ));
                    continue;
                }
                let name = &name;
                let text = limits.daily_budget_usd.get();
                let text = crate::json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned());
                let valid_name = !name.is_empty() && name.len() <= 200 && !name.chars().any(char::is_control);
                match (Usd::parse_dollars(&text), limits.requests_per_minute) {
                    (_, Some(0)) => {
                        problems.push(format!("scopes.{group}.{name}: requests_per_minute must be at least 1"))
                    }
                    (Some(budget), rpm) if budget > Usd::ZERO && valid_name => {
                        out.insert(name.clone(), ScopeLimits { daily_budget: budget, requests_per_minute: rpm });
                    }
                    _ => problems.push(format!(
                        "scopes.{group}.{name}: daily_budget_usd must be a positive amount of USD (at most 12 decimals)"
                    )),
                }
            }
            out
        };
        Scopes {
            repositories: read("repositories", &self.repositories, problems),
            owners: read("owners", &self.owners, problems),
            agents: read("agents", &self.agents, problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(json: &str) -> (Scopes, Vec<String>) {
        let raw: RawScopes = crate::json::from_str(json).unwrap();
        let mut problems = Vec::new();
        (raw.read(&mut problems), problems)
    }

    const GITHUB_APP: &str = r#"{
        "repositories": {"default": {"daily_budget_usd": 2, "requests_per_minute": 30}, "acme/big": {"daily_budget_usd": "10"}},
        "owners": {"acme": {"daily_budget_usd": 25}},
        "agents": {"ReviewAgent": {"daily_budget_usd": 15}}
    }"#;

    #[test]
    fn a_request_falls_under_its_repository_its_owner_and_its_agent() {
        let (s, problems) = scopes(GITHUB_APP);
        assert!(problems.is_empty(), "{problems:?}");
        let keys = |agent, repo| s.of(agent, repo).iter().map(Scope::key).collect::<Vec<_>>();
        assert_eq!(
            keys(Some("ReviewAgent"), Some("acme/big")),
            ["repository:acme/big", "owner:acme", "agent:ReviewAgent"]
        );
        // Unlisted repositories each get the default, under their own key; no owner total for others.
        assert_eq!(keys(Some("TriagingAgent"), Some("octo/app")), ["repository:octo/app"]);
        assert_eq!(keys(None, None), Vec::<String>::new());
        let big = &s.of(None, Some("acme/big"))[0];
        assert_eq!((big.policy.daily_budget, big.policy.requests_per_minute), (Usd::from_dollars(10), u32::MAX));
        let other = &s.of(None, Some("octo/app"))[0];
        assert_eq!((other.policy.daily_budget, other.policy.requests_per_minute), (Usd::from_dollars(2), 30));
    }

    #[test]
    fn filters_are_validated_and_canonical() {
        let f = ScopeFilter::parse("repository=Octo-Org%2FApp&agent=ReviewAgent").unwrap();
        assert_eq!((f.repository.as_deref(), f.agent.as_deref()), (Some("octo-org/app"), Some("ReviewAgent")));
        for bad in [
            "model=x",
            "agent=",
            "repository=",
            "repository=no-slash",
            "repository=a%2Fb%2Fc",
            "agent=a%20b",
            "repository=octo%2Fr%C4%B0po",
            "agent=%0a",
        ] {
            assert_eq!(ScopeFilter::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
        let long = format!("repository=o/{}", "r".repeat(10_000));
        assert_eq!(ScopeFilter::parse(&long).unwrap_err().status(), 400);
    }

    #[test]
    fn repository_and_owner_names_are_canonical_in_the_configuration() {
        let (s, problems) = scopes(
            r#"{"repositories": {"Acme/Big": {"daily_budget_usd": 10}}, "owners": {"ACME": {"daily_budget_usd": 25}},
                "agents": {"ReviewAgent": {"daily_budget_usd": 1}}}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let keys: Vec<String> = s.of(Some("ReviewAgent"), Some("acme/BIG")).iter().map(Scope::key).collect();
        assert_eq!(keys, ["repository:acme/big", "owner:acme", "agent:ReviewAgent"]);
        assert!(s.of(Some("reviewagent"), None).is_empty(), "agent names keep their case");
        let (_, problems) =
            scopes(r#"{"repositories": {"Acme/Big": {"daily_budget_usd": 10}, "acme/big": {"daily_budget_usd": 1}}}"#);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("names `acme/big` again"), "{problems:?}");
    }

    #[test]
    fn bad_limits_are_named() {
        let (_, problems) = scopes(
            r#"{"repositories": {"a/b": {"daily_budget_usd": 0}}, "agents": {"x": {"daily_budget_usd": 1, "requests_per_minute": 0}}}"#,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("scopes.repositories.a/b"));
        assert!(problems[1].contains("scopes.agents.x"));
    }

    #[test]
    fn a_refusal_is_a_429_with_its_own_code_naming_the_scope_and_the_limit() {
        let (s, _) = scopes(GITHUB_APP);
        let [repo, owner, agent] = &s.of(Some("ReviewAgent"), Some("acme/big"))[..] else { panic!() };
        let over = Refusal {
            rate_limited: false,
            over_budget: true,
            circuit_open: false,
            model_unavailable: false,
            ends_request: None,
            retry_after_secs: 3600,
            message: "daily budget of $10 would be exceeded".into(),
        };
        let err = repo.refused(&over);
        assert_eq!((err.status(), err.kind.code()), (429, "repository_budget_exhausted"));
        assert!(err.message.contains("repository `acme/big`") && err.message.contains("$10"), "{}", err.message);
        assert_eq!(err.retry_after.as_deref(), Some("3600"));
        assert_eq!(owner.refused(&over).kind.code(), "repository_budget_exhausted");
        assert!(owner.refused(&over).message.contains("owner `acme`"));
        assert_eq!(agent.refused(&over).kind.code(), "agent_budget_exhausted");
    }
}
