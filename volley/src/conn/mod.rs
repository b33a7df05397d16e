//! One connection's shared state, as the user's handles and the driver see it.
//!
//! The [`Session`] lives behind a mutex that is only ever held for a few
//! non-blocking steps (never across an `.await` or a user callback). A handle
//! that queues a call or an event wakes the driver, which writes everything
//! queued since its last write in one go. Calls made while the driver is busy
//! wait in an [`Outbox`] of their own instead of taking the session's lock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use std::time::{Duration, Instant};

use tokio::task::AbortHandle;
use volley_proto::{CallId, CallOutcome, GoodbyeCode, Message, RemoteId, SendError, Session, SessionEvent, Status};

use crate::clock::now;
use crate::completion::{Completer, Completion, Slots};
use crate::error::{EventError, FunctionError};
use crate::figures::{
    call_span, is_timed, kind_of_status, record_end, ConnCounters, ConnectionFigures, Figures, Tally,
};
use crate::locks::{lock, lock_for, Held};

mod handoff;
mod outbox;
mod output;
mod pending;
mod waiters;
mod wakeup;

use crate::payload::{recycle, Answer};
pub(crate) use handoff::Handoff;
use outbox::Queued;
pub(crate) use outbox::{Outbox, OutboxBatch};
pub(crate) use output::{Flush, Output, Writer, KEEP_BUFFER};
pub(crate) use pending::PendingCall;
use waiters::Waiters;
use wakeup::Wakeup;

/// Why a call could not be made.
fn call_error(error: SendError) -> FunctionError {
    match error {
        SendError::TooManyPending => FunctionError::Overloaded,
        SendError::TooLarge { len, max } => {
            tracing::warn!(len, max, "request over the frame limit not sent");
            FunctionError::TooLarge
        }
        _ => FunctionError::Disconnected,
    }
}

/// Answers the peer's call `id`; an answer too large for one frame is
/// logged here and reaches the caller as `TooLarge`. Returns whether
/// anything was queued.
pub(crate) fn respond(session: &mut Session, id: CallId, status: Status, payload: &[u8]) -> bool {
    // The session's own measure, so the log line and what it sends agree.
    let max = session.config().max_frame_len;
    if (Message::Response { id, status, payload }).body_len() > max {
        tracing::warn!(
            len = payload.len(),
            max,
            "answer over the frame limit not sent: the caller gets TooLarge"
        );
    }
    session.respond(id, status, payload)
}

/// A call that ended: where its caller waits, and how it ended.
pub(crate) type Ended = (Completer, CallOutcome);

/// Hands each ended call to its caller. Call without holding the lock.
pub(crate) fn deliver_ended(ended: &mut Vec<Ended>) {
    for (waiter, outcome) in ended.drain(..) {
        let result = match outcome {
            CallOutcome::Response {
                status: Status::Ok,
                payload,
            } => Ok(payload),
            CallOutcome::Response { status, payload } => Err(FunctionError::from_status(status, &payload)),
            CallOutcome::TimedOut => Err(FunctionError::Timeout),
            _ => Err(FunctionError::Disconnected),
        };
        // The caller may have just dropped its future; then nobody is waiting.
        waiter.complete(result);
    }
}

// In declaration order (`repr(C)`): after the two locks, what a call and
// a round of the driver read fill two cache lines (the counters' own hot
// part comes first in them); they spread over four.
#[repr(C)]
pub(crate) struct Conn {
    outbox: CacheLine<Mutex<Outbox>>,
    state: StateLine,
    /// When to wake the driver: its rules are in `wakeup.rs`. The work locks
    /// are `state` and `outbox`.
    wakeup: Wakeup,
    /// Our calls queued in the outbox or in flight in the session (calls the
    /// driver saw end are taken off once per round), checked against
    /// `max_calls`. Zero means a new call is alone.
    pending: AtomicUsize,
    next_seq: AtomicU64,
    max_calls: usize,
    max_payload: usize,
    /// The counters of every remote, shared with the endpoint, and this
    /// connection's own.
    pub(crate) figures: Arc<Figures>,
    /// Most bytes of calls the outbox holds (the session's
    /// `max_transmit_queue`): a caller faster than the connection is told
    /// `Overloaded` rather than buffered without end.
    max_queued_bytes: usize,
    /// A call was made while others were pending since the last call that
    /// found none: the caller makes its calls in bursts (see
    /// [`call`](Self::call)).
    bursty: AtomicBool,
    pub(crate) counters: ConnCounters,
    /// When the connection was made.
    pub(crate) opened: Instant,
}

/// Keeps its contents off the cache line of what precedes it: the handles'
/// reference count sits just before the state in the `Arc`, and a caller
/// cloning a handle would otherwise contend with the driver taking the lock.
#[repr(align(64))]
struct CacheLine<T>(T);

/// The session's lock, and beside it on the same cache line the flag the
/// driver reads just before taking the lock: with a thousand connections,
/// every line a driver's round touches is likely a cache miss, and the flag
/// on a line of its own was one more per round (cachegrind, `volley-bench
/// --profile invoke_many`).
#[repr(C, align(64))]
struct StateLine {
    /// The application asked to stop reading (backpressure from a slow
    /// consumer); the driver reads nothing until it is let go.
    reads_held: AtomicBool,
    lock: Mutex<ConnState>,
}

// In declaration order (`repr(C)`): what every round of the driver and
// every call touches first, the session (hot part first too) next, then
// what only async handlers use. Each cache line of a cold connection
// read is a miss, with a thousand of them taken in turn.
#[repr(C)]
pub(crate) struct ConnState {
    write_failed: bool,
    /// No transport: the session is away, or a resume replaced it and the
    /// new one awaits the driver.
    pub(crate) detached: bool,
    /// Our calls that ended or were dropped since the driver last told the
    /// outbox (which counts them as pending until then).
    settled: usize,
    /// Counts the transports this connection has had: a write or read on a
    /// transport of an older generation is stale and changes nothing.
    pub(crate) generation: u64,
    /// The transport a resume brought, for the driver to take (boxed: a
    /// connection that never resumes pays one pointer).
    pub(crate) handoff: Option<Box<Handoff>>,
    /// When the driver's timer is set to fire, as the driver last armed it.
    /// A call written without waking the driver must wake it if its deadline
    /// comes earlier.
    pub(crate) timer_armed: Option<Instant>,
    /// Callers waiting for our calls to end.
    waiters: Waiters,
    /// Installed by the driver. Whoever writes takes it out for the write
    /// itself (see [`Conn::flush`]), so `None` while the driver runs means
    /// someone is writing.
    output: Option<Output>,
    pub(crate) session: Session,
    /// Async handlers running for the peer's calls, by the peer's call id. The
    /// sequence number tells a finishing task whether the slot is still its
    /// own: after a cancel the peer may reuse the id for a new call.
    running: HashMap<CallId, (u64, AbortHandle)>,
    next_seq: u64,
}

impl ConnState {
    pub(crate) fn install_writer(&mut self, writer: Writer) {
        self.output = Some(Output {
            writer,
            buf: Vec::new(),
            written: 0,
            unflushed: false,
        });
    }

    pub(crate) fn take_writer(&mut self) -> Option<Writer> {
        self.output.take().map(|output| output.writer)
    }

    /// Lets the transport go (its write side now, its read side when the
    /// driver next looks): lost, or replaced by a resume.
    pub(crate) fn detach(&mut self) {
        self.output = None;
        self.write_failed = false;
        self.detached = true;
        self.generation += 1;
    }

    /// Whether everything taken from the session is written and flushed,
    /// and nobody is writing.
    pub(crate) fn output_idle(&self) -> bool {
        self.output.as_ref().is_some_and(Output::done)
    }

    /// Whether a driver's round has nothing to write: the session queued
    /// nothing, and the output is done or out with someone else who is
    /// writing (who takes what is queued before giving it back).
    pub(crate) fn nothing_to_write(&self) -> bool {
        !self.write_failed && self.session.transmit_len() == 0 && self.output.as_ref().is_none_or(Output::done)
    }

    /// Whether the transport failed on a write.
    pub(crate) fn write_failed(&self) -> bool {
        self.write_failed
    }

    /// A quiet connection gives its write buffers back.
    pub(crate) fn release_idle_buffers(&mut self) {
        self.session.release_idle_buffers();
        self.waiters.release_if_empty();
        if let Some(output) = self.output.as_mut().filter(|output| output.idle()) {
            output.buf = Vec::new();
            output.written = 0;
        }
    }

    /// Takes the session's events: the end of each of our calls is taken
    /// with its caller's channel right here, under the same lock, before the
    /// session can hand the freed id to a new call, and goes to `ended`;
    /// everything else is appended to `others`.
    ///
    /// The caller sends on `ended` after releasing the lock: waking a caller
    /// while holding it would let that caller, running on another worker,
    /// block on the lock at once.
    pub(crate) fn drain_events(&mut self, others: &mut Vec<SessionEvent>, ended: &mut Vec<Ended>) {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::CallEnded { id, outcome } => {
                    if let Some(waiter) = self.waiters.remove(id) {
                        self.settled += 1;
                        ended.push((waiter, outcome));
                    }
                }
                other => others.push(other),
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock("debug");
        f.debug_struct("Conn")
            .field("open", &state.session.is_open())
            .field("pending_calls", &state.session.pending_calls())
            .field("incoming_calls", &state.session.incoming_calls())
            .finish()
    }
}

impl Conn {
    pub(crate) fn new(session: Session, figures: Arc<Figures>) -> Arc<Self> {
        let outbox = Outbox {
            calls: Vec::new(),
            bytes: Vec::new(),
            closed: false,
            slots: Slots::default(),
        };
        Arc::new(Self {
            outbox: CacheLine(Mutex::new(outbox)),
            wakeup: Wakeup::new(),
            figures,
            counters: ConnCounters::default(),
            opened: now(),
            pending: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            max_calls: session.config().max_outgoing_calls,
            // Request framing (tag, id and remote) takes at most 11 bytes.
            max_payload: session.config().max_frame_len.saturating_sub(11),
            max_queued_bytes: session.config().max_transmit_queue,
            bursty: AtomicBool::new(false),
            state: StateLine {
                reads_held: AtomicBool::new(false),
                lock: Mutex::new(ConnState {
                    session,
                    output: None,
                    write_failed: false,
                    timer_armed: None,
                    waiters: Waiters::default(),
                    running: HashMap::new(),
                    next_seq: 0,
                    settled: 0,
                    generation: 0,
                    detached: false,
                    handoff: None,
                }),
            },
        })
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        lock(&self.outbox.0)
    }

    /// Wakes the driver, unless it is polling (it will find the work
    /// itself). Call after releasing the lock the work was queued under.
    /// Stops (`true`) or restarts reading the peer's input; returns whether
    /// this changed anything. Restarting wakes the driver, which reads what
    /// waited in the transport.
    pub(crate) fn hold_reads(&self, held: bool) -> bool {
        let changed = self.state.reads_held.swap(held, Ordering::AcqRel) != held;
        if changed && !held {
            self.wake_driver();
        }
        changed
    }

    /// Whether reading is held ([`hold_reads`](Self::hold_reads)).
    pub(crate) fn reads_held(&self) -> bool {
        self.state.reads_held.load(Ordering::Acquire)
    }

    pub(crate) fn wake_driver(&self) {
        self.wakeup.wake();
    }

    /// Gives the connection's driver a new transport to carry its session
    /// (resumed on it).
    pub(crate) fn hand_over(&self, handoff: Handoff) {
        self.lock("hand over a transport").handoff = Some(Box::new(handoff));
        self.wake_driver();
    }

    /// Whether calls wait in the outbox (a hint: read without its lock).
    pub(crate) fn calls_queued(&self) -> bool {
        self.wakeup.calls_queued()
    }

    /// Takes the calls the driver saw end (or dropped) off the pending count.
    pub(crate) fn uncount_ended_calls(&self, state: &mut ConnState) {
        let settled = std::mem::take(&mut state.settled);
        if settled > 0 {
            self.pending.fetch_sub(settled, Ordering::AcqRel);
        }
    }

    /// Keeps the result slot of a call its caller is done with, for the
    /// next call.
    pub(super) fn keep_slot(&self, done: Completion) {
        self.outbox().slots.keep(done, self.max_calls);
    }

    /// A quiet connection gives the outbox's buffers and its kept result
    /// slots back.
    pub(crate) fn release_outbox(&self) {
        let mut outbox = self.outbox();
        if outbox.calls.is_empty() {
            outbox.calls = Vec::new();
            outbox.bytes = Vec::new();
        }
        outbox.slots.release();
    }

    /// The driver is about to sleep: register its waker, unless work arrived
    /// since it last looked (then it must go round again; returns `false`).
    pub(crate) fn driver_sleeps(&self, state: &mut ConnState, waker: &Waker) -> bool {
        // Bytes queued while someone else writes are theirs to write: they
        // look again before giving the output back.
        let unwritten = state.session.transmit_len() > 0 && state.output.is_some();
        if unwritten || state.session.has_events() || state.session.has_datagrams() || state.handoff.is_some() {
            return false;
        }
        // A call made meanwhile with a deadline before the armed timer: the
        // timer must be moved first.
        let earlier = state.session.poll_timeout();
        if earlier.is_some_and(|deadline| state.timer_armed.is_none_or(|armed| deadline < armed)) {
            return false;
        }
        self.uncount_ended_calls(state);
        let outbox = self.outbox();
        if !outbox.calls.is_empty() {
            return false;
        }
        // Both work locks held, no work under either: see `wakeup.rs`.
        self.wakeup.sleep(waker);
        true
    }

    /// Moves the calls queued in the outbox into the session (the driver
    /// does this each round, holding the state's lock); returns whether there
    /// were any. Calls that cannot be made go to `batch.failed`.
    ///
    /// `starts`: the driver's first round of a poll; work queued from now on
    /// is its to find, so nobody needs to wake it.
    pub(crate) fn take_outbox(&self, state: &mut ConnState, batch: &mut OutboxBatch, starts: bool) -> bool {
        if starts {
            self.wakeup.driver_starts();
        }
        self.uncount_ended_calls(state);
        // Nothing to take: the lock can wait (`driver_sleeps` takes it before
        // sleeping, and sees any call queued meanwhile).
        if !state.session.is_closed() && !self.wakeup.calls_queued() {
            return false;
        }
        {
            let mut outbox = self.outbox();
            self.wakeup.clear_queued();
            outbox.closed |= state.session.is_closed();
            if outbox.calls.is_empty() {
                return false;
            }
            std::mem::swap(&mut outbox.calls, &mut batch.calls);
            std::mem::swap(&mut outbox.bytes, &mut batch.bytes);
        }
        let now = now();
        let mut start = 0;
        let mut tally = Tally::default();
        for Queued {
            remote,
            timeout,
            end,
            seq,
            waiter,
        } in batch.calls.drain(..)
        {
            let payload = &batch.bytes[start..end];
            start = end;
            tally.call_out(&self.figures, &self.counters, remote, payload.len());
            // Given up on while it was queued: never sent.
            if !waiter.claim() {
                state.settled += 1;
                continue;
            }
            match state.session.call(remote, payload, timeout, now) {
                Ok(id) => {
                    waiter.sent(id);
                    state.waiters.insert(id, seq, waiter);
                }
                Err(e) => {
                    state.settled += 1;
                    batch.failed.push((waiter, call_error(e)));
                }
            }
        }
        tally.flush(&self.figures, &self.counters);
        batch.bytes.clear();
        if batch.bytes.capacity() > KEEP_BUFFER {
            batch.bytes = Vec::new();
        }
        true
    }

    /// Takes the connection's lock, saying what for (a debug build logs a
    /// lock held too long with that purpose).
    pub(crate) fn lock(&self, purpose: &'static str) -> Held<'_, ConnState> {
        // Nothing panics while holding this lock except on a bug in volley;
        // recover the state rather than poisoning every other handle.
        lock_for(&self.state.lock, purpose)
    }

    /// Writes what the session has queued, as far as the transport takes
    /// it, and returns the lock with what happened.
    ///
    /// The lock is released for the write itself: a send on loopback TCP runs
    /// the receiver's network stack too and can take microseconds, which
    /// callers queueing their calls would spend waiting on the lock. The
    /// writer takes the output out of the state meanwhile; whoever finds it
    /// gone leaves their bytes in the session, and the writer takes them
    /// before giving the output back.
    pub(crate) fn flush<'a>(
        &'a self,
        mut state: Held<'a, ConnState>,
        cx: &mut Context<'_>,
    ) -> (Held<'a, ConnState>, Flush) {
        let mut wrote = false;
        loop {
            if state.write_failed {
                return (state, Flush::Failed);
            }
            if state.detached {
                return (state, Flush::Done { wrote });
            }
            let generation = state.generation;
            let ConnState { output, session, .. } = &mut *state;
            // Nothing to write, or someone else is writing.
            if !output.as_mut().is_some_and(|out| out.refill(session)) {
                return (state, Flush::Done { wrote });
            }
            let Some(mut out) = output.take() else {
                return (state, Flush::Done { wrote });
            };
            drop(state);
            let before = out.written;
            let result = out.write(cx);
            wrote |= out.written > before;
            state = self.lock("flush: give the output back");
            if state.generation != generation {
                // The transport was let go while this write ran: whatever
                // it did no longer matters.
                return (state, Flush::Done { wrote });
            }
            state.session.set_transport_backlog(out.buf.len() - out.written);
            state.output = Some(out);
            match result {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    state.write_failed = true;
                    state.session.handle_transport_closed(Some(e.to_string()));
                    return (state, Flush::Failed);
                }
                Poll::Pending => return (state, Flush::Blocked { wrote }),
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.lock("is_open").session.is_open()
    }

    /// Starts a call; the returned future resolves when it ends, and cancels
    /// it on the wire if dropped first. `waker`, if given, is woken when it
    /// ends, without the call being polled first ([`Slots::completion`]).
    pub(crate) fn call(
        self: Arc<Self>,
        remote: RemoteId,
        payload: &[u8],
        timeout: Duration,
        waker: Option<&Waker>,
    ) -> Result<PendingCall, FunctionError> {
        if payload.len() > self.max_payload {
            let (len, max) = (payload.len(), self.max_payload);
            return Err(call_error(SendError::TooLarge { len, max }));
        }
        let before = self.pending.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_calls {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(FunctionError::Overloaded);
        }
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        // A lone call on an idle connection goes into the session and is
        // written from here: no hand-off to the driver, which sequential
        // callers would pay on every call. Calls made in a burst wait in the
        // outbox for the driver, which writes them together. The first call
        // of a burst finds none pending too: written alone, it cost a write
        // of its own. So a caller seen making calls in bursts has its next
        // first call wait in the outbox with the rest (a caller that turns
        // sequential pays that once). 64 clients with 16 calls in flight
        // each, `volley-bench --profile many_clients`: 0.19 → 0.13 writes
        // per call, and 0.75–0.98 → 1.09–1.28 M calls/s in four runs.
        let lone = if before == 0 {
            // Read before written: this line is the driver's too.
            let bursty = self.bursty.load(Ordering::Relaxed);
            if bursty {
                self.bursty.store(false, Ordering::Relaxed);
            }
            !bursty
        } else {
            // Checked first: a pipelined caller would otherwise write the
            // shared flag at every call.
            if !self.bursty.load(Ordering::Relaxed) {
                self.bursty.store(true, Ordering::Relaxed);
            }
            false
        };
        let rx = if lone && !self.wakeup.driver_busy() {
            self.call_alone(remote, payload, timeout, seq, waker)?
        } else {
            let mut outbox = self.outbox();
            let refused = if outbox.closed {
                Some(FunctionError::Disconnected)
            } else if outbox.bytes.len() + payload.len() > self.max_queued_bytes {
                Some(FunctionError::Overloaded)
            } else {
                None
            };
            if let Some(error) = refused {
                drop(outbox);
                self.pending.fetch_sub(1, Ordering::AcqRel);
                return Err(error);
            }
            let (waiter, rx) = outbox.slots.completion(waker);
            outbox.bytes.extend_from_slice(payload);
            let end = outbox.bytes.len();
            outbox.calls.push(Queued {
                remote,
                timeout,
                end,
                seq,
                waiter,
            });
            self.wakeup.mark_queued();
            drop(outbox);
            self.wakeup.wake();
            rx
        };
        // Counted where it goes into the session: `call_alone`, or the
        // driver's `take_outbox` (one addition for a batch).
        let span = call_span(|| self.figures.name(remote), "out").map(Box::new);
        let started = (is_timed(seq) || span.is_some()).then(now);
        Ok(PendingCall {
            conn: self,
            seq,
            rx: Some(rx),
            done: false,
            remote,
            started,
            span,
        })
    }

    /// The lone call of [`call`](Self::call): straight into the session, and
    /// written at once if the driver's timer already covers its deadline.
    fn call_alone(
        &self,
        remote: RemoteId,
        payload: &[u8],
        timeout: Duration,
        seq: u64,
        waker: Option<&Waker>,
    ) -> Result<Completion, FunctionError> {
        // Its slot first: the state's lock is the driver's too.
        let (waiter, rx) = self.outbox().slots.completion(waker);
        let mut state = self.lock("lone call");
        let now = now();
        let id = match state.session.call(remote, payload, timeout, now) {
            Ok(id) => id,
            Err(e) => {
                drop(state);
                self.pending.fetch_sub(1, Ordering::AcqRel);
                return Err(call_error(e));
            }
        };
        // Its caller, this one, has not given it up: no claim.
        waiter.sent(id);
        state.waiters.insert(id, seq, waiter);
        let mut tally = Tally::default();
        tally.call_out(&self.figures, &self.counters, remote, payload.len());
        tally.flush(&self.figures, &self.counters);
        let mut wake = true;
        if state.output_idle() && state.timer_armed.is_some_and(|armed| armed <= now + timeout) {
            let flushed;
            (state, flushed) = crate::inline::unbudgeted(|cx| self.flush(state, cx));
            wake = flushed != (Flush::Done { wrote: true });
        }
        drop(state);
        if wake {
            self.wake_driver();
        }
        Ok(rx)
    }

    pub(crate) fn send_event(&self, remote: RemoteId, payload: &[u8]) -> Result<(), EventError> {
        self.lock("send event")
            .session
            .send_event(remote, payload)
            .map_err(|e| match e {
                SendError::TooLarge { len, max } => EventError::TooLarge { len, max },
                SendError::Dropped => EventError::Dropped,
                _ => EventError::Disconnected,
            })?;
        self.wake_driver();
        // Counted once it is queued.
        self.figures.event_sent(remote, payload.len());
        self.counters.event_out(&self.figures, remote);
        Ok(())
    }

    /// Runs an async handler for the peer's call `id` as its own task.
    pub(crate) fn spawn_handler(self: &Arc<Self>, id: CallId, handler: Pin<Box<dyn Future<Output = Answer> + Send>>) {
        let conn = self.clone();
        // Holding the lock while spawning: the task cannot finish (which takes
        // the lock) before its abort handle is recorded.
        let mut state = self.lock("spawn handler");
        let seq = state.next_seq();
        let task = tokio::spawn(async move {
            let answer = handler.await;
            let mut state = conn.lock("handler answers");
            let mut queued = false;
            if matches!(state.running.get(&id), Some((s, _)) if *s == seq) {
                state.running.remove(&id);
                queued = respond(&mut state.session, id, answer.0, &answer.1);
            }
            drop(state);
            if queued {
                conn.wake_driver();
            }
            recycle(answer.1);
        });
        state.running.insert(id, (seq, task.abort_handle()));
    }

    /// Stops the handler of the peer's call `id`, which the session answered.
    pub(crate) fn abort_handler(&self, id: CallId) {
        if let Some((_, task)) = self.lock("abort handler").running.remove(&id) {
            task.abort();
        }
    }

    /// Acts on the session from outside the driver, then wakes it.
    fn with_session(&self, f: impl FnOnce(&mut Session)) {
        f(&mut self.lock("act on the session").session);
        self.wake_driver();
    }

    // What the typed API asks of the session: only `conn/` touches it.

    /// The smoothed round-trip time, once a pong has come back.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        self.lock("rtt").session.rtt()
    }

    /// How much the round-trip time varies.
    pub(crate) fn rtt_jitter(&self) -> Option<Duration> {
        self.lock("rtt jitter").session.rtt_jitter()
    }

    /// Whether the session has closed (a connection being made has not).
    pub(crate) fn is_closed(&self) -> bool {
        self.lock("is_closed").session.is_closed()
    }

    /// The peer's calls still being handled here.
    pub(crate) fn incoming_calls(&self) -> usize {
        self.lock("incoming calls").session.incoming_calls()
    }

    /// Takes no new calls from the peer (answered `Unprocessed`), for a
    /// graceful shutdown; the ones in flight finish.
    pub(crate) fn drain(&self) {
        self.with_session(Session::drain);
    }

    /// Server: lets the client that said hello join as player `player`.
    /// Server: lets the client in, resumable with `token` if it asked and
    /// resume is on. Returns whether it is resumable.
    pub(crate) fn accept_resumable(&self, player: u64, token: volley_proto::ResumeToken) -> bool {
        let mut resumable = false;
        self.with_session(|session| resumable = session.accept_resumable(player, token));
        resumable
    }

    /// Client: the id the server gave this client's player, once welcomed.
    pub(crate) fn player(&self) -> Option<u64> {
        self.lock("player id").session.player()
    }

    /// Server: turns the client that said hello away, telling it why.
    pub(crate) fn refuse_hello(&self, code: volley_proto::RefuseCode, why: &str) {
        self.with_session(|session| session.refuse(code, why));
    }

    /// The peer's call of `remote` was answered `status`; it arrived at
    /// `started`, if it was timed. Records both in the call's `span`.
    pub(crate) fn answered(
        &self,
        remote: RemoteId,
        status: Status,
        started: Option<Instant>,
        span: &Option<tracing::Span>,
    ) {
        let took = started.map(|at| now().saturating_duration_since(at));
        self.figures.request_answered(remote, status, took);
        self.counters.ended(kind_of_status(status));
        record_end(span.as_ref(), kind_of_status(status), took);
    }

    /// This connection's figures now (the player's id and identity are the
    /// server's to fill).
    pub(crate) fn figures(&self) -> ConnectionFigures {
        let state = self.lock("figures");
        let session = &state.session;
        let traffic = session.traffic();
        let micros = |d: Duration| d.as_micros().try_into().unwrap_or(u64::MAX);
        let mut figures = ConnectionFigures {
            connected_ms: now()
                .saturating_duration_since(self.opened)
                .as_millis()
                .try_into()
                .unwrap_or(u64::MAX),
            rtt_us: session.rtt().map(micros),
            rtt_jitter_us: session.rtt_jitter().map(micros),
            frames_in: traffic.frames_in,
            frames_out: traffic.frames_out,
            datagrams_in: traffic.datagrams_in,
            datagrams_out: traffic.datagrams_out,
            bytes_in: traffic.bytes_in,
            bytes_out: traffic.bytes_out,
            calls_in_flight_in: session.incoming_calls(),
            calls_in_flight_out: session.pending_calls(),
            ..ConnectionFigures::default()
        };
        drop(state);
        self.counters.fill(&self.figures, &mut figures);
        figures
    }

    /// Says goodbye, written from here when the transport is free (as a lone
    /// call is), then wakes the driver to close the transport. A program
    /// that says goodbye and returns from `main` ends the runtime, and with
    /// it the driver, before the driver would have run: the goodbye is then
    /// already with the transport.
    pub(crate) fn close(&self, code: GoodbyeCode, message: &str) {
        let mut state = self.lock("say goodbye");
        state.session.close(code, message);
        if state.output_idle() {
            (state, _) = crate::inline::unbudgeted(|cx| self.flush(state, cx));
        }
        drop(state);
        self.wake_driver();
    }
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::{Conn, ConnCounters, ConnState, StateLine};

    const LINE: usize = 64;

    /// What a call and a driver's round read stay on few cache lines (see
    /// the comments on [`Conn`] and [`ConnState`]): a field added among
    /// them, or a type grown, shows here rather than as a slower room call
    /// or a bigger idle player.
    #[test]
    fn the_hot_fields_of_a_connection_stay_on_few_cache_lines() {
        let hot_start = offset_of!(Conn, wakeup);
        let hot_end = offset_of!(Conn, counters) + ConnCounters::HOT_LEN;
        assert_eq!(hot_start % LINE, 0, "the hot fields start a line");
        assert!(
            hot_end - hot_start <= 2 * LINE,
            "{} bytes over two lines",
            hot_end - hot_start
        );
        // The lock's line holds the flag, the lock, then the state: the
        // fields before the session and the session's hot part (at most 328
        // bytes, `volley-proto`'s own test) end within eight lines.
        let state_at = offset_of!(StateLine, lock) + 8;
        let hot_state_end = state_at + offset_of!(ConnState, session) + 328;
        assert!(hot_state_end <= 8 * LINE, "the hot state ends at byte {hot_state_end}");
        assert!(size_of::<Conn>() <= 1088, "{} bytes a connection", size_of::<Conn>());
    }
}
