//! The client: connects to a server, calls and fires server-bound remotes,
//! runs the handlers of client-bound ones.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::ToSocketAddrs;
use tokio::sync::oneshot;
use volley_proto::{CloseReason, ConfigError, GoodbyeCode, Session, SessionConfig};

use crate::clock::now;
use crate::conn::Conn;
use crate::driver::{Driver, Side};
use crate::endpoint::Endpoint;
use crate::error::{ConnectError, EventError, FunctionError};
use crate::guard::catch_user;
use crate::locks::{lock, read, write};
use crate::middleware::BoxFuture;
use crate::redacted::Redacted;
use crate::remote::{ClientEvent, ClientFn, Payload, Protocol, ServerEvent, ServerFn, ToClient};
use crate::transport::{tcp, Transport};

/// Client settings. Every field is documented with its default.
///
/// Its `Debug` output shows the token's length, never the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Protocol limits and timers of the connection; see [`SessionConfig`].
    pub session: SessionConfig,
    /// Timeout of a call whose remote declares none. Default: 10 s.
    pub default_timeout: Duration,
    /// Credentials sent in the hello, for the server's authenticator.
    /// Default: empty.
    pub token: Vec<u8>,
    /// Whether and how to reconnect after losing an established connection
    /// made with any `connect_*` (TCP, TLS, WebSocket, WSS, QUIC: the
    /// transport it last connected with), not with [`Client::connect`].
    /// Default: none (stay disconnected).
    pub reconnect: Option<ReconnectPolicy>,
}

/// How a client reconnects after losing an established connection: after
/// `initial_delay`, then waits doubling up to `max_delay`, for at most
/// `max_attempts` attempts. Each wait is shortened by up to a quarter, at
/// random, so clients dropped together do not all return at once.
///
/// It reconnects when the connection was lost (transport closed or failed,
/// idle timeout) or the server shut down; not after [`Client::disconnect`], a
/// kick, a refusal or a protocol violation. Calls made while disconnected fail
/// at once with [`FunctionError::Disconnected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Wait before the first attempt. Default: 100 ms.
    pub initial_delay: Duration,
    /// Longest wait between attempts. Default: 5 s.
    pub max_delay: Duration,
    /// Attempts before giving up. Default: 10.
    pub max_attempts: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: 10,
        }
    }
}

impl ReconnectPolicy {
    /// Sets [`ReconnectPolicy::initial_delay`].
    pub fn with_initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }
    /// Sets [`ReconnectPolicy::max_delay`].
    pub fn with_max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }
    /// Sets [`ReconnectPolicy::max_attempts`].
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("session", &self.session)
            .field("default_timeout", &self.default_timeout)
            .field("token", &Redacted(self.token.len()))
            .field("reconnect", &self.reconnect)
            .finish()
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            default_timeout: Duration::from_secs(10),
            token: Vec::new(),
            reconnect: None,
        }
    }
}

impl ClientConfig {
    /// Checks that every setting can work: the session's (see
    /// [`SessionConfig::validate`]), a non-zero `default_timeout`, and a
    /// reconnect policy with at least one attempt and a `max_delay` not
    /// shorter than its `initial_delay`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.session.validate()?;
        let policy_bad = |check: fn(&ReconnectPolicy) -> bool| self.reconnect.as_ref().is_some_and(check);
        let checks = [
            (self.default_timeout.is_zero(), "default_timeout", "is zero"),
            (policy_bad(|p| p.max_attempts == 0), "reconnect.max_attempts", "is zero"),
            (
                policy_bad(|p| p.max_delay < p.initial_delay),
                "reconnect.max_delay",
                "is shorter than reconnect.initial_delay",
            ),
        ];
        ConfigError::first_of(checks)
    }

    /// Sets [`ClientConfig::session`].
    pub fn with_session(mut self, session: SessionConfig) -> Self {
        self.session = session;
        self
    }
    /// Sets [`ClientConfig::default_timeout`].
    pub fn with_default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }
    /// Sets [`ClientConfig::token`].
    pub fn with_token(mut self, token: impl Into<Vec<u8>>) -> Self {
        self.token = token.into();
        self
    }
    /// Sets [`ClientConfig::reconnect`].
    pub fn with_reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }
}

type DisconnectHook = Arc<dyn Fn(&CloseReason) + Send + Sync>;
type ReconnectHook = Arc<dyn Fn() + Send + Sync>;
/// Opens a new connection to where the last one went.
type Redial = Arc<dyn Fn(Client) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;

/// The client end. Cheap to clone: every clone is the same client.
///
/// Register handlers and listeners first, then [`connect`](Self::connect):
/// the server may call this client as soon as the handshake ends.
///
/// Dropping the last clone says goodbye ([`GoodbyeCode::Normal`], "client
/// dropped"), as [`disconnect`](Self::disconnect) does, and stops any
/// reconnecting.
///
/// To end a program, `client.close().await` before returning from `main`:
/// it returns once the goodbye has reached the server and the connection is
/// closed. Dropping the client or calling `disconnect` hands the goodbye to
/// the transport at once, which is enough over TCP, TLS and WebSocket, but a
/// QUIC connection needs its runtime for a moment longer to send it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
    /// Shared by the clones the application holds; the last one dropped
    /// closes the connection. Internal clones (the reconnect task) hold none.
    _handle: Option<Arc<Handle>>,
}

/// The client, for its own handlers: see [`Client::for_handlers`].
#[derive(Clone)]
struct HandlerClient(std::sync::Weak<ClientInner>);

impl HandlerClient {
    fn get(&self) -> Client {
        Client {
            // A handler is only called by the client's connection or by
            // `predict`, both of which hold the client.
            inner: self
                .0
                .upgrade()
                .expect("a client's handler runs while the client lives"),
            _handle: None,
        }
    }
}

/// Says goodbye when the application's last [`Client`] goes.
struct Handle(Arc<ClientInner>);

impl Drop for Handle {
    fn drop(&mut self) {
        let inner = &self.0;
        inner.dropped.store(true, std::sync::atomic::Ordering::Release);
        *lock(&inner.redial) = None;
        if let Some(conn) = lock(&inner.conn).clone() {
            conn.close(GoodbyeCode::Normal, "client dropped");
        }
    }
}

struct ClientInner {
    endpoint: Endpoint<()>,
    config: ClientConfig,
    conn: Mutex<Option<Arc<Conn>>>,
    /// The task of the connection in `conn`, for [`Client::close`].
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_close: Mutex<Option<CloseReason>>,
    disconnect_hooks: RwLock<Vec<DisconnectHook>>,
    reconnect_hooks: RwLock<Vec<ReconnectHook>>,
    redial: Mutex<Option<Redial>>,
    /// Counts connections that ended, for [`Client::closed`].
    closes: tokio::sync::watch::Sender<u64>,
    /// The application dropped its last handle: reconnecting stops.
    dropped: std::sync::atomic::AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Client {
    /// A client for `protocol`'s remotes, not connected yet.
    ///
    /// # Panics
    ///
    /// If `config` cannot work ([`ClientConfig::validate`]).
    #[track_caller]
    pub fn new(protocol: Protocol, config: ClientConfig) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid ClientConfig: {e}");
        }
        let inner = Arc::new(ClientInner {
            endpoint: Endpoint::new(protocol, volley_proto::Direction::ToClient),
            config,
            conn: Mutex::new(None),
            driver: Mutex::new(None),
            last_close: Mutex::new(None),
            disconnect_hooks: RwLock::new(Vec::new()),
            reconnect_hooks: RwLock::new(Vec::new()),
            redial: Mutex::new(None),
            closes: tokio::sync::watch::Sender::new(0),
            dropped: std::sync::atomic::AtomicBool::new(false),
        });
        Self {
            _handle: Some(Arc::new(Handle(inner.clone()))),
            inner,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    fn conn(&self) -> Option<Arc<Conn>> {
        lock(&self.inner.conn).clone()
    }

    // ---- connecting ----

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
        self.handshake(open().await?).await?;
        let redial: Redial = Arc::new(move |client: Client| {
            let open = open.clone();
            Box::pin(async move { client.handshake(open().await?).await })
        });
        *lock(&self.inner.redial) = Some(redial);
        Ok(())
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
        self.handshake(transport).await
    }

    async fn handshake<T: Transport>(&self, transport: T) -> Result<(), ConnectError> {
        let conn = {
            let mut slot = lock(&self.inner.conn);
            if slot.as_ref().is_some_and(|c| !c.is_closed()) {
                return Err(ConnectError::AlreadyConnected);
            }
            let config = &self.inner.config;
            let session = Session::client(
                config.session.clone(),
                self.inner.endpoint.protocol.table().clone(),
                &config.token,
                now(),
            );
            let conn = Conn::new(session, self.inner.endpoint.figures.clone());
            *slot = Some(conn.clone());
            conn
        };
        let (done, handshake) = oneshot::channel();
        let side = ClientSide {
            client: self.inner.clone(),
            conn: conn.clone(),
            handshake: Some(done),
        };
        let driver = tokio::spawn(Driver::new(conn, transport, side, None).run());
        *lock(&self.inner.driver) = Some(driver);
        match handshake.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(reason.into()),
            Err(_) => Err(ConnectError::Closed(CloseReason::TransportClosed)),
        }
    }

    /// Waits until the connection ends and says why. Returns at once when
    /// there is no connection (nor one being made): with the last reason,
    /// or, for a client that never connected, [`CloseReason::Local`] with
    /// [`GoodbyeCode::Normal`] and the message "never connected". With a
    /// [`ReconnectPolicy`] the client may come back after: call it again to
    /// wait for the next end.
    pub async fn closed(&self) -> CloseReason {
        let mut closes = self.inner.closes.subscribe();
        if self.conn().is_none() {
            return self.close_reason().unwrap_or_else(|| CloseReason::Local {
                code: GoodbyeCode::Normal,
                message: "never connected".into(),
            });
        }
        // The sender lives as long as the client: an error is not reached.
        let _ = closes.changed().await;
        self.close_reason().unwrap_or(CloseReason::TransportClosed)
    }

    /// Whether the handshake finished and the connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn().is_some_and(|c| c.is_open())
    }

    /// The connection's figures: round-trip time, frames and bytes each way,
    /// calls in flight, calls and events counted, errors by kind. `None`
    /// when not connected.
    pub fn figures(&self) -> Option<crate::figures::ConnectionFigures> {
        self.conn().map(|conn| conn.figures())
    }

    /// Every remote's counters for this client (calls, events, bytes,
    /// outcomes, latency), across its connections.
    pub fn remote_figures(&self) -> Vec<crate::figures::RemoteFigures> {
        self.inner.endpoint.figures.snapshot()
    }

    /// The smoothed round-trip time to the server, measured from the pings
    /// volley sends on connecting and every keep-alive interval (10 s)
    /// after; `None` while not connected or before the first pong.
    pub fn rtt(&self) -> Option<Duration> {
        self.conn().and_then(|c| c.rtt())
    }

    /// How much [`rtt`](Self::rtt) varies: the jitter.
    pub fn rtt_jitter(&self) -> Option<Duration> {
        self.conn().and_then(|c| c.rtt_jitter())
    }

    /// Says goodbye to the server and closes; pending calls end
    /// `Disconnected`. The goodbye is handed to the transport at once; the
    /// connection closes in the background. To end a program, use
    /// [`close`](Self::close).
    pub fn disconnect(&self) {
        if let Some(conn) = self.conn() {
            conn.close(GoodbyeCode::Normal, "client disconnected");
        }
    }

    /// Says goodbye as [`disconnect`](Self::disconnect) does, stops any
    /// reconnecting, and returns once the connection is closed: the goodbye
    /// sent and the server's close seen, or [`CLOSE_LINGER`](crate::CLOSE_LINGER)
    /// (1 s) passed. The way to end a program: over every transport the
    /// server then sees a clean goodbye ([`GoodbyeCode::Normal`]).
    pub async fn close(&self) {
        *lock(&self.inner.redial) = None;
        self.disconnect();
        let driver = lock(&self.inner.driver).take();
        if let Some(driver) = driver {
            // A connection task that panicked has already closed the session.
            let _ = driver.await;
        }
    }

    /// Why the last connection ended, if one did.
    pub fn close_reason(&self) -> Option<CloseReason> {
        lock(&self.inner.last_close).clone()
    }

    /// Calls `hook` when an established connection ends, with the reason (a
    /// kick arrives as [`CloseReason::Remote`] with [`GoodbyeCode::Kicked`]).
    pub fn on_disconnect(&self, hook: impl Fn(&CloseReason) + Send + Sync + 'static) {
        write(&self.inner.disconnect_hooks).push(Arc::new(hook));
    }

    // ---- calling the server ----

    /// Calls `remote` on the server with the remote's timeout (or the
    /// configured default, 10 s).
    pub fn invoke<Req: Payload, Resp: Payload>(
        &self,
        remote: ServerFn<Req, Resp>,
        req: Req,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + '_ {
        let timeout = remote.timeout.unwrap_or(self.inner.config.default_timeout);
        self.invoke_with_timeout(remote, req, timeout)
    }

    /// Calls `remote` on the server with this timeout.
    pub async fn invoke_with_timeout<Req: Payload, Resp: Payload>(
        &self,
        remote: ServerFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> Result<Resp, FunctionError> {
        let endpoint = &self.inner.endpoint;
        let pending = endpoint.start_call(self.conn(), &(), &remote, &req, timeout)?;
        endpoint.finish_call(&(), &remote, pending.await)
    }

    /// Fires `remote` at the server.
    pub fn fire<T: Payload>(&self, remote: ServerEvent<T>, value: T) -> Result<(), EventError> {
        let (id, payload) = self.inner.endpoint.encode_event(&remote, &value)?;
        let admitted = self
            .inner
            .endpoint
            .chains
            .admit_outgoing(&(), remote.name, payload.len());
        let sent = match (admitted, self.conn()) {
            (Err(_), _) => Err(EventError::Refused),
            (Ok(()), Some(conn)) => conn.send_event(id, &payload),
            (Ok(()), None) => Err(EventError::Disconnected),
        };
        crate::payload::recycle(payload);
        sent
    }

    crate::registration::registration_methods! {
        end: "client",
        peer: Client,
        ctx: (),
        handles: ToClient,
        function: ClientFn,
        event: ClientEvent,
    }

    /// What a handler is given: this client (see
    /// [`for_handlers`](Self::for_handlers)).
    fn peer_of(&self) -> impl Fn(()) -> Client + Send + Sync + 'static {
        let me = self.for_handlers();
        move |()| me.get()
    }

    /// This client as its own handlers are given it: held weakly (a handler
    /// lives inside the client: a strong hold would keep it forever), and
    /// without the handle whose drop says goodbye.
    fn for_handlers(&self) -> HandlerClient {
        HandlerClient(Arc::downgrade(&self.inner))
    }

    /// Runs this client's own handler of `remote` as if the server had called
    /// it: the same decoding, validation and errors, without the network.
    pub async fn predict<Req: Payload, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> Result<Resp, FunctionError> {
        self.inner.endpoint.predict((), remote, &req).await
    }

    /// Hands `value` to this client's listeners of `remote` as if the server
    /// had fired it.
    pub fn predict_event<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<(), EventError> {
        self.inner.endpoint.predict_event(&(), remote, &value)
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
async fn reconnect(client: Client, policy: ReconnectPolicy, redial: Redial) {
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

/// The client's end of one connection.
struct ClientSide {
    client: Arc<ClientInner>,
    conn: Arc<Conn>,
    /// Until the handshake ends: how `connect` learns the outcome.
    handshake: Option<oneshot::Sender<Result<(), CloseReason>>>,
}

impl Side for ClientSide {
    type Ctx = ();

    fn endpoint(&self) -> &Endpoint<()> {
        &self.client.endpoint
    }

    fn ctx(&self) -> &() {
        &()
    }

    fn hello(&mut self, _conn: &Arc<Conn>, _token: Bytes) {
        // Only servers receive hellos; the session never reports one here.
    }

    fn connected(&mut self) {
        if let Some(done) = self.handshake.take() {
            let _ = done.send(Ok(()));
        }
    }

    fn closed(&mut self, reason: CloseReason) {
        {
            let mut slot = lock(&self.client.conn);
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.conn)) {
                *slot = None;
            }
        }
        *lock(&self.client.last_close) = Some(reason.clone());
        self.client.closes.send_modify(|closes| *closes += 1);
        if let Some(done) = self.handshake.take() {
            let _ = done.send(Err(reason));
            return;
        }
        tracing::info!(%reason, "disconnected from server");
        let hooks = read(&self.client.disconnect_hooks).clone();
        for hook in hooks {
            catch_user("on_disconnect hook", None, || hook(&reason));
        }
        let lost = matches!(
            reason,
            CloseReason::TransportClosed
                | CloseReason::TransportError(_)
                | CloseReason::IdleTimeout
                | CloseReason::Remote {
                    code: GoodbyeCode::ShuttingDown,
                    ..
                }
        );
        let redial = lock(&self.client.redial).clone();
        if let (true, Some(policy), Some(redial)) = (lost, self.client.config.reconnect, redial) {
            let client = Client {
                inner: self.client.clone(),
                _handle: None,
            };
            tokio::spawn(reconnect(client, policy, redial));
        }
    }
}
