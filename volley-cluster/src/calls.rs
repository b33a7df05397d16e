//! A call to players of other nodes: the part of a group call (or of a call
//! to one player by id) that crosses the broker.
//!
//! The call is sent to every node it may reach (each live node for a room or
//! everyone, the players' own nodes for ids), and each node answers with the
//! players it asked (its manifest), then each answer, then that it is done.
//! So the caller knows exactly whom to wait for: a node that never sends its
//! manifest is named silent (for ids, its players are owed from the start
//! and end `Timeout`), a node that dies mid-call has its players answer
//! `Disconnected`, and at the deadline every player still owed an answer is
//! `Timeout`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use volley::adapter::{Group, Remote, RemoteAnswers, Target};
use volley::{FunctionError, PlayerId};

use crate::adapter::NatsAdapter;
use crate::broker::{BrokerError, Subscription};
use crate::subjects::node_of;
use crate::wire::{self, Message, Reply, To};

/// How long after the call's deadline the caller still waits for other
/// nodes' last answers (their own deadline passed; their `Timeout`s are on
/// their way): 500 ms.
pub const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// Starts the call on other nodes when first polled; see the module
/// documentation for what it yields.
pub(crate) fn invoke(
    adapter: NatsAdapter,
    target: Target,
    remote: &'static str,
    payload: Vec<u8>,
    timeout: Duration,
) -> RemoteAnswers {
    // One player of one other node: a plain request, the fastest path.
    if let Group::Ids(ids) = &target.group {
        if let [id] = ids[..] {
            let node = node_of(id);
            if adapter.broker_connected() && adapter.inner.presence.is_live(node) {
                let call = invoke_one(adapter, node, id, remote, payload, timeout);
                return Box::pin(futures_util::stream::once(call));
            }
        }
    }
    let start = async move { start(adapter, target, remote, payload, timeout).await };
    Box::pin(futures_util::stream::once(start).flatten())
}

/// Calls the one player `id` of live node `node`: one request, one reply.
/// Ends `Disconnected` if the node goes meanwhile; dropped before the
/// answer, it cancels the call at the player.
async fn invoke_one(
    adapter: NatsAdapter,
    node: u32,
    id: PlayerId,
    remote: &'static str,
    payload: Vec<u8>,
    timeout: Duration,
) -> Remote {
    let inner = &adapter.inner;
    let call = adapter.next_call();
    let message = wire::encode(&Message::Invoke {
        origin: inner.node,
        call,
        player: id.0,
        remote: remote.to_string(),
        payload,
        timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
    });
    if !fits_broker(&adapter, node, &message) {
        return Remote::Answer(id, Err(FunctionError::TooLarge));
    }
    let mut cancel = CancelOnDrop {
        adapter: adapter.clone(),
        to: node,
        call,
        armed: true,
    };
    let subject = inner.subjects.node(node);
    let asked = inner.broker.request(subject, message, timeout + ANSWER_GRACE);
    let reply = tokio::select! {
        reply = asked => reply,
        () = inner.presence.gone(node) => Err(BrokerError::NoResponders),
    };
    cancel.armed = false;
    let result = match reply {
        Ok(bytes) => match wire::decode::<Reply>(&bytes) {
            Ok(Reply::Answer(result)) => result.into_result().map(Bytes::from),
            _ => {
                tracing::warn!(node, "unreadable answer from another node");
                Err(FunctionError::InvalidResult)
            }
        },
        Err(BrokerError::TimedOut) => Err(FunctionError::Timeout),
        Err(BrokerError::TooLarge { .. }) => Err(FunctionError::TooLarge),
        Err(BrokerError::Unavailable) => Err(FunctionError::Unreachable),
        Err(e) => {
            tracing::debug!(node, error = %e, "call to another node ended");
            Err(FunctionError::Disconnected)
        }
    };
    Remote::Answer(id, result)
}

/// Whether a call's message for `node` is within the broker's limit; if not,
/// it is not sent, and a warning says so.
fn fits_broker(adapter: &NatsAdapter, node: u32, message: &Bytes) -> bool {
    let max = adapter.inner.broker.max_payload();
    if message.len() > max {
        tracing::warn!(
            len = message.len(),
            max,
            node,
            "request too large for the broker: not sent"
        );
        return false;
    }
    true
}

async fn start(
    adapter: NatsAdapter,
    target: Target,
    remote: &'static str,
    payload: Vec<u8>,
    timeout: Duration,
) -> NodeAnswers {
    let (nodes, gone) = adapter.nodes_of(&target);
    let mut answers = NodeAnswers::new(adapter.clone(), timeout);
    answers.fail(gone, FunctionError::Disconnected);
    if nodes.is_empty() {
        return answers;
    }
    let unreachable = |answers: &mut NodeAnswers, error: FunctionError| {
        for (node, ids) in &nodes {
            answers.not_asked(*node, ids, error.clone());
        }
    };
    if !adapter.broker_connected() {
        unreachable(&mut answers, FunctionError::Unreachable);
        return answers;
    }
    let inner = &adapter.inner;
    let broker = &inner.broker;
    let inbox = broker.new_inbox();
    let replies = match broker.subscribe(format!("{inbox}.*")).await {
        Ok(replies) => replies,
        Err(e) => {
            tracing::warn!(error = %e, "group call to other nodes not sent");
            unreachable(&mut answers, FunctionError::Unreachable);
            return answers;
        }
    };
    let call = adapter.next_call();
    let timeout_ms = timeout.as_millis().try_into().unwrap_or(u64::MAX);
    let except: Vec<u64> = target.except.iter().map(|p| p.0).collect();
    for (node, ids) in &nodes {
        let to = match ids {
            Some(ids) => To::Ids(ids.iter().map(|p| p.0).collect()),
            None => To::from(&target.group),
        };
        let message = wire::encode(&Message::InvokeGroup {
            origin: inner.node,
            call,
            to,
            except: except.clone(),
            remote: remote.to_string(),
            payload: payload.clone(),
            timeout_ms,
        });
        if !fits_broker(&adapter, *node, &message) {
            answers.not_asked(*node, ids, FunctionError::TooLarge);
            continue;
        }
        let sent = broker
            .publish(inner.subjects.node(*node), Some(format!("{inbox}.{node}")), message)
            .await;
        match sent {
            Ok(()) => {
                let owed = ids.as_ref().map(|ids| ids.iter().map(|p| p.0).collect());
                answers.nodes.insert(*node, NodeCall { owed, done: false });
                answers.cancels.push(CancelOnDrop {
                    adapter: adapter.clone(),
                    to: *node,
                    call,
                    armed: true,
                });
            }
            Err(e) => {
                tracing::warn!(node, error = %e, "group call to a node not sent");
                answers.not_asked(*node, ids, FunctionError::Unreachable);
            }
        }
    }
    answers.replies = Some(replies);
    answers
}

/// One other node's part of a call.
#[derive(Debug)]
struct NodeCall {
    /// The players still owed an answer: known from the start for ids, from
    /// its manifest otherwise.
    owed: Option<BTreeSet<u64>>,
    done: bool,
}

type Change = Pin<Box<dyn Future<Output = Option<watch::Receiver<u64>>> + Send>>;

async fn next_change(mut changes: watch::Receiver<u64>) -> Option<watch::Receiver<u64>> {
    changes.changed().await.ok()?;
    Some(changes)
}

/// The other nodes' answers, as they come.
struct NodeAnswers {
    adapter: NatsAdapter,
    replies: Option<Subscription>,
    nodes: BTreeMap<u32, NodeCall>,
    ready: VecDeque<Remote>,
    deadline: Pin<Box<Sleep>>,
    presence: Change,
    /// Armed while nodes still work on the call; dropped with the answers.
    cancels: Vec<CancelOnDrop>,
}

impl NodeAnswers {
    fn new(adapter: NatsAdapter, timeout: Duration) -> Self {
        let changes = adapter.inner.presence.watch();
        Self {
            adapter,
            replies: None,
            nodes: BTreeMap::new(),
            ready: VecDeque::new(),
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout + ANSWER_GRACE)),
            presence: Box::pin(next_change(changes)),
            cancels: Vec::new(),
        }
    }

    /// A node the call could not be sent to, and why: the players named on
    /// it get `error`; a room's or everyone's players there are unknown, so
    /// the node is named silent.
    fn not_asked(&mut self, node: u32, ids: &Option<Vec<PlayerId>>, error: FunctionError) {
        match ids {
            Some(ids) => self.fail(ids.clone(), error),
            None => self.ready.push_back(Remote::Silent(node)),
        }
    }

    fn fail(&mut self, ids: Vec<PlayerId>, error: FunctionError) {
        self.ready
            .extend(ids.into_iter().map(|id| Remote::Answer(id, Err(error.clone()))));
    }

    /// One message from another node.
    fn take_reply(&mut self, from: Option<u32>, reply: Reply) {
        let Some(call) = from.and_then(|n| self.nodes.get_mut(&n)) else {
            return;
        };
        match reply {
            // For ids, the players asked are known already.
            Reply::Manifest { players, .. } if call.owed.is_none() => {
                call.owed = Some(players.into_iter().collect());
            }
            // The broker keeps one publisher's order: the manifest is in.
            Reply::Answered { player, result } if call.owed.as_mut().is_some_and(|owed| owed.remove(&player)) => {
                let result = result.into_result().map(Bytes::from);
                self.ready.push_back(Remote::Answer(PlayerId(player), result));
            }
            Reply::Done { .. } => {
                call.done = true;
                // A player it did not answer for (not in its manifest, for ids).
                if let Some(owed) = call.owed.take() {
                    let missing = owed.into_iter().map(PlayerId).collect();
                    self.fail(missing, FunctionError::Disconnected);
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
                Some(owed) => self.ready.extend(
                    owed.into_iter()
                        .map(|p| Remote::Answer(PlayerId(p), Err(error.clone()))),
                ),
                None => self.ready.push_back(Remote::Silent(*node)),
            }
        }
    }

    fn finished(&self) -> bool {
        self.nodes.values().all(|c| c.done)
    }
}

// Nothing in it is pinned in place: every future is boxed.
impl Unpin for NodeAnswers {}

impl Stream for NodeAnswers {
    type Item = Remote;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(answer) = this.ready.pop_front() {
                return Poll::Ready(Some(answer));
            }
            if this.finished() {
                this.replies = None;
                this.cancels.iter_mut().for_each(|c| c.armed = false);
                return Poll::Ready(None);
            }
            if let Some(replies) = &mut this.replies {
                if let Poll::Ready(Some(message)) = replies.poll_next_unpin(cx) {
                    let from: Option<u32> = message.subject.rsplit('.').next().and_then(|n| n.parse().ok());
                    if message.no_responders {
                        // The node is not there (it stopped since its last
                        // heartbeat): gone now.
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
                let presence = &this.adapter.inner.presence;
                let gone: Vec<u32> = this.nodes.keys().copied().filter(|n| presence.is_gone(*n)).collect();
                this.end_nodes(|n| gone.contains(&n), FunctionError::Disconnected);
                this.presence = match changes {
                    Some(changes) => Box::pin(next_change(changes)),
                    None => Box::pin(std::future::pending()),
                };
                continue;
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                this.end_nodes(|_| true, FunctionError::Timeout);
                continue;
            }
            return Poll::Pending;
        }
    }
}

/// Sends `Cancel` for a call to another node when its answers are dropped
/// before they are all in.
struct CancelOnDrop {
    adapter: NatsAdapter,
    to: u32,
    call: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (adapter, to, call) = (self.adapter.clone(), self.to, self.call);
        // Dropped outside a runtime: the call times out at the other node.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let inner = &adapter.inner;
                let cancel = wire::encode(&Message::Cancel {
                    origin: inner.node,
                    call,
                });
                let _ = inner.broker.publish(inner.subjects.node(to), None, cancel).await;
            });
        }
    }
}
