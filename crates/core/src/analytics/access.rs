//! Who may read `/analytics`: `AGENT_TOKEN` or the separate `ANALYTICS_TOKEN`, as a Bearer token
//! (scripts) or as the password of HTTP Basic authentication (a browser asks for it when told
//! `WWW-Authenticate: Basic`, so the dashboard opens without any script or stored token).

use crate::config::Settings;
use crate::error::{ErrorKind, GatewayError};
use crate::request::authenticate::{bearer_token, tokens_equal};

/// The challenge a 401 from `/analytics` carries, so browsers prompt for the token.
pub const CHALLENGE: &str = "Basic realm=\"agent-gateway analytics\", charset=\"UTF-8\"";

/// Who may read `/analytics`: AGENT_TOKEN and ANALYTICS_TOKEN, as configured.
pub fn check_reader(header: Option<&str>, settings: &Settings) -> Result<(), GatewayError> {
    let accepted: Vec<&str> =
        [&settings.agent_token, &settings.analytics_token].into_iter().flatten().map(|t| t.expose()).collect();
    check(header, &accepted)
}

/// Checks an `Authorization` header against the accepted tokens (empty ones are ignored).
pub fn check(header: Option<&str>, accepted: &[&str]) -> Result<(), GatewayError> {
    let accepted: Vec<&str> = accepted.iter().copied().filter(|t| !t.is_empty()).collect();
    if accepted.is_empty() {
        return Err(GatewayError::new(
            ErrorKind::Configuration,
            "Neither AGENT_TOKEN nor ANALYTICS_TOKEN is configured, so /analytics refuses every call. \
             Set one with `wrangler secret put ANALYTICS_TOKEN` (or in .dev.vars locally).",
        ));
    }
    let unauthorized = |m: &str| GatewayError::new(ErrorKind::Unauthorized, m);
    let header = header.ok_or_else(|| {
        unauthorized("Missing credentials: send `Authorization: Bearer <token>` (or Basic with the token as password).")
    })?;
    let presented = match bearer_token(header) {
        Some(token) => token.to_owned(),
        None => basic_password(header)
            .ok_or_else(|| unauthorized("The `Authorization` header must use the Bearer or Basic scheme."))?,
    };
    // Every accepted token is compared (no early exit), each in constant time.
    let matched = accepted.iter().fold(false, |ok, t| tokens_equal(&presented, t) | ok);
    if matched {
        Ok(())
    } else {
        Err(unauthorized("Incorrect API key provided."))
    }
}

/// The password of `Basic base64(user:password)`.
fn basic_password(header: &str) -> Option<String> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
    let (_, password) = decoded.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

/// Standard base64 (RFC 4648 §4, padding optional).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        out.extend_from_slice(&bytes[..chunk.len() - 1]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_agent_token_and_analytics_token() {
        let settings = Settings::read(|name| match name {
            "AGENT_TOKEN" => Some("agent-secret".into()),
            "ANALYTICS_TOKEN" => Some("reader-secret".into()),
            _ => None,
        });
        for ok in ["Bearer agent-secret", "Bearer reader-secret"] {
            assert!(check_reader(Some(ok), &settings).is_ok(), "{ok}");
        }
        let err = check_reader(Some("Bearer other"), &settings).unwrap_err();
        assert_eq!(err.status(), 401);
        let none = Settings::read(|_| None);
        assert_eq!(check_reader(Some("Bearer agent-secret"), &none).unwrap_err().status(), 500);
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("YW5hbHl0aWNzOnMzY3JldA==").unwrap(), b"analytics:s3cret");
        assert_eq!(base64_decode("YW5hbHl0aWNzOnMzY3JldA").unwrap(), b"analytics:s3cret");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8").unwrap(), b"fo");
        for bad in ["Z", "Zm9v!", "Zg===", "Zm9vY"] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn either_token_by_bearer_or_basic() {
        let tokens = ["agent-tok", "analytics-tok"];
        assert!(check(Some("Bearer agent-tok"), &tokens).is_ok());
        assert!(check(Some("bearer analytics-tok"), &tokens).is_ok());
        // "anyone:analytics-tok"
        assert!(check(Some("Basic YW55b25lOmFuYWx5dGljcy10b2s="), &tokens).is_ok());
        assert!(check(Some("Bearer analytics-tok"), &["", "analytics-tok"]).is_ok());
    }

    #[test]
    fn refusals() {
        let tokens = ["agent-tok", "analytics-tok"];
        for h in [
            None,
            Some("Bearer nope"),
            Some("Basic !!!"),
            Some("Basic YWdlbnQtdG9r"),
            Some("Digest x"),
            Some("agent-tok"),
        ] {
            let e = check(h, &tokens).unwrap_err();
            assert_eq!(e.status(), 401, "{h:?}");
            assert!(
                !e.message.contains("agent-tok") && !e.message.contains("analytics-tok"),
                "no token in the message"
            );
        }
        assert_eq!(check(Some("Bearer x"), &["", ""]).unwrap_err().status(), 500);
        assert_eq!(check(Some("Bearer "), &[]).unwrap_err().status(), 500);
    }
}
