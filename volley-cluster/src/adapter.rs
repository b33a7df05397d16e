//! The cluster as a volley adapter: a node joins its cluster, and the volley
//! server built with it reaches the players of every node.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use volley::adapter::{Adapter, Census, Group, Relay, Relayed, RemoteAnswers, Target};
use volley::middleware::BoxFuture;
use volley::{EventError, PlayerError, PlayerId};

use crate::broker::{Broker, BrokerError, Subscription};
use crate::config::ClusterConfig;
use crate::error::ClusterError;
use crate::nats::{BrokerEvents, NatsBroker};
use crate::presence::Presence;
use crate::subjects::{node_of, Subjects};
use crate::tasks::{self, RoomChange};
use crate::wire::{self, Message, Reply, To};

/// Events a node has handed to its broker publisher and that are not sent
/// yet: past this, `fire` fails `EventError::Unreachable` (the broker is
/// not keeping up) instead of holding more. 8,192 messages.
pub const OUTBOX_CAPACITY: usize = 8_192;

/// One node's place in a cluster: give it to
/// [`Server::with_adapter`](volley::Server::with_adapter), and that server's
/// groups, calls, rooms and kicks reach the players of every node.
///
/// ```no_run
/// # async fn example(protocol: volley::Protocol) -> Result<(), Box<dyn std::error::Error>> {
/// use volley::{Server, ServerConfig};
/// use volley_cluster::{ClusterConfig, NatsAdapter};
///
/// let adapter = NatsAdapter::connect(ClusterConfig::new("nats://127.0.0.1:4222", "game")).await?;
/// let server = Server::with_adapter(protocol, ServerConfig::default(), adapter.clone());
/// // From here on, the same game code as on one server.
/// # Ok(()) }
/// ```
///
/// Clones are the same node; one adapter serves one server.
#[derive(Clone)]
pub struct NatsAdapter {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) broker: Arc<dyn Broker>,
    pub(crate) node: u32,
    pub(crate) subjects: Subjects,
    pub(crate) config: ClusterConfig,
    pub(crate) presence: Presence,
    /// The server this node serves, once built with the adapter.
    pub(crate) relay: OnceLock<Relay>,
    next_call: AtomicU64,
    /// Calls other nodes asked of this node's players, by (origin, call):
    /// a `Cancel` stops them.
    pub(crate) running: Mutex<HashMap<(u32, u64), AbortHandle>>,
    /// Room subscriptions, by room name.
    pub(crate) rooms: Mutex<HashMap<String, AbortHandle>>,
    /// Room changes for the task that follows rooms, in order.
    room_changes: mpsc::UnboundedSender<RoomChange>,
    /// Events on their way to the broker, in order.
    outbox: mpsc::Sender<(String, bytes::Bytes)>,
    /// What `attach` starts: subscriptions made while joining, and the
    /// receiving ends of the channels above.
    waiting: Mutex<Option<Waiting>>,
    /// Background tasks, stopped with the node.
    pub(crate) tasks: Mutex<Vec<AbortHandle>>,
    events: Option<Arc<BrokerEvents>>,
}

struct Waiting {
    own: Subscription,
    all: Subscription,
    presence: Subscription,
    room_changes: mpsc::UnboundedReceiver<RoomChange>,
    outbox: mpsc::Receiver<(String, bytes::Bytes)>,
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

pub(crate) static UNREADABLE: AtomicU64 = AtomicU64::new(0);

impl NatsAdapter {
    /// Connects to the NATS server of `cluster` and joins it: picks a node
    /// number nobody in the cluster holds (this node's players' ids start
    /// at `node << 32`, so they are unique across the cluster).
    pub async fn connect(cluster: ClusterConfig) -> Result<Self, ClusterError> {
        let broker = NatsBroker::connect(&cluster, "volley node").await?;
        let events = broker.events.clone();
        Self::join(Arc::new(broker), Some(events), cluster).await
    }

    /// As [`connect`](Self::connect), over any [`Broker`].
    pub async fn with_broker(broker: Arc<dyn Broker>, cluster: ClusterConfig) -> Result<Self, ClusterError> {
        Self::join(broker, None, cluster).await
    }

    async fn join(
        broker: Arc<dyn Broker>,
        events: Option<Arc<BrokerEvents>>,
        cluster: ClusterConfig,
    ) -> Result<Self, ClusterError> {
        let subjects = Subjects::new(&cluster.cluster)?;
        let node = free_node_number(&*broker, &subjects).await?;
        // Subscribed before anyone can learn this node's number.
        let own = broker.subscribe(subjects.node(node)).await?;
        let all = broker.subscribe(subjects.all()).await?;
        let presence = broker.subscribe(subjects.presence()).await?;
        let (room_changes, room_changes_rx) = mpsc::unbounded_channel();
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX_CAPACITY);
        let inner = Arc::new(Inner {
            broker,
            node,
            subjects,
            config: cluster,
            presence: Presence::new(),
            relay: OnceLock::new(),
            next_call: AtomicU64::new(1),
            running: Mutex::new(HashMap::new()),
            rooms: Mutex::new(HashMap::new()),
            room_changes,
            outbox,
            waiting: Mutex::new(Some(Waiting {
                own,
                all,
                presence,
                room_changes: room_changes_rx,
                outbox: outbox_rx,
            })),
            tasks: Mutex::new(Vec::new()),
            events,
        });
        tracing::info!(node, cluster = %inner.config.cluster, "joined the cluster");
        Ok(Self { inner })
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
    /// heartbeat old; `server.to_all().members()` asks every node instead).
    pub fn players_by_node(&self) -> BTreeMap<u32, u32> {
        self.inner.presence.players()
    }

    /// Whether the broker is reachable now. While it is not, local traffic
    /// goes on and what must reach other nodes fails at once, `Unreachable`.
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
    /// broker connection. The server itself is not shut down; from then on
    /// it reaches its own players only.
    pub async fn leave_cluster(&self) {
        let inner = &self.inner;
        let goodbye = Message::Heartbeat {
            node: inner.node,
            protocol: inner.relay.get().map_or(0, Relay::protocol_hash),
            players: 0,
            leaving: true,
        };
        let _ = inner
            .broker
            .publish(inner.subjects.presence(), None, wire::encode(&goodbye))
            .await;
        inner.stop_tasks();
        inner.broker.close().await;
    }

    pub(crate) fn next_call(&self) -> u64 {
        self.inner.next_call.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the player `id` is connected to this node (by its id's range).
    pub(crate) fn is_here(&self, id: PlayerId) -> bool {
        node_of(id) == self.inner.node
    }

    /// The other live nodes.
    pub(crate) fn other_nodes(&self) -> Vec<u32> {
        let me = self.inner.node;
        self.live_nodes().into_iter().filter(|n| *n != me).collect()
    }

    /// The nodes `target` reaches, with the players asked on each when it
    /// names players; ids whose node is not alive are returned apart.
    pub(crate) fn nodes_of(&self, target: &Target) -> (BTreeMap<u32, Option<Vec<PlayerId>>>, Vec<PlayerId>) {
        match &target.group {
            Group::Ids(ids) => {
                let mut nodes: BTreeMap<u32, Option<Vec<PlayerId>>> = BTreeMap::new();
                let mut gone = Vec::new();
                for &id in ids.iter().filter(|id| !self.is_here(**id)) {
                    let node = node_of(id);
                    if self.inner.presence.is_live(node) {
                        nodes.entry(node).or_default().get_or_insert_default().push(id);
                    } else {
                        gone.push(id);
                    }
                }
                (nodes, gone)
            }
            _ => (self.other_nodes().into_iter().map(|n| (n, None)).collect(), Vec::new()),
        }
    }

    /// Sends `message` to `node` and decodes its one reply.
    pub(crate) async fn ask(&self, node: u32, message: &Message, timeout: Duration) -> Result<Reply, BrokerError> {
        if !self.broker_connected() {
            return Err(BrokerError::Unavailable);
        }
        let subject = self.inner.subjects.node(node);
        let bytes = self
            .inner
            .broker
            .request(subject, wire::encode(message), timeout)
            .await?;
        wire::decode(&bytes).map_err(BrokerError::Other)
    }

    /// Asks the node of player `id` to do something to it.
    async fn ask_player_node(&self, id: PlayerId, message: Message) -> Result<bool, PlayerError> {
        let node = node_of(id);
        if !self.inner.presence.is_live(node) {
            return Err(PlayerError::NotConnected);
        }
        match self.ask(node, &message, self.inner.config.query_timeout).await {
            Ok(Reply::Changed(Some(changed))) => Ok(changed),
            Ok(Reply::Changed(None)) | Err(BrokerError::NoResponders) => Err(PlayerError::NotConnected),
            Ok(_) => {
                tracing::warn!(node, "unexpected answer from another node");
                Err(PlayerError::Unreachable)
            }
            Err(e) => {
                tracing::warn!(node, error = %e, "another node did not answer");
                Err(PlayerError::Unreachable)
            }
        }
    }

    /// Returns once this node follows `room`'s subject as its members here
    /// require, and the broker knows it: a fire at the room from any node
    /// after this reaches the members of this node.
    pub(crate) fn room_followed(&self, room: &str) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (done, followed) = oneshot::channel();
        let sent = self.inner.room_changes.send((room.to_string(), Some(done))).is_ok();
        async move {
            if sent {
                let _ = followed.await;
            }
        }
    }
}

impl Inner {
    fn stop_tasks(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        for (_, task) in lock(&self.rooms).drain() {
            task.abort();
        }
        for (_, task) in lock(&self.running).drain() {
            task.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_tasks();
    }
}

impl Adapter for NatsAdapter {
    fn attach(&self, relay: Relay) {
        if self.inner.relay.set(relay).is_err() {
            tracing::error!("a NatsAdapter serves one server: this second one reaches its own players only");
            return;
        }
        let Some(waiting) = lock(&self.inner.waiting).take() else {
            return;
        };
        let weak = Arc::downgrade(&self.inner);
        let spawned = [
            tokio::spawn(tasks::serve(weak.clone(), waiting.own)),
            tokio::spawn(tasks::serve(weak.clone(), waiting.all)),
            tokio::spawn(tasks::listen_presence(weak.clone(), waiting.presence)),
            tokio::spawn(tasks::heartbeat(weak.clone())),
            tokio::spawn(tasks::follow_rooms(weak.clone(), waiting.room_changes)),
            tokio::spawn(tasks::publish(weak, waiting.outbox)),
        ];
        lock(&self.inner.tasks).extend(spawned.iter().map(|t| t.abort_handle()));
    }

    fn player_id_base(&self) -> u64 {
        u64::from(self.inner.node) << 32
    }

    fn is_local(&self, id: PlayerId) -> bool {
        self.is_here(id)
    }

    fn fire(&self, target: &Target, remote: &'static str, payload: &[u8]) -> Result<Relayed, EventError> {
        let inner = &self.inner;
        let (nodes, gone) = self.nodes_of(target);
        let mut relayed = Relayed::default();
        relayed.skipped = gone.into_iter().map(|id| (id, EventError::Disconnected)).collect();
        // Players named: only their nodes. A room or everyone: the broker
        // decides who follows the subject, whatever this node last heard of
        // presence (a node it missed a heartbeat of still gets it).
        let by_ids = matches!(target.group, Group::Ids(_));
        if by_ids && nodes.is_empty() {
            return Ok(relayed);
        }
        if !self.broker_connected() {
            return Err(EventError::Unreachable);
        }
        let except: Vec<u64> = target.except.iter().map(|p| p.0).collect();
        let fire = |to: To| {
            wire::encode(&Message::Fire {
                origin: inner.node,
                to,
                except: except.clone(),
                remote: remote.to_string(),
                payload: payload.to_vec(),
            })
        };
        // One message to a room's or everyone's subject; to each node its
        // own players, when players are named.
        let messages: Vec<(String, bytes::Bytes)> = match &target.group {
            Group::Ids(_) => nodes
                .iter()
                .map(|(node, ids)| {
                    let ids = ids.iter().flatten().map(|p| p.0).collect();
                    (inner.subjects.node(*node), fire(To::Ids(ids)))
                })
                .collect(),
            Group::Rooms(rooms) if rooms.len() == 1 => {
                vec![(inner.subjects.room(&rooms[0]), fire(To::from(&target.group)))]
            }
            _ => vec![(inner.subjects.all(), fire(To::from(&target.group)))],
        };
        // Checked before anything is sent: all or nothing.
        let max = inner.broker.max_payload();
        if let Some(len) = messages.iter().map(|(_, m)| m.len()).find(|len| *len > max) {
            return Err(EventError::TooLarge { len, max });
        }
        let permits = inner.outbox.try_reserve_many(messages.len()).map_err(|_| {
            tracing::warn!("the broker is not keeping up with this node's events: event not sent");
            EventError::Unreachable
        })?;
        for (permit, message) in permits.zip(messages) {
            permit.send(message);
        }
        relayed.nodes = nodes.len();
        Ok(relayed)
    }

    fn invoke(&self, target: &Target, remote: &'static str, payload: &[u8], timeout: Duration) -> RemoteAnswers {
        crate::calls::invoke(self.clone(), target.clone(), remote, payload.to_vec(), timeout)
    }

    fn members(&self, target: &Target) -> BoxFuture<Census> {
        let (adapter, target) = (self.clone(), target.clone());
        Box::pin(async move { adapter.census(&target).await })
    }

    fn join(&self, id: PlayerId, room: &str) -> BoxFuture<Result<bool, PlayerError>> {
        let adapter = self.clone();
        let message = Message::Join {
            player: id.0,
            room: room.to_string(),
        };
        Box::pin(async move { adapter.ask_player_node(id, message).await })
    }

    fn leave(&self, id: PlayerId, room: &str) -> BoxFuture<Result<bool, PlayerError>> {
        let adapter = self.clone();
        let message = Message::Leave {
            player: id.0,
            room: room.to_string(),
        };
        Box::pin(async move { adapter.ask_player_node(id, message).await })
    }

    fn kick(&self, id: PlayerId, reason: &str) -> BoxFuture<Result<(), PlayerError>> {
        let adapter = self.clone();
        let message = Message::Kick {
            player: id.0,
            reason: reason.to_string(),
        };
        Box::pin(async move { adapter.ask_player_node(id, message).await.map(|_| ()) })
    }

    fn find_identity(&self, identity: &str) -> BoxFuture<Result<Option<PlayerId>, PlayerError>> {
        let adapter = self.clone();
        let message = Message::Identity {
            identity: identity.to_string(),
        };
        Box::pin(async move { adapter.find(message).await })
    }

    fn room_changed(&self, room: &str) {
        let _ = self.inner.room_changes.send((room.to_string(), None));
    }

    fn room_ready(&self, room: &str) -> BoxFuture<()> {
        Box::pin(self.room_followed(room))
    }
}

impl NatsAdapter {
    /// Asks every node `target` reaches for its players in it, in parallel.
    async fn census(&self, target: &Target) -> Census {
        let (nodes, _gone) = self.nodes_of(target);
        let mut census = Census::default();
        if !self.broker_connected() {
            census.silent_nodes = nodes.into_keys().collect();
            return census;
        }
        let except: Vec<u64> = target.except.iter().map(|p| p.0).collect();
        let timeout = self.inner.config.query_timeout;
        let asked = nodes.iter().map(|(node, ids)| {
            let to = match ids {
                Some(ids) => To::Ids(ids.iter().map(|p| p.0).collect()),
                None => To::from(&target.group),
            };
            let message = Message::Members {
                to,
                except: except.clone(),
            };
            async move { self.ask(*node, &message, timeout).await }
        });
        let replies = futures_util::future::join_all(asked).await;
        for (node, reply) in nodes.keys().zip(replies) {
            match reply {
                Ok(Reply::Players(players)) => census.players.extend(players.into_iter().map(PlayerId)),
                // Gone since its last heartbeat: nobody there.
                Err(BrokerError::NoResponders) => {}
                _ => census.silent_nodes.push(*node),
            }
        }
        census.players.sort_unstable();
        census
    }

    /// Asks every other node for a player by identity; the first found.
    async fn find(&self, message: Message) -> Result<Option<PlayerId>, PlayerError> {
        if !self.broker_connected() {
            return Err(PlayerError::Unreachable);
        }
        let timeout = self.inner.config.query_timeout;
        let others = self.other_nodes();
        let asked = others.iter().map(|node| self.ask(*node, &message, timeout));
        let mut silent = false;
        for reply in futures_util::future::join_all(asked).await {
            match reply {
                Ok(Reply::Found(Some(id))) => return Ok(Some(PlayerId(id))),
                Ok(_) | Err(BrokerError::NoResponders) => {}
                Err(_) => silent = true,
            }
        }
        if silent {
            Err(PlayerError::Unreachable)
        } else {
            Ok(None)
        }
    }
}

impl From<&Group> for To {
    fn from(group: &Group) -> Self {
        match group {
            Group::Rooms(rooms) => To::Rooms(rooms.clone()),
            Group::Ids(ids) => To::Ids(ids.iter().map(|p| p.0).collect()),
            // `All`, and any group a later volley adds.
            _ => To::All,
        }
    }
}

impl fmt::Debug for NatsAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsAdapter")
            .field("node", &self.inner.node)
            .field("cluster", &self.inner.config.cluster)
            .field("live_nodes", &self.live_nodes())
            .finish()
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random node number that no node of the cluster answers to.
async fn free_node_number(broker: &dyn Broker, subjects: &Subjects) -> Result<u32, ClusterError> {
    for _ in 0..16 {
        let node = random_node_number();
        let ping = wire::encode(&Message::Ping);
        match broker.request(subjects.node(node), ping, Duration::from_secs(1)).await {
            Err(BrokerError::NoResponders) => return Ok(node),
            Err(BrokerError::Unavailable) => return Err(BrokerError::Unavailable.into()),
            // Taken (or the broker is slow to say): try another.
            _ => continue,
        }
    }
    Err(ClusterError::NoFreeNodeNumber)
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
