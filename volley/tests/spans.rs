//! Each call is a `tracing` span with its remote, direction, outcome and
//! duration, inside the connection's span that names the peer.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use volley::*;

/// Every field recorded on a span named "call", as `name=value` text.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut Vec<String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={:?}", field.name(), value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push(format!("{}={value}", field.name()));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Calls {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "call" {
            attrs.record(&mut Fields(&mut self.0.lock().unwrap()));
        }
    }
    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_a_span_with_its_outcome_and_duration() {
    let calls = Calls::default();
    let subscriber = tracing_subscriber::registry().with(
        calls
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::DEBUG),
    );
    let _guard = tracing::subscriber::set_global_default(subscriber);
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    wait_players(&server, 1).await;
    let r = client
        .invoke(
            BUY,
            Purchase {
                item: "apple".into(),
                gold: 1,
            },
        )
        .await;
    assert!(matches!(r, Err(FunctionError::Rejected(_))));
    let fields = calls.0.lock().unwrap().clone();
    for expected in ["remote=Buy", "direction=in", "direction=out", "outcome=rejected"] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing from {fields:?}"
        );
    }
    assert_eq!(
        fields.iter().filter(|f| f.starts_with("duration_us=")).count(),
        2,
        "{fields:?}"
    );
}
