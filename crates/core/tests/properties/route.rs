//! `route::resolve`: any method and path from the wire, a route or a 404/405 in the OpenAI shape.

use gateway_core::error::ErrorKind;
use gateway_core::request::route::{allowed_methods, resolve};
use proptest::prelude::*;

use crate::{cases, hostile_text};

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile_text(80),
        prop::sample::select(vec!["/v1/chat/completions", "/v1/models", "/healthz", "/limits", "/analytics"])
            .prop_flat_map(|p| (Just(p), hostile_text(6), any::<bool>()))
            .prop_map(|(p, noise, before)| if before { format!("{noise}{p}") } else { format!("{p}{noise}") }),
    ]
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn any_request_line_resolves_or_is_refused(method in prop_oneof![hostile_text(10), "(GET|POST|HEAD|PUT|DELETE|get|post)"], path in path()) {
        match resolve(&method, &path) {
            Ok(_) => {
                let allowed = allowed_methods(&path);
                prop_assert!(allowed.is_some(), "a route without a table entry: {:?}", path);
                prop_assert!(allowed.unwrap().split(", ").any(|m| m == method), "{} allowed on {:?}", method, path);
            }
            Err(e) => {
                prop_assert!(matches!(e.kind, ErrorKind::NotFound | ErrorKind::MethodNotAllowed));
                // The error echoes the path: it must still be one valid JSON document.
                let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
                prop_assert!(v["error"]["message"].is_string());
                prop_assert!(!e.to_json().contains('\n') && !e.to_json().contains('\r'));
            }
        }
    }
}
