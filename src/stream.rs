//! Relaying a streamed answer: hold it until the commit point, then pass it on as it arrives.
//!
//! Until the first content event arrives nothing is sent to the client, so a failure before it
//! (a cut, a stall, a malformed event) lets the caller try the next target silently. After it, a
//! failure ends the stream with an explicit OpenAI-shaped error event: the client's SDK raises
//! instead of taking a broken answer for a complete one.

use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::relay::{SseRelay, StreamFault, StreamSummary};
use worker::{AbortController, ByteStream};

use crate::timer::IdleDeadline;

/// A stream that failed before its commit point.
pub enum OpenFault {
    /// No chunk within the idle deadline.
    Stalled,
    /// The relay refused the stream (cut, malformed, upstream error event).
    Fault(StreamFault),
}

/// An upstream stream being relayed.
pub struct Relay {
    bytes: ByteStream,
    relay: SseRelay,
    idle: Duration,
    /// `idle` as a deadline that follows the chunks (one timer per idle period, not per chunk).
    deadline: IdleDeadline,
    controller: Option<AbortController>,
    /// A copy of everything sent to the client, when asked for (idempotent replays), up to a limit.
    capture: Option<Vec<u8>>,
    capture_limit: usize,
}

enum Next {
    Chunk(Vec<u8>),
    End,
    Stalled,
    Broken,
}

impl Relay {
    pub fn new(bytes: ByteStream, idle: Duration, controller: AbortController) -> Relay {
        Relay {
            bytes,
            relay: SseRelay::new(),
            idle,
            deadline: IdleDeadline::new(idle),
            controller: Some(controller),
            capture: None,
            capture_limit: 0,
        }
    }

    /// Keeps a copy of what is sent, up to `limit` bytes (beyond it the copy is dropped).
    pub fn capture(&mut self, limit: usize) {
        self.capture = Some(Vec::new());
        self.capture_limit = limit;
    }

    fn record(&mut self, bytes: &[u8]) {
        if let Some(copy) = &mut self.capture {
            if copy.len() + bytes.len() > self.capture_limit {
                self.capture = None;
            } else {
                copy.extend_from_slice(bytes);
            }
        }
    }

    pub fn summary(&self) -> &StreamSummary {
        self.relay.summary()
    }

    async fn next(&mut self) -> Next {
        match self.deadline.race(self.bytes.next()).await {
            Some(Some(Ok(chunk))) => Next::Chunk(chunk),
            Some(None) => Next::End,
            Some(Some(Err(_))) => Next::Broken,
            None => {
                // Free the upstream connection: nobody will read it any more.
                if let Some(c) = self.controller.take() {
                    c.abort();
                }
                Next::Stalled
            }
        }
    }

    /// After `[DONE]` the upstream body is at (or about to reach) its end. Dropping the reader
    /// before it would cancel the stream (in wasm-streams: a `cancel()` promise and a rejection
    /// handler whose closure is never freed; about 5% of a streamed request's CPU in `make bench`),
    /// so the end is read in the background instead, within the idle deadline.
    fn read_to_end_in_background(self) {
        let Relay { mut bytes, mut deadline, .. } = self;
        worker::wasm_bindgen_futures::spawn_local(async move {
            while let Some(Some(Ok(_))) = deadline.race(bytes.next()).await {}
        });
    }

    /// Reads until the commit point (first content, or a complete stream) and returns the bytes
    /// held so far, or the fault that came first.
    pub async fn open(&mut self) -> Result<Vec<u8>, OpenFault> {
        let mut held = Vec::new();
        loop {
            match self.next().await {
                Next::Chunk(chunk) => self.relay.push(&chunk, &mut held).map_err(OpenFault::Fault)?,
                Next::End => {
                    self.relay.finish(&mut held).map_err(OpenFault::Fault)?;
                    return Ok(held);
                }
                Next::Broken => return Err(OpenFault::Fault(StreamFault::Truncated)),
                Next::Stalled => return Err(OpenFault::Stalled),
            }
            let s = self.relay.summary();
            if s.saw_content || s.done {
                return Ok(held);
            }
        }
    }

    /// The body to send the client: what `open` held, then the rest as it arrives. `on_end` runs
    /// once, when the stream ends (awaited before the body closes, so accounting finishes while
    /// the request is still alive), with what the relay saw, the fault that ended it if any, and
    /// the captured copy if one was asked for and fit.
    pub fn into_body<F, Fut>(mut self, held: Vec<u8>, on_end: F) -> impl Stream<Item = worker::Result<Vec<u8>>>
    where
        F: FnOnce(StreamSummary, Option<GatewayError>, Option<Vec<u8>>) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        self.record(&held);
        let first = stream::once(async move { Ok::<_, worker::Error>(held) });
        let rest = stream::unfold(Some((self, on_end)), |state| async move {
            let (mut relay, on_end) = state?;
            if relay.summary().done {
                on_end(relay.summary().clone(), None, relay.capture.take()).await;
                relay.read_to_end_in_background();
                return None;
            }
            loop {
                let mut out = Vec::new();
                let fault = match relay.next().await {
                    Next::Chunk(chunk) => match relay.relay.push(&chunk, &mut out) {
                        Ok(()) if out.is_empty() => continue,
                        Ok(()) => {
                            relay.record(&out);
                            return Some((Ok(out), Some((relay, on_end))));
                        }
                        Err(f) => GatewayError::new(ErrorKind::UpstreamMalformed, f.describe()),
                    },
                    Next::End => match relay.relay.finish(&mut out) {
                        Ok(()) => {
                            relay.record(&out);
                            on_end(relay.summary().clone(), None, relay.capture.take()).await;
                            return (!out.is_empty()).then_some((Ok(out), None));
                        }
                        Err(f) => GatewayError::new(ErrorKind::UpstreamMalformed, f.describe()),
                    },
                    Next::Broken => GatewayError::new(ErrorKind::UpstreamMalformed, StreamFault::Truncated.describe()),
                    Next::Stalled => GatewayError::new(
                        ErrorKind::UpstreamTimeout,
                        format!(
                            "The upstream stream stalled for {} ms; the answer is incomplete.",
                            relay.idle.as_millis()
                        ),
                    ),
                };
                out.extend_from_slice(fault.to_sse_event().as_bytes());
                on_end(relay.summary().clone(), Some(fault), None).await;
                return Some((Ok(out), None));
            }
        });
        first.chain(rest).filter(|item| std::future::ready(!matches!(item, Ok(b) if b.is_empty())))
    }
}
