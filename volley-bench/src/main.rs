//! volley against raw TCP, tarpc and tonic, in one process run.
//!
//! ```text
//! cargo run --release -p volley-net-bench -- --quick   # under 3 minutes after the build
//! cargo run --release -p volley-net-bench              # longer, steadier figures
//! cargo run --release -p volley-net-bench -- --rooms-only 40   # only room_fanout and invoke_many, 40 rounds
//! cargo run --release -p volley-net-bench -- --quick --cluster-only  # only the cluster rows (needs nats-server)
//! cargo run --release -p volley-net-bench -- --quick --quic-only     # rtt and pipelined over QUIC and WebTransport
//! cargo run --release -p volley-net-bench -- --quick --resume-only   # rtt and pipelined with resume on and off
//! cargo run --release -p volley-net-bench -- --allocations-only       # heap allocations per call, each side
//! cargo run --release -p volley-net-bench -- --idle-only              # memory per idle client
//! cargo run --release -p volley-net-bench -- --bevy-frame-only        # a Bevy frame with 1,000 idle players against none
//! ```
//!
//! Prints a table, then `RESULT <scenario> <system> <value> <unit>` for each
//! figure (the median of its rounds) and `RATIO <scenario> volley/<peer>
//! <value>` where above 1 means volley is better: the median of the ratios
//! round by round, with their spread (min, median, max) so a change can be
//! told from noise. Systems alternate within each scenario, round by round, each round
//! starting one system further along, so drift on a shared machine and the
//! advantage of going first or last hit all alike.

mod alloc;
mod bevy_frame;
mod cluster;
mod idle;
mod load;
mod proxy;
mod rooms;
mod systems;
mod ts_peer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::FutureExt;
use systems::{raw, rpc_volley, Caller, Rpc};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Every request/response system: volley over each transport, and its peers.
const PEERS: [Rpc; 7] = [
    Rpc::Volley,
    Rpc::VolleyWs,
    Rpc::VolleyQuic,
    Rpc::VolleyWt,
    Rpc::VolleyResume,
    Rpc::Tarpc,
    Rpc::Tonic,
];

/// volley over QUIC and over WebTransport (HTTP/3 on the same QUIC): what
/// WebTransport's own layer costs.
const OVER_QUIC: [Rpc; 2] = [Rpc::VolleyQuic, Rpc::VolleyWt];

/// volley over TCP with resume off and on: what keeping every frame until
/// the peer acknowledges it costs.
const RESUME: [Rpc; 2] = [Rpc::Volley, Rpc::VolleyResume];

/// Rows compared with each other rather than with volley's peers: (system,
/// its floor), printed as `RATIO <scenario> <system>/<floor>`.
const AGAINST: [(&str, &str); 2] = [("volley-wt", "volley-quic"), ("volley-resume", "volley")];

/// How much work each scenario does.
struct Plan {
    rounds: usize,
    /// Rounds of the room scenario: one burst of the machine's noise can
    /// spoil a round of calls to 1,000 players, and with five rounds the
    /// median ratio moved by ±0.05 from run to run.
    room_rounds: usize,
    rtt_calls: usize,
    pipelined_calls: usize,
    fanout_clients: usize,
    fanout_events: usize,
    idle_clients: usize,
    /// Players of the room spread over three cluster nodes.
    cluster_players: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                rounds: 5,
                room_rounds: 9,
                rtt_calls: 5_000,
                pipelined_calls: 200_000,
                fanout_clients: 1_000,
                fanout_events: 20,
                idle_clients: 5_000,
                cluster_players: 10_000,
            }
        } else {
            Self {
                rounds: 7,
                room_rounds: 9,
                rtt_calls: 20_000,
                pipelined_calls: 1_000_000,
                fanout_clients: 1_000,
                fanout_events: 200,
                idle_clients: 5_000,
                cluster_players: 10_000,
            }
        }
    }
}

/// The scenario groups that can run alone.
#[derive(Clone, Copy)]
enum Alone {
    Rooms,
    Cluster,
    OverQuic,
    Resume,
    Allocations,
    Idle,
}

/// Whether a bigger figure is better.
#[derive(Clone, Copy, PartialEq)]
enum Better {
    Higher,
    Lower,
}

/// One figure's samples (one per round), its unit and which way is better.
struct Figure {
    samples: Vec<f64>,
    unit: &'static str,
    better: Option<Better>,
}

impl Figure {
    fn value(&self) -> f64 {
        median(self.samples.clone())
    }

    /// How much better this is than `floor` (above 1: better), and round by
    /// round min / median / max when both figures have the same rounds.
    /// Then the ratio is that median: the two ran back to back in each
    /// round, so drift between rounds (this machine's rtt moves by a
    /// quarter from one to the next) cancels out. The spread tells a change
    /// from noise.
    fn ratio(&self, floor: &Figure) -> Option<(f64, Option<[f64; 3]>)> {
        let better = |ours: f64, theirs: f64| match self.better {
            Some(Better::Higher) => Some(ours / theirs),
            Some(Better::Lower) => Some(theirs / ours),
            None => None,
        };
        let value = better(self.value(), floor.value())?;
        let rounds = (self.samples.len() > 1 && self.samples.len() == floor.samples.len()).then(|| {
            let mut each: Vec<f64> = (self.samples.iter().zip(&floor.samples))
                .filter_map(|(&a, &b)| better(a, b))
                .collect();
            each.sort_by(|a, b| a.partial_cmp(b).unwrap());
            [each[0], each[each.len() / 2], each[each.len() - 1]]
        });
        Some((rounds.map_or(value, |[_, median, _]| median), rounds))
    }
}

fn print_ratio(scenario: &str, ours: &str, theirs: &str, (value, rounds): (f64, Option<[f64; 3]>)) {
    match rounds {
        Some([min, median, max]) => {
            println!(
                "RATIO {scenario} {ours}/{theirs} {value:.3} (rounds: min {min:.3} median {median:.3} max {max:.3})"
            )
        }
        None => println!("RATIO {scenario} {ours}/{theirs} {value:.3}"),
    }
}

#[derive(Default)]
struct Results {
    /// (scenario, system) → figure.
    figures: BTreeMap<(String, String), Figure>,
    /// Scenarios in the order they ran.
    order: Vec<String>,
}

impl Results {
    fn add(&mut self, scenario: &str, system: &str, value: f64, unit: &'static str, better: Option<Better>) {
        if !self.order.iter().any(|s| s == scenario) {
            self.order.push(scenario.to_string());
        }
        self.figures
            .entry((scenario.to_string(), system.to_string()))
            .or_insert_with(|| Figure {
                samples: Vec::new(),
                unit,
                better,
            })
            .samples
            .push(value);
    }

    /// Each scenario's figures, scenarios in the order they ran.
    fn by_scenario(&self) -> impl Iterator<Item = (&str, Vec<(&str, &Figure)>)> {
        self.order.iter().map(|scenario| {
            let figures = self
                .figures
                .iter()
                .filter(|((s, _), _)| s == scenario)
                .map(|((_, system), f)| (system.as_str(), f))
                .collect();
            (scenario.as_str(), figures)
        })
    }

    fn print(&self) {
        println!("\n{:<26} {:<8} {:>14} {:<10}", "scenario", "system", "value", "unit");
        for (scenario, figures) in self.by_scenario() {
            for (system, f) in figures {
                println!("{scenario:<26} {system:<8} {:>14.2} {:<10}", f.value(), f.unit);
            }
        }
        println!();
        for (scenario, figures) in self.by_scenario() {
            for (system, f) in figures {
                println!("RESULT {scenario} {system} {:.3} {}", f.value(), f.unit);
            }
        }
        for (scenario, figures) in self.by_scenario() {
            let Some((_, ours)) = figures.iter().find(|(system, _)| *system == "volley") else {
                continue;
            };
            // volley over TCP against its peers; its other transports are rows
            // of their own.
            let peers = figures.iter().filter(|(system, _)| !system.starts_with("volley"));
            for (system, theirs) in peers {
                if let Some(ratio) = ours.ratio(theirs) {
                    print_ratio(scenario, "volley", system, ratio);
                }
            }
        }
        // WebTransport against plain QUIC, resume on against off: above 1
        // means the first is better.
        for (scenario, figures) in self.by_scenario() {
            let find = |name: &str| figures.iter().find(|(system, _)| *system == name).map(|(_, f)| *f);
            for (system, floor) in AGAINST {
                let (Some(ours), Some(theirs)) = (find(system), find(floor)) else {
                    continue;
                };
                if let Some(ratio) = ours.ratio(theirs) {
                    print_ratio(scenario, system, floor, ratio);
                }
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn micros_at(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
}

/// One round's p50 and p99 (a figure's value is the median of its rounds').
fn record_latencies(results: &mut Results, scenario: &str, system: &str, mut times: Vec<Duration>) {
    times.sort();
    results.add(
        &format!("{scenario}_p50"),
        system,
        micros_at(&times, 0.5),
        "us",
        Some(Better::Lower),
    );
    results.add(
        &format!("{scenario}_p99"),
        system,
        micros_at(&times, 0.99),
        "us",
        Some(Better::Lower),
    );
}

/// `total` calls over `callers`, `inflight` outstanding per caller; calls/s.
async fn pipelined(callers: &[Arc<dyn Caller>], total: usize, inflight: usize) -> f64 {
    let per = total / callers.len();
    let start = Instant::now();
    let tasks: Vec<_> = callers
        .iter()
        .cloned()
        .map(|caller| tokio::spawn(async move { caller.pipelined(per, inflight).await }))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per * callers.len()) as f64 / start.elapsed().as_secs_f64()
}

async fn raw_pipelined(streams: Vec<tokio::net::TcpStream>, total: usize, inflight: usize) -> f64 {
    let per = total / streams.len();
    let n = streams.len();
    let start = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| tokio::spawn(async move { raw::pipelined(&mut s, per, inflight).await }))
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (per * n) as f64 / start.elapsed().as_secs_f64()
}

/// The order systems take in `round`: each round starts one further along,
/// so no system always runs first (on a warm cache) or last.
fn rotated<T: Copy>(systems: &[T], round: usize) -> Vec<T> {
    let mut order = systems.to_vec();
    if !systems.is_empty() {
        order.rotate_left(round % systems.len());
    }
    order
}

async fn scenario_rtt(results: &mut Results, plan: &Plan, systems: &[Rpc]) {
    eprintln!("rtt: {} sequential calls x {} rounds", plan.rtt_calls, plan.rounds);
    let raw_addr = raw::serve().await;
    let mut raw_stream = raw::connect(raw_addr).await;
    let mut callers = BTreeMap::new();
    for &rpc in systems {
        let addr = rpc.serve().await;
        let caller = rpc.connect(addr).await;
        caller.sequential(500).await; // warm up
        callers.insert(rpc.name(), caller);
    }
    raw::rtt(&mut raw_stream, 500).await;
    // `None` is raw TCP, in the rotation with the others.
    let order: Vec<Option<Rpc>> = std::iter::once(None).chain(systems.iter().copied().map(Some)).collect();
    for round in 0..plan.rounds {
        for system in rotated(&order, round) {
            match system {
                None => {
                    let times = raw::rtt(&mut raw_stream, plan.rtt_calls).await;
                    record_latencies(results, "rtt", "raw", times);
                }
                Some(rpc) => {
                    let times = callers[rpc.name()].sequential(plan.rtt_calls).await;
                    record_latencies(results, "rtt", rpc.name(), times);
                }
            }
        }
    }
}

async fn scenario_throughput(
    results: &mut Results,
    plan: &Plan,
    systems: &[Rpc],
    scenario: &str,
    clients: usize,
    inflight: usize,
) {
    eprintln!(
        "{scenario}: {clients} clients x {inflight} in flight, {} calls x {} rounds",
        plan.pipelined_calls, plan.rounds
    );
    let raw_addr = raw::serve().await;
    let mut servers = Vec::new();
    for &rpc in systems {
        servers.push((rpc, rpc.serve().await));
    }
    // `None` is raw TCP, in the rotation with the others.
    let order: Vec<Option<(Rpc, _)>> = std::iter::once(None).chain(servers.into_iter().map(Some)).collect();
    for round in 0..plan.rounds {
        for system in rotated(&order, round) {
            let Some((rpc, addr)) = system else {
                let mut streams = Vec::new();
                for _ in 0..clients {
                    streams.push(raw::connect(raw_addr).await);
                }
                let rate = raw_pipelined(streams, plan.pipelined_calls, inflight).await;
                results.add(scenario, "raw", rate, "calls/s", Some(Better::Higher));
                continue;
            };
            let mut callers = Vec::new();
            for _ in 0..clients {
                callers.push(rpc.connect(addr).await);
            }
            // tonic is ~50x slower: give it a tenth of the calls so a round ends in seconds.
            let total = if rpc == Rpc::Tonic {
                plan.pipelined_calls / 10
            } else {
                plan.pipelined_calls
            };
            results.add(
                scenario,
                rpc.name(),
                pipelined(&callers, total, inflight).await,
                "calls/s",
                Some(Better::Higher),
            );
        }
    }
}

async fn scenario_server_to_client(results: &mut Results, plan: &Plan) {
    eprintln!(
        "server_to_client: {} sequential calls x {} rounds",
        plan.rtt_calls, plan.rounds
    );
    let (server, addr) = rpc_volley::serve().await;
    let _client = rpc_volley::client(addr).await;
    let player = server.players().pop().unwrap();
    server_calls(&server, &player, 500).await;
    for round in 0..plan.rounds {
        for volley in rotated(&[false, true], round) {
            if volley {
                let times = server_calls(&server, &player, plan.rtt_calls).await;
                record_latencies(results, "server_to_client", "volley", times);
            } else {
                let times = raw::server_to_client(plan.rtt_calls).await;
                record_latencies(results, "server_to_client", "raw", times);
            }
        }
    }
}

/// `n` sequential calls from the server to `player`, each timed.
async fn server_calls(server: &volley::Server, player: &volley::Player, n: usize) -> Vec<Duration> {
    systems::time_calls(n, |x| {
        server.invoke(player, rpc_volley::CLIENT_ADD_ONE, x).map(Result::unwrap)
    })
    .await
}

/// `--profile s2c`: the server calling its one player, one call at a
/// time, for `seconds`.
async fn server_to_client_profile(seconds: u64) {
    let (server, addr) = rpc_volley::serve().await;
    let _client = rpc_volley::client(addr).await;
    while server.player_count() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let player = server.players().pop().unwrap();
    let start = Instant::now();
    let mut times = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        times.extend(server_calls(&server, &player, 1000).await);
    }
    eprintln!("{} calls in {:?}", times.len(), start.elapsed());
    if !times.is_empty() {
        times.sort();
        eprintln!("p50 {:.3} us", micros_at(&times, 0.5));
    }
}

async fn scenario_fanout(results: &mut Results, plan: &Plan) {
    let (clients, events) = (plan.fanout_clients, plan.fanout_events);
    eprintln!(
        "fanout: {clients} clients x {events} events of 100 bytes x {} rounds",
        plan.rounds
    );
    // volley
    let (server, addr) = rpc_volley::serve().await;
    let delivered = Arc::new(AtomicU64::new(0));
    let mut keep = Vec::new();
    for _ in 0..clients {
        let client = rpc_volley::client(addr).await;
        let d = delivered.clone();
        client.on_event(rpc_volley::NEWS, move |_, _| {
            d.fetch_add(1, Ordering::Relaxed);
        });
        keep.push(client);
    }
    while server.player_count() < clients {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // raw
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raw_addr = listener.local_addr().unwrap();
    let raw_delivered = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..clients {
        let (connected, accepted) = tokio::join!(raw::connect(raw_addr), listener.accept());
        let (stream, _) = accepted.unwrap();
        stream.set_nodelay(true).unwrap();
        writers.push(stream);
        let d = raw_delivered.clone();
        let mut reader = connected;
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 16 * 1024];
            let mut bytes = 0u64;
            while let Ok(n @ 1..) = reader.read(&mut buf).await {
                bytes += n as u64;
                d.fetch_add(bytes / 104, Ordering::Relaxed);
                bytes %= 104;
            }
        });
    }
    let mut frame = 100u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[7u8; 100]);
    for _ in 0..plan.rounds {
        let target = (clients * events) as u64;
        // raw
        raw_delivered.store(0, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..events {
            for w in &mut writers {
                use tokio::io::AsyncWriteExt;
                w.write_all(&frame).await.unwrap();
            }
        }
        while raw_delivered.load(Ordering::Relaxed) < target {
            tokio::task::yield_now().await;
        }
        results.add(
            "fanout",
            "raw",
            target as f64 / start.elapsed().as_secs_f64(),
            "deliveries/s",
            Some(Better::Higher),
        );
        // volley
        delivered.store(0, Ordering::Relaxed);
        let payload = vec![7u8; 100];
        let start = Instant::now();
        for _ in 0..events {
            let _ = server.fire_all(rpc_volley::NEWS, payload.clone());
            tokio::task::yield_now().await;
        }
        while delivered.load(Ordering::Relaxed) < target {
            tokio::task::yield_now().await;
        }
        results.add(
            "fanout",
            "volley",
            target as f64 / start.elapsed().as_secs_f64(),
            "deliveries/s",
            Some(Better::Higher),
        );
    }
    for client in keep {
        client.disconnect();
    }
}

async fn scenario_wire_bytes(results: &mut Results) {
    eprintln!("wire_bytes: 1000 calls through a counting proxy");
    const N: usize = 1000;
    let record = |results: &mut Results, system: &str, up: u64, down: u64| {
        let (up, down) = (up as f64 / N as f64, down as f64 / N as f64);
        results.add("wire_bytes_request", system, up, "bytes", Some(Better::Lower));
        results.add("wire_bytes_response", system, down, "bytes", Some(Better::Lower));
        results.add("wire_bytes", system, up + down, "bytes", Some(Better::Lower));
    };
    let (addr, counter) = proxy::counting(raw::serve().await).await;
    let mut stream = raw::connect(addr).await;
    raw::rtt(&mut stream, 100).await;
    let before = counter.snapshot();
    raw::rtt(&mut stream, N).await;
    let (up, down) = counter.since(before);
    record(results, "raw", up, down);
    // The counting proxy relays TCP: QUIC's datagrams pass it by.
    for rpc in PEERS
        .into_iter()
        .filter(|rpc| !OVER_QUIC.contains(rpc) && *rpc != Rpc::VolleyResume)
    {
        let (addr, counter) = proxy::counting(rpc.serve().await).await;
        let caller = rpc.connect(addr).await;
        caller.sequential(100).await;
        let before = counter.snapshot();
        caller.sequential(N).await;
        let (up, down) = counter.since(before);
        record(results, rpc.name(), up, down);
    }
}

async fn scenario_allocations(results: &mut Results) {
    eprintln!("allocations: heap allocations per call (memory transport; then each side on its own thread over TCP)");
    let server = volley::Server::new(rpc_volley::protocol(), volley::ServerConfig::default());
    server.on_request_sync(rpc_volley::ADD_ONE, |_, x: u32| Ok(x + 1));
    let client = volley::Client::new(rpc_volley::protocol(), volley::ClientConfig::default());
    client.connect(server.connect_memory()).await.unwrap();
    for i in 0..1000 {
        client.invoke(rpc_volley::ADD_ONE, i).await.unwrap();
    }
    const N: u32 = 10_000;
    alloc::counting(true);
    let before = alloc::count();
    for i in 0..N {
        client.invoke(rpc_volley::ADD_ONE, i).await.unwrap();
    }
    let per_call = (alloc::count() - before) as f64 / f64::from(N);
    // What the payload codec alone costs (encode and decode of a request and of
    // a response), to tell it apart from volley's own.
    let before = alloc::count();
    for i in 0..N {
        let bytes = postcard::to_allocvec(&i).unwrap();
        let back: u32 = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, i);
    }
    let codec = (alloc::count() - before) as f64 / f64::from(N);
    // The session core alone: a call between two sessions, no I/O.
    let session = session_round_trip_allocations(N);
    let (client_side, server_side) = allocations_per_side(N);
    alloc::counting(false);
    results.add("allocations_per_call_client", "volley", client_side, "allocs", None);
    results.add("allocations_per_call_server", "volley", server_side, "allocs", None);
    results.add("allocations_per_call_session_core", "volley", session, "allocs", None);
    results.add("allocations_per_call_codec", "volley", codec * 2.0, "allocs", None);
    results.add("allocations_per_call", "volley", per_call, "allocs", None);
}

/// The runtime every process of the benchmark runs on: multi-thread, `threads` workers.
fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
}

/// Allocations per call on each side, over loopback TCP with the server and
/// the client each on a single-threaded runtime of its own thread, so each
/// side's allocations are counted on its own thread. Counting must be on.
fn allocations_per_side(n: u32) -> (f64, f64) {
    use tokio::sync::{mpsc, oneshot};
    let single = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    // The client asks the server's thread to read its count before and after
    // the measured calls; each answer is that thread's count.
    let (ask, mut asked) = mpsc::unbounded_channel::<oneshot::Sender<u64>>();
    let server_thread = std::thread::spawn(move || {
        single().block_on(async move {
            let (_server, addr) = rpc_volley::serve().await;
            addr_tx.send(addr).unwrap();
            while let Some(answer) = asked.recv().await {
                let _ = answer.send(alloc::thread_count());
            }
        })
    });
    let addr = addr_rx.recv().unwrap();
    let (client_side, server_side) = std::thread::spawn(move || {
        single().block_on(async move {
            let server_count = || async {
                let (tx, rx) = oneshot::channel();
                ask.send(tx).unwrap();
                rx.await.unwrap()
            };
            let client = rpc_volley::client(addr).await;
            for i in 0..1000 {
                client.invoke(rpc_volley::ADD_ONE, i).await.unwrap();
            }
            let (server_before, before) = (server_count().await, alloc::thread_count());
            for i in 0..n {
                client.invoke(rpc_volley::ADD_ONE, i).await.unwrap();
            }
            let (client_after, server_after) = (alloc::thread_count(), server_count().await);
            let per_call = |count: u64| count as f64 / f64::from(n);
            (per_call(client_after - before), per_call(server_after - server_before))
        })
    })
    .join()
    .unwrap();
    server_thread.join().unwrap();
    (client_side, server_side)
}

/// Allocations per call between two bare sessions (no driver, no I/O),
/// with the read buffer reused the way the driver reuses it.
fn session_round_trip_allocations(n: u32) -> f64 {
    use volley::proto::{Direction, RemoteKind, RemoteSpec, RemoteTable, Session, SessionConfig, SessionEvent, Status};
    let table = Arc::new(
        RemoteTable::new(vec![RemoteSpec {
            name: "f",
            kind: RemoteKind::Function,
            direction: Direction::ToServer,
            shape: 0,
        }])
        .unwrap(),
    );
    let now = Instant::now();
    let mut client = Session::client(SessionConfig::default(), table.clone(), b"", now);
    let mut server = Session::server(SessionConfig::default(), table, now);
    let (mut wire, mut buf) = (Vec::new(), bytes::BytesMut::with_capacity(4096));
    let pump = |from: &mut Session, to: &mut Session, wire: &mut Vec<u8>, buf: &mut bytes::BytesMut| {
        wire.clear();
        from.take_transmit(wire);
        buf.extend_from_slice(wire);
        to.handle_input(buf, now);
    };
    pump(&mut client, &mut server, &mut wire, &mut buf);
    while server.poll_event().is_some() {}
    server.accept(1);
    pump(&mut server, &mut client, &mut wire, &mut buf);
    while client.poll_event().is_some() {}
    let mut round = |client: &mut Session, server: &mut Session| {
        client.call(0, &[1, 2], Duration::from_secs(10), now).unwrap();
        pump(client, server, &mut wire, &mut buf);
        while let Some(event) = server.poll_event() {
            if let SessionEvent::Request { id, .. } = event {
                server.respond(id, Status::Ok, &[3]);
            }
        }
        pump(server, client, &mut wire, &mut buf);
        while client.poll_event().is_some() {}
    };
    for _ in 0..100 {
        round(&mut client, &mut server);
    }
    let before = alloc::count();
    for _ in 0..n {
        round(&mut client, &mut server);
    }
    (alloc::count() - before) as f64 / f64::from(n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--idle-clients") {
        return idle::client_process(&args[2..]);
    }
    if args.get(1).map(String::as_str) == Some("--load-clients") {
        return load::client_process(&args[2..]);
    }
    if std::env::var_os("BENCH_NO_LOG").is_none() {
        tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_writer(std::io::stderr)
            .init();
    }
    if args.iter().any(|a| a == "--bevy-frame-only") {
        return bevy_frame::run(1_000);
    }
    let quick = args.iter().any(|a| a == "--quick");
    let plan = Plan::new(quick);
    if args.get(1).map(String::as_str) == Some("--ts-peer") {
        let calls = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(20_000);
        return runtime(2).block_on(ts_peer::run(calls));
    }
    let threads = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let runtime = runtime(threads);
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    // One group of scenarios alone: steadier figures for those rows when
    // tuning them (`--rooms-only N`: N rounds), or the rows that need
    // nats-server (`--cluster-only`).
    let alone = if let Some(rounds) = flag("--rooms-only") {
        Some((Alone::Rooms, rounds as usize))
    } else if args.iter().any(|a| a == "--cluster-only") {
        Some((Alone::Cluster, plan.rounds))
    } else if args.iter().any(|a| a == "--quic-only") {
        Some((Alone::OverQuic, plan.rounds))
    } else if args.iter().any(|a| a == "--resume-only") {
        Some((Alone::Resume, plan.rounds))
    } else if args.iter().any(|a| a == "--allocations-only") {
        Some((Alone::Allocations, 1))
    } else if args.iter().any(|a| a == "--idle-only") {
        Some((Alone::Idle, 1))
    } else {
        None
    };
    if let Some((which, rounds)) = alone {
        let plan = Plan {
            rounds,
            room_rounds: rounds,
            ..plan
        };
        let mut results = Results::default();
        let results = runtime.block_on(async move {
            tokio::spawn(async move {
                match which {
                    Alone::Rooms => rooms::scenario(&mut results, &plan).await,
                    Alone::Cluster => cluster::scenario(&mut results, &plan).await,
                    Alone::OverQuic => {
                        scenario_rtt(&mut results, &plan, &OVER_QUIC).await;
                        scenario_throughput(&mut results, &plan, &OVER_QUIC, "pipelined", 1, 256).await;
                    }
                    Alone::Resume => {
                        scenario_rtt(&mut results, &plan, &RESUME).await;
                        scenario_throughput(&mut results, &plan, &RESUME, "pipelined", 1, 256).await;
                        scenario_throughput(&mut results, &plan, &RESUME, "many_clients", 64, 16).await;
                    }
                    Alone::Allocations => scenario_allocations(&mut results).await,
                    Alone::Idle => idle::scenario(&mut results, plan.idle_clients).await,
                }
                results
            })
            .await
            .unwrap()
        });
        results.print();
        std::process::exit(0);
    }
    if let Some(n) = flag("--load") {
        let (seconds, sample) = (flag("--seconds").unwrap_or(60), flag("--sample").unwrap_or(10));
        runtime
            .block_on(runtime.spawn(load::run(n as usize, seconds, sample)))
            .unwrap();
        std::process::exit(0);
    }
    if let Some(what) = args.iter().position(|a| a == "--profile").and_then(|i| args.get(i + 1)) {
        // A single system and scenario for a few seconds, for perf or callgrind.
        let what = what.clone();
        let seconds = flag("--seconds").unwrap_or(5);
        // `--players N`: the room's size for the room rounds (1,000 unless told).
        let players = flag("--players").map_or(1000, |n| n as usize);
        let task = runtime.spawn(async move {
            if matches!(what.as_str(), "invoke_many" | "separate" | "raw_many") {
                return rooms::profile(&what, players, seconds).await;
            }
            if what == "s2c" {
                return server_to_client_profile(seconds).await;
            }
            // `--resume`: volley with resume on, to compare profiles.
            let rpc = if args.iter().any(|a| a == "--resume") {
                Rpc::VolleyResume
            } else {
                Rpc::Volley
            };
            let addr = rpc.serve().await;
            let caller = rpc.connect(addr).await;
            let mut many = Vec::new();
            if what == "many_clients" {
                for _ in 0..64 {
                    many.push(rpc.connect(addr).await);
                }
            }
            let start = Instant::now();
            let mut calls = 0;
            let mut times = Vec::new();
            let mut raw_stream = raw::connect(raw::serve().await).await;
            while start.elapsed() < Duration::from_secs(seconds) {
                match what.as_str() {
                    "raw" => times.extend(raw::rtt(&mut raw_stream, 1000).await),
                    "rtt" => times.extend(caller.sequential(1000).await),
                    "many_clients" => {
                        pipelined(&many, 64_000, 16).await;
                        calls += 64_000;
                    }
                    _ => {
                        pipelined(std::slice::from_ref(&caller), 100_000, 256).await;
                        calls += 100_000;
                    }
                }
            }
            calls += times.len();
            eprintln!("{calls} calls in {:?}", start.elapsed());
            if !times.is_empty() {
                times.sort();
                eprintln!("p50 {:.3} us", micros_at(&times, 0.5));
            }
        });
        runtime.block_on(task).unwrap();
        std::process::exit(0);
    }
    let started = Instant::now();
    let mut results = Results::default();
    // The scenarios run in a spawned task, on a worker thread, like a game's
    // own code would: not on the thread blocked in `block_on`, which would add
    // a cross-thread wake-up to every call of every system.
    let results = runtime.block_on(async move {
        tokio::spawn(async move {
            // First, while the heap is fresh: later scenarios leave freed
            // memory behind that new connections would reuse unseen.
            idle::scenario(&mut results, plan.idle_clients).await;
            scenario_rtt(&mut results, &plan, &PEERS).await;
            scenario_throughput(&mut results, &plan, &PEERS, "pipelined", 1, 256).await;
            scenario_throughput(&mut results, &plan, &PEERS, "many_clients", 64, 16).await;
            scenario_server_to_client(&mut results, &plan).await;
            scenario_fanout(&mut results, &plan).await;
            rooms::scenario(&mut results, &plan).await;
            cluster::scenario(&mut results, &plan).await;
            scenario_wire_bytes(&mut results).await;
            scenario_allocations(&mut results).await;
            results
        })
        .await
        .unwrap()
    });
    results.print();
    eprintln!("finished in {:.0} s", started.elapsed().as_secs_f64());
    // Background servers would keep the runtime alive.
    std::process::exit(0);
}
