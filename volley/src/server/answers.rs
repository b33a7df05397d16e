//! The answers of one call made to many players at once: a stream of
//! `(PlayerId, Result)`, each as soon as it is in, every player asked present
//! exactly once, all within one deadline.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use bytes::Bytes;

use super::{Player, Server};
use crate::checks::Checks;
use crate::completion::CallResult;
use crate::conn::PendingCall;
use crate::error::FunctionError;
use crate::peer::PlayerId;
use crate::remote::Payload;

/// The answers to [`Recipients::invoke`](super::Recipients::invoke): a
/// [`Stream`] of `(PlayerId, Result<Resp, FunctionError>)` in the order they
/// arrive, or all at once with [`all`](Self::all).
///
/// Every player asked appears exactly once. One that has not answered by the
/// deadline appears with [`FunctionError::Timeout`], then; one that leaves
/// meanwhile appears with [`FunctionError::Disconnected`] at once; one over
/// its limit of calls in flight with [`FunctionError::Overloaded`]. Dropping
/// the answers cancels every call still pending, at each player's client too.
#[must_use = "the calls are cancelled when the answers are dropped"]
pub struct Answers<Resp> {
    /// The players asked (and maybe others, left out by `except`): each
    /// call names its player by its place here.
    players: Arc<[Player]>,
    name: &'static str,
    /// Turns a player's raw answer into its result.
    decode: Decode<Resp>,
    /// Answers known without waiting (refused calls, players not connected).
    ready: VecDeque<(PlayerId, Result<Resp, FunctionError>)>,
    pending: FuturesUnordered<Call>,
    deadline: Pin<Box<Sleep>>,
    /// Every player asked, in the order they were.
    asked: Vec<PlayerId>,
}

type Decode<Resp> = Box<dyn Fn(&Player, CallResult) -> Result<Resp, FunctionError> + Send + Sync>;

// Nothing in it is pinned in place: the calls are polled through
// `FuturesUnordered`, which pins each on its own, and the deadline is boxed.
impl<Resp> Unpin for Answers<Resp> {}

/// One player's call, which says whose it is when it ends.
struct Call {
    /// The player's place in `Answers::players`.
    index: usize,
    call: PendingCall,
}

impl Future for Call {
    type Output = (usize, CallResult);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(Pin::new(&mut self.call).poll(cx));
        Poll::Ready((self.index, result))
    }
}

impl<Resp: Payload> Answers<Resp> {
    /// Answers of typed calls: decoded and checked as `invoke`'s are.
    pub(super) fn typed(
        server: Server,
        players: Arc<[Player]>,
        name: &'static str,
        checks: Checks<Resp>,
        timeout: Duration,
    ) -> Self {
        let decode = move |player: &Player, result| server.inner.endpoint.decode_answer(player, name, &checks, result);
        Self::new(players, name, Box::new(decode), timeout)
    }
}

impl Answers<Bytes> {
    /// Answers left encoded, for a relay to pass on.
    pub(super) fn encoded(players: Arc<[Player]>, name: &'static str, timeout: Duration) -> Self {
        let decode = |_: &Player, result: CallResult| result.map(|reply| Bytes::copy_from_slice(reply.as_bytes()));
        Self::new(players, name, Box::new(decode), timeout)
    }
}

impl<Resp> Answers<Resp> {
    fn new(players: Arc<[Player]>, name: &'static str, decode: Decode<Resp>, timeout: Duration) -> Self {
        Self {
            players,
            name,
            decode,
            ready: VecDeque::new(),
            pending: FuturesUnordered::new(),
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            asked: Vec::new(),
        }
    }

    /// A call sent to `players[index]`.
    pub(super) fn push_call(&mut self, index: usize, call: PendingCall) {
        self.asked.push(self.players[index].id());
        self.pending.push(Call { index, call });
    }

    /// An answer known already.
    pub(super) fn push_ready(&mut self, id: PlayerId, result: Result<Resp, FunctionError>) {
        self.asked.push(id);
        self.ready.push_back((id, result));
    }

    /// How many players were asked (the number of items the stream yields).
    pub fn asked(&self) -> usize {
        self.asked.len()
    }

    /// The players asked, each of which the stream names once.
    pub fn asked_ids(&self) -> &[PlayerId] {
        &self.asked
    }

    /// The player the stream names `id`, as it was when asked: its
    /// identity and data stay readable though it may have left since (its
    /// data until its removal hooks have run). `None` for an id that was not
    /// connected when asked.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        if !self.asked.contains(&id) {
            return None;
        }
        self.players.iter().find(|player| player.id() == id)
    }

    /// How many answers are still to come.
    pub fn remaining(&self) -> usize {
        self.ready.len() + self.pending.len()
    }

    /// The next answer to arrive; `None` once every player asked has one.
    pub async fn next(&mut self) -> Option<(PlayerId, Result<Resp, FunctionError>)> {
        StreamExt::next(self).await
    }

    /// Waits for every answer (at most until the deadline), in the order
    /// they arrived.
    pub async fn all(self) -> Vec<(PlayerId, Result<Resp, FunctionError>)> {
        let mut all = Vec::with_capacity(self.remaining());
        let mut answers = self;
        while let Some(answer) = answers.next().await {
            all.push(answer);
        }
        all
    }
}

impl<Resp> Stream for Answers<Resp> {
    type Item = (PlayerId, Result<Resp, FunctionError>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(answer) = this.ready.pop_front() {
            return Poll::Ready(Some(answer));
        }
        if this.pending.is_empty() {
            return Poll::Ready(None);
        }
        // Answers already in count, even when the deadline has passed too.
        if let Poll::Ready(Some((index, result))) = this.pending.poll_next_unpin(cx) {
            let player = &this.players[index];
            let result = (this.decode)(player, result);
            return Poll::Ready(Some((player.id(), result)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            // Ending each call cancels it at its player.
            for late in std::mem::take(&mut this.pending) {
                this.ready
                    .push_back((this.players[late.index].id(), Err(FunctionError::Timeout)));
                late.call.time_out();
            }
            return Poll::Ready(this.ready.pop_front());
        }
        Poll::Pending
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.remaining();
        (remaining, Some(remaining))
    }
}

impl<Resp> fmt::Debug for Answers<Resp> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answers")
            .field("remote", &self.name)
            .field("asked", &self.asked.len())
            .field("pending", &self.pending.len())
            .field("ready", &self.ready.len())
            .finish()
    }
}
