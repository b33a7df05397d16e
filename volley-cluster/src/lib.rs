//! Many volley servers as one cluster, through a NATS broker: game code on
//! any node reaches every player, wherever it is connected.
//!
//! ```text
//!   node A (volley server) ──┐                 ┌── node B (volley server)
//!     players 1,2            │    nats-server   │     players 3,4
//!   fire(3, ..) ── encoded ──┼──► volley.game.node.<B> ──► player 3's connection
//!   to_room("lobby").fire ───┼──► volley.game.room.<lobby> (nodes with members)
//!   to_all().invoke(..) ─────┼──► every live node: manifest, answers, done
//!   heartbeats ◄─────────────┴──► volley.game.presence (who is alive)
//! ```
//!
//! - Each node is a [`ClusterNode`]: a volley [`Server`](volley::Server)
//!   plus its broker connection. Player ids carry their node's number in the
//!   high 32 bits, so they are unique across the cluster and say where a
//!   player is.
//! - Payloads are encoded once, by the node that sends them, and cross the
//!   broker as they are. Every message between nodes carries a version
//!   byte.
//! - Nodes heartbeat every 500 ms; one silent for 1.5 s is gone at the next
//!   check (every heartbeat: within 2 s of its last one), and calls pending
//!   to its players end `Disconnected` then.
//! - The broker is behind the [`Broker`] trait; [`NatsBroker`] is the NATS
//!   one (`async-nats`).
//!
//! # Layout
//!
//! ```text
//! layer  files                          what
//!   3    group.rs player.rs             reaching groups, reaching one player
//!   2    node.rs                        a node: start, presence, serving other nodes
//!   1    nats.rs presence.rs            the NATS broker, who is alive
//!        local_nats.rs                  a nats-server process for tests
//!   0    broker.rs wire.rs subjects.rs  the broker trait, messages, subjects,
//!        config.rs error.rs             settings, errors
//! ```

mod broker;
mod config;
mod error;
mod group;
mod local_nats;
mod nats;
mod node;
mod player;
mod presence;
mod subjects;
mod wire;

pub use broker::{Broker, BrokerError, Inbound, Subscription};
pub use config::ClusterConfig;
pub use error::ClusterError;
pub use group::{Census, ClusterAnswers, ClusterBroadcast, ClusterGroup, ANSWER_GRACE};
pub use local_nats::LocalNats;
pub use nats::NatsBroker;
pub use node::{ClusterNode, ClusterStats};
