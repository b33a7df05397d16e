//! Reaching one player wherever it is connected: fire, invoke, rooms, kick.
//! A player on this node is served directly; one on another node through
//! that node's subject, which the broker answers "no responders" for at
//! once if the node is gone.

use std::time::Duration;

use volley::remote::Payload;
use volley::{ClientEvent, ClientFn, EventError, FunctionError, PlayerId};

use crate::error::ClusterError;
use crate::node::ClusterNode;
use crate::subjects::node_of;
use crate::wire::{self, Message, Reply, To};

/// How long a node waits for another node's answer beyond the call's own
/// timeout: the answer has to cross the broker.
const ANSWER_MARGIN: Duration = Duration::from_secs(1);

impl ClusterNode {
    /// Fires `remote` at `player`, on whichever node it is connected to.
    /// The event is encoded here once and handed to the player's connection
    /// as it is. For a player on another node this returns once the broker
    /// has the event: delivery is then as reliable as the broker.
    pub async fn fire<T: Payload>(
        &self,
        player: PlayerId,
        remote: ClientEvent<T>,
        value: T,
    ) -> Result<(), ClusterError> {
        let server = self.server();
        if self.is_local(player) {
            let found = server.player(player).ok_or(ClusterError::NotConnected)?;
            return found.fire(remote, value).map_err(event_error);
        }
        let node = node_of(player);
        if !self.inner.presence.is_live(node) {
            return Err(ClusterError::NotConnected);
        }
        let payload = server.encode_event(remote, &value).map_err(event_error)?;
        let message = Message::Fire {
            origin: self.node_id(),
            to: To::Player(player.0),
            except: Vec::new(),
            remote: remote.name().to_string(),
            payload,
        };
        self.publish(self.inner.subjects.node(node), &message).await
    }

    /// Calls `remote` on `player`'s client, on whichever node it is
    /// connected to, with the remote's timeout (or the server's default).
    /// The result and its errors are those of a local
    /// [`Server::invoke`](volley::Server::invoke): a player connected
    /// nowhere is `Disconnected` at once; one whose node dies mid-call is
    /// `Disconnected` within [`ClusterConfig::dead_after`](crate::ClusterConfig::dead_after);
    /// dropping the future cancels the call at the player. While the broker
    /// is unreachable, a call to another node fails at once `Disconnected`
    /// (and [`broker_connected`](Self::broker_connected) says why).
    pub async fn invoke<Req: Payload, Resp: Payload>(
        &self,
        player: PlayerId,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> Result<Resp, FunctionError> {
        let server = self.server();
        let timeout = self.timeout_of(&remote);
        if self.is_local(player) {
            let found = server.player(player).ok_or(FunctionError::Disconnected)?;
            return server.invoke_with_timeout(&found, remote, req, timeout).await;
        }
        let node = node_of(player);
        if !self.broker_connected() {
            tracing::warn!(node, "broker unreachable: call to another node fails at once");
            return Err(FunctionError::Disconnected);
        }
        let payload = server.encode_request(remote, &req)?;
        let call = self.next_call();
        let message = Message::Invoke {
            origin: self.node_id(),
            call,
            player: player.0,
            remote: remote.name().to_string(),
            payload,
            timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
        };
        // Tells the other node to stop if this future is dropped first.
        let mut cancel = CancelOnDrop {
            node: self.clone(),
            to: node,
            call,
            armed: true,
        };
        let subject = self.inner.subjects.node(node);
        let asked = self
            .inner
            .broker
            .request(subject, wire::encode(&message), timeout + ANSWER_MARGIN);
        let reply = tokio::select! {
            reply = asked => reply,
            () = self.inner.presence.gone(node) => {
                cancel.armed = false;
                return Err(FunctionError::Disconnected);
            }
        };
        cancel.armed = false;
        let bytes = match reply {
            Ok(bytes) => bytes,
            Err(crate::broker::BrokerError::TimedOut) => return Err(FunctionError::Timeout),
            Err(crate::broker::BrokerError::TooLarge { len, max }) => {
                tracing::warn!(node, len, max, "request too large for the broker");
                return Err(FunctionError::TooLarge);
            }
            Err(e) => {
                tracing::debug!(node, error = %e, "call to another node failed");
                return Err(FunctionError::Disconnected);
            }
        };
        match wire::decode::<Reply>(&bytes) {
            Ok(Reply::Answer(result)) => server.decode_response(remote, &result.into_result()?),
            Ok(_) | Err(_) => {
                tracing::warn!(node, "unreadable answer from another node");
                Err(FunctionError::InvalidResult)
            }
        }
    }

    /// Puts `player` in `room`, on whichever node it is connected to;
    /// whether it joined now (see [`Server::join`](volley::Server::join)).
    ///
    /// Returns once the broker knows that the player's node follows the
    /// room: a fire at the room from any node after this reaches the player.
    pub async fn join(&self, player: PlayerId, room: &str) -> Result<bool, ClusterError> {
        if self.is_local(player) {
            let joined = self.server().join(player, room);
            self.room_followed(room).await;
            return Ok(joined);
        }
        let message = Message::Join {
            player: player.0,
            room: room.to_string(),
        };
        self.ask_player_node(player, &message).await
    }

    /// Takes `player` out of `room`, on whichever node it is connected to.
    pub async fn leave(&self, player: PlayerId, room: &str) -> Result<bool, ClusterError> {
        if self.is_local(player) {
            return Ok(self.server().leave(player, room));
        }
        let message = Message::Leave {
            player: player.0,
            room: room.to_string(),
        };
        self.ask_player_node(player, &message).await
    }

    /// Disconnects `player` with `reason`, on whichever node it is
    /// connected to; whether it was connected.
    pub async fn kick(&self, player: PlayerId, reason: &str) -> Result<bool, ClusterError> {
        if self.is_local(player) {
            return Ok(self.server().player(player).map(|p| p.kick(reason)).is_some());
        }
        let message = Message::Kick {
            player: player.0,
            reason: reason.to_string(),
        };
        self.ask_player_node(player, &message).await
    }

    async fn ask_player_node(&self, player: PlayerId, message: &Message) -> Result<bool, ClusterError> {
        match self
            .ask(node_of(player), message, self.inner.config.query_timeout)
            .await
        {
            Ok(Reply::Bool(done)) => Ok(done),
            Ok(_) => Err(ClusterError::Broker("unexpected answer".into())),
            Err(ClusterError::NotConnected) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn timeout_of<Req, Resp>(&self, remote: &ClientFn<Req, Resp>) -> Duration {
        remote.timeout().unwrap_or(self.server().config().default_timeout)
    }
}

/// An error firing at a player on this node, in the cluster's terms.
fn event_error(error: EventError) -> ClusterError {
    match error {
        EventError::Disconnected => ClusterError::NotConnected,
        EventError::Encode(e) => ClusterError::Encode(e),
        other => ClusterError::Event(other),
    }
}

/// Sends `Cancel` for a call to another node when its future is dropped
/// before the answer.
pub(crate) struct CancelOnDrop {
    pub(crate) node: ClusterNode,
    pub(crate) to: u32,
    pub(crate) call: u64,
    pub(crate) armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (node, to, call) = (self.node.clone(), self.to, self.call);
        // Dropped outside a runtime: the call times out at the other node.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let cancel = Message::Cancel {
                    origin: node.node_id(),
                    call,
                };
                let _ = node.publish(node.inner.subjects.node(to), &cancel).await;
            });
        }
    }
}
