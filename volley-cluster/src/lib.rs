//! Many volley servers as one cluster, through a NATS broker: game code on
//! any node reaches every player, wherever it is connected.
//!
//! ```text
//!   node A (volley server) ──┐                 ┌── node B (volley server)
//!     players 1,2            │    nats-server   │     players 3,4
//!   to_ids([3]).fire ─ encoded ┼──► volley.game.node.<B> ──► player 3's connection
//!   to_room("lobby").fire ───┼──► volley.game.room.<lobby> (nodes with members)
//!   to_all().invoke(..) ─────┼──► every live node: manifest, answers, done
//!   heartbeats ◄─────────────┴──► volley.game.presence (who is alive)
//! ```
//!
//! - A node is a volley [`Server`](volley::Server) built with a
//!   [`NatsAdapter`]: the game's code is the same as on one server, and
//!   `to_room`, `to_all`, `to_ids`, `invoke` to a group, `room_members`,
//!   `join`, `leave` and `kick` reach every node. Player ids carry their
//!   node's number in the high 32 bits, so they are unique across the
//!   cluster and say where a player is.
//! - Payloads are encoded once, by the node that sends them, and cross the
//!   broker as they are. Every message between nodes carries a version
//!   byte.
//! - Nodes heartbeat every 500 ms; one silent for 1.5 s is gone at the next
//!   check (every heartbeat: within 2 s of its last one), and calls pending
//!   to its players end `Disconnected` then.
//! - While the broker is unreachable, each server goes on with its own
//!   players; what must reach another node fails at once with volley's
//!   `Unreachable` (`EventError`, `FunctionError`, `PlayerError`).
//! - The broker is behind the [`Broker`] trait; [`NatsBroker`] is the NATS
//!   one (`async-nats`).
//!
//! ```no_run
//! # async fn example(protocol: volley::Protocol) -> Result<(), Box<dyn std::error::Error>> {
//! use volley::{Server, ServerConfig};
//! use volley_cluster::{ClusterConfig, NatsAdapter};
//!
//! let adapter = NatsAdapter::connect(ClusterConfig::new("nats://127.0.0.1:4222", "game")).await?;
//! let server = Server::with_adapter(protocol, ServerConfig::default(), adapter.clone());
//! server.listen_tcp("0.0.0.0:7000").await?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! ```text
//! layer  files                          what
//!   3    adapter.rs                     a node: joining, the volley adapter
//!   2    tasks.rs calls.rs              heartbeats, rooms, serving other nodes;
//!                                       calls across nodes
//!   1    nats.rs presence.rs            the NATS broker, who is alive
//!        local_nats.rs                  a nats-server process for tests
//!                                       (feature `testing`)
//!   0    broker.rs wire.rs subjects.rs  the broker trait, messages, subjects,
//!        config.rs error.rs             settings, errors
//! ```

mod adapter;
mod broker;
mod calls;
mod config;
mod error;
#[cfg(feature = "testing")]
mod local_nats;
mod nats;
mod presence;
mod subjects;
mod tasks;
mod wire;

pub use adapter::{ClusterStats, NatsAdapter, OUTBOX_CAPACITY};
pub use broker::{Broker, BrokerError, Inbound, Subscription};
pub use calls::ANSWER_GRACE;
pub use config::ClusterConfig;
pub use error::ClusterError;
#[cfg(feature = "testing")]
pub use local_nats::LocalNats;
pub use nats::NatsBroker;
