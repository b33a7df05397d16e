//! Across nodes of a cluster, through a real nats-server (started here; the
//! rows are skipped with a note if there is no `nats-server`):
//!
//! - `cross_node_rtt`: a call from node A to a player connected to node B,
//!   sequentially, p50, against the floor of a bare NATS request/reply
//!   through the same broker (system `nats`), a local volley call (system
//!   `local`), and the target (system `target`): 1.5 × the floor plus one
//!   local call;
//! - `cluster_room_fanout`: an event to a room of `cluster_players` players
//!   spread over three nodes (deliveries/s until every player has every
//!   event), against the same room on one node (system `local`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use volley::{Client, ClientConfig, EventError, PlayerId, Server, ServerConfig};
use volley_cluster::{ClusterConfig, LocalNats, NatsAdapter};

use crate::systems::rpc_volley;
use crate::{micros_at, Better, Plan, Results};

pub async fn scenario(results: &mut Results, plan: &Plan) {
    let nats = match LocalNats::start() {
        Ok(nats) => nats,
        Err(why) => {
            eprintln!("cluster rows skipped: {why}");
            return;
        }
    };
    eprintln!(
        "cluster: cross-node rtt x {} calls, room of {} players over 3 nodes x {} rounds",
        plan.rtt_calls, plan.cluster_players, plan.rounds
    );
    cross_node_rtt(results, plan, &nats.url()).await;
    room_fanout(results, plan, &nats.url()).await;
}

/// A node of a cluster: its server, and its adapter.
struct Node {
    server: Server,
    adapter: NatsAdapter,
}

async fn node(url: &str, cluster: &str) -> Node {
    let adapter = NatsAdapter::connect(ClusterConfig::new(url, cluster))
        .await
        .expect("a node joins");
    let server = Server::with_adapter(rpc_volley::protocol(), ServerConfig::default(), adapter.clone());
    Node { server, adapter }
}

/// Fires at the room, waiting while the node's outbox to the broker is full.
async fn fire_at_room(node: &Node, payload: &[u8]) {
    loop {
        match node.server.to_room(ROOM).fire(rpc_volley::NEWS, payload.to_vec()) {
            Err(EventError::Unreachable) => tokio::time::sleep(Duration::from_micros(100)).await,
            _ => return,
        }
    }
}

/// A client of `node` over the in-memory transport (no socket: 10,000 of
/// them fit in one process), counting the events it hears.
async fn member(node: &Node, delivered: &Arc<AtomicU64>) -> Client {
    let client = Client::new(rpc_volley::protocol(), ClientConfig::default());
    client.on_request_sync(rpc_volley::CLIENT_ADD_ONE, |_, x: u32| Ok(x.wrapping_add(1)));
    let d = delivered.clone();
    client.on_event(rpc_volley::NEWS, move |_, _| {
        d.fetch_add(1, Ordering::Relaxed);
    });
    client.connect(node.server.connect_memory()).await.expect("connects");
    client
}

async fn wait_players(node: &Node, n: usize) {
    while node.server.player_count() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn cross_node_rtt(results: &mut Results, plan: &Plan, url: &str) {
    let (a, b) = (node(url, "rtt").await, node(url, "rtt").await);
    let delivered = Arc::new(AtomicU64::new(0));
    let _client = member(&b, &delivered).await;
    wait_players(&b, 1).await;
    let player: PlayerId = b.server.players()[0].id();
    let local_player = b.server.players()[0].clone();
    while !a.adapter.live_nodes().contains(&b.adapter.node_id()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The floor: a bare request/reply through the same broker.
    let requester = async_nats::connect(url).await.expect("connects to nats");
    let responder = async_nats::connect(url).await.expect("connects to nats");
    let mut requests = responder.subscribe("floor").await.unwrap();
    // The subscription is the server's once the flush returns.
    responder.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = responder.publish(reply, request.payload).await;
            }
        }
    });
    let n = plan.rtt_calls / 5;
    let (mut floor, mut local, mut cross) = (Vec::new(), Vec::new(), Vec::new());
    // A request now and then finds no responder in a loaded full run (the
    // broker briefly without the subscription); such samples are retried
    // and counted, not measured.
    let mut floor_failures = 0;
    for _ in 0..plan.rounds {
        for _ in 0..n {
            let start = Instant::now();
            match requester.request("floor", vec![1u8; 8].into()).await {
                Ok(_) => floor.push(start.elapsed()),
                Err(_) => floor_failures += 1,
            }
        }
        for _ in 0..n {
            let start = Instant::now();
            let answer = b.server.invoke(&local_player, rpc_volley::CLIENT_ADD_ONE, 1).await;
            local.push(start.elapsed());
            assert_eq!(answer, Ok(2));
        }
        for _ in 0..n {
            let start = Instant::now();
            let answer = a.server.invoke_id(player, rpc_volley::CLIENT_ADD_ONE, 1).await;
            cross.push(start.elapsed());
            assert_eq!(answer, Ok(2));
        }
    }
    if floor_failures > 0 {
        eprintln!("cross_node_rtt: {floor_failures} bare NATS requests failed and were left out");
    }
    let p50 = |mut times: Vec<Duration>| {
        times.sort();
        micros_at(&times, 0.5)
    };
    let (floor, local, cross) = (p50(floor), p50(local), p50(cross));
    let lower = Some(Better::Lower);
    results.add("cross_node_rtt_p50", "nats", floor, "us", lower);
    results.add("cross_node_rtt_p50", "local", local, "us", lower);
    results.add("cross_node_rtt_p50", "target", 1.5 * floor + local, "us", lower);
    results.add("cross_node_rtt_p50", "volley", cross, "us", lower);
    a.adapter.leave_cluster().await;
    b.adapter.leave_cluster().await;
}

/// Connects `players` members to `nodes` in turn and puts each in the room.
async fn room_of(nodes: &[Node], players: usize, delivered: &Arc<AtomicU64>) -> Vec<Client> {
    let mut clients = Vec::with_capacity(players);
    for i in 0..players {
        clients.push(member(&nodes[i % nodes.len()], delivered).await);
    }
    for (i, node) in nodes.iter().enumerate() {
        wait_players(node, (players + nodes.len() - 1 - i) / nodes.len()).await;
        for player in node.server.players() {
            player.join(ROOM);
        }
    }
    clients
}

const ROOM: &str = "arena";

/// Waits until `target` deliveries, at most 30 s; whether they all came.
async fn delivered_all(delivered: &AtomicU64, target: u64) -> bool {
    let start = Instant::now();
    while delivered.load(Ordering::Relaxed) < target {
        if start.elapsed() > Duration::from_secs(30) {
            eprintln!(
                "only {} of {target} deliveries in 30 s",
                delivered.load(Ordering::Relaxed)
            );
            return false;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    true
}

async fn room_fanout(results: &mut Results, plan: &Plan, url: &str) {
    let players = plan.cluster_players;
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(url, "fanout").await);
    }
    let spread = Arc::new(AtomicU64::new(0));
    let _spread_clients = room_of(&nodes, players, &spread).await;
    let single = [node(url, "single").await];
    let together = Arc::new(AtomicU64::new(0));
    let _together_clients = room_of(&single, players, &together).await;
    while nodes.iter().any(|n| n.adapter.live_nodes().len() < 3) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The other nodes follow the room's subject once their members joined:
    // one event, delivered to everyone, says they do.
    let payload = vec![7u8; 100];
    for _ in 0..50 {
        spread.store(0, Ordering::Relaxed);
        fire_at_room(&nodes[0], &payload).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if spread.load(Ordering::Relaxed) == players as u64 {
            break;
        }
    }
    let target = (players * plan.fanout_events) as u64;
    for _ in 0..plan.rounds {
        spread.store(0, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..plan.fanout_events {
            fire_at_room(&nodes[0], &payload).await;
        }
        if delivered_all(&spread, target).await {
            let rate = target as f64 / start.elapsed().as_secs_f64();
            results.add(
                "cluster_room_fanout",
                "volley",
                rate,
                "deliveries/s",
                Some(Better::Higher),
            );
        }
        together.store(0, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..plan.fanout_events {
            let _ = single[0].server.to_room(ROOM).fire(rpc_volley::NEWS, payload.clone());
            tokio::task::yield_now().await;
        }
        if delivered_all(&together, target).await {
            let rate = target as f64 / start.elapsed().as_secs_f64();
            results.add(
                "cluster_room_fanout",
                "local",
                rate,
                "deliveries/s",
                Some(Better::Higher),
            );
        }
    }
    for node in nodes.iter().chain(&single) {
        node.adapter.leave_cluster().await;
    }
}
