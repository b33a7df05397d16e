//! The demo's remotes, declared once and compiled into both the server and the
//! client, and the demo server's handlers.

// In a game this module is a library crate that the server and client binaries
// both depend on, so its items are `pub`; here it is a module of each example.
#![allow(unreachable_pub, dead_code)]

use std::time::Duration;

use volley::*;

#[path = "protocol.rs"]
mod protocol;
pub use protocol::*;

/// Value of `--name value` on the command line, or `default`.
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// Registers the demo server's handlers.
pub fn demo_server(server: &Server) {
    server.on_request_sync(GET_PLAYER_DATA, |_player, req: GetData| {
        Ok(PlayerData {
            name: req.name,
            level: 7,
            gold: STARTING_GOLD,
        })
    });
    server.on_request_sync(BUY, |_player, p: Purchase| {
        if p.price > STARTING_GOLD {
            return Err(Reject::new("not enough gold"));
        }
        Ok(STARTING_GOLD - p.price)
    });
    server.on_request(SLOW_SEARCH, |_player, query: String| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(format!("results for {query}"))
    });
    let asker = server.clone();
    server.on_request(ASK_ME, move |player, ()| {
        let server = asker.clone();
        async move {
            let prompt = Prompt {
                question: "Ready for the next round?".into(),
            };
            match server.invoke(&player, PROMPT_ACTION, prompt).await {
                Ok(confirm) => Ok(confirm.confirmed),
                Err(e) => Err(Reject::new(format!("could not ask you: {e}"))),
            }
        }
    });
    server.on_event(MOVE, |player, to: Position| {
        // A game would move the player's avatar; the demo keeps the last.
        player.set_data(to);
    });
    let chat = server.clone();
    server.on_event(CHAT, move |player, line: String| {
        let _ = chat.fire_all(ANNOUNCE, format!("{}: {line}", player.id()));
    });
}

/// Which transport the demo runs over: `--transport tcp|ws|tls|quic|webtransport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Tcp,
    WebSocket,
    Tls,
    Quic,
    WebTransport,
}

impl Net {
    /// From `--transport` on the command line; TCP by default.
    pub fn from_args() -> Result<Self, String> {
        Self::parse(&arg("--transport", "tcp"))
    }

    /// Every transport in `--transport`, comma-separated (the demo server
    /// listens on each: `webtransport,ws` serves browsers with and without
    /// WebTransport on one port number, UDP and TCP).
    pub fn list_from_args() -> Result<Vec<Self>, String> {
        arg("--transport", "tcp").split(',').map(Self::parse).collect()
    }

    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "tcp" => Ok(Net::Tcp),
            "ws" | "websocket" => Ok(Net::WebSocket),
            "tls" => Ok(Net::Tls),
            "quic" => Ok(Net::Quic),
            "webtransport" | "wt" => Ok(Net::WebTransport),
            other => Err(format!(
                "unknown transport {other:?}: use tcp, ws, tls, quic or webtransport"
            )),
        }
    }

    /// Whether this transport needs a certificate.
    pub fn encrypted(self) -> bool {
        matches!(self, Net::Tls | Net::Quic | Net::WebTransport)
    }
}

/// Waits for Ctrl-C, or on Unix for SIGTERM too (what `kill` and process
/// managers send).
pub async fn stop_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            stopped = tokio::signal::ctrl_c() => stopped,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}

/// The path the demo serves WebSocket clients and WebTransport sessions on.
pub const WS_PATH: &str = "/volley";

/// Where the demo server listening over `net` on `addr` writes its
/// self-signed certificate for the demo client: one file per server, so two
/// demo servers at once do not overwrite each other's.
pub fn cert_path(net: Net, addr: std::net::SocketAddr) -> std::path::PathBuf {
    let name = format!("volley-demo-{net:?}-{}-{}.der", addr.ip(), addr.port()).to_lowercase();
    std::env::temp_dir().join(name.replace([':', '[', ']'], "_"))
}

use volley::transport::tls::rustls;

/// A fresh self-signed certificate for "localhost" and 127.0.0.1: the
/// server's TLS configuration and the certificate a client must trust,
/// explicitly. It is made the way browsers accept a self-signed certificate
/// over WebTransport (`serverCertificateHashes`): an ECDSA P-256 key, valid
/// for at most 14 days (here 13, from a minute ago).
pub fn self_signed() -> (std::sync::Arc<rustls::ServerConfig>, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("certificate names");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(1);
    params.not_after = now + time::Duration::days(13);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ECDSA P-256 key");
    let cert = params.self_signed(&key).expect("certificate").der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let config =
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .expect("server certificate");
    (std::sync::Arc::new(config), cert.to_vec())
}

/// The SHA-256 of a certificate, in hex: what a browser page passes as
/// `serverCertificateHashes` to trust a self-signed certificate.
pub fn certificate_hash(cert: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A client TLS configuration that trusts exactly this certificate.
pub fn trusting(cert: &[u8]) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert.to_vec()))
        .expect("certificate");
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    std::sync::Arc::new(config)
}

/// For TLS and QUIC, a self-signed certificate: the server's configuration
/// and the certificate a client must trust; nothing for TCP and WebSocket.
pub fn certificates(net: Net) -> (Option<std::sync::Arc<rustls::ServerConfig>>, Option<Vec<u8>>) {
    if net.encrypted() {
        let (config, cert) = self_signed();
        (Some(config), Some(cert))
    } else {
        (None, None)
    }
}

/// Starts `server` listening over `net` on `addr`.
pub async fn listen(
    server: &Server,
    net: Net,
    addr: &str,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> std::io::Result<std::net::SocketAddr> {
    match net {
        Net::Tcp => server.listen_tcp(addr.to_string()).await,
        Net::WebSocket => server.listen_ws(addr.to_string(), WS_PATH).await,
        Net::Tls => {
            server
                .listen_tls(addr.to_string(), tls.expect("TLS configuration"))
                .await
        }
        Net::Quic => {
            server
                .listen_quic(addr.to_string(), tls.expect("TLS configuration"))
                .await
        }
        Net::WebTransport => {
            server
                .listen_webtransport(addr.to_string(), WS_PATH, tls.expect("TLS configuration"))
                .await
        }
    }
}

/// Connects `client` over `net` to `addr`.
pub async fn connect(
    client: &Client,
    net: Net,
    addr: std::net::SocketAddr,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> Result<(), ConnectError> {
    match net {
        Net::Tcp => client.connect_tcp(addr).await,
        Net::WebSocket => client.connect_ws(addr, WS_PATH).await,
        Net::Tls => {
            client
                .connect_tls(addr, "localhost", tls.expect("TLS configuration"))
                .await
        }
        Net::Quic => {
            client
                .connect_quic(addr, "localhost", tls.expect("TLS configuration"))
                .await
        }
        Net::WebTransport => {
            let url = format!("https://localhost:{}{WS_PATH}", addr.port());
            client.connect_webtransport(&url, tls.expect("TLS configuration")).await
        }
    }
}
