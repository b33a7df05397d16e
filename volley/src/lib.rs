//! volley: typed remote functions (request → response) and remote events
//! (one-way) between an authoritative game server and its clients, **in both
//! directions**, with timeouts, cancellation that crosses the wire, validation,
//! and limits a hostile client cannot talk its way past.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use volley::*;
//!
//! // Shared by client and server.
//! #[derive(Serialize, Deserialize)]
//! pub struct Buy { pub item: String, pub gold: u32 }
//! pub const BUY: ServerFn<Buy, u32> = ServerFn::new("Buy");             // client → server
//! pub const CONFIRM: ClientFn<String, bool> = ClientFn::new("Confirm"); // server → client
//! pub const NEWS: ClientEvent<String> = ClientEvent::new("News");       // server → clients
//!
//! fn protocol() -> Protocol {
//!     Protocol::builder().remote(BUY).remote(CONFIRM).remote(NEWS).build()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::new(protocol(), ServerConfig::default());
//! server.on_request_sync(BUY, |_player, buy: Buy| {
//!     if buy.gold < 10 {
//!         return Err(Reject::new("not enough gold"));
//!     }
//!     Ok(buy.gold - 10)
//! });
//!
//! let client = Client::new(protocol(), ClientConfig::default());
//! client.on_request(CONFIRM, |_, question: String| async move { Ok(question.ends_with('?')) });
//! client.connect(server.connect_memory()).await?; // or connect_tcp("127.0.0.1:7777")
//!
//! let left = client.invoke(BUY, Buy { item: "sword".into(), gold: 25 }).await?;
//! assert_eq!(left, 15);
//! let poor = client.invoke(BUY, Buy { item: "sword".into(), gold: 5 }).await;
//! assert_eq!(poor, Err(FunctionError::Rejected("not enough gold".into())));
//!
//! let player = &server.players()[0];
//! assert_eq!(server.invoke(player, CONFIRM, "ready?".into()).await, Ok(true));
//! let reached = server.fire_all(NEWS, "round starts".into())?;
//! assert_eq!(reached.sent, 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `tls`, `websocket`, `quic`: those transports.
//! - `metrics`: the figures ([`Server::figures`]) through the `metrics`
//!   facade (`Server::report_metrics`).
//! - `inspector`: a live page of the figures over HTTP (`Server::inspector`).
//!
//! Groups of players are rooms ([`Player::join`], [`Server::to_room`]) and
//! [`Recipients`]; a call to many players returns [`Answers`]. Many servers
//! as one cluster: the `volley-net-cluster` crate; Bevy: `volley-net-bevy`.
//!
//! # Layout
//!
//! volley is two crates: `volley-net-proto` (the wire codec and the session
//! state machine, no I/O) and this one, in layers that each depend only on
//! those below; `ARCHITECTURE.md` in the repository has the table (and CI
//! keeps it true).
//!
//! # Data flow of a call
//!
//! ```text
//!  client.invoke ──encode──► Session::call ──► driver writes ══ wire ══► driver reads
//!        ▲                                                                     │
//!        │                                                           Session::handle_input
//!   decode + check                                                            │
//!        │                              middleware, then the handler (inline; an async one
//!        │                              becomes a task only if it has to wait)
//!  driver reads ◄══ wire ══ driver writes ◄── Session::respond ◄── encode ◄───┘
//! ```
//!
//! # Defaults a hostile client meets
//!
//! All configurable through [`SessionConfig`] and [`ServerConfig`]; settings
//! that cannot work are refused when the server or client is built
//! ([`ServerConfig::validate`]).
//!
//! - Frames over 1 MiB close the connection on the length prefix alone; a
//!   call or answer over it is not sent ([`FunctionError::TooLarge`]).
//! - The handshake (transport handshake and authenticator included) must
//!   finish in 5 s; at most 512 connections may be in it at once, more are
//!   closed at once; at most 50,000 players, more are refused
//!   ([`RefuseCode::Unavailable`]).
//! - A peer silent for 30 s is dropped (keep-alive pings every 10 s keep a
//!   healthy one up).
//! - 64 calls in flight per peer each way; more are answered
//!   [`FunctionError::Overloaded`] at once.
//! - Every byte queued for a peer counts against 1 MiB of output, whoever
//!   produced it (answers, pongs, automatic refusals, events): while it is
//!   full volley reads nothing more from that peer; a peer still backed up
//!   at the idle timeout, or one the game's own events would push past the
//!   limit, is disconnected as too slow and its memory freed.
//! - Malformed input closes that one connection with a logged reason.
//! - A panic in user code (handler, listener, hook, middleware,
//!   authenticator) is caught and logged with what panicked; the connection
//!   goes on, and however a connection ends, its player is removed and its
//!   pending calls end at once.
//! - Events from one peer reach listeners in the order sent, even through
//!   middleware that waits; at most 64 wait at once per peer.
//!
//! Per-player rate limits, byte budgets and concurrency limits are in
//! [`middleware`]; who may join is decided by [`Server::set_authenticator`];
//! which browser pages may open a WebSocket by
//! [`ServerConfig::allowed_origins`].
//!
//! # Feature flags
//!
//! | flag | default | what |
//! |---|---|---|
//! | — | always | TCP and in-memory transports |
//! | `tls` | off | TLS over TCP with rustls (ring): `Server::listen_tls`, `Client::connect_tls` |
//! | `websocket` | off | WebSocket with tokio-tungstenite: `Server::listen_ws`, `Client::connect_ws`; with `tls` also `wss://` (`listen_wss`, `connect_wss`) |
//! | `quic` | off | QUIC with quinn (implies `tls`): `Server::listen_quic`, `Client::connect_quic`; unreliable events as datagrams |

mod broadcast;
mod budget;
mod chains;
mod checks;
mod client;
mod clock;
mod completion;
mod conn;
mod driver;
mod endpoint;
mod error;
mod figures;
mod guard;
mod inline;
mod locks;
pub mod middleware;
mod payload;
mod peer;
mod redacted;
mod registration;
pub mod remote;
mod server;
mod shape;
pub mod transport;

pub use broadcast::Broadcast;
pub use budget::ByteBudget;
pub use client::{Client, ClientConfig, ClientStatus, ReconnectPolicy};
pub use driver::CLOSE_LINGER;
pub use endpoint::BadInput;
pub use error::{ConnectError, EventError, FunctionError, Reject};
pub use figures::{ConnectionFigures, Latency, RemoteCounts, RemoteFigures, ServerFigures};
// The two middleware traits a game implements; what their methods take
// (`middleware::Request`, `middleware::Next`) stays in `middleware`, where a
// glob import of volley and volley-bevy (which has its own `Request`) does
// not meet it.
pub use middleware::{Admit, Middleware};
pub use peer::PlayerId;
pub use remote::{ClientEvent, ClientFn, Protocol, ProtocolBuilder, ServerEvent, ServerFn};
pub use server::adapter::{Census, PlayerError};
pub use server::{
    adapter, Answers, Hello, Incident, Player, Players, Recipients, Server, ServerConfig, DEFAULT_RESUME_GRACE,
};
#[cfg(feature = "inspector")]
pub use server::{InspectorSnapshot, TrafficPoint};
pub use volley_proto::{CloseReason, ConfigError, GoodbyeCode, RefuseCode, SessionConfig};

/// The protocol core (`volley-net-proto`, documented there), for those who
/// drive sessions themselves and for sibling crates; not part of the API a
/// game uses.
#[doc(hidden)]
pub use volley_proto as proto;
