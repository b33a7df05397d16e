//! The session state machine: one connection's protocol, without I/O.

use std::collections::VecDeque;

use rustc_hash::FxHashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::codec::{self, GoodbyeCode, Message, RefuseCode, Status, PROTOCOL_VERSION};
use crate::frame_bytes::FrameBytes;
use crate::remotes::{Direction, RemoteId, RemoteKind, RemoteTable};
use crate::replay::Replay;

/// Unreliable events waiting as datagrams before new ones are dropped.
const MAX_QUEUED_DATAGRAMS: usize = 256;

/// Identifies a call among the pending calls of the side that made it.
///
/// Each side numbers its own calls; a [`SessionEvent::Request`] carries the
/// peer's number, a [`SessionEvent::CallEnded`] one of ours.
pub type CallId = u32;

/// How long a player whose connection was lost is kept for its client to
/// resume it, where resume is on and not set otherwise: 5 s (a phone
/// switching networks, a laptop waking, a balancer dropping an idle
/// connection come back within it).
pub const DEFAULT_RESUME_GRACE: Duration = Duration::from_secs(5);

/// Limits and timers of a session. Every field is documented with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionConfig {
    /// Largest frame body accepted from the peer; a larger length prefix closes
    /// the connection. Default: 1 MiB.
    pub max_frame_len: usize,
    /// Time a new connection has to finish the handshake. Default: 5 s.
    pub handshake_timeout: Duration,
    /// The connection closes after this long without a whole frame from the
    /// peer. Default: 30 s.
    pub idle_timeout: Duration,
    /// A ping goes out after this long without a frame from the peer, and again
    /// every interval after, so a healthy but quiet peer stays connected.
    /// Default: 10 s.
    pub keep_alive_interval: Duration,
    /// Calls from the peer being handled at once; more are answered at once
    /// with an overload error (the caller sees `FunctionError::Overloaded`
    /// in `volley`). Default: 64.
    pub max_incoming_calls: usize,
    /// Calls to the peer awaiting an answer at once, including timed-out calls
    /// whose answer has not arrived yet; more fail at once, unsent (an
    /// overload error: `FunctionError::Overloaded` in `volley`). Default: 64.
    pub max_outgoing_calls: usize,
    /// Bytes for the peer not yet written, whoever queued them (answers,
    /// pongs, automatic refusals, events): while this many wait, nothing more
    /// is read from the peer; a peer still backed up at the idle timeout, or
    /// pushed past the limit by our own events, is disconnected as too slow.
    /// Default: 1 MiB.
    pub max_transmit_queue: usize,
    /// Largest payload of an unreliable event, refused at send time: small
    /// enough for one QUIC datagram on any path, so code behaves the same on
    /// every transport. Default: 1,200 bytes.
    pub max_unreliable_len: usize,
    /// On a stream transport, an unreliable event is dropped rather than
    /// queued when more than this many bytes already wait to be written, so
    /// it never waits behind reliable traffic. Default: 16 KiB.
    pub unreliable_backlog: usize,
    /// How long a connection lost without a goodbye may be resumed: the
    /// session waits that long, calls and all, for the peer to come back
    /// ([`Session::resume`]). Zero turns resume off. Default: zero (the
    /// `volley` crate's server and client use [`DEFAULT_RESUME_GRACE`]).
    pub resume_grace: Duration,
    /// Bytes of sent frames kept until the peer acknowledges them, for a
    /// resume; past it, the player can no longer be resumed (and, while
    /// away, is let go). Default: 1 MiB.
    pub resume_buffer: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            max_frame_len: codec::DEFAULT_MAX_FRAME_LEN,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            keep_alive_interval: Duration::from_secs(10),
            max_incoming_calls: 64,
            max_outgoing_calls: 64,
            max_transmit_queue: 1 << 20,
            max_unreliable_len: 1200,
            unreliable_backlog: 16 * 1024,
            resume_grace: Duration::ZERO,
            resume_buffer: 1 << 20,
        }
    }
}

/// A setting that cannot work, found by [`SessionConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {problem}")]
pub struct ConfigError {
    /// The setting, as its field is named.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl ConfigError {
    /// `field` is wrong in the way `problem` says.
    pub fn new(field: &'static str, problem: &'static str) -> Self {
        Self { field, problem }
    }

    /// The first of `checks` (whether wrong, the field, the problem) that
    /// is wrong, as an error.
    pub fn first_of(checks: impl IntoIterator<Item = (bool, &'static str, &'static str)>) -> Result<(), Self> {
        match checks.into_iter().find(|(wrong, ..)| *wrong) {
            Some((_, field, problem)) => Err(Self::new(field, problem)),
            None => Ok(()),
        }
    }
}

/// Largest [`SessionConfig::max_frame_len`] accepted: 1 GiB.
pub const MAX_FRAME_LEN_LIMIT: usize = 1 << 30;

impl SessionConfig {
    /// Checks that every setting can work. Refused: a `max_frame_len` under
    /// 64 bytes (a hello with a short token must fit) or over
    /// [`MAX_FRAME_LEN_LIMIT`]; a zero handshake timeout, idle timeout or
    /// keep-alive interval; a keep-alive interval not shorter than the idle
    /// timeout (a quiet, healthy peer would be dropped); zero calls either
    /// way; a zero `max_transmit_queue` or `max_unreliable_len`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let checks = [
            (self.max_frame_len < 64, "max_frame_len", "is under 64 bytes"),
            (
                self.max_frame_len > MAX_FRAME_LEN_LIMIT,
                "max_frame_len",
                "is over 1 GiB",
            ),
            (self.handshake_timeout.is_zero(), "handshake_timeout", "is zero"),
            (self.idle_timeout.is_zero(), "idle_timeout", "is zero"),
            (self.keep_alive_interval.is_zero(), "keep_alive_interval", "is zero"),
            (
                self.keep_alive_interval >= self.idle_timeout,
                "keep_alive_interval",
                "is not shorter than idle_timeout",
            ),
            (self.max_incoming_calls == 0, "max_incoming_calls", "is zero"),
            (self.max_outgoing_calls == 0, "max_outgoing_calls", "is zero"),
            (self.max_transmit_queue == 0, "max_transmit_queue", "is zero"),
            (self.max_unreliable_len == 0, "max_unreliable_len", "is zero"),
        ];
        ConfigError::first_of(checks)
    }

    /// Sets [`SessionConfig::resume_grace`] (zero: resume off).
    pub fn with_resume_grace(mut self, grace: Duration) -> Self {
        self.resume_grace = grace;
        self
    }

    /// Sets [`SessionConfig::resume_buffer`].
    pub fn with_resume_buffer(mut self, bytes: usize) -> Self {
        self.resume_buffer = bytes;
        self
    }

    /// Sets [`SessionConfig::max_frame_len`].
    pub fn with_max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame_len = bytes;
        self
    }
    /// Sets [`SessionConfig::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// Sets [`SessionConfig::idle_timeout`].
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Sets [`SessionConfig::keep_alive_interval`].
    pub fn with_keep_alive_interval(mut self, interval: Duration) -> Self {
        self.keep_alive_interval = interval;
        self
    }
    /// Sets [`SessionConfig::max_incoming_calls`].
    pub fn with_max_incoming_calls(mut self, calls: usize) -> Self {
        self.max_incoming_calls = calls;
        self
    }
    /// Sets [`SessionConfig::max_outgoing_calls`].
    pub fn with_max_outgoing_calls(mut self, calls: usize) -> Self {
        self.max_outgoing_calls = calls;
        self
    }
    /// Sets [`SessionConfig::max_transmit_queue`].
    pub fn with_max_transmit_queue(mut self, bytes: usize) -> Self {
        self.max_transmit_queue = bytes;
        self
    }
    /// Sets [`SessionConfig::max_unreliable_len`].
    pub fn with_max_unreliable_len(mut self, bytes: usize) -> Self {
        self.max_unreliable_len = bytes;
        self
    }
    /// Sets [`SessionConfig::unreliable_backlog`].
    pub fn with_unreliable_backlog(mut self, bytes: usize) -> Self {
        self.unreliable_backlog = bytes;
        self
    }
}

/// Why a connection ended. Each connection ends once, for one reason (in
/// `volley`: given to `on_disconnect`, `on_player_removed`, returned by
/// `closed()`; here delivered as [`SessionEvent::Closed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// This side closed it, telling the peer why: a kick, a disconnect, a
    /// dropped client or a server shutting down (`GoodbyeCode::ShuttingDown`).
    #[error("closed locally ({code:?}): {message}")]
    Local {
        /// The code sent to the peer.
        code: GoodbyeCode,
        /// The message sent to the peer.
        message: String,
    },
    /// The peer said goodbye.
    #[error("closed by peer ({code:?}): {message}")]
    Remote {
        /// The peer's code.
        code: GoodbyeCode,
        /// The peer's message.
        message: String,
    },
    /// The server refused this client's hello.
    #[error("refused by server ({code:?}): {message}")]
    Refused {
        /// Why, for programs.
        code: RefuseCode,
        /// Why, for people.
        message: String,
    },
    /// This server refused the client's hello.
    #[error("refused the client ({code:?}): {message}")]
    RefusedPeer {
        /// Why, for programs.
        code: RefuseCode,
        /// Why, for people.
        message: String,
    },
    /// The handshake did not finish within [`SessionConfig::handshake_timeout`].
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Nothing arrived for [`SessionConfig::idle_timeout`].
    #[error("peer idle for too long")]
    IdleTimeout,
    /// The peer sent something the protocol forbids.
    #[error("protocol violation: {0}")]
    ProtocolViolation(String),
    /// The peer let more than [`SessionConfig::max_transmit_queue`] bytes pile up.
    #[error("peer does not read fast enough")]
    PeerTooSlow,
    /// The transport ended without a goodbye.
    #[error("connection lost")]
    TransportClosed,
    /// The transport failed.
    #[error("transport error: {0}")]
    TransportError(String),
    /// The connection was lost and not resumed: the grace period passed, or
    /// the resume buffer filled up while the peer was away.
    #[error("connection lost and not resumed: {0}")]
    NotResumed(String),
}

/// How one of our calls ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The peer answered.
    Response {
        /// How the call ended at the peer.
        status: Status,
        /// The encoded result, or the rejection message.
        payload: FrameBytes,
    },
    /// The deadline passed first. The peer was sent a cancel; its answer, if
    /// one still comes, is dropped.
    TimedOut,
    /// The session closed first.
    Disconnected,
}

/// Something the application must act on, from [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// Server only: a hello with the right version and remotes arrived. Answer
    /// with [`Session::accept`] or [`Session::refuse`].
    Hello {
        /// The client's credentials.
        token: Bytes,
    },
    /// The handshake finished; calls and events may flow.
    Connected,
    /// The peer fired an event.
    Event {
        /// Which remote (checked: an event the peer may fire at us).
        remote: RemoteId,
        /// Its encoded argument.
        payload: FrameBytes,
    },
    /// The peer called a function. Answer with [`Session::respond`].
    Request {
        /// The peer's call id.
        id: CallId,
        /// Which remote (checked: a function the peer may call on us).
        remote: RemoteId,
        /// Its encoded argument.
        payload: FrameBytes,
    },
    /// The peer no longer wants the answer to request `id`, or the session is
    /// closing: stop its handler. The session already answered it.
    RequestCancelled {
        /// The peer's call id.
        id: CallId,
    },
    /// One of our calls ended.
    CallEnded {
        /// Our call id, from [`Session::call`].
        id: CallId,
        /// How.
        outcome: CallOutcome,
    },
    /// The connection was lost, and the session waits for the peer to
    /// resume it (within [`SessionConfig::resume_grace`]); calls stay
    /// pending and what is sent meanwhile is kept.
    Away,
    /// Server only: a resume with the right version and remotes arrived on a
    /// new connection. Find the session the token belongs to and call its
    /// [`Session::resume`]; refuse this one with
    /// [`RefuseCode::ResumeRefused`] if there is none.
    ResumeAsked {
        /// The token the client presented.
        token: crate::ResumeToken,
        /// How many of the server's numbered frames the client processed.
        received: u64,
    },
    /// The peer is back on a new connection; nothing was lost.
    Resumed,
    /// The session ended; nothing else follows.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a call or event could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The handshake has not finished, or the session is closed.
    #[error("session is not open")]
    NotOpen,
    /// [`SessionConfig::max_outgoing_calls`] calls are already pending.
    #[error("too many calls pending")]
    TooManyPending,
    /// The remote is not one this side may call or fire.
    #[error("remote {0} cannot be sent from this side")]
    WrongRemote(RemoteId),
    /// An unreliable event was dropped: more than
    /// [`SessionConfig::unreliable_backlog`] bytes were waiting to be written.
    #[error("unreliable event dropped: the connection is backed up")]
    Dropped,
    /// The frame would exceed [`SessionConfig::max_frame_len`] (which the peer
    /// is assumed to share), or an unreliable event's payload would exceed
    /// [`SessionConfig::max_unreliable_len`].
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded frame body length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Which end of the connection a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepted the connection; answers the hello.
    Server,
    /// Opened the connection; sends the hello.
    Client,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Client: hello sent, waiting for welcome or refuse.
    HelloSent,
    /// Server: waiting for the client's hello.
    AwaitingHello,
    /// Server: hello passed the checks; waiting for `accept` or `refuse`.
    Authenticating,
    Open,
    /// Resumable, and its connection lost: waiting for the peer to resume.
    Away,
    /// Client: resume sent on a new connection, waiting for resumed or refuse.
    Resuming,
    Closed,
}

/// A slot in the table of our calls; the index is the call id.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Free, and the next free id (the free ids form a list through the
    /// table itself: see `Session::free_head`).
    Free {
        next: Option<CallId>,
    },
    Waiting {
        deadline: Instant,
    },
    /// Timed out or cancelled: the peer still owes an answer, which will be
    /// dropped. The id stays taken until then, so a late answer can never be
    /// mistaken for the answer to a newer call.
    Abandoned,
    /// Answered; the id is freed when the application takes the
    /// [`SessionEvent::CallEnded`] from `poll_event`, so it is never handed to
    /// a new call while the old call's end is still on its way to the caller.
    Ended,
}

/// What crossed a session so far: whole frames (datagrams included) and
/// their bytes, framing included, each way. Counted as frames are decoded and
/// queued, so bytes queued but not yet written count as out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Traffic {
    /// Frames received.
    pub frames_in: u64,
    /// Frames queued to send.
    pub frames_out: u64,
    /// Bytes of the frames received.
    pub bytes_in: u64,
    /// Bytes of the frames queued to send.
    pub bytes_out: u64,
    /// Of the frames received, those that came as datagrams.
    pub datagrams_in: u64,
    /// Of the frames queued to send, those queued as datagrams.
    pub datagrams_out: u64,
}

/// One connection's protocol state: handshake, calls both ways, deadlines,
/// keep-alive and limits. No I/O, no clock, no async.
///
/// The application owns the transport and the clock and drives a session by
/// calling, in a loop:
///
/// 1. [`handle_input`](Self::handle_input) with bytes read from the transport,
///    and [`handle_transport_closed`](Self::handle_transport_closed) when it ends;
/// 2. [`handle_timeout`](Self::handle_timeout) once the instant from
///    [`poll_timeout`](Self::poll_timeout) has passed;
/// 3. [`poll_event`](Self::poll_event) until it returns `None`, acting on each
///    event, and the commands ([`call`](Self::call), [`respond`](Self::respond),
///    [`send_event`](Self::send_event), [`cancel`](Self::cancel),
///    [`accept`](Self::accept), [`close`](Self::close), …) whenever it likes;
/// 4. [`take_transmit`](Self::take_transmit) and write those bytes to the
///    transport. Everything queued between two writes goes out in one write.
///
/// Time is passed in as `now`. After [`SessionEvent::Closed`] the session
/// only holds bytes still to transmit (a goodbye, at most) and ignores input.
#[derive(Debug)]
// In declaration order (`repr(C)`), what a call, an answer or a request
// touches first, then the rest: with a thousand connections each round
// of a driver finds its session cold, and a cache line read is one miss
// whatever it holds. The hot part fits in six lines where it spread over
// all eight (`volley-bench --profile invoke_many` under cachegrind).
#[repr(C)]
pub struct Session {
    state: State,
    role: Role,
    /// Client: the frame after the welcome decides whether the server made
    /// the player resumable (a resume token) or not.
    token_expected: bool,
    /// No new requests from the peer are taken (shutting down): each is
    /// answered [`Status::Unprocessed`] at once.
    draining: bool,
    ping_seq: u32,
    /// Shared by a server's sessions (one per player) rather than copied.
    config: Arc<SessionConfig>,
    remotes: Arc<RemoteTable>,
    /// What a resumable session keeps for a resume (boxed: a session
    /// without resume pays one pointer).
    replay: Option<Box<Replay>>,
    /// Bytes the transport took ([`take_transmit`](Self::take_transmit)) but
    /// has not written yet, as it last reported
    /// ([`set_transport_backlog`](Self::set_transport_backlog)). Counted with
    /// `transmit` against `max_transmit_queue`.
    taken: usize,
    /// Calls that are not [`Slot::Free`].
    calls_taken: usize,
    /// Encoded frames not yet taken by the transport.
    transmit: Vec<u8>,
    /// Our calls, indexed by call id.
    calls: Vec<Slot>,
    /// The free call id freed last, whose slot names the one freed before it:
    /// reusing them keeps ids small (one byte on the wire while fewer than 128
    /// calls are pending). Kept in the table rather than in a list of its
    /// own: the table's line is read anyway, the list's was one more miss at
    /// each call and each answer of a cold connection.
    free_head: Option<CallId>,
    /// Deadlines of waiting calls, sorted by deadline (equal ones in the
    /// order the calls were made). At most `max_outgoing_calls` long, and
    /// most calls share a timeout so inserts land at the back: a sorted deque
    /// beats a tree here and allocates nothing once warm.
    deadlines: VecDeque<(Instant, CallId)>,
    events: VecDeque<SessionEvent>,
    /// The peer's calls we are handling. A fast, unkeyed hash: the peer
    /// picks these ids and could make them collide, but the set never holds
    /// more than `max_incoming_calls`, so the worst case stays a short scan.
    incoming: FxHashSet<CallId>,
    /// Encoded unreliable events waiting to go out as datagrams.
    datagrams: VecDeque<Vec<u8>>,
    traffic: Traffic,
    /// The last `now` passed in, for commands that take none.
    last_now: Instant,
    last_received: Instant,
    /// When the next ping goes out: every keep-alive interval while open,
    /// busy or not, so the round-trip time stays measured.
    next_ping: Instant,
    // ---- the rest: handshake, keep-alive, datagrams' limit, resume ----
    handshake_deadline: Instant,
    /// While away, when the grace period ends.
    away_until: Instant,
    /// The ping awaiting its pong, and when it went out.
    ping_sent: Option<(u32, Instant)>,
    /// Smoothed round-trip time and its variation (RFC 6298), once a pong
    /// has come back.
    rtt: Option<(Duration, Duration)>,
    /// Largest datagram the transport takes, if it has datagrams: unreliable
    /// events then go as datagrams instead of on the stream.
    datagram_limit: Option<usize>,
    /// Client: the id the server gave this client's player, from Welcome.
    player: Option<u64>,
    /// Unreliable events dropped because the output was backed up.
    unreliable_dropped: u64,
    /// Server: the client asked to be resumable (an ack right after its
    /// hello).
    resume_asked: bool,
}

impl Session {
    /// A client session; its hello is queued at once.
    pub fn client(
        config: impl Into<Arc<SessionConfig>>,
        remotes: Arc<RemoteTable>,
        token: &[u8],
        now: Instant,
    ) -> Self {
        let mut session = Self::new(Role::Client, State::HelloSent, config.into(), remotes, now);
        session.queue(&Message::Hello {
            version: PROTOCOL_VERSION,
            remotes_hash: session.remotes.hash(),
            token,
        });
        if session.resume_on() {
            // Asks the server to make the player resumable.
            session.queue(&Message::<&[u8]>::Ack { received: 0 });
        }
        session
    }

    /// A server session, waiting for the client's hello.
    pub fn server(config: impl Into<Arc<SessionConfig>>, remotes: Arc<RemoteTable>, now: Instant) -> Self {
        Self::new(Role::Server, State::AwaitingHello, config.into(), remotes, now)
    }

    fn new(role: Role, state: State, config: Arc<SessionConfig>, remotes: Arc<RemoteTable>, now: Instant) -> Self {
        Self {
            role,
            state,
            draining: false,
            player: None,
            unreliable_dropped: 0,
            traffic: Traffic::default(),
            datagram_limit: None,
            datagrams: VecDeque::new(),
            handshake_deadline: now + config.handshake_timeout,
            last_received: now,
            next_ping: now + config.keep_alive_interval,
            last_now: now,
            ping_seq: 0,
            ping_sent: None,
            rtt: None,
            config,
            remotes,
            transmit: Vec::new(),
            taken: 0,
            events: VecDeque::new(),
            calls: Vec::new(),
            free_head: None,
            calls_taken: 0,
            deadlines: VecDeque::new(),
            incoming: FxHashSet::default(),
            resume_asked: false,
            token_expected: false,
            replay: None,
            away_until: now,
        }
    }

    // ---- getters ----

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Whether the handshake finished and the session has not closed.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// Whether the connection was lost and the session waits for a resume
    /// ([`SessionEvent::Away`]), or is resuming on a new connection.
    pub fn is_away(&self) -> bool {
        matches!(self.state, State::Away | State::Resuming)
    }

    /// Client: whether the session is resuming on a new connection (its
    /// resume sent, the server's answer awaited): that connection is the
    /// one to keep, though the session is still [away](Self::is_away).
    pub fn is_resuming(&self) -> bool {
        self.state == State::Resuming
    }

    /// Whether this session can be resumed after a lost connection: resume
    /// is on, both sides agreed at the handshake, and nothing overflowed.
    pub fn is_resumable(&self) -> bool {
        self.replay.as_ref().is_some_and(|r| r.broken.is_none())
    }

    /// Bytes kept for the peer until it acknowledges them (for a resume).
    pub fn resume_kept(&self) -> usize {
        self.replay.as_deref().map_or(0, Replay::kept)
    }

    /// Whether the session has closed ([`SessionEvent::Closed`] was queued).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Our calls still holding an id: waiting for an answer, timed out and
    /// waiting for the late answer to drop, or answered with the answer not
    /// yet taken from [`poll_event`](Self::poll_event).
    pub fn pending_calls(&self) -> usize {
        self.calls_taken
    }

    /// The peer's calls we are handling.
    pub fn incoming_calls(&self) -> usize {
        self.incoming.len()
    }

    /// Client: the id the server gave this client's player, once welcomed.
    pub fn player(&self) -> Option<u64> {
        self.player
    }

    /// The smoothed round-trip time (RFC 6298), measured from the pings the
    /// session sends on opening and every keep-alive interval after; `None`
    /// until the first pong.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt.map(|(smoothed, _)| smoothed)
    }

    /// How much the round-trip time varies (RFC 6298's RTTVAR): the jitter.
    pub fn rtt_jitter(&self) -> Option<Duration> {
        self.rtt.map(|(_, variation)| variation)
    }

    /// Bytes queued for the transport.
    pub fn transmit_len(&self) -> usize {
        self.transmit.len()
    }

    /// Bytes for the peer not written yet: queued here, or taken by the
    /// transport and not reported written. Every frame counts, whoever
    /// produced it (pongs and automatic answers too).
    pub fn unsent_len(&self) -> usize {
        self.transmit.len() + self.taken
    }

    /// Whether the peer's unsent output has reached
    /// [`SessionConfig::max_transmit_queue`]. While it has,
    /// [`handle_input`](Self::handle_input) takes no frames (each could add an
    /// answer): stop reading from the transport until the output drains. A
    /// peer that stays backed up until the idle timeout is closed as
    /// [`CloseReason::PeerTooSlow`].
    pub fn is_backed_up(&self) -> bool {
        self.unsent_len() >= self.config.max_transmit_queue
    }

    /// Whether datagrams wait to be sent.
    pub fn has_datagrams(&self) -> bool {
        !self.datagrams.is_empty()
    }

    /// Frees the transmit buffer and the event queue if they are empty, for
    /// a connection gone quiet.
    pub fn release_idle_buffers(&mut self) {
        if self.transmit.is_empty() {
            self.transmit = Vec::new();
        }
        if self.events.is_empty() {
            self.events = VecDeque::new();
        }
        if let Some(replay) = &mut self.replay {
            replay.release_if_empty();
        }
    }

    /// The transport can carry datagrams of up to `limit` bytes: from now on
    /// unreliable events are sent as datagrams ([`take_datagram`](Self::take_datagram))
    /// and datagrams received go to [`handle_datagram`](Self::handle_datagram).
    pub fn enable_datagrams(&mut self, limit: usize) {
        self.datagram_limit = Some(limit);
    }

    /// The next datagram to send, one unreliable event each.
    pub fn take_datagram(&mut self) -> Option<Vec<u8>> {
        self.datagrams.pop_front()
    }

    /// A datagram from the peer: exactly one frame, an unreliable event the
    /// peer may fire. Anything else closes the session, as on the stream. A
    /// server closes it too for a datagram before its welcome (a client
    /// sends none before); a client drops one that overtook the welcome.
    pub fn handle_datagram(&mut self, mut datagram: BytesMut, now: Instant) {
        match self.state {
            State::Open => {}
            State::AwaitingHello | State::Authenticating => {
                return self.violation("datagram before the handshake ended".into());
            }
            State::HelloSent | State::Closed | State::Away | State::Resuming => return,
        }
        self.traffic.frames_in += 1;
        self.traffic.datagrams_in += 1;
        self.traffic.bytes_in += datagram.len() as u64;
        match codec::decode_frame(&mut datagram, self.config.max_frame_len) {
            Ok(Some(Message::Event { remote, payload }))
                if datagram.is_empty() && self.incoming_remote(remote, |k| k == RemoteKind::UnreliableEvent) =>
            {
                self.last_received = now;
                self.events.push_back(SessionEvent::Event { remote, payload });
            }
            Ok(_) => self.violation("datagram that is not one unreliable event".into()),
            Err(e) => self.violation(format!("datagram: {e}")),
        }
    }

    /// Frames and bytes in and out so far, datagrams included.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// Unreliable events dropped so far because the output was backed up.
    pub fn unreliable_dropped(&self) -> u64 {
        self.unreliable_dropped
    }

    /// Whether [`poll_event`](Self::poll_event) has something.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    // ---- inputs ----

    /// Consumes every whole frame at the front of `buf`, leaving a partial one.
    ///
    /// Takes none while [`is_backed_up`](Self::is_backed_up): the rest stays
    /// in `buf` for a later call.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) {
        self.handle_input_up_to(buf, now, usize::MAX);
    }

    /// Consumes up to `max_frames` whole frames at the front of `buf`;
    /// returns whether it stopped at that limit (more may wait in `buf`).
    ///
    /// A driver that answers and writes between such batches lets the peer
    /// start on the first answers while it works on the rest.
    pub fn handle_input_up_to(&mut self, buf: &mut BytesMut, now: Instant, max_frames: usize) -> bool {
        self.last_now = now;
        let mut received = false;
        let mut left = max_frames;
        while !matches!(self.state, State::Closed | State::Away) && !self.is_backed_up() {
            if left == 0 {
                self.note_received(received, now);
                return true;
            }
            let before = buf.len();
            match codec::decode_frame(buf, self.config.max_frame_len) {
                Ok(Some(msg)) => {
                    left -= 1;
                    received = true;
                    self.traffic.frames_in += 1;
                    self.traffic.bytes_in += (before - buf.len()) as u64;
                    self.handle_message(msg);
                }
                Ok(None) => break,
                Err(err) => {
                    self.violation(err.to_string());
                    break;
                }
            }
        }
        self.note_received(received, now);
        false
    }

    /// Once per batch, not per frame: the whole batch arrived at `now`.
    fn note_received(&mut self, received: bool, now: Instant) {
        if received {
            self.last_received = now;
            if self.replay.as_deref().is_some_and(Replay::ack_overdue) {
                self.acknowledge();
            }
        }
    }

    /// The transport ended: `error` is `None` for an orderly end of stream.
    /// A resumable session goes [away](SessionEvent::Away) instead of
    /// closing.
    pub fn handle_transport_closed(&mut self, error: Option<String>) {
        if self.state == State::Open && self.is_resumable() {
            return self.go_away();
        }
        if self.state == State::Away {
            // The same loss told again (a failed write, then the read's
            // end): the grace period runs on.
            return;
        }
        if self.state == State::Resuming {
            // That attempt failed; the grace period runs on.
            return self.go_away_again();
        }
        let reason = match error {
            None => CloseReason::TransportClosed,
            Some(e) => CloseReason::TransportError(e),
        };
        self.finish(reason);
    }

    /// Fires every timer due at `now`: the handshake deadline, idle timeout,
    /// keep-alive ping and call deadlines.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        match self.state {
            State::Closed => return,
            State::Away | State::Resuming => {
                if now >= self.away_until {
                    return self.finish(CloseReason::NotResumed("the grace period passed".into()));
                }
                if self.state == State::Resuming && now >= self.handshake_deadline {
                    // This connection will not do; another may.
                    self.go_away_again();
                }
                return self.end_calls_due(now);
            }
            _ => {}
        }
        if self.state != State::Open && now >= self.handshake_deadline {
            return self.finish(CloseReason::HandshakeTimeout);
        }
        if now >= self.last_received + self.config.idle_timeout {
            // Backed up all that time: the peer does not read.
            if self.is_backed_up() {
                return self.too_slow();
            }
            // Silence on a live transport is how a dead path shows (QUIC, a
            // TCP connection that lost its peer without a reset): a
            // resumable session waits for the peer to come back another way.
            if self.state == State::Open && self.is_resumable() {
                return self.go_away();
            }
            self.queue(&Message::<&[u8]>::Goodbye {
                code: GoodbyeCode::IdleTimeout,
                message: "no traffic received".into(),
            });
            return self.finish(CloseReason::IdleTimeout);
        }
        if now >= self.next_ping {
            self.ping_seq = self.ping_seq.wrapping_add(1);
            let seq = self.ping_seq;
            self.queue(&Message::<&[u8]>::Ping { seq });
            self.ping_sent = Some((seq, now));
            self.next_ping = now + self.config.keep_alive_interval;
            self.acknowledge_if_behind();
        }
        self.end_calls_due(now);
    }

    /// Our calls whose deadline passed end `TimedOut`, and the peer is told
    /// to cancel them (after a resume, if away).
    fn end_calls_due(&mut self, now: Instant) {
        while let Some(&(deadline, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            self.calls[id as usize] = Slot::Abandoned;
            self.queue_numbered(&Message::<&[u8]>::Cancel { id });
            self.events.push_back(SessionEvent::CallEnded {
                id,
                outcome: CallOutcome::TimedOut,
            });
        }
    }

    // ---- outputs ----

    /// The next instant [`handle_timeout`](Self::handle_timeout) has work, or
    /// `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first_call = self.deadlines.front().map(|&(deadline, _)| deadline);
        match self.state {
            State::Closed => None,
            State::Away => Some(first_call.map_or(self.away_until, |d| d.min(self.away_until))),
            State::Resuming => {
                let next = self.away_until.min(self.handshake_deadline);
                Some(first_call.map_or(next, |d| d.min(next)))
            }
            State::Open => {
                let mut next = (self.last_received + self.config.idle_timeout).min(self.next_ping);
                if let Some(&(deadline, _)) = self.deadlines.front() {
                    next = next.min(deadline);
                }
                Some(next)
            }
            _ => Some(
                self.handshake_deadline
                    .min(self.last_received + self.config.idle_timeout)
                    .min(self.next_ping),
            ),
        }
    }

    /// The next event for the application.
    ///
    /// Taking a [`SessionEvent::CallEnded`] frees its call id for reuse: hand
    /// the outcome to the caller before the next [`call`](Self::call).
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        let event = self.events.pop_front()?;
        if let SessionEvent::CallEnded { id, .. } = event {
            if let Some(Slot::Ended) = self.calls.get(id as usize) {
                self.free(id);
            }
        }
        Some(event)
    }

    /// Moves the queued bytes into `buf`, which must be empty; its capacity is
    /// kept for the next frames, so steady traffic allocates nothing.
    pub fn take_transmit(&mut self, buf: &mut Vec<u8>) {
        debug_assert!(buf.is_empty(), "take_transmit needs an empty buffer");
        buf.clear();
        // An ack rides along with bytes that go anyway.
        if !self.transmit.is_empty() && self.replay.as_deref().is_some_and(Replay::ack_due) {
            self.acknowledge();
        }
        // What goes to the transport is kept, whole, until acknowledged.
        if let (Some(replay), State::Open) = (&mut self.replay, self.state) {
            replay.record(&self.transmit);
        }
        std::mem::swap(&mut self.transmit, buf);
    }

    /// How many bytes taken with [`take_transmit`](Self::take_transmit) the
    /// transport still holds unwritten. They count against
    /// [`SessionConfig::max_transmit_queue`] with the bytes queued here; a
    /// transport that writes everything it takes at once need not call this.
    pub fn set_transport_backlog(&mut self, bytes: usize) {
        self.taken = bytes;
    }

    // ---- commands ----

    /// Server: lets the client in after [`SessionEvent::Hello`], telling it
    /// the id of its player.
    pub fn accept(&mut self, player: u64) {
        if self.state == State::Authenticating {
            self.queue(&Message::<&[u8]>::Welcome { player });
            self.state = State::Open;
            self.ping_now();
            self.events.push_back(SessionEvent::Connected);
        }
    }

    /// Server: lets the client in as [`accept`](Self::accept) does and, if it
    /// asked to be resumable and resume is on, gives it `token` (which the
    /// server keeps to find this session by, for [`resume`](Self::resume)).
    /// Returns whether the player is resumable.
    pub fn accept_resumable(&mut self, player: u64, token: crate::ResumeToken) -> bool {
        if self.state != State::Authenticating {
            return false;
        }
        self.accept(player);
        if !(self.resume_asked && self.resume_on()) {
            return false;
        }
        let mut replay = Replay::new(self.config.resume_buffer);
        replay.token = Some(token);
        self.replay = Some(Box::new(replay));
        // Right after the welcome, before anything numbered: the client
        // reads the frame after the welcome to learn whether it may resume.
        self.queue(&Message::<&[u8]>::ResumeToken { token });
        true
    }

    /// Server: the client of this (away, or not yet known lost) session came
    /// back on a new connection with a resume that said it processed
    /// `received` of our numbered frames. The session takes the new
    /// connection: what follows to transmit is the resumed answer (with the
    /// next `token`), then every frame the client has not processed. Calls
    /// pending either way carry on. An error says why the resume cannot be
    /// (refuse the new connection with it); the session is left as it was.
    pub fn resume(&mut self, received: u64, token: crate::ResumeToken, now: Instant) -> Result<(), String> {
        if !matches!(self.state, State::Open | State::Away) || self.role != Role::Server {
            return Err("the player is gone".into());
        }
        match &self.replay {
            None => return Err("the player is not resumable".into()),
            Some(replay) => replay.can_replay_after(received)?,
        }
        // Not known lost yet: what it had queued goes too.
        self.keep_untaken();
        let replay = self.replay.as_mut().expect("resumable");
        let mut frames = Vec::new();
        replay.replay_after(received, &mut frames)?;
        let ours = replay.received;
        replay.acknowledged = ours;
        replay.token = Some(token);
        replay.resumed_at_frame = Some(self.traffic.frames_in);
        self.transmit.clear();
        self.taken = 0;
        self.datagrams.clear();
        self.queue(&Message::<&[u8]>::Resumed { received: ours, token });
        self.transmit.extend_from_slice(&frames);
        self.reopen(now);
        Ok(())
    }

    /// Server: whether the client has sent anything since its last
    /// [`resume`](Self::resume) (true if it never resumed). Until it has,
    /// the resume's answer, and the new token in it, may never have reached
    /// it: the token it resumed with is still the one it holds.
    pub fn heard_since_resume(&self) -> bool {
        let mark = self.replay.as_ref().and_then(|replay| replay.resumed_at_frame);
        mark.is_none_or(|mark| self.traffic.frames_in > mark)
    }

    /// Client: an away session starts its resume on a new connection: the
    /// resume is what follows to transmit. Returns false, queueing nothing,
    /// if the session cannot resume (then start a new one).
    pub fn start_resume(&mut self, now: Instant) -> bool {
        if self.role != Role::Client || self.state != State::Away || !self.is_resumable() {
            return false;
        }
        let replay = self.replay.as_mut().expect("resumable");
        let Some(token) = replay.token else {
            return false;
        };
        let received = replay.received;
        replay.acknowledged = received;
        self.transmit.clear();
        self.taken = 0;
        self.queue(&Message::<&[u8]>::Resume {
            version: PROTOCOL_VERSION,
            remotes_hash: self.remotes.hash(),
            token,
            received,
        });
        self.state = State::Resuming;
        self.handshake_deadline = now + self.config.handshake_timeout;
        self.last_received = now;
        true
    }

    /// Gives up waiting for a resume: an away session closes
    /// ([`CloseReason::NotResumed`] with `why`), as when its grace period
    /// ends. Nothing happens otherwise.
    pub fn end_away(&mut self, why: &str) {
        if matches!(self.state, State::Away | State::Resuming) {
            self.finish(CloseReason::NotResumed(why.into()));
        }
    }

    /// Server: turns the client away after [`SessionEvent::Hello`].
    pub fn refuse(&mut self, code: RefuseCode, message: &str) {
        if self.state == State::Authenticating || self.state == State::AwaitingHello {
            self.queue(&Message::<&[u8]>::Refuse {
                code,
                message: message.into(),
            });
            self.finish(CloseReason::RefusedPeer {
                code,
                message: message.into(),
            });
        }
    }

    /// Calls function `remote` on the peer; the answer comes as
    /// [`SessionEvent::CallEnded`] with the returned id, at the latest at
    /// `now + timeout`.
    pub fn call(
        &mut self,
        remote: RemoteId,
        payload: &[u8],
        timeout: Duration,
        now: Instant,
    ) -> Result<CallId, SendError> {
        self.check_send(remote, |kind| kind == RemoteKind::Function, payload)?;
        if self.calls_taken >= self.config.max_outgoing_calls {
            return Err(SendError::TooManyPending);
        }
        // Every id on the free list is free (`free` puts it there, only this
        // takes it off); were one not, a new id is safer than a shared one.
        let reused = self.free_head.and_then(|id| match self.calls.get(id as usize) {
            Some(&Slot::Free { next }) => Some((id, next)),
            _ => None,
        });
        let id = match reused {
            Some((id, next)) => {
                self.free_head = next;
                id
            }
            None => {
                self.free_head = None;
                self.calls.push(Slot::Free { next: None });
                (self.calls.len() - 1) as CallId
            }
        };
        let deadline = now + timeout;
        self.calls[id as usize] = Slot::Waiting { deadline };
        self.calls_taken += 1;
        // Calls sharing a timeout end up in order: the back is the usual place.
        // Equal deadlines (calls made in one batch, at one `now`) keep the
        // order they were made in.
        if self.deadlines.back().is_none_or(|(last, _)| *last <= deadline) {
            self.deadlines.push_back((deadline, id));
        } else {
            let at = self.deadlines.partition_point(|(d, _)| *d <= deadline);
            self.deadlines.insert(at, (deadline, id));
        }
        self.queue_numbered(&Message::Request { id, remote, payload });
        Ok(id)
    }

    /// Gives up on call `id` (the caller lost interest): the peer is told to
    /// cancel, and no [`SessionEvent::CallEnded`] will come for it. Returns
    /// whether the call was still waiting.
    pub fn cancel(&mut self, id: CallId) -> bool {
        match self.calls.get(id as usize) {
            Some(&Slot::Waiting { deadline }) => {
                self.remove_deadline(deadline, id);
                self.calls[id as usize] = Slot::Abandoned;
                self.queue_numbered(&Message::<&[u8]>::Cancel { id });
                true
            }
            _ => false,
        }
    }

    /// Answers the peer's request `id`. Returns `false`, sending nothing, if the
    /// request is no longer in flight (cancelled, or the session closed).
    ///
    /// A payload too large for [`SessionConfig::max_frame_len`] is replaced by
    /// [`Status::TooLarge`]: the caller learns the call failed instead of the
    /// peer closing the connection on an oversized frame.
    pub fn respond(&mut self, id: CallId, status: Status, payload: &[u8]) -> bool {
        if !matches!(self.state, State::Open | State::Away | State::Resuming) || !self.incoming.remove(&id) {
            return false;
        }
        if self.is_backed_up() {
            self.too_slow();
            return false;
        }
        let msg = Message::Response { id, status, payload };
        if msg.body_len() > self.config.max_frame_len {
            self.queue_numbered(&Message::<&[u8]>::Response {
                id,
                status: Status::TooLarge,
                payload: &[],
            });
        } else {
            self.queue_numbered(&msg);
        }
        true
    }

    /// Fires event `remote` at the peer. An unreliable event over the size
    /// limit is refused, and one sent while the output is backed up is
    /// dropped ([`SendError::Dropped`]).
    pub fn send_event(&mut self, remote: RemoteId, payload: &[u8]) -> Result<(), SendError> {
        let kind = self.check_send(remote, RemoteKind::is_event, payload)?;
        if kind == RemoteKind::UnreliableEvent {
            if self.state != State::Open {
                // Away: state the next one supersedes is not worth keeping.
                self.unreliable_dropped += 1;
                return Err(SendError::Dropped);
            }
            if payload.len() > self.config.max_unreliable_len {
                return Err(SendError::TooLarge {
                    len: payload.len(),
                    max: self.config.max_unreliable_len,
                });
            }
            if let Some(limit) = self.datagram_limit {
                let msg = Message::Event { remote, payload };
                if msg.frame_len() > limit {
                    return Err(SendError::TooLarge {
                        len: msg.frame_len(),
                        max: limit,
                    });
                }
                if self.datagrams.len() >= MAX_QUEUED_DATAGRAMS {
                    self.unreliable_dropped += 1;
                    return Err(SendError::Dropped);
                }
                let mut datagram = Vec::with_capacity(msg.frame_len());
                msg.encode(&mut datagram);
                self.traffic.frames_out += 1;
                self.traffic.datagrams_out += 1;
                self.traffic.bytes_out += datagram.len() as u64;
                self.datagrams.push_back(datagram);
                return Ok(());
            }
            if self.unsent_len() > self.config.unreliable_backlog {
                self.unreliable_dropped += 1;
                return Err(SendError::Dropped);
            }
        }
        self.queue_numbered(&Message::Event { remote, payload });
        Ok(())
    }

    /// Stops taking new requests from the peer (they are answered
    /// [`Status::Unprocessed`] at once) while the ones in flight finish; for a
    /// graceful shutdown, followed by [`close`](Self::close).
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether [`drain`](Self::drain) was called.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Says goodbye and closes: pending calls end [`CallOutcome::Disconnected`].
    pub fn close(&mut self, code: GoodbyeCode, message: &str) {
        if self.state == State::Closed {
            return;
        }
        self.queue(&Message::<&[u8]>::Goodbye {
            code,
            message: message.into(),
        });
        self.finish(CloseReason::Local {
            code,
            message: message.into(),
        });
    }

    // ---- internals ----

    /// Checks that `remote` is of a kind `allowed` and ours to send; returns its kind.
    fn check_send(
        &mut self,
        remote: RemoteId,
        allowed: fn(RemoteKind) -> bool,
        payload: &[u8],
    ) -> Result<RemoteKind, SendError> {
        if !matches!(self.state, State::Open | State::Away | State::Resuming) {
            return Err(SendError::NotOpen);
        }
        let outgoing = match self.role {
            Role::Client => Direction::ToServer,
            Role::Server => Direction::ToClient,
        };
        let kind = match self.remotes.spec(remote) {
            Some(spec) if allowed(spec.kind) && spec.direction == outgoing => spec.kind,
            _ => return Err(SendError::WrongRemote(remote)),
        };
        // Request framing is the larger: tag, id and remote, at most 11 bytes.
        let len = payload.len() + 11;
        if len > self.config.max_frame_len {
            return Err(SendError::TooLarge {
                len,
                max: self.config.max_frame_len,
            });
        }
        if self.is_backed_up() {
            self.too_slow();
            return Err(SendError::NotOpen);
        }
        Ok(kind)
    }

    fn too_slow(&mut self) {
        self.finish(CloseReason::PeerTooSlow);
    }

    fn queue<P: AsRef<[u8]>>(&mut self, msg: &Message<P>) {
        let before = self.transmit.len();
        msg.encode(&mut self.transmit);
        self.traffic.frames_out += 1;
        self.traffic.bytes_out += (self.transmit.len() - before) as u64;
    }

    /// Queues a frame that carries the application's work (a request,
    /// response, event or cancel): a resumable session counts it (and keeps
    /// it as it is written); while away it only keeps it.
    fn queue_numbered<P: AsRef<[u8]>>(&mut self, msg: &Message<P>) {
        let before = self.transmit.len();
        self.queue(msg);
        let Some(replay) = &mut self.replay else {
            return;
        };
        replay.sent += 1;
        if matches!(self.state, State::Away | State::Resuming) {
            replay.record(&self.transmit[before..]);
            self.transmit.truncate(before);
            if let Some(why) = replay.broken {
                self.finish(CloseReason::NotResumed(why.into()));
            }
        }
    }

    fn resume_on(&self) -> bool {
        !self.config.resume_grace.is_zero()
    }

    /// Tells the peer how many of its numbered frames we processed.
    fn acknowledge(&mut self) {
        if let Some(replay) = &mut self.replay {
            let received = replay.received;
            replay.acknowledged = received;
            self.queue(&Message::<&[u8]>::Ack { received });
        }
    }

    /// At each ping and pong: acknowledges whatever is not, so the peer
    /// keeps nothing longer than a keep-alive interval.
    fn acknowledge_if_behind(&mut self) {
        if self.replay.as_ref().is_some_and(|r| r.received > r.acknowledged) {
            self.acknowledge();
        }
    }

    /// The connection is lost; the session waits for a resume.
    fn go_away(&mut self) {
        self.away_until = self.last_now + self.config.resume_grace;
        self.keep_untaken();
        self.go_away_again();
    }

    /// Frames queued and not yet taken by the transport are kept with the
    /// ones written, before the queue is dropped.
    fn keep_untaken(&mut self) {
        if let (Some(replay), State::Open) = (&mut self.replay, self.state) {
            replay.record(&self.transmit);
        }
    }

    /// Away again after a resume attempt failed: the grace period runs on.
    fn go_away_again(&mut self) {
        self.state = State::Away;
        self.transmit.clear();
        self.taken = 0;
        self.datagrams.clear();
        self.token_expected = false;
        self.ping_sent = None;
        self.events.push_back(SessionEvent::Away);
    }

    /// Back from away on a new connection.
    fn reopen(&mut self, now: Instant) {
        self.state = State::Open;
        self.last_now = now;
        self.last_received = now;
        self.ping_now();
        self.events.push_back(SessionEvent::Resumed);
    }

    /// Whether `remote` is a `kind` the peer may send to us.
    fn incoming_remote(&self, remote: RemoteId, allowed: fn(RemoteKind) -> bool) -> bool {
        let incoming = match self.role {
            Role::Client => Direction::ToClient,
            Role::Server => Direction::ToServer,
        };
        matches!(self.remotes.spec(remote), Some(spec) if allowed(spec.kind) && spec.direction == incoming)
    }

    fn handle_message(&mut self, msg: Message) {
        if self.token_expected {
            // The frame after the welcome: a resume token, or none at all.
            self.token_expected = false;
            if let Message::ResumeToken { token } = msg {
                if let Some(replay) = &mut self.replay {
                    replay.token = Some(token);
                }
                return;
            }
            self.replay = None;
        }
        if self.state == State::Open && is_numbered(&msg) {
            if let Some(replay) = &mut self.replay {
                replay.received += 1;
            }
        }
        match (self.state, msg) {
            (_, Message::Ping { seq }) => {
                self.queue(&Message::<&[u8]>::Pong { seq });
                self.acknowledge_if_behind();
            }
            (_, Message::Pong { seq }) => self.handle_pong(seq),
            (_, Message::Goodbye { code, message }) => self.finish(CloseReason::Remote { code, message }),
            (
                State::AwaitingHello,
                Message::Hello {
                    version,
                    remotes_hash,
                    token,
                },
            ) => {
                if version != PROTOCOL_VERSION {
                    let message =
                        format!("protocol version {version} is not supported; this server speaks {PROTOCOL_VERSION}");
                    self.refuse(RefuseCode::VersionMismatch, &message);
                } else if remotes_hash != self.remotes.hash() {
                    self.refuse(
                        RefuseCode::RemotesMismatch,
                        "client and server were built with different remote declarations",
                    );
                } else {
                    self.state = State::Authenticating;
                    self.events.push_back(SessionEvent::Hello {
                        token: token.into_bytes(),
                    });
                }
            }
            (State::HelloSent, Message::Welcome { player }) => {
                self.player = Some(player);
                self.state = State::Open;
                self.ping_now();
                if self.resume_on() {
                    self.replay = Some(Box::new(Replay::new(self.config.resume_buffer)));
                    self.token_expected = true;
                }
                self.events.push_back(SessionEvent::Connected);
            }
            // The client asks to be resumable.
            (State::AwaitingHello | State::Authenticating, Message::Ack { received: 0 })
                if self.role == Role::Server =>
            {
                self.resume_asked = true;
            }
            (State::Open, Message::Ack { received }) if self.replay.is_some() => {
                let acknowledged = self.replay.as_mut().map(|r| r.acknowledged_by_peer(received));
                if let Some(Err(e)) = acknowledged {
                    self.violation(e);
                }
            }
            (
                State::AwaitingHello,
                Message::Resume {
                    version,
                    remotes_hash,
                    token,
                    received,
                },
            ) => {
                if version != PROTOCOL_VERSION || remotes_hash != self.remotes.hash() {
                    self.refuse(RefuseCode::ResumeRefused, "another protocol version or build");
                } else if !self.resume_on() {
                    self.refuse(RefuseCode::ResumeRefused, "resume is off on this server");
                } else {
                    self.state = State::Authenticating;
                    self.events.push_back(SessionEvent::ResumeAsked { token, received });
                }
            }
            (State::Resuming, Message::Resumed { received, token }) => {
                let replay = self.replay.as_mut().expect("resuming");
                let mut frames = Vec::new();
                if let Err(e) = replay.replay_after(received, &mut frames) {
                    return self.violation(e);
                }
                replay.token = Some(token);
                self.transmit.extend_from_slice(&frames);
                let now = self.last_now;
                self.reopen(now);
            }
            (State::Resuming, Message::Refuse { code, message }) => self.finish(CloseReason::Refused { code, message }),
            (State::HelloSent, Message::Refuse { code, message }) => {
                self.finish(CloseReason::Refused { code, message })
            }
            (State::Open, Message::Event { remote, payload }) => {
                if !self.incoming_remote(remote, RemoteKind::is_event) {
                    return self.violation(format!("event for remote {remote}, which the peer may not fire"));
                }
                self.events.push_back(SessionEvent::Event { remote, payload });
            }
            (State::Open, Message::Request { id, remote, payload }) => {
                if !self.incoming_remote(remote, |kind| kind == RemoteKind::Function) {
                    return self.violation(format!("request for remote {remote}, which the peer may not call"));
                }
                if self.incoming.contains(&id) {
                    return self.violation(format!("call id {id} reused while in flight"));
                }
                if self.draining || self.incoming.len() >= self.config.max_incoming_calls {
                    let status = if self.draining {
                        Status::Unprocessed
                    } else {
                        Status::Overloaded
                    };
                    self.queue_numbered(&Message::<&[u8]>::Response {
                        id,
                        status,
                        payload: &[],
                    });
                    return;
                }
                self.incoming.insert(id);
                self.events.push_back(SessionEvent::Request { id, remote, payload });
            }
            (State::Open, Message::Response { id, status, payload }) => match self.calls.get(id as usize).copied() {
                Some(Slot::Waiting { deadline }) => {
                    self.remove_deadline(deadline, id);
                    self.calls[id as usize] = Slot::Ended;
                    self.events.push_back(SessionEvent::CallEnded {
                        id,
                        outcome: CallOutcome::Response { status, payload },
                    });
                }
                // The late answer to a call that timed out or was cancelled.
                Some(Slot::Abandoned) => self.free(id),
                _ => self.violation(format!("response to call id {id}, which is not pending")),
            },
            (State::Open, Message::Cancel { id }) => {
                // A cancel for a call already answered crossed the answer on the
                // wire; there is nothing left to do.
                if self.incoming.remove(&id) {
                    self.queue_numbered(&Message::<&[u8]>::Response {
                        id,
                        status: Status::Cancelled,
                        payload: &[],
                    });
                    self.events.push_back(SessionEvent::RequestCancelled { id });
                }
            }
            (state, msg) => self.violation(format!("unexpected {} message in state {state:?}", message_name(&msg))),
        }
    }

    /// The first ping goes out at once on opening, so the round-trip time is
    /// known within one round trip.
    fn ping_now(&mut self) {
        self.next_ping = self.last_now;
    }

    /// A pong: if it answers the ping awaited, one round-trip sample.
    fn handle_pong(&mut self, seq: u32) {
        let Some((sent_seq, sent)) = self.ping_sent else {
            return;
        };
        if sent_seq != seq {
            return;
        }
        self.ping_sent = None;
        let sample = self.last_now.saturating_duration_since(sent);
        self.rtt = Some(match self.rtt {
            None => (sample, sample / 2),
            Some((smoothed, variation)) => {
                let deviation = smoothed.abs_diff(sample);
                (smoothed * 7 / 8 + sample / 8, variation * 3 / 4 + deviation / 4)
            }
        });
    }

    fn remove_deadline(&mut self, deadline: Instant, id: CallId) {
        // Answers mostly come in call order: the front is the usual place.
        if self.deadlines.front() == Some(&(deadline, id)) {
            self.deadlines.pop_front();
            return;
        }
        let first = self.deadlines.partition_point(|(d, _)| *d < deadline);
        let found = (first..self.deadlines.len())
            .take_while(|&at| self.deadlines[at].0 == deadline)
            .find(|&at| self.deadlines[at].1 == id);
        if let Some(at) = found {
            self.deadlines.remove(at);
        }
    }

    fn free(&mut self, id: CallId) {
        self.calls[id as usize] = Slot::Free { next: self.free_head };
        self.calls_taken -= 1;
        self.free_head = Some(id);
    }

    /// The transport saw the peer break its rules (over QUIC, a stream
    /// beyond the one volley uses): the session ends as for any protocol
    /// violation, with a goodbye that says `detail`.
    pub fn transport_violation(&mut self, detail: String) {
        if self.state != State::Closed {
            self.violation(detail);
        }
    }

    fn violation(&mut self, detail: String) {
        self.queue(&Message::<&[u8]>::Goodbye {
            code: GoodbyeCode::ProtocolViolation,
            message: detail.clone(),
        });
        self.finish(CloseReason::ProtocolViolation(detail));
    }

    /// Ends the session: every pending call ends `Disconnected`, every incoming
    /// call is cancelled, then `Closed` is queued.
    fn finish(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.replay = None;
        for (id, slot) in self.calls.iter().enumerate() {
            if let Slot::Waiting { .. } = slot {
                self.events.push_back(SessionEvent::CallEnded {
                    id: id as CallId,
                    outcome: CallOutcome::Disconnected,
                });
            }
        }
        self.calls.clear();
        self.free_head = None;
        self.calls_taken = 0;
        self.deadlines.clear();
        for id in self.incoming.drain() {
            self.events.push_back(SessionEvent::RequestCancelled { id });
        }
        self.events.push_back(SessionEvent::Closed { reason });
    }
}

/// Whether a message is one of the numbered frames a resume replays.
fn is_numbered<P>(msg: &Message<P>) -> bool {
    matches!(
        msg,
        Message::Request { .. } | Message::Response { .. } | Message::Event { .. } | Message::Cancel { .. }
    )
}

fn message_name<P>(msg: &Message<P>) -> &'static str {
    match msg {
        Message::Hello { .. } => "hello",
        Message::Welcome { .. } => "welcome",
        Message::Refuse { .. } => "refuse",
        Message::Event { .. } => "event",
        Message::Request { .. } => "request",
        Message::Response { .. } => "response",
        Message::Cancel { .. } => "cancel",
        Message::Ping { .. } => "ping",
        Message::Pong { .. } => "pong",
        Message::Goodbye { .. } => "goodbye",
        Message::Ack { .. } => "ack",
        Message::ResumeToken { .. } => "resume token",
        Message::Resume { .. } => "resume",
        Message::Resumed { .. } => "resumed",
    }
}

#[cfg(test)]
mod layout {
    use std::mem::{offset_of, size_of};
    use std::time::Instant;

    use super::Session;

    /// The fields every call, answer and request touches come first (see
    /// the comment on [`Session`]): one added among them, or a type grown,
    /// shows here.
    #[test]
    fn the_hot_part_of_a_session_comes_first_and_stays_small() {
        let hot_end = offset_of!(Session, next_ping) + size_of::<Instant>();
        assert!(hot_end <= 328, "the hot part is {hot_end} bytes");
        assert!(size_of::<Session>() <= 464, "{} bytes a session", size_of::<Session>());
    }
}
