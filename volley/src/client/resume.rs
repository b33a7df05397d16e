//! Resuming after a lost connection: the same player on a new connection,
//! calls and events in flight delivered once (see PROTOCOL.md's Resume).
//!
//! The session waits, away, with its calls; this loop redials the transport
//! the client last connected with, by the reconnect policy's backoff, and
//! hands each new transport to the connection's driver with a resume. It
//! ends when the session resumed, closed (refused: the client then joins as
//! a new player, by the policy), or its grace period passed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Client, ReconnectPolicy};
use crate::clock::now;
use crate::conn::Conn;
use crate::locks::lock;

/// Clears the client's "resuming" flag however the loop ends.
struct Resuming(Client);

impl Drop for Resuming {
    fn drop(&mut self) {
        self.0.inner.resuming.store(false, Ordering::Release);
    }
}

pub(super) async fn resume(client: Client, conn: Arc<Conn>, policy: ReconnectPolicy) {
    let client = Resuming(client);
    let inner = &client.0.inner;
    let handshake = conn.lock("resume settings").session.config().handshake_timeout;
    // The first attempt at once: the sooner, the less waits on both sides.
    let mut delay = Duration::ZERO;
    loop {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).clamp(policy.initial_delay, policy.max_delay);
        if !conn.lock("still away?").session.is_away() || inner.dropped.load(Ordering::Acquire) {
            return;
        }
        let Some(reopen) = lock(&inner.reopen).clone() else {
            conn.lock("cannot redial").session.end_away("the client cannot redial");
            conn.wake_driver();
            return;
        };
        let handoff = match tokio::time::timeout(handshake, reopen()).await {
            Ok(Ok(handoff)) => handoff,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "resume: redial failed");
                continue;
            }
            Err(_) => continue,
        };
        let news = inner.resume_news.notified();
        tokio::pin!(news);
        news.as_mut().enable();
        if !conn.lock("start a resume").session.start_resume(now()) {
            return;
        }
        conn.hand_over(handoff);
        // Resumed, refused, or away again; the session's handshake deadline
        // bounds it.
        let _ = tokio::time::timeout(handshake + Duration::from_secs(1), news).await;
        let state = conn.lock("resumed?");
        if !state.session.is_away() {
            return;
        }
    }
}
