//! The peer of a connection, as the layers below the server and client see
//! it: its id, and the state middleware keeps per connection.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

use rustc_hash::FxHashMap;

use crate::locks::lock;

/// A player's number, unique for the life of the server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlayerId(pub u64);

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "player#{}", self.0)
    }
}

/// What middleware needs of the peer type: [`Player`](crate::Player) on the
/// server, `()` on a client.
pub trait Peer: Clone + Send + Sync + 'static {
    /// Storage for middleware state that lives as long as this connection;
    /// `None` where the side has one peer at a time (a client), and
    /// middleware keeps such state itself.
    fn state(&self) -> Option<&PeerState> {
        None
    }
}

impl Peer for () {}

/// State middleware keeps about one connection, each piece owned by one
/// middleware instance. Dropped with the connection.
#[derive(Default)]
pub struct PeerState {
    slots: Mutex<FxHashMap<usize, Box<dyn Any + Send>>>,
}

impl PeerState {
    /// Runs `f` on the `T` that `owner` keeps for this connection (made with
    /// `T::default()` the first time). `owner` identifies the middleware: pass
    /// `self` from inside it (its address, stable once it is registered).
    ///
    /// The lock is this connection's alone and held only while `f` runs.
    pub fn with<T: Default + Send + 'static, R>(&self, owner: &impl ?Sized, f: impl FnOnce(&mut T) -> R) -> R {
        let key = owner as *const _ as *const () as usize;
        let mut slots = lock(&self.slots);
        let slot = slots.entry(key).or_insert_with(|| Box::new(T::default()));
        match slot.downcast_mut::<T>() {
            Some(value) => f(value),
            // Another type under the same owner: start that one afresh.
            None => {
                *slot = Box::new(T::default());
                f(slot.downcast_mut::<T>().expect("just stored"))
            }
        }
    }
}

impl fmt::Debug for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerState")
            .field("slots", &lock(&self.slots).len())
            .finish()
    }
}
