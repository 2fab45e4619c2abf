//! Caller authentication: `Authorization: Bearer <token>`, compared in constant time, and who the
//! token says is calling.
//!
//! An agent calls with `AGENT_TOKEN` (then `x-agent-name` and `x-github-repository` say who it is)
//! or with a scoped token of `AGENT_TOKENS` (then the token says it, and headers that disagree are
//! refused): [`AgentTokens::identify`] tells which, and [`Identity::caller`] is the one place that
//! turns an identity and the caller headers into the [`Caller`] every route accounts to.

use crate::digest::{hex, sha256_of};
use crate::error::{ErrorKind, GatewayError};
use crate::request::caller::Caller;
use crate::request::tokens::{ScopedToken, ScopedTokens};
use crate::secret::Secret;
use subtle::ConstantTimeEq;

/// The tokens agents may call with.
#[derive(Debug, Clone, Copy)]
pub struct AgentTokens<'a> {
    /// `AGENT_TOKEN`: any agent, as its headers say.
    pub agent_token: Option<&'a str>,
    /// `AGENT_TOKENS`: each bound to an agent and repositories.
    pub scoped: &'a ScopedTokens,
}

/// Who a valid token says is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity<'a> {
    /// `AGENT_TOKEN`: the caller headers are taken as sent.
    Agent,
    /// A scoped token, and the token as presented (so that it can be redacted like a configured
    /// secret: the deployment knows it only by its hash).
    Scoped { token: &'a ScopedToken, presented: Secret },
}

impl<'a> AgentTokens<'a> {
    /// The 500 when no agent token of either kind is configured: the gateway never runs open.
    pub fn ensure_configured(&self) -> Result<(), GatewayError> {
        if self.scoped.is_empty() {
            configured(self.agent_token)?;
        }
        Ok(())
    }

    /// Which token `presented` is, if any. Both kinds are compared every time, each in constant
    /// time, so timing does not tell a scoped token from `AGENT_TOKEN` or from a wrong one. A
    /// token listed in both (a configuration problem `/healthz` reports) is the scoped one.
    pub fn identify(&self, presented: &str) -> Option<Identity<'a>> {
        let agent = self.agent_token.is_some_and(|t| !t.is_empty() && tokens_equal(presented, t));
        let scoped = self.scoped.find(presented);
        match (scoped, agent) {
            (Some(token), _) => Secret::new(presented).map(|presented| Identity::Scoped { token, presented }),
            (None, true) => Some(Identity::Agent),
            (None, false) => None,
        }
    }

    /// Checks an `Authorization` header: the identity of its Bearer token, or the 401 (500 when
    /// nothing is configured).
    pub fn check_bearer(&self, header: Option<&str>) -> Result<Identity<'a>, GatewayError> {
        self.ensure_configured()?;
        let presented = presented_bearer(header)?;
        self.identify(presented).ok_or_else(|| unauthorized("Incorrect API key provided."))
    }
}

impl Identity<'_> {
    /// The same token's identity (two key headers may carry one token; two different tokens are
    /// ambiguous).
    pub fn same_as(&self, other: &Identity<'_>) -> bool {
        match (self, other) {
            (Identity::Agent, Identity::Agent) => true,
            (Identity::Scoped { token: a, .. }, Identity::Scoped { token: b, .. }) => a == b,
            _ => false,
        }
    }

    /// The raw token to redact wherever text could echo it (a scoped one: `AGENT_TOKEN` is in
    /// the settings' secrets already).
    pub fn presented_secret(&self) -> Option<&Secret> {
        match self {
            Identity::Agent => None,
            Identity::Scoped { presented, .. } => Some(presented),
        }
    }

    /// Who is calling, for budgets, the ledger and AI Gateway's metadata. The headers are
    /// validated first (400 when malformed). With `AGENT_TOKEN` they are the caller; with a scoped
    /// token the agent is the token's (`x-agent-name` may repeat it, not name another) and the
    /// repository must match one of its patterns (when it has any): anything else is 403
    /// `token_scope_mismatch`.
    pub fn caller(&self, agent: Option<&str>, repository: Option<&str>) -> Result<Caller, GatewayError> {
        let headers = Caller::from_headers(agent, repository)?;
        let Identity::Scoped { token, .. } = self else { return Ok(headers) };
        if let Some(agent) = headers.agent.as_deref().filter(|a| *a != token.agent) {
            return Err(mismatch(format!(
                "This token belongs to agent `{}`, but `x-agent-name` says `{agent}`: leave the header out, or \
                 send the token's own agent.",
                token.agent
            )));
        }
        if token.repositories.is_some() {
            match headers.repository.as_deref() {
                None => {
                    return Err(mismatch(format!(
                        "This token is bound to repositories {}: send the repository as `x-github-repository: \
                         owner/name`.",
                        token.patterns()
                    )))
                }
                Some(repo) if !token.allows(repo) => {
                    return Err(mismatch(format!(
                        "Repository `{repo}` is outside this token's repositories ({}).",
                        token.patterns()
                    )))
                }
                Some(_) => {}
            }
        }
        Ok(Caller { agent: Some(token.agent.clone()), repository: headers.repository })
    }
}

/// Whose records a request may read back: the part of a record's name that says who called.
/// An idempotent replay (`crate::idempotency`) and a remembered thought signature
/// (`crate::tools::memory`) are only ever found by the caller that left them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition(String);

/// Separates the partition's hash of `AGENT_TOKEN` from every other hash of it (the
/// `AGENT_TOKENS` keys are plain SHA-256 of tokens): the name computes to nothing else.
const PARTITION_DOMAIN: &[u8] = b"agent-gateway caller partition v1\0";

impl Partition {
    /// The partition of `identity`. A scoped token's is its agent: every call with it is that
    /// agent's, and a replay survives the token's rotation (two tokens of one agent are one
    /// caller). `AGENT_TOKEN`'s (any agent, as its headers say) is a domain-separated hash of the
    /// token, never the token: its holders are one caller, whom no scoped token can be.
    pub fn of(identity: &Identity<'_>, agent_token: Option<&str>) -> Partition {
        match identity {
            Identity::Scoped { token, .. } => Partition(format!("agent:{}", token.agent)),
            Identity::Agent => {
                let digest = sha256_of(&[PARTITION_DOMAIN, agent_token.unwrap_or_default().as_bytes()]);
                Partition(format!("token:{}", hex(&digest[..16])))
            }
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn mismatch(message: String) -> GatewayError {
    GatewayError::new(ErrorKind::TokenScopeMismatch, message)
}

/// The token of an `Authorization: Bearer` header, or the 401 that says what is wrong with it.
fn presented_bearer(header: Option<&str>) -> Result<&str, GatewayError> {
    let Some(header) = header else {
        return Err(unauthorized("Missing `Authorization: Bearer <token>` header."));
    };
    bearer_token(header).ok_or_else(|| unauthorized("The `Authorization` header must use the Bearer scheme."))
}

/// Checks an `Authorization` header value against the configured token.
///
/// * No token configured → a configuration error (500): the gateway never runs open.
/// * Header missing, not `Bearer`, or a different token → 401.
///
/// The scheme is matched case-insensitively (RFC 9110 §11.1); the token is compared byte for byte in
/// constant time, so response timing says nothing about how much of a guess was right. A header that
/// the runtime joined from duplicates (`Bearer a, Bearer b`) is simply a wrong token.
pub fn check_bearer(header: Option<&str>, expected: Option<&str>) -> Result<(), GatewayError> {
    let expected = configured(expected)?;
    let presented = presented_bearer(header)?;
    if tokens_equal(presented, expected) {
        Ok(())
    } else {
        Err(unauthorized("Incorrect API key provided."))
    }
}

/// The configured token, or the 500 that says there is none: the gateway never runs open.
pub fn configured(expected: Option<&str>) -> Result<&str, GatewayError> {
    match expected {
        Some(t) if !t.is_empty() => Ok(t),
        _ => Err(GatewayError::new(
            ErrorKind::Configuration,
            "The gateway has no AGENT_TOKEN (nor valid AGENT_TOKENS) configured, so it refuses every call. \
             Set it with `wrangler secret put AGENT_TOKEN` (or in .dev.vars locally).",
        )),
    }
}

/// The token of a `Bearer` credential, or `None` for another scheme.
pub fn bearer_token(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_start();
    (!token.is_empty()).then_some(token)
}

/// Constant-time equality. Lengths are compared openly: the token's length is not a secret worth
/// a timing channel, and `subtle` requires equal lengths anyway.
pub fn tokens_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn unauthorized(message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::Unauthorized, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_right_token_any_scheme_case() {
        assert!(check_bearer(Some("Bearer s3cret-token"), Some("s3cret-token")).is_ok());
        assert!(check_bearer(Some("bearer s3cret-token"), Some("s3cret-token")).is_ok());
        assert!(check_bearer(Some("BEARER   s3cret-token "), Some("s3cret-token")).is_ok());
    }

    #[test]
    fn rejects_wrong_missing_and_other_schemes() {
        for header in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Basic czNjcmV0LXRva2Vu"),
            Some("s3cret-token"),
            Some("Bearer s3cret-toke"),
            Some("Bearer s3cret-token2"),
            Some("Bearer S3CRET-TOKEN"),
            Some("Bearer s3cret-token, Bearer s3cret-token"),
        ] {
            let err = check_bearer(header, Some("s3cret-token")).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unauthorized, "{header:?}");
            assert!(!err.message.contains("s3cret"), "the expected token leaked: {}", err.message);
        }
    }

    #[test]
    fn refuses_everything_when_unconfigured() {
        for expected in [None, Some("")] {
            let err = check_bearer(Some("Bearer anything"), expected).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Configuration);
            assert_eq!(err.status(), 500);
            // An empty configured token must not match an empty presented one either.
            assert!(check_bearer(Some("Bearer "), expected).is_err());
        }
    }

    use crate::request::tokens::{token_hash, ScopedTokens};

    const AGENT: &str = "agt-shared-token";
    const REVIEW: &str = "agt-review-scoped";
    const TRIAGE: &str = "agt-triage-scoped";

    fn scoped() -> ScopedTokens {
        ScopedTokens::parse(&format!(
            r#"{{"{}": {{"agent": "ReviewAgent", "repositories": ["octo-org/*", "acme/app"]}},
                "{}": {{"agent": "TriagingAgent"}}}}"#,
            token_hash(REVIEW),
            token_hash(TRIAGE)
        ))
        .unwrap()
    }

    #[test]
    fn bearer_tokens_of_both_kinds() {
        let scoped = scoped();
        let tokens = AgentTokens { agent_token: Some(AGENT), scoped: &scoped };
        assert_eq!(tokens.check_bearer(Some(&format!("Bearer {AGENT}"))).unwrap(), Identity::Agent);
        let id = tokens.check_bearer(Some(&format!("bearer {REVIEW}"))).unwrap();
        let Identity::Scoped { token, presented } = &id else { panic!("not scoped") };
        assert_eq!((token.agent.as_str(), presented.expose()), ("ReviewAgent", REVIEW));
        assert!(!format!("{id:?}").contains(REVIEW), "Debug must not print the presented token");
        for header in [
            None,
            Some("Bearer nope".to_owned()),
            Some(format!("Bearer {}", token_hash(REVIEW))),
            Some(format!("Basic {REVIEW}")),
            Some(format!("Bearer {REVIEW}x")),
        ] {
            let e = tokens.check_bearer(header.as_deref()).unwrap_err();
            assert_eq!(e.status(), 401, "{header:?}");
            assert!(!e.message.contains(REVIEW));
        }
        // Scoped tokens alone are a configuration; nothing at all refuses everything with a 500.
        let only = AgentTokens { agent_token: None, scoped: &scoped };
        assert!(only.check_bearer(Some(&format!("Bearer {TRIAGE}"))).is_ok());
        assert_eq!(only.check_bearer(Some(&format!("Bearer {AGENT}"))).unwrap_err().status(), 401);
        let empty = ScopedTokens::default();
        let nothing = AgentTokens { agent_token: None, scoped: &empty };
        assert_eq!(nothing.check_bearer(Some("Bearer x")).unwrap_err().status(), 500);
    }

    #[test]
    fn a_token_in_both_is_the_scoped_one() {
        let scoped = scoped();
        let tokens = AgentTokens { agent_token: Some(REVIEW), scoped: &scoped };
        assert!(matches!(tokens.identify(REVIEW), Some(Identity::Scoped { .. })));
    }

    #[test]
    fn agent_token_callers_are_what_their_headers_say() {
        let c = Identity::Agent.caller(Some("AnyAgent"), Some("any/repo")).unwrap();
        assert_eq!((c.agent.as_deref(), c.repository.as_deref()), (Some("AnyAgent"), Some("any/repo")));
        assert_eq!(Identity::Agent.caller(None, None).unwrap(), Caller::default());
        assert_eq!(Identity::Agent.caller(Some("bad agent"), None).unwrap_err().status(), 400);
    }

    #[test]
    fn scoped_callers_are_what_their_token_says() {
        let scoped = scoped();
        let tokens = AgentTokens { agent_token: Some(AGENT), scoped: &scoped };
        let review = tokens.identify(REVIEW).unwrap();
        let triage = tokens.identify(TRIAGE).unwrap();
        for (agent, repo, canonical) in [
            (None, "octo-org/x", "octo-org/x"),
            (Some("ReviewAgent"), "octo-org/monorepo", "octo-org/monorepo"),
            (None, "acme/app", "acme/app"),
            // GitHub's names are one repository however they are spelled: the canonical one is
            // the caller, so no spelling is a budget of its own.
            (None, "Octo-Org/X", "octo-org/x"),
            (None, "ACME/App", "acme/app"),
        ] {
            let c = review.caller(agent, Some(repo)).unwrap();
            assert_eq!((c.agent.as_deref(), c.repository.as_deref()), (Some("ReviewAgent"), Some(canonical)));
        }
        // Bound to the agent only: any repository, or none.
        let c = triage.caller(None, Some("else/where")).unwrap();
        assert_eq!((c.agent.as_deref(), c.repository.as_deref()), (Some("TriagingAgent"), Some("else/where")));
        assert_eq!(triage.caller(None, None).unwrap().agent.as_deref(), Some("TriagingAgent"));

        for (id, agent, repo, says) in [
            (&review, Some("TriagingAgent"), Some("octo-org/x"), "belongs to agent `ReviewAgent`"),
            (&review, Some("reviewagent"), Some("octo-org/x"), "says `reviewagent`"),
            (&review, None, Some("acme/other"), "`acme/other` is outside"),
            (&review, None, Some("Acme/Other"), "outside this token's repositories (`octo-org/*`, `acme/app`)"),
            (&review, None, Some("octo-org2/x"), "outside"),
            (&review, None, None, "send the repository"),
            (&triage, Some("ReviewAgent"), None, "belongs to agent `TriagingAgent`"),
        ] {
            let e = id.caller(agent, repo).unwrap_err();
            assert_eq!(e.kind, ErrorKind::TokenScopeMismatch, "{agent:?} {repo:?}");
            assert_eq!((e.status(), e.kind.code()), (403, "token_scope_mismatch"));
            assert!(e.message.contains(says), "{}", e.message);
            assert!(!e.message.contains(REVIEW) && !e.message.contains(TRIAGE));
        }
        // A malformed header is a 400 whoever calls.
        assert_eq!(review.caller(None, Some("not a repo")).unwrap_err().status(), 400);
    }
}
