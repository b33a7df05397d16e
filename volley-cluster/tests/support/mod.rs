//! What the cluster tests and the example share: a real nats-server on a
//! free loopback port.
#![allow(dead_code, unreachable_pub)]

pub use volley_cluster::LocalNats as Broker;
