//! Relaying streamed answers: the observers of each wire format, and the one pump over them.
//!
//! An observer ([`Observer`]) reads one wire format: it forwards only *complete* events, byte for
//! byte, and knows for each whether it carried content (the commit point), the stream's proper
//! end, usage, or an error. [`openai`] is the unified route's format (what it keeps of the
//! answer's model and, for a JSON-mode request, its content: [`answer`]); the provider-native
//! formats are in [`crate::native::stream`]. The pump ([`pump`]) is the same for all of them:
//! hold until the commit point (or, JSON mode, the end), relay, end a broken stream with the
//! format's own error event.

pub mod answer;
pub mod openai;
pub mod pump;
pub mod sse;

pub use answer::StreamAnswer;
pub use openai::{SseRelay, StreamSummary};

use crate::error::GatewayError;
use crate::money::pricing::Tokens;

/// The largest single event the relay holds while waiting for its end (a 1 MiB SSE event is
/// already absurd; without a bound a hostile upstream could grow the buffer forever).
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Why a stream cannot be relayed further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamFault {
    /// An event whose data is not JSON (or not the chunk shape).
    Malformed,
    /// An event too large to hold.
    Oversized,
    /// The upstream sent an error event; its message.
    UpstreamError(String),
    /// The upstream ended (or was cut) before `[DONE]`.
    Truncated,
    /// A stream held to its end (JSON mode) grew past what the gateway holds.
    TooLongToHold,
}

impl StreamFault {
    pub fn describe(&self) -> String {
        match self {
            StreamFault::Malformed => {
                "The upstream stream carried an event that is not valid JSON; the answer is incomplete.".into()
            }
            StreamFault::Oversized => {
                format!("The upstream stream carried an event over {MAX_EVENT_BYTES} bytes; the answer is incomplete.")
            }
            StreamFault::UpstreamError(m) => format!("The upstream stream reported an error: {m}"),
            StreamFault::Truncated => {
                "The upstream stream ended before it was complete (no [DONE]); the answer is incomplete.".into()
            }
            StreamFault::TooLongToHold => format!(
                "The upstream stream grew past the {} bytes the gateway holds to check an answer its response_format asked for.",
                pump::MAX_HELD_BYTES
            ),
        }
    }
}

/// One wire format's stream, watched as it is relayed.
pub trait Observer {
    /// Feeds one upstream chunk; appends to `out` the bytes of the events it completed (to
    /// forward now, in order), or returns the fault that stops the stream.
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), StreamFault>;
    /// The upstream body ended: flushes the rest; a fault if the stream never reached its end.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), StreamFault>;
    /// Content arrived: the commit point (after it, nothing can be retried).
    fn committed(&self) -> bool;
    /// The stream's proper end arrived.
    fn complete(&self) -> bool;
    /// The stream's final usage arrived: what it says is all the provider bills, even if the
    /// stream breaks before its proper end.
    fn billed_in_full(&self) -> bool {
        self.complete()
    }
    /// The usage the stream reported so far.
    fn tokens(&self) -> Option<Tokens> {
        None
    }
    /// The model the stream's events name, if they name one (what answered).
    fn model(&self) -> Option<&str> {
        None
    }
    /// The thought signatures the stream's tool calls carried, by the call ids the client saw
    /// (the signature memory's, `crate::tools::memory`).
    fn signatures(&self) -> &[crate::tools::IssuedSignature] {
        &[]
    }
    /// The event that ends a committed stream with `err`, in this format; `None` for a format
    /// that cannot carry one (an opaque binary stream can only be cut).
    fn error_event(&self, err: &GatewayError) -> Option<Vec<u8>>;
}
