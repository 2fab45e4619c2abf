//! A request's tool history made acceptable to the target it is about to be sent to.
//!
//! A failover in the middle of a tool loop sends history one provider wrote to another, whose
//! rules differ (reference §3): OpenAI refuses ids over 40 characters, Anthropic ids outside
//! `^[a-zA-Z0-9_-]+$` (and empty or repeated ones), Gemini 3 a tool step whose first call comes
//! back without its thought signature; all three refuse a result without its call and a call
//! without its result. The history is read once, when the request is ([`ToolHistory::read`]:
//! a broken pairing is the request's own error, a 400 naming the message); before each attempt
//! [`ToolHistory::edits`] says what to change for that target, and the request's one rewrite
//! applies it ([`crate::request::ChatRequest::rewrite_for`]):
//!
//! - an id is rewritten only where the target's rule requires it, the same way every time, with
//!   one map for `tool_calls[].id` and `tool_call_id` (so pairs stay paired): at most 20 safe
//!   characters of the original, `_`, and 16 hex digits of a hash of it and its step, never
//!   colliding with another id of the request; nothing else (a signature least of all) goes
//!   into an id;
//! - `extra_content` (Gemini's) is dropped from calls for OpenAI and Anthropic targets;
//! - for Gemini 3, the first call of each tool step carries a signature: the one the client
//!   sent back, else the one the gateway relayed for that call (the caller's signature memory,
//!   through the lookup the shell gives), else the documented placeholder;
//! - parallel calls of one step stay in their one message; nothing else is touched.
//!
//! Bounds: the body is already bounded (`MAX_BODY_BYTES`); reading is linear in it (ids are
//! looked up in hash maps), an id of any length is hashed into a replacement of at most 37
//! characters, a signature the client sent is passed on as it came, and one from the memory is
//! used only up to [`MAX_SIGNATURE_BYTES`] (else the placeholder). Nothing here panics on any
//! input: what does not parse is a 400.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use serde_json::value::RawValue;

use super::memory::MAX_SIGNATURE_BYTES;
use super::{extra_content_with, signature_in, ToolFamily, SIGNATURE_PLACEHOLDER};
use crate::digest::{hex, sha256_of};
use crate::error::{ErrorKind, GatewayError};
use crate::json::edit::{elements, member, members, quoted, span_in, ContainerEdit, Edits};

/// OpenAI's longest tool call id, in characters.
pub const OPENAI_MAX_ID_CHARS: usize = 40;

/// The tool steps and results of a request, with where each sits in its body.
#[derive(Debug)]
pub struct ToolHistory<'a> {
    steps: Vec<Step<'a>>,
    results: Vec<ToolResult>,
    /// Messages with an `extra_content` of their own, and where it is among their members.
    message_extras: Vec<(ContainerEdit, usize)>,
}

/// An assistant message with tool calls.
#[derive(Debug)]
struct Step<'a> {
    message: usize,
    calls: Vec<HistoryCall<'a>>,
}

#[derive(Debug)]
struct HistoryCall<'a> {
    id: Cow<'a, str>,
    edit: ContainerEdit,
    id_pos: usize,
    extra_pos: Option<usize>,
    /// The client sent a signature back on this call.
    signed: bool,
}

/// A `tool` message: where its `tool_call_id` is, and which call it answers.
#[derive(Debug)]
struct ToolResult {
    span: Range<usize>,
    step: usize,
    call: usize,
}

fn bad(message: String) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidRequest, message)
}

/// An id as an error message shows it: at most 64 characters.
fn shown(id: &str) -> String {
    let mut s: String = id.chars().take(64).collect();
    if s.len() < id.len() {
        s.push('…');
    }
    s
}

fn string(v: &RawValue) -> Option<Cow<'_, str>> {
    match crate::json::from_str::<&str>(v.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => crate::json::from_str::<String>(v.get()).ok().map(Cow::Owned),
    }
}

/// The step whose results are being read: which of its calls have been answered. It joins the
/// history when its run of results ends.
struct Open<'a> {
    step: Step<'a>,
    by_id: HashMap<Cow<'a, str>, usize>,
    answered: Vec<bool>,
}

impl<'a> ToolHistory<'a> {
    /// Reads the tool history of `messages` (a slice of `body`); `None` when it has none. A
    /// result that answers no call of the assistant message right before its run of `tool`
    /// messages, a call left without a result, two calls of one step with one id, or a call or
    /// result without a string id is a 400 naming the message: every provider refuses such a
    /// history, so no attempt is spent on it.
    pub fn read(body: &'a [u8], messages: &'a RawValue) -> Result<Option<Self>, GatewayError> {
        let list = elements(messages.get()).map_err(|_| bad("`messages` must be an array.".into()))?;
        let mut history = ToolHistory { steps: Vec::new(), results: Vec::new(), message_extras: Vec::new() };
        let mut open: Option<Open<'a>> = None;
        for (i, message) in list.into_iter().enumerate() {
            if !message.get().starts_with('{') {
                history.close(&mut open)?;
                continue;
            }
            let fields = members(message.get()).map_err(|e| bad(format!("`messages[{i}]`: {e}.")))?;
            if let Some((pos, _)) = member(&fields, "extra_content") {
                if let Some(edit) = ContainerEdit::object(body, message, &fields) {
                    history.message_extras.push((edit, pos));
                }
            }
            let role = member(&fields, "role").and_then(|(_, v)| string(v));
            if role.as_deref() == Some("tool") {
                let (id, raw) = member(&fields, "tool_call_id")
                    .and_then(|(_, v)| Some((string(v)?, v)))
                    .ok_or_else(|| bad(format!("`messages[{i}].tool_call_id` must be a string.")))?;
                let Some(o) = open.as_mut() else {
                    return Err(bad(format!(
                        "`messages[{i}]` is a result for the tool call `{}`, but no assistant message with tool calls \
                         comes right before it: every tool result must follow the message whose call it answers.",
                        shown(&id)
                    )));
                };
                let Some(&call) = o.by_id.get(id.as_ref()) else {
                    return Err(bad(format!(
                        "`messages[{i}]` is a result for the tool call `{}`, which `messages[{}]` did not make.",
                        shown(&id),
                        o.step.message
                    )));
                };
                if std::mem::replace(&mut o.answered[call], true) {
                    return Err(bad(format!("`messages[{i}]` answers the tool call `{}` a second time.", shown(&id))));
                }
                let span =
                    span_in(body, raw.get()).ok_or_else(|| bad(format!("`messages[{i}]` could not be read.")))?;
                history.results.push(ToolResult { span, step: history.steps.len(), call });
                continue;
            }
            history.close(&mut open)?;
            let calls = match member(&fields, "tool_calls").filter(|_| role.as_deref() == Some("assistant")) {
                Some((_, v)) if v.get() != "null" => calls_of(body, i, v)?,
                _ => continue,
            };
            if calls.is_empty() {
                continue;
            }
            let mut by_id = HashMap::with_capacity(calls.len());
            for (k, c) in calls.iter().enumerate() {
                if by_id.insert(c.id.clone(), k).is_some() {
                    return Err(bad(format!(
                        "`messages[{i}].tool_calls` has two calls with the id `{}`: their results could not be told apart.",
                        shown(&c.id)
                    )));
                }
            }
            let answered = vec![false; calls.len()];
            open = Some(Open { step: Step { message: i, calls }, by_id, answered });
        }
        history.close(&mut open)?;
        let any = !history.steps.is_empty() || !history.message_extras.is_empty();
        Ok(any.then_some(history))
    }

    /// Ends the run of results of the open step: a call left unanswered is the request's error.
    fn close(&mut self, open: &mut Option<Open<'a>>) -> Result<(), GatewayError> {
        let Some(o) = open.take() else { return Ok(()) };
        if let Some(k) = o.answered.iter().position(|a| !a) {
            return Err(bad(format!(
                "`messages[{}]` makes the tool call `{}`, which has no result: every tool call must be answered by \
                 a `tool` message right after it (OpenAI, Anthropic and Gemini all refuse a call without its result).",
                o.step.message,
                shown(o.step.calls.get(k).map_or("", |c| c.id.as_ref()))
            )));
        }
        self.steps.push(o.step);
        Ok(())
    }

    /// The ids of the first calls of steps that came back without a signature: what to look up
    /// in the caller's signature memory before rewriting for a Gemini 3 target.
    pub fn unsigned_first_calls(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|s| s.calls.first()).filter(|c| !c.signed).map(|c| c.id.as_ref())
    }

    /// What to change in `body` for a target of `family`. `signature_of` is the caller's
    /// signature memory: the signature the gateway relayed for a call id, if it knows one.
    pub fn edits(
        &self,
        body: &[u8],
        family: ToolFamily,
        signature_of: &dyn Fn(&str) -> Option<String>,
        edits: &mut Edits,
    ) {
        let ids = self.rewritten_ids(family);
        for (s, step) in self.steps.iter().enumerate() {
            for (k, call) in step.calls.iter().enumerate() {
                let mut e = call.edit.clone();
                if let Some(id) = &ids[s][k] {
                    e.replace(call.id_pos, quoted(id));
                }
                match family {
                    ToolFamily::OpenAi | ToolFamily::Anthropic => {
                        if let Some(pos) = call.extra_pos {
                            e.remove(pos);
                        }
                    }
                    ToolFamily::Gemini => {}
                    ToolFamily::Gemini3 if k == 0 && !call.signed => {
                        let known = signature_of(&call.id).filter(|s| !s.is_empty() && s.len() <= MAX_SIGNATURE_BYTES);
                        let signature = known.as_deref().unwrap_or(SIGNATURE_PLACEHOLDER);
                        e.set_back(call.extra_pos, "extra_content", extra_content_with(signature));
                    }
                    ToolFamily::Gemini3 => {}
                }
                if !e.is_unchanged() {
                    e.emit(body, edits);
                }
            }
        }
        for result in &self.results {
            if let Some(id) = ids.get(result.step).and_then(|s| s.get(result.call)).and_then(Option::as_ref) {
                edits.replace(result.span.clone(), quoted(id));
            }
        }
        if !family.is_gemini() {
            for (edit, pos) in &self.message_extras {
                let mut e = edit.clone();
                e.remove(*pos);
                e.emit(body, edits);
            }
        }
    }

    /// Per step and call, the id to send instead of the original, where `family` requires one.
    fn rewritten_ids(&self, family: ToolFamily) -> Vec<Vec<Option<String>>> {
        let mut out: Vec<Vec<Option<String>>> = self.steps.iter().map(|s| vec![None; s.calls.len()]).collect();
        if family.is_gemini() {
            return out;
        }
        let originals: HashSet<&str> = self.steps.iter().flat_map(|s| &s.calls).map(|c| c.id.as_ref()).collect();
        let mut assigned: HashSet<String> = HashSet::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for (s, step) in self.steps.iter().enumerate() {
            for (k, call) in step.calls.iter().enumerate() {
                let id = call.id.as_ref();
                let repeated = !seen.insert(id);
                let needed = match family {
                    ToolFamily::OpenAi => id.is_empty() || id.chars().count() > OPENAI_MAX_ID_CHARS,
                    ToolFamily::Anthropic => id.is_empty() || repeated || !id.bytes().all(anthropic_id_byte),
                    ToolFamily::Gemini | ToolFamily::Gemini3 => false,
                };
                if needed {
                    let new = replacement_id(id, s, |c| originals.contains(c) || assigned.contains(c));
                    assigned.insert(new.clone());
                    out[s][k] = Some(new);
                }
            }
        }
        out
    }
}

/// The calls of `messages[i].tool_calls` (the value `v`).
fn calls_of<'a>(body: &'a [u8], i: usize, v: &'a RawValue) -> Result<Vec<HistoryCall<'a>>, GatewayError> {
    let entries = elements(v.get()).map_err(|_| bad(format!("`messages[{i}].tool_calls` must be an array.")))?;
    let mut calls = Vec::with_capacity(entries.len());
    for (j, entry) in entries.into_iter().enumerate() {
        let not_an_object = || bad(format!("`messages[{i}].tool_calls[{j}]` must be an object."));
        if !entry.get().starts_with('{') {
            return Err(not_an_object());
        }
        let fields = members(entry.get()).map_err(|e| bad(format!("`messages[{i}].tool_calls[{j}]`: {e}.")))?;
        let (id_pos, id) = member(&fields, "id")
            .and_then(|(pos, v)| Some((pos, string(v)?)))
            .ok_or_else(|| bad(format!("`messages[{i}].tool_calls[{j}].id` must be a string.")))?;
        let extra = member(&fields, "extra_content");
        let signed = extra.is_some_and(|(_, x)| signature_in(x).is_some());
        let edit = ContainerEdit::object(body, entry, &fields).ok_or_else(not_an_object)?;
        calls.push(HistoryCall { id, edit, id_pos, extra_pos: extra.map(|(p, _)| p), signed });
    }
    Ok(calls)
}

pub(crate) fn anthropic_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// A replacement for `id` (of step `step`) that every provider accepts: up to 20 of its
/// characters made safe, `_`, 16 hex digits of a hash; the next salt while `taken` says so.
fn replacement_id(id: &str, step: usize, taken: impl Fn(&str) -> bool) -> String {
    let safe: String =
        id.chars().take(20).map(|c| if c.is_ascii() && anthropic_id_byte(c as u8) { c } else { '_' }).collect();
    let prefix = if safe.is_empty() { "call" } else { safe.as_str() };
    let mut salt = 0u64;
    loop {
        let h = sha256_of(&[id.as_bytes(), &(step as u64).to_be_bytes(), &salt.to_be_bytes()]);
        let candidate = format!("{prefix}_{}", &hex(&h)[..16]);
        if !taken(&candidate) {
            return candidate;
        }
        salt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_ids_avoid_every_id_of_the_request() {
        let first = replacement_id("a.b", 0, |_| false);
        let second = replacement_id("a.b", 0, |c| c == first);
        assert_ne!(first, second);
        assert!(second.starts_with("a_b_") && second.len() <= OPENAI_MAX_ID_CHARS);
        let wide = replacement_id(&"é".repeat(5000), 3, |_| false);
        assert!(wide.len() <= 37 && wide.bytes().all(anthropic_id_byte), "{wide}");
    }
}
