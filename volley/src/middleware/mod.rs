//! Middleware: code that runs on the receiving side, between the wire and a
//! handler or listener. There are two kinds, each its own trait, registered
//! with its own method, so a hook can never be written and then silently not
//! run:
//!
//! - [`Admit`] runs first, **before the payload is decoded**, on the
//!   connection's task. It sees the peer, the remote and the payload's size,
//!   and is where cheap limits belong ([`RateLimit`]): a refused call costs no
//!   decoding. Register it with [`Server::admit`](crate::Server::admit) or
//!   [`Server::admit_for`](crate::Server::admit_for) (and the same on
//!   [`Client`](crate::Client)).
//! - [`Middleware`] wraps the handler after decoding and validation, like a
//!   tower layer. It sees the decoded arguments ([`Request::args`]), and may
//!   change them, pass them on with [`Next::run`], answer itself
//!   (`Ok(Response::new(value))`), reject with a message
//!   (`Err(Reject::new(..))`), or drop the call (`Err(Reject::drop_request())`:
//!   the caller gets [`FunctionError::Cancelled`](crate::FunctionError::Cancelled)).
//!   For an event, the "handler" is the event's listeners and the response is
//!   `()`. Register it with [`Server::middleware`](crate::Server::middleware)
//!   or [`Server::middleware_for`](crate::Server::middleware_for).
//!
//! On the sending side, [`Server::admit_outgoing`](crate::Server::admit_outgoing)
//! and [`Client::admit_outgoing`](crate::Client::admit_outgoing) run an
//! [`Admit`] before each call or event leaves (a refusal fails the call at
//! once); there is no sending-side wrapper, as the caller can wrap its own
//! future.
//!
//! **Order**: global ones wrap per-remote ones, which wrap the handler; within
//! each list, the first registered is the outermost. Every `admit` runs
//! before any `call`.
//!
//! **State per connection**: the peer type `C` ([`Player`](crate::Player) on
//! the server, `()` on a client) implements [`Peer`]; middleware keeps what it
//! knows about a peer in that peer's [`PeerState`] (gone with the
//! connection), as [`RateLimit`] and [`ConcurrencyLimit`] do, so one player's
//! calls never wait on a lock another player's calls take.
//!
//! The async closure form is [`from_fn`]:
//!
//! ```
//! use volley::middleware::{from_fn, Next, Request};
//! use volley::{Player, Reject};
//!
//! let banned = from_fn(|req: Request<Player>, next: Next<Player>| async move {
//!     if req.peer().id().0 == 13 {
//!         return Err(Reject::new("you are banned"));
//!     }
//!     next.run(req).await
//! });
//! # let _ = banned;
//! ```
//!
//! Remotes with no [`Middleware`] keep the fast path: the handler runs on the
//! connection's task with no boxing. A chain that finishes without waiting
//! also completes inline; one that waits runs as its own task (events wait in
//! order, per peer).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::error::Reject;

mod limit;
mod trace;

pub use crate::peer::{Peer, PeerState};
pub use limit::{ConcurrencyLimit, RateLimit};
pub use trace::Trace;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A decoded call or event on its way to the handler.
pub struct Request<C> {
    peer: C,
    remote: &'static str,
    size: usize,
    args: Box<dyn Any + Send>,
}

impl<C> Request<C> {
    pub(crate) fn new(peer: C, remote: &'static str, size: usize, args: Box<dyn Any + Send>) -> Self {
        Self {
            peer,
            remote,
            size,
            args,
        }
    }

    /// Who sent it: the [`Player`](crate::Player) on the server, `()` on a client.
    pub fn peer(&self) -> &C {
        &self.peer
    }

    /// The remote's declared name.
    pub fn remote(&self) -> &'static str {
        self.remote
    }

    /// Size of the encoded arguments in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The decoded arguments, if they are a `T` (the remote's request type).
    pub fn args<T: 'static>(&self) -> Option<&T> {
        self.args.downcast_ref()
    }

    /// The decoded arguments, to change them before the handler sees them.
    pub fn args_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.args.downcast_mut()
    }

    pub(crate) fn into_parts(self) -> (C, Box<dyn Any + Send>) {
        (self.peer, self.args)
    }
}

impl<C: fmt::Debug> fmt::Debug for Request<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("peer", &self.peer)
            .field("remote", &self.remote)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A handler's result, or a middleware's own answer: a value of the remote's
/// response type (`()` for events).
pub struct Response(Box<dyn Any + Send>);

impl Response {
    /// Wraps a value; it must be the remote's response type, or the caller
    /// gets [`FunctionError::Unprocessed`](crate::FunctionError::Unprocessed)
    /// and the mismatch is logged.
    pub fn new<T: Send + 'static>(value: T) -> Self {
        Self(Box::new(value))
    }

    /// The value, if it is a `T`.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }

    /// The value, to change it on its way back.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.0.downcast_mut()
    }

    pub(crate) fn into_inner(self) -> Box<dyn Any + Send> {
        self.0
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Response(..)")
    }
}

/// What a `call` hook returns.
pub type CallResult = Result<Response, Reject>;

pub(crate) type Terminal<C> = Arc<dyn Fn(Request<C>) -> BoxFuture<CallResult> + Send + Sync>;

/// The rest of the chain: the inner middleware and then the handler.
pub struct Next<C> {
    chain: Arc<[Arc<dyn Middleware<C>>]>,
    index: usize,
    terminal: Terminal<C>,
}

impl<C: Send + 'static> Next<C> {
    pub(crate) fn new(chain: Arc<[Arc<dyn Middleware<C>>]>, terminal: Terminal<C>) -> Self {
        Self {
            chain,
            index: 0,
            terminal,
        }
    }

    /// Passes the request on.
    pub fn run(mut self, req: Request<C>) -> BoxFuture<CallResult> {
        match self.chain.get(self.index).cloned() {
            Some(middleware) => {
                self.index += 1;
                middleware.call(req, self)
            }
            None => (self.terminal)(req),
        }
    }
}

impl<C> fmt::Debug for Next<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Next")
            .field("remaining", &(self.chain.len() - self.index))
            .finish()
    }
}

/// Wraps the handler (or an event's listeners), after decoding; see the
/// [module docs](self). `C` is the peer type: [`Player`](crate::Player) on the
/// server, `()` on a client.
pub trait Middleware<C>: Send + Sync + 'static {
    /// Around the handler: pass the request on with `next.run(req)`, or answer
    /// or refuse it yourself.
    fn call(&self, req: Request<C>, next: Next<C>) -> BoxFuture<CallResult>;
}

/// Admits or refuses a call or event before its payload is decoded; see the
/// [module docs](self).
pub trait Admit<C>: Send + Sync + 'static {
    /// Admit the call or event, or refuse it. Runs on the connection's task;
    /// keep it cheap and non-blocking.
    fn admit(&self, peer: &C, remote: &'static str, size: usize) -> Result<(), Reject>;

    /// The peer disconnected. State kept in its [`PeerState`] goes by
    /// itself; anything kept elsewhere is forgotten here.
    fn disconnected(&self, peer: &C) {
        let _ = peer;
    }
}

/// Middleware from an async closure; see [`from_fn`].
pub struct FromFn<F>(F);

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn")
    }
}

/// Makes middleware from `|request, next| async move { .. next.run(request).await }`.
pub fn from_fn<C, F, Fut>(f: F) -> FromFn<F>
where
    F: Fn(Request<C>, Next<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallResult> + Send + 'static,
{
    FromFn(f)
}

impl<C, F, Fut> Middleware<C> for FromFn<F>
where
    C: Send + 'static,
    F: Fn(Request<C>, Next<C>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CallResult> + Send + 'static,
{
    fn call(&self, req: Request<C>, next: Next<C>) -> BoxFuture<CallResult> {
        Box::pin((self.0)(req, next))
    }
}
