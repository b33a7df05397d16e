//! What volley-bevy's systems cost a Bevy frame: a server app with 1,000
//! connected, idle players against the same app with none, in alternating
//! rounds of this run (medians compared), and the heap allocations of each
//! frame, counted by the bench's allocator.

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

/// Time per update over `frames` updates, and allocations per update.
fn measure(app: &mut App, frames: u32) -> (Duration, f64) {
    crate::alloc::counting(true);
    let before = crate::alloc::count();
    let start = Instant::now();
    for _ in 0..frames {
        app.update();
    }
    let took = start.elapsed() / frames;
    let allocations = (crate::alloc::count() - before) as f64 / f64::from(frames);
    crate::alloc::counting(false);
    (took, allocations)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

/// Runs the comparison with `players` idle players and prints it.
pub fn run(players: usize) {
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
    let (mut allocations_without, mut allocations_with) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternating which goes first, so neither always meets a warmer cache.
        let (a, b) = if round % 2 == 0 {
            let a = measure(&mut empty, FRAMES);
            (a, measure(&mut full, FRAMES))
        } else {
            let b = measure(&mut full, FRAMES);
            (measure(&mut empty, FRAMES), b)
        };
        without.push(a.0);
        with.push(b.0);
        allocations_without.push(a.1);
        allocations_with.push(b.1);
    }
    let most = |counts: Vec<f64>| counts.into_iter().fold(0.0, f64::max);
    let (allocations_without, allocations_with) = (most(allocations_without), most(allocations_with));
    let (without, with) = (median(without), median(with));
    println!("volley-bevy, a server app's frame ({ROUNDS} rounds of {FRAMES} updates, medians):");
    println!(
        "  no players:         {without:>10.2?} per update, {allocations_without:.2} allocations (most of any round)"
    );
    println!(
        "  {players} idle players: {with:>10.2?} per update, {allocations_with:.2} allocations (most of any round)"
    );
    println!(
        "  RATIO {players} players / none: {:.2} ({:.0} ns per player per frame)",
        with.as_secs_f64() / without.as_secs_f64(),
        (with.as_secs_f64() - without.as_secs_f64()) * 1e9 / players as f64
    );
    println!("RESULT bevy_frame none {:.3} us", without.as_secs_f64() * 1e6);
    println!("RESULT bevy_frame idle_players {:.3} us", with.as_secs_f64() * 1e6);
    println!("RESULT bevy_frame_allocations none {allocations_without:.2} allocations");
    println!("RESULT bevy_frame_allocations idle_players {allocations_with:.2} allocations");
    drop(clients);
}
