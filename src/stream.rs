//! Relaying a streamed answer: hold it until the commit point, then pass it on as it arrives.
//!
//! Until the first content event arrives nothing is sent to the client, so a failure before it
//! (a cut, a stall, a malformed event) lets the caller try the next target silently. After it, a
//! failure ends the stream with an explicit OpenAI-shaped error event: the client's SDK raises
//! instead of taking a broken answer for a complete one.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::stream::{self, Stream, StreamExt};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::relay::{SseRelay, StreamFault, StreamSummary};
use worker::{AbortController, ByteStream, Delay};

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
    controller: Option<AbortController>,
}

enum Next {
    Chunk(Vec<u8>),
    End,
    Stalled,
    Broken,
}

impl Relay {
    pub fn new(bytes: ByteStream, idle: Duration, controller: AbortController) -> Relay {
        Relay { bytes, relay: SseRelay::new(), idle, controller: Some(controller) }
    }

    pub fn summary(&self) -> &StreamSummary {
        self.relay.summary()
    }

    async fn next(&mut self) -> Next {
        match select(self.bytes.next(), Delay::from(self.idle)).await {
            Either::Left((Some(Ok(chunk)), _)) => Next::Chunk(chunk),
            Either::Left((None, _)) => Next::End,
            Either::Left((Some(Err(_)), _)) => Next::Broken,
            Either::Right(_) => {
                // Free the upstream connection: nobody will read it any more.
                if let Some(c) = self.controller.take() {
                    c.abort();
                }
                Next::Stalled
            }
        }
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
    /// once, when the stream ends, with what the relay saw and the fault that ended it, if any.
    pub fn into_body(
        self,
        held: Vec<u8>,
        on_end: impl FnOnce(&StreamSummary, Option<&GatewayError>) + 'static,
    ) -> impl Stream<Item = worker::Result<Vec<u8>>> {
        let first = stream::once(async move { Ok::<_, worker::Error>(held) });
        let rest = stream::unfold(Some((self, on_end)), |state| async move {
            let (mut relay, on_end) = state?;
            if relay.summary().done {
                on_end(relay.summary(), None);
                return None;
            }
            loop {
                let mut out = Vec::new();
                let fault = match relay.next().await {
                    Next::Chunk(chunk) => match relay.relay.push(&chunk, &mut out) {
                        Ok(()) if out.is_empty() => continue,
                        Ok(()) => return Some((Ok(out), Some((relay, on_end)))),
                        Err(f) => GatewayError::new(ErrorKind::UpstreamMalformed, f.describe()),
                    },
                    Next::End => match relay.relay.finish(&mut out) {
                        Ok(()) => {
                            on_end(relay.summary(), None);
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
                on_end(relay.summary(), Some(&fault));
                return Some((Ok(out), None));
            }
        });
        first.chain(rest).filter(|item| std::future::ready(!matches!(item, Ok(b) if b.is_empty())))
    }
}
