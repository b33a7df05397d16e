//! A node's cluster settings.

use std::time::Duration;

/// How a node joins its cluster. Every field is documented with its default.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The NATS server (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The cluster's name: nodes with the same name on one broker form one
    /// cluster; other names on the same broker never see its traffic.
    pub cluster: String,
    /// How often a node announces itself. Default: 500 ms.
    pub heartbeat: Duration,
    /// A node not heard from for this long is gone at the next check (every
    /// heartbeat): its players count as disconnected and calls pending to
    /// them end `Disconnected`, within `dead_after` plus one heartbeat of its
    /// last one. Default: 3 heartbeats (1.5 s).
    pub dead_after: Duration,
    /// How long cluster-wide questions (counts, member lists, joins on
    /// another node) wait for each node's answer. Default: 2 s.
    pub query_timeout: Duration,
    /// Messages the broker client holds for one subscription before it drops
    /// them (and reports a slow consumer). Default: 65,536.
    pub subscription_capacity: usize,
}

impl ClusterConfig {
    /// A node of cluster `cluster` on the NATS server at `url`.
    pub fn new(url: impl Into<String>, cluster: impl Into<String>) -> Self {
        let heartbeat = Duration::from_millis(500);
        Self {
            url: url.into(),
            cluster: cluster.into(),
            heartbeat,
            dead_after: heartbeat * 3,
            query_timeout: Duration::from_secs(2),
            subscription_capacity: 65_536,
        }
    }

    /// Sets [`heartbeat`](Self::heartbeat), and [`dead_after`](Self::dead_after)
    /// to three of them.
    pub fn with_heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self.dead_after = heartbeat * 3;
        self
    }

    /// Sets [`subscription_capacity`](Self::subscription_capacity).
    pub fn with_subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity;
        self
    }

    /// Sets [`query_timeout`](Self::query_timeout).
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }
}
