//! Caller authentication: `Authorization: Bearer <AGENT_TOKEN>`, compared in constant time.

use crate::error::{ErrorKind, GatewayError};
use subtle::ConstantTimeEq;

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
    let Some(header) = header else {
        return Err(unauthorized("Missing `Authorization: Bearer <token>` header."));
    };
    let presented =
        bearer_token(header).ok_or_else(|| unauthorized("The `Authorization` header must use the Bearer scheme."))?;
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
            "The gateway has no AGENT_TOKEN configured, so it refuses every call. \
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
}
