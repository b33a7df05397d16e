//! The figures through the `metrics` facade, read back from a Prometheus
//! recorder: the counters are there, with their labels, and they move.

mod common;

use common::*;
use volley::*;

fn value(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn counters_reach_prometheus_and_move() {
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let (server, addr, _observed, _) = tcp_server(ServerConfig::default()).await;
    let (client, _probe) = tcp_client(addr).await;
    wait_players(&server, 1).await;
    let buy = |gold| Purchase {
        item: "apple".into(),
        gold,
    };
    for gold in [10, 20] {
        client.invoke(BUY, buy(gold)).await.unwrap();
    }
    let _ = client.invoke(BUY, buy(1)).await;
    server.publish_metrics();
    let text = prometheus.render();
    assert_eq!(value(&text, "volley_players "), Some(1.0), "{text}");
    assert_eq!(
        value(&text, r#"volley_calls_total{remote="Buy",direction="in"}"#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"volley_call_outcomes_total{remote="Buy",direction="in",outcome="rejected"}"#
        ),
        Some(1.0)
    );
    assert!(value(
        &text,
        r#"volley_call_latency_us{remote="Buy",direction="in",quantile="0.5"}"#
    )
    .is_some());
    assert!(!text.contains("player="), "no per-player labels");
    // Only series that can exist: Buy is handled here and Announce is a
    // server → client event; neither has the other direction's calls.
    for impossible in [
        r#"volley_calls_total{remote="Buy",direction="out"}"#,
        r#"volley_events_total{remote="Buy""#,
        r#"volley_calls_total{remote="Announce""#,
        r#"volley_call_latency_us{remote="Announce""#,
        r#"volley_events_total{remote="Announce",direction="in"}"#,
        r#"volley_calls_total{remote="Prompt",direction="in"}"#,
    ] {
        assert!(!text.contains(impossible), "{impossible} exported:\n{text}");
    }
    assert!(
        text.contains(r#"volley_events_total{remote="Announce",direction="out"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"volley_calls_total{remote="Prompt",direction="out"}"#),
        "{text}"
    );

    client.invoke(BUY, buy(30)).await.unwrap();
    server.publish_metrics();
    let text = prometheus.render();
    assert_eq!(
        value(&text, r#"volley_calls_total{remote="Buy",direction="in"}"#),
        Some(4.0),
        "{text}"
    );
}
