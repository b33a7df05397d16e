//! volley as a [bevy_replicon](https://docs.rs/bevy_replicon) messaging
//! backend: a game gets replication and visibility from replicon, and
//! awaitable calls and events from volley, on one connection.
//!
//! - Add [`replicon_remotes`] to the volley `Protocol` both sides build:
//!   four events that carry replicon's packets, a reliable and an
//!   unreliable one each way (unreliable ones travel as datagrams over
//!   QUIC and WebTransport, on the stream elsewhere).
//! - Add [`RepliconServerBackend`] after `VolleyServerPlugin` and
//!   replicon's plugins on the server, [`RepliconClientBackend`] after
//!   `VolleyClientPlugin` on a client.
//! - Each player's entity (`NetPlayer`) is replicon's connected client
//!   (`ConnectedClient`, with a `NetworkId` of the player's id), so
//!   replicon's visibility and messages address the same entity as volley's
//!   calls. volley-bevy's `ServerState` and `ClientState` drive replicon's.
//!
//! A resumed connection (volley's resume) stays connected for replicon:
//! nothing was lost. A redialed one (a new player) goes through replicon's
//! `Disconnected` first, so its replication starts over.

mod client;
mod packet;
mod server;

pub use client::RepliconClientBackend;
pub use packet::{
    replicon_remotes, Packet, REPLICON_TO_CLIENT, REPLICON_TO_CLIENT_UNRELIABLE, REPLICON_TO_SERVER,
    REPLICON_TO_SERVER_UNRELIABLE,
};
pub use server::{RepliconServerBackend, MAX_PACKET};
