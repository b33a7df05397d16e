//! volley's protocol core: the wire codec and the per-connection session state
//! machine. **This crate does no I/O**: no sockets, no async runtime, no clock
//! reads. Bytes come in through [`Session::handle_input`], time comes in as a
//! `now` argument, the next deadline goes out through [`Session::poll_timeout`],
//! and bytes to send go out through [`Session::take_transmit`]. The `volley`
//! crate drives it over real transports; tests drive it with a fake clock.
//!
//! # Layout
//!
//! - [`codec`]: frames (varint length + body) and [`Message`]s; check-then-parse.
//! - [`remotes`]: the [`RemoteTable`] both peers agree on, and its hash.
//! - [`session`]: the [`Session`] state machine: handshake, calls both ways,
//!   cancellation, deadlines, keep-alive, limits.
//!
//! # Data flow
//!
//! ```text
//!  transport bytes ──► handle_input ──┐            ┌──► poll_event ──► application
//!                                     ▼            │
//!  now ─────────────► handle_timeout ──► Session ──┤
//!                                     ▲            │
//!  application ─► call/respond/send_event/close    └──► take_transmit ──► transport
//! ```

pub mod codec;
mod frame_bytes;
pub mod remotes;
mod replay;
pub mod session;
mod varint;

pub use codec::{
    DecodeError, GoodbyeCode, Message, RefuseCode, ResumeToken, Status, PROTOCOL_VERSION, RESUME_TOKEN_LEN,
};
pub use frame_bytes::FrameBytes;
pub use remotes::{stable_hash, Direction, RemoteId, RemoteKind, RemoteSpec, RemoteTable, TableError};
pub use session::{
    CallId, CallOutcome, CloseReason, ConfigError, Role, SendError, Session, SessionConfig, SessionEvent, Traffic,
    DEFAULT_RESUME_GRACE, MAX_FRAME_LEN_LIMIT,
};
