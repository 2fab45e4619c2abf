//! `request::ChatRequest::parse` + `rewrite`: the agent's body, read without a tree and forwarded
//! byte for byte except `model` (and, for streams, `stream_options.include_usage`).

use gateway_core::error::ErrorKind;
use gateway_core::request::{ChatRequest, OutputLimit};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{cases, hostile_bytes};

/// Whitespace JSON allows between tokens.
fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\n", "\t", " \r\n  "])
}

/// A JSON string literal: any text, some characters written as `\u` escapes.
fn string_literal() -> impl Strategy<Value = String> {
    (any::<String>(), any::<u64>()).prop_map(|(s, mask)| {
        let mut out = String::from("\"");
        for (i, c) in s.chars().enumerate() {
            let escape = mask >> (i % 64) & 1 == 1;
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 || (escape && (c as u32) < 0x10000) => {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                c if escape => {
                    // Outside the BMP: a surrogate pair.
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{:04X}", u));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    })
}

/// Any JSON value as text, with arbitrary whitespace between tokens.
fn value_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        string_literal(),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (prop::collection::vec((ws(), inner.clone(), ws()), 0..4)).prop_map(|items| {
                let body: Vec<String> = items.into_iter().map(|(a, v, b)| format!("{a}{v}{b}")).collect();
                format!("[{}]", body.join(","))
            }),
            (prop::collection::vec((string_literal(), ws(), inner), 0..4)).prop_map(|items| {
                let body: Vec<String> = items.into_iter().map(|(k, w, v)| format!("{k}{w}:{w}{v}")).collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

/// A value for a known key: mostly of the right type, sometimes not.
fn field(key: &'static str) -> BoxedStrategy<(String, String)> {
    let key_text = prop_oneof![
        4 => Just(format!("\"{key}\"")),
        // The same key written with an escape: the gateway must see it as the same key.
        1 => Just(format!("\"\\u{:04x}{}\"", key.as_bytes()[0], &key[1..])),
    ];
    let value = match key {
        "model" => prop_oneof![
            6 => string_literal(),
            1 => Just("\"\"".to_owned()),
            1 => value_text(),
        ]
        .boxed(),
        "stream" => prop_oneof![4 => Just("true".to_owned()), 3 => Just("false".to_owned()), 1 => Just("null".to_owned()), 1 => value_text()].boxed(),
        "stream_options" => prop_oneof![
            2 => Just("null".to_owned()),
            2 => Just("{}".to_owned()),
            3 => (prop_oneof![Just("true"), Just("false"), Just("null")], value_text()).prop_map(|(u, x)| format!("{{\"x\":{x}, \"include_usage\" : {u}}}")),
            2 => (prop_oneof![Just("true"), Just("false")]).prop_map(|u| format!("{{\"include_usage\":{u}}}")),
            1 => value_text(),
        ]
        .boxed(),
        "messages" => prop_oneof![
            6 => prop::collection::vec(value_text(), 1..3).prop_map(|v| format!("[{}]", v.join(","))),
            1 => value_text(),
        ]
        .boxed(),
        "max_tokens" | "max_completion_tokens" => prop_oneof![any::<u32>().prop_map(|n| n.to_string()), value_text()].boxed(),
        _ => value_text().boxed(),
    };
    (key_text, value).boxed()
}

/// A top-level object with the fields the gateway reads, others, duplicates, in any order.
fn chat_body() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "model",
        "model",
        "messages",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "tools",
        "n",
    ]);
    let entry = keys.prop_flat_map(field);
    let other = (string_literal(), value_text());
    (
        prop::collection::vec(prop_oneof![4 => entry, 1 => other], 0..7),
        prop::collection::vec(ws(), 8),
        prop::sample::select(vec!["", " ", "\n", "\r\n\t "]),
    )
        .prop_map(|(entries, spaces, trailing)| {
            let body: Vec<String> = entries
                .into_iter()
                .enumerate()
                .map(|(i, (k, v))| format!("{}{k}{}:{}{v}", spaces[i % 8], spaces[(i + 1) % 8], spaces[(i + 2) % 8]))
                .collect();
            format!("{}{{{}{}}}{trailing}", spaces[7], body.join(","), spaces[3])
        })
}

fn upstream_model() -> impl Strategy<Value = String> {
    prop_oneof![Just("google-ai-studio/gemini-2.5-flash".to_owned()), "[a-z-]{1,12}/[ -~]{1,24}", any::<String>(),]
        .prop_filter("configured targets are never blank", |t| !t.trim().is_empty())
}

proptest! {
    #![proptest_config(cases(512))]

    /// Whatever the bytes, a 400 or a request: never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(body in hostile_bytes(600)) {
        if let Err(e) = ChatRequest::parse(&body) {
            prop_assert!(matches!(e.kind, ErrorKind::InvalidJson | ErrorKind::InvalidRequest), "{:?}", e.kind);
            prop_assert_eq!(e.status(), 400);
        }
    }

    /// What the gateway accepts is JSON; what it forwards is the same JSON with `model` replaced
    /// and, for a stream, usage asked for; and it is itself a request the gateway would accept
    /// (one `model`, one `stream_options`: no duplicate key that parsers could read differently).
    #[test]
    fn rewrite_changes_only_model_and_stream_options(body in chat_body(), target in upstream_model()) {
        let Ok(request) = ChatRequest::parse(body.as_bytes()) else { return Ok(()) };
        let original: Value = serde_json::from_str(&body).expect("parse accepted a body that is not JSON");
        let out = request.rewrite(&target);
        let forwarded: Value = serde_json::from_slice(&out)
            .map_err(|e| TestCaseError::fail(format!("rewrite made invalid JSON ({e}): {}", String::from_utf8_lossy(&out))))?;

        let mut expected = original.clone();
        expected["model"] = json!(target);
        if request.stream && !request.include_usage {
            let mut options = match original.get("stream_options") {
                Some(Value::Object(o)) => o.clone(),
                _ => serde_json::Map::new(),
            };
            options.insert("include_usage".into(), json!(true));
            expected["stream_options"] = Value::Object(options);
        }
        prop_assert_eq!(&forwarded, &expected, "body: {}\nforwarded: {}", body, String::from_utf8_lossy(&out));

        let again = ChatRequest::parse(&out)
            .map_err(|e| TestCaseError::fail(format!("the forwarded body is refused ({}): {}", e.message, String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(again.model.as_ref(), target.as_str());
        prop_assert_eq!(again.stream, request.stream);
        prop_assert_eq!(again.include_usage, request.include_usage || request.stream);
        prop_assert_eq!(again.max_output_tokens, request.max_output_tokens);
    }

    /// With a route's output limit: a request without one gets exactly that limit in the field the
    /// target takes (a `null` one replaced in place); a request with its own keeps it; nothing
    /// else changes beyond what `rewrite` changes, and the result is still one the gateway accepts.
    #[test]
    fn rewrite_bounded_sets_only_a_missing_output_limit(
        body in chat_body(),
        target in upstream_model(),
        reasoning in any::<bool>(),
        tokens in 1u64..1_000_000,
    ) {
        let Ok(request) = ChatRequest::parse(body.as_bytes()) else { return Ok(()) };
        let limit = OutputLimit::for_target("openai", if reasoning { "o3-mini" } else { "gpt-4o" }, tokens);
        let plain: Value = serde_json::from_slice(&request.rewrite(&target)).unwrap();
        let out = request.rewrite_bounded(&target, Some(limit));
        let forwarded: Value = serde_json::from_slice(&out)
            .map_err(|e| TestCaseError::fail(format!("invalid JSON ({e}): {}", String::from_utf8_lossy(&out))))?;
        let mut expected = plain.clone();
        if request.max_output_tokens.is_none() {
            let null_key = ["max_completion_tokens", "max_tokens"]
                .into_iter()
                .filter(|k| plain.get(*k).is_some_and(Value::is_null))
                .max_by_key(|k| *k == limit.field);
            expected[null_key.unwrap_or(limit.field)] = json!(tokens);
        }
        prop_assert_eq!(&forwarded, &expected, "body: {}\nforwarded: {}", body, String::from_utf8_lossy(&out));
        let again = ChatRequest::parse(&out)
            .map_err(|e| TestCaseError::fail(format!("refused ({}): {}", e.message, String::from_utf8_lossy(&out))))?;
        prop_assert_eq!(again.max_output_tokens, Some(request.max_output_tokens.unwrap_or(tokens)));
        prop_assert_eq!(again.model.as_ref(), target.as_str());
    }

    /// Outside the model's value the bytes are the agent's own: nothing is re-serialised.
    #[test]
    fn rewrite_keeps_the_other_bytes(body in chat_body()) {
        let Ok(request) = ChatRequest::parse(body.as_bytes()) else { return Ok(()) };
        if request.stream && !request.include_usage {
            return Ok(()); // stream_options changes too (covered above)
        }
        let out = request.rewrite("p/m");
        let body = body.as_bytes();
        let prefix = body.iter().zip(&out).take_while(|(a, b)| a == b).count();
        let room = body.len().min(out.len()) - prefix;
        let suffix = body.iter().rev().zip(out.iter().rev()).take_while(|(a, b)| a == b).count().min(room);
        let inserted = &out[prefix..out.len() - suffix];
        prop_assert!(
            b"\"p/m\"".windows(inserted.len().max(1)).any(|w| inserted.is_empty() || w == inserted),
            "changed more than the model: {:?}", String::from_utf8_lossy(inserted)
        );
    }
}
