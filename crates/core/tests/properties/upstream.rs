//! What AI Gateway (or anything pretending to be it) answers: completions and error bodies.

use gateway_core::aig::answer::{error_from_upstream, read_completion, upstream_message};
use gateway_core::error::redact;
use proptest::prelude::*;

use crate::{cases, hostile_bytes, hostile_text};

const SECRET: &str = "sk-secret-0123456789abcdef";

/// Error bodies in the shapes providers use, with a secret planted somewhere in them.
fn error_body() -> impl Strategy<Value = Vec<u8>> {
    (hostile_text(60), hostile_text(60), 0usize..6).prop_map(|(before, after, shape)| {
        let message = format!("{before}{SECRET}{after}");
        let m = serde_json::to_string(&message).unwrap();
        let text = match shape {
            0 => format!("{{\"error\":{{\"message\":{m},\"type\":\"x\"}}}}"),
            1 => format!("[{{\"error\":{{\"code\":400,\"message\":{m},\"status\":\"INVALID\"}}}}]"),
            2 => format!("{{\"type\":\"error\",\"error\":{{\"type\":\"x\",\"message\":{m}}}}}"),
            3 => format!("{{\"success\":false,\"errors\":[{{\"code\":2009,\"message\":{m}}}]}}"),
            4 => format!("{{\"error\":{m}}}"),
            _ => message,
        };
        text.into_bytes()
    })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn arbitrary_completions_never_panic(body in hostile_bytes(600)) {
        let _ = read_completion(&body);
    }

    /// The message shown to the caller: bounded, one line, never empty.
    #[test]
    fn messages_are_bounded_and_printable(body in hostile_bytes(1200)) {
        let m = upstream_message(&body);
        prop_assert!(!m.is_empty());
        prop_assert!(m.chars().count() <= 500);
        prop_assert!(!m.chars().any(char::is_control));
    }

    /// A secret echoed back by the upstream never reaches the caller whole, whatever the status.
    #[test]
    fn echoed_secrets_are_redacted(body in error_body(), status in 100u16..700, retry in prop::option::of(hostile_text(20))) {
        let e = error_from_upstream(status, &body, retry, "openai", &[SECRET, "other-secret"]);
        prop_assert!(!e.message.contains(SECRET), "{}", e.message);
        prop_assert!(!e.to_json().contains(SECRET));
        if let Some(r) = &e.retry_after {
            prop_assert!(!r.chars().any(char::is_control));
        }
    }

    #[test]
    fn redact_removes_every_occurrence(text in hostile_text(80), n in 1usize..4) {
        let planted = format!("{text}{}", SECRET.repeat(n));
        prop_assert!(!redact(&planted, &[SECRET]).contains(SECRET));
    }
}
