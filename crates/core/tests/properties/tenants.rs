//! Callers kept apart: one spelling per repository, what `/limits` shows a scoped token, whose
//! idempotency record a key names, and the back office's subrequests within their limit.

use gateway_core::account::listing::{list, Seen, Viewer};
use gateway_core::account::scopes::{ScopeFilter, ScopeKind};
use gateway_core::config::GatewayConfig;
use gateway_core::idempotency::IdempotencyKey;
use gateway_core::request::authenticate::Partition;
use gateway_core::request::authenticate::{AgentTokens, Identity};
use gateway_core::request::caller::Caller;
use gateway_core::request::tokens::{token_hash, ScopedTokens};
use gateway_core::subrequests::{plan_cross_check, plan_limiters, plan_log_reads, Subrequests};
use proptest::prelude::*;

use crate::{cases, hostile_text};

/// `name` with each ASCII letter's case flipped where `flips` says.
fn respell(name: &str, flips: &[bool]) -> String {
    name.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| {
            if *flip {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

fn config() -> GatewayConfig {
    let json = r#"{
        "providers": {"openai": {"requests_per_minute": 100, "daily_budget_usd": 10}},
        "routes": {"triage": {"targets": ["openai/gpt-4o-mini"]}, "review": {"targets": ["openai/gpt-4o-mini"]}, "default": {"targets": ["openai/gpt-4o-mini"]}},
        "scopes": {
            "repositories": {"default": {"daily_budget_usd": 2}, "Octo/Configured": {"daily_budget_usd": 3}},
            "owners": {"octo": {"daily_budget_usd": 30}, "acme": {"daily_budget_usd": 30}, "else": {"daily_budget_usd": 30}},
            "agents": {"default": {"daily_budget_usd": 1}}
        }
    }"#;
    GatewayConfig::from_json(json).unwrap()
}

const MINE: &str = "tok-mine";
const BOUND: &str = "tok-bound";
const SHARED: &str = "tok-shared";

/// `Mine` in `octo/*` and `acme/app`; `Bound` to its agent only.
fn tokens() -> ScopedTokens {
    ScopedTokens::parse(&format!(
        r#"{{"{}": {{"agent": "Mine", "repositories": ["Octo/*", "acme/app"]}}, "{}": {{"agent": "Bound"}}}}"#,
        token_hash(MINE),
        token_hash(BOUND)
    ))
    .unwrap()
}

fn repository() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["octo", "acme", "else", "octo2"]),
        prop::sample::select(vec!["app", "api", "docs", "Configured"]),
        prop::collection::vec(any::<bool>(), 1..8),
    )
        .prop_map(|(o, r, flips)| respell(&format!("{o}/{r}"), &flips))
}

fn caller() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    (
        prop::option::of(prop::sample::select(vec!["Mine", "Bound", "Other", "mine"]).prop_map(str::to_owned)),
        prop::option::of(repository()),
    )
}

proptest! {
    #![proptest_config(cases(256))]

    /// Every spelling of one repository is one caller repository (lower case), and so one set of
    /// scopes; input refused in one spelling is refused in every other (no odd input becomes a
    /// scope of its own).
    #[test]
    fn one_repository_whatever_its_case(name in prop_oneof![hostile_text(40), "[A-Za-z0-9-]{1,12}/[A-Za-z0-9._-]{1,12}"], flips in prop::collection::vec(any::<bool>(), 1..16)) {
        let other = respell(&name, &flips);
        let (a, b) = (Caller::from_headers(None, Some(&name)), Caller::from_headers(None, Some(&other)));
        prop_assert_eq!(a.is_ok(), b.is_ok());
        if let (Ok(a), Ok(b)) = (a, b) {
            prop_assert_eq!(&a.repository, &b.repository);
            let repo = a.repository.unwrap_or_default();
            prop_assert!(!repo.bytes().any(|c| c.is_ascii_uppercase()), "{:?}", repo);
            let config = config();
            let keys = |r: &str| config.scopes.of(None, Some(r)).iter().map(|s| s.key()).collect::<Vec<_>>();
            prop_assert_eq!(keys(&name), keys(&other));
        }
    }

    /// Whatever the ledger saw today and whatever the filter, a scoped token's listing names its
    /// own agent only, and repositories (and owners) its calls may name: for `Bound`, those its
    /// agent used today or the one it asked for by name. A filter outside is 403, never a listing.
    #[test]
    fn a_scoped_token_lists_only_its_own(seen in prop::collection::vec(caller(), 0..12), filter_repo in prop::option::of(repository()), filter_agent in prop::option::of(prop::sample::select(vec!["Mine", "Bound", "Other"])), bound in any::<bool>()) {
        let (config, tokens) = (config(), tokens());
        let token = tokens.find(if bound { BOUND } else { MINE }).unwrap();
        let mut query = Vec::new();
        if let Some(r) = &filter_repo { query.push(format!("repository={r}")); }
        if let Some(a) = filter_agent { query.push(format!("agent={a}")); }
        let filter = ScopeFilter::parse(&query.join("&")).unwrap();
        let listed = match list(&config.scopes, &filter, Viewer::Token(token), Seen { callers: &seen, complete: true }) {
            Ok(listed) => listed,
            Err(e) => {
                prop_assert_eq!((e.status(), e.kind.code()), (403, "token_scope_mismatch"));
                let outside = filter_agent.is_some_and(|a| a != token.agent)
                    || filter_repo.as_deref().is_some_and(|r| !token.allows(r));
                prop_assert!(outside, "refused a filter of its own: {:?}", query);
                return Ok(());
            }
        };
        let own_repos: Vec<String> = seen.iter()
            .filter(|(a, _)| a.as_deref() == Some("Bound"))
            .filter_map(|(_, r)| r.as_deref().map(str::to_ascii_lowercase))
            .chain(filter_repo.as_deref().map(str::to_ascii_lowercase))
            .collect();
        for l in &listed {
            let name = l.scope.name.as_str();
            match l.scope.kind {
                ScopeKind::Agent => prop_assert_eq!(name, token.agent.as_str()),
                ScopeKind::Repository if bound => prop_assert!(own_repos.iter().any(|r| r == name), "{}", name),
                ScopeKind::Repository => prop_assert!(token.allows(name), "{}", name),
                ScopeKind::Owner if bound => prop_assert!(own_repos.iter().any(|r| r.split('/').next() == Some(name)), "{}", name),
                ScopeKind::Owner => prop_assert!(name == "octo" || name == "acme", "{}", name),
            }
            // Named in the canonical spelling, and asked of its limiter only when used today.
            prop_assert!(!name.bytes().any(|c| c.is_ascii_uppercase()) || l.scope.kind == ScopeKind::Agent);
            let used = seen.iter().any(|(a, r)| config.scopes.of(a.as_deref(), r.as_deref()).iter().any(|s| s.key() == l.scope.key()));
            prop_assert_eq!(l.ask, used, "{}", l.scope.key());
        }
    }

    /// The filter's parser never panics and keeps only valid names, repositories canonical.
    #[test]
    fn limits_filters_are_bounded(query in hostile_text(300)) {
        if let Ok(f) = ScopeFilter::parse(&query) {
            if let Some(r) = f.repository {
                prop_assert!(r.len() <= 140 && !r.bytes().any(|c| c.is_ascii_uppercase() || c.is_ascii_control()));
            }
            if let Some(a) = f.agent { prop_assert!(a.len() <= 64); }
        }
    }

    /// One key and body name one record per caller: the same caller always finds its own, two
    /// callers never share one, and no record's name carries AGENT_TOKEN or its plain hash.
    #[test]
    fn a_replay_key_is_the_callers_own(key in "[!-~]{1,60}", body in prop::collection::vec(any::<u8>(), 0..64), delivery in any::<bool>(), first in 0usize..3, second in 0usize..3) {
        let scoped = tokens();
        let tokens = AgentTokens { agent_token: Some(SHARED), scoped: &scoped };
        let presented = [MINE, BOUND, SHARED];
        let name = |who: usize| {
            let identity: Identity<'_> = tokens.identify(presented[who]).unwrap();
            let partition = Partition::of(&identity, Some(SHARED));
            let (k, d) = if delivery { (None, Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")) } else { (Some(key.as_str()), None) };
            IdempotencyKey::from_headers(k, d, &body, &partition).unwrap().unwrap().object_name
        };
        let (a, b) = (name(first), name(second));
        prop_assert_eq!(a == b, first == second);
        for n in [&a, &b] {
            prop_assert!(!n.contains(SHARED) && !n.contains(&token_hash(SHARED)[..16]));
        }
    }

    /// Whatever is asked, in whatever order, a request never takes more than its limit, and the
    /// limiters' plan serves providers before scopes.
    #[test]
    fn subrequests_never_pass_the_limit(limit in 0u32..200, taken in 0u32..250, providers in 0usize..10, scopes in 0usize..150, pages in 0u32..250, aig in any::<bool>()) {
        let mut budget = Subrequests::new(limit);
        budget.take(taken);
        let (asked_providers, asked_scopes) = plan_limiters(&mut budget, providers, scopes);
        prop_assert!(asked_providers <= providers && asked_scopes <= scopes);
        prop_assert!(asked_scopes == 0 || asked_providers == providers);
        let mut check_left_out = false;
        if aig {
            plan_log_reads(&mut budget);
            prop_assert_eq!(budget.remaining(), 0);
        } else {
            match plan_cross_check(&mut budget, pages) {
                Some(plan) => prop_assert!(plan.pages <= pages && plan.pages <= plan.log_requests),
                None => check_left_out = true,
            }
        }
        prop_assert!(budget.used() <= limit);
        let all_asked = asked_providers == providers && asked_scopes == scopes;
        prop_assert_eq!(budget.drain_left_out().is_empty(), all_asked && !check_left_out);
    }
}
