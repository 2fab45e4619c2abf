//! What differs between the routes' attempts, as data and pure functions: what is sent for an
//! attempt ([`Outgoing`]), how an error status reads, how a whole answer or a stream's is judged
//! ([`judge`]), and how a stream is observed and priced. The shell's runtime (`src/aig/runtime.rs`)
//! does the I/O of one attempt the same way for every route and asks its [`Protocol`] the rest:
//! [`unified`] for `/v1/chat/completions`, [`native`] for `/{provider}/…`.
//!
//! Nothing here logs: what a caller or an operator should know comes back as data (a judged
//! answer's `warnings`, a stream's cost warning), for the shell to log and send.

pub mod judge;
pub mod native;
pub mod unified;

use std::borrow::Cow;

use crate::attempt::AttemptEnd;
use crate::error::GatewayError;
use crate::money::pricing::Usd;
use crate::relay::pump::CostFn;
use crate::relay::Observer;
use crate::tools::IssuedSignature;

use self::judge::Judged;

/// One request to AI Gateway.
pub struct Outgoing<'a> {
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'a, [u8]>,
}

/// How a whole answer (or a stream read to its end before it committed) reads.
pub enum Reading {
    /// An answer, judged: its body for the caller, as the protocol made it right, and the
    /// thought signatures it carried (the signature memory's).
    Judged { body: Vec<u8>, judged: Judged, signatures: Vec<IssuedSignature> },
    /// A 200 that is not an answer: it may have been billed.
    Malformed(GatewayError),
}

/// What differs between routes: how an attempt is sent, and how its answer reads.
pub trait Protocol {
    type Observer: Observer + 'static;
    type Failure: From<GatewayError>;

    fn streamed(&self) -> bool;
    /// The request for attempt `attempt` (1-based, the whole request's) on `targets[target]`.
    fn outgoing(&self, target: usize, attempt: u32) -> Outgoing<'_>;
    /// An error status's failure, from its (bounded) body.
    fn failure(
        &self,
        target: usize,
        status: u16,
        content_type: Option<String>,
        body: &[u8],
        retry_after: Option<String>,
    ) -> Self::Failure;
    /// Reads a whole answer.
    fn whole(&self, target: usize, body: Vec<u8>, cache_hit: bool) -> Reading;
    /// The observer of a stream from `targets[target]`, and how to price what it saw;
    /// `charged_before` is what the request's earlier attempts were charged.
    fn observer(&self, target: usize, cache_hit: bool, charged_before: Usd)
        -> (Self::Observer, CostFn<Self::Observer>);
    /// A stream held to its end (its commit point is the end of the answer: JSON mode).
    fn held(&self) -> bool {
        false
    }
    /// A stream that ended before its commit point (or was held to its end), judged: `end` is
    /// how its pump ended it.
    fn stream_judged(&self, target: usize, observer: &Self::Observer, end: AttemptEnd, cache_hit: bool) -> Judged;
    /// The model that answered, when the answer named another than `targets[target]`'s.
    fn answered_by(&self, target: usize, named: Option<&str>) -> Option<String>;
}
