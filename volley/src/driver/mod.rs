//! The connection driver: one task per connection that moves bytes between the
//! transport and the session, fires timers, and dispatches what the session
//! reports.
//!
//! Each wake-up loops: read everything available → fire due timers → dispatch
//! events (synchronous handlers run right here, no task hop) → write everything
//! queued in one write. It ends once the session has closed and its goodbye is
//! flushed (or [`CLOSE_LINGER`] has passed).

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::time::Sleep;
use volley_proto::{CallId, CloseReason, Status};

use crate::budget::ByteBudget;
use crate::clock::now;
use crate::conn::{deliver_ended, Conn, ConnState, Ended, Flush, Handoff, OutboxBatch, KEEP_BUFFER};
use crate::endpoint::{Endpoint, Outcome, Snapshot};
use crate::figures::Tally;
use crate::inline::poll_once;
use crate::middleware::BoxFuture;
use crate::payload::{recycle, Answer};

mod reader;
mod running;
use crate::transport::{Datagrams, ReadSide, Transport};
use reader::{Input, Reader};
pub(crate) use running::Running;

/// How long a closing connection may take to flush its goodbye and hear the
/// peer's close: 1 s.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Most bytes read (and dropped) from a peer while waiting for its close:
/// 64 KiB.
const CLOSE_DRAIN_LIMIT: usize = 64 * 1024;

/// Rounds of work before yielding to other tasks.
const MAX_ROUNDS: usize = 32;

/// The backstop: however the connection's task ends (a bug in volley
/// panicking in it, its runtime shutting down), the session is closed, every
/// call pending either way ends `Disconnected` at once (their deadlines lived
/// in this task), handlers still running are stopped, and the side is told
/// (the server removes the player and runs `on_player_removed`).
impl<S: Side> Drop for Driver<S> {
    fn drop(&mut self) {
        if self.told_closed {
            return;
        }
        // A second panic while unwinding would abort the process.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Usually the runtime shutting down with the connection open (a
            // panic has already been reported by the panic hook).
            tracing::debug!("connection task stopped before its session closed: closing it");
            let mut state = self.conn.lock("task ended");
            state
                .session
                .handle_transport_closed(Some("the connection's task ended".into()));
            // Nobody is left to carry a resume.
            state.session.end_away("the connection's task ended");
            self.conn.take_outbox(&mut state, &mut self.outbox, false);
            state.drain_events(&mut self.events, &mut self.ended);
            // The peer sees the transport close (the handles keep the state).
            let writer = state.take_writer();
            drop(state);
            drop(writer);
            self.outbox.deliver_failed();
            deliver_ended(&mut self.ended);
            for event in std::mem::take(&mut self.events) {
                match event {
                    volley_proto::SessionEvent::RequestCancelled { id } => self.conn.abort_handler(id),
                    volley_proto::SessionEvent::Closed { reason } => {
                        self.told_closed = true;
                        self.side.closed(reason);
                    }
                    _ => {}
                }
            }
        }));
    }
}

/// Whether the session is draining with none of the peer's calls left:
/// checked wherever answers reach the session in a round.
fn is_drained(state: &ConnState) -> bool {
    state.session.is_draining() && state.session.incoming_calls() == 0
}

/// What differs between the server's and the client's end of a connection.
pub(crate) trait Side: Send + 'static {
    /// What handlers receive about the peer.
    type Ctx: Clone + Send + Sync + 'static;
    fn endpoint(&self) -> &Endpoint<Self::Ctx>;
    fn ctx(&self) -> &Self::Ctx;
    /// Server: a client said hello with this token.
    fn hello(&mut self, conn: &Arc<Conn>, token: Bytes);
    /// The handshake finished.
    fn connected(&mut self);
    /// The session ended.
    fn closed(&mut self, reason: CloseReason);
    /// The session is draining and the peer's calls have all been answered
    /// (told after every round while it stays so).
    fn drained(&mut self) {}
    /// The connection was lost; the session waits for a resume.
    fn away(&mut self) {}
    /// The session resumed on a new connection.
    fn resumed(&mut self) {}
    /// Server: a resume arrived on this (new) connection. Returns the
    /// connection it resumed, which takes this one's transport; `None` if
    /// it was refused (this session says so and closes).
    fn resume_asked(
        &mut self,
        _conn: &Arc<Conn>,
        _token: volley_proto::ResumeToken,
        _received: u64,
    ) -> Option<Arc<Conn>> {
        None
    }
}

/// A transport's datagrams, with those on their way in and out (moved
/// across the lock in batches). Boxed: only QUIC and WebTransport have them,
/// and every other connection would carry the room.
struct DatagramLane {
    channel: Datagrams,
    /// What the channel gave: datagrams, or the peer breaking the
    /// transport's rules.
    arrived: Vec<std::io::Result<Bytes>>,
    to_send: Vec<Vec<u8>>,
}

impl DatagramLane {
    fn new(channel: Datagrams) -> Box<Self> {
        Box::new(Self {
            channel,
            arrived: Vec::new(),
            to_send: Vec::new(),
        })
    }
}

pub(crate) struct Driver<S: Side> {
    conn: Arc<Conn>,
    /// The transport's read side; its write side is in the connection state.
    transport: ReadSide,
    side: S,
    reader: Reader,
    /// Events taken from the session, dispatched without holding its lock.
    events: Vec<volley_proto::SessionEvent>,
    /// Calls that ended, handed to their callers without holding the lock.
    ended: Vec<Ended>,
    /// Calls taken from the connection's outbox.
    outbox: OutboxBatch,
    /// Answers of handlers that ran inline, given to the session in one lock
    /// per batch of requests: id, status and where the payload ends in
    /// `answer_bytes` (one buffer for the batch, so the payload buffers go
    /// back to their pool at once).
    answers: Vec<(CallId, Status, usize)>,
    answer_bytes: Vec<u8>,
    /// The endpoint's handlers and listeners, as last read.
    snapshot: Snapshot<S::Ctx>,
    /// The transport's datagrams, if it has them (QUIC, WebTransport).
    datagrams: Option<Box<DatagramLane>>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    /// The peer's events still in a middleware chain that waits, oldest
    /// first, polled by this task in order: a later event never overtakes an
    /// earlier one, at most `max_incoming_calls` wait (more are dropped), and
    /// they go when the connection does.
    events_in_chain: VecDeque<BoxFuture<()>>,
    max_events_in_chain: usize,
    /// Set once the session is closed: the deadline for flushing.
    linger: Option<Pin<Box<Sleep>>>,
    /// The session has closed; what is left is flushing its goodbye.
    closing: bool,
    /// The side was told the session closed.
    told_closed: bool,
    /// The generation of the transport this driver reads (see
    /// [`ConnState::generation`]).
    generation: u64,
    /// Whether it reads a transport at all (not while away).
    attached: bool,
    /// This connection's transport went to the connection it resumed: this
    /// driver ends without a word.
    handed_off: bool,
    budget: Option<ByteBudget>,
}

impl<S: Side> Driver<S> {
    pub(crate) fn new<T: Transport>(conn: Arc<Conn>, mut transport: T, side: S, budget: Option<ByteBudget>) -> Self {
        let datagrams = transport.take_datagrams();
        let (transport, writer) = transport.split();
        let max_events_in_chain;
        {
            let mut state = conn.lock("driver setup");
            max_events_in_chain = state.session.config().max_incoming_calls;
            state.install_writer(writer);
            if let Some(datagrams) = &datagrams {
                state.session.enable_datagrams(datagrams.max_size);
            }
        }
        Self {
            reader: Reader::new(budget),
            generation: 0,
            attached: true,
            handed_off: false,
            budget,
            conn,
            transport,
            side,
            events: Vec::new(),
            ended: Vec::new(),
            outbox: OutboxBatch::default(),
            answers: Vec::new(),
            answer_bytes: Vec::new(),
            snapshot: Snapshot::new(),
            datagrams: datagrams.map(DatagramLane::new),
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
            events_in_chain: VecDeque::new(),
            max_events_in_chain,
            linger: None,
            closing: false,
            told_closed: false,
        }
    }

    /// The connection's task: drives it until it ends, then closes it (see
    /// [`Running`]).
    pub(crate) fn run(self) -> Running<S> {
        Running::Driving(self)
    }

    /// [`close`](Self::close), owning the driver: the closing outlives the
    /// task's hold on it.
    async fn close_owned(mut self) {
        self.close().await;
    }

    /// The session has ended: shuts the write side down and drains what
    /// the peer still sends, within a linger.
    async fn close(&mut self) {
        // Best effort: the peer may already be gone.
        let writer = self.conn.lock("take the writer").take_writer();
        let Some(mut writer) = writer else { return };
        // One linger for all of the closing: shutting the write side down
        // writes too (TLS's close_notify, a WebSocket Close), which a peer
        // that stopped reading would hold up forever, and this task with it.
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            let _ = poll_fn(|cx| writer.as_mut().poll_shutdown(cx)).await;
            // Wait (briefly) for the peer to close its side too: a transport
            // torn down at once can discard what is still in flight, the
            // goodbye included (QUIC drops unacknowledged stream data when
            // the connection goes), and a socket closed with the peer's
            // bytes unread resets the connection (a WebSocket peer's Close
            // reply would meet a reset). Read until the end of the stream,
            // even after the session closed on a goodbye.
            if self.reader.ended {
                return;
            }
            // On the heap: an array here would sit in every connection's
            // task for its whole life.
            let mut rest = vec![0u8; 1024];
            // A peer closing in order sends little more (its goodbye, a
            // WebSocket Close); one still flooding is cut off here rather
            // than read for the whole linger.
            let mut left = CLOSE_DRAIN_LIMIT;
            while let Ok(n @ 1..) = self.transport.read(&mut rest).await {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        })
        .await;
    }

    /// One wake-up of the connection, in rounds of named steps:
    /// [`drive_input`](Self::drive_input) (no lock) →
    /// [`drive_session`](Self::drive_session) (one lock) → arm the timer →
    /// [`dispatch`](Self::dispatch) events and calls to the application →
    /// [`poll_write`](Self::poll_write) (or sleep, in the same lock) →
    /// [`drive_close`](Self::drive_close). One `keep_going` flag decides
    /// whether another round is due.
    fn poll_drive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut first = true;
        // Whether the last round could have left the session with work that
        // only the locked step finds (events, an earlier deadline).
        let mut settle_next = true;
        for _ in 0..MAX_ROUNDS {
            let (input, fired, read_at) = self.drive_input(cx, first);
            // One decision per round: did anything happen that needs another?
            // Input the transport has no more of (the read left this task's
            // waker with it) is done with in this round.
            let more_input = match input {
                Input::Nothing => false,
                Input::Data(_) => !self.reader.drained,
                Input::Eof | Input::Failed(_) => true,
            };
            let mut keep_going = more_input || fired || self.reader.frames_waiting || self.datagrams_arrived();
            // A round after a busy one that brought nothing in goes straight to
            // writing and sleeping: `driver_sleeps` sends it round again if
            // anything else needs the locked step.
            let quiet = !first
                && matches!(input, Input::Nothing)
                && !keep_going
                && !settle_next
                && !self.closing
                && !self.conn.calls_queued();
            let (closed, deadline, slept) = if quiet {
                (false, None, false)
            } else {
                self.drive_session(input, fired, read_at, std::mem::take(&mut first), &mut keep_going, cx)
            };
            if slept {
                // Asleep already: only our calls' ends are left to hand over.
                self.dispatch();
                return Poll::Pending;
            }
            // The session took at most its round's frames: the rest are due.
            keep_going |= self.reader.frames_waiting;
            if fired {
                self.release_idle_buffers();
            }
            keep_going |= self.arm_timer(deadline, cx);
            // What the dispatch and the write leave behind (calls queued
            // meanwhile, answers of handlers that ran elsewhere, a write
            // that could not finish) is found by `driver_sleeps`, under the
            // locks, or wakes this task: no round just in case.
            self.dispatch();
            if self.handed_off {
                return Poll::Ready(());
            }
            keep_going |= self.poll_events_in_chain(cx);
            if self.poll_write(cx, keep_going) {
                return Poll::Pending;
            }
            // The output drained: frames held back while it was full are due.
            keep_going |= self.reader.frames_waiting;
            if self.drive_close(closed, cx) {
                return Poll::Ready(());
            }
            if !keep_going
                && self
                    .conn
                    .driver_sleeps(&mut self.conn.lock("driver sleeps"), cx.waker())
            {
                return Poll::Pending;
            }
            settle_next = !keep_going;
        }
        // Plenty of work: let other connections run, then continue.
        self.conn
            .driver_sleeps(&mut self.conn.lock("driver yields"), cx.waker());
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Step 1, without the lock: what the transport has, whether the timer
    /// fired (once per poll: a timer that fires later wakes the task again),
    /// and the datagrams that arrived. Also returns the time it read, if it
    /// read the clock (the first round does, for the timer).
    fn drive_input(&mut self, cx: &mut Context<'_>, first: bool) -> (Input, bool, Option<Instant>) {
        // Held by the application: what the peer sends waits in the
        // transport, and the peer's writes stall once it is full. Letting go
        // wakes the driver.
        let held = self.conn.reads_held();
        let input = if held {
            Input::Nothing
        } else {
            self.reader.read(self.transport.as_mut(), cx)
        };
        let read_at = (first && self.timer_at.is_some()).then(now);
        let fired = read_at.is_some_and(|now| self.timer_due(now, cx));
        if !held {
            self.receive_datagrams(cx);
        }
        (input, fired, read_at)
    }

    /// Whether the armed timer has fired. tokio's timer is polled only once
    /// its deadline has come: it never fires before, and it still holds
    /// this task's waker from when it was armed, so a wake-up for I/O need
    /// not go through it (about 120 instructions a poll, two polls per
    /// sequential call).
    fn timer_due(&mut self, now: Instant, cx: &mut Context<'_>) -> bool {
        self.timer_at.is_some_and(|at| now >= at) && self.timer.as_mut().poll(cx).is_ready()
    }

    /// Step 2, in one lock: feed the session what came in and the timer,
    /// move the outbox's calls into it, take its events, and choose the next
    /// deadline. Returns whether the session closed, the deadline to arm,
    /// and whether the driver went to sleep right here (see
    /// [`sleeps_after_session`](Self::sleeps_after_session)).
    fn drive_session(
        &mut self,
        input: Input,
        fired: bool,
        read_at: Option<Instant>,
        first: bool,
        keep_going: &mut bool,
        cx: &mut Context<'_>,
    ) -> (bool, Option<Instant>, bool) {
        let mut state = self.conn.lock("driver round");
        // Read from a transport let go meanwhile: stale.
        let mut let_go = !(self.attached && state.generation == self.generation);
        let input = if let_go { Input::Nothing } else { input };
        self.reader.feed(&mut state, input, fired, read_at);
        // Away: the transport was lost, let it go. Not while resuming: the
        // transport is then the new one, awaiting the server's answer (a
        // wake-up before that answer, for a call or a timer, would drop it).
        if state.session.is_away() && !state.session.is_resuming() && !state.detached {
            state.detach();
            let_go = true;
        }
        let arrived = state.handoff.take().map(|handoff| {
            let Handoff {
                read,
                writer,
                datagrams,
                leftover,
            } = *handoff;
            state.install_writer(writer);
            state.detached = false;
            if let Some(datagrams) = &datagrams {
                state.session.enable_datagrams(datagrams.max_size);
            }
            (read, datagrams, leftover, state.generation)
        });
        let took_calls = self.conn.take_outbox(&mut state, &mut self.outbox, first);
        *keep_going |= took_calls;
        if let Some(lane) = self.datagrams.as_mut().filter(|lane| !lane.arrived.is_empty()) {
            let at = now();
            for arrival in lane.arrived.drain(..) {
                match arrival {
                    Ok(datagram) => state.session.handle_datagram(BytesMut::from(datagram), at),
                    Err(e) => state.session.transport_violation(e.to_string()),
                }
            }
        }
        state.drain_events(&mut self.events, &mut self.ended);
        self.conn.uncount_ended_calls(&mut state);
        if fired {
            self.timer_at = None;
        }
        // Decided under the lock, so a caller that writes its own call knows
        // whether the timer already covers the call's deadline.
        let arm = state
            .session
            .poll_timeout()
            .filter(|deadline| self.timer_at.is_none_or(|armed| *deadline < armed));
        if let Some(deadline) = arm {
            state.timer_armed = Some(deadline);
        } else if self.timer_at.is_none() {
            state.timer_armed = None;
        }
        let drained = is_drained(&state);
        let closed = state.session.is_closed();
        let slept = !*keep_going
            && !let_go
            && arrived.is_none()
            && arm.is_none()
            && !closed
            && self.sleeps_after_session(&mut state, cx);
        drop(state);
        // Only a round that took calls can have failed some: the batch is
        // not touched otherwise (with a thousand connections, every line a
        // round touches is likely a cache miss).
        if took_calls {
            self.outbox.deliver_failed();
        }
        if let_go {
            self.detach();
        }
        if let Some((read, datagrams, leftover, generation)) = arrived {
            self.attach(read, datagrams, leftover, generation);
            *keep_going = true;
        }
        if drained {
            self.side.drained();
        }
        (closed, arm, slept)
    }

    /// Whether the driver goes to sleep in the session's lock, skipping the
    /// write step and its lock: when the round leaves nothing to do but hand
    /// our calls' ends over (a round that took answers in). Its caller has
    /// checked that nothing came in that needs another round, no deadline
    /// needs arming and the session is open.
    ///
    /// With a thousand connections each lock is a cache miss or more: a
    /// room call's answers each came through a round of four locks, now
    /// three; so does every answer to a sequential call.
    fn sleeps_after_session(&self, state: &mut ConnState, cx: &mut Context<'_>) -> bool {
        self.events.is_empty()
            && self.events_in_chain.is_empty()
            && !self.closing
            && !self.reader.frames_waiting
            && !self.reader.paused
            && state.nothing_to_write()
            && self.conn.driver_sleeps(state, cx.waker())
    }

    /// Stops reading the transport: the session is away, or resumed on
    /// another.
    fn detach(&mut self) {
        if !self.attached {
            return;
        }
        self.attached = false;
        self.transport = Box::pin(tokio::io::empty());
        self.reader = Reader::new(self.budget);
        self.reader.done = true;
        self.datagrams = None;
    }

    /// Reads the transport a resume brought (its write side is already
    /// installed, under the lock).
    fn attach(&mut self, read: ReadSide, datagrams: Option<Datagrams>, leftover: BytesMut, generation: u64) {
        self.detach();
        self.generation = generation;
        self.attached = true;
        self.transport = read;
        self.reader = Reader::new(self.budget);
        self.reader.buf = leftover;
        self.reader.frames_waiting = !self.reader.buf.is_empty();
        self.datagrams = datagrams.map(DatagramLane::new);
    }

    /// Hands this connection's transport to `target`, whose session resumed
    /// on it; this driver then ends.
    fn hand_off(&mut self, target: &Conn) {
        let writer = self.conn.lock("hand off").take_writer();
        let Some(writer) = writer else { return };
        let handoff = Handoff {
            read: std::mem::replace(&mut self.transport, Box::pin(tokio::io::empty())),
            writer,
            datagrams: self.datagrams.take().map(|lane| lane.channel),
            leftover: std::mem::take(&mut self.reader.buf),
        };
        target.hand_over(handoff);
        self.handed_off = true;
        self.told_closed = true;
    }

    /// The last step of a round once the session has closed: drop the
    /// peer's events still in middleware and finish when the goodbye is
    /// flushed (or the linger is over). Returns whether the connection is done.
    fn drive_close(&mut self, closed: bool, cx: &mut Context<'_>) -> bool {
        self.closing |= closed;
        if !self.closing {
            return false;
        }
        self.events_in_chain.clear();
        let flushed = {
            let state = self.conn.lock("closing: flushed?");
            state.write_failed() || (state.output_idle() && state.session.transmit_len() == 0)
        };
        let linger = self
            .linger
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(CLOSE_LINGER)));
        flushed || linger.as_mut().poll(cx).is_ready()
    }

    /// Arms the sleep for `deadline` (chosen under the lock: the session's
    /// next deadline, if earlier than the armed one); returns whether it has
    /// already passed (another round is due).
    ///
    /// Every frame received moves the keep-alive deadline later, and every
    /// call adds one; re-registering the timer each time would cost a timer
    /// update per message (and can wake another worker thread). So the sleep
    /// is only moved earlier; when it fires early, the session finds nothing
    /// due and the sleep is re-armed for the real deadline.
    fn arm_timer(&mut self, deadline: Option<Instant>, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = deadline else {
            return false;
        };
        self.timer.as_mut().reset(deadline.into());
        self.timer_at = Some(deadline);
        // Polled once so it knows whom to wake.
        self.timer.as_mut().poll(cx).is_ready()
    }

    /// The timer fired: a quiet connection gives its read and answer buffers
    /// back (the write buffers went back in the same lock that fired the
    /// timer).
    fn release_idle_buffers(&mut self) {
        if self.reader.buf.is_empty() {
            self.reader.buf = BytesMut::new();
        }
        // Empty between batches.
        self.answers = Vec::new();
        self.answer_bytes = Vec::new();
        // Empty once dispatched (this runs before this round's dispatch).
        if self.events.is_empty() {
            self.events = Vec::new();
        }
        if self.ended.is_empty() {
            self.ended = Vec::new();
        }
        // Read again at the next message.
        self.snapshot = Snapshot::new();
        self.outbox.release();
        self.conn.release_outbox();
    }

    /// Hands ended calls to their callers and acts on the session's events
    /// outside its lock (handlers may call back into this connection).
    ///
    /// Handling an event may queue more (accepting a hello queues `Connected`);
    /// those are handled before anything is written, so a client that sees the
    /// welcome finds itself already listed by the server.
    fn dispatch(&mut self) {
        let mut events = std::mem::take(&mut self.events);
        loop {
            if !self.ended.is_empty() {
                deliver_ended(&mut self.ended);
            }
            if events.is_empty() {
                break;
            }
            let mut tally = Tally::default();
            for event in events.drain(..) {
                self.handle_event(event, &mut tally);
            }
            // Counted before the answers leave.
            tally.flush(&self.conn.figures, &self.conn.counters);
            let mut state = self.conn.lock("inline answers");
            let mut start = 0;
            for (id, status, end) in self.answers.drain(..) {
                // The driver writes what this queues: nobody to wake.
                crate::conn::respond(&mut state.session, id, status, &self.answer_bytes[start..end]);
                start = end;
            }
            state.drain_events(&mut events, &mut self.ended);
            self.conn.uncount_ended_calls(&mut state);
            let drained = is_drained(&state);
            drop(state);
            if drained {
                self.side.drained();
            }
            self.answer_bytes.clear();
            if self.answer_bytes.capacity() > KEEP_BUFFER {
                self.answer_bytes = Vec::new();
            }
        }
        self.events = events;
    }

    /// Acts on one of the session's events; the peer's calls are counted in
    /// `tally`.
    fn handle_event(&mut self, event: volley_proto::SessionEvent, tally: &mut Tally) {
        use volley_proto::SessionEvent as E;
        match event {
            E::Request { id, remote, payload } => {
                let (figures, counters) = (&self.conn.figures, &self.conn.counters);
                let timed = tally.call_in(figures, counters, remote, payload.len());
                let endpoint = self.side.endpoint();
                // Inside the connection's span, which names the peer.
                let span = crate::figures::call_span(|| endpoint.protocol.name(remote), "in");
                let timed = timed || span.is_some();
                let started = timed.then(now);
                let answer =
                    match endpoint.handle_request(&mut self.snapshot, self.side.ctx().clone(), remote, &payload) {
                        Outcome::Ready(answer) => answer,
                        Outcome::Pending(handler) => match poll_once(handler) {
                            Ok(answer) => answer,
                            Err(handler) => {
                                // Counted when it answers, or as cancelled
                                // when it is stopped first (dropped unanswered).
                                let mut unanswered = Unanswered {
                                    conn: Some(self.conn.clone()),
                                    remote,
                                    started,
                                    span,
                                };
                                let counted = futures_util::FutureExt::map(handler, move |answer| {
                                    if let Some(conn) = unanswered.conn.take() {
                                        conn.answered(remote, answer.0, started, &unanswered.span);
                                    }
                                    answer
                                });
                                return self.conn.spawn_handler(id, Box::pin(counted));
                            }
                        },
                        Outcome::Bad(reason) => {
                            endpoint.report_bad_request(self.side.ctx(), remote, reason);
                            (Status::BadRequest, Vec::new())
                        }
                    };
                if answer.0 == Status::Ok && !timed {
                    tally.answered_ok(&self.conn.figures, &self.conn.counters, remote);
                } else {
                    self.conn.answered(remote, answer.0, started, &span);
                }
                self.answer(id, answer);
            }
            E::Event { remote, payload } => {
                self.conn.figures.event_received(remote, payload.len());
                self.conn.counters.event_in(&self.conn.figures, remote);
                let behind = !self.events_in_chain.is_empty();
                let endpoint = self.side.endpoint();
                let Some(rest) = endpoint.handle_event(&mut self.snapshot, self.side.ctx(), remote, &payload, behind)
                else {
                    return;
                };
                if self.events_in_chain.len() >= self.max_events_in_chain {
                    let remote = endpoint.protocol.name(remote);
                    tracing::warn!(
                        remote,
                        "event dropped: too many of this peer's events wait in middleware"
                    );
                    return;
                }
                // Polled by `poll_events_in_chain` with this task's waker.
                self.events_in_chain.push_back(rest);
            }
            E::RequestCancelled { id } => self.conn.abort_handler(id),
            // Handed to callers while draining, under the session's lock.
            E::CallEnded { .. } => {}
            E::Hello { token } => self.side.hello(&self.conn, token),
            E::Connected => self.side.connected(),
            E::Away => self.side.away(),
            E::Resumed => self.side.resumed(),
            E::ResumeAsked { token, received } => {
                let conn = self.conn.clone();
                if let Some(target) = self.side.resume_asked(&conn, token, received) {
                    self.hand_off(&target);
                }
            }
            E::Closed { reason } => {
                self.told_closed = true;
                // Closed by something this round dispatched (a refusal made
                // right here): the round's close step must see it.
                self.closing = true;
                self.side.closed(reason);
            }
            _ => {}
        }
    }

    /// Runs the peer's events waiting in middleware, in order; returns
    /// whether any finished.
    fn poll_events_in_chain(&mut self, cx: &mut Context<'_>) -> bool {
        let mut any = false;
        while let Some(first) = self.events_in_chain.front_mut() {
            if first.as_mut().poll(cx).is_pending() {
                break;
            }
            self.events_in_chain.pop_front();
            any = true;
        }
        any
    }

    /// Keeps an inline handler's answer for the batch's lock.
    fn answer(&mut self, id: CallId, (status, payload): Answer) {
        self.answer_bytes.extend_from_slice(&payload);
        self.answers.push((id, status, self.answer_bytes.len()));
        recycle(payload);
    }

    /// Whether datagrams arrived that the session has not seen.
    fn datagrams_arrived(&self) -> bool {
        self.datagrams.as_ref().is_some_and(|lane| !lane.arrived.is_empty())
    }

    /// Takes the datagrams that have arrived, without waiting.
    fn receive_datagrams(&mut self, cx: &mut Context<'_>) {
        let Some(lane) = &mut self.datagrams else {
            return;
        };
        while lane.arrived.len() < 64 {
            match lane.channel.recv.as_mut().poll_next(cx) {
                Poll::Ready(Some(arrival)) => lane.arrived.push(arrival),
                // The connection is ending; the stream side will say so.
                Poll::Ready(None) | Poll::Pending => break,
            }
        }
    }

    /// Sends the unreliable events the session queued as datagrams; one that
    /// the transport refuses is lost, as a datagram may be.
    fn send_datagrams(&mut self) {
        let Some(lane) = &mut self.datagrams else {
            return;
        };
        for datagram in lane.to_send.drain(..) {
            if let Err(e) = (lane.channel.send)(Bytes::from(datagram)) {
                tracing::debug!(error = %e, "datagram not sent");
            }
        }
    }

    /// Writes what the session queued. When there is nothing to write and
    /// the round did nothing else, the driver goes to sleep in the same lock:
    /// returns whether it did.
    fn poll_write(&mut self, cx: &mut Context<'_>, busy: bool) -> bool {
        let mut state = self.conn.lock("driver writes");
        let busy = match &mut self.datagrams {
            Some(lane) => {
                lane.to_send
                    .extend(std::iter::from_fn(|| state.session.take_datagram()));
                busy || !lane.to_send.is_empty()
            }
            None => busy,
        };
        let (mut state, flushed) = self.conn.flush(state, cx);
        let resumed = self.reader.pause_if_backed_up(&state);
        let slept = self.sleep_if_idle(&mut state, flushed, cx, busy || resumed);
        drop(state);
        // Taken from the session before it could sleep (they made it busy).
        self.send_datagrams();
        slept
    }

    /// Whether the driver goes to sleep (in the same lock): when everything
    /// is written and the round did nothing else. A round that wrote sleeps
    /// here too, in the lock that gave the output back, rather than in a
    /// lock of its own at the end of the round.
    fn sleep_if_idle(&self, state: &mut ConnState, flushed: Flush, cx: &mut Context<'_>, busy: bool) -> bool {
        matches!(flushed, Flush::Done { .. })
            && !busy
            && !state.session.is_closed()
            && self.conn.driver_sleeps(state, cx.waker())
    }
}

/// A handler still running in its own task: counted as cancelled if it is
/// stopped (dropped) before it answers.
struct Unanswered {
    /// Taken when the handler answers.
    conn: Option<Arc<Conn>>,
    remote: volley_proto::RemoteId,
    started: Option<std::time::Instant>,
    span: Option<tracing::Span>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.answered(self.remote, Status::Cancelled, self.started, &self.span);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::remote::{ClientEvent, Protocol, ServerFn};
    use crate::{FunctionError, Server, ServerConfig};

    const SLOW: ServerFn<u64, u64> = ServerFn::new("Slow");
    const POKE: ClientEvent<()> = ClientEvent::new("Poke");

    /// A client side with a bug: it panics when asked for its context once
    /// `broken` is set, which ends the connection's task.
    struct Buggy {
        endpoint: Endpoint<()>,
        broken: Arc<AtomicBool>,
        closed: Arc<Mutex<Option<CloseReason>>>,
    }

    impl Side for Buggy {
        type Ctx = ();
        fn endpoint(&self) -> &Endpoint<()> {
            &self.endpoint
        }
        fn ctx(&self) -> &() {
            assert!(!self.broken.load(Ordering::SeqCst), "a bug in the driver");
            &()
        }
        fn hello(&mut self, _conn: &Arc<Conn>, _token: Bytes) {}
        fn connected(&mut self) {}
        fn closed(&mut self, reason: CloseReason) {
            *self.closed.lock().unwrap() = Some(reason);
        }
    }

    /// A round that only takes an answer in goes to sleep in the session's
    /// lock: it takes no lock of the write step. (With a thousand
    /// connections each lock is a cache miss or more; every answer to a
    /// call comes through such a round.)
    #[test]
    fn a_round_that_takes_an_answer_in_skips_the_write_step() {
        const ADD_ONE: ServerFn<u64, u64> = ServerFn::new("AddOne");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let protocol = Protocol::builder().remote(ADD_ONE).build();
            let server = Server::new(protocol.clone(), ServerConfig::default());
            server.on_request_sync(ADD_ONE, |_, n: u64| Ok(n + 1));
            let client = crate::Client::new(protocol, crate::ClientConfig::default());
            client.connect(server.connect_memory()).await.unwrap();
            for n in 0..10 {
                assert_eq!(client.invoke(ADD_ONE, n).await, Ok(n + 1));
            }
            // Every task of this runtime runs on this thread: the drivers'
            // locks are counted too.
            crate::locks::record_locks();
            const CALLS: u64 = 100;
            for n in 0..CALLS {
                assert_eq!(client.invoke(ADD_ONE, n).await, Ok(n + 1));
            }
            let taken = crate::locks::record_locks();
            let write_steps = taken.iter().filter(|purpose| **purpose == "driver writes").count();
            // The server's round that answers writes; the client's round
            // that takes the answer in does not go through the write step.
            assert!(
                write_steps as u64 <= CALLS + CALLS / 10,
                "{write_steps} write steps for {CALLS} calls"
            );
        });
    }

    /// Whatever ends a connection's task, its pending calls end at once and
    /// the side (the server's player list, the client's state) is told.
    #[tokio::test]
    async fn a_task_that_dies_ends_its_calls_and_closes_its_side() {
        let protocol = Protocol::builder().remote(SLOW).remote(POKE).build();
        let server = Server::new(protocol.clone(), ServerConfig::default());
        server.on_request(SLOW, |_, ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(ms)
        });
        let session = volley_proto::Session::client(
            volley_proto::SessionConfig::default(),
            protocol.table().clone(),
            b"",
            now(),
        );
        let endpoint = Endpoint::<()>::new(protocol.clone(), volley_proto::Direction::ToClient);
        let conn = Conn::new(session, endpoint.figures.clone());
        let (broken, closed) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(None)));
        let side = Buggy {
            endpoint: Endpoint::new(protocol.clone(), volley_proto::Direction::ToClient),
            broken: broken.clone(),
            closed: closed.clone(),
        };
        let task = tokio::spawn(Driver::new(conn.clone(), server.connect_memory(), side, None).run());
        while !conn.is_open() || server.player_count() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let id = protocol.table().id("Slow").unwrap();
        let payload = postcard::to_allocvec(&1000u64).unwrap();
        let call = conn.clone().call(id, &payload, Duration::from_secs(60), None).unwrap();
        broken.store(true, Ordering::SeqCst);
        server.fire_all(POKE, ()).unwrap();
        let started = tokio::time::Instant::now();
        assert!(task.await.unwrap_err().is_panic());
        assert_eq!(call.await.map(|_| ()), Err(FunctionError::Disconnected));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(*closed.lock().unwrap(), Some(CloseReason::TransportError(_))));
        assert!(!conn.is_open());
        for _ in 0..500 {
            if server.player_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the server still lists the player");
    }
}
