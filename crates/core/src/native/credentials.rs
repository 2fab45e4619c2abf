//! Who is calling a native route: the caller's token (`AGENT_TOKEN` or a scoped one), found
//! wherever its SDK puts a key.
//!
//! | SDK                    | header                         |
//! |------------------------|--------------------------------|
//! | OpenAI, Workers AI     | `Authorization: Bearer <key>`  |
//! | Anthropic              | `x-api-key: <key>`             |
//! | Google GenAI (Gemini)  | `x-goog-api-key: <key>`        |
//! | Azure OpenAI           | `api-key: <key>`               |
//!
//! Every one of these headers is stripped before the call goes to AI Gateway, which gets
//! `cf-aig-authorization` with the Worker's own gateway token instead. A caller's *provider* key
//! (a key header that is not the agent token) is forwarded only when the operator allowed it
//! (`ALLOW_CALLER_PROVIDER_KEYS=true`); the agent token itself (`AGENT_TOKEN`, or a scoped token of
//! `AGENT_TOKENS`, in whichever header) never is.

use crate::error::{ErrorKind, GatewayError};
use crate::request::authenticate::{bearer_token, AgentTokens, Identity};

/// The headers an SDK may carry a key in (lower-case).
pub const KEY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// An authenticated native caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The header the agent token came in.
    pub carrier: &'static str,
    /// Who the token says is calling (`AGENT_TOKEN`, or a scoped token of `AGENT_TOKENS`).
    pub identity: Identity<'a>,
    /// Provider-key headers to forward as they are (empty unless the operator allowed it).
    pub forward: Vec<(&'static str, String)>,
}

/// Finds the agent token among the key headers (`header(name)` reads a request header).
///
/// * No token configured → 500: the gateway never runs open.
/// * No key header at all, or none holding a token → 401 (OpenAI-shaped, which every SDK maps
///   to its authentication error by status); two headers holding two different tokens → 401.
///
/// Comparison is constant-time per candidate. `Authorization` counts only with the Bearer scheme
/// (an AWS SigV4 `Authorization` is a provider credential, never the agent token). A header is
/// forwarded (when allowed) only if no part of it is one of the gateway's own tokens.
pub fn authenticate<'a>(
    header: impl Fn(&str) -> Option<String>,
    tokens: AgentTokens<'a>,
    allow_caller_keys: bool,
) -> Result<Credentials<'a>, GatewayError> {
    tokens.ensure_configured()?;
    let presented: Vec<(&'static str, String)> =
        KEY_HEADERS.iter().filter_map(|&name| header(name).map(|v| (name, v))).collect();
    if presented.is_empty() {
        return Err(GatewayError::new(
            ErrorKind::Unauthorized,
            "Missing credentials: send the gateway's token as `Authorization: Bearer`, `x-api-key`, \
             `x-goog-api-key` or `api-key` (whichever your SDK uses for its API key).",
        ));
    }
    let token_of = |name: &str, value: &str| -> Option<String> {
        if name == "authorization" {
            bearer_token(value).map(str::to_owned)
        } else {
            Some(value.trim().to_owned()).filter(|v| !v.is_empty())
        }
    };
    // Check every candidate (no early exit), so timing does not tell which header matched.
    let identities: Vec<Option<Identity<'a>>> =
        presented.iter().map(|(name, value)| token_of(name, value).and_then(|t| tokens.identify(&t))).collect();
    let mut found = presented.iter().zip(&identities).filter_map(|((name, _), id)| id.as_ref().map(|id| (*name, id)));
    let Some((carrier, identity)) = found.next() else {
        return Err(GatewayError::new(ErrorKind::Unauthorized, "Incorrect API key provided."));
    };
    if found.any(|(_, other)| !other.same_as(identity)) {
        return Err(GatewayError::new(
            ErrorKind::Unauthorized,
            "Two different gateway tokens were sent: send one, in one key header.",
        ));
    }
    let forward = if allow_caller_keys {
        let ours = |value: &str| {
            tokens.agent_token.is_some_and(|t| value.contains(t))
                || identity.presented_secret().is_some_and(|t| value.contains(t.expose()))
                || value
                    .split(|c: char| c == ',' || c.is_ascii_whitespace())
                    .any(|part| !part.is_empty() && tokens.identify(part).is_some())
        };
        presented.into_iter().filter(|(name, value)| *name != carrier && !ours(value)).collect()
    } else {
        Vec::new()
    };
    Ok(Credentials { carrier, identity: identity.clone(), forward })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::tokens::{token_hash, ScopedTokens};

    const TOKEN: &str = "agt-0123456789abcdef";
    const SCOPED: &str = "agt-scoped-review-0123";

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    fn scoped() -> ScopedTokens {
        let json = format!(r#"{{"{}": {{"agent": "ReviewAgent", "repositories": ["acme/app"]}}}}"#, token_hash(SCOPED));
        ScopedTokens::parse(&json).unwrap()
    }

    fn tokens<'a>(agent_token: Option<&'a str>, scoped: &'a ScopedTokens) -> AgentTokens<'a> {
        AgentTokens { agent_token, scoped }
    }

    #[test]
    fn accepted_in_each_sdks_header() {
        let none = ScopedTokens::default();
        for (name, value) in [
            ("authorization", format!("Bearer {TOKEN}")),
            ("x-api-key", TOKEN.to_owned()),
            ("x-goog-api-key", TOKEN.to_owned()),
            ("api-key", format!(" {TOKEN} ")),
        ] {
            let pairs = [(name, value.as_str())];
            let c = authenticate(headers(&pairs), tokens(Some(TOKEN), &none), false).unwrap();
            assert_eq!(c.carrier, name);
            assert_eq!(c.identity, Identity::Agent);
            assert!(c.forward.is_empty());
        }
    }

    #[test]
    fn refused_when_missing_or_wrong() {
        let (none, scoped) = (ScopedTokens::default(), scoped());
        let hash = token_hash(SCOPED);
        for pairs in [
            &[][..],
            &[("x-api-key", "wrong")][..],
            &[("authorization", TOKEN)][..], // no Bearer scheme
            &[("authorization", "Basic YWdlbnQ6dG9rZW4=")][..],
            &[("x-goog-api-key", "agt-0123456789abcdeF")][..],
            &[("api-key", "")][..],
            &[("x-other-key", TOKEN)][..],
            &[("x-api-key", hash.as_str())][..], // the stored hash is not the token
        ] {
            let e = authenticate(headers(pairs), tokens(Some(TOKEN), &scoped), true).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unauthorized, "{pairs:?}");
            assert!(!e.message.contains(TOKEN));
        }
        for expected in [None, Some("")] {
            let e = authenticate(headers(&[("x-api-key", "x")]), tokens(expected, &none), false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Configuration);
        }
    }

    #[test]
    fn provider_keys_are_forwarded_only_when_allowed() {
        let none = ScopedTokens::default();
        let bearer = format!("Bearer {TOKEN}");
        let pairs = [("authorization", bearer.as_str()), ("x-api-key", "sk-ant-caller"), ("api-key", TOKEN)];
        let c = authenticate(headers(&pairs), tokens(Some(TOKEN), &none), false).unwrap();
        assert_eq!(c.carrier, "authorization");
        assert!(c.forward.is_empty(), "nothing is forwarded by default");
        let c = authenticate(headers(&pairs), tokens(Some(TOKEN), &none), true).unwrap();
        // The provider key goes on; the agent token, in whichever header, never does.
        assert_eq!(c.forward, vec![("x-api-key", "sk-ant-caller".to_owned())]);
    }

    #[test]
    fn a_sigv4_authorization_is_a_provider_credential() {
        let none = ScopedTokens::default();
        let sig = "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/bedrock/aws4_request, Signature=abc";
        let pairs = [("authorization", sig), ("x-api-key", TOKEN)];
        let c = authenticate(headers(&pairs), tokens(Some(TOKEN), &none), true).unwrap();
        assert_eq!(c.carrier, "x-api-key");
        assert_eq!(c.forward, vec![("authorization", sig.to_owned())]);
    }

    #[test]
    fn a_scoped_token_in_any_key_header_says_who_calls_and_is_never_forwarded() {
        let scoped = scoped();
        for name in KEY_HEADERS {
            let value = if name == "authorization" { format!("Bearer {SCOPED}") } else { SCOPED.to_owned() };
            let pairs = [(name, value.as_str())];
            let c = authenticate(headers(&pairs), tokens(Some(TOKEN), &scoped), true).unwrap();
            assert_eq!(c.carrier, name);
            let Identity::Scoped { token, presented } = &c.identity else { panic!("{name}: not scoped") };
            assert_eq!((token.agent.as_str(), presented.expose()), ("ReviewAgent", SCOPED));
            assert!(c.forward.is_empty());
        }
        // Without AGENT_TOKEN, scoped tokens alone serve.
        let pairs = [("x-api-key", SCOPED)];
        assert!(authenticate(headers(&pairs), tokens(None, &scoped), false).is_ok());
        // The same token twice is one caller; a copy of it, or of AGENT_TOKEN, in another header
        // (joined with something else, or as the Bearer of a list) is never passed on.
        let bearer = format!("Bearer {SCOPED}");
        let joined = format!("sk-ant-caller, {SCOPED}");
        let wrapped = format!("x{SCOPED}x");
        for extra in [SCOPED, joined.as_str(), wrapped.as_str()] {
            let pairs = [("authorization", bearer.as_str()), ("x-api-key", extra), ("api-key", "sk-provider")];
            let c = authenticate(headers(&pairs), tokens(Some(TOKEN), &scoped), true).unwrap();
            assert_eq!(c.forward, vec![("api-key", "sk-provider".to_owned())], "{extra}");
        }
    }

    #[test]
    fn two_different_tokens_are_refused() {
        let scoped = scoped();
        let bearer = format!("Bearer {TOKEN}");
        let pairs = [("authorization", bearer.as_str()), ("x-api-key", SCOPED)];
        let e = authenticate(headers(&pairs), tokens(Some(TOKEN), &scoped), true).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        assert!(!e.message.contains(TOKEN) && !e.message.contains(SCOPED));
    }
}
