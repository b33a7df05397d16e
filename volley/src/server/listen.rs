//! Accepting clients: a listener per transport, each connection served by a
//! driver of its own, under the cap on handshakes in progress.

use super::*;

impl Server {
    /// Listens for TCP clients on `addr` in a background task, and returns the
    /// bound address (useful with port 0).
    pub async fn listen_tcp(&self, addr: impl ToSocketAddrs) -> io::Result<SocketAddr> {
        let server = self.clone();
        self.accept_tcp(addr, "TCP", move |stream| server.serve(stream)).await
    }

    /// Listens for TLS clients on `addr` (feature `tls`): each connection's
    /// TLS handshake runs in its own task and must finish within the session's
    /// handshake deadline (5 s by default).
    #[cfg(feature = "tls")]
    pub async fn listen_tls(
        &self,
        addr: impl ToSocketAddrs,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let server = self.clone();
        self.accept_tcp(addr, "TLS", move |stream| {
            server.serve_after("TLS", crate::transport::tls::accept(stream, config.clone()));
        })
        .await
    }

    /// Listens for WebSocket clients on `addr`, at `path` (feature
    /// `websocket`); the upgrade must finish within the session's handshake
    /// deadline (5 s by default), other paths get HTTP 404, and browser pages
    /// from origins not in [`ServerConfig::allowed_origins`] (if set) HTTP 403.
    #[cfg(feature = "websocket")]
    pub async fn listen_ws(&self, addr: impl ToSocketAddrs, path: &str) -> io::Result<SocketAddr> {
        let (server, path) = (self.clone(), Arc::<str>::from(path));
        self.accept_tcp(addr, "WebSocket", move |stream| {
            let (path, inner) = (path.clone(), server.inner.clone());
            server.serve_after("WebSocket", async move {
                let origins = inner.config.allowed_origins.as_deref();
                crate::transport::websocket::accept(stream, &path, origins).await
            });
        })
        .await
    }

    /// Listens for secure WebSocket (`wss://`) clients on `addr`, at `path`
    /// (features `websocket` and `tls`): the TLS handshake and the upgrade
    /// together must finish within the session's handshake deadline.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub async fn listen_wss(
        &self,
        addr: impl ToSocketAddrs,
        path: &str,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let (server, path) = (self.clone(), Arc::<str>::from(path));
        self.accept_tcp(addr, "secure WebSocket", move |stream| {
            let (path, config, inner) = (path.clone(), config.clone(), server.inner.clone());
            server.serve_after("secure WebSocket", async move {
                let tls = crate::transport::tls::accept(stream, config).await?;
                let origins = inner.config.allowed_origins.as_deref();
                crate::transport::websocket::accept(tls, &path, origins).await
            });
        })
        .await
    }

    /// Listens for QUIC clients on `addr` (feature `quic`), with this TLS 1.3
    /// configuration (its ALPN list is replaced by
    /// [`ALPN`](crate::transport::quic::ALPN)). Each connection's handshake
    /// runs in its own task under the session's handshake deadline. Returns
    /// the bound address.
    #[cfg(feature = "quic")]
    pub async fn listen_quic(
        &self,
        addr: impl ToSocketAddrs,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let endpoint = crate::transport::quic::server_endpoint(crate::transport::quic::resolve(addr).await?, config)?;
        let server = self.clone();
        self.accept_quic(endpoint, "QUIC", move |incoming| {
            server.serve_after("QUIC", crate::transport::quic::accept(incoming));
        })
    }

    /// Hands each incoming connection of `endpoint` to `each` from a
    /// background task that [`shutdown`](Self::shutdown) stops. Returns the
    /// bound address.
    #[cfg(feature = "quic")]
    fn accept_quic(
        &self,
        endpoint: quinn::Endpoint,
        what: &'static str,
        each: impl Fn(quinn::Incoming) + Send + 'static,
    ) -> io::Result<SocketAddr> {
        let local = endpoint.local_addr()?;
        self.keep_listener(tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                each(incoming);
            }
        }));
        tracing::info!(%local, "listening on {what}");
        Ok(local)
    }

    /// Accepts WebTransport sessions (feature `webtransport`) on `path`
    /// (`/volley` is [`webtransport::DEFAULT_PATH`](crate::transport::webtransport::DEFAULT_PATH))
    /// over HTTP/3 at `addr`, with this TLS configuration (its ALPN becomes
    /// `h3`). A session for another path is refused with HTTP 404, one from a
    /// browser page of an origin not in [`ServerConfig::allowed_origins`]
    /// (if set) with HTTP 403. The
    /// handshake deadline and `max_handshakes` cover the QUIC and HTTP/3
    /// setup too. Returns the bound address.
    ///
    /// Browsers check the certificate: in production, one an authority
    /// issued for the domain; in development, a self-signed one that pages
    /// trust by its SHA-256 (`serverCertificateHashes`), which browsers take
    /// only for an ECDSA P-256 key valid at most 14 days (the demo server
    /// makes one; see the README's "Browsers and certificates").
    #[cfg(feature = "webtransport")]
    pub async fn listen_webtransport(
        &self,
        addr: impl ToSocketAddrs,
        path: &str,
        config: Arc<crate::transport::tls::rustls::ServerConfig>,
    ) -> io::Result<SocketAddr> {
        let addr = crate::transport::quic::resolve(addr).await?;
        let endpoint = crate::transport::webtransport::server_endpoint(addr, config)?;
        let server = self.clone();
        let path: Arc<str> = Arc::from(path);
        let origins: Option<Arc<[String]>> = self.inner.config.allowed_origins.as_deref().map(Arc::from);
        self.accept_quic(endpoint, "WebTransport", move |incoming| {
            let session = crate::transport::webtransport::accept(incoming, path.clone(), origins.clone());
            server.serve_after("WebTransport", session);
        })
    }

    /// Binds `addr` and hands each accepted TCP connection (with
    /// `TCP_NODELAY`) to `each` from a background task that
    /// [`shutdown`](Self::shutdown) stops. Returns the bound address.
    pub(crate) async fn accept_tcp(
        &self,
        addr: impl ToSocketAddrs,
        what: &'static str,
        each: impl Fn(tokio::net::TcpStream) + Send + 'static,
    ) -> io::Result<SocketAddr> {
        let listener = tcp::bind(addr).await?;
        let local = listener.local_addr()?;
        self.keep_listener(tokio::spawn(async move {
            loop {
                match tcp::accept(&listener).await {
                    Ok((stream, _)) => each(stream),
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
        tracing::info!(%local, "listening on {what}");
        Ok(local)
    }

    /// Keeps an accept loop's handle, so [`shutdown`](Self::shutdown) stops it.
    fn keep_listener(&self, accepting: tokio::task::JoinHandle<()>) {
        lock(&self.inner.listeners).push(accepting.abort_handle());
    }

    /// Runs a transport's own handshake (TLS, WebSocket upgrade, QUIC) in its
    /// own task, under the session's handshake deadline, then serves the
    /// connection; a failed or late handshake is logged and dropped.
    #[cfg(any(feature = "tls", feature = "websocket", feature = "quic"))]
    fn serve_after<T: Transport>(
        &self,
        what: &'static str,
        handshake: impl Future<Output = io::Result<T>> + Send + 'static,
    ) {
        let Some(slot) = self.handshake_slot() else {
            return;
        };
        let server = self.clone();
        let deadline = self.inner.config.session.handshake_timeout;
        tokio::spawn(async move {
            match tokio::time::timeout(deadline, handshake).await {
                Ok(Ok(transport)) => server.serve_in(transport, slot),
                Ok(Err(e)) => tracing::info!(error = %e, "{what} handshake failed"),
                Err(_) => tracing::info!("{what} handshake timed out"),
            }
        });
    }

    /// A place among the connections in their handshake, if one is free.
    fn handshake_slot(&self) -> Option<HandshakeSlot> {
        let slot = self.inner.handshakes.clone().try_acquire_owned().ok();
        if slot.is_none() {
            let max = self.inner.config.max_handshakes;
            tracing::warn!(max, "too many handshakes in progress: connection closed");
            self.inner.refused("too many handshakes");
        }
        slot
    }

    /// Runs the server end of a connection over any transport, in its own
    /// task. With [`ServerConfig::max_handshakes`] connections already in
    /// their handshake, the transport is dropped (closed) at once.
    pub fn serve<T: Transport>(&self, transport: T) {
        if let Some(slot) = self.handshake_slot() {
            self.serve_in(transport, slot);
        }
    }

    fn serve_in<T: Transport>(&self, transport: T, slot: HandshakeSlot) {
        let session = Session::server(
            self.inner.session_config.clone(),
            self.inner.endpoint.protocol.table().clone(),
            now(),
        );
        let conn = Conn::new(session, self.inner.endpoint.figures.clone());
        let player = Player {
            inner: Arc::new(PlayerInner {
                id: PlayerId(self.inner.next_id.fetch_add(1, Ordering::Relaxed)),
                addr: std::sync::Mutex::new(transport.peer_addr()),
                identity: OnceLock::new(),
                conn: conn.clone(),
                server: self.inner.clone(),
                closed: OnceLock::new(),
                closed_wakers: tokio::sync::Notify::new(),
                middleware_state: PeerState::default(),
                rooms: Default::default(),
                data: Default::default(),
                resume_tokens: std::sync::Mutex::default(),
            }),
        };
        // Every log line of this connection names the player and its address.
        let span = tracing::info_span!("conn", player = %player.id(), addr = ?player.remote_addr());
        let side = ServerSide::new(self.inner.clone(), player, slot);
        let budget = self.inner.config.receive_budget;
        tokio::spawn(Driver::new(conn, transport, side, budget).run().instrument(span));
    }

    /// Opens an in-process connection to this server and returns the client's
    /// end, for [`Client::connect`](crate::Client::connect).
    pub fn connect_memory(&self) -> memory::MemoryTransport {
        let (client, server) = memory::pair();
        self.serve(server);
        client
    }
}
