//! Reaching one player, or a list: calls to a client, events to it, and
//! running the server's own handlers locally (`predict`).

use super::*;

impl Server {
    /// Calls `remote` on `player`'s client with the remote's timeout (or the
    /// configured default, 10 s): [`invoke_with_timeout`](Self::invoke_with_timeout)
    /// with that timeout.
    pub fn invoke<'a, Req: Payload, Resp: Payload>(
        &'a self,
        player: &'a Player,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + 'a {
        player.invoke(remote, req)
    }

    /// Calls `remote` on `player`'s client with this timeout. Dropping the
    /// future cancels the call at the client too.
    pub fn invoke_with_timeout<'a, Req: Payload, Resp: Payload>(
        &'a self,
        player: &'a Player,
        remote: ClientFn<Req, Resp>,
        req: Req,
        timeout: Duration,
    ) -> impl Future<Output = Result<Resp, FunctionError>> + Send + 'a {
        player.invoke_with_timeout(remote, req, timeout)
    }

    /// Calls `remote` on the player `id` wherever it is connected (on a
    /// cluster, on any node), with the remote's timeout: the one answer of
    /// `to_ids([id]).invoke(..)`. A player connected nowhere is
    /// [`FunctionError::Disconnected`] at once; dropping the future cancels
    /// the call at the player. (With the [`Player`] at hand,
    /// [`invoke`](Self::invoke) skips the lookup.)
    pub async fn invoke_id<Req: Payload, Resp: Payload>(
        &self,
        id: PlayerId,
        remote: ClientFn<Req, Resp>,
        req: Req,
    ) -> Result<Resp, FunctionError> {
        let mut answers = self.to_ids([id]).invoke(remote, req);
        match answers.next().await {
            Some((_, result)) => result,
            None => Err(FunctionError::Disconnected),
        }
    }

    /// Fires `remote` at the player `id` wherever it is connected (on a
    /// cluster, on any node): `to_ids([id]).fire(..)`, its one skip as the
    /// error. For a player of another node it returns once the event is
    /// queued for the broker; a node found gone is
    /// [`EventError::Disconnected`].
    pub fn fire_id<T: Payload>(&self, id: PlayerId, remote: ClientEvent<T>, value: T) -> Result<(), EventError> {
        let sent = self.to_ids([id]).fire(remote, value)?;
        match sent.skipped.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// Runs this server's own handler of `remote` as if `player` had called
    /// it: the same decoding, validation and errors, without the network.
    pub async fn predict<Req: Payload, Resp: Payload>(
        &self,
        player: &Player,
        remote: ServerFn<Req, Resp>,
        req: Req,
    ) -> Result<Resp, FunctionError> {
        self.inner.endpoint.predict(player.clone(), remote, &req).await
    }

    /// Hands `value` to this server's listeners of `remote` as if `player`
    /// had fired it.
    pub fn predict_event<T: Payload>(
        &self,
        player: &Player,
        remote: ServerEvent<T>,
        value: T,
    ) -> Result<(), EventError> {
        self.inner.endpoint.predict_event(player, remote, &value)
    }

    // ---- events ----

    /// Fires `remote` at one player.
    pub fn fire<T: Payload>(&self, player: &Player, remote: ClientEvent<T>, value: T) -> Result<(), EventError> {
        let (id, payload) = self.inner.endpoint.encode_event(&remote, &value)?;
        let sent = self.fire_one_encoded(player, id, remote.name, &payload);
        crate::payload::recycle(payload);
        sent
    }

    /// Fires `remote` at each of `players`. The payload is encoded once;
    /// the result says who it was queued for and who was skipped, and why.
    /// Fails only if the value cannot be encoded.
    pub fn fire_to<T: Payload>(
        &self,
        players: impl Players,
        remote: ClientEvent<T>,
        value: T,
    ) -> Result<Broadcast, EventError> {
        self.fire_many(&players.to_vec(), remote, &value)
    }

    /// Fires `remote` at every connected player; see [`fire_to`](Self::fire_to).
    pub fn fire_all<T: Payload>(&self, remote: ClientEvent<T>, value: T) -> Result<Broadcast, EventError> {
        self.fire_many(self.all_players().iter(), remote, &value)
    }

    /// Fires `remote` at every connected player but `except`; see
    /// [`fire_to`](Self::fire_to).
    pub fn fire_except<T: Payload>(
        &self,
        except: impl Players,
        remote: ClientEvent<T>,
        value: T,
    ) -> Result<Broadcast, EventError> {
        let all = self.all_players();
        self.fire_many(all.iter().filter(|p| !except.contains(p)), remote, &value)
    }

    /// Encodes once, queues for each player.
    pub(super) fn fire_many<'p, T: Payload>(
        &self,
        players: impl IntoIterator<Item = &'p Player>,
        remote: ClientEvent<T>,
        value: &T,
    ) -> Result<Broadcast, EventError> {
        let (id, payload) = self.inner.endpoint.encode_event(&remote, value)?;
        let outcome = self.fire_many_encoded(players, id, remote.name, &payload);
        crate::payload::recycle(payload);
        Ok(outcome)
    }
}
