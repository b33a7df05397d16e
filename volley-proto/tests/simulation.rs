//! Deterministic network simulation of the session core: many clients and a
//! server over simulated links with latency, jitter, partitions, vanishing
//! clients and server restarts, driven by one seeded random generator and a
//! virtual clock. Each scenario is reproducible from its seed:
//!
//! ```text
//! VOLLEY_SIM_SEED=1234 cargo test -p volley-net-proto --test simulation
//! ```
//!
//! Invariants checked in every run: every call ends exactly once, never after
//! its deadline, with an outcome the scenario allows; when the run settles,
//! every open session's call tables are empty; reliable events arrive exactly
//! once and in order on each connection while it lives.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use volley_proto::*;

mod common;
use common::table;

const CALL: RemoteId = 0; // "a" client → server
const CLIENT_CALL: RemoteId = 1; // "b" server → client
const EVENT: RemoteId = 2; // "c" client → server
const CLIENT_EVENT: RemoteId = 3; // "d" server → client

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// 5–80 ms links with jitter: every call succeeds.
    Latency,
    /// A partition of every link for 1 s, healing well before the 5 s timeout.
    PartitionHeals,
    /// A partition that never heals: calls time out, then the idle timeout
    /// closes every session.
    PartitionStays,
    /// Some clients vanish mid-call.
    ClientsVanish,
    /// The server restarts; its clients reconnect with new sessions.
    ServerRestart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Client,
    Server,
}

/// Something scheduled on the virtual clock.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// Bytes arriving at `side` of connection `conn`.
    Deliver { conn: usize, to: Side, bytes: Vec<u8> },
    /// `side` of `conn` makes a call.
    Call { conn: usize, from: Side },
    /// `side` of `conn` fires the next event in its sequence.
    Fire { conn: usize, from: Side },
    /// `side` of `conn` answers the peer's call `id`.
    Respond {
        conn: usize,
        side: Side,
        id: CallId,
        generation: u64,
    },
    /// The client of `conn` disappears (its transport dies).
    Vanish { conn: usize },
    /// Every connection drops; clients reconnect with new sessions.
    Restart,
    /// Client `client` opens a new connection.
    Reconnect { client: usize },
}

/// One call being waited for.
#[derive(Debug, Clone, Copy)]
struct Pending {
    deadline: Instant,
}

/// One side of one connection, with what its application has seen.
struct Peer {
    session: Session,
    /// Our calls by id.
    calls: BTreeMap<CallId, Pending>,
    /// The peer's calls we owe an answer, with a generation to ignore stale answers.
    owed: BTreeMap<CallId, u64>,
    fired: u32,
    received: Vec<u32>,
}

impl Peer {
    fn new(session: Session) -> Self {
        Self {
            session,
            calls: BTreeMap::new(),
            owed: BTreeMap::new(),
            fired: 0,
            received: Vec::new(),
        }
    }
}

struct Conn {
    client: Peer,
    server: Peer,
    client_index: usize,
    /// Last delivery instant each way, so a link never reorders bytes.
    last_to_server: Instant,
    last_to_client: Instant,
    closed: bool,
}

struct Sim {
    scenario: Scenario,
    seed: u64,
    rng: Rng,
    start: Instant,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64, Item)>>,
    seq: u64,
    conns: Vec<Conn>,
    config: SessionConfig,
    timeout: Duration,
    /// Links are cut from `.0` until `.1` (`None`: forever).
    partition: Option<(Instant, Option<Instant>)>,
    /// Calls stop being made after this.
    quiet_after: Instant,
    outcomes: BTreeMap<&'static str, usize>,
    generation: u64,
}

impl Sim {
    fn new(scenario: Scenario, seed: u64) -> Self {
        let start = Instant::now();
        let config = SessionConfig::default()
            .with_idle_timeout(Duration::from_secs(8))
            .with_keep_alive_interval(Duration::from_secs(2));
        let mut sim = Self {
            scenario,
            seed,
            rng: Rng(seed),
            start,
            now: start,
            queue: BinaryHeap::new(),
            seq: 0,
            conns: Vec::new(),
            config,
            timeout: Duration::from_secs(5),
            partition: None,
            quiet_after: start + Duration::from_secs(20),
            outcomes: BTreeMap::new(),
            generation: 0,
        };
        let clients = 2 + (sim.rng.next() % 4) as usize;
        for client in 0..clients {
            sim.connect(client);
        }
        match scenario {
            Scenario::PartitionHeals => {
                let at = start + sim.rng.millis(3_000, 8_000);
                sim.partition = Some((at, Some(at + Duration::from_secs(1))));
            }
            Scenario::PartitionStays => {
                let at = start + sim.rng.millis(3_000, 8_000);
                sim.partition = Some((at, None));
            }
            Scenario::ClientsVanish => {
                for conn in 0..clients {
                    if sim.rng.chance(50) {
                        let at = sim.rng.millis(2_000, 15_000);
                        sim.schedule(at, Item::Vanish { conn });
                    }
                }
            }
            Scenario::ServerRestart => {
                let at = sim.rng.millis(4_000, 10_000);
                sim.schedule(at, Item::Restart);
            }
            Scenario::Latency => {}
        }
        sim
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "simulation failed: {what}\n  scenario {:?}, seed {} (rerun with VOLLEY_SIM_SEED={})",
            self.scenario, self.seed, self.seed
        )
    }

    fn schedule(&mut self, after: Duration, item: Item) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after, self.seq, item)));
    }

    /// Opens a connection for `client` and schedules its traffic.
    fn connect(&mut self, client_index: usize) {
        let client = Session::client(self.config.clone(), table(), b"", self.now);
        let server = Session::server(self.config.clone(), table(), self.now);
        let conn = self.conns.len();
        self.conns.push(Conn {
            client: Peer::new(client),
            server: Peer::new(server),
            client_index,
            last_to_server: self.now,
            last_to_client: self.now,
            closed: false,
        });
        self.flush(conn);
        for _ in 0..6 {
            let (a, b, c) = (
                self.rng.millis(100, 3_000),
                self.rng.millis(100, 3_000),
                self.rng.millis(100, 3_000),
            );
            self.schedule(
                a,
                Item::Call {
                    conn,
                    from: Side::Client,
                },
            );
            self.schedule(
                b,
                Item::Call {
                    conn,
                    from: Side::Server,
                },
            );
            let from = if self.rng.chance(50) {
                Side::Client
            } else {
                Side::Server
            };
            self.schedule(c, Item::Fire { conn, from });
        }
    }

    fn peer(&mut self, conn: usize, side: Side) -> &mut Peer {
        match side {
            Side::Client => &mut self.conns[conn].client,
            Side::Server => &mut self.conns[conn].server,
        }
    }

    /// When bytes sent now from `from` on `conn` arrive, or `None` if never.
    fn arrival(&mut self, conn: usize, from: Side) -> Option<Instant> {
        let latency = match self.scenario {
            Scenario::Latency => self.rng.millis(5, 80),
            _ => self.rng.millis(1, 30),
        };
        let mut at = self.now + latency;
        if let Some((cut, heal)) = self.partition {
            if self.now >= cut {
                match heal {
                    // Held back and retransmitted once the link heals.
                    Some(heal) if self.now < heal => at = at.max(heal + latency),
                    Some(_) => {}
                    None => return None,
                }
            }
        }
        let c = &mut self.conns[conn];
        let last = match from {
            Side::Client => &mut c.last_to_server,
            Side::Server => &mut c.last_to_client,
        };
        at = at.max(*last);
        *last = at;
        Some(at)
    }

    /// Sends what both sides of `conn` queued.
    fn flush(&mut self, conn: usize) {
        for from in [Side::Client, Side::Server] {
            let mut bytes = Vec::new();
            self.peer(conn, from).session.take_transmit(&mut bytes);
            if bytes.is_empty() || self.conns[conn].closed {
                continue;
            }
            if let Some(at) = self.arrival(conn, from) {
                let to = if from == Side::Client {
                    Side::Server
                } else {
                    Side::Client
                };
                self.seq += 1;
                self.queue
                    .push(Reverse((at, self.seq, Item::Deliver { conn, to, bytes })));
            }
        }
    }

    /// Acts on every event either side of `conn` reports.
    fn react(&mut self, conn: usize) {
        for side in [Side::Client, Side::Server] {
            while let Some(event) = self.peer(conn, side).session.poll_event() {
                self.on_event(conn, side, event);
            }
        }
        self.flush(conn);
    }

    fn record(&mut self, outcome: &'static str) {
        *self.outcomes.entry(outcome).or_default() += 1;
    }

    fn on_event(&mut self, conn: usize, side: Side, event: SessionEvent) {
        let now = self.now;
        match event {
            SessionEvent::Hello { .. } => self.conns[conn].server.session.accept(1),
            SessionEvent::Request { id, .. } => {
                self.generation += 1;
                let generation = self.generation;
                self.peer(conn, side).owed.insert(id, generation);
                let delay = self.rng.millis(0, 400);
                self.schedule(
                    delay,
                    Item::Respond {
                        conn,
                        side,
                        id,
                        generation,
                    },
                );
            }
            SessionEvent::RequestCancelled { id } => {
                self.peer(conn, side).owed.remove(&id);
            }
            SessionEvent::Event { payload, .. } => {
                let n = u32::from_be_bytes(payload[..4].try_into().unwrap());
                let got = self.peer(conn, side).received.len();
                if n as usize != got {
                    self.fail(format!("conn {conn} {side:?} got event {n} after {got} events"));
                }
                self.peer(conn, side).received.push(n);
            }
            SessionEvent::CallEnded { id, outcome } => {
                let Some(pending) = self.peer(conn, side).calls.remove(&id) else {
                    self.fail(format!("conn {conn} {side:?}: call {id} ended twice or was never made"));
                };
                if now > pending.deadline {
                    self.fail(format!(
                        "conn {conn} {side:?}: call {id} ended {:?} after its deadline",
                        now - pending.deadline
                    ));
                }
                let name = match outcome {
                    CallOutcome::Response { status: Status::Ok, .. } => "ok",
                    CallOutcome::TimedOut => "timed out",
                    CallOutcome::Disconnected => "disconnected",
                    other => self.fail(format!("unexpected outcome {other:?}")),
                };
                let allowed = match self.scenario {
                    Scenario::Latency | Scenario::PartitionHeals => name == "ok",
                    Scenario::PartitionStays => true,
                    Scenario::ClientsVanish | Scenario::ServerRestart => name != "timed out",
                };
                if !allowed {
                    self.fail(format!("conn {conn} {side:?}: call {id} {name}, not allowed here"));
                }
                self.record(name);
            }
            SessionEvent::Closed { .. } => {
                let peer = self.peer(conn, side);
                if !peer.calls.is_empty() {
                    let left = peer.calls.len();
                    self.fail(format!("conn {conn} {side:?} closed with {left} calls never ended"));
                }
            }
            SessionEvent::Connected => {}
            _ => {}
        }
    }

    fn step(&mut self, item: Item) {
        match item {
            Item::Deliver { conn, to, bytes } => {
                if !self.conns[conn].closed {
                    let now = self.now;
                    self.peer(conn, to)
                        .session
                        .handle_input(&mut BytesMut::from(&bytes[..]), now);
                }
                self.react(conn);
            }
            Item::Call { conn, from } => {
                if self.now < self.quiet_after && !self.conns[conn].closed {
                    let (remote, now, timeout) = (
                        if from == Side::Client { CALL } else { CLIENT_CALL },
                        self.now,
                        self.timeout,
                    );
                    if let Ok(id) = self.peer(conn, from).session.call(remote, b"req", timeout, now) {
                        self.peer(conn, from).calls.insert(
                            id,
                            Pending {
                                deadline: now + timeout,
                            },
                        );
                    }
                    let again = self.rng.millis(50, 1_500);
                    self.schedule(again, Item::Call { conn, from });
                }
                self.react(conn);
            }
            Item::Fire { conn, from } => {
                if self.now < self.quiet_after && !self.conns[conn].closed {
                    let remote = if from == Side::Client { EVENT } else { CLIENT_EVENT };
                    let peer = self.peer(conn, from);
                    if peer.session.is_open() && peer.session.send_event(remote, &peer.fired.to_be_bytes()).is_ok() {
                        peer.fired += 1;
                    }
                    let again = self.rng.millis(20, 800);
                    self.schedule(again, Item::Fire { conn, from });
                }
                self.react(conn);
            }
            Item::Respond {
                conn,
                side,
                id,
                generation,
            } => {
                let peer = self.peer(conn, side);
                if peer.owed.get(&id) == Some(&generation) {
                    peer.owed.remove(&id);
                    peer.session.respond(id, Status::Ok, b"resp");
                }
                self.react(conn);
            }
            Item::Vanish { conn } => {
                let c = &mut self.conns[conn];
                if !c.closed {
                    c.server
                        .session
                        .handle_transport_closed(Some("connection reset".into()));
                    c.client.session.handle_transport_closed(Some("gone".into()));
                    self.react(conn);
                    self.conns[conn].closed = true;
                }
            }
            Item::Restart => {
                for conn in 0..self.conns.len() {
                    if !self.conns[conn].closed {
                        self.conns[conn].server.session.handle_transport_closed(None);
                        self.conns[conn]
                            .client
                            .session
                            .handle_transport_closed(Some("connection reset".into()));
                        self.react(conn);
                        self.conns[conn].closed = true;
                        let client = self.conns[conn].client_index;
                        let wait = self.rng.millis(200, 2_000);
                        self.schedule(wait, Item::Reconnect { client });
                    }
                }
            }
            Item::Reconnect { client } => self.connect(client),
        }
    }

    /// Runs until nothing is left to happen (or a hard stop), then checks.
    fn run(mut self) -> BTreeMap<&'static str, usize> {
        let hard_stop = self.start + Duration::from_secs(120);
        loop {
            // The next thing to happen: a scheduled item or a session timer.
            let timers = self
                .conns
                .iter()
                .enumerate()
                .filter(|(_, c)| !c.closed)
                .flat_map(|(i, c)| {
                    [
                        (c.client.session.poll_timeout(), i),
                        (c.server.session.poll_timeout(), i),
                    ]
                })
                .filter_map(|(t, i)| t.map(|t| (t, i)))
                .min();
            let next_item = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let settled = self.now > self.quiet_after && self.settled();
            if settled || self.now > hard_stop {
                break;
            }
            match (next_item, timers) {
                (Some(t), Some((tt, _))) if t <= tt => self.next_item(),
                (Some(_), None) => self.next_item(),
                (_, Some((tt, conn))) => {
                    self.now = self.now.max(tt);
                    let now = self.now;
                    self.conns[conn].client.session.handle_timeout(now);
                    self.conns[conn].server.session.handle_timeout(now);
                    self.react(conn);
                }
                (None, None) => break,
            }
        }
        if !self.settled() {
            self.fail("the run did not settle: calls or answers still outstanding".into());
        }
        self.check_end();
        self.outcomes
    }

    fn next_item(&mut self) {
        let Reverse((at, _, item)) = self.queue.pop().unwrap();
        self.now = self.now.max(at);
        self.step(item);
    }

    /// No call outstanding anywhere, nothing owed, no bytes on their way
    /// over a live connection (pings and pongs go on while connections are
    /// open, so an event can be on the wire whenever the calls settle).
    fn settled(&self) -> bool {
        let in_flight = self
            .queue
            .iter()
            .any(|Reverse((_, _, item))| matches!(item, Item::Deliver { conn, .. } if !self.conns[*conn].closed));
        !in_flight
            && self.conns.iter().all(|c| {
                c.closed
                    || (c.client.calls.is_empty()
                        && c.server.calls.is_empty()
                        && c.client.session.pending_calls() == 0
                        && c.server.session.pending_calls() == 0
                        && c.client.session.incoming_calls() == 0
                        && c.server.session.incoming_calls() == 0
                        && c.client.session.transmit_len() == 0
                        && c.server.session.transmit_len() == 0)
            })
    }

    fn check_end(&self) {
        for (i, c) in self.conns.iter().enumerate() {
            for (side, peer, other) in [
                (Side::Client, &c.client, &c.server),
                (Side::Server, &c.server, &c.client),
            ] {
                if !peer.calls.is_empty() {
                    self.fail(format!("conn {i} {side:?}: {} calls never ended", peer.calls.len()));
                }
                // Events: a prefix of what the other side fired, all of it if
                // the connection stayed up.
                if peer.received.len() > other.fired as usize {
                    self.fail(format!("conn {i} {side:?} received more events than were fired"));
                }
                let both_open = c.client.session.is_open() && c.server.session.is_open();
                if both_open && !c.closed && peer.received.len() != other.fired as usize {
                    self.fail(format!(
                        "conn {i} {side:?}: {} of {} events arrived on a live connection",
                        peer.received.len(),
                        other.fired
                    ));
                }
            }
        }
        if self.scenario == Scenario::PartitionStays
            && self
                .conns
                .iter()
                .any(|c| c.client.session.is_open() || c.server.session.is_open())
        {
            self.fail("a session survived a permanent partition".into());
        }
    }
}

fn scenarios() -> [Scenario; 5] {
    [
        Scenario::Latency,
        Scenario::PartitionHeals,
        Scenario::PartitionStays,
        Scenario::ClientsVanish,
        Scenario::ServerRestart,
    ]
}

#[test]
fn many_seeds_every_scenario() {
    if let Some(seed) = std::env::var("VOLLEY_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        for scenario in scenarios() {
            let outcomes = Sim::new(scenario, seed).run();
            println!("{scenario:?} seed {seed}: {outcomes:?}");
        }
        return;
    }
    // Bounded in count and in time.
    let started = std::time::Instant::now();
    let mut runs = 0;
    let mut totals: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for seed in 0..200u64 {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        for scenario in scenarios() {
            for (outcome, n) in Sim::new(scenario, seed).run() {
                *totals.entry((format!("{scenario:?}"), outcome)).or_default() += n;
            }
            runs += 1;
        }
    }
    println!("{runs} runs: {totals:?}");
    assert!(runs >= 50, "only {runs} runs finished in the time bound");
    // Each scenario exercised what it is about.
    let seen = |s: &str, o: &str| totals.get(&(s.to_string(), o)).copied().unwrap_or(0);
    assert!(seen("Latency", "ok") > 0);
    assert!(seen("PartitionHeals", "ok") > 0);
    assert!(seen("PartitionStays", "timed out") > 0);
    assert!(seen("ClientsVanish", "disconnected") > 0);
    assert!(seen("ServerRestart", "disconnected") > 0 && seen("ServerRestart", "ok") > 0);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    for scenario in scenarios() {
        assert_eq!(
            Sim::new(scenario, 42).run(),
            Sim::new(scenario, 42).run(),
            "{scenario:?}"
        );
    }
}
