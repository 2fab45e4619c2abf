//! Relaying a provider-native stream while reading it, format by format.
//!
//! Like the OpenAI relay ([`crate::relay`]), this forwards only complete events (SSE events, or
//! the elements of Gemini's JSON-array stream), byte for byte as received, so that for each one
//! it knows whether it carried content (the commit point), usage, the stream's proper end, or an
//! error. A stream that ends without its proper end is truncated, never a clean end:
//!
//! | wire      | content                                  | proper end                    | usage |
//! |-----------|------------------------------------------|-------------------------------|-------|
//! | OpenAI    | `choices[].delta` text/tool calls; Responses `response.output_text.delta`; Workers AI `response` | `[DONE]`; Responses `response.completed` | `usage`, `response.usage` |
//! | Anthropic | `content_block_delta`, a `tool_use` block | `message_stop`               | `message_start` (input), `message_delta` (output) |
//! | Gemini    | a part with text or a function call      | a candidate's `finishReason` (SSE); the closing `]` (array) | `usageMetadata`, latest wins |
//!
//! Bedrock's binary event stream is relayed as it comes ([`Framing::Opaque`]): committed at the
//! first byte, usage unknown.
//!
//! After the commit point a failure cannot be retried, so the stream ends with an error in the
//! provider's own format ([`NativeStream::error_event`]): each SDK raises on it instead of
//! mistaking a cut answer for a complete one.

mod anthropic;
mod gemini;
mod openai;

use crate::error::GatewayError;
use crate::native::shape::Framing;
use crate::native::usage::NativeUsage;
use crate::provider::Wire;
use crate::relay::sse::{parse_event, SseFramer};
use crate::relay::{Observer, StreamFault, MAX_EVENT_BYTES};

/// What the observer learned from the stream so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamTally {
    /// Content arrived: the commit point.
    pub saw_content: bool,
    /// The stream's proper end arrived.
    pub complete: bool,
    pub usage: Option<NativeUsage>,
    /// A usage event carried a count that is not one: `usage` stays unknown.
    pub usage_unreadable: bool,
    /// The model the stream names.
    pub model: Option<String>,
    pub events: u32,
}

/// An incremental observer of one native stream.
#[derive(Debug)]
pub struct NativeStream {
    wire: Wire,
    framing: Framing,
    sse: SseFramer,
    array: ArrayFramer,
    tally: StreamTally,
}

impl NativeStream {
    pub fn new(wire: Wire, framing: Framing) -> NativeStream {
        NativeStream {
            wire,
            framing,
            sse: SseFramer::new(),
            array: ArrayFramer::default(),
            tally: StreamTally::default(),
        }
    }

    pub fn tally(&self) -> &StreamTally {
        &self.tally
    }

    /// Feeds one upstream chunk; appends to `out` the bytes of what it completed (to forward now,
    /// in order), or returns the fault that stops the stream.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFault> {
        self.feed(chunk, false, out)
    }

    /// The upstream body ended cleanly: flushes the rest, and faults if the stream never reached
    /// its proper end.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFault> {
        self.feed(&[], true, out)?;
        match self.framing {
            Framing::Opaque => self.tally.complete = true,
            Framing::JsonArray => self.tally.complete = self.array.closed,
            Framing::Sse => {}
        }
        if self.tally.complete {
            Ok(())
        } else {
            Err(StreamFault::Truncated)
        }
    }

    fn feed(&mut self, chunk: &[u8], at_end: bool, out: &mut Vec<u8>) -> Result<(), StreamFault> {
        let NativeStream { wire, framing, sse, array, tally } = self;
        match framing {
            Framing::Opaque => {
                if !chunk.is_empty() {
                    tally.saw_content = true;
                    out.extend_from_slice(chunk);
                }
                Ok(())
            }
            Framing::Sse => {
                sse.push(chunk, at_end, |raw| {
                    let event = parse_event(raw);
                    if let Some(data) = &event.data {
                        tally.events += 1;
                        inspect(*wire, tally, event.name, data)?;
                    }
                    out.extend_from_slice(raw);
                    Ok(())
                })?;
                if sse.pending() > MAX_EVENT_BYTES {
                    return Err(StreamFault::Oversized);
                }
                Ok(())
            }
            Framing::JsonArray => {
                array.push(chunk, out, |element| {
                    tally.events += 1;
                    inspect(*wire, tally, b"", element)
                })?;
                // The array's end is the stream's end (a finish reason may come before it).
                tally.complete = array.closed;
                if array.closed {
                    out.append(&mut array.buf);
                    array.scan = 0;
                }
                if array.buf.len() > MAX_EVENT_BYTES {
                    return Err(StreamFault::Oversized);
                }
                Ok(())
            }
        }
    }

    /// The error to end a committed stream with, in the provider's own format; `None` for an
    /// opaque stream, which can only be cut (the client then sees a broken body, not a clean end).
    pub fn error_event(&self, err: &GatewayError) -> Option<Vec<u8>> {
        let text = match self.wire {
            Wire::OpenAi => err.to_sse_event(),
            Wire::Anthropic | Wire::Bedrock => anthropic::error_event(err),
            Wire::Gemini => gemini::error_event(err, self.framing),
        };
        match self.framing {
            Framing::Opaque => None,
            _ => Some(text.into_bytes()),
        }
    }
}

/// Reads one event of `wire`'s format: each format in its own file.
fn inspect(wire: Wire, tally: &mut StreamTally, name: &[u8], data: &[u8]) -> Result<(), StreamFault> {
    match wire {
        Wire::OpenAi => openai::inspect(tally, name, data),
        Wire::Anthropic | Wire::Bedrock => anthropic::inspect(tally, name, data),
        Wire::Gemini => gemini::inspect(tally, data),
    }
}

/// Splits a JSON array streamed element by element (`[`, `{…}`, `,{…}`, …, `]`), tracking strings
/// and nesting, so each top-level element can be read as soon as it is complete.
#[derive(Debug, Default)]
struct ArrayFramer {
    /// Bytes not yet forwarded.
    buf: Vec<u8>,
    /// Where scanning resumes, in `buf`.
    scan: usize,
    opened: bool,
    closed: bool,
    depth: u32,
    in_string: bool,
    escaped: bool,
    element_start: usize,
}

impl ArrayFramer {
    /// Appends `chunk`; for each element it completes calls `on_element`, then moves every byte
    /// up to the element's end into `out`.
    fn push(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<u8>,
        mut on_element: impl FnMut(&[u8]) -> Result<(), StreamFault>,
    ) -> Result<(), StreamFault> {
        self.buf.extend_from_slice(chunk);
        let mut i = self.scan;
        while i < self.buf.len() {
            let b = self.buf[i];
            if self.depth > 0 {
                if self.in_string {
                    match b {
                        _ if self.escaped => self.escaped = false,
                        b'\\' => self.escaped = true,
                        b'"' => self.in_string = false,
                        _ => {}
                    }
                } else {
                    match b {
                        b'"' => self.in_string = true,
                        b'{' | b'[' => self.depth += 1,
                        b'}' | b']' => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                on_element(&self.buf[self.element_start..=i])?;
                                out.extend(self.buf.drain(..=i));
                                i = 0;
                                continue;
                            }
                        }
                        _ => {}
                    }
                }
            } else if b.is_ascii_whitespace() {
            } else if !self.opened {
                if b != b'[' {
                    return Err(StreamFault::Malformed);
                }
                self.opened = true;
            } else if self.closed {
                return Err(StreamFault::Malformed);
            } else {
                match b {
                    b',' => {}
                    b']' => self.closed = true,
                    b'{' => {
                        self.depth = 1;
                        self.element_start = i;
                    }
                    _ => return Err(StreamFault::Malformed),
                }
            }
            i += 1;
        }
        self.scan = i;
        Ok(())
    }
}

impl Observer for NativeStream {
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFault> {
        NativeStream::push(self, chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFault> {
        NativeStream::finish(self, out)
    }

    fn committed(&self) -> bool {
        self.tally.saw_content
    }

    fn complete(&self) -> bool {
        self.tally.complete
    }

    fn tokens(&self) -> Option<crate::money::pricing::Tokens> {
        self.tally.usage.map(|u| u.tokens)
    }

    fn model(&self) -> Option<&str> {
        self.tally.model.as_deref()
    }

    fn error_event(&self, err: &GatewayError) -> Option<Vec<u8>> {
        NativeStream::error_event(self, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::pricing::Tokens;

    fn run(wire: Wire, framing: Framing, input: &str, piece: usize) -> (String, Result<(), StreamFault>, StreamTally) {
        let mut s = NativeStream::new(wire, framing);
        let mut out = Vec::new();
        for chunk in input.as_bytes().chunks(piece) {
            if let Err(e) = s.push(chunk, &mut out) {
                return (String::from_utf8(out).unwrap(), Err(e), s.tally().clone());
            }
        }
        let r = s.finish(&mut out);
        (String::from_utf8(out).unwrap(), r, s.tally().clone())
    }

    fn usage(input: u64, cached: u64, output: u64) -> Option<NativeUsage> {
        Some(NativeUsage { tokens: Tokens { input, cached_input: cached, output, reasoning: 0 }, cache_write: 0 })
    }

    const ANTHROPIC: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":5}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn anthropic_usage_from_start_and_delta() {
        for piece in [1, 7, 4096] {
            let (out, r, t) = run(Wire::Anthropic, Framing::Sse, ANTHROPIC, piece);
            assert_eq!(r, Ok(()));
            assert_eq!(out, ANTHROPIC, "byte for byte");
            assert!(t.saw_content && t.complete);
            assert_eq!(t.usage, usage(25, 5, 15));
            assert_eq!(t.model.as_deref(), Some("claude-haiku-4-5"));
        }
        // A delta whose count is not a count: the stream is relayed, its usage unknown.
        let odd = ANTHROPIC.replace("{\"output_tokens\":15}", "{\"output_tokens\":-15}");
        let (out, r, t) = run(Wire::Anthropic, Framing::Sse, &odd, 9);
        assert_eq!((r, out.as_str()), (Ok(()), odd.as_str()));
        assert_eq!((t.usage, t.usage_unreadable), (None, true));
        // Only the role/block start: no content yet (the commit point is not reached).
        let head = &ANTHROPIC[..ANTHROPIC.find("event: ping").unwrap()];
        let (_, r, t) = run(Wire::Anthropic, Framing::Sse, head, 100);
        assert_eq!(r, Err(StreamFault::Truncated));
        assert!(!t.saw_content);
        // Cut after content: truncated, not complete.
        let cut = &ANTHROPIC[..ANTHROPIC.find("event: message_delta").unwrap()];
        let (_, r, t) = run(Wire::Anthropic, Framing::Sse, cut, 100);
        assert_eq!(r, Err(StreamFault::Truncated));
        assert!(t.saw_content && !t.complete);
        let err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        assert_eq!(run(Wire::Anthropic, Framing::Sse, err, 10).1, Err(StreamFault::UpstreamError("Overloaded".into())));
        let tool = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"name\":\"label\"}}\n\n";
        assert!(run(Wire::Anthropic, Framing::Sse, tool, 10).2.saw_content);
    }

    const GEMINI_ELEMENTS: [&str; 3] = [
        r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"index":0}],"modelVersion":"gemini-2.5-flash"}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":" there \"}]{["}],"role":"model"},"index":0}]}"#,
        r#"{"candidates":[{"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":2,"totalTokenCount":12}}"#,
    ];

    #[test]
    fn gemini_sse() {
        let input: String = GEMINI_ELEMENTS.iter().map(|e| format!("data: {e}\r\n\r\n")).collect();
        for piece in [1, 13, 5000] {
            let (out, r, t) = run(Wire::Gemini, Framing::Sse, &input, piece);
            assert_eq!(r, Ok(()));
            assert_eq!(out, input);
            assert!(t.saw_content && t.complete);
            assert_eq!(t.usage, usage(10, 0, 2));
            assert_eq!(t.model.as_deref(), Some("gemini-2.5-flash"));
        }
        // Gemini has no end marker but the finish reason: without it the stream is cut.
        let cut: String = GEMINI_ELEMENTS[..2].iter().map(|e| format!("data: {e}\n\n")).collect();
        assert_eq!(run(Wire::Gemini, Framing::Sse, &cut, 9).1, Err(StreamFault::Truncated));
        let err =
            "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\n\n";
        assert_eq!(
            run(Wire::Gemini, Framing::Sse, err, 9).1,
            Err(StreamFault::UpstreamError("The model is overloaded.".into()))
        );
    }

    #[test]
    fn gemini_json_array() {
        let input = format!("[{},\r\n{},\r\n{}]", GEMINI_ELEMENTS[0], GEMINI_ELEMENTS[1], GEMINI_ELEMENTS[2]);
        for piece in [1, 2, 17, 5000] {
            let (out, r, t) = run(Wire::Gemini, Framing::JsonArray, &input, piece);
            assert_eq!(r, Ok(()), "piece {piece}");
            assert_eq!(out, input, "piece {piece}");
            assert!(t.saw_content && t.complete);
            assert_eq!(t.usage, usage(10, 0, 2));
            assert_eq!(t.events, 3);
        }
        // An unclosed array is a cut stream; what was complete was forwarded.
        let cut = format!("[{},\r\n{}", GEMINI_ELEMENTS[0], &GEMINI_ELEMENTS[1][..20]);
        let (out, r, t) = run(Wire::Gemini, Framing::JsonArray, &cut, 5);
        assert_eq!(r, Err(StreamFault::Truncated));
        assert_eq!(out, format!("[{}", GEMINI_ELEMENTS[0]));
        assert!(t.saw_content);
        // Garbage between elements is malformed.
        let bad = format!("[{} x]", GEMINI_ELEMENTS[0]);
        assert_eq!(run(Wire::Gemini, Framing::JsonArray, &bad, 5).1, Err(StreamFault::Malformed));
        assert_eq!(run(Wire::Gemini, Framing::JsonArray, "{\"a\":1}", 5).1, Err(StreamFault::Malformed));
    }

    #[test]
    fn openai_chat_responses_and_workers_ai() {
        let chat = concat!(
            "data: {\"model\":\"gpt-4o-mini\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1,\"total_tokens\":10}}\n\n",
            "data: [DONE]\n\n",
        );
        let (out, r, t) = run(Wire::OpenAi, Framing::Sse, chat, 3);
        assert_eq!((out.as_str(), r), (chat, Ok(())));
        assert!(t.saw_content && t.complete);
        assert_eq!(t.usage, usage(9, 0, 1));
        assert_eq!(t.model.as_deref(), Some("gpt-4o-mini"));

        let responses = concat!(
            "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"model\":\"gpt-4o\",\"status\":\"in_progress\"}}\n\n",
            "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
            "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"gpt-4o\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1,\"input_tokens_details\":{\"cached_tokens\":2}}}}\n\n",
        );
        let (_, r, t) = run(Wire::OpenAi, Framing::Sse, responses, 11);
        assert_eq!(r, Ok(()));
        assert!(t.saw_content && t.complete);
        assert_eq!(t.usage, usage(3, 2, 1));

        let workers = "data: {\"response\":\"Hi\"}\n\ndata: {\"response\":\"\",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":1,\"total_tokens\":5}}\n\ndata: [DONE]\n\n";
        let (_, r, t) = run(Wire::OpenAi, Framing::Sse, workers, 11);
        assert_eq!(r, Ok(()));
        assert!(t.saw_content);
        assert_eq!(t.usage, usage(4, 0, 1));

        let broken = "data: {\"choices\":[{\"delta\":{\"content\":\"bro\n\n";
        assert_eq!(run(Wire::OpenAi, Framing::Sse, broken, 4).1, Err(StreamFault::Malformed));
    }

    #[test]
    fn opaque_streams_pass_through() {
        let bytes = "\0\0\0\x1f binary event-stream frame";
        let (out, r, t) = run(Wire::Bedrock, Framing::Opaque, bytes, 4);
        assert_eq!((out.as_str(), r), (bytes, Ok(())));
        assert!(t.saw_content && t.complete && t.usage.is_none());
    }

    #[test]
    fn error_events_in_each_format() {
        let err = GatewayError::new(crate::error::ErrorKind::UpstreamTimeout, "stalled");
        let event =
            |wire, framing| String::from_utf8(NativeStream::new(wire, framing).error_event(&err).unwrap()).unwrap();
        assert!(event(Wire::OpenAi, Framing::Sse).starts_with("data: {\"error\":"));
        let a = event(Wire::Anthropic, Framing::Sse);
        assert!(a.starts_with("event: error\ndata: {"), "{a}");
        let data: serde_json::Value =
            crate::json::from_str(a.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(data["type"], "error");
        assert_eq!(data["error"]["message"], "stalled");
        let g = event(Wire::Gemini, Framing::Sse);
        assert!(g.starts_with("data: {\"error\":{\"code\":504,"), "{g}");
        // The array form continues and closes the array: the whole body stays valid JSON.
        let body = format!("[{}{}", GEMINI_ELEMENTS[0], event(Wire::Gemini, Framing::JsonArray));
        let parsed: Vec<serde_json::Value> = crate::json::from_str(&body).unwrap();
        assert_eq!(parsed[1]["error"]["code"], 504);
        assert!(NativeStream::new(Wire::Bedrock, Framing::Opaque).error_event(&err).is_none());
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut s = NativeStream::new(Wire::Gemini, Framing::JsonArray);
        let mut out = Vec::new();
        s.push(b"[{\"a\":\"", &mut out).unwrap();
        let big = vec![b'a'; 64 * 1024];
        let mut r = Ok(());
        for _ in 0..20 {
            r = s.push(&big, &mut out);
            if r.is_err() {
                break;
            }
        }
        assert_eq!(r, Err(StreamFault::Oversized));
    }
}
