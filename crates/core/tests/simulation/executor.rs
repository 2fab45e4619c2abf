//! A single-threaded executor with a fake clock: tasks run until none can move, then the clock
//! jumps to the next timer. Deterministic: the same tasks and timers always run in one order.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// Time and the tasks waiting on it.
#[derive(Default)]
pub struct Clock {
    now: Cell<u64>,
    timers: RefCell<Vec<(u64, Waker)>>,
    spawned: RefCell<Vec<Task>>,
}

impl Clock {
    pub fn starting_at(ms: u64) -> Rc<Clock> {
        let clock = Clock::default();
        clock.now.set(ms);
        Rc::new(clock)
    }

    pub fn now(&self) -> u64 {
        self.now.get()
    }

    /// Runs `task` beside the others (a background settle: `waitUntil`).
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.spawned.borrow_mut().push(Box::pin(task));
    }

    pub fn sleep(self: &Rc<Self>, ms: u64) -> Sleep {
        Sleep { clock: self.clone(), at: self.now() + ms }
    }

    /// Lets every other ready task run once before going on (a round trip to the limiter).
    pub fn yield_now(&self) -> YieldNow {
        YieldNow(false)
    }

    /// Runs `tasks` (and whatever they spawn) to completion.
    pub fn run(&self, tasks: Vec<Task>) {
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let mut live: Vec<(Task, Arc<Flag>)> = Vec::new();
        let adopt = |live: &mut Vec<(Task, Arc<Flag>)>, tasks: Vec<Task>| {
            live.extend(tasks.into_iter().map(|t| (t, Arc::new(Flag(AtomicBool::new(true))))));
        };
        adopt(&mut live, tasks);
        loop {
            let mut moved = false;
            let mut i = 0;
            while i < live.len() {
                if live[i].1 .0.swap(false, Ordering::SeqCst) {
                    moved = true;
                    let waker = Waker::from(live[i].1.clone());
                    if live[i].0.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
                        drop(live.swap_remove(i));
                        continue;
                    }
                }
                i += 1;
            }
            let spawned = std::mem::take(&mut *self.spawned.borrow_mut());
            if !spawned.is_empty() {
                adopt(&mut live, spawned);
                continue;
            }
            if live.is_empty() {
                return;
            }
            if moved {
                continue;
            }
            // Nothing can move: the next timer's time has come.
            let mut timers = self.timers.borrow_mut();
            let next = timers.iter().map(|(at, _)| *at).min().expect("deadlock: tasks wait on nothing");
            self.now.set(next.max(self.now.get()));
            let (due, later): (Vec<_>, Vec<_>) = timers.drain(..).partition(|(at, _)| *at <= next);
            *timers = later;
            drop(timers);
            for (_, waker) in due {
                waker.wake();
            }
        }
    }
}

pub struct Sleep {
    clock: Rc<Clock>,
    at: u64,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.clock.now() >= self.at {
            return Poll::Ready(());
        }
        self.clock.timers.borrow_mut().push((self.at, cx.waker().clone()));
        Poll::Pending
    }
}

pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
