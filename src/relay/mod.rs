//! The one stream pump of the Worker: upstream chunks in, the core's [`Pump`] deciding, the
//! client's bytes out. Every wire format goes through it; what differs is the core's observer.
//!
//! The shell's part is I/O only: reading the upstream body within the idle deadline (one timer
//! per idle period, `timer.rs`), writing what the pump says, reading a finished stream's end in
//! the background, and noticing that the client went away (the body is dropped before its end),
//! so that the attempt is still settled — a provider bills a stream its caller abandoned.

pub mod timer;

use std::rc::Rc;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use gateway_core::account::pricing::Usd;
use gateway_core::engine::AttemptEnd;
use gateway_core::error::GatewayError;
use gateway_core::relay::pump::{Ending, OpenFailure, Pump, Step};
use gateway_core::relay::Observer;
use worker::{AbortController, ByteStream, Context};

use self::timer::IdleDeadline;

/// Prices what an observer saw, once its stream is complete.
pub type CostFn<O> = Box<dyn Fn(&O) -> Option<Usd>>;

/// What the end of a stream hands to the books and the log: how the attempt ended, the failure
/// that ended it (if any), and the copy of what was sent (if one was asked for and fit).
pub type OnEnd = Box<
    dyn FnOnce(AttemptEnd, Option<GatewayError>, Option<Vec<u8>>) -> futures_util::future::LocalBoxFuture<'static, ()>,
>;

/// An upstream stream being relayed.
pub struct Upstream<O: Observer + 'static> {
    /// `None` once handed to the background read of its end.
    bytes: Option<ByteStream>,
    pump: Pump<O, CostFn<O>>,
    idle: Duration,
    controller: Option<AbortController>,
}

/// How the stream came to its commit point.
pub enum Opened<O: Observer + 'static> {
    /// Content arrived: send `held`, then the rest.
    Committed { held: Vec<u8>, upstream: Upstream<O> },
    /// The whole stream arrived first (a short answer, or one blocked before any content).
    Whole { ending: Ending, observer: O },
    /// It failed before any content: nothing was sent.
    Failed(OpenFailure),
}

enum Read {
    Chunk(Vec<u8>),
    End,
    Broken,
    Stalled,
}

impl<O: Observer + 'static> Upstream<O> {
    pub fn new(bytes: ByteStream, pump: Pump<O, CostFn<O>>, idle: Duration, controller: AbortController) -> Self {
        Upstream { bytes: Some(bytes), pump, idle, controller: Some(controller) }
    }

    /// Keeps a copy of what is sent (idempotent replays), up to `limit` bytes.
    pub fn capture(&mut self, limit: usize) {
        self.pump.capture(limit);
    }

    async fn read(&mut self, deadline: &mut IdleDeadline) -> Read {
        let Some(bytes) = &mut self.bytes else { return Read::End };
        match deadline.race(bytes.next()).await {
            Some(Some(Ok(chunk))) => Read::Chunk(chunk),
            Some(None) => Read::End,
            Some(Some(Err(_))) => Read::Broken,
            None => {
                // Free the upstream connection: nobody will read it any more.
                if let Some(c) = self.controller.take() {
                    c.abort();
                }
                Read::Stalled
            }
        }
    }

    fn step(&mut self, read: Read) -> Step {
        match read {
            Read::Chunk(chunk) => self.pump.on_chunk(&chunk),
            Read::End => self.pump.on_end(),
            Read::Broken => self.pump.on_broken(),
            Read::Stalled => self.pump.on_stall(),
        }
    }

    /// Reads until the commit point, by `until_ms` (what the attempt has until its first byte
    /// is due: the request's deadline holds for streams too) and within the idle deadline. A
    /// timer per read here: only the few events before the first content are read this way.
    pub async fn open(mut self, until_ms: u64) -> Opened<O> {
        loop {
            let left = until_ms.saturating_sub(worker::Date::now().as_millis());
            let read = if left == 0 {
                if let Some(c) = self.controller.take() {
                    c.abort();
                }
                Read::Stalled
            } else {
                let mut deadline = IdleDeadline::new(self.idle.min(Duration::from_millis(left)));
                self.read(&mut deadline).await
            };
            match self.step(read) {
                Step::Wait => continue,
                Step::Send(held) => return Opened::Committed { held, upstream: self },
                Step::Done(ending) => {
                    if ending.drain {
                        self.drain();
                    }
                    let Upstream { pump, .. } = self;
                    return Opened::Whole { ending, observer: pump.into_observer() };
                }
                Step::Failed(failure) => return Opened::Failed(failure),
            }
        }
    }

    /// After the stream's proper end the upstream body is at (or about to reach) its own end.
    /// Dropping the reader before it would cancel the stream (a `cancel()` promise and a closure
    /// wasm-streams never frees: about 5% of a streamed request's CPU in `make bench`), so the
    /// end is read in the background, within the idle deadline.
    fn drain(&mut self) {
        let idle = self.idle;
        let Some(mut bytes) = self.bytes.take() else { return };
        worker::wasm_bindgen_futures::spawn_local(async move {
            let mut deadline = IdleDeadline::new(idle);
            while let Some(Some(Ok(_))) = deadline.race(bytes.next()).await {}
        });
    }

    /// The client's body: `held`, then the rest as it arrives. `on_end` runs exactly once, in
    /// `waitUntil`: when the stream ends, or when the client goes away before that.
    pub fn into_body(
        self,
        held: Vec<u8>,
        wctx: Rc<Context>,
        on_end: OnEnd,
    ) -> impl Stream<Item = worker::Result<Vec<u8>>> {
        let body = Body { upstream: self, wctx, on_end: Some(on_end), deadline: None };
        let first = stream::once(async move { Ok::<_, worker::Error>(held) });
        let rest = stream::unfold(Some(body), |body| async move {
            let mut body = body?;
            let deadline = body.deadline.get_or_insert_with(|| IdleDeadline::new(body.upstream.idle));
            let mut deadline = std::mem::replace(deadline, IdleDeadline::new(body.upstream.idle));
            loop {
                let read = body.upstream.read(&mut deadline).await;
                match body.upstream.step(read) {
                    Step::Wait => continue,
                    Step::Send(bytes) => {
                        body.deadline = Some(deadline);
                        return Some((Ok(bytes), Some(body)));
                    }
                    Step::Done(ending) => {
                        if ending.drain {
                            body.upstream.drain();
                        }
                        let cut = ending.cut;
                        let out = ending.out;
                        body.end(ending.end, ending.fault, ending.copy);
                        // A format that cannot carry an error event is cut instead: the client
                        // sees a broken body, never a clean end.
                        return Some((
                            if cut { Err(worker::Error::RustError("upstream stream failed".into())) } else { Ok(out) },
                            None,
                        ));
                    }
                    Step::Failed(_) => unreachable!("a committed stream cannot fail its attempt"),
                }
            }
        });
        first.chain(rest).filter(|item| std::future::ready(!matches!(item, Ok(b) if b.is_empty())))
    }
}

/// The client's side of a committed stream.
struct Body<O: Observer + 'static> {
    upstream: Upstream<O>,
    wctx: Rc<Context>,
    on_end: Option<OnEnd>,
    /// The idle deadline, kept across the pulls of the body (one timer per idle period).
    deadline: Option<IdleDeadline>,
}

impl<O: Observer + 'static> Body<O> {
    fn end(&mut self, end: AttemptEnd, fault: Option<GatewayError>, copy: Option<Vec<u8>>) {
        if let Some(on_end) = self.on_end.take() {
            self.wctx.wait_until(on_end(end, fault, copy));
        }
    }
}

impl<O: Observer + 'static> Drop for Body<O> {
    /// The body was dropped before the stream ended: the client went away (or the runtime
    /// cancelled the response). The attempt is settled all the same.
    fn drop(&mut self) {
        if self.on_end.is_some() {
            if let Some(end) = self.upstream.pump.on_client_gone() {
                self.end(end, None, None);
            }
        }
    }
}
