//! Several clusters share one broker without seeing each other.

mod support;

use std::time::{Duration, Instant};

use volley::*;
use volley_cluster::{ClusterConfig, ClusterError, ClusterNode};

const NEWS: ClientEvent<u32> = ClientEvent::new("News");

fn protocol() -> Protocol {
    Protocol::builder().remote(NEWS).build()
}

#[tokio::test]
async fn clusters_on_one_broker_keep_apart() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let start = |cluster: &str| {
        let config = ClusterConfig::new(broker.url(), cluster);
        ClusterNode::start(protocol(), ServerConfig::default(), config)
    };
    let (one_a, one_b, two) = (
        start("one").await.unwrap(),
        start("one").await.unwrap(),
        start("two").await.unwrap(),
    );
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect(two.server().connect_memory()).await.unwrap();
    let began = Instant::now();
    while one_a.live_nodes().len() < 2 || two.live_nodes().is_empty() {
        assert!(began.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(one_a.live_nodes(), {
        let mut v = vec![one_a.node_id(), one_b.node_id()];
        v.sort();
        v
    });
    assert_eq!(two.live_nodes(), vec![two.node_id()]);
    // Cluster "one" does not count, or reach, the player of cluster "two".
    assert!(one_a.players().await.unwrap().players.is_empty());
    let theirs = two.server().players()[0].id();
    assert_eq!(one_a.fire(theirs, NEWS, 1).await, Err(ClusterError::NotConnected));
    // Names that are not one subject token are refused.
    let bad = ClusterNode::start(
        protocol(),
        ServerConfig::default(),
        ClusterConfig::new(broker.url(), "a.b"),
    )
    .await;
    assert!(matches!(bad, Err(ClusterError::Broker(_))));
}
