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
use crate::endpoint::{Endpoint, Invocation};
use crate::error::{ConnectError, EventError, FunctionError};
use crate::guard::catch_user;
use crate::locks::{lock, read, write};
use crate::middleware::BoxFuture;
use crate::redacted::Redacted;
use crate::remote::{ClientEvent, ClientFn, Payload, Protocol, ServerEvent, ServerFn, ToClient};
use crate::transport::{tcp, Transport};

mod config;
mod connect;
mod resume;
mod side;
mod status;

pub use config::{ClientConfig, ReconnectPolicy};
use connect::reconnect;
use side::ClientSide;
pub use status::ClientStatus;

type DisconnectHook = Arc<dyn Fn(&CloseReason) + Send + Sync>;
type ReconnectHook = Arc<dyn Fn() + Send + Sync>;
/// Opens a new connection to where the last one went.
type Redial = Arc<dyn Fn(Client) -> BoxFuture<Result<(), ConnectError>> + Send + Sync>;
/// Opens the transport the client last connected with, for a resume.
type Reopen = Arc<dyn Fn() -> BoxFuture<std::io::Result<crate::conn::Handoff>> + Send + Sync>;

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
    reopen: Mutex<Option<Reopen>>,
    /// A resume is being tried (one at a time).
    resuming: std::sync::atomic::AtomicBool,
    /// Told when the session resumes, goes away again or closes.
    resume_news: tokio::sync::Notify,
    resumed_hooks: RwLock<Vec<ReconnectHook>>,
    /// Counts connections that ended, for [`Client::closed`].
    closes: tokio::sync::watch::Sender<u64>,
    /// The application dropped its last handle: reconnecting stops.
    dropped: std::sync::atomic::AtomicBool,
    /// Where the connection stands, for [`Client::watch_status`].
    status: tokio::sync::watch::Sender<ClientStatus>,
}

impl ClientInner {
    /// Moves the status to `to`, telling its watchers if it changed.
    fn set_status(&self, to: ClientStatus) {
        self.status
            .send_if_modified(|status| std::mem::replace(status, to) != to);
    }
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
            reopen: Mutex::new(None),
            resuming: std::sync::atomic::AtomicBool::new(false),
            resume_news: tokio::sync::Notify::new(),
            resumed_hooks: RwLock::new(Vec::new()),
            closes: tokio::sync::watch::Sender::new(0),
            dropped: std::sync::atomic::AtomicBool::new(false),
            status: tokio::sync::watch::Sender::new(ClientStatus::Disconnected),
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

    /// The id the server gave this client's player (what the server's
    /// [`Player::id`](crate::Player::id) says), while connected; a new one
    /// after each reconnect.
    pub fn player_id(&self) -> Option<crate::PlayerId> {
        self.conn().and_then(|c| c.player()).map(crate::PlayerId)
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

    /// Stops reading what the server sends on the current connection, for a
    /// consumer that cannot keep up (backpressure): its events, calls and
    /// keep-alive answers wait in the transport's buffers, and the server's
    /// writes stall once those fill. What was already read is still
    /// delivered. Returns `false` if reading was held already or there is no
    /// connection; a new connection (a reconnect) reads from the start. Held
    /// longer than the idle timeout (30 s by default), the connection closes
    /// as idle.
    pub fn pause_reading(&self) -> bool {
        self.conn().is_some_and(|conn| conn.hold_reads(true))
    }

    /// Reads again after [`pause_reading`](Self::pause_reading); returns
    /// `false` if reading was not held.
    pub fn resume_reading(&self) -> bool {
        self.conn().is_some_and(|conn| conn.hold_reads(false))
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

    /// Where the connection stands now.
    pub fn status(&self) -> ClientStatus {
        *self.inner.status.borrow()
    }

    /// A receiver of every change of [`status`](Self::status): its
    /// `has_changed` is one atomic load, cheap enough for every frame of a
    /// game loop. True on every path: a connect call, the handshake's end,
    /// a lost connection resumed or redialed, reconnecting given up.
    pub fn watch_status(&self) -> tokio::sync::watch::Receiver<ClientStatus> {
        self.inner.status.subscribe()
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
    pub fn invoke_with_timeout<Req: Payload, Resp: Payload>(
        &self,
        remote: ServerFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + '_ {
        Invocation::new(&self.inner.endpoint, &(), || self.conn(), remote, req, timeout)
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
