//! Traffic another process already encoded: what a relay between servers
//! (the `volley-net-cluster` crate) passes on without decoding and encoding
//! again. The payload format is postcard, as everywhere in volley
//! (`PROTOCOL.md`); a remote is named by its declared name, and must be a
//! client-bound event or function of this server's protocol.

use std::time::Duration;

use bytes::Bytes;
use volley_proto::{Direction, RemoteId, RemoteKind};

use super::{Player, Server};
use crate::broadcast::Broadcast;
use crate::error::{EventError, FunctionError};
use crate::payload::decode;
use crate::remote::{ClientEvent, ClientFn, Payload};

impl Server {
    /// `value` encoded as `remote`'s payload, as firing it would encode it.
    pub fn encode_event<T: Payload>(&self, remote: ClientEvent<T>, value: &T) -> Result<Vec<u8>, EventError> {
        Ok(self.inner.endpoint.encode_event(&remote, value)?.1)
    }

    /// `req` encoded as `remote`'s request, as invoking it would encode it.
    pub fn encode_request<Req: Payload, Resp>(
        &self,
        remote: ClientFn<Req, Resp>,
        req: &Req,
    ) -> Result<Vec<u8>, FunctionError> {
        self.inner.endpoint.encode_request(remote.name, req)
    }

    /// Decodes an answer to `remote` that reached this process encoded, with
    /// the checks an answer to [`invoke`](Self::invoke) gets: one that does not
    /// decode or check is [`FunctionError::InvalidResult`] (and logged; no
    /// `on_bad_response` hook runs, as no player of this server sent it).
    pub fn decode_response<Req, Resp: Payload>(
        &self,
        remote: ClientFn<Req, Resp>,
        bytes: &[u8],
    ) -> Result<Resp, FunctionError> {
        let checks = self.inner.endpoint.protocol.response_checks(&remote);
        decode(bytes, &checks).map_err(|reason| {
            tracing::warn!(remote = remote.name, %reason, "bad relayed response dropped");
            FunctionError::InvalidResult
        })
    }

    /// The wire id and declared name of the client-bound event `remote`.
    pub(super) fn relayed_event(&self, remote: &str) -> Result<(RemoteId, &'static str), EventError> {
        self.relayed(remote, false).map_err(EventError::Encode)
    }

    /// The wire id and declared name of the client-bound function `remote`.
    pub(super) fn relayed_function(&self, remote: &str) -> Result<(RemoteId, &'static str), FunctionError> {
        self.relayed(remote, true).map_err(|reason| {
            tracing::warn!(remote, %reason, "relayed call refused");
            FunctionError::Unprocessed
        })
    }

    fn relayed(&self, remote: &str, function: bool) -> Result<(RemoteId, &'static str), String> {
        let table = self.inner.endpoint.protocol.table();
        let spec = table.id(remote).and_then(|id| Some((id, table.spec(id)?)));
        let Some((id, spec)) = spec else {
            return Err(format!("remote {remote:?} is not declared in this server's protocol"));
        };
        let is_function = spec.kind == RemoteKind::Function;
        if spec.direction != Direction::ToClient || is_function != function {
            let wanted = if function { "function" } else { "event" };
            return Err(format!("remote {remote:?} is not a client-bound {wanted}"));
        }
        Ok((id, spec.name))
    }

    /// Queues an encoded event for each player, through outgoing middleware.
    pub(super) fn fire_many_encoded<'p>(
        &self,
        players: impl IntoIterator<Item = &'p Player>,
        id: RemoteId,
        name: &'static str,
        payload: &[u8],
    ) -> Broadcast {
        let mut outcome = Broadcast::default();
        for player in players {
            match self.fire_one_encoded(player, id, name, payload) {
                Ok(()) => outcome.sent += 1,
                Err(error) => outcome.skipped.push((player.id(), error)),
            }
        }
        outcome
    }

    /// Queues an encoded event for one player, through outgoing middleware.
    pub(super) fn fire_one_encoded(
        &self,
        player: &Player,
        id: RemoteId,
        name: &'static str,
        payload: &[u8],
    ) -> Result<(), EventError> {
        match self.inner.endpoint.chains.admit_outgoing(player, name, payload.len()) {
            Ok(()) => player.inner.conn.send_event(id, payload),
            Err(_) => Err(EventError::Refused),
        }
    }
}

impl Player {
    /// Fires the client-bound event `remote` (its declared name) with a
    /// payload another process already encoded (postcard), through outgoing
    /// middleware like [`fire`](Self::fire). The client checks it as any
    /// event.
    pub fn fire_encoded(&self, remote: &str, payload: &[u8]) -> Result<(), EventError> {
        let server = self.server();
        let (id, name) = server.relayed_event(remote)?;
        server.fire_one_encoded(self, id, name, payload)
    }

    /// Calls the client-bound function `remote` (its declared name) with a
    /// request another process already encoded, and returns the answer
    /// still encoded, for that process to decode
    /// ([`Server::decode_response`]). Dropping the future cancels the call at
    /// the client, as [`invoke`](Self::invoke) does.
    pub async fn invoke_encoded(
        &self,
        remote: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Bytes, FunctionError> {
        let server = self.server();
        let (id, name) = server.relayed_function(remote)?;
        let endpoint = &server.inner.endpoint;
        let call = endpoint.send_call(self.inner.conn.clone(), self, id, name, payload, timeout)?;
        let reply = call.await?;
        Ok(Bytes::copy_from_slice(reply.as_bytes()))
    }
}
