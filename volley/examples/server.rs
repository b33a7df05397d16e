//! A long-running demo server with the quickstart's remotes. It logs joins,
//! leaves and bad input, and stops cleanly on Ctrl-C (or SIGTERM).
//!
//! ```text
//! cargo run --example server -- --addr 127.0.0.1:7777                     # TCP
//! cargo run --example server -- --addr 127.0.0.1:7777 --transport quic    # or ws, tls, webtransport
//! cargo run --example server -- --transport webtransport,ws                # browsers: WebTransport, else WebSocket
//! cargo run --example server -- --metrics 127.0.0.1:9100                  # Prometheus at http://127.0.0.1:9100/metrics
//! cargo run --example server -- --inspector 127.0.0.1:9200                # the live page at http://127.0.0.1:9200/
//! ```
//!
//! Over TLS, QUIC and WebTransport it makes a self-signed certificate and
//! writes it where the demo client reads it (the system's temporary folder),
//! so the client trusts that certificate explicitly; verification is never
//! turned off. Over WebTransport it also prints the certificate's SHA-256 and
//! the URL a browser page needs (`serverCertificateHashes`). It removes the
//! file when it stops (a server killed outright leaves it behind).
//!
//! `--transport` takes a comma-separated list to listen on several at once
//! on the same address: UDP for QUIC and WebTransport, TCP for the others.

mod shared;

use std::time::Duration;

use shared::*;
use volley::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();

    let server = Server::new(protocol(), ServerConfig::default());
    demo_server(&server);
    // Who may join: everyone but the token "banned" (a real game checks a
    // session or a signed ticket here).
    server.set_authenticator(|hello| async move {
        if &hello.token[..] == b"banned" {
            return Err("this token is banned".to_string());
        }
        Ok(String::from_utf8_lossy(&hello.token).into_owned())
    });
    let announcer = server.clone();
    server.on_player_added(move |player| {
        let _ = announcer.fire_except(player, ANNOUNCE, format!("{} joined", player.id()));
    });
    let mut addr = arg("--addr", "127.0.0.1:7777");
    // Removed however `main` returns: stopped, or failing to listen.
    let mut written = RemovedOnDrop(Vec::new());
    for net in Net::list_from_args()? {
        let (tls, cert) = certificates(net);
        let bound = listen(&server, net, &addr, tls).await?;
        // Further transports take the port the first one got.
        addr = bound.to_string();
        if let Some(cert) = cert {
            let path = cert_path(net, bound);
            std::fs::write(&path, &cert)?;
            written.0.push(path.clone());
            println!("certificate for the demo client written to {}", path.display());
            if net == Net::WebTransport {
                println!(
                    "browser pages: https://{bound}{WS_PATH} with serverCertificateHashes sha-256 {}",
                    certificate_hash(&cert)
                );
            }
        }
        println!("volley demo server on {bound} ({net:?}); Ctrl-C to stop");
    }
    let inspector = arg("--inspector", "");
    if !inspector.is_empty() {
        let at = server.inspector(inspector).await?;
        println!("inspector on http://{at}/");
    }
    let metrics = arg("--metrics", "");
    if !metrics.is_empty() {
        // Any recorder of the `metrics` facade works; this one serves
        // Prometheus's text format over HTTP.
        let at: std::net::SocketAddr = metrics.parse()?;
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(at)
            .install()?;
        server.report_metrics(Duration::from_secs(1));
        println!("metrics on http://{at}/metrics");
    }

    stop_signal().await?;
    println!("stopping: telling {} players", server.player_count());
    for player in server.players() {
        player.kick("server shutting down");
    }
    // Kicked players are gone from the server at once; shutdown also waits
    // for their connections to close, so the goodbyes arrive before the
    // process ends.
    server.shutdown(Duration::ZERO).await;
    drop(written);
    println!("stopped");
    Ok(())
}

/// Files the server wrote, removed when it is dropped.
struct RemovedOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            if let Err(error) = std::fs::remove_file(path) {
                eprintln!("could not remove {}: {error}", path.display());
            }
        }
    }
}
