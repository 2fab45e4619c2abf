//! Answers made right for OpenAI clients, streamed and not, whichever provider wrote them.
//!
//! The OpenAI Node SDK's `ChatCompletionStream` (behind `.stream()` and `runTools`) accumulates
//! tool calls by `index`: an index-less call throws or is lost, parallel calls under one index
//! get their arguments glued (`{…}{…}`), a call whose id never arrives non-empty throws when the
//! message is finalised. Gemini streams exactly that (reference §1). So every answer is made to
//! say, for each tool call:
//!
//! - a distinct `index` per call of a message, dense from 0 in the order calls start: by the
//!   upstream `index` when there is one; else a delta with a name starts a call, one with only
//!   an id continues the call that has it, and one with neither continues the call in progress;
//! - a non-empty id unique in its message: the upstream's when it has one, else one derived
//!   deterministically from the answer's id, the choice, the call's position and the upstream id
//!   (`call_` and 24 hex digits), so the streamed and the whole form of an answer agree;
//! - `type: "function"` on its first delta when the upstream left it out or empty;
//! - a trailing delta that carries only `extra_content` lands on the first call of the message;
//! - `finish_reason: "tool_calls"` where the upstream said `"stop"` after making calls (a
//!   `"length"` or `"content_filter"` is kept: it tells the client the calls may be cut).
//!
//! An event or body that is already right passes byte for byte; one that is not gets only the
//! spans that change rewritten ([`crate::json::edit`]). Nothing is buffered: each event is
//! decided when it is complete. Both forms also report the thought signatures the answer
//! carried, by the call id the client sees ([`IssuedSignature`]), for the signature memory.
//!
//! Bounds: at most [`MAX_CALLS`] calls per answer and [`MAX_CHOICES`] choices are tracked, and
//! an upstream id over [`MAX_UPSTREAM_ID_BYTES`] is replaced like a missing one; an event past a
//! bound, or one that is not the chunk shape, passes as it came.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::memory::MAX_SIGNATURE_BYTES;
use super::{contains_token, signature_in};
use crate::digest::{hex, sha256_of};
use crate::json::edit::{elements, member, members, quoted, span_in, ContainerEdit, Edits};

/// Calls tracked per answer (all choices); beyond, events pass as they came.
pub const MAX_CALLS: usize = 512;
/// Choices tracked per answer.
pub const MAX_CHOICES: usize = 128;
/// The longest upstream id kept as the client's id (a longer one is replaced: it would only be
/// rewritten again for the next target, and the state per call stays small).
pub const MAX_UPSTREAM_ID_BYTES: usize = 256;

/// A thought signature an answer carried, by the id its call has for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSignature {
    pub call_id: String,
    pub signature: String,
}

/// One tool call as the client sees it.
#[derive(Debug)]
struct Call {
    upstream_index: Option<u64>,
    upstream_id: Option<[u8; 32]>,
    client_id: String,
}

/// The tool calls of one choice (one assistant message).
#[derive(Debug, Default)]
struct Choice {
    index: u64,
    calls: Vec<Call>,
    /// The call the last delta went to: an index-less delta without id or name continues it.
    current: Option<usize>,
    /// An `extra_content`-only delta that came before any call: it goes onto the first.
    stashed: Option<String>,
}

fn digest(text: &str) -> [u8; 32] {
    sha256_of(&[text.as_bytes()])
}

impl Choice {
    fn new(index: u64) -> Self {
        Choice { index, ..Choice::default() }
    }

    /// Starts a call; returns its position (its client `index`).
    fn start(&mut self, answer_id: &str, upstream_index: Option<u64>, upstream_id: &str) -> usize {
        let usable = !upstream_id.is_empty() && upstream_id.len() <= MAX_UPSTREAM_ID_BYTES && !self.taken(upstream_id);
        let client_id = if usable { upstream_id.to_owned() } else { self.derived_id(answer_id, upstream_id) };
        self.calls.push(Call {
            upstream_index,
            upstream_id: (!upstream_id.is_empty()).then(|| digest(upstream_id)),
            client_id,
        });
        self.calls.len() - 1
    }

    fn taken(&self, id: &str) -> bool {
        self.calls.iter().any(|c| c.client_id == id)
    }

    /// An id for the call about to start: the same for the same answer however it arrives.
    fn derived_id(&self, answer_id: &str, upstream_id: &str) -> String {
        let position = (self.calls.len() as u64).to_be_bytes();
        let mut salt = 0u64;
        loop {
            let h = sha256_of(&[
                answer_id.as_bytes(),
                &self.index.to_be_bytes(),
                &position,
                upstream_id.as_bytes(),
                &salt.to_be_bytes(),
            ]);
            let id = format!("call_{}", &hex(&h)[..24]);
            if !self.taken(&id) {
                return id;
            }
            salt += 1;
        }
    }

    /// Which call an index-carrying or index-less delta belongs to; `None` for a new call.
    fn owner(&self, v: &CallView<'_>) -> Option<usize> {
        let id = v.id.as_deref().filter(|id| !id.is_empty()).map(digest);
        if let Some(i) = v.index {
            // The latest call under that upstream index, unless the delta names another id:
            // then the upstream reused the index for a new call.
            let at = self.calls.iter().rposition(|c| c.upstream_index == Some(i))?;
            let same = id.is_none() || self.calls[at].upstream_id.is_none() || self.calls[at].upstream_id == id;
            return same.then_some(at);
        }
        if v.name.is_some() {
            // A name starts a call (OpenAI sends it on a call's first delta only; Gemini sends
            // each call whole), even under an id seen before: that is a repeated id.
            return None;
        }
        match id {
            // Index-less and nameless: an id continues the latest call that has it.
            Some(id) => self.calls.iter().rposition(|c| c.upstream_id == Some(id)),
            None => self.current,
        }
    }
}

/// One tool-call entry (a delta or a whole call), read without copying its arguments.
struct CallView<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
    index: Option<u64>,
    id: Option<Cow<'a, str>>,
    /// A non-empty string `type`.
    typed: bool,
    /// A non-empty `function.name`.
    name: Option<Cow<'a, str>>,
    has_arguments: bool,
    extra: Option<&'a RawValue>,
}

impl<'a> CallView<'a> {
    fn read(raw: &'a RawValue) -> Option<CallView<'a>> {
        let fields = members(raw.get()).ok()?;
        let value = |key: &str| member(&fields, key).map(|(_, v)| v).filter(|v| v.get() != "null");
        let index = value("index").and_then(|v| crate::json::from_str::<u64>(v.get()).ok());
        let id = value("id").and_then(string);
        let typed = value("type").and_then(string).is_some_and(|t| !t.is_empty());
        let (mut name, mut has_arguments) = (None, false);
        if let Some(function) = value("function").and_then(|f| members(f.get()).ok()) {
            name = member(&function, "name").and_then(|(_, v)| string(v)).filter(|n| !n.is_empty());
            has_arguments = member(&function, "arguments").is_some_and(|(_, v)| !matches!(v.get(), "\"\"" | "null"));
        }
        let extra = value("extra_content");
        Some(CallView { index, id, typed, name, has_arguments, extra, members: fields })
    }

    fn pos(&self, key: &str) -> Option<usize> {
        member(&self.members, key).map(|(i, _)| i)
    }

    /// Only `extra_content` (Gemini's trailing signature delta): no id, no name, no arguments.
    fn extra_only(&self) -> bool {
        self.extra.is_some()
            && self.id.as_deref().is_none_or(str::is_empty)
            && self.name.is_none()
            && !self.has_arguments
    }
}

/// A JSON string's value, borrowed unless it has escapes.
fn string(v: &RawValue) -> Option<Cow<'_, str>> {
    match crate::json::from_str::<&str>(v.get()) {
        Ok(s) => Some(Cow::Borrowed(s)),
        Err(_) => crate::json::from_str::<String>(v.get()).ok().map(Cow::Owned),
    }
}

/// Keeps `signature` for `call_id` (a later one replaces an earlier, as a client's
/// accumulator does), if it fits the memory's bound.
fn keep_signature(signatures: &mut Vec<IssuedSignature>, call_id: &str, extra: &RawValue) {
    let Some(signature) = signature_in(extra).filter(|s| s.len() <= MAX_SIGNATURE_BYTES) else { return };
    match signatures.iter_mut().find(|s| s.call_id == call_id) {
        Some(known) => known.signature = signature.into_owned(),
        None => signatures.push(IssuedSignature { call_id: call_id.to_owned(), signature: signature.into_owned() }),
    }
}

/// The parts of one choice an event or body has, read before anything is decided (so a
/// malformed event changes nothing, not even the normaliser's state).
struct ChoiceView<'a> {
    index: u64,
    tool_calls: Option<ToolCallsView<'a>>,
    finish_reason: Option<(&'a RawValue, std::ops::Range<usize>)>,
}

/// A choice's `tool_calls`, and the edits that can be made to it.
struct ToolCallsView<'a> {
    /// The object holding `tool_calls` (the delta, or the message), and where it is in it.
    holder: ContainerEdit,
    at: usize,
    array: ContainerEdit,
    calls: Vec<CallView<'a>>,
    /// One per call.
    edits: Vec<ContainerEdit>,
}

/// Reads the choices of a chunk (`holder` = `delta`) or a completion (`message`).
fn read_choices<'a>(whole: &'a [u8], holder: &str) -> Option<(Cow<'a, str>, Vec<ChoiceView<'a>>)> {
    let text = std::str::from_utf8(whole).ok()?;
    let top = members(text).ok()?;
    let answer_id = member(&top, "id").and_then(|(_, v)| string(v)).unwrap_or_default();
    let Some((_, choices)) = member(&top, "choices").filter(|(_, v)| v.get() != "null") else {
        return Some((answer_id, Vec::new()));
    };
    let mut views = Vec::new();
    for (pos, choice) in elements(choices.get()).ok()?.into_iter().enumerate() {
        let fields = members(choice.get()).ok()?;
        let index = member(&fields, "index").and_then(|(_, v)| crate::json::from_str(v.get()).ok());
        let finish_reason = match member(&fields, "finish_reason") {
            Some((_, v)) => Some((v, span_in(whole, v.get())?)),
            None => None,
        };
        let mut view = ChoiceView { index: index.unwrap_or(pos as u64), tool_calls: None, finish_reason };
        if let Some((_, held)) = member(&fields, holder).filter(|(_, v)| v.get().starts_with('{')) {
            let held_members = members(held.get()).ok()?;
            if let Some((at, list)) = member(&held_members, "tool_calls").filter(|(_, v)| v.get() != "null") {
                let entries = elements(list.get()).ok()?;
                let calls: Vec<CallView> = entries.iter().map(|c| CallView::read(c)).collect::<Option<_>>()?;
                let edits = entries
                    .iter()
                    .zip(&calls)
                    .map(|(raw, c)| ContainerEdit::object(whole, raw, &c.members))
                    .collect::<Option<_>>()?;
                view.tool_calls = Some(ToolCallsView {
                    holder: ContainerEdit::object(whole, held, &held_members)?,
                    at,
                    array: ContainerEdit::array(whole, list, &entries)?,
                    calls,
                    edits,
                });
            }
        }
        views.push(view);
    }
    Some((answer_id, views))
}

/// Adds the edits of one choice's `finish_reason`: `"stop"` after calls becomes `"tool_calls"`.
fn finish_edit(view: &ChoiceView<'_>, made_calls: bool, edits: &mut Edits) {
    if let Some((raw, span)) = &view.finish_reason {
        if made_calls && raw.get() == "\"stop\"" {
            edits.replace(span.clone(), "\"tool_calls\"");
        }
    }
}

/// The tool calls of a streamed answer, made right event by event (see the module's note).
#[derive(Debug, Default)]
pub struct StreamCalls {
    choices: Vec<Choice>,
    calls: usize,
    signatures: Vec<IssuedSignature>,
}

impl StreamCalls {
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer made at least one tool call (so a `"stop"` is to be read).
    pub fn made_calls(&self) -> bool {
        self.calls > 0
    }

    /// The signatures the stream carried so far, by the call id the client saw.
    pub fn signatures(&self) -> &[IssuedSignature] {
        &self.signatures
    }

    /// One complete event's data (a `chat.completion.chunk`): the data to forward instead, or
    /// `None` to forward it as it came.
    pub fn event(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let (answer_id, views) = read_choices(payload, "delta")?;
        let entries: usize = views.iter().filter_map(|v| v.tool_calls.as_ref()).map(|t| t.calls.len()).sum();
        let new_choices = views.iter().filter(|v| !self.choices.iter().any(|c| c.index == v.index)).count();
        if self.calls + entries > MAX_CALLS || self.choices.len() + new_choices > MAX_CHOICES {
            return None;
        }
        let mut edits = Edits::new();
        for mut view in views {
            let at = match self.choices.iter().position(|c| c.index == view.index) {
                Some(at) => at,
                None => {
                    self.choices.push(Choice::new(view.index));
                    self.choices.len() - 1
                }
            };
            let choice = &mut self.choices[at];
            let before = choice.calls.len();
            if let Some(mut t) = view.tool_calls.take() {
                let mut dropped = 0;
                for (k, v) in t.calls.iter().enumerate() {
                    if !delta(choice, &answer_id, v, &mut t.edits[k], &mut self.signatures) {
                        t.array.remove(k);
                        dropped += 1;
                    }
                }
                if dropped > 0 && dropped == t.calls.len() {
                    // Nothing is left of the list: the delta loses its `tool_calls`.
                    t.holder.remove(t.at);
                    t.holder.emit(payload, &mut edits);
                } else {
                    t.array.emit(payload, &mut edits);
                    t.edits.iter().for_each(|e| e.emit(payload, &mut edits));
                }
            }
            self.calls += choice.calls.len() - before;
            finish_edit(&view, !choice.calls.is_empty(), &mut edits);
        }
        (!edits.is_empty()).then(|| edits.apply(payload))
    }
}

/// Decides one tool-call delta of `choice`; `false` when it is to be dropped from the event
/// (an `extra_content`-only delta before any call: kept for the first call).
fn delta(
    choice: &mut Choice,
    answer_id: &str,
    v: &CallView<'_>,
    e: &mut ContainerEdit,
    signatures: &mut Vec<IssuedSignature>,
) -> bool {
    if v.index.is_none() && v.extra_only() {
        // Gemini puts the signature of a step on its first call only (a parallel step's other
        // calls carry none), and streams it either on that call or on a trailing delta with
        // nothing else: that delta belongs to the first call, where Gemini reads it back.
        let Some(first) = choice.calls.first() else {
            choice.stashed = v.extra.map(|x| x.get().to_owned());
            return false;
        };
        if let Some(extra) = v.extra {
            keep_signature(signatures, &first.client_id, extra);
        }
        e.set_front(v.pos("index"), "index", "0");
        // Clients that validate each delta (the AI SDK's openai-compatible provider) require a
        // `function` object on every tool-call delta; an empty one changes no call.
        e.set_back(v.pos("function"), "function", "{}");
        return true;
    }
    let (at, new) = match choice.owner(v) {
        Some(at) => (at, false),
        None => {
            let at = choice.start(answer_id, v.index, v.id.as_deref().unwrap_or(""));
            (at, true)
        }
    };
    choice.current = Some(at);
    if v.index != Some(at as u64) {
        e.set_front(v.pos("index"), "index", at.to_string());
    }
    let client_id = choice.calls[at].client_id.clone();
    if new {
        if v.id.as_deref() != Some(client_id.as_str()) {
            e.set_front(v.pos("id"), "id", quoted(&client_id));
        }
        if !v.typed {
            e.set_front(v.pos("type"), "type", "\"function\"");
        }
        if let (Some(stashed), None) = (choice.stashed.take(), v.extra) {
            if let Ok(raw) = serde_json::from_str::<&RawValue>(&stashed) {
                keep_signature(signatures, &client_id, raw);
            }
            e.set_back(v.pos("extra_content"), "extra_content", stashed);
        }
    } else if let (Some(pos), Some(id)) = (v.pos("id"), v.id.as_deref()) {
        // A repeated id the client would take over the one it has.
        if !id.is_empty() && id != client_id {
            e.replace(pos, quoted(&client_id));
        }
    }
    if let Some(extra) = v.extra {
        keep_signature(signatures, &client_id, extra);
    }
    true
}

/// A non-streamed answer made right, and the signatures it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalisedCompletion<'a> {
    /// The body to send: borrowed, byte for byte, when nothing needed fixing.
    pub body: Cow<'a, [u8]>,
    pub signatures: Vec<IssuedSignature>,
}

/// A whole `chat.completion` body made right the same way as its streamed form (see the
/// module's note). A body without `"tool_calls"` is not parsed at all; one that is not the
/// completion shape is returned as it came.
pub fn normalise_completion(body: &[u8]) -> NormalisedCompletion<'_> {
    let unchanged = |signatures| NormalisedCompletion { body: Cow::Borrowed(body), signatures };
    if !contains_token(body, b"\"tool_calls\"") {
        return unchanged(Vec::new());
    }
    let Some((answer_id, views)) = read_choices(body, "message") else { return unchanged(Vec::new()) };
    let mut edits = Edits::new();
    let mut signatures = Vec::new();
    for mut view in views {
        let mut choice = Choice::new(view.index);
        if let Some(ToolCallsView { mut array, calls, edits: mut call_edits, .. }) = view.tool_calls.take() {
            // `extra_content`-only entries (before the first call, and after it) go onto the
            // first call, as in the stream: a later one replaces an earlier one.
            let (mut first, mut leading, mut trailing) = (None, None, None);
            let mut others = Vec::new();
            for (k, v) in calls.iter().enumerate() {
                if v.extra_only() {
                    *(if first.is_none() { &mut leading } else { &mut trailing }) = v.extra;
                    array.remove(k);
                    continue;
                }
                let at = choice.start(&answer_id, None, v.id.as_deref().unwrap_or(""));
                let client_id = choice.calls[at].client_id.clone();
                let e = &mut call_edits[k];
                if v.id.as_deref() != Some(client_id.as_str()) {
                    e.set_front(v.pos("id"), "id", quoted(&client_id));
                }
                if !v.typed {
                    e.set_front(v.pos("type"), "type", "\"function\"");
                }
                if first.is_none() {
                    first = Some(k);
                } else if let Some(extra) = v.extra {
                    keep_signature(&mut others, &client_id, extra);
                }
            }
            if let (Some(k), Some(call)) = (first, choice.calls.first()) {
                // In the stream's order: a leading entry, then the call's own, then a trailing
                // one; the last there is wins.
                let own = calls[k].extra;
                if let Some(chosen) = trailing.or(own).or(leading) {
                    if own.is_none_or(|own| !std::ptr::eq(own, chosen)) {
                        call_edits[k].set_back(calls[k].pos("extra_content"), "extra_content", chosen.get());
                    }
                    keep_signature(&mut signatures, &call.client_id, chosen);
                }
            }
            signatures.extend(others);
            array.emit(body, &mut edits);
            call_edits.iter().for_each(|e| e.emit(body, &mut edits));
        }
        finish_edit(&view, !choice.calls.is_empty(), &mut edits);
    }
    if edits.is_empty() {
        return unchanged(signatures);
    }
    NormalisedCompletion { body: Cow::Owned(edits.apply(body)), signatures }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
