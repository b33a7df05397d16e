//! A node's background tasks: heartbeats and presence, following rooms,
//! publishing events in order, and serving what other nodes ask of this
//! node's players.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use volley::adapter::{Group, Relay, Target};
use volley::PlayerId;

use crate::adapter::{lock, Inner, NatsAdapter, UNREADABLE};
use crate::broker::{BrokerError, Inbound, Subscription};
use crate::wire::{self, Message, Reply, To, WireResult};

/// A room whose membership on this node changed, and who waits until the
/// node follows it (or stops) accordingly.
pub(crate) type RoomChange = (String, Option<oneshot::Sender<()>>);

/// Announces the node every heartbeat, and sweeps the silent ones out.
pub(crate) async fn heartbeat(inner: Weak<Inner>) {
    let Some(period) = inner.upgrade().map(|i| i.config.heartbeat) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let Some(relay) = inner.relay.get() else { return };
        let beat = Message::Heartbeat {
            node: inner.node,
            protocol: relay.protocol_hash(),
            players: relay.player_count().try_into().unwrap_or(u32::MAX),
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
pub(crate) async fn listen_presence(inner: Weak<Inner>, mut beats: Subscription) {
    while let Some(message) = beats.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let Some(relay) = inner.relay.get() else { return };
        match wire::decode(&message.payload) {
            Ok(Message::Heartbeat {
                node,
                protocol,
                players,
                leaving,
            }) => {
                if protocol != relay.protocol_hash() {
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

/// Publishes the events `fire` queued, in order.
pub(crate) async fn publish(inner: Weak<Inner>, mut outbox: mpsc::Receiver<(String, bytes::Bytes)>) {
    while let Some((subject, message)) = outbox.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.broker.publish(subject, None, message).await {
            tracing::warn!(error = %e, "event to other nodes not sent");
        }
    }
}

pub(crate) fn unreadable(message: &Inbound, reason: &str) {
    UNREADABLE.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(subject = %message.subject, %reason, "unreadable cluster message dropped");
}

/// Subscribes to a room's subject while the node has members there, one
/// change at a time, in order.
pub(crate) async fn follow_rooms(inner: Weak<Inner>, mut changes: mpsc::UnboundedReceiver<RoomChange>) {
    while let Some((room, done)) = changes.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        let Some(relay) = inner.relay.get() else { return };
        let wanted = relay.room_size(&room) > 0;
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
pub(crate) async fn serve(inner: Weak<Inner>, mut messages: Subscription) {
    while let Some(message) = messages.next().await {
        let Some(inner) = inner.upgrade() else { return };
        let Some(relay) = inner.relay.get().cloned() else {
            return;
        };
        let node = NatsAdapter { inner };
        match wire::decode::<Message>(&message.payload) {
            Ok(decoded) => node.handle(&relay, decoded, message.reply),
            Err(reason) => unreadable(&message, &reason),
        }
    }
}

impl NatsAdapter {
    /// Acts on one message from another node.
    fn handle(&self, relay: &Relay, message: Message, reply: Option<String>) {
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
                if let Err(e) = relay.fire(&target(to, except), &remote, &payload) {
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
                let target = Target::new(Group::Ids(vec![PlayerId(player)]), Vec::new());
                let timeout = Duration::from_millis(timeout_ms);
                let mut answers = relay.invoke(&target, &remote, &payload, timeout);
                self.run(origin, call, async move {
                    let result = match answers.next().await {
                        Some((_, result)) => result,
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
                let timeout = Duration::from_millis(timeout_ms);
                let mut answers = relay.invoke(&target(to, except), &remote, &payload, timeout);
                self.run(origin, call, async move {
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
                let joined = relay.join(PlayerId(player), &room).ok();
                let followed = self.room_followed(&room);
                let node = self.clone();
                tokio::spawn(async move {
                    followed.await;
                    if let Some(subject) = reply {
                        node.answer(subject, &Reply::Changed(joined)).await;
                    }
                });
            }
            Message::Leave { player, room } => {
                let left = relay.leave(PlayerId(player), &room).ok();
                self.reply_now(reply, Reply::Changed(left));
            }
            Message::Kick { player, reason } => {
                let kicked = relay.kick(PlayerId(player), &reason).ok().map(|()| true);
                self.reply_now(reply, Reply::Changed(kicked));
            }
            Message::Members { to, except } => {
                let players = relay.members(&target(to, except)).iter().map(|p| p.0).collect();
                self.reply_now(reply, Reply::Players(players));
            }
            Message::Identity { identity } => {
                let found = relay.find_identity(&identity).map(|p| p.0);
                self.reply_now(reply, Reply::Found(found));
            }
            Message::Ping => self.reply_now(reply, Reply::Pong),
        }
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

/// A message's addressees, as volley names them.
fn target(to: To, except: Vec<u64>) -> Target {
    let group = match to {
        To::Ids(ids) => Group::Ids(ids.into_iter().map(PlayerId).collect()),
        To::Rooms(rooms) => Group::Rooms(rooms),
        To::All => Group::All,
    };
    Target::new(group, except.into_iter().map(PlayerId).collect())
}
