//! Request headers the agent controls: `Authorization` and the caller headers that become
//! `cf-aig-metadata`, and the scoped tokens that bind them.

use gateway_core::aig::call::metadata;
use gateway_core::error::ErrorKind;
use gateway_core::request::authenticate::{bearer_token, check_bearer, AgentTokens, Identity};
use gateway_core::request::caller::Caller;
use gateway_core::request::tokens::{token_hash, ScopedTokens};
use proptest::prelude::*;

use crate::{cases, hostile_text};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{8,40}"
}

fn authorization(token: String) -> impl Strategy<Value = Option<String>> {
    let t = token.clone();
    prop_oneof![
        1 => Just(None),
        3 => hostile_text(40).prop_map(Some),
        3 => (prop::sample::select(vec!["Bearer", "bearer", "BEARER", "Basic", "Token", "Bearer:", ""]),
              prop::sample::select(vec![" ", "  ", "\t", ""]),
              prop_oneof![Just(t.clone()), Just(t.to_uppercase()), Just(format!("{t}x")), Just(t[1..].to_owned()),
                          Just(format!("{t}, Bearer {t}")), Just(format!("{t} ")), hostile_text(10)])
            .prop_map(|(scheme, sep, value)| Some(format!("{scheme}{sep}{value}"))),
    ]
}

proptest! {
    #![proptest_config(cases(1024))]

    /// Only `Bearer <exactly the token>` (scheme in any case, surrounding spaces) is let in.
    #[test]
    fn only_the_exact_token_passes((expected, header) in token().prop_flat_map(|t| (Just(t.clone()), authorization(t)))) {
        let result = check_bearer(header.as_deref(), Some(&expected));
        let exact = header.as_deref().and_then(bearer_token) == Some(expected.as_str());
        prop_assert_eq!(result.is_ok(), exact, "header {:?}", header);
        if exact {
            let h = header.unwrap();
            let (scheme, rest) = h.trim().split_once(' ').unwrap();
            prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
            prop_assert_eq!(rest.trim(), expected.as_str());
        } else {
            let e = result.unwrap_err();
            prop_assert_eq!(e.kind, ErrorKind::Unauthorized);
            prop_assert!(!e.to_json().contains(&expected), "the expected token in an error");
        }
    }

    /// No token configured: nothing passes, whatever is presented.
    #[test]
    fn without_a_token_nothing_passes(header in prop::option::of(hostile_text(40)), empty in prop::sample::select(vec![None, Some("")])) {
        let e = check_bearer(header.as_deref(), empty).unwrap_err();
        prop_assert_eq!(e.kind, ErrorKind::Configuration);
    }

    /// Caller headers: refused, or safe to put in `cf-aig-metadata` (one JSON object, at most five
    /// entries, no control characters anywhere, values from the allowed alphabet).
    #[test]
    fn caller_headers_are_safe_metadata(agent in prop::option::of(prop_oneof![hostile_text(70), "[A-Za-z0-9._-]{1,64}"]),
                                        repo in prop::option::of(prop_oneof![hostile_text(70), "[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}"]),
                                        alias in prop::option::of("[a-z]{1,10}"), attempt in any::<u32>()) {
        let Ok(caller) = Caller::from_headers(agent.as_deref(), repo.as_deref()) else { return Ok(()) };
        for value in [&caller.agent, &caller.repository].into_iter().flatten() {
            prop_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b)), "{:?}", value);
        }
        let text = metadata(&caller, alias.as_deref(), attempt);
        prop_assert!(!text.bytes().any(|b| b.is_ascii_control()));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let object = v.as_object().unwrap();
        prop_assert!(object.len() <= 5);
        prop_assert!(object.values().all(|v| v.is_string() || v.is_number() || v.is_boolean()));
    }

    /// With scoped tokens only, `Bearer <exactly one of them>` is let in, as that token's agent
    /// (never the other's); anything else is 401.
    #[test]
    fn a_scoped_token_lets_in_only_itself((mine, other, header) in (token(), token()).prop_flat_map(|(a, b)| (Just(a.clone()), Just(b), authorization(a)))) {
        prop_assume!(mine != other);
        let scoped = scoped_pair(&mine, &other);
        let tokens = AgentTokens { agent_token: None, scoped: &scoped };
        let presented = header.as_deref().and_then(bearer_token);
        match tokens.check_bearer(header.as_deref()) {
            Ok(Identity::Scoped { token, presented: p }) => {
                prop_assert_eq!(token.agent.as_str(), if presented == Some(other.as_str()) { "Other" } else { "Mine" });
                prop_assert!(presented == Some(mine.as_str()) || presented == Some(other.as_str()));
                prop_assert_eq!(Some(p.expose()), presented);
            }
            Ok(Identity::Agent) => prop_assert!(false, "no AGENT_TOKEN is configured"),
            Err(e) => {
                prop_assert_eq!(e.status(), 401);
                prop_assert!(presented != Some(mine.as_str()) && presented != Some(other.as_str()));
                prop_assert!(!e.to_json().contains(&mine));
            }
        }
    }

    /// Whatever the caller headers say, a scoped caller is refused (400 malformed, 403
    /// disagreeing) or is the token's agent in one of its repositories.
    #[test]
    fn a_scoped_caller_is_what_its_token_says(agent in prop::option::of(prop_oneof![hostile_text(20), Just("Mine".to_owned()), Just("Other".to_owned())]),
                                              repo in prop::option::of(prop_oneof![hostile_text(30), "(octo|acme|octo-org)/[a-z.]{1,6}", Just("acme/app".to_owned())])) {
        let scoped = scoped_pair("tok-mine", "tok-other");
        let tokens = AgentTokens { agent_token: Some("tok-agent"), scoped: &scoped };
        let identity = tokens.identify("tok-mine").unwrap();
        match identity.caller(agent.as_deref(), repo.as_deref()) {
            Ok(caller) => {
                prop_assert_eq!(caller.agent.as_deref(), Some("Mine"));
                let r = caller.repository.unwrap_or_default();
                prop_assert!(r.starts_with("octo/") || r == "acme/app", "{:?}", r);
            }
            Err(e) => prop_assert!(matches!(e.status(), 400 | 403), "{:?}", e),
        }
    }

    /// A broken secret never panics, and its problem never shows a key (where a token might have
    /// been stored by mistake).
    #[test]
    fn a_broken_secret_never_shows_its_keys(key in r"[ !#-\[\]-~]{8,80}", rest in prop::option::of(hostile_text(40))) {
        let json = match &rest {
            None => format!(r#"{{"{key}": {{"agent": "Mine"}}}}"#),
            Some(r) => format!(r#"{{"{key}": {r}"#),
        };
        match ScopedTokens::parse(&json) {
            Ok(t) => prop_assert!(t.len() <= 1),
            Err(problem) => {
                prop_assert!(problem.starts_with("AGENT_TOKENS"));
                prop_assert!(!problem.contains(&key), "{}", problem);
            }
        }
    }
}

/// Two scoped tokens: `mine` for agent `Mine` in `octo/*` and `acme/app`, `other` for `Other`.
fn scoped_pair(mine: &str, other: &str) -> ScopedTokens {
    ScopedTokens::parse(&format!(
        r#"{{"{}": {{"agent": "Mine", "repositories": ["octo/*", "acme/app"]}}, "{}": {{"agent": "Other"}}}}"#,
        token_hash(mine),
        token_hash(other)
    ))
    .unwrap()
}
