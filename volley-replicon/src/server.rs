//! The server's side of the backend: players are replicon's connected
//! clients; their packets go both ways as volley events.

use bevy_app::{App, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::prelude::*;
use bevy_replicon::prelude::{
    ConnectedClient, ConnectedClientStats, DisconnectRequest, RepliconChannels, ServerMessages,
};
use bevy_replicon::server::ServerSystems;
use bevy_replicon::shared::backend::connected_client::NetworkId;
use bevy_state::state::NextState;
use volley_bevy::{FromClient, NetPlayer, Rtt, ServerAppExt, ServerState, VolleySet};

use crate::packet::{
    outgoing, Packet, REPLICON_TO_CLIENT, REPLICON_TO_CLIENT_UNRELIABLE, REPLICON_TO_SERVER,
    REPLICON_TO_SERVER_UNRELIABLE,
};

/// The most bytes replicon puts in one message of its unreliable channels
/// (its `ConnectedClient::max_size`): what fits a datagram on a typical
/// path, with room for QUIC's and volley's headers.
pub const MAX_PACKET: usize = 1_150;

/// The server's backend: add after `VolleyServerPlugin` and replicon's
/// plugins.
#[derive(Debug, Default)]
pub struct RepliconServerBackend;

impl Plugin for RepliconServerBackend {
    fn build(&self, app: &mut App) {
        app.receive_from_clients(REPLICON_TO_SERVER)
            .receive_from_clients(REPLICON_TO_SERVER_UNRELIABLE)
            .add_observer(connect_client)
            .add_systems(
                PreUpdate,
                (follow_state, receive_packets, copy_stats)
                    .after(VolleySet::Receive)
                    .in_set(ServerSystems::ReceivePackets),
            )
            .add_systems(
                PostUpdate,
                (send_packets, disconnect_on_request)
                    .chain()
                    .in_set(ServerSystems::SendPackets),
            );
    }
}

/// An observer: a player's entity becomes replicon's connected client.
fn connect_client(joined: On<Add, NetPlayer>, players: Query<&NetPlayer>, mut commands: Commands) {
    let Ok(net) = players.get(joined.entity) else { return };
    commands
        .entity(joined.entity)
        .insert((ConnectedClient { max_size: MAX_PACKET }, NetworkId::new(net.id().0)));
}

/// Replicon's server state follows volley-bevy's.
fn follow_state(state: Res<ServerState>, mut replicon: ResMut<NextState<bevy_replicon::prelude::ServerState>>) {
    if state.is_changed() {
        let wanted = match *state {
            ServerState::Running => bevy_replicon::prelude::ServerState::Running,
            ServerState::Stopped => bevy_replicon::prelude::ServerState::Stopped,
        };
        NextState::set_if_neq(&mut *replicon, wanted);
    }
}

fn receive_packets(mut packets: MessageReader<FromClient<Packet>>, mut messages: ResMut<ServerMessages>) {
    for packet in packets.read() {
        // A player that left in the frame it sent has no entity: nothing
        // to replicate to it any more.
        if let Some(entity) = packet.entity {
            messages.insert_received(entity, packet.event.channel, packet.event.bytes.clone());
        }
    }
}

fn copy_stats(mut players: Query<(&Rtt, &mut ConnectedClientStats), Changed<Rtt>>) {
    for (rtt, mut stats) in &mut players {
        stats.rtt = rtt.0.map_or(0.0, |rtt| rtt.as_secs_f64());
    }
}

fn send_packets(mut messages: ResMut<ServerMessages>, channels: Res<RepliconChannels>, players: Query<&NetPlayer>) {
    let kinds = channels.server_channels();
    for (entity, channel, bytes) in messages.drain_sent() {
        let Ok(net) = players.get(entity) else { continue };
        let (unreliable, packet) = outgoing(kinds, channel, bytes);
        let remote = if unreliable {
            REPLICON_TO_CLIENT_UNRELIABLE
        } else {
            REPLICON_TO_CLIENT
        };
        if let Err(error) = net.player.fire(remote, packet) {
            tracing::debug!(player = %net.id(), %error, "replicon packet not sent");
        }
    }
}

/// Replicon asks to let a client go: its player is kicked (despawning the
/// entity does it).
fn disconnect_on_request(mut requests: MessageReader<DisconnectRequest>, mut commands: Commands) {
    for request in requests.read() {
        commands.entity(request.client).try_despawn();
    }
}
