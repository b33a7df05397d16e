//! The server's end of a connection, as its driver sees it: a hello to
//! admit, a player joining, its calls drained, its departure.

use super::*;

/// The server's end of one connection.
pub(super) struct ServerSide {
    server: Arc<ServerInner>,
    player: Player,
    joined: bool,
    /// Given back when the player joins (or with the side, when it ends).
    handshake: Option<HandshakeSlot>,
}

impl ServerSide {
    /// The side of a connection just accepted, holding its place among the
    /// handshakes until the player joins.
    pub(super) fn new(server: Arc<ServerInner>, player: Player, handshake: HandshakeSlot) -> Self {
        server.open.send_modify(|open| *open += 1);
        Self {
            server,
            player,
            joined: false,
            handshake: Some(handshake),
        }
    }
}

/// The side goes with its driver, when the connection's task ends.
impl Drop for ServerSide {
    fn drop(&mut self) {
        self.server.open.send_modify(|open| *open -= 1);
    }
}

impl Side for ServerSide {
    type Ctx = Player;

    fn endpoint(&self) -> &Endpoint<Player> {
        &self.server.endpoint
    }

    fn ctx(&self) -> &Player {
        &self.player
    }

    fn hello(&mut self, conn: &Arc<Conn>, token: Bytes) {
        if let Err(why) = self.server.admission() {
            self.server.refused(why);
            return conn.refuse_hello(RefuseCode::Unavailable, why);
        }
        let Some(authenticator) = read(&self.server.authenticator).clone() else {
            return self.server.accept(conn, &self.player);
        };
        let hello = Hello {
            token,
            addr: self.player.remote_addr(),
        };
        let (conn, player, server) = (conn.clone(), self.player.clone(), self.server.clone());
        let verdict = AssertUnwindSafe(authenticator(hello)).catch_unwind();
        tokio::spawn(
            async move {
                let verdict = verdict.await.unwrap_or_else(|_| {
                    tracing::error!("authenticator panicked");
                    Err("authentication failed".into())
                });
                // Shutdown may have begun, or the server filled up, while the
                // authenticator ran: nobody joins after the goodbyes.
                let verdict = match (verdict, server.admission()) {
                    (Ok(identity), Ok(())) => Ok(identity),
                    (Ok(_), Err(why)) => Err((RefuseCode::Unavailable, why.to_string())),
                    (Err(reason), _) => Err((RefuseCode::Unauthorized, reason)),
                };
                // The handshake deadline may have closed the session meanwhile;
                // then accept and refuse do nothing.
                match verdict {
                    Ok(identity) => {
                        let _ = player.inner.identity.set(identity);
                        server.accept(&conn, &player);
                    }
                    Err((code, reason)) => {
                        tracing::info!(%reason, "client refused");
                        server.refused(match code {
                            RefuseCode::Unauthorized => "unauthorized",
                            _ => "unavailable",
                        });
                        conn.refuse_hello(code, &reason);
                    }
                }
            }
            .in_current_span(),
        );
    }

    fn connected(&mut self) {
        self.joined = true;
        self.handshake = None;
        let player = &self.player;
        write(&self.server.players).insert(player);
        self.server.present.send_modify(|present| *present += 1);
        if self.server.shutting_down.load(Ordering::SeqCst) {
            // Admitted just before shutdown began, and joined after it took
            // its list of players: it would wait for this one forever.
            player
                .inner
                .conn
                .close(GoodbyeCode::ShuttingDown, "server shutting down");
        }
        tracing::info!("player joined");
        let hooks = read(&self.server.added).clone();
        for hook in hooks {
            catch_user("on_player_added hook", None, || hook(player));
        }
    }

    fn drained(&mut self) {
        self.server.drained.notify_waiters();
    }

    fn away(&mut self) {
        tracing::info!("player away: connection lost, waiting for a resume");
        let hooks = read(&self.server.away).clone();
        for hook in hooks {
            catch_user("on_player_away hook", None, || hook(&self.player));
        }
    }

    fn resumed(&mut self) {
        tracing::info!("player back: resumed on a new connection");
        let hooks = read(&self.server.back).clone();
        for hook in hooks {
            catch_user("on_player_back hook", None, || hook(&self.player));
        }
    }

    fn resume_asked(&mut self, conn: &Arc<Conn>, token: volley_proto::ResumeToken, received: u64) -> Option<Arc<Conn>> {
        self.server.take_back(conn, self.player.remote_addr(), token, received)
    }

    fn closed(&mut self, reason: CloseReason) {
        let player = &self.player;
        self.server.forget_token(player);
        let _ = player.inner.closed.set(reason.clone());
        player.inner.closed_wakers.notify_waiters();
        if !self.joined {
            tracing::debug!(%reason, "connection closed before joining");
            match &reason {
                // Counted with their reason when the server refused.
                CloseReason::RefusedPeer {
                    code: RefuseCode::Unauthorized | RefuseCode::Unavailable,
                    ..
                } => {}
                // Refused by the session itself.
                CloseReason::RefusedPeer {
                    code: RefuseCode::RemotesMismatch,
                    ..
                } => self.server.refused("remotes mismatch"),
                CloseReason::RefusedPeer {
                    code: RefuseCode::VersionMismatch,
                    ..
                } => self.server.refused("version mismatch"),
                CloseReason::RefusedPeer {
                    code: RefuseCode::ResumeRefused,
                    ..
                } => self.server.refused("resume refused"),
                _ => self.server.refused(&format!(
                    "closed before joining: {}",
                    crate::figures::reason_kind(&reason)
                )),
            }
            return;
        }
        *lock(&self.server.tallies)
            .disconnects
            .entry(crate::figures::departure_kind(&reason))
            .or_default() += 1;
        write(&self.server.players).remove(player);
        self.server.endpoint.chains.peer_left(player);
        let rooms = self.server.rooms.leave_all(player);
        match &reason {
            CloseReason::ProtocolViolation(_) | CloseReason::PeerTooSlow | CloseReason::IdleTimeout => {
                tracing::warn!(%reason, "player dropped")
            }
            _ => tracing::info!(%reason, "player left"),
        }
        for room in rooms {
            self.server.room_changed(&self.server.room_left, player, &room);
        }
        let hooks = read(&self.server.removed).clone();
        for hook in hooks {
            catch_user("on_player_removed hook", None, || hook(player, &reason));
        }
        // After the hooks, which may still read it.
        player.inner.data.clear();
        self.server.present.send_modify(|present| *present -= 1);
    }
}
