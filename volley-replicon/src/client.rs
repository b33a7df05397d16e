//! A client's side of the backend: the server's packets in, its own out,
//! and replicon's client state kept from volley-bevy's.

use bevy_app::{App, Plugin, PostUpdate, PreUpdate};
use bevy_ecs::prelude::*;
use bevy_replicon::client::ClientSystems;
use bevy_replicon::prelude::{ClientMessages, ClientStats, RepliconChannels};
use bevy_state::state::{NextState, State};
use volley_bevy::{ClientAppExt, ClientState, FromServer, Reconnected, ServerRtt, VolleyClient, VolleySet};

use crate::packet::{
    outgoing, Packet, REPLICON_TO_CLIENT, REPLICON_TO_CLIENT_UNRELIABLE, REPLICON_TO_SERVER,
    REPLICON_TO_SERVER_UNRELIABLE,
};

/// A client's backend: add after `VolleyClientPlugin` and replicon's
/// plugins.
#[derive(Debug, Default)]
pub struct RepliconClientBackend;

impl Plugin for RepliconClientBackend {
    fn build(&self, app: &mut App) {
        app.receive_from_server(REPLICON_TO_CLIENT)
            .receive_from_server(REPLICON_TO_CLIENT_UNRELIABLE)
            .init_resource::<Redialed>()
            .add_systems(
                PreUpdate,
                (follow_state, receive_packets, copy_stats)
                    .chain()
                    .after(VolleySet::Receive)
                    .in_set(ClientSystems::ReceivePackets),
            )
            .add_systems(PostUpdate, send_packets.in_set(ClientSystems::SendPackets));
    }
}

/// A redial (a new player) seen: replicon goes through `Disconnected`
/// before it connects again.
#[derive(Resource, Default)]
struct Redialed(bool);

/// Replicon's client state follows volley-bevy's. Reconnecting by a
/// resume keeps it connected (nothing was lost); a redial starts it over.
fn follow_state(
    state: Res<ClientState>,
    mut back: MessageReader<Reconnected>,
    mut redialed: ResMut<Redialed>,
    current: Res<State<bevy_replicon::prelude::ClientState>>,
    mut replicon: ResMut<NextState<bevy_replicon::prelude::ClientState>>,
) {
    use bevy_replicon::prelude::ClientState as Replicon;
    if back.read().any(|back| !back.resumed) {
        redialed.0 = true;
    }
    let wanted = match *state {
        ClientState::Connected if redialed.0 && *current.get() == Replicon::Connected => {
            redialed.0 = false;
            Replicon::Disconnected
        }
        ClientState::Connected => Replicon::Connected,
        ClientState::Connecting => Replicon::Connecting,
        // Resuming: the server keeps this client's replication as it was.
        ClientState::Reconnecting => *current.get(),
        ClientState::Disconnected => Replicon::Disconnected,
    };
    if wanted != *current.get() {
        replicon.set(wanted);
    }
}

fn receive_packets(mut packets: MessageReader<FromServer<Packet>>, mut messages: ResMut<ClientMessages>) {
    for packet in packets.read() {
        messages.insert_received(packet.event.channel, packet.event.bytes.clone());
    }
}

fn copy_stats(rtt: Res<ServerRtt>, mut stats: ResMut<ClientStats>) {
    if rtt.is_changed() {
        stats.rtt = rtt.0.map_or(0.0, |rtt| rtt.as_secs_f64());
    }
}

fn send_packets(mut messages: ResMut<ClientMessages>, channels: Res<RepliconChannels>, client: Res<VolleyClient>) {
    let kinds = channels.client_channels();
    for (channel, bytes) in messages.drain_sent() {
        let (unreliable, packet) = outgoing(kinds, channel, bytes);
        let remote = if unreliable {
            REPLICON_TO_SERVER_UNRELIABLE
        } else {
            REPLICON_TO_SERVER
        };
        if let Err(error) = client.client.fire(remote, packet) {
            tracing::debug!(%error, "replicon packet not sent");
        }
    }
}
