//! Relaying a provider-native stream: hold it until its commit point (first content, or a
//! complete stream), then pass it on event by event as it arrives.
//!
//! The same discipline as the OpenAI relay (`stream.rs`), over [`NativeStream`], which knows each
//! provider's format: a failure before the commit point lets the caller retry silently; after it,
//! the stream ends with an error in the provider's own format (or, for an opaque binary stream, a
//! broken body), never with a clean end that looks like a complete answer.

use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::stream::{self, Stream, StreamExt};
use gateway_core::error::{ErrorKind, GatewayError};
use gateway_core::native::stream::{NativeStream, StreamTally};
use gateway_core::relay::StreamFault;
use worker::{AbortController, ByteStream, Delay};

/// A stream that failed before its commit point.
pub enum OpenFault {
    Stalled,
    Fault(StreamFault),
}

pub struct NativeRelay {
    bytes: ByteStream,
    observer: NativeStream,
    idle: Duration,
    controller: Option<AbortController>,
}

enum Next {
    Chunk(Vec<u8>),
    End,
    Stalled,
    Broken,
}

impl NativeRelay {
    pub fn new(bytes: ByteStream, observer: NativeStream, idle: Duration, controller: AbortController) -> NativeRelay {
        NativeRelay { bytes, observer, idle, controller: Some(controller) }
    }

    pub fn tally(&self) -> &StreamTally {
        self.observer.tally()
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

    /// Reads until the commit point and returns the bytes held so far, or the fault that came first.
    pub async fn open(&mut self) -> Result<Vec<u8>, OpenFault> {
        let mut held = Vec::new();
        loop {
            match self.next().await {
                Next::Chunk(chunk) => self.observer.push(&chunk, &mut held).map_err(OpenFault::Fault)?,
                Next::End => {
                    self.observer.finish(&mut held).map_err(OpenFault::Fault)?;
                    return Ok(held);
                }
                Next::Broken => return Err(OpenFault::Fault(StreamFault::Truncated)),
                Next::Stalled => return Err(OpenFault::Stalled),
            }
            let t = self.observer.tally();
            if t.saw_content || t.complete {
                return Ok(held);
            }
        }
    }

    /// The body for the client: what `open` held, then the rest as it arrives. `on_end` runs once
    /// when the stream ends (awaited before the body closes), with what was seen and the fault
    /// that ended it, if any.
    pub fn into_body<F, Fut>(self, held: Vec<u8>, on_end: F) -> impl Stream<Item = worker::Result<Vec<u8>>>
    where
        F: FnOnce(StreamTally, Option<GatewayError>) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let first = stream::once(async move { Ok::<_, worker::Error>(held) });
        let rest = stream::unfold(Some((self, on_end)), |state| async move {
            let (mut relay, on_end) = state?;
            if relay.tally().complete {
                let mut out = Vec::new();
                let end = relay.observer.finish(&mut out);
                on_end(relay.tally().clone(), end.err().map(fault_error)).await;
                return (!out.is_empty()).then_some((Ok(out), None));
            }
            loop {
                let mut out = Vec::new();
                let fault = match relay.next().await {
                    Next::Chunk(chunk) => match relay.observer.push(&chunk, &mut out) {
                        Ok(()) if out.is_empty() => continue,
                        Ok(()) => return Some((Ok(out), Some((relay, on_end)))),
                        Err(f) => fault_error(f),
                    },
                    Next::End => match relay.observer.finish(&mut out) {
                        Ok(()) => {
                            on_end(relay.tally().clone(), None).await;
                            return (!out.is_empty()).then_some((Ok(out), None));
                        }
                        Err(f) => fault_error(f),
                    },
                    Next::Broken => fault_error(StreamFault::Truncated),
                    Next::Stalled => GatewayError::new(
                        ErrorKind::UpstreamTimeout,
                        format!(
                            "The upstream stream stalled for {} ms; the answer is incomplete.",
                            relay.idle.as_millis()
                        ),
                    ),
                };
                let ending = relay.observer.error_event(&fault);
                on_end(relay.tally().clone(), Some(fault)).await;
                return Some(match ending {
                    Some(event) => {
                        out.extend_from_slice(&event);
                        (Ok(out), None)
                    }
                    // An opaque stream cannot carry an error event: break the body instead.
                    None => (Err(worker::Error::RustError("upstream stream failed".into())), None),
                });
            }
        });
        first.chain(rest).filter(|item| std::future::ready(!matches!(item, Ok(b) if b.is_empty())))
    }
}

fn fault_error(fault: StreamFault) -> GatewayError {
    let text = match &fault {
        StreamFault::Truncated => {
            "The upstream stream ended before it was complete; the answer is incomplete.".to_owned()
        }
        other => other.describe(),
    };
    GatewayError::new(ErrorKind::UpstreamMalformed, text)
}
