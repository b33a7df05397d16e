//! Resume on the server: the tokens that find a player again, and taking a
//! player back on the new connection its client made.
//!
//! A token is 128 bits from the operating system's generator, given at the
//! welcome and replaced at every resume; it is the only key to its player,
//! and it is never logged. A used token finds nobody, with one exception: a
//! connection cut before the client read the resume's answer leaves the
//! client with the token it resumed with, so that token stays good until
//! the client says anything on the resumed connection (proof it has the
//! new one; it pings at once). Each player has at most these two in the
//! table; a stale one finds nobody.

use std::net::SocketAddr;
use std::sync::Arc;

use volley_proto::{RefuseCode, ResumeToken, RESUME_TOKEN_LEN};

use super::{Player, ServerInner};
use crate::clock::now;
use crate::conn::Conn;
use crate::locks::lock;

/// A player's tokens: the one its client was last given, and the one it
/// resumed with while the client may not have the new one yet.
#[derive(Debug, Default)]
pub(super) struct ResumeTokens {
    current: Option<ResumeToken>,
    previous: Option<ResumeToken>,
}

/// A fresh, unguessable token.
pub(super) fn new_token() -> ResumeToken {
    let mut bytes = [0; RESUME_TOKEN_LEN];
    // The operating system's generator failing leaves nothing sound to
    // fall back on; it does not fail on the platforms tokio runs on.
    getrandom::fill(&mut bytes).expect("the operating system's random generator");
    ResumeToken(bytes)
}

impl ServerInner {
    /// Lets `player` in on `conn`, resumable if its client asked.
    pub(super) fn accept(&self, conn: &Conn, player: &Player) {
        let token = new_token();
        if conn.accept_resumable(player.id().0, token) {
            lock(&player.inner.resume_tokens).current = Some(token);
            lock(&self.resumable).insert(token, player.clone());
        }
    }

    /// The player is gone for good: its tokens find nobody any more.
    pub(super) fn forget_token(&self, player: &Player) {
        let tokens = std::mem::take(&mut *lock(&player.inner.resume_tokens));
        let mut table = lock(&self.resumable);
        for token in [tokens.current, tokens.previous].into_iter().flatten() {
            table.remove(&token);
        }
    }

    /// A client presented `token` on the new connection `fresh` (from
    /// `fresh_addr`), having processed `received` of our frames. Returns the
    /// connection of the player it resumed, which takes `fresh`'s transport
    /// (and the player its address); or refuses `fresh`, saying why, and
    /// returns `None`.
    pub(super) fn take_back(
        &self,
        fresh: &Conn,
        fresh_addr: Option<SocketAddr>,
        token: ResumeToken,
        received: u64,
    ) -> Option<Arc<Conn>> {
        let found = lock(&self.resumable).get(&token).cloned();
        let result = match &found {
            None => Err("unknown, used or expired token".to_string()),
            Some(player) => {
                let next = new_token();
                let conn = &player.inner.conn;
                let mut state = conn.lock("resume a player");
                let used = lock(&player.inner.resume_tokens).previous == Some(token);
                let resumed = if used && state.session.heard_since_resume() {
                    // The client has the token that replaced it.
                    Err("unknown, used or expired token".to_string())
                } else {
                    state.session.resume(received, next, now())
                };
                if resumed.is_ok() {
                    // The old transport, if it still seemed alive, goes.
                    state.detach();
                }
                drop(state);
                resumed.map(|()| {
                    let mut tokens = lock(&player.inner.resume_tokens);
                    let mut table = lock(&self.resumable);
                    // Kept: the token it came with (until the client speaks)
                    // and the new one; any other it had is stale.
                    for stale in [tokens.current, tokens.previous].into_iter().flatten() {
                        if stale != token {
                            table.remove(&stale);
                        }
                    }
                    table.insert(next, player.clone());
                    *tokens = ResumeTokens {
                        current: Some(next),
                        previous: Some(token),
                    };
                    drop((table, tokens));
                    *lock(&player.inner.addr) = fresh_addr;
                    conn.clone()
                })
            }
        };
        match result {
            Ok(conn) => Some(conn),
            Err(why) => {
                tracing::info!(%why, "resume refused");
                // Counted when this connection closes, as every refusal.
                fresh.refuse_hello(RefuseCode::ResumeRefused, &why);
                None
            }
        }
    }
}
