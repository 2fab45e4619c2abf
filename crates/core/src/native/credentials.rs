//! Who is calling a native route: the caller's `AGENT_TOKEN`, found wherever its SDK puts a key.
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
//! (`ALLOW_CALLER_PROVIDER_KEYS=true`); the agent token itself never is.

use crate::error::{ErrorKind, GatewayError};
use crate::request::authenticate::{bearer_token, tokens_equal};

/// The headers an SDK may carry a key in (lower-case).
pub const KEY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// An authenticated native caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The header the agent token came in.
    pub carrier: &'static str,
    /// Provider-key headers to forward as they are (empty unless the operator allowed it).
    pub forward: Vec<(&'static str, String)>,
}

/// Finds the agent token among the key headers (`header(name)` reads a request header).
///
/// * No token configured → 500: the gateway never runs open.
/// * No key header at all, or none holding the token → 401 (OpenAI-shaped, which every SDK maps
///   to its authentication error by status).
///
/// Comparison is constant-time per candidate. `Authorization` counts only with the Bearer scheme
/// (an AWS SigV4 `Authorization` is a provider credential, never the agent token).
pub fn authenticate(
    header: impl Fn(&str) -> Option<String>,
    expected: Option<&str>,
    allow_caller_keys: bool,
) -> Result<Credentials, GatewayError> {
    let expected = crate::request::authenticate::configured(expected)?;
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
    let mut carrier = None;
    for (name, value) in &presented {
        if token_of(name, value).is_some_and(|t| tokens_equal(&t, expected)) && carrier.is_none() {
            carrier = Some(*name);
        }
    }
    let Some(carrier) = carrier else {
        return Err(GatewayError::new(ErrorKind::Unauthorized, "Incorrect API key provided."));
    };
    let forward = if allow_caller_keys {
        presented.into_iter().filter(|(name, value)| *name != carrier && !value.contains(expected)).collect()
    } else {
        Vec::new()
    };
    Ok(Credentials { carrier, forward })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "agt-0123456789abcdef";

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn accepted_in_each_sdks_header() {
        for (name, value) in [
            ("authorization", format!("Bearer {TOKEN}")),
            ("x-api-key", TOKEN.to_owned()),
            ("x-goog-api-key", TOKEN.to_owned()),
            ("api-key", format!(" {TOKEN} ")),
        ] {
            let pairs = [(name, value.as_str())];
            let c = authenticate(headers(&pairs), Some(TOKEN), false).unwrap();
            assert_eq!(c.carrier, name);
            assert!(c.forward.is_empty());
        }
    }

    #[test]
    fn refused_when_missing_or_wrong() {
        for pairs in [
            &[][..],
            &[("x-api-key", "wrong")][..],
            &[("authorization", TOKEN)][..], // no Bearer scheme
            &[("authorization", "Basic YWdlbnQ6dG9rZW4=")][..],
            &[("x-goog-api-key", "agt-0123456789abcdeF")][..],
            &[("api-key", "")][..],
            &[("x-other-key", TOKEN)][..],
        ] {
            let e = authenticate(headers(pairs), Some(TOKEN), true).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Unauthorized, "{pairs:?}");
            assert!(!e.message.contains(TOKEN));
        }
        for expected in [None, Some("")] {
            let e = authenticate(headers(&[("x-api-key", "x")]), expected, false).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Configuration);
        }
    }

    #[test]
    fn provider_keys_are_forwarded_only_when_allowed() {
        let bearer = format!("Bearer {TOKEN}");
        let pairs = [("authorization", bearer.as_str()), ("x-api-key", "sk-ant-caller"), ("api-key", TOKEN)];
        let c = authenticate(headers(&pairs), Some(TOKEN), false).unwrap();
        assert_eq!(c.carrier, "authorization");
        assert!(c.forward.is_empty(), "nothing is forwarded by default");
        let c = authenticate(headers(&pairs), Some(TOKEN), true).unwrap();
        // The provider key goes on; the agent token, in whichever header, never does.
        assert_eq!(c.forward, vec![("x-api-key", "sk-ant-caller".to_owned())]);
    }

    #[test]
    fn a_sigv4_authorization_is_a_provider_credential() {
        let sig = "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/bedrock/aws4_request, Signature=abc";
        let pairs = [("authorization", sig), ("x-api-key", TOKEN)];
        let c = authenticate(headers(&pairs), Some(TOKEN), true).unwrap();
        assert_eq!(c.carrier, "x-api-key");
        assert_eq!(c.forward, vec![("authorization", sig.to_owned())]);
    }
}
