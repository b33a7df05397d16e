//! The cluster's edge cases, against a real nats-server: room names of any
//! length, messages over the broker's limit, a join followed at once by a
//! fire from another node, a group call reaching a node that has stopped,
//! and a node that pauses past the presence timeout.

mod support;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use volley::*;
use volley_cluster::{ClusterConfig, NatsAdapter};

const NEWS: ClientEvent<String> = ClientEvent::new("News");
const BLOB: ClientEvent<Vec<u8>> = ClientEvent::new("Blob");
const ECHO: ClientFn<Vec<u8>, Vec<u8>> = ClientFn::new("Echo");
const BIG_ANSWER: ClientFn<u32, Vec<u8>> = ClientFn::new("BigAnswer");
const SLOW: ClientFn<u64, u64> = ClientFn::new("Slow");

fn protocol() -> Protocol {
    Protocol::builder()
        .remote(NEWS)
        .remote(BLOB)
        .remote(ECHO)
        .remote(BIG_ANSWER)
        .remote(SLOW)
        .build()
}

/// Frames and queues big enough for 2 MiB payloads: only the broker's
/// 1 MiB limit stands in their way.
fn session() -> SessionConfig {
    SessionConfig::default()
        .with_max_frame_len(4 << 20)
        .with_max_transmit_queue(16 << 20)
}

/// A node of the cluster: its server, and its adapter (for what only the
/// cluster knows: its number, the nodes alive).
#[derive(Clone)]
struct Node {
    server: Server,
    adapter: NatsAdapter,
}

impl Node {
    fn live_nodes(&self) -> Vec<u32> {
        self.adapter.live_nodes()
    }
}

async fn start_node(url: String) -> Node {
    let config = ClusterConfig::new(url, "edges");
    let adapter = NatsAdapter::connect(config).await.unwrap();
    let server = Server::with_adapter(
        protocol(),
        ServerConfig::default().with_session(session()),
        adapter.clone(),
    );
    Node { server, adapter }
}

async fn node(broker: &support::Broker) -> Node {
    start_node(broker.url()).await
}

/// A client of `node` that forwards the news it hears, answers `Echo` with
/// its request, `BigAnswer` with that many bytes, and `Slow` after the
/// milliseconds asked.
async fn player(node: &Node) -> (Client, PlayerId, mpsc::UnboundedReceiver<String>) {
    let client = Client::new(protocol(), ClientConfig::default().with_session(session()));
    let (heard, news) = mpsc::unbounded_channel();
    client.on_event(NEWS, move |_, line| {
        let _ = heard.send(line);
    });
    client.on_request(ECHO, |_, bytes: Vec<u8>| async move { Ok(bytes) });
    client.on_request(BIG_ANSWER, |_, len: u32| async move { Ok(vec![7u8; len as usize]) });
    client.on_request(SLOW, |_, millis: u64| async move {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(millis)
    });
    let before: Vec<PlayerId> = node.server.players().iter().map(|p| p.id()).collect();
    client.connect(node.server.connect_memory()).await.unwrap();
    let began = Instant::now();
    loop {
        if let Some(p) = node.server.players().iter().find(|p| !before.contains(&p.id())) {
            return (client, p.id(), news);
        }
        assert!(began.elapsed() < Duration::from_secs(5), "the player never joined");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn see_each_other(nodes: &[&Node]) {
    let began = Instant::now();
    while nodes.iter().any(|n| n.live_nodes().len() < nodes.len()) {
        let live: Vec<Vec<u32>> = nodes.iter().map(|n| n.live_nodes()).collect();
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "nodes never saw each other: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn hear(news: &mut mpsc::UnboundedReceiver<String>) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(2), news.recv())
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_names_of_any_length_reach_their_members_and_keep_the_node_in_the_cluster() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let (a, b) = (node(&broker).await, node(&broker).await);
    see_each_other(&[&a, &b]).await;
    let (_client, on_b, mut news) = player(&b).await;
    for len in [0, 1, 64, 65, 2_100, 100_000] {
        let room = "r".repeat(len);
        assert_eq!(a.server.join(on_b, &room).await, Ok(true), "room of {len} bytes");
        a.server.to_room(&room).fire(NEWS, format!("to {len}")).unwrap();
        assert_eq!(hear(&mut news).await, Some(format!("to {len}")), "room of {len} bytes");
        assert_eq!(a.server.leave(on_b, &room).await, Ok(true));
    }
    // Still one cluster: B sees A, and A reaches B's player directly.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(b.live_nodes().len(), 2, "{:?}", b.live_nodes());
    assert_eq!(b.adapter.stats().broker_disconnects, 0);
    a.server.fire_id(on_b, NEWS, "direct".into()).unwrap();
    assert_eq!(hear(&mut news).await.as_deref(), Some("direct"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_brokers_limit_fail_too_large_at_once() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let (a, b) = (node(&broker).await, node(&broker).await);
    see_each_other(&[&a, &b]).await;
    let (_on_a_client, on_a, mut news_a) = player(&a).await;
    let (_on_b_client, on_b, _news_b) = player(&b).await;
    const TWO_MIB: usize = 2 << 20;

    let began = Instant::now();
    let a_server = &a.server;
    assert_eq!(
        a_server.invoke_id(on_b, ECHO, vec![1; TWO_MIB]).await,
        Err(FunctionError::TooLarge)
    );
    assert_eq!(
        a_server.invoke_id(on_b, BIG_ANSWER, TWO_MIB as u32).await,
        Err(FunctionError::TooLarge)
    );
    assert!(began.elapsed() < Duration::from_secs(2), "took {:?}", began.elapsed());
    // Small ones still go through.
    assert_eq!(a_server.invoke_id(on_b, BIG_ANSWER, 10).await, Ok(vec![7; 10]));

    a_server.join(on_a, "hall").await.unwrap();
    a_server.join(on_b, "hall").await.unwrap();
    let fired = a_server.to_room("hall").fire(BLOB, vec![0; TWO_MIB]);
    assert!(matches!(fired, Err(EventError::TooLarge { .. })), "{fired:?}");
    // All or nothing: this node's own member got nothing either.
    a_server.to_room("hall").fire(NEWS, "after".into()).unwrap();
    assert_eq!(hear(&mut news_a).await.as_deref(), Some("after"));
    // A group call too large for the broker: the other node cannot be asked
    // (named silent at once); this node's own player (frames of 4 MiB)
    // answers. Players asked by id are told TooLarge (above).
    let began = Instant::now();
    let mut answers = a_server.to_room("hall").invoke(ECHO, vec![0; TWO_MIB]);
    let mut asked = Vec::new();
    while let Some((id, answer)) = answers.next().await {
        asked.push((id, answer.map(|v| v.len())));
    }
    assert!(began.elapsed() < Duration::from_secs(2), "took {:?}", began.elapsed());
    assert_eq!(asked, vec![(on_a, Ok(TWO_MIB))]);
    assert_eq!(answers.silent_nodes(), &[b.adapter.node_id()]);
    // A group call whose answer is too large names it at once.
    let began = Instant::now();
    a_server.join(on_b, "solo").await.unwrap();
    let answers = a_server
        .to_room("solo")
        .invoke_with_timeout(BIG_ANSWER, TWO_MIB as u32, Duration::from_secs(10))
        .all()
        .await;
    assert!(began.elapsed() < Duration::from_secs(2), "took {:?}", began.elapsed());
    assert_eq!(answers, vec![(on_b, Err(FunctionError::TooLarge))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_right_after_a_join_reaches_the_new_member() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let (a, b) = (node(&broker).await, node(&broker).await);
    see_each_other(&[&a, &b]).await;
    let (_client, on_b, mut news) = player(&b).await;
    for round in 0..20 {
        let room = format!("room {round}");
        // Joined through its own node, or through another one.
        let joiner = if round % 2 == 0 { &b } else { &a };
        assert_eq!(joiner.server.join(on_b, &room).await, Ok(true));
        a.server.to_room(&room).fire(NEWS, room.clone()).unwrap();
        assert_eq!(hear(&mut news).await, Some(room.clone()), "missed in round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_call_to_a_node_that_stopped_names_it_silent_at_once() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let (a, b) = (node(&broker).await, node(&broker).await);
    see_each_other(&[&a, &b]).await;
    let (_client, _on_a, _) = player(&a).await;
    let gone = b.adapter.node_id();
    // B stops without a goodbye: A still counts it alive for up to 2 s.
    drop(b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.live_nodes().contains(&gone));
    let began = Instant::now();
    let mut answers = a.server.to_all().invoke_with_timeout(SLOW, 1, Duration::from_secs(10));
    let mut all = Vec::new();
    while let Some(answer) = answers.next().await {
        all.push(answer);
    }
    assert!(
        began.elapsed() < Duration::from_millis(1_000),
        "took {:?}",
        began.elapsed()
    );
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(answers.silent_nodes(), &[gone]);
}

/// A node whose process stalls (here: its runtime's only thread blocked)
/// for longer than `dead_after` reads the heartbeats waiting for it before
/// judging anyone: it does not declare the cluster gone, and its own call
/// pending meanwhile gets the answer that arrived during the pause.
#[test]
fn a_node_that_pauses_past_the_presence_timeout_keeps_the_cluster() {
    let main = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let a = main.block_on(node(&broker));
    let (_client, on_a, _) = main.block_on(player(&a));
    // B on a runtime of its own, with one thread that can be stopped.
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let b_runtime = paused.handle().clone();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    // B's tasks all run on this thread: its log is what B says.
    let logs = support::Logs::default();
    let writer = logs.clone();
    let b_thread = std::thread::spawn(move || {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        paused.block_on(async move { tokio::task::spawn_blocking(move || stopped.recv()).await })
    });
    let url = broker.url();
    let b = b_runtime.block_on(async move { tokio::spawn(start_node(url)).await.unwrap() });
    main.block_on(see_each_other(&[&a, &b]));
    let (result_tx, result) = std::sync::mpsc::channel();
    let caller = b.clone();
    b_runtime.spawn(async move {
        // Answered 300 ms in: while B is stopped.
        let _ = result_tx.send(caller.server.invoke_id(on_a, SLOW, 300).await);
    });
    std::thread::sleep(Duration::from_millis(50));
    b_runtime.spawn(async { std::thread::sleep(Duration::from_millis(2_500)) });
    std::thread::sleep(Duration::from_millis(2_550));
    // Resumed: for the next second, B always counts A alive.
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(1) {
        let live = b.live_nodes();
        assert!(
            live.contains(&a.adapter.node_id()),
            "B declared A gone after its pause: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(result.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(300));
    let said = logs.text();
    assert!(
        !said.contains("node silent"),
        "B declared nodes gone after its pause:\n{said}"
    );
    drop(stop);
    let _ = b_thread.join();
}
