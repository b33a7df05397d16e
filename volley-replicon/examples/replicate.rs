//! A server app and a client app, each with bevy_replicon's plugins and
//! volley's, over one volley connection (in memory, or TCP with `--tcp`):
//! the server replicates a moving entity, and answers the client's volley
//! call in the same frames.
//!
//! ```sh
//! cargo run -p volley-net-replicon --example replicate
//! cargo run -p volley-net-replicon --example replicate -- --tcp
//! ```

use std::time::{Duration, Instant};

use bevy_app::{App, Update};
use bevy_ecs::prelude::*;
use bevy_replicon::prelude::{AppRuleExt, Replicated, RepliconPlugins};
use bevy_state::app::StatesPlugin;
use bevy_time::TimePlugin;
use serde::{Deserialize, Serialize};
use volley_bevy::prelude::*;
use volley_replicon::{replicon_remotes, RepliconClientBackend, RepliconServerBackend};

/// Replicated by replicon.
#[derive(Component, Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Position(i32);

/// A volley function: the client asks, a server observer answers.
const SCORE: ServerFn<String, u32> = ServerFn::new("Score");

fn protocol() -> Protocol {
    replicon_remotes(Protocol::builder().remote(SCORE)).build()
}

/// The plugins both apps have, in the same order (replicon checks that
/// both sides registered the same things).
fn base(runtime: &VolleyRuntime) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone())
        .add_plugins((TimePlugin, StatesPlugin, RepliconPlugins))
        .replicate::<Position>();
    app
}

fn server_app(runtime: &VolleyRuntime, tcp: bool) -> App {
    let mut app = base(runtime);
    let mut plugin = VolleyServerPlugin::new(protocol(), ServerConfig::default());
    if tcp {
        plugin = plugin.listen_tcp("127.0.0.1:0");
    }
    app.add_plugins((plugin, RepliconServerBackend))
        .add_remote(SCORE)
        .add_observer(|ask: On<Request<String, u32>>, mut responder: ResMut<Responder<u32>>| {
            responder.respond(ask.key, Ok(ask.request.len() as u32 * 10));
        })
        .add_systems(Update, |mut moving: Query<&mut Position>| {
            for mut position in &mut moving {
                position.0 += 1;
            }
        });
    app.world_mut().spawn((Replicated, Position(0)));
    // What `App::run` does before the first frame (replicon computes its
    // protocol hash here); a program stepping the app with `update` does it.
    app.finish();
    app.cleanup();
    app
}

#[derive(Resource, Default)]
struct Seen {
    score: Option<Result<u32, FunctionError>>,
}

fn client_app(runtime: &VolleyRuntime) -> App {
    let mut app = base(runtime);
    app.add_plugins((
        VolleyClientPlugin::new(protocol(), ClientConfig::default()),
        RepliconClientBackend,
    ))
    .add_remote(SCORE)
    .init_resource::<Seen>()
    .add_systems(Update, ask_once.run_if(client_just_connected));
    app.finish();
    app.cleanup();
    app
}

fn ask_once(mut commands: Commands) {
    commands
        .spawn(Invoke::server(SCORE, "volley".to_string()))
        .observe(|done: On<CallDone<u32>>, mut seen: ResMut<Seen>| seen.score = Some(done.result.clone()));
}

fn replicated(app: &mut App) -> Option<i32> {
    let mut positions = app.world_mut().query::<&Position>();
    positions.iter(app.world()).next().map(|p| p.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tcp = std::env::args().any(|a| a == "--tcp");
    let runtime = VolleyRuntime::new();
    let mut server = server_app(&runtime, tcp);
    let mut client = client_app(&runtime);
    if tcp {
        volley_bevy::testing::update_until(&mut [&mut server], "listening", Duration::from_secs(10), |apps| {
            !apps[0].world().resource::<VolleyServer>().addrs.is_empty()
        })?;
        let addr = server.world().resource::<VolleyServer>().addrs[0];
        client.world_mut().trigger(Connect::tcp(addr.to_string()));
    } else {
        volley_bevy::testing::connect_in_memory(&mut server, &mut client);
    }
    let start = Instant::now();
    let waited = volley_bevy::testing::update_until(
        &mut [&mut server, &mut client],
        "the entity replicated past 20 and the call answered",
        Duration::from_secs(20),
        |apps| {
            let far = replicated(apps[1]).is_some_and(|x| x > 20);
            far && apps[1].world().resource::<Seen>().score.is_some()
        },
    );
    let frames = match waited {
        Ok(frames) => frames,
        Err(e) => {
            let connected = server
                .world_mut()
                .query::<&bevy_replicon::prelude::ConnectedClient>()
                .iter(server.world())
                .count();
            let seen = replicated(&mut client);
            eprintln!(
                "client {:?} replicon client {:?}, server replicon {:?}, connected clients {connected}, score {:?}, replicated {seen:?}",
                client.world().resource::<ClientState>(),
                client.world().resource::<bevy_state::state::State<bevy_replicon::prelude::ClientState>>().get(),
                server.world().resource::<bevy_state::state::State<bevy_replicon::prelude::ServerState>>().get(),
                client.world().resource::<Seen>().score,
            );
            return Err(e.into());
        }
    };
    let score = client.world().resource::<Seen>().score.clone();
    println!(
        "over {}: after {frames} frames ({:?}), the client sees the server's entity at {:?} (the server's at {:?}); the volley call answered {score:?}",
        if tcp { "TCP" } else { "memory" },
        start.elapsed(),
        replicated(&mut client),
        replicated(&mut server),
    );
    if score != Some(Ok(60)) {
        return Err(format!("the call ended {score:?}").into());
    }
    println!("every outcome as expected");
    Ok(())
}
