//! A single-threaded executor with a fake clock: tasks run until none can move, then the clock
//! jumps to the next timer. Deterministic: the same tasks and timers always run in one order.
//! Tasks may belong to an isolate: killing it drops them where they stand, as a process that
//! dies drops everything it was doing.

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
    /// Tasks spawned and not yet adopted, with the isolate they run in (`None`: none).
    spawned: RefCell<Vec<(Option<usize>, Task)>>,
    killed: RefCell<Vec<usize>>,
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

    /// Runs `task` beside the others, in no isolate (a message that left its isolate).
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        self.spawned.borrow_mut().push((None, Box::pin(task)));
    }

    /// Runs `task` beside the others, in isolate `isolate` (a background settle: `waitUntil`).
    pub fn spawn_in(&self, isolate: usize, task: impl Future<Output = ()> + 'static) {
        self.spawned.borrow_mut().push((Some(isolate), Box::pin(task)));
    }

    /// Kills isolate `isolate`: its tasks are dropped, and none of it runs again.
    pub fn kill(&self, isolate: usize) {
        self.killed.borrow_mut().push(isolate);
    }

    pub fn is_killed(&self, isolate: usize) -> bool {
        self.killed.borrow().contains(&isolate)
    }

    pub fn sleep(self: &Rc<Self>, ms: u64) -> Sleep {
        Sleep { clock: self.clone(), at: self.now() + ms }
    }

    /// Lets every other ready task run once before going on (a round trip to the limiter).
    pub fn yield_now(&self) -> YieldNow {
        YieldNow(false)
    }

    /// Runs `tasks` (and whatever they spawn) to completion, or until their isolate is killed.
    pub fn run(&self, tasks: Vec<(Option<usize>, Task)>) {
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        type Live = Vec<(Option<usize>, Task, Arc<Flag>)>;
        let mut live: Live = Vec::new();
        let adopt = |live: &mut Live, tasks: Vec<(Option<usize>, Task)>| {
            live.extend(tasks.into_iter().map(|(iso, t)| (iso, t, Arc::new(Flag(AtomicBool::new(true))))));
        };
        adopt(&mut live, tasks);
        loop {
            let mut moved = false;
            let mut i = 0;
            while i < live.len() {
                if live[i].0.is_some_and(|iso| self.is_killed(iso)) {
                    drop(live.swap_remove(i));
                    continue;
                }
                if live[i].2 .0.swap(false, Ordering::SeqCst) {
                    moved = true;
                    let waker = Waker::from(live[i].2.clone());
                    if live[i].1.as_mut().poll(&mut Context::from_waker(&waker)).is_ready() {
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
            // Nothing can move: the next timer's time has come (a killed task's timer too: it
            // wakes nothing).
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
