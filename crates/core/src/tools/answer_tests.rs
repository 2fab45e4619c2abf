use serde_json::{json, Value};

use super::*;

/// One chunk with these tool-call deltas in choice 0 (and a finish reason).
fn chunk(calls: Value, finish: Option<&str>) -> String {
    json!({"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"tool_calls":calls},"finish_reason":finish}]})
        .to_string()
}

fn finish(reason: &str) -> String {
    json!({"id":"chatcmpl-1","choices":[{"index":0,"delta":{},"finish_reason":reason}]}).to_string()
}

/// Runs events through one normaliser: what each became (the original when untouched).
fn run(events: &[String]) -> (Vec<Value>, StreamCalls) {
    let mut calls = StreamCalls::new();
    let out = events
        .iter()
        .map(|e| {
            let fixed = calls.event(e.as_bytes()).map(|b| String::from_utf8(b).unwrap()).unwrap_or_else(|| e.clone());
            serde_json::from_str(&fixed).unwrap()
        })
        .collect();
    (out, calls)
}

/// The tool-call deltas of choice 0 of each event, as `(index, id, name, arguments)`.
fn deltas(events: &[Value]) -> Vec<(Value, Value, Value, Value)> {
    events
        .iter()
        .flat_map(|e| e["choices"][0]["delta"]["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|d| {
            (d["index"].clone(), d["id"].clone(), d["function"]["name"].clone(), d["function"]["arguments"].clone())
        })
        .collect()
}

#[test]
fn gemini_parallel_index_less_calls_get_their_own_index_and_the_stop_becomes_tool_calls() {
    let events = [
        chunk(json!([{"id":"call_1","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}}]), None),
        chunk(json!([{"id":"call_2","type":"function","function":{"name":"b","arguments":"{\"y\":2}"}}]), None),
        finish("stop"),
    ];
    let (out, calls) = run(&events);
    assert_eq!(
        deltas(&out),
        vec![
            (json!(0), json!("call_1"), json!("a"), json!("{\"x\":1}")),
            (json!(1), json!("call_2"), json!("b"), json!("{\"y\":2}")),
        ]
    );
    assert_eq!(out[2]["choices"][0]["finish_reason"], "tool_calls");
    assert!(calls.made_calls());
    // Only the index was added: the rest of the event is byte for byte.
    let fixed = String::from_utf8(StreamCalls::new().event(events[0].as_bytes()).unwrap()).unwrap();
    assert_eq!(fixed, events[0].replace("[{\"function\"", "[{\"index\":0,\"function\""));
}

#[test]
fn split_arguments_continue_the_call_in_progress_with_or_without_its_id() {
    let events = [
        chunk(json!([{"id":"f-1","type":"function","function":{"name":"a","arguments":"{\"x\":"}}]), None),
        chunk(json!([{"function":{"arguments":"1"}}]), None),
        chunk(json!([{"id":"f-1","function":{"arguments":"}"}}]), None),
        chunk(json!([{"id":"f-2","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"function":{"arguments":""}}]), Some("stop")),
    ];
    let (out, _) = run(&events);
    let d = deltas(&out);
    let indices: Vec<&Value> = d.iter().map(|x| &x.0).collect();
    assert_eq!(indices, [&json!(0), &json!(0), &json!(0), &json!(1), &json!(1)]);
    assert_eq!(out[4]["choices"][0]["finish_reason"], "tool_calls");
}

#[test]
fn a_trailing_signature_delta_goes_to_the_first_call_and_is_reported() {
    let events = [
        chunk(json!([{"id":"c1","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"id":"c2","type":"function","function":{"name":"b","arguments":"{}"}}]), None),
        chunk(json!([{"extra_content":{"google":{"thought_signature":"U0lH"}}}]), None),
        finish("stop"),
    ];
    let (out, calls) = run(&events);
    let trailing = &out[2]["choices"][0]["delta"]["tool_calls"][0];
    // With an empty `function` fragment: the AI SDK refuses a tool-call delta without one.
    let expected = json!({"index":0,"function":{},"extra_content":{"google":{"thought_signature":"U0lH"}}});
    assert_eq!(trailing, &expected);
    assert_eq!(calls.signatures(), [IssuedSignature { call_id: "c1".into(), signature: "U0lH".into() }]);
}

#[test]
fn a_signature_before_any_call_is_held_for_the_first_call() {
    let sig = json!({"google":{"thought_signature":"RUFSTFk="}});
    let events = [
        chunk(json!([{"extra_content":sig}]), None),
        chunk(json!([{"id":"c1","type":"function","function":{"name":"a","arguments":"{}"}}]), Some("stop")),
    ];
    let (out, calls) = run(&events);
    assert!(out[0]["choices"][0]["delta"].get("tool_calls").is_none(), "{}", out[0]);
    assert_eq!(out[1]["choices"][0]["delta"]["tool_calls"][0]["extra_content"], sig);
    assert_eq!(calls.signatures()[0].call_id, "c1");
}

#[test]
fn missing_empty_and_duplicate_ids_are_derived_unique_and_the_same_each_time() {
    let events = [
        chunk(json!([{"type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"id":"","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"id":"x","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"id":"x","type":"function","function":{"name":"b","arguments":"{}"}}]), None),
    ];
    let (out, _) = run(&events);
    let ids: Vec<String> = deltas(&out).iter().map(|d| d.1.as_str().unwrap().to_owned()).collect();
    assert_eq!(ids[2], "x");
    for id in [&ids[0], &ids[1], &ids[3]] {
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{ids:?}");
    assert_eq!(run(&events).0, out, "deterministic");
}

#[test]
fn a_reused_upstream_index_with_a_new_id_is_a_new_call() {
    let events = [
        chunk(json!([{"index":0,"id":"u1","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"index":0,"id":"u2","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"index":0,"function":{"arguments":""}}]), None),
    ];
    let (out, _) = run(&events);
    let indices: Vec<Value> = deltas(&out).into_iter().map(|d| d.0).collect();
    assert_eq!(indices, [json!(0), json!(1), json!(1)]);
}

#[test]
fn clean_openai_events_pass_untouched_and_a_missing_type_is_added() {
    let mut calls = StreamCalls::new();
    for e in [
        chunk(json!([{"index":0,"id":"call_a","type":"function","function":{"name":"a","arguments":""}}]), None),
        chunk(json!([{"index":0,"function":{"arguments":"{\"q\":"}}]), None),
        chunk(json!([{"index":1,"id":"call_b","type":"function","function":{"name":"b","arguments":""}}]), None),
        chunk(json!([{"index":1,"function":{"arguments":"{}"}}]), None),
        finish("tool_calls"),
    ] {
        assert_eq!(calls.event(e.as_bytes()), None, "{e}");
    }
    let e = chunk(json!([{"index":0,"id":"c","type":"","function":{"name":"a","arguments":"{}"}}]), None);
    let fixed: Value = serde_json::from_slice(&StreamCalls::new().event(e.as_bytes()).unwrap()).unwrap();
    assert_eq!(fixed["choices"][0]["delta"]["tool_calls"][0]["type"], "function");
}

#[test]
fn a_length_finish_is_kept_and_stop_without_calls_is_not_touched() {
    let (out, _) = run(&[
        chunk(json!([{"id":"c","type":"function","function":{"name":"a","arguments":"{"}}]), None),
        finish("length"),
    ]);
    assert_eq!(out[1]["choices"][0]["finish_reason"], "length");
    assert_eq!(StreamCalls::new().event(finish("stop").as_bytes()), None);
}

#[test]
fn events_past_the_bound_or_not_the_chunk_shape_pass_as_they_came() {
    let mut calls = StreamCalls::new();
    for i in 0..MAX_CALLS {
        let e = chunk(json!([{"id":format!("c{i}"),"type":"function","function":{"name":"a","arguments":"{}"}}]), None);
        assert!(calls.event(e.as_bytes()).is_some());
    }
    let e = chunk(json!([{"id":"more","type":"function","function":{"name":"a","arguments":"{}"}}]), None);
    assert_eq!(calls.event(e.as_bytes()), None);
    for bad in ["{", "[]", r#"{"choices":{}}"#, r#"{"choices":[{"delta":{"tool_calls":{}}}]}"#, r#"{"choices":[1]}"#] {
        assert_eq!(StreamCalls::new().event(bad.as_bytes()), None, "{bad}");
    }
}

fn completion(calls: Value, finish: &str) -> String {
    json!({"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":calls},"finish_reason":finish}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}})
        .to_string()
}

#[test]
fn a_whole_answer_without_tool_calls_or_already_right_is_not_touched() {
    let text =
        br#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
    assert!(matches!(normalise_completion(text).body, Cow::Borrowed(_)));
    let clean = completion(
        json!([{"id":"call_a","type":"function","function":{"name":"a","arguments":"{}"}},{"id":"call_b","type":"function","function":{"name":"b","arguments":"{}"}}]),
        "tool_calls",
    );
    let n = normalise_completion(clean.as_bytes());
    assert!(matches!(n.body, Cow::Borrowed(_)));
    assert!(n.signatures.is_empty());
    assert!(matches!(normalise_completion(b"not json \"tool_calls\"").body, Cow::Borrowed(_)));
}

#[test]
fn a_whole_gemini_answer_is_fixed_like_its_stream() {
    let sig = json!({"google":{"thought_signature":"U0lH"}});
    let body = completion(
        json!([
            {"id":"","type":"function","function":{"name":"a","arguments":"{}"}},
            {"id":"f","function":{"name":"b","arguments":"{}"}},
            {"extra_content":sig}
        ]),
        "stop",
    );
    let n = normalise_completion(body.as_bytes());
    let v: Value = serde_json::from_slice(&n.body).unwrap();
    let calls = v["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["extra_content"], sig);
    assert_eq!(calls[1]["type"], "function");
    assert_eq!(calls[1]["id"], "f");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    // The same answer streamed gets the same derived id for its first call.
    let (out, calls_seen) = run(&[
        chunk(json!([{"id":"","type":"function","function":{"name":"a","arguments":"{}"}}]), None),
        chunk(json!([{"id":"f","function":{"name":"b","arguments":"{}"}}]), None),
        chunk(json!([{"extra_content":sig}]), Some("stop")),
    ]);
    assert_eq!(deltas(&out)[0].1, calls[0]["id"]);
    assert_eq!(n.signatures, calls_seen.signatures());
}

#[test]
fn a_null_extra_content_is_replaced_not_repeated() {
    let sig = json!({"google":{"thought_signature":"U0lH"}});
    let mut calls = StreamCalls::new();
    calls.event(chunk(json!([{"extra_content":sig}]), None).as_bytes());
    let second = chunk(
        json!([{"id":"c1","type":"function","function":{"name":"a","arguments":"{}"},"extra_content":null}]),
        None,
    );
    let text = String::from_utf8(calls.event(second.as_bytes()).unwrap()).unwrap();
    assert_eq!(text.matches("extra_content").count(), 1, "{text}");
    assert!(text.contains("\"extra_content\":{\"google\""), "{text}");
    assert_eq!(calls.signatures().len(), 1);
    let body = completion(
        json!([{"extra_content":sig},{"id":"c1","type":"function","function":{"name":"a","arguments":"{}"},"extra_content":null}]),
        "tool_calls",
    );
    let n = normalise_completion(body.as_bytes());
    let text = String::from_utf8(n.body.to_vec()).unwrap();
    assert_eq!(text.matches("extra_content").count(), 1, "{text}");
    assert_eq!(n.signatures, calls.signatures());
}
