//! A node that cannot keep up with what the broker sends it: the broker
//! client drops messages for it, and the node says so (a warning, and
//! `ClusterStats::slow_consumer`); another node's traffic is untouched.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use volley::*;
use volley_cluster::{ClusterConfig, NatsAdapter};

const NEWS: ClientEvent<u32> = ClientEvent::new("News");

fn protocol() -> Protocol {
    Protocol::builder().remote(NEWS).build()
}

async fn node(config: ClusterConfig) -> (Server, NatsAdapter) {
    let adapter = NatsAdapter::connect(config).await.unwrap();
    let server = Server::with_adapter(protocol(), ServerConfig::default(), adapter.clone());
    (server, adapter)
}

/// Fires at `id`, waiting while the node's outbox to the broker is full
/// (a burst this size outruns it).
async fn fire_waiting(server: &Server, id: PlayerId, n: u32) {
    loop {
        match server.fire_id(id, NEWS, n) {
            Err(EventError::Unreachable) => tokio::time::sleep(Duration::from_millis(1)).await,
            sent => return sent.unwrap(),
        }
    }
}

async fn player_on(node: &Server, received: Arc<AtomicUsize>) -> (Client, PlayerId) {
    let client = Client::new(protocol(), ClientConfig::default());
    client.on_event(NEWS, move |_, _| {
        received.fetch_add(1, Ordering::Relaxed);
    });
    client.connect(node.connect_memory()).await.unwrap();
    let start = Instant::now();
    while node.player_count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let id = node.players()[0].id();
    (client, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_node_is_reported_and_the_others_lose_nothing() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let config = ClusterConfig::new(broker.url(), "slow");
    let (sender, sender_node) = node(config.clone()).await;
    // Room for 8 messages between the broker client and the node.
    let (slow_server, slow) = node(config.clone().with_subscription_capacity(8)).await;
    let (steady_server, steady) = node(config).await;
    let (slow_got, steady_got) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (_a, on_slow) = player_on(&slow_server, slow_got.clone()).await;
    let (_b, on_steady) = player_on(&steady_server, steady_got.clone()).await;
    let start = Instant::now();
    while sender_node.live_nodes().len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "nodes: {:?}",
            sender_node.live_nodes()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A burst far past what 8 places hold, to each node.
    const BURST: u32 = 20_000;
    for n in 0..BURST {
        fire_waiting(&sender, on_slow, n).await;
        fire_waiting(&sender, on_steady, n).await;
    }
    let start = Instant::now();
    while steady_got.load(Ordering::Relaxed) < BURST as usize && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (slow_n, steady_n) = (slow_got.load(Ordering::Relaxed), steady_got.load(Ordering::Relaxed));
    println!(
        "slow node delivered {slow_n} of {BURST}, steady node {steady_n}; slow stats {:?}",
        slow.stats()
    );
    assert_eq!(steady_n, BURST as usize, "the steady node lost events");
    assert!(
        slow_n < BURST as usize,
        "the slow node kept up after all: nothing to report"
    );
    assert!(
        slow.stats().slow_consumer > 0,
        "drops went unreported: {:?}",
        slow.stats()
    );
    assert_eq!(steady.stats().slow_consumer, 0);
}
