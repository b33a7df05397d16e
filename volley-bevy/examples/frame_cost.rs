//! What volley's systems cost a frame: a server app with 1,000 connected,
//! idle players against the same app with none, both measured in this run
//! (the machine may be shared and noisy: rounds alternate, and the median
//! of each is compared).
//!
//! ```sh
//! cargo run --release -p volley-net-bevy --example frame_cost            # 1,000 players
//! cargo run --release -p volley-net-bevy --example frame_cost -- 200     # another count
//! ```

use std::time::{Duration, Instant};

use bevy_app::{App, Update};
use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use volley_bevy::prelude::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Move(i32);
#[derive(Debug, Clone, Serialize, Deserialize)]
struct World(i32);
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ask(u32);

const MOVE: ServerEvent<Move> = ServerEvent::new("Move");
const WORLD: ClientEvent<World> = ClientEvent::new("World");
const BUY: ServerFn<Ask, u32> = ServerFn::new("Buy");
const READY: ClientFn<Ask, bool> = ClientFn::new("Ready");

fn protocol() -> Protocol {
    Protocol::builder()
        .remote(MOVE)
        .remote(WORLD)
        .remote(BUY)
        .remote(READY)
        .build()
}

/// A game's server app: every kind of remote registered, a system reading
/// each (with nothing to read).
fn server_app(runtime: &VolleyRuntime) -> App {
    let mut app = App::new();
    app.insert_resource(runtime.clone())
        .add_plugins(VolleyServerPlugin::new(protocol(), ServerConfig::default()))
        .receive_from_clients(MOVE)
        .send_to_clients(WORLD)
        .answer_clients(BUY)
        .call_clients(READY)
        .add_systems(Update, read_moves);
    app
}

fn read_moves(mut moves: MessageReader<FromClient<Move>>) {
    for _ in moves.read() {}
}

/// Time per update over `frames` updates.
fn measure(app: &mut App, frames: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..frames {
        app.update();
    }
    start.elapsed() / frames
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    let players: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let runtime = VolleyRuntime::new();
    let mut empty = server_app(&runtime);
    let mut full = server_app(&runtime);
    let server = full.world().resource::<VolleyServer>().server.clone();
    let clients: Vec<volley::Client> = runtime.block_on(async move {
        let mut clients = Vec::with_capacity(players);
        for _ in 0..players {
            let client = volley::Client::new(protocol(), ClientConfig::default());
            client
                .connect(server.connect_memory())
                .await
                .expect("an in-memory connection");
            clients.push(client);
        }
        clients
    });
    // Every player spawned, the start-up frames past.
    for _ in 0..10_000 {
        full.update();
        if full
            .world()
            .resource::<PlayerEntities>()
            .get(PlayerId(players as u64))
            .is_some()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let spawned = full.world_mut().query::<&NetPlayer>().iter(full.world()).count();
    assert_eq!(spawned, players, "every player has its entity");
    for _ in 0..100 {
        empty.update();
        full.update();
    }

    const FRAMES: u32 = 2_000;
    const ROUNDS: usize = 7;
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternating which goes first, so neither always meets a warmer cache.
        let (a, b) = if round % 2 == 0 {
            let a = measure(&mut empty, FRAMES);
            (a, measure(&mut full, FRAMES))
        } else {
            let b = measure(&mut full, FRAMES);
            (measure(&mut empty, FRAMES), b)
        };
        without.push(a);
        with.push(b);
    }
    let (without, with) = (median(without), median(with));
    println!("volley-bevy, a server app's frame ({ROUNDS} rounds of {FRAMES} updates, medians):");
    println!("  no players:         {without:>10.2?} per update");
    println!("  {players} idle players: {with:>10.2?} per update");
    println!(
        "  RATIO {players} players / none: {:.2} ({:.0} ns per player per frame)",
        with.as_secs_f64() / without.as_secs_f64(),
        (with.as_secs_f64() - without.as_secs_f64()) * 1e9 / players as f64
    );
    drop(clients);
}
