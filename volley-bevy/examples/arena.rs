//! A headless Bevy server app with a fixed tick and two headless client
//! apps, in one process, over TCP on loopback. Clients send their inputs as
//! events; the server moves their players and broadcasts the world each
//! tick; at tick 10 the server asks one client, through a call its systems
//! answer a few frames later, whether it is ready. Prints a short trace and
//! exits 0 when every outcome was as expected.
//!
//! ```text
//! cargo run -p volley-net-bevy --example arena
//! ```

use std::time::Duration;

use bevy_app::{App, Update};
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use volley_bevy::prelude::*;

/// A Bevy message too: a client's systems send it with `MessageWriter<Move>`.
#[derive(Message, Debug, Clone, Serialize, Deserialize)]
struct Move {
    dx: i32,
    dy: i32,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
struct World {
    tick: u32,
    positions: Vec<(u64, i32, i32)>,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReadyQuestion(String);
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ReadyAnswer(bool);

const MOVE: ServerEvent<Move> = ServerEvent::new("Move");
const WORLD: ClientEvent<World> = ClientEvent::new("World");
const READY: ClientFn<ReadyQuestion, ReadyAnswer> = ClientFn::new("Ready").with_timeout(Duration::from_secs(2));

fn protocol() -> Protocol {
    Protocol::builder().remote(MOVE).remote(WORLD).remote(READY).build()
}

/// Ticks of input each client sends.
const INPUT_TICKS: u32 = 20;
/// The server's fixed tick: 50 Hz.
const TICK: Duration = Duration::from_millis(20);

// ---- server ----

#[derive(Component, Default, Debug, Clone, Copy)]
struct Position(i32, i32);

#[derive(Resource, Default)]
struct ServerLog {
    tick: u32,
    asked: bool,
    answer: Option<Result<ReadyAnswer, FunctionError>>,
}

fn server_app(runtime: &VolleyRuntime) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone()).init_resource::<ServerLog>();
    app.add_plugins(VolleyServerPlugin::new(protocol(), ServerConfig::default()).listen_tcp("127.0.0.1:0"))
        .add_remote(MOVE)
        .add_remote(WORLD)
        .add_remote(READY)
        .add_systems(Update, (give_positions, apply_moves, ask_ready, broadcast).chain());
    app
}

fn give_positions(mut commands: Commands, mut joined: MessageReader<PlayerJoined>) {
    for j in joined.read() {
        commands.entity(j.entity).insert(Position::default());
        println!("  server: player {} joined", j.player);
    }
}

fn apply_moves(mut moves: MessageReader<FromClient<Move>>, mut players: Query<&mut Position>) {
    for m in moves.read() {
        if let Some(mut p) = m.entity.and_then(|e| players.get_mut(e).ok()) {
            p.0 += m.event.dx;
            p.1 += m.event.dy;
        }
    }
}

fn ask_ready(mut commands: Commands, mut log: ResMut<ServerLog>, players: Query<&NetPlayer>) {
    log.tick += 1;
    if log.tick >= 10 && !log.asked {
        if let Some(first) = players.iter().min_by_key(|p| p.id()) {
            println!(
                "  server tick {}: asking player {} whether it is ready",
                log.tick,
                first.id()
            );
            // The answer reaches this call's observer; the entity goes after.
            commands
                .spawn(Invoke::player(
                    READY,
                    first.id(),
                    ReadyQuestion("ready for round 2?".into()),
                ))
                .observe(hear_ready);
            log.asked = true;
        }
    }
}

fn hear_ready(done: On<CallDone<ReadyAnswer>>, mut log: ResMut<ServerLog>) {
    println!("  server tick {}: the answer came back: {:?}", log.tick, done.result);
    log.answer = Some(done.result.clone());
}

fn broadcast(log: Res<ServerLog>, players: Query<(&NetPlayer, &Position)>, mut out: MessageWriter<ToClients<World>>) {
    let mut positions: Vec<_> = players.iter().map(|(p, pos)| (p.id().0, pos.0, pos.1)).collect();
    positions.sort_unstable();
    out.write(ToClients {
        to: Target::All,
        event: World {
            tick: log.tick,
            positions,
        },
    });
}

// ---- clients ----

#[derive(Resource)]
struct ClientLog {
    name: &'static str,
    step: (i32, i32),
    sent: u32,
    last_world: Option<World>,
    /// A question's key, answered a few frames after it came.
    pending: Option<(DeferredAnswer<ReadyAnswer>, u32)>,
    frame: u32,
}

fn client_app(runtime: &VolleyRuntime, addr: std::net::SocketAddr, name: &'static str, step: (i32, i32)) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone()).insert_resource(ClientLog {
        name,
        step,
        sent: 0,
        last_world: None,
        pending: None,
        frame: 0,
    });
    app.add_plugins(VolleyClientPlugin::tcp(
        protocol(),
        ClientConfig::default(),
        addr.to_string(),
    ))
    // The same three lines as the server's: each plugin knows its side.
    .add_remote(MOVE)
    .add_remote(WORLD)
    .add_remote(READY)
    .add_systems(
        Update,
        (
            count_frames,
            send_input.run_if(client_connected),
            read_world,
            answer_later,
        )
            .chain(),
    );
    app
}

fn count_frames(mut log: ResMut<ClientLog>) {
    log.frame += 1;
}

/// Runs only while connected (a run condition).
fn send_input(mut log: ResMut<ClientLog>, mut out: MessageWriter<Move>) {
    if log.sent < INPUT_TICKS {
        log.sent += 1;
        out.write(Move {
            dx: log.step.0,
            dy: log.step.1,
        });
    }
}

fn read_world(mut worlds: MessageReader<FromServer<World>>, mut log: ResMut<ClientLog>) {
    if let Some(w) = worlds.read().last() {
        log.last_world = Some(w.event.clone());
    }
}

fn answer_later(
    mut questions: MessageReader<Request<ReadyQuestion, ReadyAnswer>>,
    mut responder: ResMut<Responder<ReadyAnswer>>,
    mut log: ResMut<ClientLog>,
) {
    for q in questions.read() {
        println!("  {}: asked {:?}; will answer in 3 frames", log.name, q.request.0);
        let frame = log.frame;
        log.pending = responder.defer(q.key).map(|answer| (answer, frame + 3));
    }
    if log.pending.as_ref().is_some_and(|(_, at)| log.frame >= *at) {
        let (answer, _) = log.pending.take().expect("pending");
        println!("  {}: answering yes", log.name);
        answer.respond(Ok(ReadyAnswer(true)));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = VolleyRuntime::new();
    let mut server = server_app(&runtime);
    // Listening starts in the first frames (nothing binds while plugins are
    // added): wait for it, a bounded while.
    for _ in 0..500 {
        if *server.world().resource::<ServerState>() == ServerState::Running {
            break;
        }
        server.update();
        std::thread::sleep(Duration::from_millis(2));
    }
    let Some(&addr) = server.world().resource::<VolleyServer>().addrs.first() else {
        return Err("the server did not start listening".into());
    };
    println!("arena server on {addr}, tick {TICK:?}");
    let mut clients = [
        client_app(&runtime, addr, "red", (1, 0)),
        client_app(&runtime, addr, "blue", (0, 1)),
    ];

    // The fixed tick: every app advances one frame, then the loop sleeps.
    for frame in 0..60 {
        server.update();
        for client in &mut clients {
            client.update();
        }
        if frame % 15 == 14 {
            let log = clients[0].world().resource::<ClientLog>();
            println!(
                "  frame {frame}: red sees {:?}",
                log.last_world.as_ref().map(|w| &w.positions)
            );
        }
        std::thread::sleep(TICK);
    }

    let mut failures = Vec::new();
    let world = clients[1].world().resource::<ClientLog>().last_world.clone();
    let positions = world.map(|w| w.positions.iter().map(|(_, x, y)| (*x, *y)).collect::<Vec<_>>());
    println!("final world as blue sees it: {positions:?}");
    let steps = INPUT_TICKS as i32;
    match positions {
        Some(mut p) => {
            p.sort_unstable();
            if p != vec![(0, steps), (steps, 0)] {
                failures.push(format!("positions {p:?}, expected both players {steps} steps out"));
            }
        }
        None => failures.push("no world state reached blue".into()),
    }
    let answer = server.world().resource::<ServerLog>().answer.clone();
    if answer != Some(Ok(ReadyAnswer(true))) {
        failures.push(format!("the ready call ended {answer:?}"));
    }
    if failures.is_empty() {
        println!("every outcome as expected");
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
