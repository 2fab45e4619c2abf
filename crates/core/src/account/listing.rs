//! What `/limits` (and the dashboard's "Budgets today" panel) lists, for whom, and which of it
//! is worth a limiter call.
//!
//! `AGENT_TOKEN` (and, on the dashboard, `ANALYTICS_TOKEN`) sees every scope of today's callers.
//! A scoped token sees only the scopes its own calls fall under, and the providers:
//!
//! * its agent's scope;
//! * with repository patterns: the repositories its patterns match among today's callers
//!   (whoever called: a repository's budget is shared by every agent working on it), among the
//!   repositories configured by name, and each exact pattern's own; and the owners of these that
//!   have a total, `owner/*` patterns' owners included. A pattern is never listed as such:
//!   `octo-org/*` shows `octo-org/app` once someone used it today, and the total of `octo-org`;
//! * bound to its agent only (it may name any repository): the repositories its own agent used
//!   today.
//!
//! A filter naming another agent, or a repository outside its patterns, is 403. Only a scope
//! someone used today (the ledger's callers) has a state to ask its limiter for; any other is
//! answered from its configuration (nothing spent or reserved), so that naming a scope, even one
//! nobody uses, never creates its Durable Object.

use std::collections::BTreeSet;

use crate::account::limits::Snapshot;
use crate::account::scopes::{Scope, ScopeFilter, Scopes, DEFAULT};
use crate::error::{ErrorKind, GatewayError};
use crate::request::tokens::{Pattern, ScopedToken};
use crate::subrequests::{plan_limiters, Subrequests};

/// Most scopes listed at once: a filter narrows it.
pub const MAX_LISTED_SCOPES: usize = 100;

/// Who reads the listing.
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    /// `AGENT_TOKEN`, or `ANALYTICS_TOKEN` on the dashboard.
    Everyone,
    Token(&'a ScopedToken),
}

/// Today's callers as the ledger saw them, `(agent, repository)`.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub callers: &'a [(Option<String>, Option<String>)],
    /// False when the ledger could not be read, or said no more than its bound: then a scope
    /// not among `callers` may still have been used, and its limiter is asked.
    pub complete: bool,
}

/// One scope to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub scope: Scope,
    /// Someone's calls fell under it today (or the ledger cannot tell): its limiter is asked.
    /// Otherwise it is answered from its configuration ([`idle`]).
    pub ask: bool,
}

/// The scopes `viewer` may see that `filter` keeps, sorted by kind and name, at most
/// [`MAX_LISTED_SCOPES`]; 403 `token_scope_mismatch` for a filter outside a scoped token's.
pub fn list(
    config: &Scopes,
    filter: &ScopeFilter,
    viewer: Viewer<'_>,
    seen: Seen<'_>,
) -> Result<Vec<Listed>, GatewayError> {
    let used: BTreeSet<String> =
        seen.callers.iter().flat_map(|(a, r)| config.of(a.as_deref(), r.as_deref())).map(|s| s.key()).collect();
    let candidates = match viewer {
        Viewer::Everyone => {
            let mut all: Vec<Scope> =
                seen.callers.iter().flat_map(|(a, r)| config.of(a.as_deref(), r.as_deref())).collect();
            all.extend(config.of(filter.agent.as_deref(), filter.repository.as_deref()));
            all
        }
        Viewer::Token(token) => token_scopes(config, filter, token, seen)?,
    };
    let mut keys = BTreeSet::new();
    let mut out: Vec<Listed> = candidates
        .into_iter()
        .filter(|scope| filter.keeps(scope) && keys.insert(scope.key()))
        .map(|scope| {
            let ask = !seen.complete || used.contains(&scope.key());
            Listed { scope, ask }
        })
        .collect();
    out.sort_by(|a, b| (a.scope.kind, &a.scope.name).cmp(&(b.scope.kind, &b.scope.name)));
    out.truncate(MAX_LISTED_SCOPES);
    Ok(out)
}

/// Every scope a scoped token's calls fall under (before the filter), or the 403 of a filter
/// outside them.
fn token_scopes(
    config: &Scopes,
    filter: &ScopeFilter,
    token: &ScopedToken,
    seen: Seen<'_>,
) -> Result<Vec<Scope>, GatewayError> {
    if let Some(agent) = filter.agent.as_deref().filter(|a| *a != token.agent) {
        return Err(refused(format!("This token sees agent `{}` only, not `{agent}`.", token.agent)));
    }
    if let Some(repo) = filter.repository.as_deref().filter(|r| !token.allows(r)) {
        return Err(refused(format!(
            "Repository `{repo}` is outside this token's repositories ({}).",
            token.patterns()
        )));
    }
    let mut repositories: Vec<&str> = Vec::new();
    let mut owners: Vec<&str> = Vec::new();
    match &token.repositories {
        Some(patterns) => {
            repositories.extend(seen.callers.iter().filter_map(|(_, r)| r.as_deref()).filter(|r| token.allows(r)));
            repositories
                .extend(config.repositories.keys().map(String::as_str).filter(|r| *r != DEFAULT && token.allows(r)));
            for pattern in patterns {
                match pattern {
                    Pattern::Repository(r) => repositories.push(r),
                    Pattern::Owner(o) => owners.push(o),
                }
            }
        }
        None => repositories.extend(
            seen.callers
                .iter()
                .filter(|(a, _)| a.as_deref() == Some(token.agent.as_str()))
                .filter_map(|(_, r)| r.as_deref()),
        ),
    }
    repositories.extend(filter.repository.as_deref());
    let mut scopes: Vec<Scope> = config.of(Some(&token.agent), None);
    scopes.extend(repositories.into_iter().flat_map(|r| config.of(None, Some(r))));
    scopes.extend(owners.into_iter().filter_map(|o| config.owner(o)));
    Ok(scopes)
}

/// The listing within `budget`: every provider's limiter first, then the limiters of the listed
/// scopes that need theirs, in order, as many as fit ([`plan_limiters`]). A scope whose limiter
/// does not fit is left out (never shown without its state: the budget says how many); one
/// answered from its configuration costs nothing and always stays. Returns how many providers to
/// ask, and the scopes kept.
pub fn within(budget: &mut Subrequests, providers: usize, listed: Vec<Listed>) -> (usize, Vec<Listed>) {
    let asking = listed.iter().filter(|l| l.ask).count();
    let (providers_asked, scopes_asked) = plan_limiters(budget, providers, asking);
    let mut asked = 0;
    let kept = listed
        .into_iter()
        .filter(|l| {
            asked += usize::from(l.ask);
            !l.ask || asked <= scopes_asked
        })
        .collect();
    (providers_asked, kept)
}

fn refused(message: String) -> GatewayError {
    GatewayError::new(ErrorKind::TokenScopeMismatch, message)
}

/// The state of a limiter nobody used on `day` (`YYYY-MM-DD`): nothing spent, reserved or
/// leased, no request in the last minute, no breaker (scopes have none).
pub fn idle(day: String) -> Snapshot {
    Snapshot { day, ..Snapshot::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::tokens::{token_hash, ScopedTokens};

    fn scopes() -> Scopes {
        let raw: crate::account::scopes::RawScopes = crate::json::from_str(
            r#"{
                "repositories": {"default": {"daily_budget_usd": 2}, "acme/big": {"daily_budget_usd": 10},
                                 "octo-org/configured": {"daily_budget_usd": 3}},
                "owners": {"acme": {"daily_budget_usd": 25}, "octo-org": {"daily_budget_usd": 30}},
                "agents": {"ReviewAgent": {"daily_budget_usd": 15}, "TriagingAgent": {"daily_budget_usd": 5}}
            }"#,
        )
        .unwrap();
        let mut problems = Vec::new();
        let scopes = raw.read(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        scopes
    }

    fn seen() -> Vec<(Option<String>, Option<String>)> {
        let pair = |a: Option<&str>, r: Option<&str>| (a.map(str::to_owned), r.map(str::to_owned));
        vec![
            pair(Some("ReviewAgent"), Some("acme/big")),
            pair(Some("TriagingAgent"), Some("octo-org/app")),
            // Written before repositories were canonical: the same scope.
            pair(Some("TriagingAgent"), Some("Octo-Org/App")),
            pair(None, Some("acme/small")),
            pair(Some("OtherAgent"), Some("else/where")),
        ]
    }

    fn keys(listed: &[Listed]) -> Vec<String> {
        listed.iter().map(|l| format!("{}{}", l.scope.key(), if l.ask { "" } else { " (idle)" })).collect()
    }

    fn everyone(query: &str) -> Vec<String> {
        let seen = seen();
        let filter = ScopeFilter::parse(query).unwrap();
        keys(&list(&scopes(), &filter, Viewer::Everyone, Seen { callers: &seen, complete: true }).unwrap())
    }

    const REVIEW: &str = "tok-review";
    const TRIAGE: &str = "tok-triage";

    fn tokens() -> ScopedTokens {
        ScopedTokens::parse(&format!(
            r#"{{"{}": {{"agent": "ReviewAgent", "repositories": ["Octo-Org/*", "acme/app"]}},
                "{}": {{"agent": "TriagingAgent"}}}}"#,
            token_hash(REVIEW),
            token_hash(TRIAGE)
        ))
        .unwrap()
    }

    fn as_token(token: &str, query: &str) -> Result<Vec<String>, GatewayError> {
        let (tokens, seen) = (tokens(), seen());
        let filter = ScopeFilter::parse(query).unwrap();
        let viewer = Viewer::Token(tokens.find(token).unwrap());
        list(&scopes(), &filter, viewer, Seen { callers: &seen, complete: true }).map(|l| keys(&l))
    }

    #[test]
    fn everyone_sees_the_scopes_of_todays_callers_filtered() {
        assert_eq!(
            everyone(""),
            [
                "repository:acme/big",
                "repository:acme/small",
                "repository:else/where",
                "repository:octo-org/app",
                "owner:acme",
                "owner:octo-org",
                "agent:ReviewAgent",
                "agent:TriagingAgent",
            ]
        );
        assert_eq!(everyone("repository=acme%2Fbig"), ["repository:acme/big", "owner:acme"]);
        assert_eq!(everyone("repository=ACME%2FBig"), ["repository:acme/big", "owner:acme"]);
        assert_eq!(everyone("agent=ReviewAgent"), ["agent:ReviewAgent"]);
        // A scope nobody used today is shown when asked for by name, from its configuration.
        assert_eq!(everyone("repository=new/repo"), ["repository:new/repo (idle)"]);
        assert_eq!(everyone("repository=acme/new"), ["repository:acme/new (idle)", "owner:acme"]);
        assert_eq!(everyone("agent=Nobody"), Vec::<String>::new(), "no budget of its own, no scope");
    }

    #[test]
    fn a_scoped_token_sees_only_its_own() {
        assert_eq!(
            as_token(REVIEW, "").unwrap(),
            [
                "repository:acme/app (idle)",
                "repository:octo-org/app",
                "repository:octo-org/configured (idle)",
                "owner:acme",
                "owner:octo-org",
                "agent:ReviewAgent",
            ]
        );
        // Bound to its agent only: the repositories its agent used today.
        assert_eq!(as_token(TRIAGE, "").unwrap(), ["repository:octo-org/app", "owner:octo-org", "agent:TriagingAgent"]);
        assert_eq!(
            as_token(REVIEW, "repository=OCTO-ORG/new").unwrap(),
            ["repository:octo-org/new (idle)", "owner:octo-org"]
        );
        assert_eq!(as_token(REVIEW, "agent=ReviewAgent").unwrap(), ["agent:ReviewAgent"]);
        // A token bound to its agent only may name any repository, as its calls may.
        assert_eq!(as_token(TRIAGE, "repository=else/where").unwrap(), ["repository:else/where"]);
        for (token, query, says) in [
            (REVIEW, "repository=acme/big", "`acme/big` is outside"),
            (REVIEW, "repository=else/where", "outside this token's repositories (`octo-org/*`, `acme/app`)"),
            (REVIEW, "agent=TriagingAgent", "agent `ReviewAgent` only"),
            (TRIAGE, "agent=reviewagent", "not `reviewagent`"),
        ] {
            let e = as_token(token, query).unwrap_err();
            assert_eq!((e.status(), e.kind.code()), (403, "token_scope_mismatch"), "{query}");
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    #[test]
    fn when_the_ledger_cannot_tell_limiters_are_asked() {
        let seen = seen();
        let filter = ScopeFilter::parse("repository=new/repo").unwrap();
        let listed = list(&scopes(), &filter, Viewer::Everyone, Seen { callers: &seen[..1], complete: false }).unwrap();
        assert_eq!(keys(&listed), ["repository:new/repo"]);
    }

    #[test]
    fn at_most_a_hundred() {
        let many: Vec<_> = (0..300).map(|i| (None, Some(format!("o{i}/r")))).collect();
        let listed =
            list(&scopes(), &ScopeFilter::default(), Viewer::Everyone, Seen { callers: &many, complete: true })
                .unwrap();
        assert_eq!(listed.len(), MAX_LISTED_SCOPES);
    }

    #[test]
    fn within_the_budget_scopes_to_ask_are_cut_and_configured_ones_stay() {
        let seen = seen();
        let filter = ScopeFilter::default();
        let (tokens, scopes) = (tokens(), scopes());
        let listed = list(
            &scopes,
            &filter,
            Viewer::Token(tokens.find(REVIEW).unwrap()),
            Seen { callers: &seen, complete: true },
        )
        .unwrap();
        assert_eq!(listed.iter().filter(|l| l.ask).count(), 4);
        let mut budget = Subrequests::new(6);
        let (providers, kept) = within(&mut budget, 3, listed.clone());
        assert_eq!(providers, 3);
        assert_eq!(
            keys(&kept),
            [
                "repository:acme/app (idle)",
                "repository:octo-org/app",
                "repository:octo-org/configured (idle)",
                "owner:acme",
                "owner:octo-org"
            ]
        );
        assert!(budget.drain_left_out()[0].contains("1 of the 4 scopes"));
        let (_, all) = within(&mut Subrequests::new(50), 3, listed.clone());
        assert_eq!(all, listed);
    }

    #[test]
    fn idle_is_nothing() {
        let snap = idle("2026-12-02".into());
        assert_eq!(
            (snap.spent_usd, snap.reserved_usd, snap.requests_last_minute),
            (crate::money::pricing::Usd::ZERO, crate::money::pricing::Usd::ZERO, 0)
        );
    }
}
