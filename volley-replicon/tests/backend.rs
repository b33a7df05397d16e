//! A server app and a client app with replicon's plugins over volley, in
//! memory: the player's entity is replicon's connected client, a replicated
//! entity reaches the client and follows the server, and replicon's
//! disconnect request lets the player go. Over QUIC, replicon's
//! unreliable channel rides datagrams.

use std::time::Duration;

use bevy_app::App;
use bevy_ecs::prelude::*;
use bevy_replicon::prelude::{AppRuleExt, ConnectedClient, DisconnectRequest, Replicated, RepliconPlugins};
use bevy_replicon::shared::backend::connected_client::NetworkId;
use bevy_state::app::StatesPlugin;
use bevy_time::TimePlugin;
use serde::{Deserialize, Serialize};
use volley_bevy::prelude::*;
use volley_bevy::testing::{connect_in_memory, update_until};
use volley_replicon::{replicon_remotes, RepliconClientBackend, RepliconServerBackend};

#[derive(Component, Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Health(u32);

fn protocol() -> Protocol {
    replicon_remotes(Protocol::builder()).build()
}

/// Replicon's plugins and a replicated component, then `side`'s volley
/// plugins; finished as `App::run` would.
fn app(runtime: &VolleyRuntime, side: impl FnOnce(&mut App)) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone())
        .add_plugins((TimePlugin, StatesPlugin, RepliconPlugins))
        .replicate::<Health>();
    side(&mut app);
    app.finish();
    app.cleanup();
    app
}

fn health_seen(app: &mut App) -> Option<u32> {
    let mut health = app.world_mut().query::<&Health>();
    health.iter(app.world()).next().map(|h| h.0)
}

fn wait(apps: &mut [&mut App], what: &str, done: impl FnMut(&mut [&mut App]) -> bool) {
    if let Err(e) = update_until(apps, what, Duration::from_secs(10), done) {
        panic!("{e}");
    }
}

#[test]
fn a_player_entity_is_replicons_client_and_sees_replication() {
    let runtime = VolleyRuntime::new();
    let mut server = app(&runtime, |app| {
        app.add_plugins((
            VolleyServerPlugin::new(protocol(), ServerConfig::default()),
            RepliconServerBackend,
        ));
    });
    let mut client = app(&runtime, |app| {
        app.add_plugins((
            VolleyClientPlugin::new(protocol(), ClientConfig::default()),
            RepliconClientBackend,
        ));
    });
    let monster = server.world_mut().spawn((Replicated, Health(100))).id();
    connect_in_memory(&mut server, &mut client);
    wait(&mut [&mut server, &mut client], "the entity replicated", |apps| {
        health_seen(apps[1]) == Some(100)
    });

    // The player's entity is replicon's connected client, with the
    // player's id as its network id.
    let mut players = server
        .world_mut()
        .query::<(Entity, &NetPlayer, &ConnectedClient, &NetworkId)>();
    let (entity, net, _, id) = players.single(server.world()).expect("one connected client");
    assert_eq!(id.get(), net.id().0);

    // A change on the server follows.
    server.world_mut().get_mut::<Health>(monster).unwrap().0 = 42;
    wait(&mut [&mut server, &mut client], "the change replicated", |apps| {
        health_seen(apps[1]) == Some(42)
    });

    // Replicon lets the client go: volley kicks the player.
    server.world_mut().write_message(DisconnectRequest { client: entity });
    wait(&mut [&mut server, &mut client], "the disconnect", |apps| {
        *apps[1].world().resource::<ClientState>() == ClientState::Disconnected
    });
    let state = client
        .world()
        .resource::<bevy_state::state::State<bevy_replicon::prelude::ClientState>>();
    assert_eq!(*state.get(), bevy_replicon::prelude::ClientState::Disconnected);
}

/// Over QUIC, replicon's mutations (its unreliable channel) travel as
/// datagrams, and every change still reaches the client.
#[test]
fn over_quic_replicons_unreliable_channel_rides_datagrams() {
    let runtime = VolleyRuntime::new();
    let (server_tls, client_tls) = volley::transport::tls::self_signed(&["localhost"]).unwrap();
    let built = {
        let _inside = runtime.handle().enter();
        volley::Server::new(protocol(), ServerConfig::default())
    };
    let addr = runtime.block_on(built.listen_quic("127.0.0.1:0", server_tls)).unwrap();
    let mut server = app(&runtime, |app| {
        app.add_plugins((VolleyServerPlugin::from_server(built.clone()), RepliconServerBackend));
    });
    let mut client = app(&runtime, |app| {
        app.add_plugins((
            VolleyClientPlugin::new(protocol(), ClientConfig::default()),
            RepliconClientBackend,
        ));
    });
    let volley_client = client.world().resource::<VolleyClient>().client.clone();
    runtime
        .block_on(async move { volley_client.connect_quic(addr, "localhost", client_tls).await })
        .unwrap();
    let monster = server.world_mut().spawn((Replicated, Health(0))).id();
    wait(&mut [&mut server, &mut client], "the entity replicated", |apps| {
        health_seen(apps[1]) == Some(0)
    });
    for health in 1..=20 {
        server.world_mut().get_mut::<Health>(monster).unwrap().0 = health;
        wait(&mut [&mut server, &mut client], "the change replicated", |apps| {
            health_seen(apps[1]) == Some(health)
        });
    }
    let figures = built.figures();
    let player = &figures.connections[0];
    assert!(
        player.datagrams_out >= 20,
        "{} datagrams for 20 mutations",
        player.datagrams_out
    );
}
