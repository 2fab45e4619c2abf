//! `native::NativePath::parse`: the path and query of a provider-native call, which become part of
//! the URL the Worker fetches. Whatever comes in, only the configured gateway is reached.

use gateway_core::config::Settings;
use gateway_core::native::NativePath;
use proptest::prelude::*;

use crate::{cases, hostile_text};

const SLUGS: &[&str] =
    &["openai", "anthropic", "google-ai-studio", "workers-ai", "azure-openai", "aws-bedrock", "nope"];

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9._~:+,=-]{1,10}",
        1 => prop::sample::select(vec![
            ".", "..", "%2e", "%2E%2e", "%2f", "%5c", "%40", "%25", "%00", "%0a", "%zz", "%4", "@cf", "@hf", "@evil",
            "http:", "https:", "\\", "a b", "ä", "%41", "v1", "chat", "completions", "", "?", "#",
        ]).prop_map(str::to_owned),
        1 => hostile_text(6),
    ]
}

fn native_path() -> impl Strategy<Value = String> {
    (prop::sample::select(SLUGS.to_vec()), prop::collection::vec(segment(), 0..6), any::<bool>()).prop_map(
        |(slug, segments, trailing)| {
            let mut p = format!("/{slug}/{}", segments.join("/"));
            if trailing {
                p.push('/');
            }
            p
        },
    )
}

fn query() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        hostile_text(30),
        prop::collection::vec(
            (
                prop::sample::select(vec!["alt", "key", "api-key", "api_key", "KEY", "api-version", "x", ""]),
                "[a-z0-9%=&.-]{0,8}"
            ),
            0..4
        )
        .prop_map(|pairs| pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")),
    ])
}

fn settings() -> Settings {
    let pairs = [("CF_ACCOUNT_ID", "acct"), ("AI_GATEWAY_ID", "gw"), ("AI_GATEWAY_URL", "https://gateway.example/v1")];
    Settings::read(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string()))
}

fn check(path: &str, query: Option<&str>) -> Result<(), TestCaseError> {
    let Ok(native) = NativePath::parse(path, query) else { return Ok(()) };
    let rest = &native.rest;
    prop_assert!(!rest.is_empty());
    prop_assert!(!rest.starts_with('/') && !rest.ends_with('/') && !rest.contains("//"), "{:?}", rest);
    for segment in rest.split('/') {
        prop_assert!(segment != "." && segment != "..", "dot segment in {:?}", rest);
    }
    for decoded in native.segments() {
        prop_assert!(decoded != "." && decoded != "..", "encoded dot segment in {:?}", rest);
        prop_assert!(!decoded.contains('/') && !decoded.contains('\\'), "encoded separator in {:?}", rest);
    }
    prop_assert!(!rest.bytes().any(|b| b.is_ascii_control()
        || b == b' '
        || b == b'\\'
        || b == b'?'
        || b == b'#'
        || b >= 0x80));
    let at_signs = rest.matches('@').count();
    prop_assert!(
        at_signs == 0
            || (at_signs == 1
                && (rest.starts_with("@cf/") || rest.starts_with("@hf/") || rest == "@cf" || rest == "@hf")),
        "{:?}",
        rest
    );
    if let Some(q) = &native.query {
        for pair in q.split('&') {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            prop_assert!(
                !["key", "api-key", "api_key"].contains(&key.to_ascii_lowercase().as_str()),
                "credential forwarded: {:?}",
                q
            );
        }
        prop_assert!(!q.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'#'));
    }
    let url = native.upstream_url(&settings()).unwrap();
    let base = format!("https://gateway.example/v1/acct/gw/{}/", native.provider.slug());
    prop_assert!(url.starts_with(&base), "{} does not start with {}", url, base);
    Ok(())
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn structured_paths_stay_on_the_gateway(path in native_path(), query in query()) {
        check(&path, query.as_deref())?;
    }

    #[test]
    fn arbitrary_paths_never_panic(path in hostile_text(120), query in prop::option::of(hostile_text(60))) {
        check(&path, query.as_deref())?;
    }
}
