//! The read side of a connection: how much to read at a time, the peer's
//! receive budget, and the pause while the peer's output is at its limit.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncRead;
use tokio::time::Sleep;

use crate::budget::{ByteBudget, TokenBucket};
use crate::clock::now;
use crate::conn::{ConnState, KEEP_BUFFER};

/// Smallest read, 128 bytes: enough for the handshake and a few small
/// messages, so an idle connection holds little (each keep-alive's pong
/// brings a buffer back). Reads that fill the buffer double the next one, up
/// to [`MAX_READ_CHUNK`].
///
/// Empty buffers are all dropped when the session's timer fires (at least
/// every keep-alive interval).
const MIN_READ_CHUNK: usize = 128;
const MAX_READ_CHUNK: usize = 64 * 1024;
/// Most frames handed to the session in one round of the driver: the round
/// then answers and writes them before it takes more, so the peer starts on
/// the first answers while this side works on the rest. Without it, both
/// ends of a busy connection took turns (each read took all the other had
/// sent): one pipelined client used 1.1 of 2 cores. Measured with
/// `volley-bench --profile pipelined` (256 calls in flight): 16 and 32 both
/// gave about 1.5× the calls per second of no limit, 8 and 64 less.
pub(super) const FRAMES_PER_ROUND: usize = 32;
/// Spare room below which the read buffer grows before a read.
const MIN_SPARE: usize = 64;

/// What one read from the transport gave.
pub(super) enum Input {
    Nothing,
    Data(usize),
    Eof,
    Failed(String),
}

/// The read side's state, apart from the connection so both can be borrowed
/// at once.
pub(super) struct Reader {
    pub(super) buf: BytesMut,
    /// How much room the next read gets.
    pub(super) chunk: usize,
    pub(super) done: bool,
    /// The transport's stream ended (or failed): nothing more to read.
    pub(super) ended: bool,
    /// The peer's receive budget, if any, and the pause while it is spent.
    pub(super) budget: Option<(ByteBudget, TokenBucket)>,
    pub(super) throttle: Option<Pin<Box<Sleep>>>,
    /// The peer's unsent output is at its limit: nothing is read until it
    /// drains (each frame read could add an answer to it).
    pub(super) paused: bool,
    /// Frames wait in `buf` (the output drained after a pause, or a round
    /// took its [`FRAMES_PER_ROUND`]): another round is due, read or not.
    pub(super) frames_waiting: bool,
    /// The last read emptied the transport and left this task's waker with
    /// it: nothing more to read until woken.
    pub(super) drained: bool,
    /// The end a look after a short read found, for the next read.
    end_next: bool,
    /// The error a look after a short read found, for the next read.
    error_next: Option<std::io::Error>,
}

impl Reader {
    pub(super) fn new(budget: Option<ByteBudget>) -> Self {
        Self {
            buf: BytesMut::new(),
            chunk: MIN_READ_CHUNK,
            done: false,
            ended: false,
            budget: budget.map(|b| (b, TokenBucket::full(b.burst, now()))),
            throttle: None,
            paused: false,
            frames_waiting: false,
            drained: false,
            end_next: false,
            error_next: None,
        }
    }

    /// Reads what the transport has, without touching the session.
    pub(super) fn read(&mut self, mut transport: Pin<&mut (dyn AsyncRead + Send)>, cx: &mut Context<'_>) -> Input {
        self.drained = false;
        // Paused: the write that drains the output wakes the driver. Frames
        // waiting are taken first: reading on would let a peer that sends
        // faster than its frames are handled fill the buffer without bound.
        if self.done || self.paused || self.frames_waiting {
            return Input::Nothing;
        }
        if std::mem::take(&mut self.end_next) {
            return self.outcome(Poll::Ready(Ok(0)));
        }
        if let Some(error) = self.error_next.take() {
            return self.outcome(Poll::Ready(Err(error)));
        }
        if let Some(pause) = &mut self.throttle {
            if pause.as_mut().poll(cx).is_pending() {
                return Input::Nothing;
            }
            self.throttle = None;
        }
        // Only grow when the spare room is nearly gone: reserving while the
        // last frames' payloads are still held (a caller about to decode its
        // answer) would copy into a new buffer; a little later they are
        // dropped and the buffer is reclaimed in place.
        if self.buf.capacity() - self.buf.len() < MIN_SPARE {
            self.buf.reserve(self.chunk);
        }
        let room = self.buf.capacity() - self.buf.len();
        let first = tokio_util::io::poll_read_buf(transport.as_mut(), cx, &mut self.buf);
        let Poll::Ready(Ok(n @ 1..)) = first else {
            return self.outcome(first);
        };
        // A full read: more may be there, the next round reads on.
        if n == room {
            self.chunk = (self.chunk * 2).min(MAX_READ_CHUNK);
            return Input::Data(n);
        }
        self.chunk = MIN_READ_CHUNK.max(self.chunk / 2);
        Input::Data(n + self.look_again(transport, cx))
    }

    /// After a short read (the transport had no more just then), looks once
    /// more: usually `Pending`, which registers this task's waker (tokio
    /// answers without a system call once a short read has cleared its
    /// readiness), so the round can end asleep instead of going round again
    /// only to find nothing. Returns the bytes it read; an end or an error
    /// is kept for the next read.
    fn look_again(&mut self, transport: Pin<&mut (dyn AsyncRead + Send)>, cx: &mut Context<'_>) -> usize {
        // With no spare room the read would say 0, as at the end.
        if self.buf.capacity() == self.buf.len() {
            return 0;
        }
        match tokio_util::io::poll_read_buf(transport, cx, &mut self.buf) {
            Poll::Pending => {
                self.drained = true;
                0
            }
            Poll::Ready(Ok(n @ 1..)) => n,
            Poll::Ready(Ok(_)) => {
                self.end_next = true;
                0
            }
            Poll::Ready(Err(error)) => {
                self.error_next = Some(error);
                0
            }
        }
    }

    /// What a read's outcome means for the session.
    fn outcome(&mut self, read: Poll<std::io::Result<usize>>) -> Input {
        match read {
            Poll::Pending => Input::Nothing,
            Poll::Ready(Ok(0)) => {
                self.done = true;
                self.ended = true;
                Input::Eof
            }
            Poll::Ready(Ok(n)) => Input::Data(n),
            Poll::Ready(Err(e)) => {
                self.done = true;
                // Data the transport refused (a WebSocket text message): the
                // stream itself goes on, and the peer's close is still due.
                self.ended = e.kind() != std::io::ErrorKind::InvalidData;
                Input::Failed(e.to_string())
            }
        }
    }

    /// Hands what was read, and due timers, to the session (under its lock).
    /// `read_at`: the time, if the round has just read the clock.
    pub(super) fn feed(&mut self, state: &mut ConnState, input: Input, fired: bool, read_at: Option<Instant>) {
        let waiting = std::mem::take(&mut self.frames_waiting);
        if matches!(input, Input::Nothing) && !fired && !waiting {
            return;
        }
        let now = read_at.unwrap_or_else(now);
        match input {
            Input::Nothing if waiting => self.handle_frames(state, now),
            Input::Nothing => {}
            Input::Eof => state.session.handle_transport_closed(None),
            Input::Failed(error) => state.session.handle_transport_closed(Some(error)),
            Input::Data(n) => {
                if let Some((budget, bucket)) = &mut self.budget {
                    let wait = bucket.charge(n as f64, budget.per_second, budget.burst, now);
                    if !wait.is_zero() {
                        tracing::debug!(?wait, "over the receive budget: pausing reads");
                        self.throttle = Some(Box::pin(tokio::time::sleep(wait)));
                    }
                }
                self.handle_frames(state, now);
                if state.session.is_closed() {
                    self.done = true;
                }
                if self.buf.is_empty() && self.buf.capacity() > KEEP_BUFFER {
                    self.buf = BytesMut::new();
                }
            }
        }
        if fired {
            state.session.handle_timeout(now);
            state.release_idle_buffers();
        }
        self.pause_if_backed_up(state);
    }

    /// Hands the session the next batch of frames read; more left in the
    /// buffer are due in the next round.
    fn handle_frames(&mut self, state: &mut ConnState, now: Instant) {
        self.frames_waiting |= state.session.handle_input_up_to(&mut self.buf, now, FRAMES_PER_ROUND);
    }

    /// Pauses reading while the peer's output is at its limit; returns
    /// whether reading resumed (frames may wait in the buffer).
    pub(super) fn pause_if_backed_up(&mut self, state: &ConnState) -> bool {
        let paused = state.session.is_backed_up() && !state.session.is_closed();
        if paused && !self.paused {
            tracing::debug!(
                unsent = state.session.unsent_len(),
                "peer's output at its limit: pausing reads"
            );
        }
        let resumed = self.paused && !paused;
        self.paused = paused;
        self.frames_waiting |= resumed;
        resumed
    }
}
