//! No wake-up is lost between the handles that queue work for a connection
//! and its driver, under every interleaving loom finds.
//!
//! The model is a connection reduced to what the hand-off touches: two work
//! locks (the session's state and the outbox) holding counts of queued work,
//! handles that queue under one of them and then wake the driver, and a
//! driver that polls the way volley's does: starts, takes the work, and
//! sleeps holding both locks once it finds none. After everything has run,
//! the driver is polled once more only if it was woken; any work still left
//! then was lost.

#![cfg(loom)]

#[path = "../../volley/src/conn/wakeup.rs"]
#[allow(dead_code, unreachable_pub)]
mod wakeup;

use std::task::{Wake, Waker};

use loom::sync::{Arc, Mutex};
use loom::thread;
use wakeup::Wakeup;

struct Conn {
    state: Mutex<usize>,
    outbox: Mutex<usize>,
    wakeup: Wakeup,
    /// Work the driver has taken.
    done: Mutex<usize>,
}

/// The driver's waker: records that it was woken, as a runtime would by
/// scheduling the task. A lock rather than an atomic: loom 0.7 can let a
/// store slip between the halves of a concurrent swap (tokio-rs/loom#254),
/// which would fail this test for a reason that is not volley's.
struct Woken(Mutex<bool>);

impl Woken {
    /// Whether it was woken since last asked.
    fn take(&self) -> bool {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Wake for Woken {
    fn wake(self: std::sync::Arc<Self>) {
        *self.0.lock().unwrap() = true;
    }
}

impl Conn {
    fn new() -> Self {
        Self {
            state: Mutex::new(0),
            outbox: Mutex::new(0),
            wakeup: Wakeup::new(),
            done: Mutex::new(0),
        }
    }

    /// A handle queues work in the session's state (an event, an answer).
    fn queue_in_state(&self) {
        *self.state.lock().unwrap() += 1;
        self.wakeup.wake();
    }

    /// A handle queues a call in the outbox.
    fn queue_in_outbox(&self) {
        let mut outbox = self.outbox.lock().unwrap();
        *outbox += 1;
        self.wakeup.mark_queued();
        drop(outbox);
        self.wakeup.wake();
    }

    /// One poll of the driver, until it sleeps.
    fn poll(&self, waker: &Waker) {
        self.wakeup.driver_starts();
        loop {
            let mut state = self.state.lock().unwrap();
            let mut taken = std::mem::take(&mut *state);
            if self.wakeup.calls_queued() {
                let mut outbox = self.outbox.lock().unwrap();
                self.wakeup.clear_queued();
                taken += std::mem::take(&mut *outbox);
            }
            *self.done.lock().unwrap() += taken;
            // The last look for work, holding both locks, then sleep.
            let outbox = self.outbox.lock().unwrap();
            if *state == 0 && *outbox == 0 {
                self.wakeup.sleep(waker);
                return;
            }
        }
    }
}

/// Runs `handles` (each queues one piece of work its own way) against a
/// driver polled once, and again each time it is woken; checks that every
/// piece of work was taken.
fn check(handles: &'static [fn(&Conn)]) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let conn = Arc::new(Conn::new());
        let woken = std::sync::Arc::new(Woken(Mutex::new(false)));
        let waker = Waker::from(woken.clone());
        // The driver has run once and sleeps, as after a connection opens.
        conn.poll(&waker);

        let threads: Vec<_> = handles
            .iter()
            .map(|queue| {
                let conn = conn.clone();
                thread::spawn(move || queue(&conn))
            })
            .collect();
        // The driver runs beside the handles, whenever it is woken.
        let driver = {
            let (conn, woken) = (conn.clone(), woken.clone());
            thread::spawn(move || {
                for _ in 0..handles.len() {
                    if woken.take() {
                        conn.poll(&Waker::from(woken.clone()));
                    }
                    thread::yield_now();
                }
            })
        };
        for thread in threads {
            thread.join().unwrap();
        }
        driver.join().unwrap();
        // What a runtime would still do: poll a woken driver.
        if woken.take() {
            conn.poll(&waker);
        }
        let done = *conn.done.lock().unwrap();
        assert_eq!(
            done,
            handles.len(),
            "work was queued but the driver was never woken for it"
        );
    });
}

#[test]
fn work_in_the_state_is_never_lost() {
    check(&[Conn::queue_in_state, Conn::queue_in_state]);
}

#[test]
fn calls_in_the_outbox_are_never_lost() {
    check(&[Conn::queue_in_outbox, Conn::queue_in_outbox]);
}

#[test]
fn work_under_either_lock_is_never_lost() {
    check(&[Conn::queue_in_state, Conn::queue_in_outbox]);
}
