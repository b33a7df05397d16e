//! Rooms and many-answer calls, at 1,000 players:
//!
//! - `room_fanout`: an event to a room of 1,000 (deliveries/s), against
//!   `fire_to` with the same list of players;
//! - `invoke_many`: one call to a room of 1,000, time until every answer is
//!   in, against 1,000 separate `invoke`s started at once, and against raw
//!   TCP doing the same round (a 4-byte request out on 1,000 sockets, a
//!   4-byte answer back on each).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::systems::{raw, rpc_volley};
use crate::{Better, Plan, Results};
use volley::{Client, Player, Server};

const ROOM: &str = "arena";
/// Calls of each kind per round, of which the round keeps the median.
const CALLS_PER_ROUND: usize = 5;

pub async fn scenario(results: &mut Results, plan: &Plan) {
    let players = plan.fanout_clients;
    eprintln!(
        "rooms: {players} players in a room; {} events and one call per round x {} rounds",
        plan.fanout_events, plan.room_rounds
    );
    let delivered = Arc::new(AtomicU64::new(0));
    let d = delivered.clone();
    let Room {
        server,
        clients,
        list,
        mut raw,
    } = Room::connect(players, move |client| {
        let d = d.clone();
        client.on_event(rpc_volley::NEWS, move |_, _| {
            d.fetch_add(1, Ordering::Relaxed);
        });
    })
    .await;

    let payload = vec![7u8; 100];
    let target = (players * plan.fanout_events) as u64;
    let deliveries = |start: Instant| target as f64 / start.elapsed().as_secs_f64();
    for round in 0..plan.room_rounds {
        // fire_to the list
        delivered.store(0, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..plan.fanout_events {
            let _ = server.fire_to(&list, rpc_volley::NEWS, payload.clone());
            tokio::task::yield_now().await;
        }
        wait_for(&delivered, target).await;
        results.add(
            "room_fanout",
            "fire_to",
            deliveries(start),
            "deliveries/s",
            Some(Better::Higher),
        );
        // the room
        delivered.store(0, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..plan.fanout_events {
            let _ = server.to_room(ROOM).fire(rpc_volley::NEWS, payload.clone());
            tokio::task::yield_now().await;
        }
        wait_for(&delivered, target).await;
        results.add(
            "room_fanout",
            "volley",
            deliveries(start),
            "deliveries/s",
            Some(Better::Higher),
        );

        // One call to the room, and 1,000 separate calls started at once;
        // which goes first alternates by round, so neither always inherits
        // the other's warm (or cold) state. A round's figure is the median
        // of CALLS_PER_ROUND calls: one call takes about 10 ms, and with one
        // call per round the round-by-round ratio spread from 0.64 to 1.03
        // in a single run.
        for separate in [round % 2 == 1, round % 2 == 0] {
            let mut times = Vec::with_capacity(CALLS_PER_ROUND);
            for _ in 0..CALLS_PER_ROUND {
                let start = Instant::now();
                if separate {
                    separate_calls(&server, &list).await;
                } else {
                    room_call(&server).await;
                }
                times.push(ms(start.elapsed()));
            }
            let system = if separate { "separate" } else { "volley" };
            results.add("invoke_many", system, crate::median(times), "ms", Some(Better::Lower));
        }
        // raw TCP
        let mut times = Vec::with_capacity(CALLS_PER_ROUND);
        for _ in 0..CALLS_PER_ROUND {
            let start = Instant::now();
            raw.round().await;
            times.push(ms(start.elapsed()));
        }
        results.add("invoke_many", "raw", crate::median(times), "ms", Some(Better::Lower));
    }
    for client in clients {
        client.disconnect();
    }
}

/// `--profile invoke_many|separate|raw_many`: one of the call rounds above,
/// over and over for `seconds`, for perf or callgrind (the 1,000 players
/// connect first).
pub async fn profile(what: &str, players: usize, seconds: u64) {
    let Room {
        server,
        clients: _clients,
        list,
        mut raw,
    } = Room::connect(players, |_| {}).await;
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < Duration::from_secs(seconds) {
        match what {
            "raw_many" => raw.round().await,
            "separate" => separate_calls(&server, &list).await,
            _ => room_call(&server).await,
        }
        rounds += 1;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{rounds} rounds in {elapsed:?}: {:.3} ms each",
        ms(elapsed) / f64::from(rounds)
    );
}

/// A server with `players` clients connected (each set up by `prepare`),
/// all in the room, and raw TCP's version of the same players.
struct Room {
    server: Server,
    clients: Vec<Client>,
    /// The players, in the room.
    list: Vec<Player>,
    raw: RawRound,
}

impl Room {
    async fn connect(players: usize, prepare: impl Fn(&Client)) -> Self {
        let (server, addr) = rpc_volley::serve().await;
        let mut clients = Vec::new();
        for _ in 0..players {
            let client = rpc_volley::client(addr).await;
            prepare(&client);
            clients.push(client);
        }
        while server.player_count() < players {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let list = server.players();
        for player in &list {
            player.join(ROOM);
        }
        let raw = RawRound::connect(players).await;
        Self {
            server,
            clients,
            list,
            raw,
        }
    }
}

/// One call to each player in `list`, all started at once, until every
/// answer is in.
async fn separate_calls(server: &Server, list: &[Player]) {
    let mut calls: FuturesUnordered<_> = list
        .iter()
        .map(|player| server.invoke(player, rpc_volley::CLIENT_ADD_ONE, 1))
        .collect();
    while let Some(answer) = calls.next().await {
        assert_eq!(answer, Ok(2));
    }
}

/// One call to the room, until every answer is in.
async fn room_call(server: &Server) {
    let answers = server.to_room(ROOM).invoke(rpc_volley::CLIENT_ADD_ONE, 1).all().await;
    assert!(
        answers.iter().all(|(_, answer)| *answer == Ok(2)),
        "every player answers"
    );
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

async fn wait_for(delivered: &AtomicU64, target: u64) {
    while delivered.load(Ordering::Relaxed) < target {
        tokio::task::yield_now().await;
    }
}

/// Raw TCP's version of one call to every player: the "server" ends of
/// `n` connections, whose "client" ends answer each 4-byte request with the
/// number plus one.
struct RawRound {
    sockets: Vec<tokio::net::TcpStream>,
}

impl RawRound {
    async fn connect(n: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut sockets = Vec::with_capacity(n);
        for _ in 0..n {
            let (mut client, accepted) = tokio::join!(raw::connect(addr), listener.accept());
            let (server_end, _) = accepted.unwrap();
            server_end.set_nodelay(true).unwrap();
            sockets.push(server_end);
            tokio::spawn(async move {
                let mut request = [0u8; 4];
                while client.read_exact(&mut request).await.is_ok() {
                    let answer = u32::from_le_bytes(request).wrapping_add(1);
                    if client.write_all(&answer.to_le_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
        Self { sockets }
    }

    /// Asks every connection, then reads every answer.
    async fn round(&mut self) {
        for socket in &mut self.sockets {
            socket.write_all(&1u32.to_le_bytes()).await.unwrap();
        }
        let mut answer = [0u8; 4];
        for socket in &mut self.sockets {
            socket.read_exact(&mut answer).await.unwrap();
            assert_eq!(u32::from_le_bytes(answer), 2);
        }
    }
}
