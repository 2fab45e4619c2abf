//! The one stream pump of the Worker: upstream chunks in, the core's [`Pump`] deciding, the
//! client's bytes out. Every wire format goes through it; what differs is the core's observer.
//!
//! The I/O is JavaScript's (`js/relay.mjs`): it reads the upstream body within the idle
//! deadline (one timer per idle period), hands each chunk to the pump here synchronously — one
//! call into wasm per chunk, no promise, waker or stream adapter crossing the boundary — and
//! passes on what the pump returns. This file is the pump's side of those calls, and the task
//! that closes the books once the stream has ended (in `waitUntil`, after the body closed), or
//! once the client went away — a provider bills a stream its caller abandoned.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_util::future::{select, Either};
use gateway_core::attempt::AttemptEnd;
use gateway_core::error::GatewayError;
use gateway_core::money::pricing::Tokens;
use gateway_core::relay::pump::{Ending, OpenFailure, Pump, Step};
use gateway_core::relay::Observer;
use gateway_core::tools::IssuedSignature;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{web_sys, Context, Delay};

#[wasm_bindgen(module = "/js/relay.mjs")]
extern "C" {
    type Relay;
    #[wasm_bindgen(constructor)]
    fn new(body: &web_sys::ReadableStream, step: &js_sys::Function, idle_ms: f64) -> Relay;
    #[wasm_bindgen(method)]
    fn open(this: &Relay, until_ms: f64) -> js_sys::Promise;
    #[wasm_bindgen(method)]
    fn body(this: &Relay) -> web_sys::ReadableStream;
    #[wasm_bindgen(method)]
    fn retire(this: &Relay);
    #[wasm_bindgen(method, getter)]
    fn pulling(this: &Relay) -> bool;
    #[wasm_bindgen(method, getter, js_name = lastPull)]
    fn last_pull(this: &Relay) -> f64;
}

/// The kinds of event `js/relay.mjs` hands the pump, the same names and values (a test of the
/// core reads both files: `crates/core/tests/js_codes.rs`).
const CHUNK: u32 = 0;
const END: u32 = 1;
const BROKEN: u32 = 2;
const STALL: u32 = 3;
const GONE: u32 = 4;
const CLOSED: u32 = 5;

pub use gateway_core::relay::pump::CostFn;

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
    /// The thought signatures its tool calls carried.
    pub signatures: Vec<IssuedSignature>,
    /// Why its cost is unknown (a price or the usage missing), when it is.
    pub warning: Option<String>,
}

pub type OnEnd = Box<dyn FnOnce(StreamEnd) -> futures_util::future::LocalBoxFuture<'static, ()>>;

/// The pump and what its answers to the relay leave behind.
struct Shared<O: Observer + 'static> {
    /// `None` once the stream is over and its observer taken.
    pump: Option<Pump<O, CostFn<O>>>,
    /// How the opening ended (the relay's `open()` only says it stopped reading).
    opened: Option<Outcome>,
    /// Set once the body is the client's: where its end is posted.
    mailbox: Option<Rc<Mailbox>>,
}

enum Outcome {
    Committed,
    Ended(Ending),
    Failed(OpenFailure),
}

type StepFn = Closure<dyn FnMut(u32, JsValue) -> JsValue>;

/// An upstream stream being relayed.
pub struct Upstream<O: Observer + 'static> {
    relay: Relay,
    shared: Rc<RefCell<Shared<O>>>,
    /// The pump's entry point for the relay; it lives as long as the relay may call it.
    _step: StepFn,
    idle: Duration,
}

/// How the stream came to its commit point.
pub enum Opened<O: Observer + 'static> {
    /// Content arrived: the body sends it, then the rest; `model` is what its events named.
    Committed { upstream: Upstream<O>, model: Option<String> },
    /// The whole stream arrived first (a short answer, or one blocked before any content).
    Ended { ending: Ending, observer: O },
    /// It failed before any content: nothing was sent.
    Failed(OpenFailure),
}

impl<O: Observer + 'static> Upstream<O> {
    pub fn new(body: web_sys::ReadableStream, pump: Pump<O, CostFn<O>>, idle: Duration) -> Self {
        let shared = Rc::new(RefCell::new(Shared { pump: Some(pump), opened: None, mailbox: None }));
        let pumped = shared.clone();
        let step: StepFn = Closure::new(move |kind: u32, chunk: JsValue| on_event(&pumped, kind, chunk));
        let relay = Relay::new(&body, step.as_ref().unchecked_ref(), idle.as_millis() as f64);
        Upstream { relay, shared, _step: step, idle }
    }

    /// Keeps a copy of what is sent (idempotent replays), up to `limit` bytes.
    pub fn capture(&mut self, limit: usize) {
        if let Some(pump) = &mut self.shared.borrow_mut().pump {
            pump.capture(limit);
        }
    }

    /// Reads until the commit point, by `until_ms` (what the attempt has until its first byte
    /// is due: the request's deadline holds for streams too) and within the idle deadline.
    pub async fn open(self, until_ms: u64) -> Opened<O> {
        // The relay's promise never rejects: every failure is an event for the pump.
        let _ = worker::wasm_bindgen_futures::JsFuture::from(self.relay.open(until_ms as f64)).await;
        let opened = self.shared.borrow_mut().opened.take();
        match opened {
            Some(Outcome::Committed) => {
                let model = self.shared.borrow().pump.as_ref().and_then(|p| p.observer().model().map(str::to_owned));
                Opened::Committed { upstream: self, model }
            }
            Some(Outcome::Ended(ending)) => {
                let observer = self.shared.borrow_mut().pump.take().map(Pump::into_observer);
                match observer {
                    Some(observer) => Opened::Ended { ending, observer },
                    None => unreachable!("the pump is taken only here"),
                }
            }
            Some(Outcome::Failed(failure)) => Opened::Failed(failure),
            None => unreachable!("the relay stops opening only on the pump's word"),
        }
    }

    /// The client's body: the commit point's bytes, then the rest as it arrives. `on_end` runs
    /// exactly once, in `waitUntil`: once the stream has ended and the body closed, or when the
    /// client goes away before that.
    ///
    /// The `waitUntil` is registered here, inside the request, and waits for the stream's end
    /// to be posted to it; the I/O of the books is done there, never from the relay's calls
    /// (a cancelled body may be noticed outside the request, where no I/O, timer or
    /// `waitUntil` is allowed).
    pub fn into_body(self, wctx: Rc<Context>, on_end: OnEnd) -> web_sys::ReadableStream {
        let mailbox = Rc::new(Mailbox::default());
        self.shared.borrow_mut().mailbox = Some(mailbox.clone());
        let body = self.relay.body();
        wctx.wait_until(settle_when_ended(mailbox, self, on_end));
        body
    }
}

/// The pump's answer to one event of the relay (see `js/relay.mjs`).
fn on_event<O: Observer + 'static>(shared: &Rc<RefCell<Shared<O>>>, kind: u32, chunk: JsValue) -> JsValue {
    let mut shared = shared.borrow_mut();
    let Shared { pump, opened, mailbox } = &mut *shared;
    let Some(pump) = pump.as_mut() else { return JsValue::UNDEFINED };
    let step = match kind {
        CHUNK => pump.on_chunk(&js_sys::Uint8Array::unchecked_from_js(chunk).to_vec()),
        END => pump.on_end(),
        BROKEN => pump.on_broken(),
        STALL => pump.on_stall(),
        GONE => {
            let end = pump.on_client_gone();
            if let (Some(end), Some(mailbox)) = (end, mailbox) {
                mailbox.post(StreamEnd { end, fault: None, copy: None, ..facts(pump) });
            }
            return JsValue::UNDEFINED;
        }
        CLOSED => {
            if let Some(mailbox) = mailbox {
                mailbox.wake();
            }
            return JsValue::UNDEFINED;
        }
        _ => return JsValue::UNDEFINED,
    };
    let done = |out: Option<&[u8]>, cut: bool, drain: bool| {
        let out = out.filter(|o| !o.is_empty()).map_or(JsValue::NULL, |o| js_sys::Uint8Array::from(o).into());
        js_sys::Array::of3(&out, &JsValue::from_bool(cut), &JsValue::from_bool(drain)).into()
    };
    match (step, mailbox) {
        (Step::Wait, _) => JsValue::UNDEFINED,
        (Step::Send(bytes), None) => {
            *opened = Some(Outcome::Committed);
            js_sys::Uint8Array::from(&bytes[..]).into()
        }
        (Step::Send(bytes), Some(mailbox)) => {
            mailbox.if_gone.set(Some((pump.if_client_left(), pump.observer().tokens())));
            js_sys::Uint8Array::from(&bytes[..]).into()
        }
        (Step::Done(ending), None) => {
            let drain = ending.drain;
            *opened = Some(Outcome::Ended(ending));
            done(None, false, drain)
        }
        (Step::Done(ending), Some(mailbox)) => {
            let answer = done(Some(&ending.out), ending.cut, ending.drain);
            // Woken once the body has closed (the relay's CLOSED).
            mailbox.post(StreamEnd { end: ending.end, fault: ending.fault, copy: ending.copy, ..facts(pump) });
            answer
        }
        (Step::Failed(failure), _) => {
            *opened = Some(Outcome::Failed(failure));
            done(None, false, false)
        }
    }
}

/// What a stream's pump learned of its answer, for its end (`end`, `fault` and `copy` are the
/// caller's).
fn facts<O: Observer>(pump: &Pump<O, CostFn<O>>) -> StreamEnd {
    let observer = pump.observer();
    StreamEnd {
        end: AttemptEnd::ClientGone { final_cost: None },
        fault: None,
        copy: None,
        tokens: observer.tokens(),
        signatures: observer.signatures().to_vec(),
        warning: pump.cost_warning().map(str::to_owned),
    }
}

/// How a stream ended, left for the task that closes its books.
#[derive(Default)]
struct Mailbox {
    ended: RefCell<Option<StreamEnd>>,
    waker: RefCell<Option<Waker>>,
    /// How the attempt ends if the client stops pulling now, and the usage seen (kept after
    /// each chunk sent: the task that notices an abandoned body cannot reach the pump).
    if_gone: Cell<Option<(AttemptEnd, Option<Tokens>)>>,
}

impl Mailbox {
    /// Leaves the stream's end for the settle task, which is woken later: by the body's close
    /// (CLOSED), or by its own next check when the client went away (a cancellation may be
    /// noticed outside the request, where waking a task of the request is not allowed).
    fn post(&self, ended: StreamEnd) {
        let mut slot = self.ended.borrow_mut();
        if slot.is_none() {
            *slot = Some(ended);
        }
    }

    /// Only from inside the request (the body's own pull), never from a cancellation.
    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// Waits (inside the request, in `waitUntil`) for the stream's end, then runs `on_end`. Woken at
/// once when the body closes; a client that went away is noticed at the next check, one per
/// idle period at most.
///
/// A client can also go away without the runtime cancelling the body: it just stops pulling,
/// and the body is freed whenever the garbage collector gets to it. So a body that nobody has
/// pulled for a whole idle period, with no pull waiting on the upstream, counts as abandoned:
/// its attempt is settled at the worst case (a stream that had ended would have said so).
async fn settle_when_ended<O: Observer + 'static>(mailbox: Rc<Mailbox>, upstream: Upstream<O>, on_end: OnEnd) {
    let idle = upstream.idle;
    let check = idle.clamp(Duration::from_millis(100), Duration::from_millis(1000));
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
                // Ended, or the client went away, without a wake (see `on_event`).
                if let Some(ended) = mailbox.ended.borrow_mut().take() {
                    break ended;
                }
                let unpulled = js_sys::Date::now() - upstream.relay.last_pull();
                if !upstream.relay.pulling() && unpulled > idle.as_millis() as f64 {
                    let (end, tokens) =
                        mailbox.if_gone.get().unwrap_or((AttemptEnd::ClientGone { final_cost: None }, None));
                    break StreamEnd { end, fault: None, copy: None, tokens, signatures: Vec::new(), warning: None };
                }
            }
        }
    };
    // No more calls into the pump; then the pump's entry point may go.
    upstream.relay.retire();
    drop(upstream);
    on_end(ended).await;
}
