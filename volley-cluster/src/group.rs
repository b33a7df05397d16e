//! Many players across the cluster at once: fire at a room (or everyone) on
//! every node, call them all and collect every answer, count and list them.
//!
//! A call to a group is sent to every node alive when it starts, by name,
//! and each node answers with the players it asked (its manifest), then
//! each answer, then that it is done. So the caller knows exactly whom to
//! wait for: a node that never sends its manifest is named silent, a node
//! that dies mid-call has its players answer `Disconnected`, and at the
//! deadline every player still owed an answer is `Timeout`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use volley::remote::Payload;
use volley::{Answers, Broadcast, ClientEvent, ClientFn, FunctionError, PlayerId};

use crate::broker::Subscription;
use crate::error::ClusterError;
use crate::node::ClusterNode;
use crate::player::CancelOnDrop;
use crate::wire::{self, Message, Reply, To};

/// How long after the call's deadline the caller still waits for other
/// nodes' last answers (their own deadline passed; their `Timeout`s are on
/// their way): 500 ms.
pub const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// Players of the whole cluster, to fire at or call: from
/// [`ClusterNode::to_room`], [`to_rooms`](ClusterNode::to_rooms) or
/// [`to_all`](ClusterNode::to_all).
#[derive(Clone)]
pub struct ClusterGroup {
    node: ClusterNode,
    to: To,
    except: Vec<u64>,
}

/// What firing at a group did: the players of this node it was queued for
/// (and who was skipped, why), and how many other nodes it went to through
/// the broker (each delivers to its own members).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterBroadcast {
    /// This node's part.
    pub local: Broadcast,
    /// Other nodes alive when it was fired.
    pub other_nodes: usize,
}

/// Players found across the cluster, and the nodes that did not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Census {
    /// The players, by id.
    pub players: Vec<PlayerId>,
    /// Live nodes that did not answer in time: their players are missing.
    pub silent_nodes: Vec<u32>,
}

impl ClusterNode {
    /// The members of `room` on every node.
    pub fn to_room(&self, room: &str) -> ClusterGroup {
        self.group(To::Rooms(vec![room.to_string()]))
    }

    /// The members of any of `rooms` on every node, each once.
    pub fn to_rooms<R: AsRef<str>>(&self, rooms: impl IntoIterator<Item = R>) -> ClusterGroup {
        self.group(To::Rooms(rooms.into_iter().map(|r| r.as_ref().to_string()).collect()))
    }

    /// Every player of the cluster.
    pub fn to_all(&self) -> ClusterGroup {
        self.group(To::All)
    }

    fn group(&self, to: To) -> ClusterGroup {
        ClusterGroup {
            node: self.clone(),
            to,
            except: Vec::new(),
        }
    }

    /// The members of `room` on every node.
    pub async fn room_members(&self, room: &str) -> Result<Census, ClusterError> {
        self.census(Some(room.to_string())).await
    }

    /// Every player connected to the cluster.
    pub async fn players(&self) -> Result<Census, ClusterError> {
        self.census(None).await
    }

    /// Asks every live node for its players (in `room`), in parallel.
    async fn census(&self, room: Option<String>) -> Result<Census, ClusterError> {
        self.require_broker()?;
        let local = match &room {
            Some(room) => self.server().room_members(room),
            None => self.server().players(),
        };
        let mut census = Census {
            players: local.iter().map(|p| p.id()).collect(),
            silent_nodes: Vec::new(),
        };
        let others: Vec<u32> = self.live_nodes().into_iter().filter(|n| *n != self.node_id()).collect();
        let message = Message::Members { room };
        let timeout = self.inner.config.query_timeout;
        let asked = others.iter().map(|n| self.ask(*n, &message, timeout));
        for (node, reply) in others.iter().zip(futures_util::future::join_all(asked).await) {
            match reply {
                Ok(Reply::Players(players)) => census.players.extend(players.into_iter().map(PlayerId)),
                _ => census.silent_nodes.push(*node),
            }
        }
        census.players.sort_unstable();
        Ok(census)
    }
}

impl ClusterGroup {
    /// Leaves `player` out (the sender of a chat line, say).
    pub fn except(mut self, player: PlayerId) -> Self {
        self.except.push(player.0);
        self
    }

    /// Fires `remote` at every player of the group, on every node. Encoded
    /// once; this node delivers to its own members, the others get it
    /// through the broker (a room's subject reaches only the nodes with
    /// members in it). Fails at once, delivering nothing, while the broker
    /// is unreachable, or with [`ClusterError::TooLarge`] if the message is
    /// over the broker's limit.
    pub async fn fire<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<ClusterBroadcast, ClusterError> {
        let node = &self.node;
        node.require_broker()?;
        let payload = node
            .server()
            .encode_event(remote, &value)
            .map_err(|e| ClusterError::Encode(e.to_string()))?;
        let subject = match &self.to {
            To::Rooms(rooms) if rooms.len() == 1 => node.inner.subjects.room(&rooms[0]),
            _ => node.inner.subjects.all(),
        };
        let message = wire::encode(&Message::Fire {
            origin: node.node_id(),
            to: self.to.clone(),
            except: self.except.clone(),
            remote: remote.name().to_string(),
            payload: payload.clone(),
        });
        // Checked before this node's members get it: all or nothing.
        node.fits_broker(message.len())?;
        let local = node
            .local(&self.to, &self.except)
            .fire_encoded(remote.name(), &payload)
            .map_err(|e| ClusterError::Encode(e.to_string()))?;
        node.publish_encoded(subject, message).await?;
        let other_nodes = node.live_nodes().iter().filter(|n| **n != node.node_id()).count();
        Ok(ClusterBroadcast { local, other_nodes })
    }

    /// Calls `remote` on every player of the group, on every node, with the
    /// remote's timeout (or the server's default); see [`ClusterAnswers`].
    pub async fn invoke<Req: Payload, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> Result<ClusterAnswers<Resp>, ClusterError> {
        let timeout = self.node.timeout_of(&remote);
        self.invoke_with_timeout(remote, req, timeout).await
    }

    /// Calls `remote` on every player of the group, on every node alive now,
    /// with this deadline; see [`ClusterAnswers`]. The request is encoded
    /// once. Fails at once while the broker is unreachable.
    pub async fn invoke_with_timeout<Req: Payload, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> Result<ClusterAnswers<Resp>, ClusterError> {
        let node = &self.node;
        node.require_broker()?;
        let server = node.server().clone();
        let payload = server
            .encode_request(remote, &req)
            .map_err(|e| ClusterError::Encode(e.to_string()))?;
        let broker = &node.inner.broker;
        let inbox = broker.new_inbox();
        let replies = broker
            .subscribe(format!("{inbox}.*"))
            .await
            .map_err(|e| ClusterError::Broker(e.to_string()))?;
        let call = node.next_call();
        let message = Message::InvokeGroup {
            origin: node.node_id(),
            call,
            to: self.to.clone(),
            except: self.except.clone(),
            remote: remote.name().to_string(),
            payload: payload.clone(),
            timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
        };
        let bytes = wire::encode(&message);
        node.fits_broker(bytes.len())?;
        let mut nodes = BTreeMap::new();
        let mut cancels = Vec::new();
        for other in node.live_nodes().into_iter().filter(|n| *n != node.node_id()) {
            let sent = broker
                .publish(
                    node.inner.subjects.node(other),
                    Some(format!("{inbox}.{other}")),
                    bytes.clone(),
                )
                .await;
            if sent.is_ok() {
                nodes.insert(other, NodeCall::default());
                cancels.push(CancelOnDrop {
                    node: node.clone(),
                    to: other,
                    call,
                    armed: true,
                });
            }
        }
        let local = Some(
            node.local(&self.to, &self.except)
                .invoke_encoded(remote.name(), &payload, timeout),
        );
        let decode = move |bytes: &[u8]| server.decode_response(remote, bytes);
        let changes = node.inner.presence.watch();
        Ok(ClusterAnswers {
            node: node.clone(),
            decode: Box::new(decode),
            local,
            replies: Some(replies),
            nodes,
            ready: VecDeque::new(),
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout + ANSWER_GRACE)),
            presence: Box::pin(next_change(changes)),
            silent: Vec::new(),
            _cancels: cancels,
        })
    }
}

/// One other node's part of a group call.
#[derive(Debug, Default)]
struct NodeCall {
    /// The players it asked, once its manifest is in, less those answered.
    owed: Option<BTreeSet<u64>>,
    /// Answers that came before the manifest (the broker keeps one
    /// publisher's order, so this stays empty; kept to be safe).
    early: BTreeSet<u64>,
    done: bool,
}

type Decode<Resp> = Box<dyn Fn(&[u8]) -> Result<Resp, FunctionError> + Send + Sync>;
type Change = Pin<Box<dyn Future<Output = Option<watch::Receiver<u64>>> + Send>>;

async fn next_change(mut changes: watch::Receiver<u64>) -> Option<watch::Receiver<u64>> {
    changes.changed().await.ok()?;
    Some(changes)
}

/// The answers to a call made to a group across the cluster: a [`Stream`]
/// of `(PlayerId, Result<Resp, FunctionError>)`, each as it arrives, from
/// every node. Every player asked appears once: late ones with `Timeout`
/// (at the deadline plus [`ANSWER_GRACE`]), those of a node that dies
/// mid-call with `Disconnected` (within the cluster's `dead_after`). A node
/// alive when the call started that never said whom it asked is named in
/// [`silent_nodes`](Self::silent_nodes). Dropping the answers cancels the
/// call on every node, at each player.
#[must_use = "the calls are cancelled when the answers are dropped"]
pub struct ClusterAnswers<Resp> {
    node: ClusterNode,
    decode: Decode<Resp>,
    local: Option<Answers<Bytes>>,
    replies: Option<Subscription>,
    nodes: BTreeMap<u32, NodeCall>,
    ready: VecDeque<(PlayerId, Result<Resp, FunctionError>)>,
    deadline: Pin<Box<Sleep>>,
    presence: Change,
    silent: Vec<u32>,
    /// Armed while nodes still work on the call; dropped with the answers.
    _cancels: Vec<CancelOnDrop>,
}

impl<Resp> ClusterAnswers<Resp> {
    /// Nodes that never said whom they asked (so far, or by the deadline).
    pub fn silent_nodes(&self) -> &[u32] {
        &self.silent
    }

    /// The next answer; `None` once every player asked has one.
    pub async fn next(&mut self) -> Option<(PlayerId, Result<Resp, FunctionError>)> {
        StreamExt::next(self).await
    }

    /// Every answer, in the order they arrived.
    pub async fn all(mut self) -> Vec<(PlayerId, Result<Resp, FunctionError>)> {
        let mut all = Vec::new();
        while let Some(answer) = self.next().await {
            all.push(answer);
        }
        all
    }

    fn decoded(&self, result: Result<Vec<u8>, FunctionError>) -> Result<Resp, FunctionError> {
        (self.decode)(&result?)
    }

    /// One message from another node.
    fn take_reply(&mut self, from: Option<u32>, reply: Reply) {
        match reply {
            Reply::Manifest { node, players } => {
                if let Some(call) = self.nodes.get_mut(&node) {
                    let owed = players.into_iter().filter(|p| !call.early.contains(p)).collect();
                    call.owed = Some(owed);
                }
            }
            Reply::Answered { player, result } => {
                let Some(call) = from.and_then(|n| self.nodes.get_mut(&n)) else {
                    return;
                };
                match &mut call.owed {
                    Some(owed) => {
                        if !owed.remove(&player) {
                            return;
                        }
                    }
                    None => {
                        call.early.insert(player);
                    }
                }
                let result = self.decoded(result.into_result());
                self.ready.push_back((PlayerId(player), result));
            }
            Reply::Done { node } => {
                if let Some(call) = self.nodes.get_mut(&node) {
                    call.done = true;
                }
            }
            _ => {}
        }
    }

    /// Ends every node still owing answers: its players get `error`, and a
    /// node that never sent its manifest is named silent.
    fn end_nodes(&mut self, which: impl Fn(u32) -> bool, error: FunctionError) {
        for (node, call) in self.nodes.iter_mut().filter(|(n, c)| !c.done && which(**n)) {
            call.done = true;
            match call.owed.take() {
                Some(owed) => self
                    .ready
                    .extend(owed.into_iter().map(|p| (PlayerId(p), Err(error.clone())))),
                None => self.silent.push(*node),
            }
        }
    }

    fn finished(&self) -> bool {
        self.local.is_none() && self.nodes.values().all(|c| c.done)
    }
}

// Nothing in it is pinned in place: every future is boxed.
impl<Resp> Unpin for ClusterAnswers<Resp> {}

impl<Resp> Stream for ClusterAnswers<Resp> {
    type Item = (PlayerId, Result<Resp, FunctionError>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(answer) = this.ready.pop_front() {
                return Poll::Ready(Some(answer));
            }
            if this.finished() {
                this.replies = None;
                this._cancels.iter_mut().for_each(|c| c.armed = false);
                return Poll::Ready(None);
            }
            if let Some(local) = &mut this.local {
                match local.poll_next_unpin(cx) {
                    Poll::Ready(Some((player, result))) => {
                        let result = result.and_then(|bytes| (this.decode)(&bytes));
                        return Poll::Ready(Some((player, result)));
                    }
                    Poll::Ready(None) => {
                        this.local = None;
                        continue;
                    }
                    Poll::Pending => {}
                }
            }
            if let Some(replies) = &mut this.replies {
                if let Poll::Ready(Some(message)) = replies.poll_next_unpin(cx) {
                    let from: Option<u32> = message.subject.rsplit('.').next().and_then(|n| n.parse().ok());
                    if message.no_responders {
                        // The node is not there (it stopped since its last
                        // heartbeat): gone now, as for a single call.
                        this.end_nodes(|n| Some(n) == from, FunctionError::Disconnected);
                        continue;
                    }
                    match wire::decode::<Reply>(&message.payload) {
                        Ok(reply) => this.take_reply(from, reply),
                        Err(reason) => tracing::warn!(%reason, "unreadable answer from another node"),
                    }
                    continue;
                }
            }
            if let Poll::Ready(changes) = this.presence.as_mut().poll(cx) {
                let node = this.node.clone();
                this.end_nodes(|n| node.inner.presence.is_gone(n), FunctionError::Disconnected);
                this.presence = match changes {
                    Some(changes) => Box::pin(next_change(changes)),
                    None => Box::pin(std::future::pending()),
                };
                continue;
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                this.end_nodes(|_| true, FunctionError::Timeout);
                // This node's own answers end at the same deadline.
                if this.ready.is_empty() && this.local.is_some() {
                    return Poll::Pending;
                }
                continue;
            }
            return Poll::Pending;
        }
    }
}

impl<Resp> fmt::Debug for ClusterAnswers<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterAnswers")
            .field("local", &self.local)
            .field("nodes", &self.nodes.keys().collect::<Vec<_>>())
            .field("silent", &self.silent)
            .finish()
    }
}

impl fmt::Debug for ClusterGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterGroup")
            .field("to", &self.to)
            .field("except", &self.except)
            .finish()
    }
}
