//! Three node processes against one real nats-server, clients on each over
//! TCP: every cross-node operation, then a node killed (SIGKILL) mid-call,
//! then the broker killed and started again.
//!
//! This file is its own `main` (`harness = false`): run with `--node URL
//! CLUSTER`, it is one node process; run plainly, it starts the broker and
//! three of itself as nodes, and checks what their clients see.

#[path = "support/game.rs"]
mod game;
#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use game::*;
use volley::{FunctionError, Server, ServerConfig};
use volley_cluster::{ClusterConfig, NatsAdapter};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if args.get(1).map(String::as_str) == Some("--node") {
        return runtime.block_on(node_process(args[2].clone(), args[3].clone()));
    }
    // `cargo test` passes its own flags; a filter that names nothing here
    // (another test's name) skips the whole run.
    if args.iter().skip(1).any(|a| !a.starts_with('-')) && !args.iter().any(|a| a.contains("cluster")) {
        return;
    }
    let failures = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(240), run())
            .await
            .unwrap_or_else(|_| vec!["the whole run took over 240 s".to_string()])
    });
    if failures.is_empty() {
        println!("test cluster_processes ... ok");
    } else {
        for failure in &failures {
            eprintln!("FAILED: {failure}");
        }
        std::process::exit(1);
    }
}

/// One node: a volley server in the cluster, serving the game over TCP.
async fn node_process(nats: String, cluster: String) {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = ClusterConfig::new(nats, cluster);
    let adapter = NatsAdapter::connect(config).await.expect("joins the cluster");
    let server = Server::with_adapter(protocol(), ServerConfig::default(), adapter.clone());
    serve(&server);
    let addr = server.listen_tcp("127.0.0.1:0").await.unwrap();
    println!("NODE {addr} {}", adapter.node_id());
    // Until killed, or until the test's end of stdin closes.
    let _ = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    })
    .await;
}

struct Node {
    child: Child,
    addr: SocketAddr,
}

fn start_node(nats: &str, cluster: &str) -> Node {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--node", nats, cluster])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts a node process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.split_whitespace().nth(1).expect("NODE line").parse().unwrap();
    Node { child, addr }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks, collected: the run goes on after a failure to report them all.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: impl std::fmt::Debug) {
        if ok {
            println!("  ok: {what}");
        } else {
            self.0.push(format!("{what}: {detail:?}"));
        }
    }
}

async fn heard(inbox: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(3), inbox.recv())
        .await
        .ok()
        .flatten()
}

async fn quiet(inbox: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> bool {
    tokio::time::timeout(Duration::from_millis(300), inbox.recv())
        .await
        .is_err()
}

/// Polls `what` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, mut what: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if what().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn run() -> Vec<String> {
    let mut broker = match support::Broker::start() {
        Ok(broker) => broker,
        Err(why) => return vec![why],
    };
    let nats = broker.url();
    let cluster = "test";
    let nodes: Vec<Node> = (0..3).map(|_| start_node(&nats, cluster)).collect();
    let mut c = Checks::default();

    let pa = client(nodes[0].addr).await;
    let pb = client(nodes[1].addr).await;
    let pc = client(nodes[2].addr).await;
    let late = client(nodes[2].addr).await;
    let (a, mut a_inbox, a_id) = (pa.client.clone(), pa.inbox, pa.id);
    let (b, mut b_inbox, b_id) = (pb.client.clone(), pb.inbox, pb.id);
    let (mut c_inbox, c_id) = (pc.inbox, pc.id);
    let late_id = late.id;
    let cancelled = |p: &game::Cancelled| p.0.load(std::sync::atomic::Ordering::SeqCst);
    let (b_cancelled, c_cancelled, late_cancelled) = (pb.cancelled, pc.cancelled, late.cancelled);
    let node_of = |id: u64| id >> 32;
    c.check(
        "player ids are unique and name their node",
        [a_id, b_id, c_id]
            .iter()
            .map(|id| node_of(*id))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 3
            && node_of(c_id) == node_of(late_id)
            && c_id != late_id,
        (a_id, b_id, c_id, late_id),
    );
    // Every node has heard every other's heartbeat.
    let counted = eventually(Duration::from_secs(5), || async {
        matches!(a.invoke(COUNT, None).await, Ok((players, silent)) if players.len() == 4 && silent.is_empty())
    })
    .await;
    c.check(
        "every node sees the 4 players of the cluster",
        counted,
        a.invoke(COUNT, None).await,
    );

    // One player, across nodes.
    let whisper = a.invoke(WHISPER, (b_id, "psst".into())).await;
    c.check(
        "a whisper crosses nodes",
        whisper.is_ok() && heard(&mut b_inbox).await.as_deref() == Some("psst"),
        whisper,
    );
    let started = Instant::now();
    let answer = a.invoke(ASK, (c_id, "ready?".into())).await;
    c.check(
        "a call crosses nodes and comes back",
        answer.as_deref() == Ok("true"),
        (&answer, started.elapsed()),
    );
    let nobody = (node_of(b_id) << 32) + 9_999;
    let started = Instant::now();
    let answer = a.invoke(ASK, (nobody, "hello?".into())).await;
    c.check(
        "a player missing from a live node is Disconnected at once",
        answer.as_deref() == Ok("Disconnected") && started.elapsed() < Duration::from_secs(1),
        (&answer, started.elapsed()),
    );
    let started = Instant::now();
    let answer = a.invoke(ASK, ((12_345 << 32) + 1, "hello?".into())).await;
    c.check(
        "a player of no node is Disconnected at once (no responders)",
        answer.as_deref() == Ok("Disconnected") && started.elapsed() < Duration::from_secs(1),
        (&answer, started.elapsed()),
    );

    // Rooms spanning the three nodes, joined from node A.
    for who in [a_id, b_id, c_id] {
        let joined = a.invoke(JOIN, (who, "lobby".into())).await;
        c.check(
            "a player joins a room from another node",
            joined == Ok(true),
            (who, joined),
        );
    }
    // Room subscriptions are set up as members join: give them a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let said = a.invoke(SAY, ("lobby".into(), "hello lobby".into())).await;
    c.check(
        "a room event reaches members on every node but the sender",
        said.is_ok()
            && heard(&mut b_inbox).await.as_deref() == Some("hello lobby")
            && heard(&mut c_inbox).await.as_deref() == Some("hello lobby")
            && quiet(&mut a_inbox).await,
        said,
    );
    let members = b.invoke(COUNT, Some("lobby".into())).await;
    c.check(
        "a room's members are counted across nodes",
        matches!(&members, Ok((players, silent)) if *players == { let mut v = vec![a_id, b_id, c_id]; v.sort(); v } && silent.is_empty()),
        members,
    );
    let shout = b.invoke(SHOUT, "everyone!".into()).await;
    c.check(
        "an event to all reaches every node but the sender",
        shout.is_ok()
            && heard(&mut a_inbox).await.as_deref() == Some("everyone!")
            && heard(&mut c_inbox).await.as_deref() == Some("everyone!")
            && quiet(&mut b_inbox).await,
        shout,
    );

    // Many answers across nodes: one player never answers.
    let joined = a.invoke(JOIN, (late_id, "lobby".into())).await;
    c.check("a fourth member joins", joined == Ok(true), joined);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let poll = a.invoke(POLL, ("lobby".into(), "never mind?".into(), 500)).await;
    c.check(
        "nobody answering: every member appears with Timeout at the deadline",
        matches!(&poll, Ok((answers, silent)) if answers.len() == 4 && answers.iter().all(|(_, a)| a == "Timeout") && silent.is_empty()),
        (&poll, started.elapsed()),
    );
    let poll = b.invoke(POLL, ("lobby".into(), "ready?".into(), 2_000)).await;
    let expected: Vec<(u64, String)> = {
        let mut v: Vec<_> = [a_id, b_id, c_id, late_id]
            .iter()
            .map(|id| (*id, "true".to_string()))
            .collect();
        v.sort();
        v
    };
    c.check(
        "everyone answering: four answers from three nodes",
        matches!(&poll, Ok((answers, silent)) if *answers == expected && silent.is_empty()),
        poll,
    );

    // Dropping a call cancels it at the player on the other node (its
    // count may have moved already: the timed-out poll above cancelled too).
    let c_before = cancelled(&c_cancelled);
    let gave_up = a
        .invoke_with_timeout(ASK, (c_id, "never".into()), Duration::from_millis(300))
        .await;
    let stopped = eventually(Duration::from_secs(3), || async { cancelled(&c_cancelled) > c_before }).await;
    c.check(
        "a dropped cross-node call stops the player's handler",
        gave_up == Err(FunctionError::Timeout) && stopped,
        gave_up,
    );
    // Dropping a group call cancels it on every node.
    let before = [&b_cancelled, &late_cancelled].map(cancelled);
    let gave_up = a
        .invoke_with_timeout(
            POLL,
            ("lobby".into(), "never".into(), 5_000),
            Duration::from_millis(300),
        )
        .await;
    let stopped = eventually(Duration::from_secs(3), || async {
        [&b_cancelled, &late_cancelled]
            .iter()
            .zip(before)
            .all(|(p, was)| cancelled(p) == was + 1)
    })
    .await;
    c.check(
        "a dropped group call stops the handlers on every node",
        gave_up == Err(FunctionError::Timeout) && stopped,
        gave_up,
    );

    // A node that is alive but does not answer (stopped, SIGSTOP) is named.
    let stopped_node = nodes[2].child.id();
    let _ = Command::new("kill").args(["-STOP", &stopped_node.to_string()]).status();
    // Stopped for sure (state T in /proc) before the call goes out.
    let is_stopped = || {
        std::fs::read_to_string(format!("/proc/{stopped_node}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(')').next().map(|rest| rest.trim_start().starts_with('T')))
            .unwrap_or(false)
    };
    let stop_seen = eventually(Duration::from_secs(2), || async { is_stopped() }).await;
    c.check("the node process is stopped (SIGSTOP)", stop_seen, stopped_node);
    let poll = a.invoke(POLL, ("lobby".into(), "ready?".into(), 300)).await;
    let _ = Command::new("kill").args(["-CONT", &stopped_node.to_string()]).status();
    c.check(
        "a node that never answers a group call is named silent; the others' answers come",
        matches!(&poll, Ok((answers, silent)) if answers.len() == 2 && silent == &vec![(c_id >> 32) as u32]),
        poll,
    );
    // Back, and seen alive again, before going on.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Kick across nodes.
    let kicked = a.invoke(KICK, late_id).await;
    c.check("a player on another node is kicked", kicked == Ok(true), kicked);

    // A node killed mid-call: the caller hears Disconnected within dead_after.
    let asking = {
        let a = a.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            (a.invoke(ASK, (c_id, "never".into())).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut nodes = nodes;
    let killed = nodes.pop().unwrap();
    drop(killed); // SIGKILL
    let (answer, took) = asking.await.unwrap();
    c.check(
        "a call to a player of a killed node ends Disconnected within 1.5 s + a heartbeat",
        answer.as_deref() == Ok("Disconnected") && took < Duration::from_secs(4),
        (&answer, took),
    );
    let counted = eventually(Duration::from_secs(4), || async {
        matches!(a.invoke(COUNT, None).await, Ok((players, _)) if players.len() == 2)
    })
    .await;
    c.check(
        "the dead node's players leave the count",
        counted,
        a.invoke(COUNT, None).await,
    );

    // The broker goes away, and comes back.
    broker.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let local = a.invoke(WHO_AM_I, ()).await;
    c.check("local traffic goes on without the broker", local == Ok(a_id), local);
    let started = Instant::now();
    let whisper = a.invoke(WHISPER, (b_id, "anyone?".into())).await;
    c.check(
        "cluster operations fail fast without the broker",
        matches!(&whisper, Err(FunctionError::Rejected(m)) if m.contains("cannot be reached"))
            && started.elapsed() < Duration::from_secs(1),
        (&whisper, started.elapsed()),
    );
    let started = Instant::now();
    let answer = a.invoke(ASK, (b_id, "anyone?".into())).await;
    c.check(
        "a call to another node fails Unreachable at once without the broker",
        answer.as_deref() == Ok("Unreachable") && started.elapsed() < Duration::from_secs(1),
        (&answer, started.elapsed()),
    );
    if let Err(why) = broker.restart() {
        c.0.push(why);
        return c.0;
    }
    let back = eventually(Duration::from_secs(10), || async {
        a.invoke(WHISPER, (b_id, "back".into())).await.is_ok()
    })
    .await;
    c.check(
        "after the broker restarts, nodes rejoin and reach each other",
        back && heard(&mut b_inbox).await.as_deref() == Some("back"),
        back,
    );
    let counted = eventually(Duration::from_secs(5), || async {
        matches!(b.invoke(COUNT, None).await, Ok((players, silent)) if players.len() == 2 && silent.is_empty())
    })
    .await;
    c.check(
        "presence is rebuilt after the broker restarts",
        counted,
        b.invoke(COUNT, None).await,
    );
    c.0
}
