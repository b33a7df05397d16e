//! The client's end of a connection, as its driver sees it: the handshake's
//! outcome, and what to do when the connection ends.

use super::*;

/// The client's end of one connection.
pub(super) struct ClientSide {
    client: Arc<ClientInner>,
    conn: Arc<Conn>,
    /// Until the handshake ends: how `connect` learns the outcome.
    handshake: Option<oneshot::Sender<Result<(), CloseReason>>>,
}

impl ClientSide {
    /// The side of a connection being made; `handshake` hears how the
    /// handshake ends.
    pub(super) fn new(
        client: Arc<ClientInner>,
        conn: Arc<Conn>,
        handshake: oneshot::Sender<Result<(), CloseReason>>,
    ) -> Self {
        Self {
            client,
            conn,
            handshake: Some(handshake),
        }
    }
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
        self.client.set_status(ClientStatus::Connected);
        if let Some(done) = self.handshake.take() {
            let _ = done.send(Ok(()));
        }
    }

    fn away(&mut self) {
        self.client.resume_news.notify_waiters();
        let Some(policy) = self.client.config.reconnect else {
            return;
        };
        self.client.set_status(ClientStatus::Reconnecting);
        if self.client.resuming.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return; // the loop already running goes on
        }
        tracing::info!("connection lost: resuming");
        let client = Client {
            inner: self.client.clone(),
            _handle: None,
        };
        tokio::spawn(super::resume::resume(client, self.conn.clone(), policy));
    }

    fn resumed(&mut self) {
        self.client.set_status(ClientStatus::Connected);
        self.client.resume_news.notify_waiters();
        tracing::info!("resumed: the same player, nothing lost");
        let hooks = read(&self.client.resumed_hooks).clone();
        for hook in hooks {
            catch_user("on_resumed hook", None, || hook());
        }
    }

    fn closed(&mut self, reason: CloseReason) {
        self.client.resume_news.notify_waiters();
        {
            let mut slot = lock(&self.client.conn);
            if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.conn)) {
                *slot = None;
            }
        }
        *lock(&self.client.last_close) = Some(reason.clone());
        self.client.closes.send_modify(|closes| *closes += 1);
        if let Some(done) = self.handshake.take() {
            // The connect call (or the redial loop) sets the status.
            let _ = done.send(Err(reason));
            return;
        }
        tracing::info!(%reason, "disconnected from server");
        let hooks = read(&self.client.disconnect_hooks).clone();
        for hook in hooks {
            catch_user("on_disconnect hook", None, || hook(&reason));
        }
        // Not resumed (refused, or the grace period passed): the same
        // redial, as a new player.
        let lost = matches!(
            reason,
            CloseReason::TransportClosed
                | CloseReason::TransportError(_)
                | CloseReason::IdleTimeout
                | CloseReason::NotResumed(_)
                | CloseReason::Refused {
                    code: volley_proto::RefuseCode::ResumeRefused,
                    ..
                }
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
            self.client.set_status(ClientStatus::Reconnecting);
            tokio::spawn(reconnect(client, policy, redial));
        } else {
            self.client.set_status(ClientStatus::Disconnected);
        }
    }
}
