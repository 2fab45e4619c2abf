//! A cheap idle deadline for streams: one `setTimeout` per idle period, not one per chunk.
//!
//! `worker::Delay` per chunk costs a closure, a `setTimeout` and a `clearTimeout` for every chunk
//! relayed: about 15% of the Worker's CPU time on a streamed answer (`make bench`, profile). An
//! [`IdleDeadline`] arms one timer; when it fires it checks when the last chunk came and re-arms
//! for the rest of the period if one did, so a healthy stream costs one timer per idle period.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::future::{select, Either};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;

// The global timer functions, bound with `catch`: web-sys's `clear_timeout_with_handle` is not,
// so a refusal would be fatal instead of an error.
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: i32) -> Result<i32, JsValue>;
    #[wasm_bindgen(catch, js_name = clearTimeout)]
    fn clear_timeout(id: i32) -> Result<(), JsValue>;
}

/// Milliseconds since the epoch (the clock `setTimeout` follows).
fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Races futures against "nothing happened for `idle`", across calls.
pub struct IdleDeadline {
    idle_ms: f64,
    timer: Option<Timer>,
    /// When the deadline was last pushed back (the last chunk).
    last_activity_ms: f64,
}

impl IdleDeadline {
    pub fn new(idle: Duration) -> IdleDeadline {
        IdleDeadline { idle_ms: idle.as_secs_f64() * 1000.0, timer: None, last_activity_ms: now_ms() }
    }

    /// `work`'s output, or `None` when `idle` passed since the last activity first. Every output
    /// counts as activity.
    pub async fn race<F: Future + Unpin>(&mut self, mut work: F) -> Option<F::Output> {
        loop {
            let remaining = self.idle_ms - (now_ms() - self.last_activity_ms);
            let timer = self.timer.get_or_insert_with(|| Timer::start(remaining));
            match select(&mut work, timer).await {
                Either::Left((out, _)) => {
                    self.last_activity_ms = now_ms();
                    return Some(out);
                }
                Either::Right(_) => {
                    self.timer = None;
                    if now_ms() - self.last_activity_ms >= self.idle_ms {
                        return None;
                    }
                    // Activity since the timer was armed: wait for the rest of the period.
                }
            }
        }
    }
}

/// A one-shot `setTimeout` that wakes whichever task polled it last. (A response body is pulled
/// by a new task for each chunk; `worker::Delay` keeps the waker of its first poll, so a timer
/// kept across chunks would wake a finished task and a stall would go unnoticed.)
struct Timer {
    state: Rc<TimerState>,
    id: Option<i32>,
    _callback: Closure<dyn FnMut()>,
}

#[derive(Default)]
struct TimerState {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Timer {
    fn start(ms: f64) -> Timer {
        let state = Rc::new(TimerState::default());
        let on_fire = state.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            on_fire.fired.set(true);
            if let Some(waker) = on_fire.waker.borrow_mut().take() {
                waker.wake();
            }
        });
        let id = set_timeout(callback.as_ref().unchecked_ref(), ms.clamp(0.0, f64::from(i32::MAX)) as i32).ok();
        if id.is_none() {
            // No timer could be set: ending the stream is better than waiting on it forever.
            state.fired.set(true);
        }
        Timer { state, id, _callback: callback }
    }
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.fired.get() {
            return Poll::Ready(());
        }
        let mut waker = self.state.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if let (Some(id), false) = (self.id, self.state.fired.get()) {
            // Outside a request (a body freed by the runtime after its client left) the runtime
            // refuses timer calls; an uncaught throw there would abort the wasm instance.
            let _ = clear_timeout(id);
        }
    }
}
