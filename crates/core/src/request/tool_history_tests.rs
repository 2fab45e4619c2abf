use serde_json::{json, Value};

use super::*;
use crate::tools::history::{anthropic_id_byte, OPENAI_MAX_ID_CHARS};
use crate::tools::memory::MAX_SIGNATURE_BYTES;
use crate::tools::*;

fn call(id: &str, name: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": "{}"}})
}

fn signed(id: &str, signature: &str) -> Value {
    let mut c = call(id, "f");
    c["extra_content"] = json!({"google": {"thought_signature": signature}});
    c
}

fn step(calls: Vec<Value>) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": calls})
}

fn result(id: &str) -> Value {
    json!({"role": "tool", "tool_call_id": id, "content": "ok"})
}

fn body(messages: Vec<Value>) -> String {
    json!({"model": "agent", "messages": messages}).to_string()
}

fn no_memory(_: &str) -> Option<String> {
    None
}

/// The body sent to a target of `family`, parsed.
fn sent(body: &str, family: ToolFamily, memory: &dyn Fn(&str) -> Option<String>) -> Value {
    let chat = ChatRequest::parse(body.as_bytes()).unwrap();
    serde_json::from_slice(&chat.rewrite_for("x/y", None, family, memory)).unwrap()
}

fn refusal(body: &str) -> GatewayError {
    ChatRequest::parse(body.as_bytes()).unwrap_err()
}

fn ids(v: &Value) -> (Vec<String>, Vec<String>) {
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for m in v["messages"].as_array().unwrap() {
        for c in m["tool_calls"].as_array().into_iter().flatten() {
            calls.push(c["id"].as_str().unwrap().to_owned());
        }
        if let Some(id) = m["tool_call_id"].as_str() {
            results.push(id.to_owned());
        }
    }
    (calls, results)
}

#[test]
fn a_chat_without_tools_is_not_read_and_rewritten_as_before() {
    let text = body(vec![json!({"role": "user", "content": "the \"tool\" word and extra_content"})]);
    let chat = ChatRequest::parse(text.as_bytes()).unwrap();
    assert!(chat.tool_history().is_none());
    for family in [ToolFamily::OpenAi, ToolFamily::Anthropic, ToolFamily::Gemini3] {
        assert_eq!(chat.rewrite_for("x/y", None, family, &no_memory), chat.rewrite_bounded("x/y", None));
    }
}

#[test]
fn broken_pairings_are_400s_naming_the_message() {
    let long = "x".repeat(10_000);
    let cases: Vec<(Vec<Value>, &str)> = vec![
        (
            vec![json!({"role":"user","content":"hi"}), result("a")],
            "`messages[1]` is a result for the tool call `a`, but no assistant",
        ),
        (
            vec![step(vec![call("a", "f")]), result("b")],
            "`messages[1]` is a result for the tool call `b`, which `messages[0]` did not make",
        ),
        (
            vec![step(vec![call("a", "f"), call("b", "f")]), result("a"), json!({"role":"user","content":"?"})],
            "`messages[0]` makes the tool call `b`, which has no result",
        ),
        (vec![step(vec![call("a", "f")])], "`messages[0]` makes the tool call `a`, which has no result"),
        (
            vec![step(vec![call("a", "f")]), json!({"role":"user","content":"?"}), result("a")],
            "`messages[0]` makes the tool call `a`",
        ),
        (
            vec![step(vec![call("a", "f")]), result("a"), result("a")],
            "`messages[2]` answers the tool call `a` a second time",
        ),
        (
            vec![step(vec![call("a", "f"), call("a", "g")]), result("a")],
            "`messages[0].tool_calls` has two calls with the id `a`",
        ),
        (
            vec![step(vec![call("a", "f")]), json!({"role":"tool","content":"x"})],
            "`messages[1].tool_call_id` must be a string",
        ),
        (
            vec![step(vec![json!({"type":"function","function":{"name":"f"}})])],
            "`messages[0].tool_calls[0].id` must be a string",
        ),
        (vec![step(vec![json!(1)])], "`messages[0].tool_calls[0]` must be an object"),
        (vec![json!({"role":"assistant","tool_calls":{}})], "`messages[0].tool_calls` must be an array"),
        (vec![step(vec![call(&long, "f")])], "which has no result"),
    ];
    for (messages, needle) in cases {
        let err = refusal(&body(messages));
        assert_eq!((err.status(), err.kind), (400, ErrorKind::InvalidRequest));
        assert!(err.message.contains(needle), "{needle}: {}", err.message);
        assert!(err.message.len() < 400, "ids are cut in messages: {}", err.message.len());
    }
}

#[test]
fn openai_gets_ids_of_at_most_40_characters_in_calls_and_results_and_no_extra_content() {
    let long = format!("call_{}", "9".repeat(60));
    let text = body(vec![
        json!({"role":"user","content":"go"}),
        step(vec![signed(&long, "U0lH"), call("short_1", "g")]),
        result("short_1"),
        result(&long),
    ]);
    let v = sent(&text, ToolFamily::OpenAi, &no_memory);
    let (calls, results) = ids(&v);
    assert_eq!(calls[1], "short_1", "an id the target accepts is kept");
    assert!(calls[0].len() <= 40 && calls[0].starts_with("call_9999"), "{}", calls[0]);
    assert_eq!(results, [calls[1].clone(), calls[0].clone()], "results follow their calls");
    assert!(v["messages"][1]["tool_calls"][0].get("extra_content").is_none());
    assert_eq!(v, sent(&text, ToolFamily::OpenAi, &no_memory), "deterministic");
    // Every byte that did not have to change is as it came.
    let chat = ChatRequest::parse(text.as_bytes()).unwrap();
    let out = String::from_utf8(chat.rewrite_for("x/y", None, ToolFamily::OpenAi, &no_memory)).unwrap();
    assert!(out.contains(r#"{"content":"ok","role":"tool","tool_call_id":"short_1"}"#), "{out}");
}

#[test]
fn anthropic_gets_safe_unique_ids_and_pairs_stay_paired() {
    let text = body(vec![
        step(vec![call("functions.read:0", "read"), call("", "g")]),
        result(""),
        result("functions.read:0"),
        json!({"role":"assistant","content":"next"}),
        step(vec![call("toolu_1", "f")]),
        result("toolu_1"),
        step(vec![call("toolu_1", "f")]),
        result("toolu_1"),
    ]);
    let v = sent(&text, ToolFamily::Anthropic, &no_memory);
    let (calls, results) = ids(&v);
    let safe = |id: &str| !id.is_empty() && id.bytes().all(anthropic_id_byte);
    assert!(calls.iter().all(|c| safe(c)), "{calls:?}");
    assert!(calls[0].starts_with("functions_read_0_"), "{}", calls[0]);
    assert!(calls[1].starts_with("call_"), "{}", calls[1]);
    assert_eq!(calls[2], "toolu_1", "the first use of an id is kept");
    assert_ne!(calls[3], "toolu_1", "a repeated id is not");
    assert_eq!(results, [calls[1].clone(), calls[0].clone(), calls[2].clone(), calls[3].clone()]);
}

#[test]
fn gemini_3_gets_a_signature_on_the_first_call_of_each_step() {
    let big = "A".repeat(1 << 20);
    let text = body(vec![
        step(vec![call("c1", "f"), call("c2", "g")]),
        result("c2"),
        result("c1"),
        step(vec![call("c3", "f")]),
        result("c3"),
        step(vec![signed("c4", &big)]),
        result("c4"),
    ]);
    let chat = ChatRequest::parse(text.as_bytes()).unwrap();
    let wanted: Vec<&str> = chat.tool_history().unwrap().unsigned_first_calls().collect();
    assert_eq!(wanted, ["c1", "c3"]);
    let memory = |id: &str| (id == "c1").then(|| String::from("UkVNRU1CRVJFRA=="));
    let v = sent(&text, ToolFamily::Gemini3, &memory);
    let sig =
        |m: usize, c: usize| v["messages"][m]["tool_calls"][c]["extra_content"]["google"]["thought_signature"].clone();
    assert_eq!(sig(0, 0), "UkVNRU1CRVJFRA==", "the gateway's memory");
    assert_eq!(v["messages"][0]["tool_calls"][1].get("extra_content"), None, "only the first call of a step");
    assert_eq!(v["messages"][0]["tool_calls"].as_array().unwrap().len(), 2, "parallel calls stay in one message");
    assert_eq!(sig(3, 0), SIGNATURE_PLACEHOLDER, "history Gemini did not sign");
    assert_eq!(sig(5, 0).as_str().map(str::len), Some(big.len()), "the client's own, as it came");
    // A remembered signature over the bound is not used.
    let huge = "B".repeat(MAX_SIGNATURE_BYTES + 1);
    let v = sent(&text, ToolFamily::Gemini3, &|_| Some(huge.clone()));
    assert_eq!(
        v["messages"][0]["tool_calls"][0]["extra_content"]["google"]["thought_signature"],
        SIGNATURE_PLACEHOLDER
    );
    // Gemini before 3 gets the history as it came.
    assert_eq!(
        sent(&text, ToolFamily::Gemini, &memory)["messages"],
        serde_json::from_str::<Value>(&text).unwrap()["messages"]
    );
}

#[test]
fn extra_content_beside_a_message_is_dropped_for_other_providers_only() {
    let mut message = step(vec![call("a", "f")]);
    message["extra_content"] = json!({"google": {"thought_signature": "x"}});
    let text = body(vec![message, result("a")]);
    assert!(sent(&text, ToolFamily::Anthropic, &no_memory)["messages"][0].get("extra_content").is_none());
    assert!(sent(&text, ToolFamily::Gemini3, &no_memory)["messages"][0].get("extra_content").is_some());
}

#[test]
fn thousands_of_messages_and_a_10_kb_id_are_read_and_rewritten_in_one_pass() {
    let long = "i".repeat(10 * 1024);
    let mut messages = vec![json!({"role": "user", "content": "go"})];
    for k in 0..3000 {
        let id = if k == 1500 { long.clone() } else { format!("call_{k}") };
        messages.push(step(vec![call(&id, "f")]));
        messages.push(result(&id));
    }
    let text = body(messages);
    let chat = ChatRequest::parse(text.as_bytes()).unwrap();
    assert_eq!(chat.tool_history().unwrap().unsigned_first_calls().count(), 3000);
    let v = sent(&text, ToolFamily::OpenAi, &no_memory);
    let (calls, results) = ids(&v);
    assert_eq!(calls, results);
    assert!(calls[1500].len() <= OPENAI_MAX_ID_CHARS);
    assert_eq!(calls[1499], "call_1499");
    let v = sent(&text, ToolFamily::Gemini3, &no_memory);
    assert_eq!(
        v["messages"][2999 * 2 + 1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"],
        SIGNATURE_PLACEHOLDER
    );
}
