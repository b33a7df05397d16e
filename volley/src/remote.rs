//! Remote declarations: what can be called or fired, in which direction, with
//! which types. Declare them once, in code both the server and the client
//! compile, and list them in a [`Protocol`].
//!
//! The direction is part of the type: a [`ServerFn`] is called by a client and
//! handled by the server, a [`ClientFn`] the other way round, and the methods
//! of [`Server`](crate::Server) and [`Client`](crate::Client) accept only the
//! right one, so a call in the wrong direction does not compile:
//!
//! ```compile_fail
//! # use volley::*;
//! const PROMPT: ClientFn<String, bool> = ClientFn::new("Prompt");
//! async fn wrong(client: Client) {
//!     // A client cannot invoke a function only clients handle.
//!     let _ = client.invoke(PROMPT, "accept?".to_string()).await;
//! }
//! ```
//!
//! ```compile_fail
//! # use volley::*;
//! const CHAT: ServerEvent<String> = ServerEvent::new("Chat");
//! fn wrong(server: Server) {
//!     // The server cannot fire an event only the server receives.
//!     server.fire_all(CHAT, "hello".to_string());
//! }
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use volley_proto::{RemoteId, RemoteSpec, RemoteTable, TableError};

use crate::checks::{both, erase, Checks, ErasedCheck};

/// Marker: handled by the server.
#[derive(Debug, Clone, Copy)]
pub enum ToServer {}
/// Marker: handled by a client.
#[derive(Debug, Clone, Copy)]
pub enum ToClient {}

/// The direction markers [`ToServer`] and [`ToClient`].
pub trait Dir: sealed::Sealed + Send + Sync + 'static {
    /// The direction on the wire.
    const DIRECTION: Direction;
}
impl Dir for ToServer {
    const DIRECTION: Direction = Direction::ToServer;
}
impl Dir for ToClient {
    const DIRECTION: Direction = Direction::ToClient;
}
mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ToServer {}
    impl Sealed for super::ToClient {}
}

/// A type that can cross the wire: any `serde` type, encoded with postcard.
pub trait Payload: Serialize + DeserializeOwned + Send + 'static {}
impl<T: Serialize + DeserializeOwned + Send + 'static> Payload for T {}

pub use crate::checks::Check;

/// A remote function handled on side `D`, taking `Req` and returning `Resp`.
/// Use the aliases [`ServerFn`] and [`ClientFn`].
pub struct Function<D, Req, Resp> {
    pub(crate) name: &'static str,
    pub(crate) timeout: Option<Duration>,
    pub(crate) check_request: Option<Check<Req>>,
    pub(crate) check_response: Option<Check<Resp>>,
    _types: PhantomData<fn(D, Req) -> Resp>,
}

/// Called by a client, handled by the server.
pub type ServerFn<Req, Resp> = Function<ToServer, Req, Resp>;
/// Called by the server, handled by a client.
pub type ClientFn<Req, Resp> = Function<ToClient, Req, Resp>;

impl<D, Req, Resp> Function<D, Req, Resp> {
    /// Declares a function; `name` must be unique among the protocol's remotes.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            timeout: None,
            check_request: None,
            check_response: None,
            _types: PhantomData,
        }
    }

    /// This function's timeout, instead of the configured default (10 s).
    ///
    /// # Panics
    ///
    /// If `timeout` is zero (every call would time out); in a `const`
    /// declaration that is a compile error.
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        assert!(!timeout.is_zero(), "a remote's timeout cannot be zero");
        self.timeout = Some(timeout);
        self
    }

    /// Validates each request after decoding, at the receiver (and in
    /// `predict`). A failing request never reaches the handler; the caller
    /// gets [`FunctionError::BadRequest`](crate::FunctionError::BadRequest).
    /// For input no honest client sends; see [`Check`] for when to use a
    /// [`Reject`](crate::Reject) instead, and
    /// [`ProtocolBuilder::check_request`] for a check that needs
    /// configuration.
    pub const fn with_request_check(mut self, check: Check<Req>) -> Self {
        self.check_request = Some(check);
        self
    }

    /// Validates each response after decoding, at the caller. A failing
    /// response is [`FunctionError::InvalidResult`](crate::FunctionError::InvalidResult).
    pub const fn with_response_check(mut self, check: Check<Resp>) -> Self {
        self.check_response = Some(check);
        self
    }

    /// The declared name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The timeout declared with [`with_timeout`](Self::with_timeout), if any.
    pub const fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

/// A one-way event handled on side `D`, carrying a `T`. Use the aliases
/// [`ServerEvent`] and [`ClientEvent`].
pub struct Event<D, T> {
    pub(crate) name: &'static str,
    pub(crate) check: Option<Check<T>>,
    pub(crate) unreliable: bool,
    _types: PhantomData<fn(D, T)>,
}

/// Fired by a client, received by the server.
pub type ServerEvent<T> = Event<ToServer, T>;
/// Fired by the server, received by clients.
pub type ClientEvent<T> = Event<ToClient, T>;

impl<D, T> Event<D, T> {
    /// Declares an event; `name` must be unique among the protocol's remotes.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            check: None,
            unreliable: false,
            _types: PhantomData,
        }
    }

    /// Makes this event unreliable: it may be dropped rather than wait (for
    /// state that the next event supersedes, like positions). Its encoded
    /// payload is limited to
    /// [`SessionConfig::max_unreliable_len`](volley_proto::SessionConfig::max_unreliable_len)
    /// (1,200 bytes by default), checked when firing; on TCP and WebSocket it
    /// travels on the connection's stream but is dropped
    /// ([`EventError::Dropped`](crate::EventError::Dropped)) when more than
    /// [`SessionConfig::unreliable_backlog`](volley_proto::SessionConfig::unreliable_backlog)
    /// bytes (16 KiB) already wait to be written, so it never queues behind
    /// reliable traffic.
    pub const fn unreliable(mut self) -> Self {
        self.unreliable = true;
        self
    }

    /// Validates each event after decoding, at the receiver; a failing one is
    /// dropped and reported to the bad-input hook.
    pub const fn with_check(mut self, check: Check<T>) -> Self {
        self.check = Some(check);
        self
    }

    /// The declared name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

// Manual impls: derives would needlessly require `Req: Clone` and so on.
macro_rules! plain_data_impls {
    ($ty:ident < $($p:ident),* >, $kind:literal) => {
        impl<$($p),*> Clone for $ty<$($p),*> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<$($p),*> Copy for $ty<$($p),*> {}
        impl<$($p),*> fmt::Debug for $ty<$($p),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple($kind).field(&self.name).finish()
            }
        }
    };
}
plain_data_impls!(Function<D, Req, Resp>, "Function");
plain_data_impls!(Event<D, T>, "Event");

/// Anything that can be listed in a [`Protocol`].
pub trait Remote: sealed_remote::Sealed {
    /// Which side handles it: [`ToServer`] or [`ToClient`].
    type Direction: Dir;
    /// Its declared name.
    fn name(&self) -> &'static str;
    /// What a protocol records of it: name, kind, direction, timeout, and
    /// the shape of its payload types.
    fn info(&self) -> RemoteInfo;
}

pub use volley_proto::{Direction, RemoteKind};

/// One remote of a [`Protocol`] ([`Protocol::remotes`]), as a generator of
/// client code in another language needs it: the types' descriptions are
/// the very ones the remotes hash is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteInfo {
    /// The declared name.
    pub name: &'static str,
    /// Its id on the wire (its place among the names, sorted).
    pub id: RemoteId,
    /// Function, event or unreliable event.
    pub kind: RemoteKind,
    /// Who handles it.
    pub direction: Direction,
    /// A function's declared timeout, if any.
    pub timeout: Option<Duration>,
    /// The shape description of each payload type: a function's request
    /// then response, an event's value (grammar: `volley/src/shape.rs`); or
    /// why the type cannot be described.
    pub types: Vec<Result<String, String>>,
}

impl RemoteInfo {
    fn spec(&self) -> RemoteSpec {
        RemoteSpec {
            name: self.name,
            kind: self.kind,
            direction: self.direction,
            shape: crate::shape::remote_shape(self.name, &self.types),
        }
    }
}
mod sealed_remote {
    pub trait Sealed {}
    impl<D, Req, Resp> Sealed for super::Function<D, Req, Resp> {}
    impl<D, T> Sealed for super::Event<D, T> {}
}

impl<D: Dir, Req: Payload, Resp: Payload> Remote for Function<D, Req, Resp> {
    type Direction = D;
    fn name(&self) -> &'static str {
        self.name
    }
    fn info(&self) -> RemoteInfo {
        RemoteInfo {
            name: self.name,
            id: 0,
            kind: RemoteKind::Function,
            direction: D::DIRECTION,
            timeout: self.timeout,
            types: vec![crate::shape::describe::<Req>(), crate::shape::describe::<Resp>()],
        }
    }
}

impl<D: Dir, T: Payload> Remote for Event<D, T> {
    type Direction = D;
    fn name(&self) -> &'static str {
        self.name
    }
    fn info(&self) -> RemoteInfo {
        RemoteInfo {
            name: self.name,
            id: 0,
            kind: if self.unreliable {
                RemoteKind::UnreliableEvent
            } else {
                RemoteKind::Event
            },
            direction: D::DIRECTION,
            timeout: None,
            types: vec![crate::shape::describe::<T>()],
        }
    }
}

/// Every remote an application declares. Server and client must be built from
/// the same list (in any order), with the same payload types; otherwise the
/// server refuses the client with
/// [`RefuseCode::RemotesMismatch`](volley_proto::RefuseCode::RemotesMismatch).
///
/// What counts as the same types: the hash covers each remote's name, kind,
/// direction and the shape of its request and response types as serde sees
/// them: primitives, options, sequences, maps, tuples, struct fields (names,
/// order, types) and enum variants (names, order, contents), however deeply
/// nested, each instance of a generic type and each of two types sharing a
/// name on its own, recursive types in full. A changed field type, an added
/// or removed field, a reordered enum or a renamed type is refused; the same
/// types moved to another module are not. Types that deserialize through
/// `deserialize_any` (`#[serde(untagged)]`, `#[serde(flatten)]`), refuse
/// placeholder values, or have no finite value are compared by the remote's
/// name only, and a warning naming the type and why is logged when the
/// protocol is built.
///
/// ```
/// use volley::{Protocol, ServerFn, ClientEvent};
///
/// const ADD: ServerFn<(i32, i32), i32> = ServerFn::new("Add");
/// const NEWS: ClientEvent<String> = ClientEvent::new("News");
///
/// let protocol = Protocol::builder().remote(ADD).remote(NEWS).build();
/// assert_eq!(protocol.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Protocol {
    table: Arc<RemoteTable>,
    /// Wire ids by the address of the declared name: a call names its remote
    /// by the same `&'static str` it was declared with, so one hash of two
    /// words finds its id, where the table's search compares strings.
    by_address: Arc<FxHashMap<(usize, usize), RemoteId>>,
    /// The checks the protocol was built with, by wire id; empty when there
    /// are none (then nothing is looked up per message).
    checks: Arc<[ProtocolChecks]>,
    /// Every remote, by wire id.
    remotes: Arc<[RemoteInfo]>,
}

/// The checks given to [`ProtocolBuilder`] for one remote.
#[derive(Clone, Default)]
struct ProtocolChecks {
    /// A function's requests, or an event's values.
    incoming: Option<ErasedCheck>,
    /// A function's responses.
    response: Option<ErasedCheck>,
}

impl fmt::Debug for ProtocolChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolChecks")
            .field("incoming", &self.incoming.is_some())
            .field("response", &self.response.is_some())
            .finish()
    }
}

impl Protocol {
    /// Starts a list of remotes.
    pub fn builder() -> ProtocolBuilder {
        ProtocolBuilder {
            specs: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// Number of remotes.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The hash both sides compare in the handshake.
    pub fn hash(&self) -> u64 {
        self.table.hash()
    }

    /// Every remote, by wire id, with the descriptions of its payload types
    /// the hash is made from: what a generator of client code in another
    /// language reads (`volley-net-ts`).
    pub fn remotes(&self) -> &[RemoteInfo] {
        &self.remotes
    }

    pub(crate) fn table(&self) -> &Arc<RemoteTable> {
        &self.table
    }

    /// The wire id of a declared remote.
    pub(crate) fn id(&self, name: &'static str) -> Option<RemoteId> {
        // The same text may sit at another address (the compiler need not
        // merge equal literals across crates): then the table decides.
        (self.by_address.get(&address(name)).copied()).or_else(|| self.table.id(name))
    }

    /// The protocol's checks for `name`, if it has any.
    fn checks_of(&self, name: &'static str) -> Option<&ProtocolChecks> {
        if self.checks.is_empty() {
            return None;
        }
        self.checks.get(self.id(name)? as usize)
    }

    /// Every check a function's request must pass.
    pub(crate) fn request_checks<D, Req: 'static, Resp>(&self, remote: &Function<D, Req, Resp>) -> Checks<Req> {
        let protocol = self.checks_of(remote.name).and_then(|c| c.incoming.clone());
        Checks::new(remote.check_request, protocol)
    }

    /// Every check a function's response must pass.
    /// `declared`: the check its declaration carries.
    pub(crate) fn response_checks<Resp: 'static>(
        &self,
        name: &'static str,
        declared: Option<Check<Resp>>,
    ) -> Checks<Resp> {
        let protocol = self.checks_of(name).and_then(|c| c.response.clone());
        Checks::new(declared, protocol)
    }

    /// Every check an event's value must pass.
    pub(crate) fn event_checks<D, T: 'static>(&self, remote: &Event<D, T>) -> Checks<T> {
        let protocol = self.checks_of(remote.name).and_then(|c| c.incoming.clone());
        Checks::new(remote.check, protocol)
    }

    /// The name of wire id `id`, for logs.
    pub(crate) fn name(&self, id: RemoteId) -> &'static str {
        self.table.spec(id).map_or("<unknown>", |s| s.name)
    }
}

/// Builds a [`Protocol`].
pub struct ProtocolBuilder {
    specs: Vec<RemoteInfo>,
    /// Checks by remote name: `true` for a function's responses.
    checks: Vec<(&'static str, bool, ErasedCheck)>,
}

impl fmt::Debug for ProtocolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtocolBuilder")
            .field("remotes", &self.specs.len())
            .field("checks", &self.checks.len())
            .finish()
    }
}

impl ProtocolBuilder {
    /// Adds a remote.
    pub fn remote(mut self, remote: impl Remote) -> Self {
        self.specs.push(remote.info());
        self
    }

    /// Adds `remote` unless it is listed already.
    fn listed(mut self, remote: impl Remote) -> Self {
        if !self.specs.iter().any(|spec| spec.name == remote.name()) {
            self.specs.push(remote.info());
        }
        self
    }

    /// Validates each request of `remote` after decoding, at the receiver,
    /// after the check declared with it, if any. Unlike a declared check this
    /// one is a closure, so it can use configuration known only at start-up.
    /// A failing request never reaches the handler; the caller gets
    /// [`FunctionError::BadRequest`](crate::FunctionError::BadRequest) and the
    /// reason goes to the receiver's `on_bad_request` hooks. Adds `remote` to
    /// the list if it is not there yet; several checks of one remote all run.
    ///
    /// ```
    /// use volley::{Protocol, ServerFn};
    ///
    /// const RENAME: ServerFn<String, ()> = ServerFn::new("Rename");
    ///
    /// let max_name = 24; // from the game's settings
    /// let protocol = Protocol::builder()
    ///     .check_request(RENAME, move |name: &String| {
    ///         if name.chars().count() <= max_name { Ok(()) } else { Err(format!("name of {} chars", name.len())) }
    ///     })
    ///     .build();
    /// assert_eq!(protocol.len(), 1);
    /// ```
    pub fn check_request<D: Dir, Req: Payload, Resp: Payload>(
        mut self,
        remote: Function<D, Req, Resp>,
        check: impl Fn(&Req) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((remote.name, false, erase(check)));
        self.listed(remote)
    }

    /// Validates each response of `remote` after decoding, at the caller; a
    /// failing one is [`FunctionError::InvalidResult`](crate::FunctionError::InvalidResult).
    /// See [`check_request`](Self::check_request).
    pub fn check_response<D: Dir, Req: Payload, Resp: Payload>(
        mut self,
        remote: Function<D, Req, Resp>,
        check: impl Fn(&Resp) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((remote.name, true, erase(check)));
        self.listed(remote)
    }

    /// Validates each firing of `remote` after decoding, at the receiver; a
    /// failing one is dropped and reported to the bad-input hooks. See
    /// [`check_request`](Self::check_request).
    pub fn check_event<D: Dir, T: Payload>(
        mut self,
        remote: Event<D, T>,
        check: impl Fn(&T) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.checks.push((remote.name, false, erase(check)));
        self.listed(remote)
    }

    /// Finishes the list.
    ///
    /// # Panics
    ///
    /// If two remotes share a name: a declaration mistake that must be fixed in
    /// code. Use [`try_build`](Self::try_build) to handle it instead.
    pub fn build(self) -> Protocol {
        self.try_build()
            .unwrap_or_else(|e| panic!("invalid volley protocol: {e}"))
    }

    /// Finishes the list, or says which name is declared twice.
    pub fn try_build(self) -> Result<Protocol, TableError> {
        let table = RemoteTable::new(self.specs.iter().map(RemoteInfo::spec).collect())?;
        let mut remotes = self.specs;
        for remote in &mut remotes {
            remote.id = table.id(remote.name).unwrap_or_default();
        }
        remotes.sort_by_key(|remote| remote.id);
        let by_address = (0..table.len() as RemoteId)
            .filter_map(|id| Some((address(table.spec(id)?.name), id)))
            .collect();
        let mut checks = Vec::new();
        if !self.checks.is_empty() {
            checks.resize(table.len(), ProtocolChecks::default());
        }
        for (name, response, check) in self.checks {
            // Every checked remote was listed when its check was given.
            let Some(id) = table.id(name) else { continue };
            let slot = &mut checks[id as usize];
            let slot = if response {
                &mut slot.response
            } else {
                &mut slot.incoming
            };
            *slot = Some(match slot.take() {
                Some(earlier) => both(earlier, check),
                None => check,
            });
        }
        Ok(Protocol {
            table: Arc::new(table),
            by_address: Arc::new(by_address),
            checks: checks.into(),
            remotes: remotes.into(),
        })
    }
}

/// Where a name's text is, and how long it is.
fn address(name: &'static str) -> (usize, usize) {
    (name.as_ptr() as usize, name.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_found_at_any_address() {
        const B: ServerFn<u32, u32> = ServerFn::new("B");
        const A: ServerEvent<u32> = ServerEvent::new("A");
        let protocol = Protocol::builder().remote(B).remote(A).build();
        assert_eq!(protocol.id(B.name), Some(1));
        assert_eq!(protocol.id(A.name), Some(0));
        // The same text elsewhere in memory.
        let copy: &'static str = String::from("B").leak();
        assert_ne!(copy.as_ptr(), B.name.as_ptr());
        assert_eq!(protocol.id(copy), Some(1));
        assert_eq!(protocol.id("C"), None);
    }
}
