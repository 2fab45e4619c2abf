//! Tool calls across providers (`gateway_core::tools`): answers in each dialect, however the
//! network cuts them, reach an OpenAI client as the calls the answer made; history of any
//! provider is rewritten into what each target accepts, pairs kept paired.

use std::collections::{HashMap, HashSet};

use gateway_core::error::ErrorKind;
use gateway_core::relay::SseRelay;
use gateway_core::request::ChatRequest;
use gateway_core::tools::memory::{lookup_for, lookup_keys, to_remember, Remembered, SignatureRecord};
use gateway_core::tools::{normalise_completion, IssuedSignature, StreamCalls, ToolFamily, SIGNATURE_PLACEHOLDER};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::tool_calls::{accumulate_stream, completion_calls, strict_json, AnswerCall, Dialect, IdForm, ToolAnswer};
use crate::{cases, hostile_bytes, split_at_points};

const USAGE: &str =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn arguments() -> impl Strategy<Value = String> {
    prop::collection::btree_map("[a-z]{1,6}", "[ -~]{0,12}", 0..3).prop_map(|m| json!(m).to_string())
}

fn answer_call(id: impl Strategy<Value = IdForm>) -> impl Strategy<Value = AnswerCall> {
    (id, "[a-z_]{1,10}", arguments(), prop::collection::vec(any::<usize>(), 0..4))
        .prop_map(|(id, name, arguments, splits)| AnswerCall { id, name, arguments, splits })
}

fn gemini_id() -> impl Strategy<Value = IdForm> {
    prop_oneof![
        4 => prop_oneof!["call_[0-9]{5,9}", "function-call-[0-9]{8,20}", "[a-z0-9]{8}"].prop_map(IdForm::Given),
        1 => Just(IdForm::Empty),
        1 => Just(IdForm::Missing),
        1 => Just(IdForm::SameAsPrevious),
    ]
}

fn signature() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[A-Za-z0-9+/]{4,60}={0,2}")
}

fn gemini_answer() -> impl Strategy<Value = ToolAnswer> {
    ("chatcmpl-[a-z0-9]{6}", prop::collection::vec(answer_call(gemini_id()), 1..5), signature(), any::<[bool; 3]>())
        .prop_map(|(id, calls, signature, [split, repeat_id, trailing_signature])| ToolAnswer {
            id,
            calls,
            signature,
            dialect: Dialect::Gemini { split, repeat_id, trailing_signature },
        })
}

fn openai_answer() -> impl Strategy<Value = ToolAnswer> {
    let call = answer_call("[a-zA-Z0-9]{24}".prop_map(|s| IdForm::Given(format!("call_{s}"))));
    ("chatcmpl-[a-z0-9]{6}", prop::collection::vec(call, 1..5)).prop_map(|(id, mut calls)| {
        // OpenAI's ids are distinct: make them so.
        for (k, c) in calls.iter_mut().enumerate() {
            if let IdForm::Given(id) = &mut c.id {
                id.push_str(&k.to_string());
            }
        }
        ToolAnswer { id, calls, signature: None, dialect: Dialect::OpenAi }
    })
}

/// The whole stream through one relay, cut at `cuts`: what the client got, and the relay.
fn relay(stream: &[u8], cuts: &[usize]) -> (Vec<u8>, SseRelay) {
    let mut relay = SseRelay::new();
    let mut out = Vec::new();
    for piece in split_at_points(stream, cuts) {
        relay.push(&piece, &mut out).expect("a valid stream");
    }
    relay.finish(&mut out).expect("a complete stream");
    (out, relay)
}

fn full_stream(a: &ToolAnswer) -> Vec<u8> {
    let mut text = a.stream_events().concat();
    text.push_str(USAGE);
    text.push_str(DONE);
    text.into_bytes()
}

proptest! {
    #![proptest_config(cases(192))]

    /// However the network cuts a Gemini tool-call stream (parallel calls, split arguments, a
    /// trailing signature, "stop"), an OpenAI client accumulates from the relayed stream exactly
    /// the calls the same answer has non-streamed and normalised, and the signatures reported
    /// are the same.
    #[test]
    fn gemini_streams_reach_the_client_as_the_whole_answer(a in gemini_answer(), cuts in prop::collection::vec(any::<usize>(), 0..30)) {
        let (out, relay) = relay(&full_stream(&a), &cuts);
        let streamed = accumulate_stream(&out).map_err(TestCaseError::fail)?;
        prop_assert_eq!(a.check(&streamed), Ok(()), "{}", String::from_utf8_lossy(&out));
        let body = a.completion_body();
        let whole = normalise_completion(body.as_bytes());
        let whole_calls = completion_calls(&whole.body).map_err(TestCaseError::fail)?;
        prop_assert_eq!(&streamed, &whole_calls);
        prop_assert_eq!(relay.signatures(), whole.signatures.as_slice());
        let expected: Vec<IssuedSignature> = a.signature.iter()
            .map(|s| IssuedSignature { call_id: streamed.calls[0].id.clone(), signature: s.clone() })
            .collect();
        prop_assert_eq!(relay.signatures(), expected.as_slice());
    }

    /// A clean OpenAI tool-call stream passes byte for byte, and so does its whole form.
    #[test]
    fn clean_openai_answers_pass_byte_for_byte(a in openai_answer(), cuts in prop::collection::vec(any::<usize>(), 0..30)) {
        let stream = full_stream(&a);
        let (out, relay) = relay(&stream, &cuts);
        prop_assert_eq!(&out, &stream);
        prop_assert!(relay.signatures().is_empty());
        prop_assert_eq!(a.check(&accumulate_stream(&out).map_err(TestCaseError::fail)?), Ok(()));
        let body = a.completion_body();
        prop_assert!(matches!(normalise_completion(body.as_bytes()).body, std::borrow::Cow::Borrowed(_)));
    }

    /// The loop's next turn, as `runTools` sends it (each call's `{id, type, function}` only):
    /// for a Gemini 3 target its first call carries the signature Gemini issued, found in the
    /// caller's memory by the id the client saw (or the placeholder when none was issued); for
    /// OpenAI and Anthropic the ids the client saw are already acceptable.
    #[test]
    fn the_next_turn_gets_its_signature_back_from_the_memory(a in gemini_answer()) {
        let (out, relay) = relay(&full_stream(&a), &[]);
        let streamed = accumulate_stream(&out).map_err(TestCaseError::fail)?;
        let replayed: Vec<Value> = streamed.calls.iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        let mut messages = vec![json!({"role": "user", "content": "go"}), json!({"role": "assistant", "content": null, "tool_calls": replayed})];
        messages.extend(streamed.calls.iter().map(|c| json!({"role": "tool", "tool_call_id": c.id, "content": "done"})));
        let body = json!({"model": "agent", "messages": messages}).to_string();
        let chat = ChatRequest::parse(body.as_bytes()).map_err(|e| TestCaseError::fail(e.message))?;
        let history = chat.tool_history().expect("a tool history");
        prop_assert_eq!(history.unsigned_first_calls().collect::<Vec<_>>(), vec![streamed.calls[0].id.as_str()]);
        // The shell: the records written after the answer (D1, by key), read back for the calls
        // the next request needs, then the lookup for each attempt.
        let stored: HashMap<String, SignatureRecord> = to_remember("agent:me", "google-ai-studio", "gemini-3-flash", relay.signatures(), 0)
            .into_iter().map(|r| (r.key.clone(), r)).collect();
        let read_back = |caller: &str| -> Vec<Remembered> {
            lookup_keys(caller, &[ToolFamily::Gemini3], history.unsigned_first_calls())
                .into_iter()
                .filter_map(|(id, key)| stored.get(&key).map(|r| Remembered { call_id: id.to_owned(), signature: r.signature.clone(), model: r.model.clone() }))
                .collect()
        };
        let mine = read_back("agent:me");
        let memory = lookup_for(&mine, "google-ai-studio", "gemini-3-flash");
        let sent: Value = serde_json::from_slice(&chat.rewrite_for("g/m", None, ToolFamily::Gemini3, &memory)).unwrap();
        let first = &sent["messages"][1]["tool_calls"][0];
        let want = a.signature.as_deref().unwrap_or(SIGNATURE_PLACEHOLDER);
        prop_assert_eq!(first["extra_content"]["google"]["thought_signature"].as_str(), Some(want));
        for family in [ToolFamily::OpenAi, ToolFamily::Anthropic] {
            prop_assert_eq!(chat.rewrite_for("x/y", None, family, &memory), chat.rewrite_bounded("x/y", None));
        }
        // Another caller's memory has nothing for these ids, and another model gets none.
        let theirs = read_back("agent:other");
        prop_assert!(theirs.is_empty());
        let other_model = lookup_for(&mine, "google-ai-studio", "gemini-3-pro");
        for lookup in [&lookup_for(&theirs, "google-ai-studio", "gemini-3-flash") as &dyn Fn(&str) -> Option<String>, &other_model] {
            let sent: Value = serde_json::from_slice(&chat.rewrite_for("g/m", None, ToolFamily::Gemini3, lookup)).unwrap();
            prop_assert_eq!(sent["messages"][1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"].as_str(), Some(SIGNATURE_PLACEHOLDER));
        }
    }

    /// Arbitrary bytes: the normalisers never panic, and what they return is JSON when the input was.
    #[test]
    fn the_normalisers_take_any_bytes(data in hostile_bytes(600)) {
        let mut calls = StreamCalls::new();
        if let Some(out) = calls.event(&data) {
            prop_assert!(serde_json::from_slice::<Value>(&out).is_ok());
        }
        let whole = normalise_completion(&data);
        if matches!(whole.body, std::borrow::Cow::Owned(_)) {
            prop_assert!(serde_json::from_slice::<Value>(&whole.body).is_ok());
        }
    }
}

/// One step of a generated history: its calls (id, the signature the client sent back), the
/// order their results come in, and whether a text message follows.
#[derive(Debug, Clone)]
struct HistoryStep {
    calls: Vec<(String, Option<String>)>,
    order: Vec<usize>,
    chatter: bool,
}

/// Ids as every provider writes them, and what peers have put into them (a signature), and
/// worse: empty, non-ASCII, repeated across steps.
fn history_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "call_[a-zA-Z0-9]{24}",
        2 => "toolu_[a-zA-Z0-9]{20}",
        2 => "function-call-[0-9]{10,20}",
        1 => "[a-z0-9]{8}",
        1 => "call_[a-z0-9]{8}__thought__[A-Za-z0-9+/=]{30,120}",
        1 => "[A-Za-z0-9.:]{41,80}",
        1 => Just(String::new()),
        1 => "[é😀a-z .]{1,10}",
        2 => prop::sample::select(vec!["toolu_1", "call_a", "x"]).prop_map(String::from),
    ]
}

fn history_steps() -> impl Strategy<Value = Vec<HistoryStep>> {
    let step =
        (prop::collection::vec((history_id(), prop::option::of("[A-Za-z0-9]{8}")), 1..4), any::<u64>(), any::<bool>());
    prop::collection::vec(step, 1..5).prop_map(|steps| {
        steps
            .into_iter()
            .map(|(mut calls, seed, chatter)| {
                // Ids are distinct within a step (else their results could not be told apart).
                let mut seen = HashSet::new();
                for (k, (id, _)) in calls.iter_mut().enumerate() {
                    if !seen.insert(id.clone()) {
                        id.push_str(&format!("#{k}"));
                        seen.insert(id.clone());
                    }
                }
                let mut order: Vec<usize> = (0..calls.len()).collect();
                let n = order.len();
                for i in 0..n {
                    order.swap(i, (seed as usize).wrapping_add(i * 7) % n);
                }
                HistoryStep { calls, order, chatter }
            })
            .collect()
    })
}

fn history_body(steps: &[HistoryStep]) -> String {
    let mut messages = vec![json!({"role": "system", "content": "be brief"}), json!({"role": "user", "content": "go"})];
    for step in steps {
        let calls: Vec<Value> = step
            .calls
            .iter()
            .map(|(id, sig)| {
                let mut c =
                    json!({"id": id, "type": "function", "function": {"name": "read", "arguments": "{\"p\":1}"}});
                if let Some(s) = sig {
                    c["extra_content"] = json!({"google": {"thought_signature": s}});
                }
                c
            })
            .collect();
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
        for &k in &step.order {
            messages.push(json!({"role": "tool", "tool_call_id": step.calls[k].0, "content": format!("result {k}")}));
        }
        if step.chatter {
            messages.push(json!({"role": "user", "content": "and then?"}));
        }
    }
    json!({"model": "agent", "messages": messages, "stream": true}).to_string()
}

/// For each `tool` message, in order, the (step, call) it answers, by the rule every provider
/// has: the results follow their assistant message, one per call, before any other message.
fn pairs(v: &Value) -> Result<Vec<(usize, usize)>, String> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<String>, Vec<bool>)> = None;
    let mut step = 0;
    let close = |open: &mut Option<(usize, Vec<String>, Vec<bool>)>| match open.take() {
        Some((s, _, answered)) if answered.contains(&false) => Err(format!("step {s} has a call without result")),
        _ => Ok(()),
    };
    for m in v["messages"].as_array().ok_or("no messages")? {
        if m["role"] == "tool" {
            let id = m["tool_call_id"].as_str().ok_or("a result without id")?;
            let (s, ids, answered) = open.as_mut().ok_or("a result without a step")?;
            let k = ids
                .iter()
                .position(|c| c == id)
                .ok_or_else(|| format!("a result for {id:?}, not a call of step {s}"))?;
            if std::mem::replace(&mut answered[k], true) {
                return Err(format!("{id:?} answered twice"));
            }
            out.push((*s, k));
            continue;
        }
        close(&mut open)?;
        if let Some(calls) = m["tool_calls"].as_array() {
            let ids: Vec<String> = calls.iter().map(|c| c["id"].as_str().unwrap_or_default().to_owned()).collect();
            open = Some((step, ids.clone(), vec![false; ids.len()]));
            step += 1;
        }
    }
    close(&mut open)?;
    Ok(out)
}

fn calls_of(v: &Value) -> Vec<Vec<Value>> {
    v["messages"].as_array().unwrap().iter().filter_map(|m| m["tool_calls"].as_array().cloned()).collect()
}

/// The rules of each target as the reference's table gives them.
fn accepted_by(family: ToolFamily, v: &Value) -> Result<(), String> {
    pairs(v)?;
    let steps = calls_of(v);
    let ids: Vec<&str> = steps.iter().flatten().map(|c| c["id"].as_str().unwrap_or_default()).collect();
    let extra = steps.iter().flatten().any(|c| c.get("extra_content").is_some());
    match family {
        ToolFamily::OpenAi => {
            if let Some(id) = ids.iter().find(|id| id.is_empty() || id.chars().count() > 40) {
                return Err(format!("OpenAI refuses the id {id:?}"));
            }
            if extra {
                return Err("extra_content sent to OpenAI".into());
            }
        }
        ToolFamily::Anthropic => {
            let valid =
                |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if let Some(id) = ids.iter().find(|id| !valid(id)) {
                return Err(format!("Anthropic refuses the id {id:?}"));
            }
            if ids.iter().collect::<HashSet<_>>().len() != ids.len() {
                return Err(format!("Anthropic refuses repeated ids {ids:?}"));
            }
            if extra {
                return Err("extra_content sent to Anthropic".into());
            }
        }
        ToolFamily::Gemini3 => {
            for (s, calls) in steps.iter().enumerate() {
                let sig = calls[0]["extra_content"]["google"]["thought_signature"].as_str().unwrap_or_default();
                if sig.is_empty() {
                    return Err(format!("Gemini 3 refuses step {s} without a signature on its first call"));
                }
            }
        }
        ToolFamily::Gemini => {}
    }
    Ok(())
}

/// Everything but ids and `extra_content`: what the history rewrite must leave alone.
fn without_ids(v: &Value) -> Value {
    let mut v = v.clone();
    for m in v["messages"].as_array_mut().unwrap() {
        m.as_object_mut().unwrap().remove("tool_call_id");
        for c in m["tool_calls"].as_array_mut().into_iter().flatten() {
            c.as_object_mut().unwrap().remove("id");
            c.as_object_mut().unwrap().remove("extra_content");
        }
    }
    // What the rewrite sets for every request, tools or not.
    v["model"] = json!(null);
    v["stream_options"] = json!(null);
    v
}

const FAMILIES: [ToolFamily; 4] = [ToolFamily::OpenAi, ToolFamily::Anthropic, ToolFamily::Gemini, ToolFamily::Gemini3];

proptest! {
    #![proptest_config(cases(128))]

    /// For every target, the rewritten history passes that target's rules, answers each call
    /// with the same result as before (parallel calls still in one message), changes nothing
    /// but ids and signatures, and is the same every time.
    #[test]
    fn history_is_rewritten_into_what_each_target_accepts(steps in history_steps(), remembered in any::<bool>()) {
        let body = history_body(&steps);
        let chat = ChatRequest::parse(body.as_bytes()).map_err(|e| TestCaseError::fail(e.message))?;
        let original: Value = serde_json::from_str(&body).unwrap();
        let before = pairs(&original).map_err(TestCaseError::fail)?;
        let memory = |id: &str| remembered.then(|| format!("MEM{}", id.len()));
        for family in FAMILIES {
            let out = chat.rewrite_for("p/m", None, family, &memory);
            strict_json(&String::from_utf8_lossy(&out)).map_err(TestCaseError::fail)?;
            let sent: Value = serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(format!("{family:?}: {e}")))?;
            prop_assert_eq!(accepted_by(family, &sent), Ok(()), "{:?}: {}", family, sent);
            prop_assert_eq!(pairs(&sent), Ok(before.clone()), "{:?}", family);
            let counts = |v: &Value| calls_of(v).iter().map(Vec::len).collect::<Vec<_>>();
            prop_assert_eq!(counts(&sent), counts(&original));
            prop_assert_eq!(without_ids(&sent), without_ids(&original));
            prop_assert_eq!(&out, &chat.rewrite_for("p/m", None, family, &memory), "deterministic");
            let again = ChatRequest::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(&out, &again.rewrite_for("p/m", None, family, &memory), "the same for the same request");
        }
        // Gemini before 3 takes the history as it came.
        prop_assert_eq!(chat.rewrite_for("p/m", None, ToolFamily::Gemini, &memory), chat.rewrite_bounded("p/m", None));
    }

    /// A history with a result taken away, or one added where no call was made, is the
    /// request's own error: a 400 that names a message.
    #[test]
    fn broken_pairings_are_refused_naming_the_message(steps in history_steps(), pick in any::<usize>(), orphan in any::<bool>()) {
        let mut v: Value = serde_json::from_str(&history_body(&steps)).unwrap();
        let messages = v["messages"].as_array_mut().unwrap();
        if orphan {
            messages.insert(1, json!({"role": "tool", "tool_call_id": "nobody", "content": "?"}));
        } else {
            let results: Vec<usize> = (0..messages.len()).filter(|&i| messages[i]["role"] == "tool").collect();
            messages.remove(results[pick % results.len()]);
        }
        let body = v.to_string();
        let err = ChatRequest::parse(body.as_bytes()).expect_err("a broken pairing");
        prop_assert_eq!(err.kind, ErrorKind::InvalidRequest);
        prop_assert!(err.message.contains("`messages["), "{}", err.message);
    }
}

/// JSON made of the words tool history is made of, nested: deep enough to reach every branch.
fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec!["tool", "assistant", "user", "", "call_1", "function", "x.y", "é"])
            .prop_map(|s| json!(s)),
    ];
    let keys = prop::sample::select(vec![
        "role",
        "tool_calls",
        "tool_call_id",
        "id",
        "type",
        "function",
        "name",
        "arguments",
        "extra_content",
        "google",
        "thought_signature",
        "content",
        "index",
    ]);
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|m| json!(m)),
        ]
    })
}

proptest! {
    #![proptest_config(cases(256))]

    /// Messages of any shape: reading never panics, and a request that is read is rewritten
    /// into JSON for every target.
    #[test]
    fn any_messages_are_read_or_refused_never_a_panic(messages in prop::collection::vec(json_tree(), 1..6)) {
        let body = json!({"model": "m", "messages": messages}).to_string();
        match ChatRequest::parse(body.as_bytes()) {
            Ok(chat) => {
                for family in FAMILIES {
                    let out = chat.rewrite_for("p/m", None, family, &|_| Some("s".into()));
                    prop_assert_eq!(strict_json(&String::from_utf8_lossy(&out)), Ok(()));
                }
            }
            Err(e) => prop_assert_eq!(e.status(), 400),
        }
    }

    /// Chunks and completions of any shape with tool calls in them: never a panic, always JSON out.
    #[test]
    fn any_tool_call_answers_are_fixed_into_json(calls in prop::collection::vec(json_tree(), 0..5), finish in json_tree()) {
        let chunk = json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": finish}]}).to_string();
        let mut normaliser = StreamCalls::new();
        for _ in 0..2 {
            if let Some(out) = normaliser.event(chunk.as_bytes()) {
                prop_assert_eq!(strict_json(&String::from_utf8_lossy(&out)), Ok(()));
            }
        }
        let body = json!({"id": "c", "choices": [{"index": 0, "message": {"tool_calls": calls}, "finish_reason": finish}]}).to_string();
        prop_assert_eq!(strict_json(&String::from_utf8_lossy(&normalise_completion(body.as_bytes()).body)), Ok(()));
    }
}
