//! Tool-call answers as each provider writes them through AI Gateway's OpenAI-compatible
//! endpoint (reference: provider-dialects §1), and a client that reads them the way the OpenAI
//! Node SDK's `ChatCompletionStream` does: shared by the property tests and the simulation.
#![allow(dead_code)]

use gateway_core::json::edit::{elements, members};
use gateway_core::relay::sse::{parse_event, SseFramer};
use serde_json::{json, Value};

/// How an answer gives a call's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdForm {
    Given(String),
    Empty,
    Missing,
    /// The id of the call before it (older layers that derived ids from names).
    SameAsPrevious,
}

#[derive(Debug, Clone)]
pub struct AnswerCall {
    pub id: IdForm,
    pub name: String,
    /// Whole JSON, ASCII (so every byte position is a place to split it).
    pub arguments: String,
    /// Where the streamed form splits the arguments into fragments.
    pub splits: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI's own: `index` on every delta, id, type and name on a call's first, arguments in
    /// fragments, `finish_reason: "tool_calls"`.
    OpenAi,
    /// Gemini's: no `index`, one call per chunk (arguments whole or, with `split`, continued in
    /// index-less deltas that repeat the call's id when `repeat_id`), the signature on the
    /// first call or on a trailing `extra_content`-only delta, `finish_reason: "stop"`.
    Gemini { split: bool, repeat_id: bool, trailing_signature: bool },
}

#[derive(Debug, Clone)]
pub struct ToolAnswer {
    /// The answer's own id (`chatcmpl-…`).
    pub id: String,
    pub calls: Vec<AnswerCall>,
    pub signature: Option<String>,
    pub dialect: Dialect,
}

/// A call as the client ends up with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub extra_content: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub calls: Vec<ClientCall>,
    pub finish_reason: String,
}

fn data(v: Value) -> String {
    format!("data: {v}\n\n")
}

fn signature_value(s: &str) -> Value {
    json!({"google": {"thought_signature": s}})
}

impl ToolAnswer {
    /// The id as the answer writes it for call `k` (`None`: no `id` member).
    fn written_id(&self, k: usize) -> Option<String> {
        match &self.calls[k].id {
            IdForm::Given(id) => Some(id.clone()),
            IdForm::Empty => Some(String::new()),
            IdForm::Missing => None,
            IdForm::SameAsPrevious => {
                if k == 0 {
                    None
                } else {
                    self.written_id(k - 1)
                }
            }
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        data(json!({"id": self.id, "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
    }

    /// The streamed answer's events, from the role chunk to the finish chunk (the caller adds
    /// usage and `[DONE]`).
    pub fn stream_events(&self) -> Vec<String> {
        let mut events = vec![self.chunk(json!({"role": "assistant", "content": null}), None)];
        let fragments = |c: &AnswerCall| -> Vec<String> {
            let mut cuts: Vec<usize> = c.splits.iter().map(|&s| s % (c.arguments.len() + 1)).collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut out = Vec::new();
            let mut at = 0;
            for cut in cuts.into_iter().chain([c.arguments.len()]) {
                if cut > at || out.is_empty() {
                    out.push(c.arguments[at..cut].to_owned());
                    at = cut;
                }
            }
            out
        };
        match self.dialect {
            Dialect::OpenAi => {
                for (k, c) in self.calls.iter().enumerate() {
                    let first = json!({"index": k, "id": self.written_id(k), "type": "function",
                        "function": {"name": c.name, "arguments": ""}});
                    events.push(self.chunk(json!({"tool_calls": [first]}), None));
                    for f in fragments(c) {
                        events.push(
                            self.chunk(json!({"tool_calls": [{"index": k, "function": {"arguments": f}}]}), None),
                        );
                    }
                }
                events.push(self.chunk(json!({}), Some("tool_calls")));
            }
            Dialect::Gemini { split, repeat_id, trailing_signature } => {
                for (k, c) in self.calls.iter().enumerate() {
                    let parts = if split { fragments(c) } else { vec![c.arguments.clone()] };
                    let mut first = json!({"type": "function", "function": {"name": c.name, "arguments": parts[0]}});
                    if let Some(id) = self.written_id(k) {
                        first["id"] = json!(id);
                    }
                    if let (0, Some(s), false) = (k, &self.signature, trailing_signature) {
                        first["extra_content"] = signature_value(s);
                    }
                    events.push(self.chunk(json!({"tool_calls": [first]}), None));
                    for part in &parts[1..] {
                        let mut more = json!({"function": {"arguments": part}});
                        if let (true, Some(id)) = (repeat_id, self.written_id(k).filter(|id| !id.is_empty())) {
                            more["id"] = json!(id);
                        }
                        events.push(self.chunk(json!({"tool_calls": [more]}), None));
                    }
                }
                if let (Some(s), true) = (&self.signature, trailing_signature) {
                    events.push(self.chunk(json!({"tool_calls": [{"extra_content": signature_value(s)}]}), None));
                }
                events.push(self.chunk(json!({}), Some("stop")));
            }
        }
        events
    }

    /// The same answer non-streamed: every call whole, the signature on the first call.
    pub fn completion_body(&self) -> String {
        let calls: Vec<Value> = self
            .calls
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let mut call = json!({"type": "function", "function": {"name": c.name, "arguments": c.arguments}});
                if let Some(id) = self.written_id(k) {
                    call["id"] = json!(id);
                }
                if let (0, Some(s)) = (k, &self.signature) {
                    call["extra_content"] = signature_value(s);
                }
                call
            })
            .collect();
        json!({"id": self.id, "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls},
                "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}})
        .to_string()
    }

    /// Checks what a client ended up with against this answer: every call, in order, with its
    /// name and arguments; its id where the answer gave a usable one (non-empty, not repeated),
    /// a non-empty one of its own otherwise, all distinct; the signature on the first call;
    /// `tool_calls` as the finish.
    pub fn check(&self, got: &ClientMessage) -> Result<(), String> {
        if got.finish_reason != "tool_calls" {
            return Err(format!("finish_reason {:?}", got.finish_reason));
        }
        if got.calls.len() != self.calls.len() {
            return Err(format!("{} calls, the answer made {}", got.calls.len(), self.calls.len()));
        }
        let mut seen: Vec<&str> = Vec::new();
        for (k, (want, have)) in self.calls.iter().zip(&got.calls).enumerate() {
            if (have.name.as_str(), have.arguments.as_str()) != (want.name.as_str(), want.arguments.as_str()) {
                return Err(format!("call {k}: {have:?}, the answer said {want:?}"));
            }
            let usable =
                self.written_id(k).filter(|id| !id.is_empty() && id.len() <= 256 && !seen.contains(&id.as_str()));
            if let Some(id) = usable {
                if have.id != id {
                    return Err(format!("call {k}: id {:?}, the answer said {id:?}", have.id));
                }
            }
            if have.id.is_empty() || seen.contains(&have.id.as_str()) {
                return Err(format!("call {k}: id {:?} empty or repeated", have.id));
            }
            seen.push(&have.id);
            let signature = have.extra_content.as_ref().and_then(|x| x["google"]["thought_signature"].as_str());
            let expected = if k == 0 { self.signature.as_deref() } else { None };
            if signature != expected {
                return Err(format!("call {k}: signature {signature:?}, the answer carried {expected:?}"));
            }
        }
        Ok(())
    }
}

/// What `ChatCompletionStream` builds from `bytes` (the SSE body the client received): calls by
/// `index` (a delta without one is an error, as the SDK's "invalid tool call index"), other
/// members assigned over, arguments concatenated, id and type set when non-empty; then the
/// finalisation's checks (a finish reason; every call with an id, a type, a name, arguments; no
/// hole in the indices).
pub fn accumulate_stream(bytes: &[u8]) -> Result<ClientMessage, String> {
    let mut framer = SseFramer::new();
    let mut events: Vec<Vec<u8>> = Vec::new();
    let mut collect = |e: &[u8]| {
        events.push(e.to_vec());
        Ok::<(), ()>(())
    };
    framer.push(bytes, false, &mut collect).map_err(|_| "framing")?;
    framer.push(&[], true, &mut collect).map_err(|_| "framing")?;
    #[derive(Default)]
    struct Slot {
        id: Option<String>,
        kind: Option<String>,
        name: Option<String>,
        arguments: Option<String>,
        extra_content: Option<Value>,
    }
    let mut slots: Vec<Option<Slot>> = Vec::new();
    let mut finish: Option<String> = None;
    for event in events {
        let Some(payload) = parse_event(&event).data else { continue };
        if payload == b"[DONE]" {
            continue;
        }
        strict_json(&String::from_utf8_lossy(&payload))?;
        let chunk: Value = serde_json::from_slice(&payload).map_err(|e| format!("not JSON: {e}"))?;
        if chunk.get("error").is_some() {
            return Err(format!("error event: {chunk}"));
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            if choice["index"].as_u64().unwrap_or(0) != 0 {
                continue;
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish = Some(reason.to_owned());
            }
            for d in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
                let index = d["index"].as_u64().ok_or_else(|| format!("invalid tool call index: {d}"))? as usize;
                if slots.len() <= index {
                    slots.resize_with(index + 1, || None);
                }
                let slot = slots[index].get_or_insert_with(Slot::default);
                if let Some(x) = d.get("extra_content") {
                    slot.extra_content = Some(x.clone());
                }
                if let Some(id) = d["id"].as_str().filter(|s| !s.is_empty()) {
                    slot.id = Some(id.to_owned());
                }
                if let Some(t) = d["type"].as_str().filter(|s| !s.is_empty()) {
                    slot.kind = Some(t.to_owned());
                }
                if let Some(f) = d.get("function").filter(|f| f.is_object()) {
                    slot.arguments.get_or_insert_with(String::new);
                    if let Some(n) = f["name"].as_str().filter(|s| !s.is_empty()) {
                        slot.name = Some(n.to_owned());
                    }
                    if let Some(a) = f["arguments"].as_str() {
                        slot.arguments.get_or_insert_with(String::new).push_str(a);
                    }
                }
            }
        }
    }
    let finish_reason = finish.ok_or("missing finish_reason")?;
    let mut calls = Vec::new();
    for (i, slot) in slots.into_iter().enumerate() {
        let slot = slot.ok_or_else(|| format!("no tool call at index {i}"))?;
        let missing = |what: &str| format!("missing tool_calls[{i}].{what}");
        calls.push(ClientCall {
            id: slot.id.ok_or_else(|| missing("id"))?,
            name: slot.name.ok_or_else(|| missing("function.name"))?,
            arguments: slot.arguments.ok_or_else(|| missing("function.arguments"))?,
            extra_content: slot.extra_content,
        });
        slot.kind.ok_or_else(|| missing("type"))?;
    }
    Ok(ClientMessage { calls, finish_reason })
}

/// The calls of a non-streamed completion, with the same checks.
pub fn completion_calls(body: &[u8]) -> Result<ClientMessage, String> {
    strict_json(&String::from_utf8_lossy(body))?;
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let choice = &v["choices"][0];
    let mut calls = Vec::new();
    for (i, c) in choice["message"]["tool_calls"].as_array().into_iter().flatten().enumerate() {
        let text = |p: &str| c.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let missing = |what: &str| format!("missing tool_calls[{i}].{what}: {c}");
        text("/type").ok_or_else(|| missing("type"))?;
        calls.push(ClientCall {
            id: text("/id").ok_or_else(|| missing("id"))?,
            name: text("/function/name").ok_or_else(|| missing("function.name"))?,
            arguments: c
                .pointer("/function/arguments")
                .and_then(Value::as_str)
                .ok_or_else(|| missing("arguments"))?
                .into(),
            extra_content: c.get("extra_content").cloned(),
        });
    }
    let finish_reason = choice["finish_reason"].as_str().ok_or("missing finish_reason")?.to_owned();
    Ok(ClientMessage { calls, finish_reason })
}

/// JSON without a repeated key in any object (which `serde_json::Value` would read silently,
/// keeping the last, while other parsers keep the first).
pub fn strict_json(text: &str) -> Result<(), String> {
    let text = text.trim();
    if text.starts_with('{') {
        for (_, v) in members(text).map_err(|e| format!("{e}: {text}"))? {
            strict_json(v.get())?;
        }
    } else if text.starts_with('[') {
        for v in elements(text).map_err(|e| format!("{e}: {text}"))? {
            strict_json(v.get())?;
        }
    }
    Ok(())
}
