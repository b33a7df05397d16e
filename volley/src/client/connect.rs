//! Connecting: a `connect_*` per transport, the handshake, and redialling
//! by the [`ReconnectPolicy`] after a lost connection.

use super::*;

impl Client {
    /// Connects over TCP (with `TCP_NODELAY`) and completes the handshake.
    /// With a [`ReconnectPolicy`], a lost connection is redialled the same
    /// way (as with every `connect_*`).
    pub async fn connect_tcp(
        &self,
        addr: impl ToSocketAddrs + Clone + Send + Sync + 'static,
    ) -> Result<(), ConnectError> {
        self.dial(move || Box::pin(tcp::connect(addr.clone()))).await
    }

    /// Connects over TLS (feature `tls`), verifying the server's certificate
    /// for `server_name` against `config`'s roots, then completes the handshake.
    #[cfg(feature = "tls")]
    pub async fn connect_tls(
        &self,
        addr: impl ToSocketAddrs + Clone + Send + Sync + 'static,
        server_name: &str,
        config: Arc<crate::transport::tls::rustls::ClientConfig>,
    ) -> Result<(), ConnectError> {
        let server_name = server_name.to_string();
        self.dial(move || {
            let (addr, server_name, config) = (addr.clone(), server_name.clone(), config.clone());
            Box::pin(async move { crate::transport::tls::connect(addr, &server_name, config).await })
        })
        .await
    }

    /// Connects over secure WebSocket (`wss://`, features `websocket` and
    /// `tls`) to `path` at `addr`, verifying the server's certificate for
    /// `server_name` against `config`'s roots, then completes the handshake.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub async fn connect_wss(
        &self,
        addr: impl ToSocketAddrs + Clone + Send + Sync + 'static,
        path: &str,
        server_name: &str,
        config: Arc<crate::transport::tls::rustls::ClientConfig>,
    ) -> Result<(), ConnectError> {
        let (server_name, path) = (server_name.to_string(), path.to_string());
        self.dial(move || {
            let (addr, server_name, config, path) = (addr.clone(), server_name.clone(), config.clone(), path.clone());
            Box::pin(
                async move { crate::transport::websocket::connect_secure(addr, &server_name, config, &path).await },
            )
        })
        .await
    }

    /// Connects over QUIC (feature `quic`), verifying the server's certificate
    /// for `server_name` against `config`'s roots, then completes the
    /// handshake. Unreliable events then travel as datagrams.
    #[cfg(feature = "quic")]
    pub async fn connect_quic(
        &self,
        addr: impl ToSocketAddrs + Clone + Send + Sync + 'static,
        server_name: &str,
        config: Arc<crate::transport::tls::rustls::ClientConfig>,
    ) -> Result<(), ConnectError> {
        let server_name = server_name.to_string();
        self.dial(move || {
            let (addr, server_name, config) = (addr.clone(), server_name.clone(), config.clone());
            Box::pin(async move { crate::transport::quic::connect(addr, &server_name, config).await })
        })
        .await
    }

    /// Opens a WebTransport session at `url` (`https://host:port/path`,
    /// feature `webtransport`), verifying the server's certificate against
    /// `config`'s roots, then completes the handshake. As over QUIC,
    /// unreliable events travel as datagrams; reconnecting redials the URL.
    #[cfg(feature = "webtransport")]
    pub async fn connect_webtransport(
        &self,
        url: &str,
        config: Arc<crate::transport::tls::rustls::ClientConfig>,
    ) -> Result<(), ConnectError> {
        let url = url.to_string();
        self.dial(move || {
            let (url, config) = (url.clone(), config.clone());
            Box::pin(async move { crate::transport::webtransport::connect(&url, config).await })
        })
        .await
    }

    /// Connects over WebSocket to `path` at `addr` (feature `websocket`), then
    /// completes the handshake.
    #[cfg(feature = "websocket")]
    pub async fn connect_ws(
        &self,
        addr: impl ToSocketAddrs + Clone + Send + Sync + 'static,
        path: &str,
    ) -> Result<(), ConnectError> {
        let path = path.to_string();
        self.dial(move || {
            let (addr, path) = (addr.clone(), path.clone());
            Box::pin(async move { crate::transport::websocket::connect(addr, &path).await })
        })
        .await
    }

    /// Connects to a WebSocket URL, `ws://host:port/path` (feature
    /// `websocket`; the port defaults to 80, the path to `/`).
    #[cfg(feature = "websocket")]
    pub async fn connect_url(&self, url: &str) -> Result<(), ConnectError> {
        let (scheme, host, port, path) = split_ws_url(url)?;
        if !scheme.eq_ignore_ascii_case("ws") {
            return Err(bad_url(url, "the scheme must be ws:// (wss:// takes connect_wss_url)"));
        }
        self.connect_ws((host, port.unwrap_or(80)), &path).await
    }

    /// Connects to a secure WebSocket URL, `wss://host:port/path` (features
    /// `websocket` and `tls`; the port defaults to 443, the path to `/`),
    /// verifying the certificate for the URL's host against `config`'s roots.
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub async fn connect_wss_url(
        &self,
        url: &str,
        config: Arc<crate::transport::tls::rustls::ClientConfig>,
    ) -> Result<(), ConnectError> {
        let (scheme, host, port, path) = split_ws_url(url)?;
        if !scheme.eq_ignore_ascii_case("wss") {
            return Err(bad_url(url, "the scheme must be wss://"));
        }
        let addr = (host.clone(), port.unwrap_or(443));
        self.connect_wss(addr, &path, &host, config).await
    }

    /// Opens a transport with `open`, completes the handshake over it, and
    /// keeps `open` to redial with after a lost connection.
    async fn dial<T: Transport>(
        &self,
        open: impl Fn() -> BoxFuture<std::io::Result<T>> + Send + Sync + 'static,
    ) -> Result<(), ConnectError> {
        *lock(&self.inner.redial) = None;
        let open = Arc::new(open);
        // Known before the handshake, which asks to be resumable only if
        // the client can redial.
        let reopen = open.clone();
        let reopen: Reopen = Arc::new(move || {
            let open = reopen.clone();
            Box::pin(async move { open().await.map(crate::conn::Handoff::new) })
        });
        *lock(&self.inner.reopen) = Some(reopen);
        self.attempt(async { self.handshake(open().await?).await }).await?;
        let redial: Redial = Arc::new(move |client: Client| {
            let open = open.clone();
            Box::pin(async move { client.handshake(open().await?).await })
        });
        *lock(&self.inner.redial) = Some(redial);
        Ok(())
    }

    /// Calls `hook` each time the client resumes after a lost connection:
    /// the same player, nothing lost (see [`ClientConfig::reconnect`]).
    pub fn on_resumed(&self, hook: impl Fn() + Send + Sync + 'static) {
        write(&self.inner.resumed_hooks).push(Arc::new(hook));
    }

    /// Calls `hook` each time the client reconnects by its [`ReconnectPolicy`].
    pub fn on_reconnect(&self, hook: impl Fn() + Send + Sync + 'static) {
        write(&self.inner.reconnect_hooks).push(Arc::new(hook));
    }

    /// Completes the handshake over any transport. Fails with the server's
    /// reason if it refuses this client (for example, a client built with
    /// different remote declarations).
    ///
    /// volley cannot open such a transport again, so a connection made this
    /// way is not redialled after it is lost, whatever the
    /// [`ReconnectPolicy`].
    pub async fn connect<T: Transport>(&self, transport: T) -> Result<(), ConnectError> {
        *lock(&self.inner.redial) = None;
        *lock(&self.inner.reopen) = None;
        self.attempt(self.handshake(transport)).await
    }

    /// A connect call's attempt, its status kept: `Connecting`, then
    /// `Connected` (set when the handshake ends) or `Disconnected`.
    async fn attempt(&self, connecting: impl Future<Output = Result<(), ConnectError>>) -> Result<(), ConnectError> {
        self.inner.set_status(ClientStatus::Connecting);
        let result = connecting.await;
        if result.is_err() && !self.is_connected() {
            self.inner.set_status(ClientStatus::Disconnected);
        }
        result
    }

    async fn handshake<T: Transport>(&self, transport: T) -> Result<(), ConnectError> {
        let conn = {
            let mut slot = lock(&self.inner.conn);
            if slot.as_ref().is_some_and(|c| !c.is_closed()) {
                return Err(ConnectError::AlreadyConnected);
            }
            let config = &self.inner.config;
            let mut session_config = config.session.clone();
            // Resuming is redialing: without a way to redial, do not ask.
            if config.reconnect.is_none() || lock(&self.inner.reopen).is_none() {
                session_config.resume_grace = Duration::ZERO;
            }
            let session = Session::client(
                session_config,
                self.inner.endpoint.protocol.table().clone(),
                &config.token,
                now(),
            );
            let conn = Conn::new(session, self.inner.endpoint.figures.clone());
            *slot = Some(conn.clone());
            conn
        };
        let (done, handshake) = oneshot::channel();
        let side = ClientSide::new(self.inner.clone(), conn.clone(), done);
        let driver = tokio::spawn(Driver::new(conn, transport, side, None).run());
        *lock(&self.inner.driver) = Some(driver);
        match handshake.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(reason.into()),
            Err(_) => Err(ConnectError::Closed(CloseReason::TransportClosed)),
        }
    }
}

/// A URL this client cannot connect to, as a connect error.
#[cfg(feature = "websocket")]
fn bad_url(url: &str, why: &str) -> ConnectError {
    ConnectError::Io(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{url}: {why}"),
    ))
}

/// A WebSocket URL's scheme, host, port (if given) and path (`/` if none),
/// read by the `http` crate's URI parser.
#[cfg(feature = "websocket")]
fn split_ws_url(url: &str) -> Result<(String, String, Option<u16>, String), ConnectError> {
    let uri: tokio_tungstenite::tungstenite::http::Uri = url.parse().map_err(|_| bad_url(url, "not a URL"))?;
    let scheme = uri.scheme_str().ok_or_else(|| bad_url(url, "no scheme"))?.to_string();
    let host = uri.host().ok_or_else(|| bad_url(url, "no host"))?;
    let path = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_string(),
        Some(path) => path.to_string(),
    };
    Ok((scheme, host.trim_matches(['[', ']']).to_string(), uri.port_u16(), path))
}

/// Tries to reconnect by `policy`; see [`ReconnectPolicy`].
pub(super) async fn reconnect(client: Client, policy: ReconnectPolicy, redial: Redial) {
    redial_by(&client, policy, redial).await;
    if !client.is_connected() {
        client.inner.set_status(ClientStatus::Disconnected);
    }
}

/// Redials by `policy` until connected, refused, given up or not wanted.
async fn redial_by(client: &Client, policy: ReconnectPolicy, redial: Redial) {
    let mut delay = policy.initial_delay;
    // A cheap per-client jitter source: no need for a random-number crate.
    let mut jitter = Arc::as_ptr(&client.inner) as u64 | 1;
    for attempt in 1..=policy.max_attempts {
        jitter ^= jitter << 13;
        jitter ^= jitter >> 7;
        jitter ^= jitter << 17;
        let shortened = delay.mul_f64(1.0 - (jitter % 1000) as f64 / 4000.0);
        tokio::time::sleep(shortened).await;
        if client.is_connected()
            || client.inner.dropped.load(std::sync::atomic::Ordering::Acquire)
            || lock(&client.inner.redial).is_none()
        {
            return; // reconnected by hand meanwhile, closed, or nobody holds the client
        }
        match redial(client.clone()).await {
            Ok(()) if client.inner.dropped.load(std::sync::atomic::Ordering::Acquire) => {
                client.disconnect();
                return;
            }
            Ok(()) => {
                tracing::info!(attempt, "reconnected");
                let hooks = read(&client.inner.reconnect_hooks).clone();
                for hook in hooks {
                    catch_user("on_reconnect hook", None, || hook());
                }
                return;
            }
            Err(e @ ConnectError::Refused { .. }) => {
                tracing::warn!(error = %e, "not reconnecting: refused");
                return;
            }
            Err(e) => tracing::debug!(attempt, error = %e, "reconnect attempt failed"),
        }
        delay = (delay * 2).min(policy.max_delay);
    }
    tracing::warn!(attempts = policy.max_attempts, "gave up reconnecting");
}
