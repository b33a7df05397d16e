//! Several clusters share one broker without seeing each other.

mod support;

use std::time::{Duration, Instant};

use volley::*;
use volley_cluster::{ClusterConfig, ClusterError, NatsAdapter};

const NEWS: ClientEvent<u32> = ClientEvent::new("News");
const ASK: ClientFn<(), ()> = ClientFn::new("Ask");

fn protocol() -> Protocol {
    Protocol::builder().remote(NEWS).remote(ASK).build()
}

#[tokio::test]
async fn clusters_on_one_broker_keep_apart() {
    let broker = support::Broker::start().expect("a nats-server (apt-get install -y nats-server)");
    let start = |cluster: &str| {
        let config = ClusterConfig::new(broker.url(), cluster);
        async move {
            let adapter = NatsAdapter::connect(config).await.unwrap();
            let server = Server::with_adapter(protocol(), ServerConfig::default(), adapter.clone());
            (server, adapter)
        }
    };
    let ((one_a_server, one_a), (_one_b_server, one_b), (two_server, two)) =
        (start("one").await, start("one").await, start("two").await);
    let client = Client::new(protocol(), ClientConfig::default());
    client.connect(two_server.connect_memory()).await.unwrap();
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
    assert!(one_a_server.to_all().members().await.is_empty());
    let theirs = two_server.players()[0].id();
    assert_eq!(one_a_server.fire_id(theirs, NEWS, 1), Err(EventError::Disconnected));
    assert_eq!(
        one_a_server.invoke_id(theirs, ASK, ()).await,
        Err(FunctionError::Disconnected)
    );
    // Names that are not one subject token are refused.
    let bad = NatsAdapter::connect(ClusterConfig::new(broker.url(), "a.b")).await;
    assert!(matches!(bad, Err(ClusterError::InvalidName(_))));
}
