//! The one stream pump of the Worker: upstream chunks in, the core's [`Pump`] deciding, the
//! client's bytes out. Every wire format goes through it; what differs is the core's observer.
//!
//! The shell's part is I/O only: reading the upstream body within the idle deadline (one timer
//! per idle period, `timer.rs`), writing what the pump says, reading a finished stream's end in
//! the background, and noticing that the client went away (the body is dropped before its end),
//! so that the attempt is still settled — a provider bills a stream its caller abandoned.

pub mod timer;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::future::{select, Either};
use futures_util::stream::{self, Stream, StreamExt};
use gateway_core::account::pricing::{Tokens, Usd};
use gateway_core::engine::AttemptEnd;
use gateway_core::error::GatewayError;
use gateway_core::relay::pump::{Ending, OpenFailure, Pump, Step};
use gateway_core::relay::Observer;
use worker::{AbortController, ByteStream, Context, Delay};

use self::timer::IdleDeadline;

/// Prices what an observer saw, once its stream is complete.
pub type CostFn<O> = Box<dyn Fn(&O) -> Option<Usd>>;

/// What the end of a stream hands to the books, the ledger and the log.
pub struct StreamEnd {
    /// How the attempt ended.
    pub end: AttemptEnd,
    /// The failure that ended it, if any.
    pub fault: Option<GatewayError>,
    /// The copy of what was sent, if one was asked for and fit.
    pub copy: Option<Vec<u8>>,
    /// The usage the stream reported.
    pub tokens: Option<Tokens>,
}

pub type OnEnd = Box<dyn FnOnce(StreamEnd) -> futures_util::future::LocalBoxFuture<'static, ()>>;

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
    ///
    /// The `waitUntil` is registered here, inside the request, and waits for the stream's end
    /// to be posted to it. When the client goes away, the runtime frees the body *outside* the
    /// request (wasm-streams drops it from its finaliser), where no I/O, timer, random number or
    /// `waitUntil` is allowed; doing the settle there made wasm-bindgen abort the instance
    /// (`Uncaught Error: Critical error` under load). So the drop only posts how it ended, and
    /// the waiting task, woken by its own timer inside the request, does the I/O.
    pub fn into_body(
        self,
        held: Vec<u8>,
        wctx: Rc<Context>,
        on_end: OnEnd,
    ) -> impl Stream<Item = worker::Result<Vec<u8>>> {
        let mailbox = Rc::new(Mailbox::default());
        wctx.wait_until(settle_when_ended(mailbox.clone(), on_end, self.idle));
        let body = Body { upstream: self, mailbox, deadline: None };
        let first = stream::once(async move { Ok::<_, worker::Error>(held) });
        let rest = stream::unfold(Some(body), |body| async move {
            let mut body = body?;
            body.mailbox.pulling.set(true);
            let deadline = body.deadline.get_or_insert_with(|| IdleDeadline::new(body.upstream.idle));
            let mut deadline = std::mem::replace(deadline, IdleDeadline::new(body.upstream.idle));
            loop {
                let read = body.upstream.read(&mut deadline).await;
                match body.upstream.step(read) {
                    Step::Wait => continue,
                    Step::Send(bytes) => {
                        body.deadline = Some(deadline);
                        let pump = &body.upstream.pump;
                        body.mailbox.if_gone.set(Some((pump.if_client_left(), pump.observer().tokens())));
                        body.mailbox.pulling.set(false);
                        body.mailbox.last_pull_ms.set(worker::Date::now().as_millis());
                        return Some((Ok(bytes), Some(body)));
                    }
                    Step::Done(ending) => {
                        if ending.drain {
                            body.upstream.drain();
                        }
                        let cut = ending.cut;
                        let out = ending.out;
                        let tokens = body.upstream.pump.observer().tokens();
                        body.mailbox
                            .post(StreamEnd { end: ending.end, fault: ending.fault, copy: ending.copy, tokens }, true);
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
    mailbox: Rc<Mailbox>,
    /// The idle deadline, kept across the pulls of the body (one timer per idle period).
    deadline: Option<IdleDeadline>,
}

impl<O: Observer + 'static> Drop for Body<O> {
    /// The body was dropped before the stream ended: the client went away (or the runtime
    /// cancelled the response). The attempt is settled all the same — by the waiting task: this
    /// may run outside the request, so it posts and wakes nothing.
    fn drop(&mut self) {
        if let Some(end) = self.upstream.pump.on_client_gone() {
            let tokens = self.upstream.pump.observer().tokens();
            self.mailbox.post(StreamEnd { end, fault: None, copy: None, tokens }, false);
        }
        // Dropping the upstream reader releases its lock, a call the runtime refuses outside
        // the request (fatal to the instance: wasm-streams does not catch it): the task inside
        // the request drops it instead.
        if let Some(bytes) = self.upstream.bytes.take() {
            if self.mailbox.settled.get() {
                // Nobody inside the request will drop it any more: leaking one reader beats
                // aborting the instance.
                std::mem::forget(bytes);
            } else {
                *self.mailbox.reader.borrow_mut() = Some(bytes);
            }
        }
    }
}

/// How a stream ended, left for the task that closes its books.
#[derive(Default)]
struct Mailbox {
    ended: RefCell<Option<StreamEnd>>,
    waker: RefCell<Option<Waker>>,
    /// An upstream reader left by a dropped body, to be dropped inside the request.
    reader: RefCell<Option<ByteStream>>,
    /// A pull of the body is under way (waiting on the upstream, not on the client).
    pulling: Cell<bool>,
    /// When the client last took a chunk.
    last_pull_ms: Cell<u64>,
    /// The books are closed: the task that closes them is gone.
    settled: Cell<bool>,
    /// How the attempt ends if the client stops pulling now, and the usage seen (kept after
    /// each chunk sent: the task that notices an abandoned body cannot reach the pump).
    if_gone: Cell<Option<(AttemptEnd, Option<Tokens>)>>,
}

impl Mailbox {
    /// `wake`: only from inside the request (the body's own pull), never from a drop.
    fn post(&self, ended: StreamEnd, wake: bool) {
        let mut slot = self.ended.borrow_mut();
        if slot.is_none() {
            *slot = Some(ended);
        }
        drop(slot);
        if wake {
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// Waits (inside the request, in `waitUntil`) for the stream's end, then runs `on_end`. Woken at
/// once by a normal end; a dropped body is noticed at the next check, one per idle period at most.
///
/// A client can also go away without the runtime cancelling the body: it just stops pulling,
/// and the body is freed whenever the garbage collector gets to it. So a body that nobody has
/// pulled for a whole idle period, with no pull waiting on the upstream, counts as abandoned:
/// its attempt is settled at the worst case (a stream that had ended would have said so).
async fn settle_when_ended(mailbox: Rc<Mailbox>, on_end: OnEnd, idle: Duration) {
    let check = idle.clamp(Duration::from_millis(100), Duration::from_millis(1000));
    mailbox.last_pull_ms.set(worker::Date::now().as_millis());
    let ended = loop {
        let posted = std::future::poll_fn(|cx| match mailbox.ended.borrow_mut().take() {
            Some(ended) => Poll::Ready(ended),
            None => {
                *mailbox.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        });
        match select(Box::pin(posted), Delay::from(check)).await {
            Either::Left((ended, _)) => break ended,
            Either::Right(_) => {
                let unpulled = worker::Date::now().as_millis().saturating_sub(mailbox.last_pull_ms.get());
                if !mailbox.pulling.get() && u128::from(unpulled) > idle.as_millis() {
                    let (end, tokens) =
                        mailbox.if_gone.get().unwrap_or((AttemptEnd::ClientGone { final_cost: None }, None));
                    break StreamEnd { end, fault: None, copy: None, tokens };
                }
            }
        }
    };
    mailbox.settled.set(true);
    drop(mailbox.reader.borrow_mut().take());
    on_end(ended).await;
}
