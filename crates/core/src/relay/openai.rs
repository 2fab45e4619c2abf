//! The SSE relay: passes a streamed answer on event by event, byte for byte, while watching it.
//!
//! Upstream chunks are cut wherever the network cut them; the relay forwards only *complete*
//! events (the bytes exactly as received, framing included), so it can tell, for each one,
//! whether it carried content, usage, `[DONE]`, an error, or something that is not JSON at all.
//! That is what lets the gateway end a broken stream with an explicit error event instead of a
//! clean-looking end (the bug peers ship: Portkey #1797, LiteLLM #40404), and know the final usage.
//!
//! Two kinds of event are rewritten, and only those: the final usage event gets `usage.cost`,
//! and an event with tool calls (or the finish of an answer that made some) is made right for
//! OpenAI clients whichever provider wrote it ([`crate::tools::answer`]). Every other event
//! costs the one probe it always did.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Observer, StreamFault, MAX_EVENT_BYTES};
use crate::aig::answer::{upstream_message, ChoiceProbe, Usage};
use crate::error::GatewayError;
use crate::money::pricing::{Tokens, Usd};
use crate::money::stamp::stamp_usage_cost;
use crate::relay::answer::StreamAnswer;
use crate::relay::sse::{lines, next_line, parse_event, single_data_span};
use crate::tools::{IssuedSignature, StreamCalls};

/// What the request will have been charged if the stream ends with this usage, from the model
/// the stream's chunks name (if any): written into the usage event as `usage.cost`
/// (`account::stamp`).
pub type ChargeOf = Box<dyn Fn(&Usage, Option<&str>) -> Usd>;

/// What the relay learned from the events so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamSummary {
    /// At least one event carried content (text, a tool call or a refusal): the commit point.
    pub saw_content: bool,
    /// `data: [DONE]` arrived.
    pub done: bool,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub events: u32,
}

/// Incremental, event-granular SSE relay.
#[derive(Default)]
pub struct SseRelay {
    buf: Vec<u8>,
    /// Start of the event being assembled, in `buf`.
    event_start: usize,
    /// Where line scanning resumes, in `buf`.
    scan: usize,
    summary: StreamSummary,
    /// When set, usage events get `usage.cost`: what this prices the usage at.
    charge: Option<ChargeOf>,
    /// The answer's tool calls as the client sees them.
    tools: StreamCalls,
    /// The answer's model, and (JSON mode) its content: `answer.rs`.
    answer: StreamAnswer,
}

impl std::fmt::Debug for SseRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseRelay").field("buffered", &self.buf.len()).field("summary", &self.summary).finish()
    }
}

#[derive(Deserialize)]
struct ChunkProbe<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<ChoiceProbe<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

impl SseRelay {
    pub fn new() -> Self {
        Self::default()
    }

    /// A relay that writes what the request was charged into the usage event (`usage.cost`).
    pub fn with_cost(charge: ChargeOf) -> Self {
        SseRelay { charge: Some(charge), ..Self::default() }
    }

    pub fn summary(&self) -> &StreamSummary {
        &self.summary
    }

    /// Bytes held for an event not yet complete: at most [`MAX_EVENT_BYTES`] after any push
    /// that succeeded (the property tests hold the relay to it).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds one upstream chunk. Returns the bytes of the events it completed (to forward now, in
    /// order), or the fault that stops the stream; events completed before the fault are lost only
    /// if they come after it in the same chunk.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFault> {
        self.buf.extend_from_slice(chunk);
        let result = self.drain_events(out, false);
        // Drop what has been forwarded so the buffer holds one partial event at most.
        if self.event_start > 0 {
            self.buf.drain(..self.event_start);
            self.scan -= self.event_start;
            self.event_start = 0;
        }
        result?;
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(StreamFault::Oversized);
        }
        Ok(())
    }

    /// Called when the upstream body ended cleanly. A stream that never said `[DONE]` is
    /// incomplete, whatever it sent before.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFault> {
        // A trailing `\r` can now be taken as a terminator. A final event that lacks its blank
        // line is dropped, as SSE itself drops it; a stream that said [DONE] is still complete.
        self.drain_events(out, true)?;
        if self.summary.done {
            Ok(())
        } else {
            Err(StreamFault::Truncated)
        }
    }

    fn drain_events(&mut self, out: &mut Vec<u8>, at_end: bool) -> Result<(), StreamFault> {
        loop {
            let Some((line_end, next)) = next_line(&self.buf, self.scan, at_end) else { return Ok(()) };
            self.scan = next;
            if line_end == self.line_start_of(line_end) {
                // Blank line: the event [event_start, next) is complete.
                let (start, end) = (self.event_start, next);
                self.event_start = next;
                match self.inspect(start, end)? {
                    Some(stamped) => out.extend_from_slice(&stamped),
                    None => out.extend_from_slice(&self.buf[start..end]),
                }
            }
        }
    }

    /// Start of the line that ends at `line_end` (the byte after the previous terminator).
    fn line_start_of(&self, line_end: usize) -> usize {
        let head = &self.buf[self.event_start..line_end];
        match head.iter().rposition(|&b| b == b'\n' || b == b'\r') {
            Some(i) => self.event_start + i + 1,
            None => self.event_start,
        }
    }

    /// Looks at one complete event; returns the bytes to forward instead of it, if any (a usage
    /// event with its cost written in, tool calls made right); otherwise it is forwarded as it came.
    fn inspect(&mut self, start: usize, end: usize) -> Result<Option<Vec<u8>>, StreamFault> {
        let event = parse_event(&self.buf[start..end]);
        let Some(payload) = event.data else {
            return Ok(None); // comments, retry hints: harmless, pass on
        };
        let event_name = event.name;
        self.summary.events += 1;
        if payload.as_slice() == b"[DONE]" {
            self.summary.done = true;
            return Ok(None);
        }
        if event_name == b"error" {
            return Err(StreamFault::UpstreamError(upstream_message(&payload)));
        }
        let probe: ChunkProbe = serde_json::from_slice(&payload).map_err(|_| StreamFault::Malformed)?;
        if probe.error.is_some() {
            return Err(StreamFault::UpstreamError(upstream_message(&payload)));
        }
        self.answer.event(&payload);
        let usage = probe.usage;
        if let Some(usage) = usage {
            self.summary.usage = Some(usage);
        }
        let mut tool_event = false;
        for choice in probe.choices.iter().flatten() {
            if let Some(delta) = &choice.delta {
                let has_text = delta.content.as_deref().is_some_and(|c| !c.is_empty());
                let has_refusal = delta.refusal.as_deref().is_some_and(|c| !c.is_empty());
                tool_event |= delta.tool_calls.is_some();
                if has_text || has_refusal || delta.tool_calls.is_some() {
                    self.summary.saw_content = true;
                }
            }
            if let Some(reason) = &choice.finish_reason {
                tool_event |= reason == "stop" && self.tools.made_calls();
                self.summary.finish_reason = Some(reason.to_string());
            }
        }
        let mut data = if tool_event { self.tools.event(&payload) } else { None };
        // The cost is written into the usage that comes with or after the finish reason: the
        // final usage, which is then what the books settle at whatever happens next.
        let charge = self.charge.as_ref().zip(usage).filter(|_| self.summary.finish_reason.is_some());
        if let Some((charge, usage)) = charge {
            // Only an event whose payload is one `data:` line is stamped (one contiguous value).
            if single_data_span(&self.buf[start..end]).is_some() {
                let cost = charge(&usage, self.answer.model());
                if let Some(stamped) = stamp_usage_cost(data.as_deref().unwrap_or(&payload), cost) {
                    data = Some(stamped);
                }
            }
        }
        Ok(data.map(|data| self.framed(start, end, &data)))
    }

    /// The event `[start, end)` carrying `data` instead of its payload, its framing kept. An
    /// event whose payload spans several `data:` lines is framed anew: its other fields as they
    /// were, then `data` split into lines where it has line breaks, each ended with `\n`.
    fn framed(&self, start: usize, end: usize, data: &[u8]) -> Vec<u8> {
        let raw = &self.buf[start..end];
        let mut out = Vec::with_capacity(raw.len() + data.len());
        if let Some(span) = single_data_span(raw) {
            out.extend_from_slice(&raw[..span.start]);
            out.extend_from_slice(data);
            out.extend_from_slice(&raw[span.end..]);
            return out;
        }
        let mut written = false;
        for line in lines(raw) {
            let is_data = line == b"data" || line.starts_with(b"data:");
            if !is_data {
                out.extend_from_slice(line);
                out.push(b'\n');
            } else if !written {
                written = true;
                for part in data.split(|&b| b == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(part);
                    out.push(b'\n');
                }
            }
        }
        out.push(b'\n');
        out
    }

    /// The thought signatures the stream carried, by the call id the client saw (for the
    /// signature memory, [`crate::tools::memory`]).
    pub fn signatures(&self) -> &[IssuedSignature] {
        self.tools.signatures()
    }

    /// The answer's model and (once [`StreamAnswer::gather_content`] was asked) content.
    pub fn answer(&self) -> &StreamAnswer {
        &self.answer
    }

    pub fn answer_mut(&mut self) -> &mut StreamAnswer {
        &mut self.answer
    }

    /// The usage the stream reported, as tokens.
    pub fn tokens(&self) -> Option<Tokens> {
        self.summary.usage.as_ref().and_then(|u| u.tokens().ok())
    }
}

/// The OpenAI stream format: content in `choices[].delta`, the end at `data: [DONE]`, errors
/// as `data: {"error": …}`.
impl Observer for SseRelay {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFault> {
        SseRelay::push(self, chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFault> {
        SseRelay::finish(self, out)
    }

    fn committed(&self) -> bool {
        self.summary.saw_content
    }

    fn complete(&self) -> bool {
        self.summary.done
    }

    /// OpenAI sends the usage in the last chunk, after the one with `finish_reason`.
    fn billed_in_full(&self) -> bool {
        self.summary.done || (self.summary.usage.is_some() && self.summary.finish_reason.is_some())
    }

    fn tokens(&self) -> Option<Tokens> {
        SseRelay::tokens(self)
    }

    fn model(&self) -> Option<&str> {
        self.answer.model()
    }

    fn signatures(&self) -> &[IssuedSignature] {
        SseRelay::signatures(self)
    }

    fn error_event(&self, err: &GatewayError) -> Option<Vec<u8>> {
        Some(err.to_sse_event().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n",
    );

    /// The usage event gets the request's cost inside `usage`, at any chunking; every other
    /// byte of the stream is forwarded as it came.
    #[test]
    fn the_usage_event_carries_the_cost_and_nothing_else_changes() {
        let stamped = STREAM.replace("\"total_tokens\":7}", "\"total_tokens\":7,\"cost\":0.000000012}");
        for piece in [1, 3, 7, 64, STREAM.len()] {
            let mut relay = SseRelay::with_cost(Box::new(|u: &Usage, _: Option<&str>| {
                Usd(u.total_tokens.known().unwrap_or(0) * 12_000 / 7)
            }));
            let mut out = Vec::new();
            for chunk in STREAM.as_bytes().chunks(piece) {
                relay.push(chunk, &mut out).unwrap();
            }
            relay.finish(&mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), stamped, "{piece}");
            assert!(relay.billed_in_full());
            assert_eq!(relay.tokens(), Some(Tokens { input: 5, cached_input: 0, output: 2, reasoning: 0 }));
        }
    }

    /// A usage event before any finish reason is not known to be the last: it is not stamped
    /// (the books would not settle at it if the stream broke next).
    #[test]
    fn usage_before_the_finish_reason_is_passed_on_unstamped() {
        let early = "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":0,\"total_tokens\":5}}\n\n";
        let mut relay = SseRelay::with_cost(Box::new(|_: &Usage, _: Option<&str>| Usd(1)));
        let mut out = Vec::new();
        relay.push(early.as_bytes(), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), early);
        assert!(!relay.billed_in_full());
    }

    /// Once the final usage is in (after the finish reason), a cut before `[DONE]` cannot have
    /// been billed for more: the books may settle at that usage.
    #[test]
    fn the_final_usage_marks_the_stream_billed_in_full() {
        let before_done = &STREAM[..STREAM.find("data: [DONE]").unwrap()];
        let before_usage = &STREAM[..STREAM.find("data: {\"id\":\"c\",\"choices\":[],").unwrap()];
        let mut out = Vec::new();
        let mut relay = SseRelay::new();
        relay.push(before_usage.as_bytes(), &mut out).unwrap();
        assert!(!relay.billed_in_full());
        let mut relay = SseRelay::new();
        relay.push(before_done.as_bytes(), &mut out).unwrap();
        assert!(relay.billed_in_full() && !relay.complete());
    }

    fn relay_in_pieces(input: &[u8], piece: usize) -> (Vec<u8>, Result<(), StreamFault>, StreamSummary) {
        let mut r = SseRelay::new();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            if let Err(e) = r.push(chunk, &mut out) {
                return (out, Err(e), r.summary().clone());
            }
        }
        let res = r.finish(&mut out);
        (out, res, r.summary().clone())
    }

    #[test]
    fn relays_byte_exact_however_the_chunks_fall() {
        for piece in [1, 2, 3, 7, 64, 4096] {
            let (out, res, s) = relay_in_pieces(STREAM.as_bytes(), piece);
            assert_eq!(res, Ok(()), "piece {piece}");
            assert_eq!(String::from_utf8(out).unwrap(), STREAM, "piece {piece}");
            assert!(s.done && s.saw_content);
            assert_eq!(s.finish_reason.as_deref(), Some("stop"));
            assert_eq!(
                s.usage,
                Some(Usage {
                    prompt_tokens: 5.into(),
                    completion_tokens: 2.into(),
                    total_tokens: 7.into(),
                    ..Usage::default()
                })
            );
            assert_eq!(s.events, 5);
        }
    }

    #[test]
    fn crlf_and_cr_framing_are_understood_and_kept() {
        let crlf = STREAM.replace('\n', "\r\n");
        let cr = STREAM.replace('\n', "\r");
        for input in [crlf, cr] {
            for piece in [1, 5, 1000] {
                let (out, res, s) = relay_in_pieces(input.as_bytes(), piece);
                assert_eq!(res, Ok(()));
                assert_eq!(out, input.as_bytes());
                assert!(s.done);
            }
        }
    }

    #[test]
    fn role_only_chunk_is_not_content() {
        let first = STREAM.split_inclusive("\n\n").next().unwrap();
        let (_, _, s) = relay_in_pieces(first.as_bytes(), 10);
        assert!(!s.saw_content);
    }

    #[test]
    fn tool_calls_count_as_content() {
        let ev = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":\"label\"}}]}}]}\n\n";
        let (_, _, s) = relay_in_pieces(ev.as_bytes(), 100);
        assert!(s.saw_content);
    }

    /// Gemini's tool-call dialect reaches the client made right, in the same events: an index
    /// per call, the finish said as `tool_calls`, the cost stamped into the same final event, the
    /// signature reported under the id the client saw; nothing else moves.
    #[test]
    fn gemini_tool_calls_are_made_right_in_place_and_the_cost_still_stamped() {
        let stream = concat!(
            "data: {\"id\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"},\"extra_content\":{\"google\":{\"thought_signature\":\"U0lH\"}}}]}}]}\n\n",
            "data: {\"id\":\"g\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}}]}\n\n",
            "data: {\"id\":\"g\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
            "data: [DONE]\n\n",
        );
        let expected = stream
            .replace("[{\"id\":\"c1\"", "[{\"index\":0,\"id\":\"c1\"")
            .replace("[{\"id\":\"c2\"", "[{\"index\":1,\"id\":\"c2\"")
            .replace("\"stop\"", "\"tool_calls\"")
            .replace("\"total_tokens\":7}", "\"total_tokens\":7,\"cost\":0.000000012}");
        for piece in [1, 5, 64, stream.len()] {
            let mut relay = SseRelay::with_cost(Box::new(|u: &Usage, _: Option<&str>| {
                Usd(u.total_tokens.known().unwrap_or(0) * 12_000 / 7)
            }));
            let mut out = Vec::new();
            for chunk in stream.as_bytes().chunks(piece) {
                relay.push(chunk, &mut out).unwrap();
            }
            relay.finish(&mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{piece}");
            assert_eq!(relay.signatures(), [IssuedSignature { call_id: "c1".into(), signature: "U0lH".into() }]);
            assert!(relay.summary().saw_content && relay.complete());
        }
    }

    /// A tool-call event whose JSON spans several `data:` lines is framed anew around its fix.
    #[test]
    fn a_multi_line_tool_event_is_framed_anew() {
        let ev = "id: 7\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":\ndata: [{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]}}]}\r\n\r\n";
        let (out, _, _) = relay_in_pieces(ev.as_bytes(), 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id: 7\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":\ndata: [{\"index\":0,\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]}}]}\n\n"
        );
    }

    #[test]
    fn a_stream_without_done_is_truncated() {
        let cut = &STREAM[..STREAM.find("data: [DONE]").unwrap()];
        let (out, res, s) = relay_in_pieces(cut.as_bytes(), 9);
        assert_eq!(res, Err(StreamFault::Truncated));
        assert_eq!(out, cut.as_bytes(), "everything complete before the cut was forwarded");
        assert!(s.saw_content);
        // Cut in the middle of an event: the partial event is never forwarded.
        let mid = &STREAM[..STREAM.find("world").unwrap()];
        let (out, res, _) = relay_in_pieces(mid.as_bytes(), 4);
        assert_eq!(res, Err(StreamFault::Truncated));
        assert!(String::from_utf8(out).unwrap().ends_with("\n\n"));
    }

    #[test]
    fn malformed_event_stops_the_stream_and_is_not_forwarded() {
        let bad = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"bro\n\ndata: [DONE]\n\n";
        let (out, res, _) = relay_in_pieces(bad.as_bytes(), 1000);
        assert_eq!(res, Err(StreamFault::Malformed));
        assert_eq!(String::from_utf8(out).unwrap(), "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n");
    }

    #[test]
    fn error_events_become_faults_with_their_message() {
        let ev = "data: {\"error\":{\"message\":\"quota gone\",\"type\":\"x\"}}\n\n";
        let (out, res, _) = relay_in_pieces(ev.as_bytes(), 3);
        assert_eq!(res, Err(StreamFault::UpstreamError("quota gone".into())));
        assert!(out.is_empty());
        let named = "event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"Overloaded\"}}\n\n";
        let (_, res, _) = relay_in_pieces(named.as_bytes(), 100);
        assert_eq!(res, Err(StreamFault::UpstreamError("Overloaded".into())));
    }

    #[test]
    fn oversized_event_is_refused_not_buffered_forever() {
        let mut r = SseRelay::new();
        let mut out = Vec::new();
        r.push(b"data: \"", &mut out).unwrap();
        let big = vec![b'a'; 64 * 1024];
        let mut res = Ok(());
        for _ in 0..20 {
            res = r.push(&big, &mut out);
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(StreamFault::Oversized));
    }

    #[test]
    fn multi_line_data_is_joined() {
        let ev = "data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        let (out, res, s) = relay_in_pieces(ev.as_bytes(), 2);
        assert_eq!(res, Ok(()));
        assert_eq!(out, ev.as_bytes());
        assert!(s.saw_content);
    }
}
