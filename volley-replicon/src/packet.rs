//! Replicon's packets as volley events: which channel, and its bytes.

use serde::{Deserialize, Serialize};
use volley::{ClientEvent, ProtocolBuilder, ServerEvent};

/// One replicon message on one of its channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    /// Replicon's channel id (its place in `RepliconChannels`).
    pub channel: u8,
    /// The message: shared with replicon, not copied, on either side of
    /// the connection.
    pub bytes: bytes::Bytes,
}

/// Replicon's ordered and unordered channels, server to client.
pub const REPLICON_TO_CLIENT: ClientEvent<Packet> = ClientEvent::new("replicon.to_client");
/// Replicon's unreliable channels, server to client (datagrams where the
/// transport has them).
pub const REPLICON_TO_CLIENT_UNRELIABLE: ClientEvent<Packet> =
    ClientEvent::new("replicon.to_client.unreliable").unreliable();
/// Replicon's ordered and unordered channels, client to server.
pub const REPLICON_TO_SERVER: ServerEvent<Packet> = ServerEvent::new("replicon.to_server");
/// Replicon's unreliable channels, client to server.
pub const REPLICON_TO_SERVER_UNRELIABLE: ServerEvent<Packet> =
    ServerEvent::new("replicon.to_server.unreliable").unreliable();

/// Adds the four remotes that carry replicon's packets to a protocol both
/// sides build.
pub fn replicon_remotes(builder: ProtocolBuilder) -> ProtocolBuilder {
    builder
        .remote(REPLICON_TO_CLIENT)
        .remote(REPLICON_TO_CLIENT_UNRELIABLE)
        .remote(REPLICON_TO_SERVER)
        .remote(REPLICON_TO_SERVER_UNRELIABLE)
}

/// Replicon's message `bytes` on its channel `channel` (of `channels`), as
/// a packet, and whether it goes by an unreliable remote.
pub(crate) fn outgoing(
    channels: &[bevy_replicon::prelude::Channel],
    channel: usize,
    bytes: bytes::Bytes,
) -> (bool, Packet) {
    let unreliable = matches!(channels.get(channel), Some(bevy_replicon::prelude::Channel::Unreliable));
    let packet = Packet {
        // Replicon's channels are few (a game adds some to its own two or
        // three): their ids fit a byte.
        channel: channel as u8,
        bytes,
    };
    (unreliable, packet)
}
