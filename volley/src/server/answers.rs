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

use futures_util::stream::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use bytes::Bytes;

use super::adapter::{Remote, RemoteAnswers};
use super::call_set::{Call, CallSet};
use super::{Player, Server};
use crate::checks::Checks;
use crate::completion::CallResult;
use crate::conn::PendingCall;
use crate::error::FunctionError;
use crate::payload::decode;
use crate::peer::PlayerId;
use crate::remote::Payload;
use volley_proto::FrameBytes;

/// The answers to [`Recipients::invoke`](super::Recipients::invoke): a
/// [`Stream`] of `(PlayerId, Result<Resp, FunctionError>)` in the order they
/// arrive, or all at once with [`all`](Self::all).
///
/// Every player asked appears exactly once. One that has not answered by the
/// deadline appears with [`FunctionError::Timeout`], then; one that leaves
/// meanwhile appears with [`FunctionError::Disconnected`] at once; one over
/// its limit of calls in flight with [`FunctionError::Overloaded`]. Dropping
/// the answers cancels every call still pending, at each player's client too.
///
/// On a cluster (a server built with a cluster adapter), the players of other
/// nodes are in the same stream, as their nodes say whom they asked: they
/// count in [`asked`](Self::asked) as their answers come. A node that never
/// says is named in [`silent_nodes`](Self::silent_nodes); other nodes'
/// players still owed an answer at the deadline come with `Timeout` a little
/// after it (their answers cross the broker).
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
    pending: CallSet,
    deadline: Pin<Box<Sleep>>,
    /// Every player asked, in the order they were.
    asked: Vec<PlayerId>,
    /// Other processes' answers, from the adapter.
    remote: Option<RemoteAnswers>,
    /// Turns another process's encoded answer into its result.
    decode_remote: DecodeRemote<Resp>,
    /// Processes that never said whom they asked.
    silent: Vec<u32>,
}

type Decode<Resp> = Box<dyn Fn(&Player, CallResult) -> Result<Resp, FunctionError> + Send + Sync>;
type DecodeRemote<Resp> = Box<dyn Fn(Bytes) -> Result<Resp, FunctionError> + Send + Sync>;

// Nothing in it is pinned in place: the calls are `Unpin`, and the deadline
// is boxed.
impl<Resp> Unpin for Answers<Resp> {}

impl<Resp: Payload> Answers<Resp> {
    /// Answers of typed calls: decoded and checked as `invoke`'s are.
    pub(super) fn typed(
        server: Server,
        players: Arc<[Player]>,
        name: &'static str,
        checks: Checks<Resp>,
        timeout: Duration,
    ) -> Self {
        let remote_checks = checks.clone();
        let decode_local =
            move |player: &Player, result| server.inner.endpoint.decode_answer(player, name, &checks, result);
        // No `on_bad_response` hook: no player of this server sent it.
        let decode_remote = move |bytes: Bytes| {
            decode(&bytes, &remote_checks).map_err(|reason| {
                tracing::warn!(remote = name, %reason, "bad answer from another process dropped");
                FunctionError::InvalidResult
            })
        };
        Self::new(players, name, Box::new(decode_local), Box::new(decode_remote), timeout)
    }
}

impl Answers<Bytes> {
    /// Answers left encoded, for a relay to pass on.
    pub(super) fn encoded(players: Arc<[Player]>, name: &'static str, timeout: Duration) -> Self {
        let decode = |_: &Player, result: CallResult| result.map(FrameBytes::into_bytes);
        Self::new(players, name, Box::new(decode), Box::new(Ok), timeout)
    }
}

impl<Resp> Answers<Resp> {
    fn new(
        players: Arc<[Player]>,
        name: &'static str,
        decode: Decode<Resp>,
        decode_remote: DecodeRemote<Resp>,
        timeout: Duration,
    ) -> Self {
        // Sized for every player at once: grown call by call, a room of
        // 1,000 copied its lists ten times over.
        let calls = players.len();
        Self {
            players,
            name,
            decode,
            remote: None,
            decode_remote,
            silent: Vec::new(),
            ready: VecDeque::new(),
            pending: CallSet::with_capacity(calls),
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            asked: Vec::with_capacity(calls),
        }
    }

    /// A call sent to `players[index]`.
    pub(super) fn push_call(&mut self, index: usize, call: PendingCall) {
        self.asked.push(self.players[index].id());
        self.pending.push(Call { index, call });
    }

    /// The answers of other processes.
    pub(super) fn push_remote(&mut self, remote: RemoteAnswers) {
        self.remote = Some(remote);
    }

    /// An answer known already.
    pub(super) fn push_ready(&mut self, id: PlayerId, result: Result<Resp, FunctionError>) {
        self.asked.push(id);
        self.ready.push_back((id, result));
    }

    /// How many players were asked so far (the number of items the stream
    /// yields; on a cluster, other nodes' players count as they answer).
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

    /// Processes (cluster nodes, by number) that never said whom they asked:
    /// their players are not in the stream. Complete once it has ended.
    pub fn silent_nodes(&self) -> &[u32] {
        &self.silent
    }

    /// How many answers of this server's players are still to come (other
    /// nodes' are not known ahead).
    pub fn remaining(&self) -> usize {
        self.ready.len() + self.pending.len()
    }

    /// The next answer to arrive; `None` once every player asked has one.
    pub async fn next(&mut self) -> Option<(PlayerId, Result<Resp, FunctionError>)> {
        StreamExt::next(self).await
    }

    /// Waits for every answer (at most until the deadline).
    ///
    /// The task waiting is not woken at each answer of this server's
    /// players: once every 16 answers, when the last is in, and at the
    /// deadline; it takes them in the order the players were asked, as far
    /// as they have come (taking an answer reads what another core wrote:
    /// a thousand taken at the end made a tail of their own). Answers known
    /// without waiting (refused calls, players not connected) come first,
    /// other nodes' as they arrive, and players with no answer by the
    /// deadline last.
    pub async fn all(self) -> Vec<(PlayerId, Result<Resp, FunctionError>)> {
        let mut all = Vec::with_capacity(self.remaining());
        let mut answers = self;
        answers.pending.wait_for_all();
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
        loop {
            if let Some(answer) = this.ready.pop_front() {
                return Poll::Ready(Some(answer));
            }
            // Answers already in count, even when the deadline has passed too.
            if let Poll::Ready(Some((index, result))) = this.pending.poll_next(cx) {
                let player = &this.players[index];
                let result = (this.decode)(player, result);
                return Poll::Ready(Some((player.id(), result)));
            }
            if let Some(remote) = &mut this.remote {
                match remote.as_mut().poll_next(cx) {
                    Poll::Ready(Some(Remote::Answer(id, result))) => {
                        this.asked.push(id);
                        let result = result.and_then(&this.decode_remote);
                        return Poll::Ready(Some((id, result)));
                    }
                    Poll::Ready(Some(Remote::Silent(node))) => {
                        this.silent.push(node);
                        continue;
                    }
                    Poll::Ready(None) => this.remote = None,
                    Poll::Pending => {}
                }
            }
            if this.pending.is_empty() {
                return if this.remote.is_none() {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                };
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                // Ending each call cancels it at its player.
                for late in this.pending.take_all() {
                    this.ready
                        .push_back((this.players[late.index].id(), Err(FunctionError::Timeout)));
                    late.call.time_out();
                }
                continue;
            }
            return Poll::Pending;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.remaining();
        (remaining, self.remote.is_none().then_some(remaining))
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
