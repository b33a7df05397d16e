//! A node: one volley server that is part of a cluster. It announces itself,
//! learns who else is alive, and serves what other nodes ask of its players.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use volley::{PlayerId, Protocol, Recipients, Server, ServerConfig};

use crate::broker::{Broker, BrokerError, Inbound, Subscription};
use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::nats::{BrokerEvents, NatsBroker};
use crate::presence::Presence;
use crate::subjects::{node_of, Subjects};
use crate::wire::{self, Message, Reply, To, WireResult};

/// One server of a cluster. Register handlers on [`server`](Self::server)
/// and accept clients there as on any volley server; reach players of every
/// node through this.
#[derive(Clone)]
pub struct ClusterNode {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) server: Server,
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) node: u32,
    pub(crate) subjects: Subjects,
    pub(crate) config: ClusterConfig,
    pub(crate) presence: Presence,
    next_call: AtomicU64,
    /// Calls other nodes asked of this node's players, by (origin, call):
    /// a `Cancel` stops them.
    running: Mutex<HashMap<(u32, u64), AbortHandle>>,
    /// Room subscriptions, by room name.
    rooms: Mutex<HashMap<String, AbortHandle>>,
    /// Room changes for [`follow_rooms`], in order.
    room_changes: mpsc::UnboundedSender<RoomChange>,
    /// Background tasks, stopped with the node.
    tasks: Mutex<Vec<AbortHandle>>,
    events: Option<Arc<BrokerEvents>>,
}

/// What the node and its broker client have counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// Times the broker client reported this node a slow consumer: it
    /// dropped messages for one of its subscriptions (each logged).
    pub slow_consumer: u64,
    /// Times the connection to the broker dropped.
    pub broker_disconnects: u64,
    /// Messages from other nodes dropped as unreadable (another version,
    /// or not decoding); each logged.
    pub unreadable: u64,
}

static UNREADABLE: AtomicU64 = AtomicU64::new(0);

impl ClusterNode {
    /// Connects to the broker of `cluster`, picks a node number nobody in the
    /// cluster holds, and builds this node's server with `protocol` and
    /// `config` (its player ids start at `node << 32`, so they are unique
    /// across the cluster). The player ids are the cluster's to number: a
    /// `config` with [`ServerConfig::player_id_base`] set is refused.
    pub async fn start(protocol: Protocol, config: ServerConfig, cluster: ClusterConfig) -> Result<Self, ClusterError> {
        ids_left_to_the_cluster(&config)?;
        let broker = NatsBroker::connect(&cluster, "volley node")
            .await
            .map_err(|e| ClusterError::Broker(e.to_string()))?;
        let events = broker.events.clone();
        Self::start_with(Arc::new(broker), Some(events), protocol, config, cluster).await
    }

    /// As [`start`](Self::start), over any [`Broker`].
    pub async fn start_with_broker(
        broker: Arc<dyn Broker>,
        protocol: Protocol,
        config: ServerConfig,
        cluster: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        Self::start_with(broker, None, protocol, config, cluster).await
    }

    async fn start_with(
        broker: Arc<dyn Broker>,
        events: Option<Arc<BrokerEvents>>,
        protocol: Protocol,
        config: ServerConfig,
        cluster: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        ids_left_to_the_cluster(&config)?;
        let subjects = Subjects::new(&cluster.cluster)?;
        let node = free_node_number(&*broker, &subjects).await?;
        let server = Server::new(protocol, config.with_player_id_base(u64::from(node) << 32));
        let (room_changes, rooms_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            server,
            broker,
            node,
            subjects,
            config: cluster,
            presence: Presence::new(),
            next_call: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            rooms: Mutex::new(HashMap::new()),
            room_changes,
            tasks: Mutex::new(Vec::new()),
            events,
        });
        let subscribe = |subject: String| {
            let broker = inner.broker.clone();
            async move {
                broker
                    .subscribe(subject)
                    .await
                    .map_err(|e| ClusterError::Broker(e.to_string()))
            }
        };
        // Subscribed before anyone can learn this node's number.
        let own = subscribe(inner.subjects.node(node)).await?;
        let all = subscribe(inner.subjects.all()).await?;
        let presence = subscribe(inner.subjects.presence()).await?;
        let weak = Arc::downgrade(&inner);
        let spawn = |task: tokio::task::JoinHandle<()>| lock(&inner.tasks).push(task.abort_handle());
        spawn(tokio::spawn(serve(weak.clone(), own)));
        spawn(tokio::spawn(serve(weak.clone(), all)));
        spawn(tokio::spawn(listen_presence(weak.clone(), presence)));
        spawn(tokio::spawn(heartbeat(weak.clone())));
        spawn(tokio::spawn(follow_rooms(weak.clone(), rooms_rx)));
        let changes = inner.room_changes.clone();
        inner.server.on_room_joined(move |_, room| {
            let _ = changes.send((room.to_string(), None));
        });
        let changes = inner.room_changes.clone();
        inner.server.on_room_left(move |_, room| {
            let _ = changes.send((room.to_string(), None));
        });
        tracing::info!(node, cluster = %inner.config.cluster, "joined the cluster");
        Ok(Self { inner })
    }

    /// This node's server: register handlers and listen here.
    pub fn server(&self) -> &Server {
        &self.inner.server
    }

    /// This node's number in the cluster.
    pub fn node_id(&self) -> u32 {
        self.inner.node
    }

    /// The nodes alive now (this one included once its own heartbeat is
    /// back), by number.
    pub fn live_nodes(&self) -> Vec<u32> {
        self.inner.presence.live()
    }

    /// Each live node's player count, as its last heartbeat said (at most a
    /// heartbeat old; [`players`](Self::players) asks every node instead).
    pub fn players_by_node(&self) -> std::collections::BTreeMap<u32, u32> {
        self.inner.presence.players()
    }

    /// Whether the broker is reachable now. While it is not, local traffic
    /// goes on and cluster operations fail at once.
    pub fn broker_connected(&self) -> bool {
        self.inner.broker.is_connected()
    }

    /// What this node has counted.
    pub fn stats(&self) -> ClusterStats {
        let (slow_consumer, broker_disconnects) = self.inner.events.as_ref().map_or((0, 0), |e| {
            (
                e.slow_consumer.load(Ordering::Relaxed),
                e.disconnects.load(Ordering::Relaxed),
            )
        });
        ClusterStats {
            slow_consumer,
            broker_disconnects,
            unreadable: UNREADABLE.load(Ordering::Relaxed),
        }
    }

    /// Leaves the cluster: tells the others (so they stop counting this
    /// node's players at once), stops the background tasks and closes the
    /// broker connection. The server itself is not shut down. (Handlers that
    /// hold the node keep it alive: this is how a node stops.)
    pub async fn leave_cluster(&self) {
        let inner = &self.inner;
        let goodbye = Message::Heartbeat {
            node: inner.node,
            protocol: inner.server.protocol().hash(),
            players: 0,
            leaving: true,
        };
        let _ = inner
            .broker
            .publish(inner.subjects.presence(), None, wire::encode(&goodbye))
            .await;
        for task in lock(&inner.tasks).drain(..) {
            task.abort();
        }
        for (_, task) in lock(&inner.rooms).drain() {
            task.abort();
        }
        inner.broker.close().await;
    }

    pub(crate) fn next_call(&self) -> u64 {
        self.inner.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Fails fast while the broker is away.
    pub(crate) fn require_broker(&self) -> Result<(), ClusterError> {
        if self.inner.broker.is_connected() {
            Ok(())
        } else {
            Err(ClusterError::BrokerUnavailable)
        }
    }

    /// Whether `player` is connected to this node (by its id's range).
    pub(crate) fn is_local(&self, player: PlayerId) -> bool {
        node_of(player) == self.inner.node
    }

    /// Sends `message` to `node` and decodes its one reply.
    pub(crate) async fn ask(&self, node: u32, message: &Message, timeout: Duration) -> Result<Reply, ClusterError> {
        self.require_broker()?;
        let subject = self.inner.subjects.node(node);
        match self.inner.broker.request(subject, wire::encode(message), timeout).await {
            Ok(bytes) => wire::decode(&bytes).map_err(ClusterError::Broker),
            Err(e) => Err(cluster_error(e)),
        }
    }

    /// Publishes `message` on `subject`.
    pub(crate) async fn publish(&self, subject: String, message: &Message) -> Result<(), ClusterError> {
        self.publish_encoded(subject, wire::encode(message)).await
    }

    /// Publishes a message already encoded on `subject`.
    pub(crate) async fn publish_encoded(&self, subject: String, message: bytes::Bytes) -> Result<(), ClusterError> {
        self.require_broker()?;
        self.inner
            .broker
            .publish(subject, None, message)
            .await
            .map_err(cluster_error)
    }

    /// Fails if an encoded message of `len` bytes is over the broker's
    /// limit: checked before anything of a group's message is delivered.
    pub(crate) fn fits_broker(&self, len: usize) -> Result<(), ClusterError> {
        let max = self.inner.broker.max_payload();
        if len > max {
            return Err(ClusterError::TooLarge { len, max });
        }
        Ok(())
    }
}

/// A broker error in the cluster's terms.
pub(crate) fn cluster_error(error: BrokerError) -> ClusterError {
    match error {
        BrokerError::NoResponders => ClusterError::NotConnected,
        BrokerError::Unavailable => ClusterError::BrokerUnavailable,
        BrokerError::TooLarge { len, max } => ClusterError::TooLarge { len, max },
        e => ClusterError::Broker(e.to_string()),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        for (_, task) in lock(&self.rooms).drain() {
            task.abort();
        }
    }
}

impl fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterNode")
            .field("node", &self.inner.node)
            .field("cluster", &self.inner.config.cluster)
            .field("live_nodes", &self.live_nodes())
            .finish()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Refuses a server configuration that numbers its own players: the
/// cluster numbers them from `node << 32`.
fn ids_left_to_the_cluster(config: &ServerConfig) -> Result<(), ClusterError> {
    if config.player_id_base != 0 {
        return Err(ClusterError::Broker(
            "ServerConfig::player_id_base is the cluster's to set (node << 32): leave it at 0".into(),
        ));
    }
    Ok(())
}

/// A random node number that no node of the cluster answers to.
async fn free_node_number(broker: &dyn Broker, subjects: &Subjects) -> Result<u32, ClusterError> {
    for _ in 0..16 {
        let node = random_node_number();
        let ping = wire::encode(&Message::Ping);
        match broker.request(subjects.node(node), ping, Duration::from_secs(1)).await {
            Err(crate::broker::BrokerError::NoResponders) => return Ok(node),
            Err(crate::broker::BrokerError::Unavailable) => return Err(ClusterError::BrokerUnavailable),
            // Taken (or the broker is slow to say): try another.
            _ => continue,
        }
    }
    Err(ClusterError::Broker("no free node number after 16 tries".into()))
}

/// A number from 1 to `u32::MAX`, different in each process and each call.
fn random_node_number() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    (hasher.finish() as u32).max(1)
}

/// Announces the node every heartbeat, and sweeps the silent ones out.
async fn heartbeat(inner: std::sync::Weak<Inner>) {
    let Some(period) = inner.upgrade().map(|i| i.config.heartbeat) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let beat = Message::Heartbeat {
            node: inner.node,
            protocol: inner.server.protocol().hash(),
            players: inner.server.player_count().try_into().unwrap_or(u32::MAX),
            leaving: false,
        };
        // While the broker is away this fails; the client reconnects.
        let _ = inner
            .broker
            .publish(inner.subjects.presence(), None, wire::encode(&beat))
            .await;
        // Judged only once this node hears its own heartbeats again: after
        // a pause (a stopped process, a stalled machine) the others' beats
        // are still waiting to be read, and would be misread as silence.
        let behind = inner.broker.is_connected() && !inner.presence.heard_within(inner.node, inner.config.dead_after);
        if behind {
            tracing::debug!("not judging other nodes: this node's own heartbeats are not back yet");
            continue;
        }
        for node in inner.presence.sweep(inner.config.dead_after) {
            tracing::warn!(node, after = ?inner.config.dead_after, "node silent: gone");
        }
    }
}

/// Heartbeats of every node, into the presence table.
async fn listen_presence(inner: std::sync::Weak<Inner>, mut beats: Subscription) {
    while let Some(message) = beats.next().await {
        let Some(inner) = inner.upgrade() else { return };
        match wire::decode(&message.payload) {
            Ok(Message::Heartbeat {
                node,
                protocol,
                players,
                leaving,
            }) => {
                if protocol != inner.server.protocol().hash() {
                    tracing::error!(node, "a node with other remotes is in this cluster: ignored");
                    continue;
                }
                inner.presence.heard(node, players, leaving);
            }
            Ok(_) => {}
            Err(reason) => unreadable(&message, &reason),
        }
    }
}

fn unreadable(message: &Inbound, reason: &str) {
    UNREADABLE.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(subject = %message.subject, %reason, "unreadable cluster message dropped");
}

/// A room whose membership on this node changed, and who waits until the
/// node follows it (or stops) accordingly.
type RoomChange = (String, Option<oneshot::Sender<()>>);

impl ClusterNode {
    /// Returns once this node follows `room`'s subject as its members here
    /// require, and the broker knows it: a fire at the room from any node
    /// after this reaches the members of this node.
    pub(crate) async fn room_followed(&self, room: &str) {
        let (done, followed) = oneshot::channel();
        if self.inner.room_changes.send((room.to_string(), Some(done))).is_ok() {
            let _ = followed.await;
        }
    }
}

/// Subscribes to a room's subject while the node has members there, one
/// change at a time, in order.
async fn follow_rooms(inner: std::sync::Weak<Inner>, mut changes: mpsc::UnboundedReceiver<RoomChange>) {
    while let Some((room, done)) = changes.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let wanted = inner.server.room_size(&room) > 0;
        let followed = lock(&inner.rooms).contains_key(&room);
        if wanted && !followed {
            match inner.broker.subscribe(inner.subjects.room(&room)).await {
                Ok(messages) => {
                    let task = tokio::spawn(serve(Arc::downgrade(&inner), messages));
                    lock(&inner.rooms).insert(room.clone(), task.abort_handle());
                    // Bounded: without the broker (it reconnects by itself,
                    // subscriptions included) a join must not wait for it.
                    let confirmed = tokio::time::timeout(inner.config.query_timeout, inner.broker.flush()).await;
                    if !matches!(confirmed, Ok(Ok(()))) {
                        tracing::warn!(%room, "room subscription not confirmed by the broker in time");
                    }
                }
                Err(e) => tracing::warn!(%room, error = %e, "could not follow a room's cluster events"),
            }
        } else if !wanted && followed {
            if let Some(task) = lock(&inner.rooms).remove(&room) {
                task.abort();
            }
        }
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

/// Serves the messages of one subscription.
async fn serve(inner: std::sync::Weak<Inner>, mut messages: Subscription) {
    while let Some(message) = messages.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let node = ClusterNode { inner };
        match wire::decode::<Message>(&message.payload) {
            Ok(decoded) => node.handle(decoded, message.reply),
            Err(reason) => unreadable(&message, &reason),
        }
    }
}

impl ClusterNode {
    /// Acts on one message from another node.
    fn handle(&self, message: Message, reply: Option<String>) {
        let server = &self.inner.server;
        match message {
            Message::Heartbeat { .. } => {}
            Message::Fire {
                origin,
                to,
                except,
                remote,
                payload,
            } => {
                // The sender delivered to its own players itself.
                if origin == self.inner.node {
                    return;
                }
                if let Err(e) = self.local(&to, &except).fire_encoded(&remote, &payload) {
                    tracing::debug!(%remote, error = %e, "cluster event not delivered");
                }
            }
            Message::Invoke {
                origin,
                call,
                player,
                remote,
                payload,
                timeout_ms,
            } => {
                let Some(reply) = reply else { return };
                let node = self.clone();
                self.run(origin, call, async move {
                    let timeout = Duration::from_millis(timeout_ms);
                    let result = match node.inner.server.player(PlayerId(player)) {
                        Some(player) => player.invoke_encoded(&remote, &payload, timeout).await,
                        None => Err(volley::FunctionError::Disconnected),
                    };
                    node.answer(reply, &Reply::Answer(WireResult::from(result))).await;
                });
            }
            Message::InvokeGroup {
                origin,
                call,
                to,
                except,
                remote,
                payload,
                timeout_ms,
            } => {
                let Some(reply) = reply else { return };
                let node = self.clone();
                let recipients = self.local(&to, &except);
                self.run(origin, call, async move {
                    let mut answers = recipients.invoke_encoded(&remote, &payload, Duration::from_millis(timeout_ms));
                    let me = node.inner.node;
                    let players = answers.asked_ids().iter().map(|p| p.0).collect();
                    node.answer(reply.clone(), &Reply::Manifest { node: me, players }).await;
                    while let Some((player, result)) = answers.next().await {
                        let answered = Reply::Answered {
                            player: player.0,
                            result: WireResult::from(result),
                        };
                        node.answer(reply.clone(), &answered).await;
                    }
                    node.answer(reply, &Reply::Done { node: me }).await;
                });
            }
            Message::Cancel { origin, call } => {
                if let Some(task) = lock(&self.inner.running).remove(&(origin, call)) {
                    task.abort();
                }
            }
            Message::Join { player, room } => {
                let joined = server.join(PlayerId(player), &room);
                let (node, reply) = (self.clone(), reply);
                tokio::spawn(async move {
                    node.room_followed(&room).await;
                    if let Some(subject) = reply {
                        node.answer(subject, &Reply::Bool(joined)).await;
                    }
                });
            }
            Message::Leave { player, room } => {
                let left = server.leave(PlayerId(player), &room);
                self.reply_now(reply, Reply::Bool(left));
            }
            Message::Kick { player, reason } => {
                let kicked = server.player(PlayerId(player)).map(|p| p.kick(&reason)).is_some();
                self.reply_now(reply, Reply::Bool(kicked));
            }
            Message::Members { room } => {
                let players = match room {
                    Some(room) => server.room_members(&room),
                    None => server.players(),
                };
                let players = players.iter().map(|p| p.id().0).collect();
                self.reply_now(reply, Reply::Players(players));
            }
            Message::Ping => self.reply_now(reply, Reply::Pong),
        }
    }

    /// This node's players among `to`, but `except`.
    pub(crate) fn local(&self, to: &To, except: &[u64]) -> Recipients {
        let server = &self.inner.server;
        let recipients = match to {
            To::Player(id) => server.to_ids([PlayerId(*id)]),
            To::Rooms(rooms) => server.to_rooms(rooms),
            To::All => server.to_all(),
        };
        except.iter().fold(recipients, |r, id| r.except_id(PlayerId(*id)))
    }

    /// Runs a call another node asked for, until it ends or is cancelled.
    fn run(&self, origin: u32, call: u64, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let node = self.clone();
        let mut running = lock(&self.inner.running);
        let task = tokio::spawn(async move {
            work.await;
            lock(&node.inner.running).remove(&(origin, call));
        });
        running.insert((origin, call), task.abort_handle());
    }

    /// Sends `reply` to the node that asked. An answer too large for the
    /// broker goes as [`FunctionError::TooLarge`](volley::FunctionError::TooLarge)
    /// instead, so the caller learns it at once rather than at its deadline.
    async fn answer(&self, subject: String, reply: &Reply) {
        let broker = &self.inner.broker;
        match broker.publish(subject.clone(), None, wire::encode(reply)).await {
            Ok(()) => {}
            Err(BrokerError::TooLarge { len, max }) => {
                tracing::warn!(len, max, "answer too large for the broker: the caller is told TooLarge");
                if let Some(refusal) = reply.too_large() {
                    if let Err(e) = broker.publish(subject, None, wire::encode(&refusal)).await {
                        tracing::debug!(error = %e, "answer to another node not sent");
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "answer to another node not sent"),
        }
    }

    fn reply_now(&self, subject: Option<String>, reply: Reply) {
        let Some(subject) = subject else { return };
        let node = self.clone();
        tokio::spawn(async move { node.answer(subject, &reply).await });
    }
}
